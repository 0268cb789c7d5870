"""One execution of a batch: the scheduler shared by BatchNode and BatchFlow.

``BatchRun`` schedules the items in one of three ways:
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

import functools
import heapq
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from queue import Empty, SimpleQueue
from time import monotonic
from typing import TYPE_CHECKING, Any

from .attempts import Next, after_failure
from .context import _NEVER, Context, _fresh
from .errors import Cancelled, FlytError, WorkerLost, error_text
from .events import BatchFinished, BatchItemFinished, BatchStarted
from .store import SharedStore

if TYPE_CHECKING:
    from .batch import _BatchBase


class BatchItems(list):
    """The items a batch prepared (a plain list) plus the store their results go to."""

    shared: SharedStore | None = None


class BatchResults(list):
    """Index-aligned results (a plain list) plus ``errors`` (``None`` where an item succeeded)."""

    errors: list[BaseException | None]
    done: int = 0
    failed: int = 0
    written: bool = False  # the batch's post wrote them to the store already


class _ItemCancelled(Cancelled):
    """An item that did not finish: the batch was cancelled, or ``fail_fast`` skipped it."""


class Halt(Exception):
    """An item raised a ``Cancelled`` that ends the run (``attempts.stops_run``) while the
    batch's context is live: the batch stops as if cancelled and raises ``error``."""

    def __init__(self, error: Cancelled) -> None:
        super().__init__(error)
        self.error = error


class BatchRun:
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
        self.stop = False  # fail_fast tripped, or an item halted the batch
        self.halted: Cancelled | None = None  # the Cancelled an item ended the run with
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
            if ctx._signal.error is None and exc is not self.halted:  # pragma: no cover
                raise
            cancelled = exc
        return self.conclude(cancelled)

    def conclude(self, cancelled: Cancelled | None) -> BatchResults:
        """After the items ran (or stopped): mark the unfinished, report, return the results;
        cancelled, write what finished and raise."""
        owner = self.owner
        ctx = self.ctx
        if cancelled is None and ctx._signal.error is not None:
            cancelled = _fresh(ctx._signal.error)
        if cancelled is None and self.halted is not None:
            cancelled = self.halted
        results = self.results
        if len(results) < self.total:  # the hot loop stopped early
            results.extend([None] * (self.total - len(results)))
        self.done = self.finished.count(1)
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
        for index in range(self.total):
            if signal.error is not None:
                raise _fresh(signal.error)
            if self.stop:
                return
            self._run_item(index)

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
                    except Cancelled:  # cancelled while retrying, or the item halted the batch
                        pass
                self._hot_stopped(index)
                raise self.halted if self.halted is not None else _fresh(signal.error)
        if signal.error is not None:
            self._hot_stopped(len(results))
            raise _fresh(signal.error)
        self.finished[:] = b"\x01" * self.total

    def _run_item(self, index: int, mark: bool = True) -> None:
        """Run item ``index`` once here, then recover or finish it; raises ``Cancelled``
        when the batch's context was cancelled meanwhile (the caller decides what stops)."""
        if mark:
            self.started[index] = 1
        began = monotonic()
        try:
            result = self.owner._call_item(self.ctx, self.items, index)
        except Exception as exc:
            if self.ctx._signal.error is not None:
                raise _fresh(self.ctx._signal.error)
            self._recover(index, exc, began)
        else:
            self.finish(index, result, None, began)

    def _hot_stopped(self, upto: int) -> None:
        """Cancelled in the hot loop: items before ``upto`` finished (failures were counted)."""
        self.finished[:upto] = self.started[:upto] = b"\x01" * upto

    def _recover(self, index: int, error: Exception, started: float) -> None:
        """Retries, waits and the fallback of one item after its first failed attempt."""
        try:
            result = self.owner._retry_item(self.ctx, self.items, index, error, self.emit)
        except Halt as halt:
            self.halt(halt.error)
            raise halt.error from None
        except Exception as exc:
            if self.ctx._signal.error is not None:
                if isinstance(exc, Cancelled):
                    raise
                raise _fresh(self.ctx._signal.error) from exc
            self.finish(index, None, exc, started)
        else:
            self.finish(index, result, None, started)

    def halt(self, error: Cancelled) -> None:
        """An item ended the run: schedule nothing more; ``execute`` raises ``error``."""
        with self.lock:
            if self.halted is None:
                self.halted = error
            self.stop = True

    # -- concurrent, on threads ------------------------------------------------------------
    def run_on_threads(self) -> None:
        limit = max(1, self.config.concurrency)
        ctx = self.ctx
        signal = ctx._signal
        started = self.started
        pool = ThreadPoolExecutor(min(limit, self.total), thread_name_prefix=f"flyt-{self.name}")
        all_returned = False
        try:
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
                        try:
                            self._run_item(index, mark=False)
                        except Cancelled:
                            return

                workers = [pool.submit(worker) for _ in range(min(limit, len(chunk)))]
                for future in workers:
                    future.result()
            all_returned = True
        finally:
            # Once every worker returned, its thread is idle and ends by itself: joining
            # them one by one (64 wake-ups) would only delay the batch's return.
            pool.shutdown(wait=not all_returned)
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
            future.add_done_callback(functools.partial(_queue_outcome, done_queue, index, attempt, first))

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
        step, max_attempts, wait = after_failure(owner, attempt, error, self.ctx._signal)
        if step is Next.STOP:
            self.halt(error)  # type: ignore[arg-type]  # STOP is only ever a Cancelled
            return
        if step is Next.RETRY:
            owner._report_failure(self.ctx, index, attempt, max_attempts, error, wait, self.emit)
            heapq.heappush(retries, (monotonic() + wait, index, attempt + 1, first))
            return
        self._give_up(index, attempt, error, first, max_attempts)

    def _give_up(
        self, index: int, attempt: int, error: BaseException, first: float, max_attempts: int | None = None
    ) -> None:
        """The last attempt failed: report it, call the fallback, finish the item."""
        owner = self.owner
        if max_attempts is None:
            max_attempts = max(attempt, owner.get_max_retries())
        owner._report_failure(self.ctx, index, attempt, max_attempts, error, 0.0, self.emit)
        try:
            result = owner._fallback_item(self.ctx, self.items, index, error, self.emit)
        except Exception as exc:
            self.finish(index, None, exc, first)
        else:
            self.finish(index, result, None, first)

    def _lost(self, index: int, error: BaseException) -> WorkerLost:
        lost = WorkerLost(f"batch {self.name!r} item #{index}: {error_text(error)}")
        lost.__cause__ = error.__cause__ if isinstance(error, WorkerLost) and error.__cause__ else error
        return lost

    def _submit_error(self, index: int, error: BaseException) -> BaseException:
        if isinstance(error, BrokenExecutor):
            return self._lost(index, error)
        failure = FlytError(
            f"batch {self.name!r} item #{index}: could not submit it to the executor: {error_text(error)}"
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


def _queue_outcome(
    done_queue: SimpleQueue[tuple[int, int, float, Future[Any]]],
    index: int,
    attempt: int,
    first: float,
    future: Future[Any],
) -> None:
    """A future's done-callback: hand the finished attempt to the scheduling thread."""
    done_queue.put((index, attempt, first, future))


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
