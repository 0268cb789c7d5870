"""Batches: BatchNode maps ``process`` over items; BatchFlow runs a fresh flow per input.

Both share ``_BatchRun``, which schedules items in one of three ways:
- sequentially, in a loop kept as bare as a hand-written one (the hot path);
- concurrently on threads: ``min(concurrency, chunk)`` workers pull item indices, so no
  Future is made per item and a free worker starts the next item at once;
- on any ``concurrent.futures.Executor`` (``BatchConfig.executor``, e.g. Dask): a sliding
  window of single attempts, with retries, waits, fallbacks and events kept in the driving
  thread, so the store and the observers never leave this process.

Cancellation is the run's context being cancelled. An item that raises ``Cancelled`` while
the batch's context is live (say, its own ``with_timeout`` expired) has merely failed.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from queue import Empty, SimpleQueue
from time import monotonic
from typing import Any

from .context import _NEVER, Context, _fresh
from .errors import BatchError, Cancelled, FlytError, WorkerLost
from .events import BatchFinished, BatchItemFinished, BatchStarted, ExecFailed, FallbackUsed, materialize
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
        for field in ("items_key", "results_key", "count_key"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"BatchConfig.{field} must be a str or None, not {type(value).__name__}")
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise TypeError(
                f"BatchConfig.executor must be a concurrent.futures.Executor, not {type(self.executor).__name__}"
            )


class BatchItems(list):
    """The items a batch prepared (a plain list) plus the store their results go to."""

    shared: SharedStore | None = None


class BatchResults(list):
    """Index-aligned results (a plain list) plus ``errors`` (``None`` where an item succeeded)."""

    errors: list[BaseException | None]
    done: int = 0
    failed: int = 0


class _ItemCancelled(Cancelled):
    """An item that did not finish: the batch was cancelled, or ``fail_fast`` skipped it."""


class _BatchRun:
    """One execution of a batch: schedules the items and collects results and errors."""

    def __init__(self, owner: _BatchBase, ctx: Context, items: BatchItems) -> None:
        self.owner = owner
        self.ctx = ctx
        self.items = items
        self.total = total = len(items)
        self.concurrent = owner.concurrent
        self.config = owner.config
        self.results = BatchResults()  # filled by the mode that runs (see _prefill)
        self.errors: list[BaseException | None] = [None] * total
        self.started = bytearray(total)  # 1: the item began (concurrent and slow sequential paths)
        self.finished = bytearray(total)  # 1: the item finished, ok or failed
        self.failed = 0
        self.done = 0
        self.stop = False  # fail_fast tripped
        self.lock = threading.Lock()
        self.emit = ctx._emit
        self.path = ctx._path
        self.name = owner.name
        self.nid = id(owner)
        self.header = (ctx._run_id, self.path, self.name, self.nid)  # shared by its records

    # -- bookkeeping shared by every mode ------------------------------------------------
    def _prefill(self) -> None:
        self.results.extend([None] * self.total)

    def finish(self, index: int, result: Any, error: BaseException | None, started: float) -> None:
        """Record item ``index``'s outcome and report it."""
        with self.lock:
            self.done += 1
            self.finished[index] = 1
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
                (
                    BatchItemFinished,
                    self.header,
                    now,
                    index,
                    error is None,
                    error,
                    now - started,
                )
            )

    def chunks(self) -> list[range]:
        size = self.config.batch_size
        if size <= 0 or size >= self.total:
            return [range(self.total)]
        return [range(start, min(start + size, self.total)) for start in range(0, self.total, size)]

    def execute(self) -> BatchResults:
        owner = self.owner
        ctx = self.ctx
        if self.emit is not None:
            self.emit((BatchStarted, self.header, monotonic(), self.total))
        cancelled: Cancelled | None = None
        try:
            if self.config.executor is not None:
                self._prefill()
                self.run_on_executor(self.config.executor)
            elif self.concurrent and self.total > 1:
                self._prefill()
                self.run_on_threads()
            else:
                self.run_sequential()
        except Cancelled as exc:
            if ctx._signal.error is None:  # pragma: no cover - every mode re-raises only the context's
                raise
            cancelled = exc
        if cancelled is None and ctx._signal.error is not None:
            cancelled = _fresh(ctx._signal.error)
        results = self.results
        if len(results) < self.total:  # the hot loop stopped early
            results.extend([None] * (self.total - len(results)))
        if cancelled is not None or self.stop:
            self._mark_unfinished(cancelled is not None)
        if self.emit is not None:
            self.emit((BatchFinished, self.header, monotonic(), self.done, self.failed))
        results.errors = self.errors
        results.done = self.done
        results.failed = self.failed
        if cancelled is not None:
            if self.items.shared is not None:
                owner._write(self.items.shared, results)
            cancelled.results = results  # type: ignore[attr-defined]
            cancelled.errors = self.errors  # type: ignore[attr-defined]
            raise cancelled
        return results

    def _mark_unfinished(self, cancelled: bool) -> None:
        """Give every item that did not finish a ``Cancelled`` error saying why."""
        errors = self.errors
        for index in range(self.total):
            if self.finished[index] or errors[index] is not None:
                continue
            if self.started[index]:
                why = "was cancelled while running" if cancelled else "did not finish"
            elif cancelled:
                why = "was cancelled before it started"
            else:
                why = "was not started: an earlier item failed (fail_fast)"
            errors[index] = _ItemCancelled(f"batch {self.name!r} item #{index} {why}")

    # -- sequential ------------------------------------------------------------------------
    def run_sequential(self) -> None:
        process = self.owner._item_function()
        if process is not None and self.emit is None and not self.config.fail_fast:
            self._run_hot(process)
            return
        self._prefill()
        ctx = self.ctx
        signal = ctx._signal
        call = self.owner._call_item
        items = self.items
        started = self.started
        for index in range(self.total):
            if signal.error is not None:
                raise _fresh(signal.error)
            if self.stop:
                return
            started[index] = 1
            began = monotonic()
            try:
                result = call(ctx, items, index)
            except Exception as exc:
                if signal.error is not None:
                    raise _fresh(signal.error)
                self._recover(index, exc, began)
            else:
                self.finish(index, result, None, began)

    def _run_hot(self, process: Callable[[Context, Any], Any]) -> None:
        """BatchNode, unobserved, no fail_fast: append results as fast as Python loops.

        Only failures leave the loop (to retry and fall back), then it resumes at the next item.
        """
        ctx = self.ctx
        signal = ctx._signal
        results = self.results
        append = results.append
        remaining = iter(self.items)
        cancellable = signal is not _NEVER
        while True:
            try:
                if cancellable:
                    for item in remaining:
                        if signal.error is not None:
                            break
                        append(process(ctx, item))
                else:
                    for item in remaining:
                        append(process(ctx, item))
                break
            except Exception as exc:
                index = len(results)
                append(None)
                self.started[index] = 1
                if signal.error is None:
                    try:
                        self._recover(index, exc, monotonic())
                        continue
                    except Cancelled:  # cancelled while retrying
                        pass
                self._hot_stopped(index)
                raise _fresh(signal.error)
        if signal.error is not None:
            self._hot_stopped(len(results))
            raise _fresh(signal.error)
        self.done = self.total

    def _hot_stopped(self, upto: int) -> None:
        """Cancelled in the hot loop: items before ``upto`` finished (failures were counted)."""
        for index in range(upto):
            if not self.finished[index]:
                self.finished[index] = self.started[index] = 1
                self.done += 1

    def _recover(self, index: int, error: Exception, started: float) -> None:
        """Retries, waits and the fallback of one item after its first failed attempt."""
        try:
            result = self.owner._retry_item(self.ctx, self.items, index, error, self.emit)
        except Exception as exc:
            if self.ctx._signal.error is not None:
                if isinstance(exc, Cancelled):
                    raise
                raise _fresh(self.ctx._signal.error) from exc
            self.finish(index, None, exc, started)
        else:
            self.finish(index, result, None, started)

    # -- concurrent, on threads ------------------------------------------------------------
    def run_on_threads(self) -> None:
        limit = max(1, self.config.concurrency)
        ctx = self.ctx
        signal = ctx._signal
        call = self.owner._call_item
        items = self.items
        started = self.started
        with ThreadPoolExecutor(min(limit, self.total), thread_name_prefix=f"flyt-{self.name}") as pool:
            for chunk in self.chunks():
                if self.stop or signal.error is not None:
                    break
                indices = iter(chunk)
                take = threading.Lock()

                def worker(indices: Any = indices, take: threading.Lock = take) -> None:
                    while True:
                        if self.stop or signal.error is not None:
                            return
                        with take:
                            index = next(indices, None)
                            if index is None:
                                return
                            started[index] = 1
                        began = monotonic()
                        try:
                            result = call(ctx, items, index)
                        except Exception as exc:
                            if signal.error is not None:
                                return
                            try:
                                self._recover(index, exc, began)
                            except Cancelled:
                                return
                        else:
                            self.finish(index, result, None, began)

                workers = [pool.submit(worker) for _ in range(min(limit, len(chunk)))]
                for future in workers:
                    future.result()
        if signal.error is not None:
            raise _fresh(signal.error)

    # -- concurrent, on any executor ---------------------------------------------------------
    def run_on_executor(self, executor: Executor) -> None:
        """A sliding window of single attempts on ``executor``; the rest stays here.

        Retries wait in a heap ordered by due time, so a waiting item never holds a slot.
        ``fail_fast`` stops new items but lets the ones in flight finish; cancellation
        cancels what is in flight and keeps the results that already came back.

        Two optional executor methods make remote executors fast (``flyt_engine.dask`` has
        both): ``submit_batch(calls)`` submits a refill in one go, and ``slots()`` says how
        many calls the executor runs at once; when ``concurrency`` is at least that, the
        executor's own workers keep the bound and the whole chunk is handed over at once
        (not under ``fail_fast``, which must hold back the items not yet started).
        """
        ctx = self.ctx
        limit = max(1, self.config.concurrency) if self.concurrent else 1
        if self.concurrent and not self.config.fail_fast and _runs_at_most(executor, limit):
            limit = self.total
        signal = ctx._signal
        local = isinstance(executor, ThreadPoolExecutor)
        submit_batch = getattr(executor, "submit_batch", None)
        done_queue: SimpleQueue[tuple[int, int, float, Future[Any]]] = SimpleQueue()
        in_flight: dict[Future[Any], tuple[int, float]] = {}
        try:
            for chunk in self.chunks():
                pending = deque(chunk)
                retries: list[tuple[float, int, int, float]] = []  # (due, index, attempt, first start)
                while pending or retries or in_flight:
                    if signal.error is not None:
                        raise _fresh(signal.error)
                    if self.stop:
                        pending.clear()
                    now = monotonic()
                    batch: list[tuple[int, int, float]] = []
                    while len(in_flight) + len(batch) < limit:
                        if retries and retries[0][0] <= now:
                            _, index, attempt, first = heapq.heappop(retries)
                        elif pending:
                            index, attempt, first = pending.popleft(), 1, now
                        else:
                            break
                        batch.append((index, attempt, first))
                    if batch:
                        self._submit(executor, submit_batch, batch, local, in_flight, done_queue)
                    if not in_flight:
                        if retries:
                            signal.wait(max(0.0, retries[0][0] - monotonic()))
                        continue
                    timeout = 0.05
                    if retries:
                        timeout = min(timeout, max(0.0, retries[0][0] - monotonic()))
                    try:
                        outcome = done_queue.get(timeout=timeout)
                    except Empty:
                        continue
                    while True:  # settle everything that came back, then refill in one go
                        index, attempt, first, future = outcome
                        del in_flight[future]
                        self._settle(index, attempt, first, future, retries)
                        try:
                            outcome = done_queue.get_nowait()
                        except Empty:
                            break
                if self.stop:
                    return
        finally:
            if in_flight:  # cancelled (or an observer raised): keep what came back, drop the rest
                self._abandon(in_flight)

    def _submit(
        self,
        executor: Executor,
        submit_batch: Callable[..., list[Future[Any]]] | None,
        batch: list[tuple[int, int, float]],
        local: bool,
        in_flight: dict[Future[Any], tuple[int, float]],
        done_queue: SimpleQueue[tuple[int, int, float, Future[Any]]],
    ) -> None:
        """Submit one attempt of each ``(index, attempt, first start)``; a call the executor
        refuses fails that item's attempt for good (a refusal is not worth retrying)."""
        owner = self.owner
        calls = []
        for index, _, _ in batch:
            self.started[index] = 1
            calls.append(owner._remote_call(self.ctx, self.items, index, local))
        futures: list[Future[Any] | BaseException] | None = None
        if submit_batch is not None and len(batch) > 1:
            try:
                futures = list(submit_batch(calls))
            except Exception:  # find out which call it was: one by one
                futures = None
        if futures is None or len(futures) != len(batch):
            futures = []
            for fn, args in calls:
                try:
                    futures.append(executor.submit(fn, *args))
                except Exception as exc:  # shut down, broken, or the item cannot be pickled
                    futures.append(exc)
        for (index, attempt, first), future in zip(batch, futures, strict=True):
            if isinstance(future, BaseException):
                self._give_up(index, attempt, self._submit_error(index, future), first)
                continue
            in_flight[future] = (index, first)
            future.add_done_callback(lambda f, i=index, a=attempt, t=first: done_queue.put((i, a, t, f)))

    def _settle(
        self, index: int, attempt: int, first: float, future: Future[Any], retries: list[tuple[float, int, int, float]]
    ) -> None:
        """One attempt of item ``index`` came back: finish it, schedule a retry, or fall back."""
        if future.cancelled():
            error: BaseException = WorkerLost(f"batch {self.name!r} item #{index}: the executor cancelled it")
        else:
            raised = future.exception()
            if raised is None:
                self.finish(index, future.result(), None, first)
                return
            error = self._lost(index, raised) if isinstance(raised, (WorkerLost, BrokenExecutor)) else raised
        if self.ctx._signal.error is not None:
            return
        owner = self.owner
        max_attempts = owner.get_max_retries()
        if attempt < max_attempts:
            wait = owner.get_wait()
            owner._report_failure(self.ctx, index, attempt, max_attempts, error, wait, self.emit)
            heapq.heappush(retries, (monotonic() + wait, index, attempt + 1, first))
            return
        self._give_up(index, attempt, error, first)

    def _give_up(self, index: int, attempt: int, error: BaseException, first: float) -> None:
        """The last attempt failed: report it, call the fallback, finish the item."""
        owner = self.owner
        owner._report_failure(self.ctx, index, attempt, max(attempt, owner.get_max_retries()), error, 0.0, self.emit)
        try:
            result = owner._fallback_item(self.ctx, self.items, index, error, self.emit)
        except Exception as exc:
            self.finish(index, None, exc, first)
        else:
            self.finish(index, result, None, first)

    def _lost(self, index: int, error: BaseException) -> WorkerLost:
        lost = WorkerLost(f"batch {self.name!r} item #{index}: {str(error) or type(error).__name__}")
        lost.__cause__ = error.__cause__ if isinstance(error, WorkerLost) and error.__cause__ else error
        return lost

    def _submit_error(self, index: int, error: Exception) -> BaseException:
        if isinstance(error, BrokenExecutor):
            return self._lost(index, error)
        failure = FlytError(
            f"batch {self.name!r} item #{index}: could not submit it to the executor: {type(error).__name__}: {error}"
        )
        failure.__cause__ = error
        return failure

    def _abandon(self, in_flight: dict[Future[Any], tuple[int, float]]) -> None:
        """Cancel what is in flight, keeping the results that already came back. Attempts
        that cannot be cancelled (they run on threads of this process, which see the
        cancelled context, or in a local process) are waited for."""
        for future, (index, first) in in_flight.items():
            if future.cancel():
                continue
            try:
                error = future.exception()
            except BaseException:  # cancelled meanwhile: nothing came back
                continue
            if error is None:
                self.finish(index, future.result(), None, first)


