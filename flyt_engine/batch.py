"""Batches: BatchNode maps ``process`` over items; BatchFlow runs a fresh flow per input.

Both share ``_BatchRun``, which schedules items in one of three ways:
- sequentially, in a loop kept as bare as a hand-written one (the hot path);
- concurrently on threads: ``min(concurrency, chunk)`` workers pull item indices, so no
  Future is made per item and a free worker starts the next item at once;
- on any ``concurrent.futures.Executor`` (``BatchConfig.executor``, e.g. Dask): a sliding
  window of single attempts, with retries, waits, fallbacks and events kept in the driving
  thread, so the store and the observers never leave this process.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from queue import Empty, SimpleQueue
from time import monotonic
from typing import Any

from .context import Context, _fresh
from .errors import BatchError, Cancelled, FlytError
from .events import BatchFinished, BatchItemFinished, BatchStarted, ExecFailed, FallbackUsed
from .flow import Flow
from .node import _NO_TRANSITIONS, Node, drive, drive_observed
from .pool import to_slice
from .store import SharedStore

FlowInputs = dict[str, Any]


@dataclass
class BatchConfig:
    """How a batch runs. ``None`` keys mean the defaults of the node kind."""

    batch_size: int = 0  # > 0: items are scheduled in chunks of this size
    concurrency: int = 8  # worker threads (or in-flight items on an executor) when concurrent
    items_key: str | None = None  # None: "items"
    results_key: str | None = None  # None: "results" (BatchNode), "batch_results" (BatchFlow)
    count_key: str | None = None  # None: not written (BatchNode), "batch_count" (BatchFlow)
    fail_fast: bool = False  # stop scheduling new items after the first failure
    executor: Executor | None = None  # e.g. flyt_engine.dask.executor()

    def __post_init__(self) -> None:
        for field in ("batch_size", "concurrency"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"BatchConfig.{field} must be an int, not {type(value).__name__}")
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise TypeError(
                f"BatchConfig.executor must be a concurrent.futures.Executor, not {type(self.executor).__name__}"
            )


class BatchItems(list):
    """The items a batch prepared (a plain list) plus the store their results go to."""

    shared: SharedStore


class BatchResults(list):
    """Index-aligned results (a plain list) plus ``errors`` (``None`` where an item succeeded)."""

    errors: list[BaseException | None]
    done: int


class _Skipped(Cancelled):
    """An item that never started: the batch was cancelled or stopped by ``fail_fast``."""


class _BatchRun:
    """One execution of a batch: schedules the items and collects results and errors."""

    def __init__(self, owner: _BatchBase, ctx: Context, items: BatchItems) -> None:
        self.owner = owner
        self.ctx = ctx
        self.items = items
        self.total = len(items)
        self.concurrent = owner.concurrent
        self.started: _Counter | _IndexSet = _Counter()
        self.config = owner.config
        self.results: list[Any] = [None] * self.total
        self.errors: list[BaseException | None] = [None] * self.total
        self.failed = 0
        self.done = 0
        self.stop = False  # fail_fast tripped
        self.lock = threading.Lock()
        self.emit = ctx._emit
        self.path = ctx._path
        self.name = owner.name
        self.nid = id(owner)

    # -- bookkeeping shared by every mode ------------------------------------------------
    def finish(self, index: int, result: Any, error: BaseException | None, started: float) -> None:
        with self.lock:
            self.done += 1
            if error is None:
                self.results[index] = result
            else:
                self.errors[index] = error
                self.failed += 1
                if self.config.fail_fast:
                    self.stop = True
        if self.emit is not None:
            now = monotonic()
            self.emit(
                BatchItemFinished(
                    self.ctx._run_id, self.path, self.name, self.nid, now, index, error is None, error, now - started
                )
            )

    def chunks(self) -> list[range]:
        size = self.config.batch_size
        if size <= 0 or size >= self.total:
            return [range(self.total)]
        return [range(start, min(start + size, self.total)) for start in range(0, self.total, size)]

    def execute(self) -> BatchResults:
        owner = self.owner
        if self.emit is not None:
            self.emit(BatchStarted(self.ctx._run_id, self.path, self.name, self.nid, monotonic(), self.total))
        cancelled: Cancelled | None = None
        try:
            if owner.get_max_retries() <= 0:
                self.started = _IndexSet(range(self.total))  # no attempts allowed: results stay None
            elif self.config.executor is not None:
                self.run_on_executor(self.config.executor)
            elif self.concurrent and self.total > 1:
                self.run_on_threads()
            else:
                self.run_sequential()
        except Cancelled as exc:
            cancelled = exc
        signal_error = self.ctx._signal.error
        if cancelled is None and signal_error is not None:
            cancelled = _fresh(signal_error)
        if cancelled is not None or self.stop:  # items that never ran were skipped
            reason = "cancelled before it started" if cancelled is not None else "skipped after a failure (fail_fast)"
            for index, error in enumerate(self.errors):
                if error is None and index not in self.started:
                    self.errors[index] = _Skipped(f"item #{index} {reason}")
        if self.emit is not None:
            self.emit(
                BatchFinished(self.ctx._run_id, self.path, self.name, self.nid, monotonic(), self.done, self.failed)
            )
        results = BatchResults(self.results)
        results.errors = self.errors
        results.done = self.done
        if cancelled is not None:
            owner._write(self.items.shared, results)
            cancelled.results = results  # type: ignore[attr-defined]
            cancelled.errors = self.errors  # type: ignore[attr-defined]
            raise cancelled
        return results

    # -- sequential ------------------------------------------------------------------------
    def run_sequential(self) -> None:
        owner = self.owner
        ctx = self.ctx
        signal = ctx._signal
        call = owner._call_item
        items = self.items
        results = self.results
        started = self.started = _Counter()
        if self.emit is None and not self.config.fail_fast:
            # The hot path: a bare loop; failures go to the slow path.
            index = 0
            try:
                for index in range(self.total):
                    if signal.error is not None:
                        raise _fresh(signal.error)
                    try:
                        results[index] = call(ctx, items, index)
                    except Cancelled:
                        raise
                    except Exception as exc:
                        self._recover(index, exc, monotonic())
            except Cancelled:
                self.done = started.upto = index
                raise
            self.done = started.upto = self.total
            return
        for index in range(self.total):
            if signal.error is not None:
                raise _fresh(signal.error)
            if self.stop:
                return
            started.upto = index + 1
            began = monotonic()
            try:
                result = call(ctx, items, index)
            except Cancelled:
                raise
            except Exception as exc:
                self._recover(index, exc, began)
            else:
                self.finish(index, result, None, began)

    def _recover(self, index: int, error: Exception, started: float) -> None:
        """Retries, waits and the fallback of one item after its first failed attempt."""
        try:
            result = self.owner._retry_item(self.ctx, self.items, index, error, self.emit)
        except Cancelled:
            raise
        except Exception as exc:
            self.finish(index, None, exc, started)
        else:
            self.finish(index, result, None, started)

    # -- concurrent, on threads ------------------------------------------------------------
    def run_on_threads(self) -> None:
        limit = max(1, self.config.concurrency)
        self.started = _IndexSet()
        ctx = self.ctx
        signal = ctx._signal
        call = self.owner._call_item
        items = self.items
        with ThreadPoolExecutor(min(limit, self.total), thread_name_prefix=f"flyt-{self.name}") as pool:
            for chunk in self.chunks():
                if self.stop or signal.error is not None:
                    break
                indices = iter(chunk)
                take = threading.Lock()

                def worker(indices=indices, take=take) -> None:
                    while True:
                        if self.stop or signal.error is not None:
                            return
                        with take:
                            index = next(indices, None)
                            if index is None:
                                return
                            self.started.add(index)
                        started = monotonic()
                        try:
                            result = call(ctx, items, index)
                        except Cancelled:
                            return
                        except Exception as exc:
                            try:
                                self._recover(index, exc, started)
                            except Cancelled:
                                return
                        else:
                            self.finish(index, result, None, started)

                workers = [pool.submit(worker) for _ in range(min(limit, len(chunk)))]
                for future in workers:
                    future.result()
        if signal.error is not None:
            raise _fresh(signal.error)

    # -- concurrent, on any executor ---------------------------------------------------------
    def run_on_executor(self, executor: Executor) -> None:
        """A sliding window of single attempts on ``executor``; the rest stays here."""
        owner = self.owner
        limit = max(1, self.config.concurrency if self.concurrent else 1)
        signal = self.ctx._signal
        self.started = _IndexSet()
        done_queue: SimpleQueue[tuple[int, int, float, Future[Any]]] = SimpleQueue()
        for chunk in self.chunks():
            pending = deque(chunk)
            retries: list[tuple[float, int, int, float]] = []  # (due, index, attempt, first start)
            in_flight: dict[Future[Any], int] = {}
            while pending or retries or in_flight:
                stopping = self.stop or signal.error is not None
                if stopping:
                    pending.clear()
                    retries.clear()
                    for future in list(in_flight):
                        future.cancel()
                now = monotonic()
                while not stopping and len(in_flight) < limit and (pending or (retries and retries[0][0] <= now)):
                    if retries and retries[0][0] <= now:
                        _, index, attempt, first = heapq.heappop(retries)
                    else:
                        index, attempt, first = pending.popleft(), 1, now
                    self.started.add(index)
                    fn, args = owner._remote_call(self.ctx, self.items, index)
                    future = executor.submit(fn, *args)
                    in_flight[future] = index
                    future.add_done_callback(lambda f, i=index, a=attempt, t=first: done_queue.put((i, a, t, f)))
                if not in_flight:
                    if retries and not stopping:
                        signal.wait(max(0.0, retries[0][0] - monotonic()))
                    continue
                timeout = 0.05
                if retries:
                    timeout = min(timeout, max(0.0, retries[0][0] - monotonic()))
                try:
                    index, attempt, first, future = done_queue.get(timeout=timeout)
                except Empty:
                    continue
                in_flight.pop(future, None)
                if future.cancelled():
                    continue
                error = future.exception()
                if error is None:
                    self.finish(index, future.result(), None, first)
                    continue
                if isinstance(error, Cancelled) and signal.error is not None:
                    continue
                max_attempts = owner.get_max_retries()
                if attempt < max_attempts and not self.stop and signal.error is None:
                    wait = owner.get_wait()
                    owner._report_failure(self.ctx, index, attempt, max_attempts, error, wait, self.emit)
                    heapq.heappush(retries, (monotonic() + wait, index, attempt + 1, first))
                    continue
                owner._report_failure(self.ctx, index, attempt, max(attempt, max_attempts), error, 0.0, self.emit)
                try:
                    result = owner._fallback_item(self.ctx, self.items, index, error, self.emit)
                except Exception as exc:
                    self.finish(index, None, exc, first)
                else:
                    self.finish(index, result, None, first)
            if signal.error is not None:
                raise _fresh(signal.error)
            if self.stop:
                return


class _Counter:
    """The indices ``0 .. upto-1`` have started (sequential mode)."""

    __slots__ = ("upto",)

    def __init__(self) -> None:
        self.upto = 0

    def __contains__(self, index: int) -> bool:
        return index < self.upto


class _IndexSet(set):
    """The indices that have started (concurrent modes; adding is atomic)."""


class _BatchBase(Node):
    """What BatchNode and BatchFlow share: configuration, per-item retries, results."""

    _composite = True
    config: BatchConfig
    concurrent: bool
    _default_results_key = "results"
    _default_count_key: str | None = None

    def _configure(self, concurrent: bool, config: BatchConfig | None, **overrides: Any) -> None:
        if config is not None and not isinstance(config, BatchConfig):
            raise TypeError(f"config must be a BatchConfig, not {type(config).__name__}")
        config = config if config is not None else BatchConfig()
        changes = {key: value for key, value in overrides.items() if value is not None}
        self.config = replace(config, **changes) if changes else config
        self.concurrent = bool(concurrent)

    @property
    def items_key(self) -> str:
        return self.config.items_key or "items"

    @property
    def results_key(self) -> str:
        return self.config.results_key or self._default_results_key

    @property
    def count_key(self) -> str | None:
        return self.config.count_key or self._default_count_key

    # Per item ---------------------------------------------------------------------------
    def _call_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        """Run item ``index`` once, here, and return its result."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _remote_call(self, ctx: Context, items: BatchItems, index: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """What an executor runs for item ``index``: a picklable function and its arguments."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _retry_item(self, ctx: Context, items: BatchItems, index: int, error: Exception, emit: Any) -> Any:
        """Retry item ``index`` after a failed first attempt, then fall back; raise its error."""
        attempt = 1
        while True:
            max_attempts = self.get_max_retries()
            if attempt >= max_attempts:
                break
            wait = self.get_wait()
            self._report_failure(ctx, index, attempt, max_attempts, error, wait, emit)
            ctx.sleep(wait)
            attempt += 1
            try:
                return self._call_item(ctx, items, index)
            except Cancelled:
                raise
            except Exception as exc:
                error = exc
        self._report_failure(ctx, index, attempt, max(attempt, max_attempts), error, 0.0, emit)
        ctx.check()
        return self._fallback_item(ctx, items, index, error, emit)

    def _fallback_item(self, ctx: Context, items: BatchItems, index: int, error: BaseException, emit: Any) -> Any:
        result = self.exec_fallback(items[index], error)
        if emit is not None:
            emit(FallbackUsed(ctx._run_id, ctx._path + (f"#{index}",), self.name, id(self), monotonic(), error))
        return result

    def _report_failure(
        self, ctx: Context, index: int, attempt: int, max_attempts: int, error: BaseException, wait: float, emit: Any
    ) -> None:
        if emit is not None:
            path = ctx._path + (f"#{index}",)
            emit(ExecFailed(ctx._run_id, path, self.name, id(self), monotonic(), attempt, max_attempts, error, wait))

    # Results ----------------------------------------------------------------------------
    def _write(self, shared: SharedStore, results: BatchResults) -> None:
        shared.set(self.results_key, list(results))
        if self.count_key:
            shared.set(self.count_key, results.done)

    def _raise_failures(self, results: BatchResults) -> None:
        failed = sum(error is not None for error in results.errors)
        if failed:
            raise BatchError(f"{failed}/{len(results)} items failed", list(results.errors), list(results), self.name)


