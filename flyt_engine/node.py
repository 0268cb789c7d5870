"""Node: the prep → exec → post unit of work, and ``run()``, the loop that drives it.

The driver exists twice, on purpose: ``drive`` for unobserved runs (the hot path:
three phase calls, three falsy cancellation checks, nothing else) and ``drive_observed``
for runs whose context has observers (the same rules, plus an event at every checkpoint).
Both share the retry/fallback slow path in ``_retry``, which follows ``attempts.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from time import monotonic
from types import CoroutineType
from typing import Any, Protocol, runtime_checkable

from .attempts import Next, after_failure, stops_run
from .context import Context, _fresh, new_run_id
from .errors import BatchError, Cancelled, NodeError
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
    StoreChanged,
)
from .phases import async_phases, awaitable_returned, check_class, check_phase
from .store import SharedStore

DEFAULT_ACTION = "default"

# Errors that already describe a failure precisely: passed through enclosing nodes unwrapped.
_PASS_THROUGH = (Cancelled, NodeError, BatchError)
_ALREADY_DESCRIBED = (NodeError, BatchError)
_BACKGROUND = Context.background()
_COROUTINE = CoroutineType


class _DefaultName:
    """Class-level default for ``Node.name``: the class name, until an instance sets one."""

    def __get__(self, instance: Any, owner: type) -> str:
        return owner.__name__


class Node:
    """A unit of work in three phases: ``prep`` reads the store, ``exec`` does the work
    (retried up to ``max_retries`` attempts, ``wait`` seconds apart), ``post`` writes
    results and returns the action that routes the flow.

    Subclass and override the phases, or pass functions: ``Node(exec=fn, max_retries=3)``.
    The functions take the same arguments as the methods, minus ``self``; ``fallback``
    supplies ``exec_fallback``. Nodes are never copied: state on a node persists across
    steps and runs.
    """

    name: str = _DefaultName()  # type: ignore[assignment]
    max_retries: int = 1
    wait: float = 0.0
    # True for nodes that run other nodes (flows, batches): they get a context of their own
    # carrying their event path when observed.
    _composite = False
    # Whether get_max_retries is the default one, so the hot path can read the attribute.
    _plain_retries = True
    # Batches retry and fall back per item: an error of the batch's exec itself is final.
    _per_item_retries = False

    # The phases a class may define, checked when it is defined (see phases.py).
    _phases: tuple[str, ...] = ("prep", "exec", "post", "exec_fallback")
    # The phases that are ``async def``, found when the class is defined or the node built:
    # a run with any of them runs on an event loop (aio.py).
    _async: frozenset[str] = frozenset()
    # Run the node's plain ``def`` phases in a worker thread when the run is on a loop.
    offload: bool = False
    # The node's own successors, set with ``>>`` (None until the first one).
    _successors: dict[str, Node | None] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._plain_retries = cls.get_max_retries is Node.get_max_retries
        check_class(cls, cls._phases)
        cls._async = async_phases(cls, cls._phases)

    def __init__(
        self,
        *,
        prep: Callable[..., Any] | None = None,
        exec: Callable[..., Any] | None = None,
        post: Callable[..., Any] | None = None,
        fallback: Callable[..., Any] | None = None,
        max_retries: int | None = None,
        wait: float | None = None,
        name: str | None = None,
        offload: bool | None = None,
    ) -> None:
        for label, fn in (("prep", prep), ("exec", exec), ("post", post), ("fallback", fallback)):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"Node({label}=...) must be callable, not {type(fn).__name__}")
                phase = "exec_fallback" if label == "fallback" else label
                check_phase(
                    f"node {name or getattr(exec, '__name__', None) or type(self).__name__!r}", phase, fn, method=False
                )
        # Functions become instance attributes: calling them costs what a method call costs.
        if prep is not None:
            self.prep = prep  # type: ignore[method-assign]
        if exec is not None:
            self.exec = exec  # type: ignore[method-assign]
        if post is not None:
            self.post = post  # type: ignore[method-assign]
        if fallback is not None:
            self.exec_fallback = fallback  # type: ignore[method-assign]
        if prep is not None or exec is not None or post is not None or fallback is not None:
            self._async = async_phases(self, self._phases)
        if offload is not None:
            self.offload = bool(offload)
        if max_retries is not None:
            if not isinstance(max_retries, int) or isinstance(max_retries, bool):
                raise TypeError(f"max_retries must be an int, not {type(max_retries).__name__}")
            self.max_retries = max_retries
        if wait is not None:
            if not isinstance(wait, (int, float)) or isinstance(wait, bool):
                raise TypeError(f"wait must be a number of seconds, not {type(wait).__name__}")
            if wait < 0:
                raise ValueError(f"wait must not be negative, got {wait}")
            self.wait = float(wait)
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(f"name must be a str, not {type(name).__name__}")
            self.name = name
            self._auto_name = False  # chosen: the workbench loader keeps it
        elif type(self) is Node:
            self.name = getattr(exec, "__name__", None) or "node"
            self._auto_name = True
        else:
            self._auto_name = True

    # -- the three phases -----------------------------------------------------------------
    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        """Read what ``exec`` needs from the store. Default: ``None``."""
        return None

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        """Do the work; raising makes the engine retry. Default: ``None``."""
        return None

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        """Write results and return the next action (``None`` or ``""`` mean ``"default"``)."""
        return None

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        """Called once after the last failed attempt; its return value becomes the exec
        result. Default: re-raise ``error`` (the run then fails with ``NodeError``)."""
        raise error

    def get_max_retries(self) -> int:
        """Total exec attempts; read again before each retry decision."""
        return self.max_retries

    def get_wait(self) -> float:
        """Seconds to wait before the next attempt; read again before each wait."""
        return self.wait

    def run(self, shared: SharedStore | None = None, *, ctx: Context | None = None, start_at: Any = None) -> str:
        """Shorthand for ``run(self, shared, ctx=ctx, start_at=start_at)``."""
        return run(self, shared, ctx=ctx, start_at=start_at)

    # -- naming ---------------------------------------------------------------------------
    @property
    def name_chosen(self) -> bool:
        """Whether somebody chose this node's name (``name=``, a class attribute, or
        ``adopt_name``), as opposed to the default: the class or function name."""
        state = getattr(self, "__dict__", {})
        flag = state.get("_auto_name")
        if flag is None:  # a subclass that skipped Node.__init__, or set name itself
            return "name" in state or type(self).name != type(self).__name__
        if not flag:
            return True
        if "name" in state:  # functional node: named after its exec/process function
            return False
        return type(self).name != type(self).__name__

    def adopt_name(self, name: str) -> None:
        """Name the node (the workbench names default-named nodes after their variable);
        afterwards the name counts as chosen."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        self.name = name
        self._auto_name = False

    # -- successors: PocketFlow's ``a >> b`` and ``a - "action" >> b`` -------------------
    def __rshift__(self, other: Node) -> Node:
        """``a >> b``: ``b`` follows ``a`` on the ``"default"`` action; returns ``b`` (chains)."""
        self.then(DEFAULT_ACTION, other)
        return other

    def __sub__(self, action: str) -> _Transition:
        """``a - "action" >> b``: ``b`` follows ``a`` on ``action``."""
        if not isinstance(action, str):
            raise TypeError(f'node - action takes a str action, not {type(action).__name__} (write a - "name" >> b)')
        return _Transition(self, action or DEFAULT_ACTION)

    def then(self, action: str, other: Node | None) -> Node | None:
        """Make ``other`` this node's own successor on ``action`` (``None`` ends the flow
        there), in every flow the node is in; a flow's ``connect`` for the same action wins."""
        if other is not None and not isinstance(other, Node):
            raise TypeError(f"a node's successor must be a Node, not {type(other).__name__}")
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, not {type(action).__name__}")
        if self._successors is None:
            self._successors = {}
        self._successors[action or DEFAULT_ACTION] = other
        _successors_changed()
        return other

    @property
    def own_successors(self) -> dict[str, Node | None]:
        """A copy of the successors set with ``>>`` (action → node)."""
        return dict(self._successors or {})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class _Transition:
    """``node - "action"``, waiting for ``>> target``."""

    __slots__ = ("action", "source")

    def __init__(self, source: Node, action: str) -> None:
        self.source = source
        self.action = action

    def __rshift__(self, other: Node) -> Node:
        target = self.source.then(self.action, other)
        assert target is not None
        return target


