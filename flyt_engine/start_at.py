"""Starting a run part-way (API.md "Starting a run part-way: ``start_at``").

``run(flow, shared, start_at=("etl", "load"))`` runs ``load`` instead of ``etl``'s start
node and routes on from there, out through the enclosing flows; ``StartAt(path,
phase="exec", prep_result=...)`` skips the node's prep (``"post"``: prep and exec) and
uses the results given. A path through a BatchFlow's iteration marker ``"#i"`` runs only
that iteration, on ``shared`` as its store. Names, not node objects, make a fork work
across a reload. Nothing here touches the drivers' hot path: ``run`` comes here only when
``start_at`` is given. A graph with async phases takes the awaited twins (``arun_from``,
``_aresume``, ``_astep_from``), which mirror the plain ones rule for rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any

from .context import Context
from .errors import FlytError, NodeError
from .events import (
    NodeFailed,
    NodeFinished,
    NodeStarted,
    PhaseFinished,
    PhaseStarted,
    is_iteration,
)
from .store import SharedStore

PHASES = ("prep", "exec", "post")


@dataclass(frozen=True)
class StartAt:
    """Where a run starts: ``path`` of node names (the run's own node first, as in
    ``Event.path``), the ``phase`` of the last one, and the results that phase skips."""

    path: tuple[str, ...]
    phase: str = "prep"
    prep_result: Any = None
    exec_result: Any = None

    def __post_init__(self) -> None:
        path = (self.path,) if isinstance(self.path, str) else tuple(self.path)
        if not path or not all(isinstance(name, str) for name in path):
            raise TypeError(f"start_at needs a path of node names, not {self.path!r}")
        object.__setattr__(self, "path", path)
        if self.phase not in PHASES:
            raise ValueError(f"start_at phase must be one of {', '.join(PHASES)}, not {self.phase!r}")


def as_start(start_at: Any) -> StartAt:
    return start_at if isinstance(start_at, StartAt) else StartAt(tuple(start_at))


def run_from(node: Any, shared: SharedStore, ctx: Context, start: StartAt) -> str:
    """``run()`` with ``start_at``: check the root's name, then resume (observed or not)."""
    if start.path[0] != node.name:
        raise FlytError(f"start_at path starts with {start.path[0]!r}, but the run's node is {node.name!r}")
    if ctx._emit is None:
        return _resume(node, start.path[1:], ctx, shared, start, (), named=True)
    from .node import _run_top

    return _run_top(
        node, ctx, shared, lambda run_ctx: _resume(node, start.path[1:], run_ctx, shared, start, (), named=True)
    )


def _member(flow: Any, name: str) -> Any:
    found = [member for member in flow.members() if member.name == name]
    if not found:
        raise FlytError(f"start_at: flow {flow.name!r} has no node named {name!r}")
    if len(found) > 1:
        raise FlytError(f"start_at: flow {flow.name!r} has {len(found)} nodes named {name!r}; the path is ambiguous")
    return found[0]


def _resume(
    node: Any,
    rest: tuple[str, ...],
    ctx: Context,
    shared: SharedStore,
    start: StartAt,
    base: tuple[str, ...],
    *,
    named: bool,
) -> str:
    """Run ``node`` from the point ``rest`` names inside it (``named``: the node adds its
    name to the event path; a BatchFlow's fresh iteration flow does not)."""
    from .batch import _run_iteration

    if not rest:
        return _step_from(node, ctx, shared, start, base)
    name = rest[0]
    path = (*base, node.name) if named else base
    if is_iteration(name):
        flow, index = _iteration(node, name)
        if len(rest) == 1:  # the whole iteration, from its flow's start
            return _run_iteration(flow, _at(ctx, path), shared, index)
        iteration = _at(ctx, (*path, name))
        return _resume(flow, rest[1:], iteration, shared, start, (*path, name), named=False)
    child = _child(node, name)
    flow_ctx = _at(ctx, path)
    action = _resume(child, rest[1:], flow_ctx, shared, start, path, named=True)
    following = node.successors(child).get(action)
    if following is not None:  # route on, as the flow would have
        from .node import drive, drive_observed

        routes = node._routes if node._routes is not None else node._route_table()
        if ctx._emit is None:
            action = drive(following, flow_ctx, shared, routes[0], routes[1])
        else:
            action = drive_observed(following, flow_ctx, shared, routes[2], path)
    _flow_finished(ctx, node, path, action, named)
    return action


def _at(ctx: Context, path: tuple[str, ...]) -> Context:
    """A context for the nodes under ``path``."""
    inner = ctx._derive()
    inner._path = path
    return inner


