"""Batches: BatchNode maps ``process`` over items; BatchFlow runs a fresh flow per input.

Both are nodes whose exec hands the items to ``batch_run.BatchRun`` (the scheduler:
sequential, threads, or any executor) and whose post writes the results in item order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from time import monotonic
from typing import Any

from .attempts import Next, after_failure
from .batch_run import BatchItems, BatchResults, BatchRun, Halt, _ItemCancelled
from .context import Context
from .errors import BatchError, FlytError, error_text
from .events import ExecFailed, FallbackUsed
from .flow import Flow
from .node import _NO_TRANSITIONS, Node, drive, drive_observed, needs_loop
from .phases import async_phases, check_phase, is_async
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


class _BatchBase(Node):
    """What BatchNode and BatchFlow share: configuration, per-item retries, results."""

    _composite = True
    _per_item_retries = True
    config: BatchConfig
    concurrent: bool
    _default_results_key = "results"
    _default_count_key: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own_post = cls.__dict__.get("post")
        if own_post is not None and callable(own_post) and not getattr(own_post, "_writes_results", False):
            cls.post = _results_first(own_post)  # type: ignore[method-assign]

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
        return BatchRun(self, ctx, prep_result).execute()

    exec._engine_exec = True  # type: ignore[attr-defined]  # aio.py: orchestrated by _aexec

    async def _aexec(self, ctx: Context, prep_result: Any) -> Any:
        """``exec`` in a run on an event loop (async_batch.py): items with async phases run
        as tasks on the loop; plain ones as ``exec`` runs them."""
        from .async_batch import run_batch_async

        if not isinstance(prep_result, BatchItems):
            prep_result = BatchItems(to_slice(prep_result))
        return await run_batch_async(self, ctx, prep_result)

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
        """Retry item ``index`` after a failed first attempt, then fall back; raise its error
        (``attempts.py`` decides, as for a node's exec)."""
        signal = ctx._signal
        attempt = 1
        while True:
            step, max_attempts, wait = after_failure(self, attempt, error, signal)
            if step is Next.STOP:
                if signal.error is None:  # the item ended the run: the whole batch stops
                    raise Halt(error)  # type: ignore[arg-type]
                raise error
            self._report_failure(ctx, index, attempt, max_attempts, error, wait, emit)
            ctx.check()  # a cancelled run neither retries nor falls back
            if step is Next.FALL_BACK:
                return self._fallback_item(ctx, items, index, error, emit)
            ctx.sleep(wait)
            attempt += 1
            try:
                return self._call_item(ctx, items, index)
            except Exception as exc:
                error = exc

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
            if gate.armed and (gate.nodes is None or self.name in gate.nodes):
                gate(record)

    # Results ----------------------------------------------------------------------------
    _count_all = False  # True: the count key counts every input (BatchFlow), else items finished
    _after: Callable[..., Any] | None = None  # a post= function: picks the action from the results

    def _write(self, shared: SharedStore, results: BatchResults, count: int | None = None) -> None:
        shared.set(self.results_key, list(results))
        if self.count_key:
            shared.set(self.count_key, results.done if count is None else count)

    def _settle_results(self, shared: SharedStore, prep_result: Any, exec_result: Any) -> BatchResults:
        """Write the results (and count) once, then raise ``BatchError`` if any item failed."""
        if not isinstance(exec_result, BatchResults):  # max_retries <= 0: nothing was attempted
            exec_result = self._empty_results(len(to_slice(prep_result)))
        if not exec_result.written:
            exec_result.written = True
            self._write(shared, exec_result, len(exec_result) if self._count_all else None)
        self._raise_failures(exec_result)
        return exec_result

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        """Write the results (and count), raise ``BatchError`` if any item failed; then a
        ``post=`` function, if one was given, picks the action from the results.

        A subclass's own ``post`` runs after the same writing and checking: it receives
        the items and the index-aligned results, and never runs when items failed."""
        exec_result = self._settle_results(shared, prep_result, exec_result)
        if self._after is not None:
            return self._after(ctx, shared, prep_result, exec_result)
        return None

    post._writes_results = True  # type: ignore[attr-defined]

    def _raise_failures(self, results: BatchResults) -> None:
        failed = results.failed
        if failed:
            unfinished = sum(1 for error in results.errors if isinstance(error, _ItemCancelled))
            message = f"{failed}/{len(results)} items failed"
            if unfinished:
                message += f", {unfinished} not run (fail_fast)"
            raise BatchError(message, list(results.errors), list(results), self.name)

    def _empty_results(self, count: int) -> BatchResults:
        """The results when exec did not run (``max_retries <= 0``): nothing attempted."""
        results = BatchResults([None] * count)
        results.errors = [None] * count
        return results


def _results_first(user_post: Callable[..., Any]) -> Callable[..., Any]:
    """A subclass's ``post``, preceded by writing the results and raising ``BatchError``
    when items failed (API.md: whatever ``post`` the subclass defines)."""
    if is_async(user_post):

        @functools.wraps(user_post)
        async def apost(self: _BatchBase, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
            exec_result = self._settle_results(shared, prep_result, exec_result)
            items = prep_result if isinstance(prep_result, list) else to_slice(prep_result)
            return await user_post(self, ctx, shared, items, exec_result)

        apost._writes_results = True  # type: ignore[attr-defined]
        return apost

    @functools.wraps(user_post)
    def post(self: _BatchBase, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
        exec_result = self._settle_results(shared, prep_result, exec_result)
        items = prep_result if isinstance(prep_result, list) else to_slice(prep_result)
        return user_post(self, ctx, shared, items, exec_result)

    post._writes_results = True  # type: ignore[attr-defined]
    return post


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

    _phases = (*Node._phases, "process")

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
            label = node_kwargs.get("name") or getattr(process, "__name__", None) or "BatchNode"
            check_phase(f"batch node {label!r}", "process", process, method=False)
            self.process = process  # type: ignore[method-assign,assignment]
        elif type(self).process is BatchNode.process:
            raise TypeError("BatchNode needs a process function (or a subclass overriding process)")
        unknown = set(node_kwargs) - {"fallback", "max_retries", "wait", "name", "post", "offload"}
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
        self._async = async_phases(self, self._phases)
        if after is not None and is_async(after):  # post awaits the post= function
            self._async = self._async | {"post"}
        if "process" in self._async and (executor is not None or (config is not None and config.executor)):
            raise TypeError(
                f"batch node {self.name!r}: process is an async def, which an executor (Dask, a pool) cannot run; "
                "drop the executor (async items run as tasks on the loop) or write process as a plain def"
            )
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
        value = shared.get(key)
        items = BatchItems(value) if isinstance(value, list) else BatchItems(to_slice(value))
        items.shared = shared
        return items

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
    _phases = (*Node._phases, "batch_func")

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
        offload: bool | None = None,
    ) -> None:
        if not callable(flow_factory):
            raise TypeError(f"BatchFlow flow_factory must be callable, not {type(flow_factory).__name__}")
        if not callable(batch_func):
            raise TypeError(f"BatchFlow batch_func must be callable, not {type(batch_func).__name__}")
        check_phase(f"batch flow {name or type(self).__name__!r}", "batch_func", batch_func, method=False)
        super().__init__(name=name, max_retries=max_retries, wait=wait, fallback=fallback, offload=offload)
        self.flow_factory = flow_factory
        self.batch_func = batch_func
        self._async = async_phases(self, self._phases)
        if "batch_func" in self._async:  # prep awaits it
            self._async = self._async | {"prep"}
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
        """The inputs of every iteration: ``batch_func(ctx, shared)``, checked (awaited
        when it is an ``async def``)."""
        inputs = self.batch_func(ctx, shared)
        if "batch_func" in self._async:
            return self._inputs_awaited(inputs, shared)
        return self._checked_inputs(inputs, shared)

    async def _inputs_awaited(self, inputs: Any, shared: SharedStore) -> BatchItems:
        return self._checked_inputs(await inputs, shared)

    def _checked_inputs(self, inputs: Any, shared: SharedStore) -> BatchItems:
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

    _count_all = True

    def make_flow(self, index: int | None = None) -> Node:
        """A fresh flow from the factory, checked; errors name the batch and the item."""
        return _make_flow(self.flow_factory, self.name, index)

    def _call_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        flow = self.make_flow(index)
        parent = items.shared
        store = SharedStore(_iteration_data(items, index))
        if parent is not None:
            store._watchers = parent._watchers  # an observed run sees the iteration's writes too
        _run_iteration(flow, ctx, store, index)
        return store.get_all()

    async def _acall_item(self, ctx: Context, items: BatchItems, index: int) -> Any:
        from .async_batch import acall_iteration

        return await acall_iteration(self, ctx, items, index)

    def _remote_call(
        self, ctx: Context, items: BatchItems, index: int, local: bool
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if local:  # same process: the live context, events and store watchers apply
            return self._call_item, (ctx, items, index)
        return run_detached_iteration, (self.flow_factory, _iteration_data(items, index), ctx, self.name, index)


def _iteration_data(items: BatchItems, index: int) -> dict[str, Any]:
    """An iteration's starting store: a shallow copy of the parent plus its inputs (inputs win)."""
    initial = items.shared.get_all() if items.shared is not None else {}
    initial.update(items[index])
    return initial


def _make_flow(flow_factory: Callable[[], Node], batch_name: str, index: int | None) -> Node:
    where = f"batch flow {batch_name!r}" + (f" item #{index}" if index is not None else "")
    try:
        flow = flow_factory()
    except Exception as exc:
        raise FlytError(f"{where}: flow_factory raised {error_text(exc)}") from exc
    if not isinstance(flow, Node):
        raise FlytError(f"{where}: flow_factory must return a Flow (or a Node), not {type(flow).__name__}")
    return flow


def _run_iteration(flow: Node, ctx: Context, store: SharedStore, index: int) -> str:
    """Run one iteration's flow and return its action; observed, its nodes sit under
    (..., batch, "#i", node)."""
    if flow._async or (flow._composite and needs_loop(flow)):  # async phases: a loop of its own
        from .aio import run_on_loop_with
        from .async_batch import arun_iteration

        return run_on_loop_with(flow, arun_iteration(flow, ctx, store, index))
    if ctx._emit is None:
        return drive(flow, ctx, store, _NO_TRANSITIONS)
    iteration = ctx._derive()
    iteration._path = (*ctx._path, f"#{index}")
    if isinstance(flow, Flow):
        # The fresh flow adds no name of its own: its phases run unobserved, and its
        # orchestration reports its nodes under the iteration's path.
        return drive(flow, iteration, store, _NO_TRANSITIONS)
    return drive_observed(flow, iteration, store, _NO_TRANSITIONS, iteration._path)


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