def _runs_at_most(executor: Executor, limit: int) -> bool:
    """Whether ``executor`` says (through an optional ``slots()``) that it never runs more
    than ``limit`` calls at once."""
    slots = getattr(executor, "slots", None)
    if not callable(slots):
        return False
    try:
        capacity = int(slots())
    except Exception:
        return False
    return 0 < capacity <= limit


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

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to run items on another process) without the executor, which stays here."""
        state = self.__dict__.copy()
        config = state.get("config")
        if isinstance(config, BatchConfig) and config.executor is not None:
            state["config"] = replace(config, executor=None)
        return state

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        """Run every item; returns the results (a list with ``.errors``, ``.done``, ``.failed``)."""
        if not isinstance(prep_result, BatchItems):  # a subclass's own prep returned plain items
            items = BatchItems(to_slice(prep_result))
            prep_result = items
        return _BatchRun(self, ctx, prep_result).execute()

    # Per item ---------------------------------------------------------------------------
    def _item_function(self) -> Callable[[Context, Any], Any] | None:
        """``fn(ctx, item)`` for the sequential hot loop, or ``None`` to go item by item."""
        return None

    def _call_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        """Run item ``index`` once, here, and return its result."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _remote_call(
        self, ctx: Context, items: BatchItems, index: int, local: bool
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """What an executor runs for item ``index``: a function and its arguments, picklable
        unless ``local`` (the executor runs it on a thread of this process)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _retry_item(self, ctx: Context, items: BatchItems, index: int, error: Exception, emit: Any) -> Any:
        """Retry item ``index`` after a failed first attempt, then fall back; raise its error."""
        signal = ctx._signal
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
            except Exception as exc:
                if signal.error is not None:
                    raise _fresh(signal.error) from exc
                error = exc
        self._report_failure(ctx, index, attempt, max(attempt, max_attempts), error, 0.0, emit)
        ctx.check()  # a cancelled run never falls back
        return self._fallback_item(ctx, items, index, error, emit)

    def _fallback_item(self, ctx: Context, items: BatchItems, index: int, error: BaseException, emit: Any) -> Any:
        result = self.exec_fallback(items[index], error)
        if emit is not None:
            emit((FallbackUsed, (ctx._run_id, (*ctx._path, f"#{index}"), self.name, id(self)), monotonic(), error))
        return result

    def _report_failure(
        self, ctx: Context, index: int, attempt: int, max_attempts: int, error: BaseException, wait: float, emit: Any
    ) -> None:
        if emit is not None:
            path = (*ctx._path, f"#{index}")
            record = (
                ExecFailed,
                (ctx._run_id, path, self.name, id(self)),
                monotonic(),
                attempt,
                max_attempts,
                error,
                wait,
            )
            emit(record)
            gate = ctx._gate
            if gate.armed:
                gate(materialize(record))

    # Results ----------------------------------------------------------------------------
    def _write(self, shared: SharedStore, results: BatchResults) -> None:
        shared.set(self.results_key, list(results))
        if self.count_key:
            shared.set(self.count_key, results.done)

    def _raise_failures(self, results: BatchResults) -> None:
        failed = results.failed
        unfinished = sum(1 for error in results.errors if isinstance(error, _ItemCancelled)) if results.failed else 0
        if failed or unfinished:
            message = f"{failed}/{len(results)} items failed"
            if unfinished:
                message += f", {unfinished} not run (fail_fast)"
            raise BatchError(message, list(results.errors), list(results), self.name)

    def _empty_results(self, count: int) -> BatchResults:
        """The results when exec did not run (``max_retries <= 0``): nothing attempted."""
        results = BatchResults([None] * count)
        results.errors = [None] * count
        return results


class BatchNode(_BatchBase):
    """Runs ``process(ctx, item)`` for every item of ``shared[items_key]`` and writes the
    results, in item order, to ``shared[results_key]``.

    Sequential by default; ``concurrent=True`` runs up to ``config.concurrency`` items at
    once (chunk by chunk with ``batch_size``). ``max_retries``, ``wait`` and ``fallback``
    (``exec_fallback(item, error)``) apply per item. When items fail, the partial results
    are written, then ``BatchError`` is raised. Cancellation writes the finished results
    and raises ``Cancelled``. A ``post=`` function runs after the results are written, with
    the results as its ``exec_result``, and picks the action.
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
        after = node_kwargs.pop("post", None)
        if after is not None:
            if not callable(after):
                raise TypeError(f"BatchNode(post=...) must be callable, not {type(after).__name__}")
            self._after = after
        super().__init__(**node_kwargs)
        if node_kwargs.get("name") is None and process is not None and type(self) is BatchNode:
            self.name = getattr(process, "__name__", None) or "BatchNode"
            self._auto_name = True  # named after its function: the workbench may rename it
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

    _after: Callable[..., Any] | None = None

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

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        """Write results (and count), raise ``BatchError`` if any item failed; then the
        ``post=`` function, if one was given, picks the action from the results."""
        if exec_result is None:  # max_retries <= 0: nothing was attempted
            exec_result = self._empty_results(len(to_slice(prep_result)))
        self._write(shared, exec_result)
        self._raise_failures(exec_result)
        if self._after is not None:
            return self._after(ctx, shared, prep_result, exec_result)
        return None

    # Per item ---------------------------------------------------------------------------
    def _item_function(self) -> Callable[[Context, Any], Any] | None:
        return self.process

    def _call_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        return self.process(ctx, items[index])

    def _remote_call(
        self, ctx: Context, items: BatchItems, index: int, local: bool
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.process, (ctx, items[index])


class BatchFlow(_BatchBase):
    """Runs a fresh flow from ``flow_factory`` for each ``FlowInputs`` that
    ``batch_func(ctx, shared)`` returns, each on its own store: a shallow copy of the
    parent store merged with the inputs (inputs win). Children never write to the parent.

    Afterwards the parent store gets ``batch_count`` (iterations) and ``batch_results``
    (each iteration's final store as a dict, in input order; ``None`` where it failed).
    ``max_retries``, ``wait`` and ``fallback`` (``exec_fallback(inputs, error)``) apply
    per iteration; a retry runs a fresh flow on a fresh store.
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
                    "each entry must be a mapping of inputs (FlowInputs)"
                )
        items = BatchItems(inputs)
        items.shared = shared
        return items

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        """Write ``batch_count`` and ``batch_results``; raise ``BatchError`` if any failed."""
        count = len(prep_result) if isinstance(prep_result, list) else len(to_slice(prep_result))
        if exec_result is None:
            exec_result = self._empty_results(count)
        exec_result.done = count
        self._write(shared, exec_result)
        self._raise_failures(exec_result)
        return None

    def make_flow(self, index: int | None = None) -> Node:
        """A fresh flow from the factory, checked; errors name the batch and the item."""
        return _make_flow(self.flow_factory, self.name, index)

    def _call_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        flow = self.make_flow(index)
        parent = items.shared
        store = SharedStore(parent.get_all() if parent is not None else None)
        store.merge(items[index])
        if parent is not None:
            store._watchers = parent._watchers  # an observed run sees the iteration's writes too
        _run_iteration(flow, ctx, store, index)
        return store.get_all()

    def _remote_call(
        self, ctx: Context, items: BatchItems, index: int, local: bool
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if local:  # same process: the live context, events and store watchers apply
            return self._call_item, (ctx, items, index)
        initial = items.shared.get_all() if items.shared is not None else {}
        initial.update(items[index])
        return run_detached_iteration, (self.flow_factory, initial, ctx, self.name, index)


def _make_flow(flow_factory: Callable[[], Node], batch_name: str, index: int | None) -> Node:
    where = f"batch flow {batch_name!r}" + (f" item #{index}" if index is not None else "")
    try:
        flow = flow_factory()
    except Exception as exc:
        raise FlytError(f"{where}: flow_factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(flow, Node):
        raise FlytError(f"{where}: flow_factory must return a Flow (or a Node), not {type(flow).__name__}")
    return flow


def _run_iteration(flow: Node, ctx: Context, store: SharedStore, index: int) -> None:
    """Run one iteration's flow; observed, its nodes sit under (..., batch, "#i", node)."""
    if ctx._emit is None:
        drive(flow, ctx, store, _NO_TRANSITIONS)
        return
    iteration = ctx._derive()
    iteration._path = (*ctx._path, f"#{index}")
    if isinstance(flow, Flow):
        # The fresh flow adds no name of its own: its phases run unobserved, and its
        # orchestration reports its nodes under the iteration's path.
        drive(flow, iteration, store, _NO_TRANSITIONS)
    else:
        drive_observed(flow, iteration, store, _NO_TRANSITIONS, iteration._path)


def run_detached_iteration(
    flow_factory: Callable[[], Node],
    initial: dict[str, Any],
    ctx: Context | None = None,
    batch_name: str = "BatchFlow",
    index: int | None = None,
) -> dict[str, Any]:
    """One BatchFlow iteration away from the driving process (e.g. on a Dask worker).

    ``ctx`` arrives detached (values only); the final store comes back as a dict.
    """
    flow = _make_flow(flow_factory, batch_name, index)
    store = SharedStore(initial)
    _run_iteration(flow, ctx if ctx is not None else Context.background(), store, index or 0)
    return store.get_all()