# Bumped by every ``>>``: flows rebuild their route tables when it moved (one int compare a run).
successor_version = [0]


def _successors_changed() -> None:
    successor_version[0] += 1


@runtime_checkable
class RetryableNode(Protocol):
    """A node that decides its own retry count and wait (read before each retry)."""

    def get_max_retries(self) -> int: ...
    def get_wait(self) -> float: ...


@runtime_checkable
class FallbackNode(Protocol):
    """A node that supplies a result when every exec attempt failed."""

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any: ...


# ---------------------------------------------------------------------------------------
# run() and the two drivers
# ---------------------------------------------------------------------------------------
_NO_TRANSITIONS: dict[int, dict[str, Any]] = {}


def run(node: Node, shared: SharedStore | None = None, *, ctx: Context | None = None, start_at: Any = None) -> str:
    """Run one node (or a flow) and return its action.

    Raises ``NodeError`` naming the node and phase that failed, ``Cancelled`` (or
    ``DeadlineExceeded``) when ``ctx`` is cancelled, ``BatchError`` from batches, and
    ``TypeError`` for arguments of the wrong type.
    """
    if not isinstance(node, Node):
        raise TypeError(f"run() takes a Node or Flow, not {type(node).__name__}")
    if shared is None:
        shared = SharedStore()
    elif not isinstance(shared, SharedStore):
        raise TypeError(f"run() takes a SharedStore, not {type(shared).__name__} (wrap it: SharedStore(data))")
    if ctx is None:
        ctx = _BACKGROUND
    elif not isinstance(ctx, Context):
        raise TypeError(f"ctx must be a Context, not {type(ctx).__name__}")
    if node._async or (node._composite and needs_loop(node)):  # async phases: on an event loop
        from .aio import run_on_loop

        return run_on_loop(node, shared, ctx, start_at)
    if start_at is not None:  # part-way (start_at.py); the drivers below stay as they are
        from .start_at import as_start, run_from

        return run_from(node, shared, ctx, as_start(start_at))
    if ctx._emit is None:
        return drive(node, ctx, shared, _NO_TRANSITIONS)
    if ctx._run_id:  # a run started from inside an observed run: part of that run
        return drive_observed(node, ctx, shared, _NO_TRANSITIONS, ctx._path)
    return _run_top(node, ctx, shared)