def _iteration(node: Any, name: str) -> tuple[Any, int]:
    """The fresh flow of iteration ``name`` (``"#i"``) of ``node``, and ``i``."""
    from .batch import BatchFlow

    if not isinstance(node, BatchFlow):
        raise FlytError(f"start_at: {name!r} is an iteration marker, but {node.name!r} is not a BatchFlow")
    index = int(name[1:])
    return node.make_flow(index), index


def _child(node: Any, name: str) -> Any:
    """The child ``name`` of flow ``node``."""
    from .flow import Flow

    if not isinstance(node, Flow):
        raise FlytError(f"start_at: {node.name!r} is not a flow, so it has no node named {name!r}")
    return _member(node, name)


def _flow_finished(ctx: Context, node: Any, path: tuple[str, ...], action: str, named: bool) -> None:
    """A flow the path went through ended (its start was skipped, its end is reported)."""
    if ctx._emit is not None and named:
        header = (ctx._run_id, path, node.name, id(node))
        ctx._emit((NodeFinished, header, monotonic(), action, None))


def _step_from(node: Any, ctx: Context, shared: SharedStore, start: StartAt, base: tuple[str, ...]) -> str:
    """One step of ``node`` from ``start.phase``; routing is the enclosing flow's job."""
    from .node import _PASS_THROUGH, _check_action, _retry, _writer_cell

    emit = ctx._emit
    path = (*base, node.name)
    header = (ctx._run_id, path, node.name, id(node))
    node_ctx = ctx
    if node._composite and emit is not None:
        node_ctx = ctx._derive()
        node_ctx._path = path
    cell = _writer_cell() if emit is not None else None
    previous = cell.header if cell is not None else None
    if cell is not None:
        cell.header = header
    phase = start.phase
    checkpoint = _checkpoints(node, ctx)

    try:
        ctx.check()
        if emit is not None and phase == "prep":
            emit((NodeStarted, header, monotonic()))
        prep_result = start.prep_result
        if phase == "prep":
            checkpoint((PhaseStarted, header, monotonic(), "prep"))
            began = monotonic()
            try:
                prep_result = node.prep(node_ctx, shared)
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                raise NodeError(node, "prep", 0, exc) from exc
            if emit is not None:
                now = monotonic()
                emit((PhaseFinished, header, now, "prep", prep_result, now - began))
        exec_result = start.exec_result
        attempts = 0
        if phase in ("prep", "exec"):
            checkpoint((PhaseStarted, header, monotonic(), "exec"))
            began = monotonic()
            ctx.check()
            if node.get_max_retries() > 0:
                try:
                    exec_result = node.exec(node_ctx, prep_result)
                    attempts = 1
                except Exception as exc:
                    exec_result, attempts = _retry(node, node_ctx, prep_result, exc, emit, header)
            else:
                exec_result = None
            if emit is not None:
                now = monotonic()
                emit((PhaseFinished, header, now, "exec", exec_result, now - began))
        checkpoint((PhaseStarted, header, monotonic(), "post"))
        began = monotonic()
        ctx.check()
        try:
            action = node.post(node_ctx, shared, prep_result, exec_result)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise NodeError(node, "post", attempts, exc) from exc
        action = _check_action(node, action, attempts) if action.__class__ is not str or not action else action
        if emit is not None:
            now = monotonic()
            emit((PhaseFinished, header, now, "post", action, now - began))
            checkpoint((NodeFinished, header, now, action, None))
        return action
    except BaseException as exc:
        if emit is not None:
            failed_phase = exc.phase if isinstance(exc, NodeError) and exc.node is node else phase
            checkpoint((NodeFailed, header, monotonic(), failed_phase, exc))
        raise
    finally:
        if cell is not None:
            cell.header = previous


# -- the awaited twins, for graphs with async phases (aio.py) ---------------------------------
async def arun_from(node: Any, shared: SharedStore, ctx: Context, start: StartAt) -> str:
    """``run_from`` on the run's loop."""
    if start.path[0] != node.name:
        raise FlytError(f"start_at path starts with {start.path[0]!r}, but the run's node is {node.name!r}")
    if ctx._emit is None:
        return await _aresume(node, start.path[1:], ctx, shared, start, (), named=True)
    from .aio import _arun_top

    return await _arun_top(
        node, ctx, shared, lambda run_ctx: _aresume(node, start.path[1:], run_ctx, shared, start, (), named=True)
    )


