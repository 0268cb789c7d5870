"""Events: what a run reports to the observers of its ``Context``.

Every event carries ``run_id``, ``path`` (node names from the outermost flow down to the
event's node), ``node`` (the node's name), ``node_id`` (``id()`` of the node, as in
``graph``) and ``time`` (``time.monotonic()``), then the fields of its kind.

Events are tuples underneath with named, read-only attributes: cheap to build (about a
third of a frozen dataclass) and to free. Construct them by keyword or position like any
class; read them by name.

Records: the engine itself emits *records*, plain tuples
``(EventClass, header, time, *kind_fields)`` where ``header`` is ``(run_id, path, node,
node_id)``, one tuple shared by all the records of a node's step. A record costs a
fraction of an event object to build and to free. ``ctx.with_observer`` turns each record
into its event before calling the observer; ``ctx.with_recorder`` hands records over as
they are, for consumers such as the workbench that fold millions of them and need only a
few as objects. ``materialize(record)`` makes the event of a record.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

Record = tuple[Any, ...]  # (EventClass, (run_id, path, node, node_id), time, *kind_fields)

_new = tuple.__new__
_BASE = ("run_id", "path", "node", "node_id", "time")


def _rebuild(cls: type, values: tuple[Any, ...]) -> Event:
    return _new(cls, values)


def materialize(record: tuple[Any, ...]) -> Event:
    """The event of a record ``(EventClass, header, time, *kind_fields)`` (see above)."""
    return _new(record[0], record[1] + record[2:])


def record_of(event: Event) -> tuple[Any, ...]:
    """The record of an event: the inverse of ``materialize``."""
    return (type(event), tuple(event[:4]), *event[4:])


class Event(tuple):
    """Base of every event (a tuple with named fields; see the module docstring)."""

    __slots__ = ()
    kind = "event"
    _fields: tuple[str, ...] = _BASE

    run_id: int = property(itemgetter(0), doc="id of the top-level run")  # type: ignore[assignment]
    path: tuple[str, ...] = property(itemgetter(1), doc="node names, outermost flow first")  # type: ignore[assignment]
    node: str = property(itemgetter(2), doc="the node's name")  # type: ignore[assignment]
    node_id: int = property(itemgetter(3), doc="id() of the node object")  # type: ignore[assignment]
    time: float = property(itemgetter(4), doc="time.monotonic() when it happened")  # type: ignore[assignment]

    def __new__(cls, *args: Any, **kwargs: Any) -> Event:
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__} takes {len(fields)} fields, got {len(args)}")
        values = list(args)
        for name in fields[len(args) :]:
            if name not in kwargs:
                raise TypeError(f"{cls.__name__} is missing field {name!r}")
            values.append(kwargs.pop(name))
        if kwargs:
            raise TypeError(f"{cls.__name__} got unknown field(s): {', '.join(kwargs)}")
        return _new(cls, values)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), tuple(self)))

    def as_dict(self) -> dict[str, Any]:
        """The event as a plain dict: ``kind`` plus every field."""
        out: dict[str, Any] = {"kind": self.kind}
        out.update(zip(self._fields, self, strict=True))
        return out

    def __repr__(self) -> str:
        extra = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields[5:], self[5:], strict=True))
        where = "/".join(self[1])
        return f"{type(self).__name__}({where}{', ' if extra else ''}{extra})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


class RunStarted(Event):
    """A top-level run began (once per ``run()``; nested flows emit none)."""

    __slots__ = ()
    kind = "run_started"


class RunFinished(Event):
    """A top-level run ended with ``action``, or with ``error`` when it raised."""

    __slots__ = ()
    kind = "run_finished"
    _fields = (*_BASE, "action", "error")
    action: str | None = property(itemgetter(5))  # type: ignore[assignment]
    error: BaseException | None = property(itemgetter(6))  # type: ignore[assignment]


class NodeStarted(Event):
    """A node is about to run (before its prep)."""

    __slots__ = ()
    kind = "node_started"


class PhaseStarted(Event):
    """A phase (``prep``, ``exec`` or ``post``) is about to run: a stepping checkpoint."""

    __slots__ = ()
    kind = "phase_started"
    _fields = (*_BASE, "phase")
    phase: str = property(itemgetter(5))  # type: ignore[assignment]


class PhaseFinished(Event):
    """A phase returned ``result`` after ``duration`` seconds (for ``post``, the action)."""

    __slots__ = ()
    kind = "phase_finished"
    _fields = (*_BASE, "phase", "result", "duration")
    phase: str = property(itemgetter(5))  # type: ignore[assignment]
    result: Any = property(itemgetter(6))
    duration: float = property(itemgetter(7))  # type: ignore[assignment]


class ExecFailed(Event):
    """Exec attempt ``attempt`` of ``max_attempts`` raised ``error``; ``wait`` seconds
    follow before the next attempt (0 after the last)."""

    __slots__ = ()
    kind = "exec_failed"
    _fields = (*_BASE, "attempt", "max_attempts", "error", "wait")
    attempt: int = property(itemgetter(5))  # type: ignore[assignment]
    max_attempts: int = property(itemgetter(6))  # type: ignore[assignment]
    error: BaseException = property(itemgetter(7))  # type: ignore[assignment]
    wait: float = property(itemgetter(8))  # type: ignore[assignment]


class FallbackUsed(Event):
    """Every attempt failed and ``exec_fallback`` supplied the result instead."""

    __slots__ = ()
    kind = "fallback_used"
    _fields = (*_BASE, "error")
    error: BaseException = property(itemgetter(5))  # type: ignore[assignment]


class NodeFinished(Event):
    """A node returned ``action``; the flow goes to ``next_node`` (a name, or ``None``: the end)."""

    __slots__ = ()
    kind = "node_finished"
    _fields = (*_BASE, "action", "next_node")
    action: str = property(itemgetter(5))  # type: ignore[assignment]
    next_node: str | None = property(itemgetter(6))  # type: ignore[assignment]


class NodeFailed(Event):
    """A node raised ``error`` in ``phase`` (or was cancelled there)."""

    __slots__ = ()
    kind = "node_failed"
    _fields = (*_BASE, "phase", "error")
    phase: str = property(itemgetter(5))  # type: ignore[assignment]
    error: BaseException = property(itemgetter(6))  # type: ignore[assignment]


class BatchStarted(Event):
    """A BatchNode or BatchFlow starts ``total`` items."""

    __slots__ = ()
    kind = "batch_started"
    _fields = (*_BASE, "total")
    total: int = property(itemgetter(5))  # type: ignore[assignment]


class BatchItemFinished(Event):
    """Item ``index`` finished: ``ok``, or failed with ``error``, after ``duration`` seconds."""

    __slots__ = ()
    kind = "batch_item_finished"
    _fields = (*_BASE, "index", "ok", "error", "duration")
    index: int = property(itemgetter(5))  # type: ignore[assignment]
    ok: bool = property(itemgetter(6))  # type: ignore[assignment]
    error: BaseException | None = property(itemgetter(7))  # type: ignore[assignment]
    duration: float = property(itemgetter(8))  # type: ignore[assignment]


class BatchFinished(Event):
    """A batch ended: ``done`` items finished (failed ones included), ``failed`` of them failed."""

    __slots__ = ()
    kind = "batch_finished"
    _fields = (*_BASE, "done", "failed")
    done: int = property(itemgetter(5))  # type: ignore[assignment]
    failed: int = property(itemgetter(6))  # type: ignore[assignment]


class StoreChanged(Event):
    """A store key was written (``deleted`` False) or removed (``deleted`` True) during a run."""

    __slots__ = ()
    kind = "store_changed"
    _fields = (*_BASE, "key", "value", "deleted")
    key: str = property(itemgetter(5))  # type: ignore[assignment]
    value: Any = property(itemgetter(6))
    deleted: bool = property(itemgetter(7))  # type: ignore[assignment]


# -- reading records by name ---------------------------------------------------------------
# A record is (EventClass, header, time, *kind_fields), header = (run_id, path, node, node_id).
# These accessors are what consumers use instead of indexing tuples by position; they are
# plain functions (and ``field_getter`` an ``operator.itemgetter``), cheap enough for loops
# over millions of records.


def kind_of(record: tuple[Any, ...]) -> type[Event]:
    """The event class of a record."""
    return record[0]


def run_id_of(record: tuple[Any, ...]) -> int:
    """The ``run_id`` of a record."""
    return record[1][0]


def path_of(record: tuple[Any, ...]) -> tuple[str, ...]:
    """The ``path`` of a record: node names from the outermost flow down to its node."""
    return record[1][1]


def node_of(record: tuple[Any, ...]) -> str:
    """The name of the record's node."""
    return record[1][2]