def drive(
    node: Node, ctx: Context, shared: SharedStore, transitions: dict[Any, dict[str, Any]], by_id: bool = False
) -> str:
    """The hot path: run ``node``, follow its action through ``transitions``, repeat.

    No observer: three phase calls and three falsy cancellation checks per step.
    ``transitions`` is keyed by the node objects themselves (hashing a node is a pointer
    hash; ``id()`` would make an int per step), or by ``id(node)`` with ``by_id`` when
    some node compares by value (a dataclass node, say).
    """
    signal = ctx._signal
    while True:
        if signal.error is not None:
            raise _fresh(signal.error)
        try:
            prep_result = node.prep(ctx, shared)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise NodeError(node, "prep", 0, exc) from exc

        attempts = 1
        if (node.max_retries if node._plain_retries else node.get_max_retries()) > 0:
            if signal.error is not None:
                raise _fresh(signal.error)
            try:
                exec_result = node.exec(ctx, prep_result)
            except Exception as exc:
                exec_result, attempts = _retry(node, ctx, prep_result, exc, None, ())
        else:
            exec_result = None
            attempts = 0

        if signal.error is not None:
            raise _fresh(signal.error)
        try:
            action = node.post(ctx, shared, prep_result, exec_result)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise NodeError(node, "post", attempts, exc) from exc
        if action.__class__ is not str or not action:
            action = _check_action(node, action, attempts)

        successors = transitions.get(id(node) if by_id else node)
        if successors is None:
            return action
        following = successors.get(action)
        if following is None:
            return action
        node = following


