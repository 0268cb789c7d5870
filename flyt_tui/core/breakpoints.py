"""Every way of pausing a run, as one decision over the engine's checkpoints.

Stepping (next phase, next node), run to cursor, step out, node breakpoints (at a phase,
with a condition), data breakpoints (a store key written), and breaking on errors, failed
attempts or fallbacks all come down to ``Breakpoints.decide(record, ...)``, called by the
session's gate at each checkpoint: ``PhaseStarted``, ``NodeFinished``, ``ExecFailed``,
``NodeFailed`` and ``StoreChanged``. While nothing can match, ``armed`` is false and the
engine never calls the gate: breakpoints cost nothing until one could stop the run.

A breakpoint is written ``NODE``, ``NODE:PHASE`` or ``NODE[:PHASE] if EXPR``; EXPR is a
Python expression over ``shared`` (the store), ``prep`` (the node's prep result, ``None``
before it exists), ``attempt`` (the exec attempt, 1-based) and ``node`` (its name). A
condition that raises pauses the run and says why; it never ends the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from flyt_engine import SharedStore
from flyt_engine.errors import Cancelled, error_text
from flyt_engine.events import (
    ExecFailed,
    NodeFailed,
    NodeFinished,
    PhaseStarted,
    StoreChanged,
    field_getter,
    kind_of,
    node_of,
    path_of,
)

PHASES = ("prep", "exec", "post")


class StepMode(StrEnum):
    """How the run goes on after a pause."""

    RUN = "run"  # until a breakpoint
    PHASE = "phase"  # to the next checkpoint
    NODE = "node"  # to the next node's prep
    CURSOR = "cursor"  # to the prep of a chosen node
    OUT = "out"  # until the enclosing flow finished


class BreakOn(StrEnum):
    """Failures that pause the run (``e``, ``--break-on``)."""

    ERROR = "error"  # a node is about to fail (before the failure propagates)
    RETRY = "retry"  # each failed exec attempt that will be retried
    FALLBACK = "fallback"  # the last failed attempt, before the fallback runs


class Why(StrEnum):
    """What stopped the run."""

    STEP = "step"
    BREAKPOINT = "breakpoint"
    CONDITION_FAILED = "condition failed"
    WATCH = "watch"
    ERROR = "error"
    RETRY = "retry"
    FALLBACK = "fallback"
    CURSOR = "cursor"
    OUT = "out"


class BreakpointError(ValueError):
    """A breakpoint that cannot be set: the text says why (bad phase, a syntax error)."""


@dataclass
class NodeBreakpoint:
    """Pause at ``node``'s ``phase`` (when ``condition`` holds)."""

    node: str
    phase: str = "prep"
    condition: str | None = None
    enabled: bool = True
    hits: int = 0
    orphaned: bool = False  # its node is gone since a reload: kept, listed, never matches
    code: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise BreakpointError(
                f"unknown phase {self.phase!r} in a breakpoint on {self.node!r}: use prep, exec or post"
            )
        if self.condition is not None:
            try:
                self.code = compile(self.condition, f"<condition of {self.node}>", "eval")
            except SyntaxError as exc:
                raise BreakpointError(f"the condition {self.condition!r} is not Python: {exc.msg}") from None

    @property
    def key(self) -> tuple[str, str]:
        return (self.node, self.phase)

    @property
    def text(self) -> str:
        where = self.node if self.phase == "prep" else f"{self.node}:{self.phase}"
        return f"{where} if {self.condition}" if self.condition else where

    @classmethod
    def parse(cls, text: str) -> NodeBreakpoint:
        """``NODE``, ``NODE:PHASE``, ``NODE if EXPR`` or ``NODE:PHASE if EXPR``."""
        where, _, condition = text.partition(" if ")
        where = where.strip()
        if not where:
            raise BreakpointError(f"a breakpoint needs a node name: {text!r}")
        node, _, phase = where.partition(":")
        return cls(node.strip(), (phase.strip() or "prep"), condition.strip() or None)


@dataclass
class Watch:
    """Pause at every write to ``key`` (a data breakpoint)."""

    key: str
    enabled: bool = True
    hits: int = 0


@dataclass
class Pause:
    """Why the run stopped at ``record``, in words for the status line and headless."""

    why: Why
    record: tuple[Any, ...]
    words: str  # "paused: rows written by fetch"
    detail: str = ""  # the old and new value, the condition's error, ...
    old: Any = None  # a watched key's value before the write
    existed: bool = True  # whether the watched key had a value before the write
    breakpoint: NodeBreakpoint | None = None


_PHASE = field_getter(PhaseStarted, "phase")
_KEY_VALUE = field_getter(StoreChanged, "key", "value", "deleted")
_RETRY = field_getter(ExecFailed, "attempt", "max_attempts", "error", "wait")
_FAILED = field_getter(NodeFailed, "phase", "error")
_MISSING = object()