def node_id_of(record: tuple[Any, ...]) -> int:
    """``id()`` of the record's node object (as in ``graph``)."""
    return record[1][3]


def time_of(record: tuple[Any, ...]) -> float:
    """The record's ``time.monotonic()`` timestamp."""
    return record[2]


def field_getter(cls: type[Event], *names: str) -> Callable[[tuple[Any, ...]], Any]:
    """A fast getter of the named kind fields of ``cls``'s records (one name: the value;
    several: a tuple), e.g. ``field_getter(StoreChanged, "key")``."""
    indexes = []
    for name in names:
        if name not in cls._fields[len(_BASE) :]:
            raise ValueError(f"{cls.__name__} has no field {name!r} (fields: {', '.join(cls._fields[len(_BASE) :])})")
        indexes.append(cls._fields.index(name) - len(_BASE) + 3)
    return itemgetter(*indexes)


def field_of(record: tuple[Any, ...], name: str) -> Any:
    """One named kind field of a record (``field_getter`` is faster in loops)."""
    cls = record[0]
    try:
        index = cls._fields.index(name, len(_BASE))
    except ValueError:
        raise ValueError(f"{cls.__name__} has no field {name!r}") from None
    return record[index - len(_BASE) + 3]


# -- BatchFlow iteration markers in paths ----------------------------------------------------
def is_iteration(name: str) -> bool:
    """``"#12"``: the path component of a BatchFlow iteration (0-based index after ``#``)."""
    return len(name) > 1 and name[0] == "#" and name[1:].isdigit()


def iteration_index(name: str) -> int | None:
    """The iteration index of a marker (``"#12"`` → 12), else ``None``."""
    return int(name[1:]) if is_iteration(name) else None


def iteration_marker(index: int) -> str:
    """The path component of BatchFlow iteration ``index``: ``"#<index>"``."""
    return f"#{index}"


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

__all__ = [
    "ALL_EVENTS",
    "Event",
    "field_getter",
    "field_of",
    "is_iteration",
    "iteration_index",
    "iteration_marker",
    "kind_of",
    "materialize",
    "node_id_of",
    "node_of",
    "path_of",
    "record_of",
    "run_id_of",
    "time_of",
    *(cls.__name__ for cls in ALL_EVENTS),
]