def needs_loop(node: Node) -> bool:
    """Whether running ``node`` needs an event loop: it, or a node of its graph, has an
    ``async def`` phase (flows cache the answer; see ``Flow._has_async``)."""
    if node._async:
        return True
    has_async = getattr(node, "_has_async", None)
    return bool(has_async()) if has_async is not None else False


def _check_action(node: Node, action: Any, attempts: int) -> str:
    if action is None or action == "":
        return DEFAULT_ACTION
    if isinstance(action, str):
        return str(action)
    if hasattr(action, "__await__"):
        raise awaitable_returned(f"node {node.name!r}", "post", action)
    error = TypeError(f"post must return an action string or None, not {type(action).__name__} {action!r:.60}")
    raise NodeError(node, "post", attempts, error) from error


def _retry(
    node: Node, ctx: Context, prep_result: Any, error: Exception, emit: Any, header: tuple[Any, ...]
) -> tuple[Any, int]:
    """After a failed first attempt: retry while allowed, then fall back (``attempts.py``).

    Returns ``(exec_result, attempts)``; raises ``Cancelled`` or ``NodeError(phase="exec")``.
    """
    signal = ctx._signal
    if prep_result.__class__ is _COROUTINE:  # a plain prep returned a coroutine: exec failed on it
        raise awaitable_returned(f"node {node.name!r}", "prep", prep_result) from error
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
        # A failure raised inside a sub-flow was reported where it happened: one failure, one entry.
        if emit is not None and not isinstance(error, _ALREADY_DESCRIBED):
            event = (ExecFailed, header, monotonic(), attempt, max_attempts, error, wait)
            emit(event)
            if gate.armed and (gate.nodes is None or node.name in gate.nodes):
                gate(event)
        if signal.error is not None:  # a cancelled run neither retries nor falls back
            raise _fresh(signal.error)
        if step is Next.FALL_BACK:
            break
        if wait > 0:
            ctx.sleep(wait)
        attempt += 1
        try:
            return node.exec(ctx, prep_result), attempt
        except Exception as exc:
            error = exc
    try:
        result = node.exec_fallback(prep_result, error)
    except Exception as exc:
        if isinstance(exc, _ALREADY_DESCRIBED) or stops_run(exc, signal):
            raise
        raise NodeError(node, "exec", attempt, exc) from exc
    if emit is not None:
        emit((FallbackUsed, header, monotonic(), error))
    return result, attempt


# ---------------------------------------------------------------------------------------
# Observed runs
# ---------------------------------------------------------------------------------------
class _WriterCell:
    """Per thread: the record header of the node the engine is running, for StoreChanged."""

    __slots__ = ("header",)

    def __init__(self) -> None:
        self.header: tuple[Any, ...] | None = None  # (run_id, path, name, node_id)


_threads = threading.local()
# Per task, in async runs: the cell of the task's node (tasks share a thread, not a node).
TASK_CELL: ContextVar[_WriterCell | None] = ContextVar("flyt_writer_cell", default=None)


def _writer_cell() -> _WriterCell:
    task_cell = TASK_CELL.get()
    if task_cell is not None:
        return task_cell
    try:
        return _threads.cell
    except AttributeError:
        cell = _threads.cell = _WriterCell()
        return cell


def _run_top(node: Node, ctx: Context, shared: SharedStore, body: Callable[[Context], str] | None = None) -> str:
    """A top-level observed run: RunStarted, the node, RunFinished; store writes reported.

    ``body(run_ctx)`` runs the node (default: from its start; ``start_at`` passes its own)."""
    run_id = new_run_id()
    path = (node.name,)
    run_ctx = ctx._derive()
    run_ctx._run_id = run_id
    run_ctx._path = ()
    emit = run_ctx._emit
    assert emit is not None  # run() calls this only for observed contexts
    watcher = store_reporter(run_id, path, emit, run_ctx._gate)
    shared._watch(watcher)
    header = (run_id, path, node.name, id(node))
    emit((RunStarted, header, monotonic()))
    try:
        action = drive_observed(node, run_ctx, shared, _NO_TRANSITIONS, ()) if body is None else body(run_ctx)
    except BaseException as exc:
        shared._unwatch(watcher)
        emit((RunFinished, header, monotonic(), None, exc))
        raise
    shared._unwatch(watcher)
    emit((RunFinished, header, monotonic(), action, None))
    return action


