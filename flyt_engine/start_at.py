"""Starting a run part-way (API.md "Starting a run part-way: ``start_at``").

``run(flow, shared, start_at=("etl", "load"))`` runs ``load`` instead of ``etl``'s start
node and routes on from there, out through the enclosing flows; ``StartAt(path,
phase="exec", prep_result=...)`` skips the node's prep (``"post"``: prep and exec) and
uses the results given. A path through a BatchFlow's iteration marker ``"#i"`` runs only
that iteration, on ``shared`` as its store. Names, not node objects, make a fork work
across a reload. Nothing here touches the drivers' hot path: ``run`` comes here only when
``start_at`` is given.
"""

from __future__ import annotations

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
    from .batch import BatchFlow, _run_iteration
    from .flow import Flow

    if not rest:
        return _step_from(node, ctx, shared, start, base)
    name = rest[0]
    path = (*base, node.name) if named else base
    if is_iteration(name):
        if not isinstance(node, BatchFlow):
            raise FlytError(f"start_at: {name!r} is an iteration marker, but {node.name!r} is not a BatchFlow")
        index = int(name[1:])
        flow = node.make_flow(index)
        inner = ctx._derive()
        inner._path = path
        if len(rest) == 1:  # the whole iteration, from its flow's start
            return _run_iteration(flow, inner, shared, index)
        iteration = ctx._derive()
        iteration._path = (*path, name)
        return _resume(flow, rest[1:], iteration, shared, start, (*path, name), named=False)
    if not isinstance(node, Flow):
        raise FlytError(f"start_at: {node.name!r} is not a flow, so it has no node named {name!r}")
    child = _member(node, name)
    flow_ctx = ctx._derive()
    flow_ctx._path = path
    action = _resume(child, rest[1:], flow_ctx, shared, start, path, named=True)
    following = node.successors(child).get(action)
    if following is not None:  # route on, as the flow would have
        from .node import drive, drive_observed

        routes = node._routes if node._routes is not None else node._route_table()
        if ctx._emit is None:
            action = drive(following, flow_ctx, shared, routes[0], routes[1])
        else:
            action = drive_observed(following, flow_ctx, shared, routes[2], path)
    if ctx._emit is not None and named:
        header = (ctx._run_id, path, node.name, id(node))
        ctx._emit((NodeFinished, header, monotonic(), action, None))
    return action


def _step_from(node: Any, ctx: Context, shared: SharedStore, start: StartAt, base: tuple[str, ...]) -> str:
    """One step of ``node`` from ``start.phase``; routing is the enclosing flow's job."""
    from .node import _PASS_THROUGH, _check_action, _retry, _writer_cell

    emit = ctx._emit
    gate = ctx._gate
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

    def checkpoint(record: tuple[Any, ...]) -> None:
        if emit is not None:
            emit(record)
            if gate.armed and (gate.nodes is None or node.name in gate.nodes):
                gate(record)

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