class Breakpoints:
    """The breakpoints of a workbench (they survive runs and reloads) and the stepping
    state of the current run. ``decide`` runs on the run thread; the rest on the UI's."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.nodes: dict[tuple[str, str], NodeBreakpoint] = {}
        self.watches: dict[str, Watch] = {}
        self.break_on: set[BreakOn] = set()
        self.mode = StepMode.RUN
        self.target: str | None = None  # run to cursor: the node's name
        self.out_of: tuple[str, ...] | None = None  # step out: the enclosing flow's path
        self.names: set[str] = set()  # nodes with an enabled prep breakpoint (the tree marks them)
        self._last_error: BaseException | None = None
        self._seen: dict[str, Any] = {}  # watched key -> its value as last seen (the "old" value)
        self.armed = False  # anything can pause a run
        self.armed_phases = False  # something can pause at a phase, an edge, an attempt or a failure
        self.only_nodes: frozenset[str] | None = None  # ... and only at these nodes (None: any)
        self.armed_writes = False  # something can pause at a store write
        self.only_keys: frozenset[str] = frozenset()  # ... of these keys
        self.on_change: Callable[[], None] | None = None  # the current run's gate re-arms itself
        self.has_fallback: Callable[[str], bool] = lambda name: True  # the session knows the flow

    # -- editing (UI thread) --------------------------------------------------------------
    def add(self, breakpoint: NodeBreakpoint | str) -> NodeBreakpoint:
        """Set a breakpoint (replacing one at the same node and phase)."""
        bp = NodeBreakpoint.parse(breakpoint) if isinstance(breakpoint, str) else breakpoint
        with self._lock:
            self.nodes[bp.key] = bp
            self._changed()
        return bp

    def remove(self, node: str, phase: str = "prep") -> NodeBreakpoint | None:
        with self._lock:
            bp = self.nodes.pop((node, phase), None)
            self._changed()
            return bp

    def toggle(self, node: str) -> bool:
        """Toggle the plain breakpoint before ``node``'s prep; True when it is now set."""
        with self._lock:
            if (node, "prep") in self.nodes:
                self.remove(node)
                return False
            self.add(NodeBreakpoint(node))
            return True

    def set_enabled(self, bp: NodeBreakpoint | Watch, enabled: bool) -> None:
        with self._lock:
            bp.enabled = enabled
            self._changed()

    def watch(self, key: str, current: Any = _MISSING) -> Watch:
        """Pause at every write to ``key``; ``current`` is its value now (the first "old")."""
        with self._lock:
            watch = self.watches.get(key) or Watch(key)
            self.watches[key] = watch
            if current is not _MISSING:
                self._seen[key] = current
            self._changed()
            return watch

    def unwatch(self, key: str) -> Watch | None:
        with self._lock:
            watch = self.watches.pop(key, None)
            self._seen.pop(key, None)
            self._changed()
            return watch

    def set_break_on(self, kinds: Iterable[BreakOn | str]) -> None:
        with self._lock:
            self.break_on = {BreakOn(kind) for kind in kinds}
            self._changed()

    def keep_only(self, node_names: set[str]) -> list[NodeBreakpoint]:
        """After a reload: breakpoints on nodes that are gone become orphaned (listed,
        never matching), those whose node came back are live again. Returns the orphans."""
        with self._lock:
            for bp in self.nodes.values():
                bp.orphaned = bp.node not in node_names
            self._changed()
            return [bp for bp in self.nodes.values() if bp.orphaned]

    def listing(self) -> list[NodeBreakpoint | Watch]:
        with self._lock:
            return [*self.nodes.values(), *self.watches.values()]

    # -- stepping (UI thread) ----------------------------------------------------------------
    def go(self, mode: StepMode | str, *, target: str | None = None, out_of: tuple[str, ...] | None = None) -> None:
        """How the run goes on after the current pause."""
        with self._lock:
            self.mode = StepMode(mode)
            self.target = target
            self.out_of = out_of
            self._changed()

    def _changed(self) -> None:
        self.names.clear()
        self.names.update(
            bp.node for bp in self.nodes.values() if bp.enabled and not bp.orphaned and bp.phase == "prep"
        )
        live = {bp.node for bp in self.nodes.values() if bp.enabled and not bp.orphaned}
        watched = any(watch.enabled for watch in self.watches.values())
        everywhere = self.mode is not StepMode.RUN or bool(self.break_on)
        self.armed = everywhere or bool(live) or watched
        # Where the engine calls the gate (``Context.with_gate``): only a breakpoint's nodes
        # while nothing else can pause; store writes only while a key is watched.
        self.armed_phases = everywhere or bool(live)
        self.only_nodes = None if everywhere else frozenset(live)
        self.armed_writes = watched
        self.only_keys = frozenset(key for key, watch in self.watches.items() if watch.enabled)
        if self.on_change is not None:
            self.on_change()

    def seed(self, store: Mapping[str, Any] | SharedStore) -> None:
        """The run's store as it starts: the first "old" value of each watched key."""
        with self._lock:
            for key in self.watches:
                self._seen[key] = store.get(key, _MISSING)

    def new_run(self) -> None:
        """A run starts: forget the last one's failure and stepping state."""
        with self._lock:
            self._last_error = None
            self.mode, self.target, self.out_of = StepMode.RUN, None, None
            self._changed()

    # -- the decision (run thread) -----------------------------------------------------------
    def decide(
        self,
        record: tuple[Any, ...],
        shared: Mapping[str, Any] | None = None,
        prep_of: Callable[[tuple[Any, ...]], Any] | None = None,
    ) -> Pause | None:
        """Whether the run pauses at this checkpoint, and why. ``shared`` and ``prep_of``
        feed conditions (the store; the prep result of the record's node)."""
        kind = kind_of(record)
        mode = self.mode
        if kind is NodeFailed:
            return self._on_failure(record)
        if kind is ExecFailed:
            return self._on_attempt(record, mode)
        if kind is StoreChanged:
            return self._on_write(record)
        if mode is StepMode.PHASE and (kind is PhaseStarted or kind is NodeFinished):
            return Pause(Why.STEP, record, _where(record))
        if mode is StepMode.OUT and self.out_of is not None:
            path = path_of(record)
            out = self.out_of
            if (kind is NodeFinished and path == out) or path[: len(out)] != out:
                return Pause(Why.OUT, record, f"stepped out of {out[-1] if out else 'the run'}")
        if kind is PhaseStarted:
            phase = _PHASE(record)
            name = node_of(record)
            if phase == "prep":
                if mode is StepMode.NODE:
                    return Pause(Why.STEP, record, _where(record))
                if mode is StepMode.CURSOR and name == self.target:
                    return Pause(Why.CURSOR, record, _where(record))
            bp = self.nodes.get((name, phase))
            if bp is not None and bp.enabled and not bp.orphaned:
                return self._on_breakpoint(bp, record, shared, prep_of)
        return None

    def _on_breakpoint(
        self,
        bp: NodeBreakpoint,
        record: tuple[Any, ...],
        shared: Mapping[str, Any] | None,
        prep_of: Callable[[tuple[Any, ...]], Any] | None,
    ) -> Pause | None:
        if bp.code is not None:
            names = {
                "shared": shared if shared is not None else {},
                "prep": prep_of(record) if prep_of is not None and bp.phase != "prep" else None,
                "attempt": 1,
                "node": bp.node,
            }
            try:
                holds = bool(eval(bp.code, {"__builtins__": __builtins__}, names))
            except BaseException as exc:  # never ends the run: pause and say why
                bp.hits += 1
                return Pause(
                    Why.CONDITION_FAILED,
                    record,
                    f"condition of {bp.node} raised {type(exc).__name__}",
                    f"{bp.condition!r}: {error_text(exc, 300)}",
                    breakpoint=bp,
                )
            if not holds:
                return None
        bp.hits += 1
        words = f"{_where(record)} · breakpoint" + (f" if {bp.condition}" if bp.condition else "")
        return Pause(Why.BREAKPOINT, record, words, breakpoint=bp)

    def _on_write(self, record: tuple[Any, ...]) -> Pause | None:
        key, value, deleted = _KEY_VALUE(record)
        watch = self.watches.get(key) if isinstance(key, str) else None
        if watch is None or not watch.enabled:
            return None
        old = self._seen.get(key, _MISSING)
        self._seen[key] = _MISSING if deleted else value
        watch.hits += 1
        writer = "/".join(path_of(record)[1:]) or node_of(record)
        words = f"{key} {'deleted' if deleted else 'written'} by {writer}"
        return Pause(Why.WATCH, record, words, old=None if old is _MISSING else old, existed=old is not _MISSING)

    def _on_attempt(self, record: tuple[Any, ...], mode: StepMode) -> Pause | None:
        attempt, max_attempts, error, wait = _RETRY(record)
        retried = wait > 0 or attempt < max_attempts
        words = f"{node_of(record)} attempt {attempt}/{max_attempts} failed"
        if retried and BreakOn.RETRY in self.break_on:
            return Pause(Why.RETRY, record, words, error_text(error, 300))
        if not retried and BreakOn.FALLBACK in self.break_on and self.has_fallback(node_of(record)):
            return Pause(Why.FALLBACK, record, f"{words}: the fallback comes next", error_text(error, 300))
        if mode is StepMode.PHASE:
            return Pause(Why.STEP, record, words, error_text(error, 300))
        return None

    def _on_failure(self, record: tuple[Any, ...]) -> Pause | None:
        phase, error = _FAILED(record)
        if error is self._last_error or isinstance(error, Cancelled):
            return None  # the same failure re-reported by an enclosing flow; a stop is no error
        self._last_error = error
        if BreakOn.ERROR not in self.break_on and self.mode is StepMode.RUN:
            return None
        return Pause(Why.ERROR, record, f"{node_of(record)} failed in {phase}", error_text(error, 300))


def _where(record: tuple[Any, ...]) -> str:
    """``fetch (exec)``, ``fetch → transform``: where a checkpoint is, in words."""
    kind = kind_of(record)
    name = node_of(record)
    if kind is PhaseStarted:
        return f"{name} ({_PHASE(record)})"
    if kind is NodeFinished:
        return f"{name} (after post)"
    return name
