"""Runs with ``async def`` phases: ``arun``, and ``run`` on a loop of its own.

The drivers here mirror ``node.drive`` and ``node.drive_observed`` rule for rule; they
await the phases that are ``async def`` (known since the node was built, see
``phases.async_phases``) and call the others inline, or in a worker thread for nodes with
``offload``. Flows and batches orchestrate through their ``_aexec``. Sync graphs never
come here: ``run`` sends a graph here only when it has an async phase.

Cancelling the context cancels the run's task, so a phase awaiting anything sees
``asyncio.CancelledError`` at once; the run raises the context's ``Cancelled``.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Coroutine
from time import monotonic
from typing import Any

from .attempts import Next, after_failure, stops_run
from .context import Context, _fresh, _Signal
from .errors import NodeError
from .events import (
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
)
from .node import (
    _ALREADY_DESCRIBED,
    _BACKGROUND,
    _NO_TRANSITIONS,
    _PASS_THROUGH,
    TASK_CELL,
    Node,
    _check_action,
    _frame,
    _WriterCell,
    new_run_id,
    store_reporter,
)
from .phases import AwaitableReturned, async_phases, awaitable_returned
from .store import SharedStore


class Call(enum.Enum):
    """How the async drivers call one phase of a node."""

    INLINE = "inline"  # a plain def, called on the loop
    AWAIT = "await"  # an async def, awaited
    THREAD = "thread"  # a plain def of an ``offload`` node, run in a worker thread
    ENGINE = "engine"  # exec of a flow or batch: its ``_aexec`` orchestrates, awaited


Plan = tuple[Call, Call, Call, Call]  # prep, exec, post, exec_fallback
_PLAN_PHASES = ("prep", "exec", "post", "exec_fallback")


def plan_of(node: Node) -> Plan:
    """How each phase of ``node`` is called; read once per node and driver call, from the
    phases as they are now (a phase assigned after the node was built counts too)."""
    asyncs = async_phases(node, _PLAN_PHASES)
    for phase in node._async - asyncs:  # an engine phase that awaits the user's (a batch's prep, post)
        fn = getattr(node, phase, None)
        if getattr(getattr(fn, "__func__", fn), "__module__", "").startswith("flyt_engine"):
            asyncs |= {phase}
    plain = Call.THREAD if node.offload else Call.INLINE

    def way(phase: str) -> Call:
        return Call.AWAIT if phase in asyncs else plain

    exec_way = way("exec")
    own = getattr(node, "__dict__", {})
    if (
        exec_way is not Call.AWAIT
        and getattr(node, "_aexec", None) is not None
        and "exec" not in own
        and getattr(type(node).exec, "_engine_exec", False)
    ):
        exec_way = Call.ENGINE  # a flow's or batch's own exec: orchestrated awaited
    return way("prep"), exec_way, way("post"), way("exec_fallback")


async def call_phase(node: Node, phase: str, how: Call, fn: Callable[..., Any], *args: Any) -> Any:
    """Call one phase the way ``how`` says; a plain def that returned an awaitable is a
    ``TypeError`` naming the node and phase."""
    if how is Call.AWAIT:
        return await fn(*args)
    if how is Call.ENGINE:
        return await node._aexec(*args)  # type: ignore[attr-defined]
    if how is Call.THREAD:
        result = await asyncio.to_thread(fn, *args)
    else:
        result = fn(*args)
    if hasattr(result, "__await__") and phase != "post":  # post: _check_action says it
        raise awaitable_returned(f"node {node.name!r}", phase, result)
    return result


def _as_cancelled(signal: Any, error: BaseException) -> BaseException:
    """A ``CancelledError`` caused by the context becomes the context's ``Cancelled``."""
    if isinstance(error, asyncio.CancelledError) and signal.error is not None:
        return _fresh(signal.error)
    return error


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------
def run_on_loop(node: Node, shared: SharedStore, ctx: Context, start_at: Any) -> str:
    """``run()`` of a graph with async phases: an event loop on this thread for the run."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise TypeError(
            f"run() was called on a thread whose event loop is running, and {node.name!r} has async phases: "
            "write `await arun(...)` there instead"
        )
    return asyncio.run(_arun_checked(node, shared, ctx, start_at))


def run_on_loop_with(node: Node, body: Coroutine[Any, Any, str]) -> str:
    """Run ``body`` (a driver of ``node``'s graph) on a loop of its own, from sync code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(body)
    body.close()
    raise TypeError(
        f"{node.name!r} has async phases but was reached from a plain def on a running event loop: "
        "make the caller async def, or give its node offload=True"
    )


async def arun(
    node: Node, shared: SharedStore | None = None, *, ctx: Context | None = None, start_at: Any = None
) -> str:
    """``run`` for callers on an event loop: runs ``node`` on the running loop and returns
    its action. Plain ``def`` phases run inline (they block the loop) unless the node has
    ``offload=True``."""
    if not isinstance(node, Node):
        raise TypeError(f"arun() takes a Node or Flow, not {type(node).__name__}")
    if shared is None:
        shared = SharedStore()
    elif not isinstance(shared, SharedStore):
        raise TypeError(f"arun() takes a SharedStore, not {type(shared).__name__} (wrap it: SharedStore(data))")
    if ctx is None:
        ctx = _BACKGROUND
    elif not isinstance(ctx, Context):
        raise TypeError(f"ctx must be a Context, not {type(ctx).__name__}")
    return await _arun_checked(node, shared, ctx, start_at)


async def _arun_checked(node: Node, shared: SharedStore, ctx: Context, start_at: Any) -> str:
    signal = ctx._signal
    if start_at is not None:  # start_at.py, awaited
        from .start_at import arun_from, as_start

        body = arun_from(node, shared, ctx, as_start(start_at))
    elif ctx._emit is None:
        body = adrive(node, ctx, shared, _NO_TRANSITIONS)
    elif ctx._run_id:  # inside an observed run: part of it
        body = adrive_observed(node, ctx, shared, _NO_TRANSITIONS, ctx._path)
    else:
        body = _arun_top(node, ctx, shared)
    if not isinstance(signal, _Signal):  # never cancelled: no task of its own needed
        return await body
    task = asyncio.get_running_loop().create_task(body)
    forget = signal.on_cancel(_canceller(task))
    try:
        return await task
    except asyncio.CancelledError as exc:
        raise _as_cancelled(signal, exc) from None
    finally:
        forget()


def _canceller(task: asyncio.Task[Any]) -> Callable[[], None]:
    """What the context calls when cancelled (from any thread): cancel ``task`` on its loop."""
    loop = task.get_loop()

    def cancel() -> None:
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # the loop is closed: the run is over
            pass

    return cancel


async def _arun_top(
    node: Node,
    ctx: Context,
    shared: SharedStore,
    body: Callable[[Context], Coroutine[Any, Any, str]] | None = None,
) -> str:
    """``node._run_top`` on a loop: RunStarted, the node, RunFinished; writes reported.

    ``body(run_ctx)`` runs the node (default: from its start; ``start_at`` passes its own)."""
    run_id = new_run_id()
    path = (node.name,)
    run_ctx = ctx._derive()
    run_ctx._run_id = run_id
    run_ctx._path = ()
    emit = run_ctx._emit
    assert emit is not None
    TASK_CELL.set(_WriterCell())  # this task's writer (a task copies the context it starts in)
    watcher = store_reporter(run_id, path, emit, run_ctx._gate)
    shared._watch(watcher)
    header = (run_id, path, node.name, id(node))
    emit((RunStarted, header, monotonic()))
    try:
        if body is None:
            action = await adrive_observed(node, run_ctx, shared, _NO_TRANSITIONS, ())
        else:
            action = await body(run_ctx)
    except BaseException as exc:
        shared._unwatch(watcher)
        emit((RunFinished, header, monotonic(), None, _as_cancelled(ctx._signal, exc)))
        raise
    shared._unwatch(watcher)
    emit((RunFinished, header, monotonic(), action, None))
    return action


# ---------------------------------------------------------------------------------------
# The drivers
# ---------------------------------------------------------------------------------------
async def adrive(
    node: Node, ctx: Context, shared: SharedStore, transitions: dict[Any, dict[str, Any]], by_id: bool = False
) -> str:
    """``node.drive`` awaited: run ``node``, follow its action, repeat.

    The common calls are written out (an ``async def`` phase awaited, a plain one called)
    so that a step makes no coroutine besides the user's own; the rest goes through
    ``call_phase``."""
    signal = ctx._signal
    # per node, keyed as ``transitions`` is, looked up once a run: its plan, its successors and
    # its phases (bound once: the plan already fixed how each is called for this run); a node
    # that follows itself (a loop of one) skips even that lookup
    known: dict[Any, tuple[Plan, dict[str, Any] | None, Any, Any, Any]] = {}
    awaited = Call.AWAIT
    inline = Call.INLINE
    current: Node | None = None
    while True:
        if signal.error is not None:
            raise _fresh(signal.error)
        if node is not current:
            key = id(node) if by_id else node
            entry = known.get(key)
            if entry is None:
                entry = known[key] = (plan_of(node), transitions.get(key), node.prep, node.exec, node.post)
            plan, successors, prep, exec_, post = entry
            prep_how, exec_how, post_how = plan[0], plan[1], plan[2]
            plain_retries = node._plain_retries  # a class's flag (node.py): fixed for the node
            current = node
        try:
            if prep_how is awaited:
                prep_result = await prep(ctx, shared)
            elif prep_how is inline:
                prep_result = prep(ctx, shared)
            else:
                prep_result = await call_phase(node, "prep", prep_how, node.prep, ctx, shared)
        except _PASS_THROUGH:
            raise
        except asyncio.CancelledError as exc:
            raise _as_cancelled(signal, exc) from None
        except Exception as exc:
            raise NodeError(node, "prep", 0, exc) from exc
        if prep_how is inline and hasattr(prep_result, "__await__"):
            raise awaitable_returned(f"node {node.name!r}", "prep", prep_result)

        attempts = 1
        if (node.max_retries if plain_retries else node.get_max_retries()) > 0:
            if signal.error is not None:
                raise _fresh(signal.error)
            if exec_how is awaited:
                try:
                    exec_result = await exec_(ctx, prep_result)
                except asyncio.CancelledError as exc:
                    raise _as_cancelled(signal, exc) from None
                except Exception as exc:
                    exec_result, attempts = await _aretry(node, ctx, prep_result, exc, plan, None, ())
            else:
                exec_result, attempts = await _exec(node, ctx, prep_result, plan, None, ())
        else:
            exec_result = None
            attempts = 0

        if signal.error is not None:
            raise _fresh(signal.error)
        try:
            if post_how is awaited:
                action = await post(ctx, shared, prep_result, exec_result)  # type: ignore[misc]
            elif post_how is inline:
                action = post(ctx, shared, prep_result, exec_result)
            else:
                action = await call_phase(node, "post", post_how, node.post, ctx, shared, prep_result, exec_result)
        except _PASS_THROUGH:
            raise
        except asyncio.CancelledError as exc:
            raise _as_cancelled(signal, exc) from None
        except Exception as exc:
            raise NodeError(node, "post", attempts, exc) from exc
        if action.__class__ is not str or not action:
            action = _check_action(node, action, attempts)

        if successors is None:
            return action
        following = successors.get(action)
        if following is None:
            return action
        node = following


async def _attempt(node: Node, ctx: Context, prep_result: Any, plan: Plan) -> Any:
    try:
        return await call_phase(node, "exec", plan[1], node.exec, ctx, prep_result)
    except asyncio.CancelledError as exc:
        raise _as_cancelled(ctx._signal, exc) from None


async def _exec(
    node: Node, ctx: Context, prep_result: Any, plan: Plan, emit: Any, header: tuple[Any, ...]
) -> tuple[Any, int]:
    """Attempts of exec, with the retries, waits and fallback of ``attempts.py``."""
    try:
        return await _attempt(node, ctx, prep_result, plan), 1
    except AwaitableReturned:
        raise
    except Exception as exc:
        return await _aretry(node, ctx, prep_result, exc, plan, emit, header)


async def _aretry(
    node: Node, ctx: Context, prep_result: Any, error: Exception, plan: Plan, emit: Any, header: tuple[Any, ...]
) -> tuple[Any, int]:
    """``node._retry`` awaited: waits never block the loop."""
    signal = ctx._signal
    if node._per_item_retries and not stops_run(error, signal):  # a batch's own failure is final
        if isinstance(error, _ALREADY_DESCRIBED):
            raise error
        raise NodeError(node, "exec", 1, error) from error
    gate = ctx._gate
    attempt = 1
    while True:
        step, max_attempts, wait = after_failure(node, attempt, error, signal)
        if step is Next.STOP:
            raise error
        if emit is not None and not isinstance(error, _ALREADY_DESCRIBED):
            event = (ExecFailed, header, monotonic(), attempt, max_attempts, error, wait)
            emit(event)
            if gate.armed and (gate.nodes is None or node.name in gate.nodes):
                gate(event)
        if signal.error is not None:
            raise _fresh(signal.error)
        if step is Next.FALL_BACK:
            break
        if wait > 0:
            await ctx.asleep(wait)
        attempt += 1
        try:
            return await _attempt(node, ctx, prep_result, plan), attempt
        except AwaitableReturned:
            raise
        except Exception as exc:
            error = exc
    try:
        result = await call_phase(node, "exec_fallback", plan[3], node.exec_fallback, prep_result, error)
    except asyncio.CancelledError as exc:
        raise _as_cancelled(signal, exc) from None
    except Exception as exc:
        if isinstance(exc, _ALREADY_DESCRIBED) or stops_run(exc, signal):
            raise
        raise NodeError(node, "exec", attempt, exc) from exc
    if emit is not None:
        emit((FallbackUsed, header, monotonic(), error))
    return result, attempt


async def adrive_observed(
    node: Node, ctx: Context, shared: SharedStore, transitions: dict[int, dict[str, Any]], base: tuple[str, ...]
) -> str:
    """``node.drive_observed`` awaited: an event at every checkpoint, the gate consulted
    when armed. A gate that blocks blocks the loop: the whole run pauses there."""
    emit = ctx._emit
    assert emit is not None
    gate = ctx._gate
    signal = ctx._signal
    cell = TASK_CELL.get()
    if cell is None:
        cell = _WriterCell()
        TASK_CELL.set(cell)
    previous = cell.header
    frames: dict[int, tuple[tuple[Any, ...], Context, Plan]] = {}
    try:
        while True:
            nid = id(node)
            frame = frames.get(nid)
            if frame is None:
                header, node_ctx = _frame(node, ctx, base)
                frame = frames[nid] = (header, node_ctx, plan_of(node))
            header, node_ctx, plan = frame
            if signal.error is not None:
                raise _fresh(signal.error)
            cell.header = header
            phase = "prep"
            try:
                now = monotonic()
                emit((NodeStarted, header, now))
                event = (PhaseStarted, header, now, "prep")
                emit(event)
                if gate.armed and (gate.nodes is None or header[2] in gate.nodes):
                    gate(event)
                    now = monotonic()
                if signal.error is not None:
                    raise _fresh(signal.error)
                try:
                    prep_result = await call_phase(node, "prep", plan[0], node.prep, node_ctx, shared)
                except (*_PASS_THROUGH, AwaitableReturned):
                    raise
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise NodeError(node, "prep", 0, exc) from exc
                cell.header = header  # other tasks ran meanwhile
                started, now = now, monotonic()
                emit((PhaseFinished, header, now, "prep", prep_result, now - started))

                phase = "exec"
                event = (PhaseStarted, header, now, "exec")
                emit(event)
                if gate.armed and (gate.nodes is None or header[2] in gate.nodes):
                    gate(event)
                    now = monotonic()
                attempts = node.max_retries if node._plain_retries else node.get_max_retries()
                if attempts > 0:
                    if signal.error is not None:
                        raise _fresh(signal.error)
                    exec_result, attempts = await _exec(node, node_ctx, prep_result, plan, emit, header)
                else:
                    exec_result = None
                    attempts = 0
                cell.header = header
                started, now = now, monotonic()
                emit((PhaseFinished, header, now, "exec", exec_result, now - started))

                phase = "post"
                event = (PhaseStarted, header, now, "post")
                emit(event)
                if gate.armed and (gate.nodes is None or header[2] in gate.nodes):
                    gate(event)
                    now = monotonic()
                if signal.error is not None:
                    raise _fresh(signal.error)
                try:
                    action = await call_phase(
                        node, "post", plan[2], node.post, node_ctx, shared, prep_result, exec_result
                    )
                except _PASS_THROUGH:
                    raise
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise NodeError(node, "post", attempts, exc) from exc
                if action.__class__ is not str or not action:
                    action = _check_action(node, action, attempts)
                started, now = now, monotonic()
                emit((PhaseFinished, header, now, "post", action, now - started))
            except BaseException as caught:
                failure = _as_cancelled(signal, caught)
                if isinstance(failure, NodeError) and failure.node is node:
                    phase = failure.phase
                failed = (NodeFailed, header, monotonic(), phase, failure)
                emit(failed)
                if gate.armed and (gate.nodes is None or header[2] in gate.nodes):
                    gate(failed)
                if failure is caught:
                    raise
                raise failure from None

            successors = transitions.get(nid)
            following = successors.get(action) if successors is not None else None
            finished = (NodeFinished, header, now, action, following.name if following is not None else None)
            emit(finished)
            if gate.armed and (gate.nodes is None or header[2] in gate.nodes):
                gate(finished)
            if following is None:
                return action
            node = following
    finally:
        cell.header = previous