class BatchNode(_BatchBase):
    """Runs ``process(ctx, item)`` for every item of ``shared[items_key]`` and writes the
    results, in item order, to ``shared[results_key]``.

    Sequential by default; ``concurrent=True`` runs up to ``config.concurrency`` items at
    once (chunk by chunk with ``batch_size``). ``max_retries``, ``wait`` and ``fallback``
    (``exec_fallback(item, error)``) apply per item. When items fail, the partial results
    are written, then ``BatchError`` is raised. Cancellation writes the finished results
    and raises ``Cancelled``.
    """

    def __init__(
        self,
        process: Callable[[Context, Any], Any] | None = None,
        concurrent: bool = False,
        *,
        config: BatchConfig | None = None,
        items_key: str | None = None,
        results_key: str | None = None,
        count_key: str | None = None,
        batch_size: int | None = None,
        concurrency: int | None = None,
        fail_fast: bool | None = None,
        executor: Executor | None = None,
        **node_kwargs: Any,
    ) -> None:
        if process is not None:
            if not callable(process):
                raise TypeError(f"BatchNode process must be callable, not {type(process).__name__}")
            self.process = process  # type: ignore[method-assign]
        elif type(self).process is BatchNode.process:
            raise TypeError("BatchNode needs a process function (or a subclass overriding process)")
        unknown = set(node_kwargs) - {"fallback", "max_retries", "wait", "name", "post"}
        if unknown:
            raise TypeError(f"BatchNode got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        if "name" not in node_kwargs and process is not None and type(self) is BatchNode:
            node_kwargs["name"] = getattr(process, "__name__", None) or "BatchNode"
            self._auto_name = True
        super().__init__(**node_kwargs)
        self._configure(
            concurrent,
            config,
            items_key=items_key,
            results_key=results_key,
            count_key=count_key,
            batch_size=batch_size,
            concurrency=concurrency,
            fail_fast=fail_fast,
            executor=executor,
        )

    def process(self, ctx: Context, item: Any) -> Any:
        """Process one item (override, or pass ``process=`` to the constructor)."""
        raise NotImplementedError

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        """Per item: ``exec_fallback(item, error)``; the default re-raises the error."""
        raise error

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        """The items: ``to_slice(shared[items_key])``; a missing key fails prep."""
        key = self.items_key
        if key not in shared:
            raise KeyError(f"batch {self.name!r} reads its items from {key!r}, which is not in the store")
        items = BatchItems(to_slice(shared.get(key)))
        items.shared = shared
        return items

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        """Process every item; returns the results (a list with ``.errors``)."""
        return _BatchRun(self, ctx, prep_result).execute()

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        """Write results (and count), raise ``BatchError`` if any item failed."""
        if exec_result is None:  # max_retries <= 0: nothing was attempted
            exec_result = BatchResults([None] * len(prep_result))
            exec_result.errors = [None] * len(prep_result)
            exec_result.done = 0
        self._write(shared, exec_result)
        self._raise_failures(exec_result)
        return None

    # Per item ---------------------------------------------------------------------------
    def _call_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        return self.process(ctx, items[index])

    def _remote_call(self, ctx: Context, items: BatchItems, index: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.process, (ctx, items[index])


class BatchFlow(_BatchBase):
    """Runs a fresh flow from ``flow_factory`` for each ``FlowInputs`` that
    ``batch_func(ctx, shared)`` returns, each on its own store: a shallow copy of the
    parent store merged with the inputs (inputs win). Children never write to the parent.

    Afterwards the parent store gets ``batch_count`` (iterations) and ``batch_results``
    (each iteration's final store as a dict, in input order; ``None`` where it failed).
    """

    _default_results_key = "batch_results"
    _default_count_key = "batch_count"

    def __init__(
        self,
        flow_factory: Callable[[], Node],
        batch_func: Callable[[Context, SharedStore], list[FlowInputs]],
        concurrent: bool = False,
        *,
        config: BatchConfig | None = None,
        name: str | None = None,
        results_key: str | None = None,
        count_key: str | None = None,
        batch_size: int | None = None,
        concurrency: int | None = None,
        fail_fast: bool | None = None,
        executor: Executor | None = None,
        max_retries: int | None = None,
        wait: float | None = None,
        fallback: Callable[..., Any] | None = None,
    ) -> None:
        if not callable(flow_factory):
            raise TypeError(f"BatchFlow flow_factory must be callable, not {type(flow_factory).__name__}")
        if not callable(batch_func):
            raise TypeError(f"BatchFlow batch_func must be callable, not {type(batch_func).__name__}")
        super().__init__(name=name, max_retries=max_retries, wait=wait, fallback=fallback)
        self.flow_factory = flow_factory
        self.batch_func = batch_func
        self._configure(
            concurrent,
            config,
            results_key=results_key,
            count_key=count_key,
            batch_size=batch_size,
            concurrency=concurrency,
            fail_fast=fail_fast,
            executor=executor,
        )

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        """The inputs of every iteration: ``batch_func(ctx, shared)``, checked."""
        inputs = self.batch_func(ctx, shared)
        if inputs is None:
            inputs = []
        if isinstance(inputs, Mapping) or not isinstance(inputs, (list, tuple)):
            raise TypeError(f"batch_func of {self.name!r} must return a list of mappings, not {type(inputs).__name__}")
        for index, entry in enumerate(inputs):
            if not isinstance(entry, Mapping):
                raise TypeError(
                    f"batch_func of {self.name!r} returned a {type(entry).__name__} at index {index}; "
                    "each entry must be a mapping of inputs"
                )
        items = BatchItems(inputs)
        items.shared = shared
        return items

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        """Run every iteration; returns their final stores (a list with ``.errors``)."""
        return _BatchRun(self, ctx, prep_result).execute()

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        """Write ``batch_count`` and ``batch_results``; raise ``BatchError`` if any failed."""
        if exec_result is None:
            exec_result = BatchResults([None] * len(prep_result))
            exec_result.errors = [None] * len(prep_result)
        exec_result.done = len(prep_result)
        self._write(shared, exec_result)
        self._raise_failures(exec_result)
        return None

    def make_flow(self, index: int | None = None) -> Node:
        """A fresh flow from the factory, checked; errors name the batch and the item."""
        where = f"batch flow {self.name!r}" + (f" item #{index}" if index is not None else "")
        try:
            flow = self.flow_factory()
        except Exception as exc:
            raise FlytError(f"{where}: flow_factory raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(flow, Node):
            raise FlytError(f"{where}: flow_factory must return a Flow or Node, not {type(flow).__name__}")
        return flow

    def _call_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        flow = self.make_flow(index)
        parent = items.shared
        store = SharedStore(parent.get_all())
        store.merge(items[index])
        store._watchers = parent._watchers  # an observed run sees the iteration's writes too
        if ctx._emit is None:
            drive(flow, ctx, store, _NO_TRANSITIONS)
        elif isinstance(flow, Flow):
            # The fresh flow adds no name of its own: its nodes sit under (..., batch, "#i").
            iteration = ctx._derive()
            iteration._path = (*ctx._path, f"#{index}")
            flow._orchestrate(iteration, store)
        else:
            drive_observed(flow, ctx, store, _NO_TRANSITIONS, (*ctx._path, f"#{index}"))
        return store.get_all()

    def _remote_call(self, ctx: Context, items: BatchItems, index: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        initial = items.shared.get_all()
        initial.update(items[index])
        return run_detached_iteration, (self.flow_factory, initial)


def run_detached_iteration(flow_factory: Callable[[], Node], initial: dict[str, Any]) -> dict[str, Any]:
    """One BatchFlow iteration away from the driving process (e.g. on a Dask worker)."""
    from .node import run

    flow = flow_factory()
    if not isinstance(flow, Node):
        raise FlytError(f"flow_factory must return a Flow or Node, not {type(flow).__name__}")
    store = SharedStore(initial)
    run(flow, store)
    return store.get_all()