async def _aresume(
    node: Any,
    rest: tuple[str, ...],
    ctx: Context,
    shared: SharedStore,
    start: StartAt,
    base: tuple[str, ...],
    *,
    named: bool,
) -> str:
    """``_resume`` awaited."""
    from .async_batch import arun_iteration

    if not rest:
        return await _astep_from(node, ctx, shared, start, base)
    name = rest[0]
    path = (*base, node.name) if named else base
    if is_iteration(name):
        flow, index = _iteration(node, name)
        if len(rest) == 1:
            return await arun_iteration(flow, _at(ctx, path), shared, index)
        iteration = _at(ctx, (*path, name))
        return await _aresume(flow, rest[1:], iteration, shared, start, (*path, name), named=False)
    child = _child(node, name)
    flow_ctx = _at(ctx, path)
    action = await _aresume(child, rest[1:], flow_ctx, shared, start, path, named=True)
    following = node.successors(child).get(action)
    if following is not None:
        from .aio import adrive, adrive_observed

        routes = node._routes if node._routes is not None else node._route_table()
        if ctx._emit is None:
            action = await adrive(following, flow_ctx, shared, routes[0], routes[1])
        else:
            action = await adrive_observed(following, flow_ctx, shared, routes[2], path)
    _flow_finished(ctx, node, path, action, named)
    return action


async def _astep_from(node: Any, ctx: Context, shared: SharedStore, start: StartAt, base: tuple[str, ...]) -> str:
    """``_step_from`` awaited: each phase called as the node's plan says (``aio.plan_of``)."""
    from .aio import _as_cancelled, _exec, call_phase, plan_of
    from .node import _PASS_THROUGH, TASK_CELL, _check_action, _WriterCell
    from .phases import AwaitableReturned

    emit = ctx._emit
    path = (*base, node.name)
    header = (ctx._run_id, path, node.name, id(node))
    node_ctx = _at(ctx, path) if node._composite and emit is not None else ctx
    cell = None
    if emit is not None:
        cell = TASK_CELL.get()
        if cell is None:
            cell = _WriterCell()
            TASK_CELL.set(cell)
    previous = cell.header if cell is not None else None
    plan = plan_of(node)
    phase = start.phase
    checkpoint = _checkpoints(node, ctx)

    def mine() -> None:  # other tasks ran while a phase awaited: the writer is this node again
        if cell is not None:
            cell.header = header

    mine()
    try:
        ctx.check()
        if emit is not None and phase == "prep":
            emit((NodeStarted, header, monotonic()))
        prep_result = start.prep_result
        if phase == "prep":
            checkpoint((PhaseStarted, header, monotonic(), "prep"))
            began = monotonic()
            try:
                prep_result = await call_phase(node, "prep", plan[0], node.prep, node_ctx, shared)
            except (*_PASS_THROUGH, AwaitableReturned, asyncio.CancelledError):
                raise
            except Exception as exc:
                raise NodeError(node, "prep", 0, exc) from exc
            mine()
            _finished(emit, header, "prep", prep_result, began)
        exec_result = start.exec_result
        attempts = 0
        if phase in ("prep", "exec"):
            checkpoint((PhaseStarted, header, monotonic(), "exec"))
            began = monotonic()
            ctx.check()
            if node.get_max_retries() > 0:
                exec_result, attempts = await _exec(node, node_ctx, prep_result, plan, emit, header)
            else:
                exec_result = None
            mine()
            _finished(emit, header, "exec", exec_result, began)
        checkpoint((PhaseStarted, header, monotonic(), "post"))
        began = monotonic()
        ctx.check()
        try:
            action = await call_phase(node, "post", plan[2], node.post, node_ctx, shared, prep_result, exec_result)
        except (*_PASS_THROUGH, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise NodeError(node, "post", attempts, exc) from exc
        action = _check_action(node, action, attempts) if action.__class__ is not str or not action else action
        now = _finished(emit, header, "post", action, began)
        checkpoint((NodeFinished, header, now, action, None))
        return action
    except BaseException as caught:
        failure = _as_cancelled(ctx._signal, caught)
        failed_phase = failure.phase if isinstance(failure, NodeError) and failure.node is node else phase
        checkpoint((NodeFailed, header, monotonic(), failed_phase, failure))
        if failure is caught:
            raise
        raise failure from None
    finally:
        if cell is not None:
            cell.header = previous


def _checkpoints(node: Any, ctx: Context) -> Callable[[tuple[Any, ...]], None]:
    """Emit a checkpoint's record, and hand it to the gate while the gate is armed for ``node``."""
    emit, gate = ctx._emit, ctx._gate

    def checkpoint(record: tuple[Any, ...]) -> None:
        if emit is not None:
            emit(record)
            if gate.armed and (gate.nodes is None or node.name in gate.nodes):
                gate(record)

    return checkpoint


def _finished(emit: Any, header: tuple[Any, ...], phase: str, result: Any, began: float) -> float:
    """Report a phase's result (observed runs); returns the time it ended."""
    now = monotonic()
    if emit is not None:
        emit((PhaseFinished, header, now, phase, result, now - began))
    return now