def store_reporter(run_id: int, root: tuple[str, ...], emit: Callable[[Any], None], gate: Any) -> Callable[..., None]:
    """A store watcher that reports writes as ``StoreChanged`` events of run ``run_id``.

    The writer is the node the engine runs on the writing thread, else the run's root (a
    write from a thread of the user's own: ``node_id`` 0).
    """
    root_header = (run_id, root, root[-1] if root else "", 0)

    def report(store: SharedStore, key: str, value: Any, deleted: bool) -> None:
        cell = TASK_CELL.get()
        if cell is not None:
            header = cell.header
        else:
            try:
                header = _threads.cell.header
            except AttributeError:
                header = None
        if header is None or header[0] != run_id:
            header = root_header
        record = (StoreChanged, header, monotonic(), key, value, deleted)
        emit(record)
        if gate.armed_writes and (gate.keys is None or key in gate.keys):  # after the store's lock is free:
            store._defer(partial(gate, record))  # a pause there must not hold the lock

    return report


def _frame(node: Node, ctx: Context, base: tuple[str, ...]) -> tuple[tuple[Any, ...], Context]:
    """What ``drive_observed`` needs of a node, once per run of a flow: the header its
    records share, ``(run_id, path, name, node_id)``, and the context its phases get."""
    path = (*base, node.name)
    node_ctx = ctx
    if node._composite:  # flows and batches read their own event path from the context
        node_ctx = ctx._derive()
        node_ctx._path = path
    return (ctx._run_id, path, node.name, id(node)), node_ctx


def drive_observed(
    node: Node, ctx: Context, shared: SharedStore, transitions: dict[int, dict[str, Any]], base: tuple[str, ...]
) -> str:
    """``drive`` with an event at every checkpoint and the gate consulted when armed.

    Timestamps are shared between adjacent events (a phase's end is the next one's start)
    so a step costs four clock reads; durations restart after a gate pause.
    """
    emit = ctx._emit
    assert emit is not None  # the observed driver runs only for observed contexts
    gate = ctx._gate
    signal = ctx._signal
    cell = _writer_cell()
    previous = cell.header
    frames: dict[int, tuple[tuple[Any, ...], Context]] = {}  # node id -> _frame(node)
    try:
        while True:
            nid = id(node)
            frame = frames.get(nid)
            if frame is None:
                frame = frames[nid] = _frame(node, ctx, base)
            header, node_ctx = frame
            if signal.error is not None:  # nothing starts after cancellation
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
                    prep_result = node.prep(node_ctx, shared)
                except _PASS_THROUGH:
                    raise
                except Exception as exc:
                    raise NodeError(node, "prep", 0, exc) from exc
                if prep_result.__class__ is _COROUTINE:
                    raise awaitable_returned(f"node {node.name!r}", "prep", prep_result)
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
                    try:
                        exec_result = node.exec(node_ctx, prep_result)
                        attempts = 1
                    except Exception as exc:
                        exec_result, attempts = _retry(node, node_ctx, prep_result, exc, emit, header)
                else:
                    exec_result = None
                    attempts = 0
                if exec_result.__class__ is _COROUTINE:
                    raise awaitable_returned(f"node {node.name!r}", "exec", exec_result)
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
                    action = node.post(node_ctx, shared, prep_result, exec_result)
                except _PASS_THROUGH:
                    raise
                except Exception as exc:
                    raise NodeError(node, "post", attempts, exc) from exc
                if action.__class__ is not str or not action:
                    action = _check_action(node, action, attempts)
                started, now = now, monotonic()
                emit((PhaseFinished, header, now, "post", action, now - started))
            except BaseException as exc:
                if isinstance(exc, NodeError) and exc.node is node:
                    phase = exc.phase
                failed = (NodeFailed, header, monotonic(), phase, exc)
                emit(failed)
                if gate.armed and (gate.nodes is None or header[2] in gate.nodes):
                    gate(failed)
                raise

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
