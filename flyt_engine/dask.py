"""Run batches on Dask: ``executor()`` returns a ``concurrent.futures.Executor`` backed by a
``dask.distributed.Client``, for ``BatchConfig(executor=...)`` — a ``LocalCluster`` of
worker processes when no address is given, or the scheduler at ``address``.

Needs the ``[dask]`` extra; ``import flyt_engine`` never imports this module.

Why the executor does more than ``client.get_executor()``:
- It submits with ``pure=False``: with Dask's default, identical submits share one key,
  run once and share one result, which silently breaks non-deterministic items.
- It ships each call as cloudpickle bytes that a small wrapper of ours unpickles on the
  worker, and pickles *by value* the modules a worker cannot be assumed to import (see
  ``ships_by_value``). Otherwise a function from a module loaded by file path (the
  workbench's loader, ``spec_from_file_location``) is pickled by reference, the worker
  fails to import it while deserializing the task, and the worker hangs and dies.
- Results and exceptions come back as cloudpickle bytes too, so user-defined classes
  round-trip; a worker's traceback rides along as a note on the exception.
- Failures of the cluster itself (a worker that died: ``KilledWorker``; a lost scheduler)
  become ``WorkerLost``, which the batch reports naming the batch and the item.

Events and the store stay in the driving process: only the items' outcomes travel.
"""

from __future__ import annotations

import os
import pickle
import site
import sys
import sysconfig
import threading
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future, InvalidStateError
from functools import partial
from importlib.machinery import BYTECODE_SUFFIXES, SOURCE_SUFFIXES
from types import ModuleType
from typing import Any

try:
    import cloudpickle
    from distributed import Client, LocalCluster
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "flyt_engine.dask needs Dask: install the [dask] extra (pip install 'flyt-python[dask]')"
    ) from exc

from .batch import WorkerLost
from .errors import FlytError

__all__ = ["DaskExecutor", "WorkerLost", "executor", "ships_by_value"]

# Our own packages travel by reference: a worker must have flyt installed, and pickling
# the engine by value would give the worker copies of Node/Flow that its own engine does
# not recognise.
_BY_REFERENCE_PACKAGES = frozenset({"flyt_engine", "flyt_tui"})
_PYTHON_SUFFIXES = tuple(SOURCE_SUFFIXES + BYTECODE_SUFFIXES)


