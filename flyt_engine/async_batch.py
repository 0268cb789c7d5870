"""Batches in a run on an event loop: items with async phases run as tasks on the loop.

``concurrent=True`` runs at most ``config.concurrency`` items at once (``0`` or less: no
bound): one task per item when they all fit (what ``asyncio.gather`` does), else that
many worker tasks pulling indices. ``fail_fast``, a failure of the batch itself and
cancellation cancel the tasks still running and wait for them, so when the batch returns
or raises none of its tasks is left. Retries, waits (awaited), fallbacks, events and the
results are ``BatchRun``'s own rules; only the scheduling differs.

A ``BatchNode`` whose ``process`` is a plain def runs as in a sync run (threads when
concurrent). A ``BatchFlow`` runs each iteration's flow awaited when the flow has async
phases, else as a sync run would (in a worker thread when concurrent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from time import monotonic
from typing import TYPE_CHECKING, Any

from .attempts import Next, after_failure
from .batch_run import BatchItems, BatchResults, BatchRun, Halt
from .context import Context, _fresh
from .errors import Cancelled, FlytError
from .events import BatchStarted, FallbackUsed
from .node import _NO_TRANSITIONS, TASK_CELL, Node, _WriterCell, needs_loop
from .store import SharedStore

if TYPE_CHECKING:
    from .batch import _BatchBase


async def run_batch_async(owner: _BatchBase, ctx: Context, items: BatchItems) -> BatchResults:
    """``owner.exec`` on the loop."""
    from .batch import BatchFlow

    if owner.config.executor is not None and (owner._async or isinstance(owner, BatchFlow)):
        raise FlytError(
            f"batch {owner.name!r} has async phases (or runs in an async run) and an executor: "
            "an executor runs plain functions; drop the executor (async items run as tasks) or write process as def"
        )
    if not isinstance(owner, BatchFlow) and "process" not in owner._async:
        if owner.offload:
            return await asyncio.to_thread(owner.exec, ctx, items)
        return owner.exec(ctx, items)  # plain process: as in a sync run
    return await AsyncBatchRun(owner, ctx, items).aexecute()


class AsyncBatchRun(BatchRun):
    """One execution of a batch on the loop."""

    def __init__(self, owner: _BatchBase, ctx: Context, items: BatchItems) -> None:
        super().__init__(owner, ctx, items)
        self.tasks: list[asyncio.Task[None]] = []
        self.process = getattr(owner, "process", None) if "process" in owner._async else None

    async def aexecute(self) -> BatchResults:
        signal = self.ctx._signal
        if self.emit is not None:
            self.emit((BatchStarted, self.header, monotonic(), self.total))
        cancelled: Cancelled | None = None
        self._prefill()
        try:
            if self.concurrent and self.total > 1:
                await self._concurrently()
            else:
                await self._in_order()
        except Cancelled as exc:
            cancelled = exc
        except asyncio.CancelledError:
            if signal.error is None:
                raise
            cancelled = _fresh(signal.error)
        return self.conclude(cancelled)

    def finish(self, index: int, result: Any, error: BaseException | None, started: float) -> None:
        super().finish(index, result, error, started)
        if self.stop:  # fail_fast: the other items stop now
            self._cancel_others()

    def halt(self, error: Cancelled) -> None:
        super().halt(error)
        self._cancel_others()

    def _cancel_others(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current and not task.done():
                task.cancel()

    # -- scheduling ------------------------------------------------------------------------
    async def _in_order(self) -> None:
        signal = self.ctx._signal
        for index in range(self.total):
            if signal.error is not None:
                raise _fresh(signal.error)
            if self.stop:
                return
            await self._item(index)

    async def _concurrently(self) -> None:
        signal = self.ctx._signal
        limit = self.config.concurrency
        loop = asyncio.get_running_loop()
        for chunk in self.chunks():
            if self.stop or signal.error is not None:
                break
            width = len(chunk) if limit <= 0 else min(limit, len(chunk))
            fast = self.emit is None and not self.config.fail_fast and self.process is not None
            if width == len(chunk) and fast:
                await self._bare_tasks(chunk, loop)
                continue
            if width == len(chunk):
                create = loop.create_task
                self.tasks = [create(self._task(index)) for index in chunk]
            else:
                indices = iter(chunk)
                self.tasks = [loop.create_task(self._worker(indices, fast)) for _ in range(width)]
            try:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            finally:
                await _cancel_and_wait(self.tasks)
            for task in self.tasks:  # an observer or gate that raised: not an item's failure
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            self.tasks = []
        if signal.error is not None:
            raise _fresh(signal.error)

    async def _bare_tasks(self, chunk: range, loop: asyncio.AbstractEventLoop) -> None:
        """The common case, kept lean (the gather floor is the bar): an async ``process``,
        unobserved, without ``fail_fast``, no bound. Each item's own coroutine is its task,
        and one callback per task does what ``gather`` would, plus the item's bookkeeping; a
        failed item's retries start from that callback, at once, in a task of their own."""
        process, ctx, items, results = self.process, self.ctx, self.items, self.results
        assert process is not None
        create = loop.create_task
        tasks = self.tasks = [create(process(ctx, items[index])) for index in chunk]
        self.started[chunk.start : chunk.stop] = b"\x01" * len(chunk)
        index_of = {task: index for task, index in zip(tasks, chunk, strict=True)}
        all_done = loop.create_future()
        pending = len(tasks)
        escaped: list[BaseException] = []  # not an item's failure (KeyboardInterrupt, say): raised after
        closing = False  # once the batch is over or cancelled, a failure starts no recovery

        def settled(task: asyncio.Task[Any]) -> None:
            nonlocal pending
            pending -= 1
            if not task.cancelled():
                error = task.exception()
                index = index_of.get(task)
                if index is None:  # a recovery: it recorded the item itself
                    if error is not None:
                        escaped.append(error)
                elif error is None:
                    results[index] = task.result()
                    self.finished[index] = 1
                elif not isinstance(error, Exception):
                    escaped.append(error)
                elif ctx._signal.error is None and not closing and not self.stop:
                    pending += 1
                    recovery = create(self._recovery(index, error))
                    tasks.append(recovery)
                    recovery.add_done_callback(settled)
            if pending == 0 and not all_done.done():
                all_done.set_result(None)

        for task in tasks:
            task.add_done_callback(settled)
        try:
            await all_done
        finally:
            closing = True
            await _cancel_and_wait(tasks)
            self.tasks = []
        if escaped:
            raise escaped[0]

    async def _recovery(self, index: int, error: Exception) -> None:
        """A failed item's retries and fallback (``_bare_tasks``); ``None`` when the batch stopped."""
        try:
            await self._arecover(index, error, 0.0)
        except (Cancelled, asyncio.CancelledError):
            return

    async def _worker(self, indices: Iterator[int], fast: bool) -> None:
        item_task = self._bare_task if fast else self._task
        for index in indices:
            if self.stop or self.ctx._signal.error is not None:
                return
            await item_task(index)

    async def _bare_task(self, index: int) -> None:
        """``_task`` for the common case, kept lean (the gather floor is the bar): an async
        ``process``, unobserved, without ``fail_fast``. Failures take the full path."""
        self.started[index] = 1
        try:
            self.results[index] = await self.process(self.ctx, self.items[index])  # type: ignore[misc]
            self.finished[index] = 1
        except Exception as exc:
            try:
                if self.ctx._signal.error is None:
                    await self._arecover(index, exc, 0.0)
            except (Cancelled, asyncio.CancelledError):
                return
        except asyncio.CancelledError:
            return

    async def _task(self, index: int) -> None:
        """Item ``index`` in a task of its own: its store writes are the batch's."""
        if self.stop or self.ctx._signal.error is not None:
            return
        if self.emit is not None:
            cell = _WriterCell()
            cell.header = self.header
            TASK_CELL.set(cell)
        try:
            await self._item(index)
        except (Cancelled, asyncio.CancelledError):
            return  # the batch was cancelled, halted or failed fast: conclude says which

    # -- one item ----------------------------------------------------------------------------
    async def _item(self, index: int) -> None:
        self.started[index] = 1
        began = monotonic()
        ctx = self.ctx
        try:
            if self.process is not None:
                result = await self.process(ctx, self.items[index])
            else:
                result = await self.owner._acall_item(ctx, self.items, index)  # type: ignore[attr-defined]
        except Exception as exc:
            if ctx._signal.error is not None:
                raise _fresh(ctx._signal.error) from None
            await self._arecover(index, exc, began)
        else:
            self.finish(index, result, None, began)

    async def _arecover(self, index: int, error: Exception, started: float) -> None:
        try:
            result = await self._aretry(index, error)
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

    async def _aretry(self, index: int, error: Exception) -> Any:
        """``_BatchBase._retry_item`` awaited: the same policy (``attempts.py``)."""
        owner, ctx, signal = self.owner, self.ctx, self.ctx._signal
        attempt = 1
        while True:
            step, max_attempts, wait = after_failure(owner, attempt, error, signal)
            if step is Next.STOP:
                if signal.error is None:
                    raise Halt(error)  # type: ignore[arg-type]
                raise error
            owner._report_failure(ctx, index, attempt, max_attempts, error, wait, self.emit)
            ctx.check()
            if step is Next.FALL_BACK:
                return await self._fallback(index, error)
            await ctx.asleep(wait)
            attempt += 1
            try:
                if self.process is not None:
                    return await self.process(ctx, self.items[index])
                return await owner._acall_item(ctx, self.items, index)  # type: ignore[attr-defined]
            except Exception as exc:
                error = exc

    async def _fallback(self, index: int, error: BaseException) -> Any:
        owner = self.owner
        result = owner.exec_fallback(self.items[index], error)
        if "exec_fallback" in owner._async:
            result = await result
        if self.emit is not None:
            path = (*self.ctx._path, f"#{index}")
            self.emit((FallbackUsed, (self.ctx._run_id, path, owner.name, id(owner)), monotonic(), error))
        return result


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel what still runs and wait until every task has ended (no orphans), even if
    this task is cancelled again meanwhile."""
    for task in tasks:
        if not task.done():
            task.cancel()
    pending = [task for task in tasks if not task.done()]
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            for task in pending:
                task.cancel()
        pending = [task for task in pending if not task.done()]


# -- BatchFlow iterations ------------------------------------------------------------------
async def acall_iteration(owner: Any, ctx: Context, items: BatchItems, index: int) -> Any:
    """``BatchFlow._call_item`` on the loop: a fresh flow on a fresh store."""
    from .batch import _iteration_data, _run_iteration

    flow = owner.make_flow(index)
    parent = items.shared
    store = SharedStore(_iteration_data(items, index))
    if parent is not None:
        store._watchers = parent._watchers
    if flow._async or (flow._composite and needs_loop(flow)):
        await arun_iteration(flow, ctx, store, index)
    elif owner.concurrent or owner.offload:
        await asyncio.to_thread(_run_iteration, flow, ctx, store, index)
    else:
        _run_iteration(flow, ctx, store, index)
    return store.get_all()


async def arun_iteration(flow: Node, ctx: Context, store: SharedStore, index: int) -> str:
    """``batch._run_iteration`` awaited: observed, the flow's nodes sit under ``#i``."""
    from .aio import adrive, adrive_observed
    from .flow import Flow

    if ctx._emit is None:
        return await adrive(flow, ctx, store, _NO_TRANSITIONS)
    iteration = ctx._derive()
    iteration._path = (*ctx._path, f"#{index}")
    if isinstance(flow, Flow):
        return await adrive(flow, iteration, store, _NO_TRANSITIONS)
    return await adrive_observed(flow, iteration, store, _NO_TRANSITIONS, iteration._path)
