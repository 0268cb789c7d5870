"""Run batches on Dask: ``executor()`` returns a ``concurrent.futures.Executor`` backed by a
``dask.distributed.Client``, for ``BatchConfig(executor=...)`` — a ``LocalCluster`` of
worker processes when no address is given, or the scheduler at ``address``.

Needs the ``[dask]`` extra; ``import flyt_engine`` never imports this module.

What the executor takes care of:
- Every task is submitted with ``pure=False`` (``client.submit``/``client.map``, as
  ``client.get_executor(pure=False)`` would): with Dask's default, identical submits share
  one key, run once and share one result, which silently breaks non-deterministic items.
- Each call travels as cloudpickle bytes that a small wrapper of ours unpickles on the
  worker, and the modules a worker cannot be assumed to import are pickled *by value*
  (see ``ships_by_value``). Otherwise a function from a module loaded by file path (the
  workbench's loader, ``spec_from_file_location``) is pickled by reference, the worker
  fails to import it while deserializing the task, and the worker hangs and dies.
- Results and exceptions come back as cloudpickle bytes too, so user-defined classes
  round-trip; a worker's traceback rides along as a note on the exception.
- Failures of the cluster itself (a worker that died: ``KilledWorker``; a lost scheduler)
  become ``WorkerLost``, which the batch reports naming the batch and the item.
- Outcomes are fetched in bulk (see ``DaskExecutor``), and ``submit_batch``/``slots`` let a
  batch hand over many items per message.

Events and the store stay in the driving process: only the items' outcomes travel.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import site
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, InvalidStateError
from concurrent.futures import wait as futures_wait
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

from .errors import FlytError, WorkerLost, error_text

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
      (e.g. ``threads_per_worker``). Scheduler, workers and their HTTP servers listen
      on 127.0.0.1 only, on free ports (never a fixed one), unless you pass
      ``dashboard_address`` / ``worker_dashboard_address`` / ``host``.
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
    # Nothing this starts listens beyond loopback, in either mode: workers serve HTTP
    # (metrics) too, on every interface unless told otherwise.
    cluster_kwargs.setdefault("worker_dashboard_address", "127.0.0.1:0")
    with _stderr_for_child_processes():
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


def _has_real_fd(stream: Any) -> bool:
    try:
        return stream is not None and stream.fileno() >= 0
    except Exception:
        return False


@contextlib.contextmanager
def _stderr_for_child_processes() -> Iterator[None]:
    """While worker processes start, give them a real stderr even when ``sys.stderr`` has
    no file descriptor (a terminal UI such as Textual replaces it; multiprocessing then
    fails with "bad value(s) in fds_to_keep"). Their output is relayed, line by line, to
    ``sys.stderr`` as it was: in the workbench, its log pane, not the terminal."""
    if _has_real_fd(sys.stderr):
        yield
        return
    relay_to = sys.stderr
    read_end, write_end = os.pipe()
    saved_fd2 = os.dup(2)
    os.dup2(write_end, 2)  # children inherit fd 2 at spawn: the pipe
    os.close(write_end)
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    threading.Thread(target=_relay, args=(read_end, relay_to), name="flyt-dask-stderr", daemon=True).start()
    try:
        yield
    finally:
        child_stderr, sys.stderr = sys.stderr, relay_to
        os.dup2(saved_fd2, 2)
        os.close(saved_fd2)
        with contextlib.suppress(Exception):
            child_stderr.close()


def _relay(read_end: int, target: Any) -> None:
    """Copy lines from ``read_end`` to ``target.write`` until every writer closed it."""
    with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            with contextlib.suppress(Exception):
                target.write(line)


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` running calls on a Dask cluster (see the module doc).

    ``submit`` returns a plain ``concurrent.futures.Future``: ``result``, ``exception``,
    ``add_done_callback`` and ``cancel`` (which cancels the Dask task) behave as usual.
    Tasks are submitted with ``pure=False``; one relay thread delivers their outcomes.

    The relay is built to cost the client's event loop nothing per task: with a local
    cluster that loop also runs the scheduler, and it is the bottleneck of a batch of
    small items. So the relay does not wait with ``as_completed`` (a coroutine per task on
    that loop); it reads the tasks' ``status`` from its own thread, every few milliseconds
    while tasks finish and less often while none do, and fetches the outcomes of all the
    tasks it found finished with one ``gather`` (as ``client.gather`` does).
    """

    def __init__(self, client: Client, *, cluster: Any = None, owns_client: bool = False) -> None:
        self.client = client
        self.cluster = cluster
        self._owns_client = owns_client
        self._pending: dict[Any, tuple[Any, Future[Any]]] = {}  # task key → (Dask future, our future)
        self._lock = threading.Lock()
        self._shutdown = False
        self._wake = threading.Event()
        self._relay_thread: threading.Thread | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a Dask worker; the outcome comes back on the future."""
        self._check_open()
        code, data = dumps_many([fn, (args, kwargs)])
        return self._track([self.client.submit(_run_payload, code, data, pure=False)])[0]

    def submit_batch(self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Future[Any]]:
        """``[submit(fn, *args) for fn, args in calls]`` through ``client.map``.

        Batches use it to fill and refill their window: one ``client.map`` costs about what
        one ``submit`` does, so a thousand small items do not pay a thousand round trips.
        """
        self._check_open()
        futures: list[Future[Any]] = []
        start, size = 0, _MAP_SLICE
        while start < len(calls):  # the first tasks start while the rest are pickled
            codes, datas = _dumps_calls(calls[start : start + size])
            futures += self._track(self.client.map(_run_payload, codes, datas, pure=False))
            start, size = start + size, size * 4  # fewer, bigger graphs: each costs the scheduler
        return futures

    def slots(self) -> int:
        """How many calls the cluster runs at once now: the threads of its workers.

        A batch whose ``concurrency`` is at least this hands the cluster all its items at
        once (the workers' threads keep the bound) instead of refilling a window.
        """
        return int(sum(self.client.nthreads().values()))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; with ``cancel_futures`` cancel what has not finished; with
        ``wait`` wait for the rest; close the client and cluster this executor started.
        Safe to call twice."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            pending = [local for _, local in self._pending.values()]
        try:
            if cancel_futures:
                for local in pending:
                    local.cancel()
            if wait:
                futures_wait(pending)
        finally:
            self._wake.set()  # the relay thread ends once nothing is pending
            if self._owns_client:
                self.client.close()
                if self.cluster is not None:
                    self.cluster.close()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "open"
        return f"<DaskExecutor {state} scheduler={getattr(self.client.scheduler, 'address', None)}>"

    # -- the driving side ----------------------------------------------------------------
    def _check_open(self) -> None:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a DaskExecutor after shutdown")

    def _track(self, tasks: list[Any]) -> list[Future[Any]]:
        """Our futures for these Dask tasks, settled by the relay thread."""
        futures = []
        with self._lock:
            for task in tasks:
                local: Future[Any] = Future()
                local._flyt_task_key = task.key  # type: ignore[attr-defined]
                self._pending[task.key] = (task, local)
                futures.append(local)
            if self._relay_thread is None:
                self._relay_thread = threading.Thread(target=self._relay, name="flyt-dask-relay", daemon=True)
                self._relay_thread.start()
        for local in futures:
            local.add_done_callback(self._forward_cancel)
        self._wake.set()
        return futures

    def _forward_cancel(self, local: Future[Any]) -> None:
        if local.cancelled():
            entry = self._pending.get(local._flyt_task_key)  # type: ignore[attr-defined]
            if entry is not None:
                entry[0].cancel()  # the relay thread then drops it

    def _relay(self) -> None:
        """Deliver the outcomes of finished tasks, a batch at a time, until shut down."""
        gap = _POLL_GAP
        while True:
            with self._lock:
                tasks = [task for task, _ in self._pending.values()]
            if not tasks:
                if self._shutdown:
                    return
                self._wake.wait()  # set by _track and shutdown
                self._wake.clear()
                gap = _POLL_GAP
                continue
            scan_started = time.perf_counter()
            finished = [task for task in tasks if task.status in _SETTLED]
            if finished:
                gap = _POLL_GAP
                try:
                    self._deliver(finished)
                except BaseException as exc:  # never let the relay die: fail what it was handling
                    self._fail(finished, exc)
            else:  # wait longer while nothing finishes, and never spend more than ~5% on scanning
                gap = min(2 * gap, max(_POLL_GAP_IDLE, 20 * (time.perf_counter() - scan_started)))
            tasks = finished = []  # hold no Dask future while waiting: it would keep its result on a worker
            if self._wake.wait(gap):
                self._wake.clear()

    def _fail(self, tasks: list[Any], exc: BaseException) -> None:
        for task in tasks:
            with self._lock:
                _, local = self._pending.pop(task.key, (None, None))
            if local is not None and not local.done():
                _settle(local, None, WorkerLost(f"could not collect the outcome: {exc!r}"))

    def _deliver(self, tasks: list[Any]) -> None:
        finished = [task for task in tasks if task.status == "finished"]
        outcomes: dict[Any, Any] = {}
        if finished:
            try:
                outcomes = self.client.gather({task.key: task for task in finished}, errors="skip")
            except Exception:  # fetch them one by one below
                outcomes = {}
        for task in tasks:
            with self._lock:
                _, local = self._pending.pop(task.key, (None, None))
            if local is None or local.done():  # cancelled here
                continue
            if task.key in outcomes:
                _settle(local, *_decode(outcomes[task.key]))
            elif task.cancelled():
                _settle(local, None, WorkerLost("Dask cancelled the task (the scheduler or the client lost it)"))
            else:
                try:
                    raw = task.result()
                except BaseException as failure:  # KilledWorker, a lost scheduler...: the cluster's, not the item's
                    error = WorkerLost(f"the Dask worker running it was lost ({type(failure).__name__}: {failure})")
                    error.__cause__ = _without_tracebacks(failure)
                    _settle(local, None, error)
                else:
                    _settle(local, *_decode(raw))


def _decode(raw: bytes) -> tuple[Any, BaseException | None]:
    """``(value, None)`` or ``(None, error)`` from what ``_run_payload`` sent back."""
    try:
        kind, value = pickle.loads(raw)
    except Exception as exc:
        error = FlytError(f"the outcome sent back by the Dask worker could not be read: {error_text(exc)}")
        error.__cause__ = exc
        return None, error
    if kind == "ok":
        return value, None
    return None, _without_tracebacks(value)


def _settle(local: Future[Any], value: Any, error: BaseException | None) -> None:
    try:
        if error is None:
            local.set_result(value)
        else:
            local.set_exception(error)
    except InvalidStateError:  # cancelled meanwhile
        pass


_pickle_lock = threading.Lock()
_verdicts: dict[int, tuple[ModuleType, bool]] = {}
_by_value_cache: tuple[int, list[ModuleType]] = (-1, [])


def dumps(obj: Any) -> bytes:
    """``cloudpickle.dumps(obj)`` with every module of ``ships_by_value`` pickled by value.

    The registration lasts only for this call (modules the user registered stay registered).
    """
    return dumps_many([obj])[0]


_MAP_SLICE = 128  # the first client.map of a batch; each next one is 4 times bigger
# The relay's scans: every 3 ms while tasks finish (the finished ones of each scan share one
# gather, a round trip to each worker holding a result), doubling up to 50 ms while none do.
_POLL_GAP = 0.003
_POLL_GAP_IDLE = 0.05
# A Dask future's statuses that end a task ("lost" does not: Dask computes it again).
_SETTLED = frozenset({"finished", "error", "cancelled"})


def _dumps_calls(calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> tuple[list[bytes], list[bytes]]:
    """The code and the data of each call, pickled; a function shared by the calls (a batch's
    ``process``, a BatchFlow's factory) is pickled once."""
    functions: dict[int, int] = {}
    objs: list[Any] = []
    for fn, _ in calls:
        if id(fn) not in functions:
            functions[id(fn)] = len(objs)
            objs.append(fn)
    first_data = len(objs)
    objs += [(args, {}) for _, args in calls]
    pickled = dumps_many(objs)
    codes = [pickled[functions[id(fn)]] for fn, _ in calls]
    return codes, pickled[first_data:]


def dumps_many(objs: Sequence[Any]) -> list[bytes]:
    """``dumps`` for several objects, registering the modules once."""
    with _pickle_lock:
        already = set(cloudpickle.list_registry_pickle_by_value())
        added = [module for module in _modules_by_value() if module.__name__ not in already]
        for module in added:
            cloudpickle.register_pickle_by_value(module)
        try:
            return [cloudpickle.dumps(obj) for obj in objs]
        finally:
            for module in added:
                cloudpickle.unregister_pickle_by_value(module)


def _modules_by_value() -> list[ModuleType]:
    """The loaded modules ``ships_by_value`` picks; rescanned when ``sys.modules`` changed
    size or one of them was replaced (a reload)."""
    global _by_value_cache
    count, modules = _by_value_cache
    if count == len(sys.modules) and all(sys.modules.get(m.__name__) is m for m in modules):
        return modules
    modules = []
    verdicts: dict[int, tuple[ModuleType, bool]] = {}  # only live modules: reloads must not pile up
    for name, module in list(sys.modules.items()):
        if not isinstance(module, ModuleType) or getattr(module, "__name__", None) != name:
            continue
        verdict = _verdicts.get(id(module))
        if verdict is None or verdict[0] is not module:
            verdict = (module, ships_by_value(module))
        verdicts[id(module)] = verdict
        if verdict[1]:
            modules.append(module)
    _verdicts.clear()
    _verdicts.update(verdicts)
    _by_value_cache = (len(sys.modules), modules)
    return modules


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
def _run_payload(code: bytes, data: bytes) -> bytes:
    """On the worker: unpickle the call, run it, and pickle its outcome, never raising.

    Everything the item raises comes back as data, so any exception the Dask future
    itself carries is a failure of the cluster (see ``_relay``).
    """
    try:
        fn = _loaded_code(code)
        args, kwargs = pickle.loads(data)
    except BaseException as exc:
        error: BaseException = FlytError(
            f"the Dask worker could not load the item's code: {error_text(exc)} "
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
            f"the item's result, a {type(value).__name__}, cannot be sent back from the Dask worker: {error_text(exc)}"
        )
        return _pack_error(error, exc)


_code_lock = threading.Lock()
_code_by_bytes: dict[bytes, Any] = {}
_CODE_KEPT = 16


def _loaded_code(code: bytes) -> Any:
    """On the worker: the call's code, unpickled once per worker for all the items that
    share it (every item of a batch sends the same bytes). Unpickling a function shipped
    by value rebuilds it, its module's globals included, which cost more than running a
    small item; the items of a batch now share one copy per worker, as threads share one
    module in the driving process. The last few codes are kept, so a reloaded flow
    (different bytes) gets its own."""
    fn = _code_by_bytes.get(code)
    if fn is None:
        fn = pickle.loads(code)
        with _code_lock:
            if len(_code_by_bytes) >= _CODE_KEPT:
                del _code_by_bytes[next(iter(_code_by_bytes))]
            _code_by_bytes[code] = fn
    return fn


def _without_tracebacks(error: BaseException) -> BaseException:
    """Drop the tracebacks of ``error`` and its causes. Dask installs tblib, which rebuilds
    a pickled traceback out of the frames live at unpickling time: on the driver those
    hold the Dask future (and its result on a worker) for as long as the error lives. The
    worker's traceback is kept as text in a note instead."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
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
        stand_in = FlytError(f"{error_text(error)} (the exception itself could not be pickled: {error_text(exc)})")
        stand_in.add_note(f"raised on Dask worker {where}:\n{text}")
        return cloudpickle.dumps(("err", stand_in))


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except Exception:
        return f"(pid {os.getpid()})"