def executor(
    address: str | None = None,
    *,
    client: Client | None = None,
    n_workers: int | None = None,
    processes: bool | None = None,
    **cluster_kwargs: Any,
) -> DaskExecutor:
    """An executor that runs batch items on Dask.

    - ``executor()``: starts a ``LocalCluster`` of ``n_workers`` (2) worker processes
      (threads with ``processes=False``); other keyword arguments go to ``LocalCluster``
      (e.g. ``threads_per_worker``). The scheduler's dashboard takes a free port on
      127.0.0.1 unless you pass ``dashboard_address``: never a fixed one.
    - ``executor("tcp://scheduler:8786")``: connects to a running scheduler. Its workers
      need ``flyt-python`` (and the libraries your nodes import) installed; your own flow
      modules are shipped with each item.
    - ``executor(client=client)``: uses a ``Client`` you already have (and leaves it open).

    The executor owns the client and cluster it started: ``shutdown()`` (or leaving a
    ``with`` block) closes them.
    """
    if client is not None:
        if address is not None or cluster_kwargs or n_workers is not None or processes is not None:
            raise TypeError("executor(client=...) takes no address or cluster options")
        return DaskExecutor(client)
    if address is not None:
        if not isinstance(address, str):
            raise TypeError(f"address must be a scheduler address string, not {type(address).__name__}")
        if cluster_kwargs or n_workers is not None or processes is not None:
            raise TypeError(f"cluster options apply to a local cluster only, not to {address!r}")
        return DaskExecutor(Client(address), owns_client=True)
    # The scheduler always serves HTTP, on 8787 when given no address (even None): ask for a
    # free port on the loopback interface instead, so two clusters never collide.
    cluster_kwargs.setdefault("dashboard_address", "127.0.0.1:0")
    cluster = LocalCluster(
        n_workers=2 if n_workers is None else n_workers,
        processes=True if processes is None else processes,
        **cluster_kwargs,
    )
    try:
        local_client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return DaskExecutor(local_client, cluster=cluster, owns_client=True)


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` running calls on a Dask cluster (see the module doc).

    ``submit`` returns a plain ``concurrent.futures.Future``: ``result``, ``exception``,
    ``add_done_callback`` and ``cancel`` (which cancels the Dask task) behave as usual.
    """

    def __init__(self, client: Client, *, cluster: Any = None, owns_client: bool = False) -> None:
        self.client = client
        self.cluster = cluster
        self._owns_client = owns_client
        self._inner = client.get_executor(pure=False)
        self._futures: weakref.WeakSet[Future[Any]] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a Dask worker; the outcome comes back on the future."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a DaskExecutor after shutdown")
        payload = dumps((fn, args, kwargs))
        remote = self._inner.submit(_run_payload, payload)
        local: Future[Any] = Future()
        # Weakly: a cycle local <-> remote would keep the Dask future, and so its result on
        # the worker, alive until the garbage collector runs (and a lost worker's finished
        # tasks would be recomputed). The Dask client holds ``remote`` until the task ends.
        local.add_done_callback(partial(_forward_cancel, weakref.ref(remote)))
        remote.add_done_callback(partial(_relay, local))
        self._futures.add(local)
        return local

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; with ``cancel_futures`` cancel what has not finished; close the
        client and cluster this executor started. Safe to call twice."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
        if cancel_futures:
            for future in list(self._futures):
                future.cancel()
        try:
            self._inner.shutdown(wait=wait and not cancel_futures)
        finally:
            if self._owns_client:
                self.client.close()
                if self.cluster is not None:
                    self.cluster.close()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "open"
        return f"<DaskExecutor {state} scheduler={self.client.scheduler.address if self.client.scheduler else None}>"


# ---------------------------------------------------------------------------------------
# The driving side
# ---------------------------------------------------------------------------------------
def _forward_cancel(remote_ref: weakref.ref[Future[Any]], local: Future[Any]) -> None:
    remote = remote_ref()
    if remote is not None and local.cancelled() and not remote.done():
        remote.cancel()  # ClientExecutor cancels the Dask task in turn


def _relay(local: Future[Any], remote: Future[Any]) -> None:
    """The Dask task ended: decode its outcome onto ``local`` (runs on the client's thread)."""
    if local.done():  # cancelled here first
        return
    value: Any = None
    error: BaseException | None = None
    if remote.cancelled():
        error = WorkerLost("Dask cancelled the task (the scheduler, or the client's connection to it, was lost)")
    else:
        failure = remote.exception()
        if failure is not None:  # our wrapper catches everything the item raises: this is the cluster's
            error = WorkerLost(f"the Dask worker running it was lost ({type(failure).__name__}: {failure})")
            error.__cause__ = _without_tracebacks(failure)
        else:
            try:
                kind, value = pickle.loads(remote.result())
            except Exception as exc:
                error = FlytError(
                    f"the outcome sent back by the Dask worker could not be read: {type(exc).__name__}: {exc}"
                )
                error.__cause__ = exc
            else:
                if kind != "ok":
                    error, value = _without_tracebacks(value), None
    try:
        if error is None:
            local.set_result(value)
        else:
            local.set_exception(error)
    except InvalidStateError:  # cancelled meanwhile
        pass


_pickle_lock = threading.Lock()
_verdicts: dict[int, tuple[ModuleType, bool]] = {}


def dumps(obj: Any) -> bytes:
    """``cloudpickle.dumps(obj)`` with every module of ``ships_by_value`` pickled by value.

    The registration lasts only for this call (modules the user registered stay registered).
    """
    with _pickle_lock:
        already = set(cloudpickle.list_registry_pickle_by_value())
        added = []
        for name, module in list(sys.modules.items()):
            if name in already or not isinstance(module, ModuleType) or module.__name__ != name:
                continue
            verdict = _verdicts.get(id(module))
            if verdict is None or verdict[0] is not module:
                verdict = _verdicts[id(module)] = (module, ships_by_value(module))
            if verdict[1]:
                cloudpickle.register_pickle_by_value(module)
                added.append(module)
        try:
            return cloudpickle.dumps(obj)
        finally:
            for module in added:
                cloudpickle.unregister_pickle_by_value(module)


def ships_by_value(module: ModuleType) -> bool:
    """Whether ``module`` is pickled by value (its code travels with each item).

    True for modules whose code is a Python file outside the interpreter's standard
    library and site-packages: your flow files, however they were loaded (by file path as
    the workbench does, or imported from your project directory), and their sibling
    helpers. A worker has no reason to have those on its path, and for a module loaded by
    file path no name would find it anyway.

    False for the standard library and installed packages (a worker has its own), for
    ``flyt_engine`` (the worker's engine must recognise its own Node and Flow classes),
    for ``__main__`` (cloudpickle already ships it by value) and for modules with no
    Python file (built-in, frozen, extension, namespace or made in memory: there is no
    code to ship, or nothing cloudpickle can rebuild).
    """
    name = getattr(module, "__name__", None)
    if not isinstance(name, str) or name == "__main__" or name.partition(".")[0] in _BY_REFERENCE_PACKAGES:
        return False
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) if spec is not None else getattr(module, "__file__", None)
    if not isinstance(origin, str) or not origin.endswith(_PYTHON_SUFFIXES) or not os.path.isabs(origin):
        return False
    path = os.path.normcase(os.path.realpath(origin))
    return not any(path.startswith(root) for root in _environment_roots())


_roots: tuple[str, ...] | None = None


def _environment_roots() -> tuple[str, ...]:
    """Directories whose modules every worker is expected to have: stdlib and site-packages."""
    global _roots
    if _roots is None:
        paths = sysconfig.get_paths()
        found = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
        try:
            found.update(site.getsitepackages())
            found.add(site.getusersitepackages())
        except AttributeError:  # pragma: no cover - some embedded interpreters lack these
            pass
        found.update(p for p in sys.path if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages"))
        _roots = tuple(
            os.path.join(os.path.normcase(os.path.realpath(p)), "") for p in found if isinstance(p, str) and p
        )
    return _roots


# ---------------------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------------------
def _run_payload(payload: bytes) -> bytes:
    """On the worker: unpickle the call, run it, and pickle its outcome, never raising.

    Everything the item raises comes back as data, so any exception the Dask future
    itself carries is a failure of the cluster (see ``_relay``).
    """
    try:
        fn, args, kwargs = pickle.loads(payload)
    except BaseException as exc:
        error = FlytError(
            f"the Dask worker could not load the item's code: {type(exc).__name__}: {exc} "
            "(is every library it imports installed on the workers?)"
        )
        return _pack_error(error, exc)
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:
        return _pack_error(exc, exc)
    try:
        return cloudpickle.dumps(("ok", value))
    except BaseException as exc:
        error = TypeError(
            f"the item's result, a {type(value).__name__}, cannot be sent back from the Dask worker: {exc}"
        )
        return _pack_error(error, exc)


def _without_tracebacks(error: BaseException) -> BaseException:
    """Drop the tracebacks of ``error`` and its causes. Dask installs tblib, which rebuilds
    a pickled traceback out of the frames live at unpickling time: on the driver those
    hold the Dask future (and its result on a worker) for as long as the error lives. The
    worker's traceback is kept as text in a note instead."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        stack.extend((current.__cause__, current.__context__))
    return error


def _pack_error(error: BaseException, original: BaseException) -> bytes:
    where = _worker_address()
    text = "".join(traceback.format_exception(original)).rstrip()
    try:
        error.add_note(f"raised on Dask worker {where}:\n{text}")
    except Exception:  # a note is a nicety
        pass
    _without_tracebacks(error)
    try:
        return cloudpickle.dumps(("err", error))
    except BaseException as exc:
        stand_in = FlytError(f"{type(error).__name__}: {error} (the exception itself could not be pickled: {exc})")
        stand_in.add_note(f"raised on Dask worker {where}:\n{text}")
        return cloudpickle.dumps(("err", stand_in))


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except Exception:
        return f"(pid {os.getpid()})"
