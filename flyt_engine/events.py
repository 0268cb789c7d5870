"""Events: what a run reports to the observers of its ``Context``.

Every event carries ``run_id``, ``path`` (node names from the outermost flow down to the
event's node), ``node`` (the node's name), ``node_id`` (``id()`` of the node, as in
``graph``) and ``time`` (``time.monotonic()``). The classes are hand-slotted with
positional constructors because the engine builds millions of them: a frozen dataclass
costs about three times as much. Treat them as read-only.
"""

from __future__ import annotations

from typing import Any


class Event:
    """Base of every event."""

    __slots__ = ("node", "node_id", "path", "run_id", "time")
    kind = "event"
    _fields: tuple[str, ...] = ()

    def __init__(self, run_id: int, path: tuple[str, ...], node: str, node_id: int, time: float) -> None:
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time

    def as_dict(self) -> dict[str, Any]:
        """The event as a plain dict (``kind`` plus every field)."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in Event.__slots__ + self._fields:
            out[name] = getattr(self, name)
        return out

    def __repr__(self) -> str:
        extra = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        where = "/".join(self.path)
        return f"{type(self).__name__}({where}{', ' if extra else ''}{extra})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.as_dict() == other.as_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]


class RunStarted(Event):
    """A top-level run began (once per ``run()``; nested flows emit none)."""

    __slots__ = ()
    kind = "run_started"


class RunFinished(Event):
    """A top-level run ended with ``action``, or with ``error`` when it raised."""

    __slots__ = ("action", "error")
    kind = "run_finished"
    _fields = ("action", "error")

    def __init__(self, run_id, path, node, node_id, time, action: str | None, error: BaseException | None):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.action = action
        self.error = error


class NodeStarted(Event):
    """A node is about to run (before its prep)."""

    __slots__ = ()
    kind = "node_started"


class PhaseStarted(Event):
    """A phase (``prep``, ``exec`` or ``post``) is about to run: a stepping checkpoint."""

    __slots__ = ("phase",)
    kind = "phase_started"
    _fields = ("phase",)

    def __init__(self, run_id, path, node, node_id, time, phase: str):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.phase = phase


class PhaseFinished(Event):
    """A phase returned ``result`` after ``duration`` seconds (for ``post``, the action)."""

    __slots__ = ("duration", "phase", "result")
    kind = "phase_finished"
    _fields = ("phase", "result", "duration")

    def __init__(self, run_id, path, node, node_id, time, phase: str, result: Any, duration: float):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.phase = phase
        self.result = result
        self.duration = duration


class ExecFailed(Event):
    """Exec attempt ``attempt`` of ``max_attempts`` raised ``error``; ``wait`` seconds follow (0 after the last)."""

    __slots__ = ("attempt", "error", "max_attempts", "wait")
    kind = "exec_failed"
    _fields = ("attempt", "max_attempts", "error", "wait")

    def __init__(
        self, run_id, path, node, node_id, time, attempt: int, max_attempts: int, error: BaseException, wait: float
    ):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.error = error
        self.wait = wait


class FallbackUsed(Event):
    """Every attempt failed and ``exec_fallback`` supplied the result instead."""

    __slots__ = ("error",)
    kind = "fallback_used"
    _fields = ("error",)

    def __init__(self, run_id, path, node, node_id, time, error: BaseException):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.error = error


class NodeFinished(Event):
    """A node returned ``action``; the flow goes to ``next_node`` (a name, or ``None``: the end)."""

    __slots__ = ("action", "next_node")
    kind = "node_finished"
    _fields = ("action", "next_node")

    def __init__(self, run_id, path, node, node_id, time, action: str, next_node: str | None):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.action = action
        self.next_node = next_node


class NodeFailed(Event):
    """A node raised ``error`` in ``phase`` (or was cancelled there)."""

    __slots__ = ("error", "phase")
    kind = "node_failed"
    _fields = ("phase", "error")

    def __init__(self, run_id, path, node, node_id, time, phase: str, error: BaseException):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.phase = phase
        self.error = error


class BatchStarted(Event):
    """A BatchNode or BatchFlow starts ``total`` items."""

    __slots__ = ("total",)
    kind = "batch_started"
    _fields = ("total",)

    def __init__(self, run_id, path, node, node_id, time, total: int):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.total = total


class BatchItemFinished(Event):
    """Item ``index`` finished: ``ok``, or failed with ``error``, after ``duration`` seconds."""

    __slots__ = ("duration", "error", "index", "ok")
    kind = "batch_item_finished"
    _fields = ("index", "ok", "error", "duration")

    def __init__(
        self, run_id, path, node, node_id, time, index: int, ok: bool, error: BaseException | None, duration: float
    ):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.index = index
        self.ok = ok
        self.error = error
        self.duration = duration


class BatchFinished(Event):
    """A batch ended: ``done`` items finished (failed ones included), ``failed`` of them failed."""

    __slots__ = ("done", "failed")
    kind = "batch_finished"
    _fields = ("done", "failed")

    def __init__(self, run_id, path, node, node_id, time, done: int, failed: int):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.done = done
        self.failed = failed


class StoreChanged(Event):
    """A store key was written (``deleted`` False) or removed (``deleted`` True) during a run."""

    __slots__ = ("deleted", "key", "value")
    kind = "store_changed"
    _fields = ("key", "value", "deleted")

    def __init__(self, run_id, path, node, node_id, time, key: str, value: Any, deleted: bool):
        self.run_id = run_id
        self.path = path
        self.node = node
        self.node_id = node_id
        self.time = time
        self.key = key
        self.value = value
        self.deleted = deleted


ALL_EVENTS: tuple[type[Event], ...] = (
    RunStarted,
    RunFinished,
    NodeStarted,
    PhaseStarted,
    PhaseFinished,
    ExecFailed,
    FallbackUsed,
    NodeFinished,
    NodeFailed,
    BatchStarted,
    BatchItemFinished,
    BatchFinished,
    StoreChanged,
)

__all__ = [cls.__name__ for cls in ALL_EVENTS] + ["Event", "ALL_EVENTS"]
