"""What the current run did, kept compact and bounded, built from drained event batches.

The UI drains the session's event queue about 30 times a second and hands each batch to
``RunHistory.ingest``. The per-event loop does a type dispatch and one or two dict
writes, nothing else (no formatting, no widget calls); everything that costs more is
done once per node, store key or batch per tick, after the loop. What is kept is
bounded whatever the run does: a ring of recent events, one record per graph node, one
per batch, the last writer per store key. A million-step loop leaves the same footprint
as a ten-step one.

Nodes are keyed as in the tree: ``(template path, node id)``, where the template path
is the event path without BatchFlow iteration markers (``"#3"``) and the id is ``0``
for nodes inside a BatchFlow iteration (those objects are fresh per iteration).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flyt_engine.errors import Cancelled
from flyt_engine.events import (
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    Event,
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

NodeKey = tuple[tuple[str, ...], int]

# Bounds: how much of a busy run the UI keeps per tick and overall.
RECENT_EVENTS = 256  # the ring of recent events
LOG_LINES_PER_TICK = 40  # entries handed to each log per tick (the rest are counted)
MAX_NODE_RECORDS = 5000  # records for paths not in the graph (dynamic flows) are capped
_RESOLVE_CACHE_LIMIT = 20000


def is_iteration_marker(part: str) -> bool:
    """``"#12"``: the path component of a BatchFlow iteration."""
    return len(part) > 1 and part[0] == "#" and part[1:].isdigit()


def template_path(path: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """The path without iteration markers, and whether it had any."""
    if not any(is_iteration_marker(part) for part in path):
        return path, False
    return tuple(part for part in path if not is_iteration_marker(part)), True


class NodeState:
    """The states a node shows in the tree (plain strings, cheap to compare)."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class NodeRecord:
    """One graph node's summary over the run: its state now and its latest execution."""

    name: str
    state: str = NodeState.PENDING
    phase: str = ""  # the running phase, or the failed one
    runs: int = 0  # executions finished (ok or failed)
    action: str | None = None  # the latest action
    next_node: str | None = None
    duration: float = 0.0  # the latest execution: sum of its phase durations
    attempt: int = 0  # the latest failed attempt (retrying)
    max_attempts: int = 0
    error: BaseException | None = None  # the latest retry or failure error
    fallback: bool = False  # the latest execution used its fallback
    started: float = -1.0  # time of the latest NodeStarted
    last: float = -1.0  # time of the latest event applied
    prep: PhaseFinished | None = None  # the latest execution's phase results
    exec: PhaseFinished | None = None
    post: PhaseFinished | None = None
    edges: dict[str, int] = field(default_factory=dict)  # action -> times taken

    def result_of(self, phase: str) -> tuple[bool, Any]:
        """``(known, value)`` of a phase result of the latest execution."""
        event = self.prep if phase == "prep" else self.exec if phase == "exec" else self.post
        if event is None or event.time < self.started:
            return False, None
        return True, event.result


@dataclass
class BatchRecord:
    """One BatchNode/BatchFlow (instances inside BatchFlow iterations summed per template path)."""

    name: str
    path: tuple[str, ...]
    total: int = 0
    done: int = 0
    failed: int = 0
    active: int = 0  # instances started and not finished
    instances: int = 0
    first: float = 0.0  # time the first instance started
    last: float = 0.0  # time of the latest item or finish
    finished: bool = False

    @property
    def rate(self) -> float:
        """Items per second since the batch started."""
        elapsed = self.last - self.first
        return self.done / elapsed if elapsed > 0 else 0.0


@dataclass
class Tick:
    """What one drained batch changed, for the widgets to apply once."""

    nodes: set[NodeKey] = field(default_factory=set)
    store: dict[str, StoreChanged] = field(default_factory=dict)
    batches: set[tuple[str, ...]] = field(default_factory=set)
    retries: list[Event] = field(default_factory=list)  # ExecFailed / FallbackUsed
    retries_skipped: int = 0
    errors: list[Event] = field(default_factory=list)  # NodeFailed (innermost) / failed batch items
    errors_skipped: int = 0
    tail: list[Event] = field(default_factory=list)  # the last events, for the all-events log
    tail_skipped: int = 0
    started: RunStarted | None = None
    finished: RunFinished | None = None
    count: int = 0  # events of this run in the batch


class RunHistory:
    """The bounded record of one run; ``ingest`` folds a drained batch into it."""

    def __init__(self, run_id: int | None = None, recent: int = RECENT_EVENTS) -> None:
        self.run_id = run_id
        self.recent: deque[Event] = deque(maxlen=recent)
        self.nodes: dict[NodeKey, NodeRecord] = {}
        self.batches: dict[tuple[str, ...], BatchRecord] = {}
        self.writers: dict[str, str] = {}  # store key -> the node that wrote it last
        self.events = 0  # events of this run seen so far
        self.steps = 0  # node executions finished
        self.started: float | None = None
        self.finished: RunFinished | None = None
        self._resolved: dict[tuple[str, ...], tuple[tuple[str, ...], bool]] = {}
        self._last_error: BaseException | None = None

    # -- lookups ----------------------------------------------------------------------------
    def key_of(self, event: Event) -> NodeKey:
        """The tree key of the node an event belongs to."""
        tpl, in_iteration = self._resolve(event.path)
        return (tpl, 0 if in_iteration else event.node_id)

    def record(self, key: NodeKey) -> NodeRecord | None:
        return self.nodes.get(key)

    def _resolve(self, path: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
        hit = self._resolved.get(path)
        if hit is None:
            if len(self._resolved) > _RESOLVE_CACHE_LIMIT:
                self._resolved.clear()
            hit = self._resolved[path] = template_path(path)
        return hit

    def _node(self, key: NodeKey, name: str) -> NodeRecord | None:
        record = self.nodes.get(key)
        if record is None:
            if len(self.nodes) >= MAX_NODE_RECORDS:
                return None
            record = self.nodes[key] = NodeRecord(name)
        return record

    # -- folding a batch --------------------------------------------------------------------
    def ingest(self, events: Iterable[Event]) -> Tick:
        """Fold a drained batch of events into the history; return what changed.

        Events of another run (a cancelled run still finishing) are dropped.
        """
        run_id = self.run_id
        tick = Tick()
        last: dict[tuple[str, ...], Event] = {}  # raw path -> latest lifecycle event
        starts: dict[tuple[str, ...], NodeStarted] = {}
        results: dict[tuple[tuple[str, ...], str], PhaseFinished] = {}
        taken: dict[tuple[tuple[str, ...], str], int] = {}
        fallbacks: dict[tuple[str, ...], FallbackUsed] = {}
        store = tick.store
        items: dict[tuple[str, ...], list[int]] = {}
        batch_events: list[Event] = []
        retries = tick.retries
        errors = tick.errors
        kept: list[Event] = []
        keep = kept.append
        per_log = LOG_LINES_PER_TICK

        for event in events:
            if event.run_id != run_id:
                if run_id is None and type(event) is RunStarted:
                    run_id = self.run_id = event.run_id
                else:
                    continue
            keep(event)
            kind = type(event)
            if kind is PhaseStarted:
                last[event.path] = event
            elif kind is PhaseFinished:
                last[event.path] = event
                results[event.path, event.phase] = event
            elif kind is StoreChanged:
                store[event.key] = event
            elif kind is NodeStarted:
                starts[event.path] = event
            elif kind is NodeFinished:
                last[event.path] = event
                edge = (event.path, event.action)
                taken[edge] = taken.get(edge, 0) + 1
            elif kind is BatchItemFinished:
                counts = items.get(event.path)
                if counts is None:
                    counts = items[event.path] = [0, 0, 0]
                counts[0] += 1
                counts[2] = event.time
                if not event.ok:
                    counts[1] += 1
                    if len(errors) < per_log:
                        errors.append(event)
                    else:
                        tick.errors_skipped += 1
            elif kind is ExecFailed:
                last[event.path] = event
                if len(retries) < per_log:
                    retries.append(event)
                else:
                    tick.retries_skipped += 1
            elif kind is FallbackUsed:
                fallbacks[event.path] = event
                if len(retries) < per_log:
                    retries.append(event)
                else:
                    tick.retries_skipped += 1
            elif kind is NodeFailed:
                last[event.path] = event
                if len(errors) < per_log:
                    errors.append(event)
            elif kind is BatchStarted or kind is BatchFinished:
                batch_events.append(event)
            elif kind is RunStarted:
                tick.started = event
                self.started = event.time
            elif kind is RunFinished:
                tick.finished = self.finished = event

        tick.count = len(kept)
        if not kept:
            return tick
        self.events += len(kept)
        self.recent.extend(kept[-self.recent.maxlen :] if self.recent.maxlen else kept)
        if len(kept) > per_log:
            tick.tail = kept[-per_log:]
            tick.tail_skipped = len(kept) - per_log
        else:
            tick.tail = kept
        for event in store.values():
            self.writers[event.key] = event.node
        self._fold_nodes(tick, starts, last, results, taken, fallbacks)
        if items or batch_events:
            self._fold_batches(tick, items, batch_events)
        if errors:
            tick.errors = self._innermost(errors)
        return tick

    def _fold_nodes(
        self,
        tick: Tick,
        starts: dict[tuple[str, ...], NodeStarted],
        last: dict[tuple[str, ...], Event],
        results: dict[tuple[tuple[str, ...], str], PhaseFinished],
        taken: dict[tuple[tuple[str, ...], str], int],
        fallbacks: dict[tuple[str, ...], FallbackUsed],
    ) -> None:
        changed = tick.nodes
        for event in starts.values():
            key = self.key_of(event)
            record = self._node(key, event.node)
            if record is not None and event.time >= record.started:
                record.started = event.time
                record.fallback = False
                record.error = None
                record.attempt = 0
                changed.add(key)
        for event in results.values():
            key = self.key_of(event)
            record = self._node(key, event.node)
            if record is None:
                continue
            phase = event.phase
            if phase == "prep":
                if record.prep is None or event.time >= record.prep.time:
                    record.prep = event
            elif phase == "exec":
                if record.exec is None or event.time >= record.exec.time:
                    record.exec = event
            elif record.post is None or event.time >= record.post.time:
                record.post = event
        for (path, action), count in taken.items():
            tpl, in_iteration = self._resolve(path)
            event = last.get(path)
            key = (tpl, 0 if in_iteration else (event.node_id if event is not None else 0))
            record = self.nodes.get(key)
            if record is not None:
                record.edges[action] = record.edges.get(action, 0) + count
                record.runs += count
                self.steps += count
                changed.add(key)
        for event in fallbacks.values():
            record = self.nodes.get(self.key_of(event))
            if record is not None and event.time >= record.started:
                record.fallback = True
        for event in last.values():
            key = self.key_of(event)
            record = self._node(key, event.node)
            if record is None or event.time < record.last:
                continue
            record.last = event.time
            changed.add(key)
            kind = type(event)
            if kind is PhaseStarted or kind is PhaseFinished:
                record.state = NodeState.RUNNING
                record.phase = event.phase
            elif kind is NodeFinished:
                record.state = NodeState.DONE
                record.phase = ""
                record.action = event.action
                record.next_node = event.next_node
                record.duration = sum(
                    phase_event.duration
                    for phase_event in (record.prep, record.exec, record.post)
                    if phase_event is not None and phase_event.time >= record.started
                )
            elif kind is ExecFailed:
                record.attempt = event.attempt
                record.max_attempts = event.max_attempts
                record.error = event.error
                record.state = (
                    NodeState.RETRYING if event.wait > 0 or event.attempt < event.max_attempts else NodeState.RUNNING
                )
                record.phase = "exec"
            elif kind is NodeFailed:
                record.state = NodeState.STOPPED if isinstance(event.error, Cancelled) else NodeState.FAILED
                record.phase = event.phase
                record.error = event.error
                record.runs += 1

    def _fold_batches(self, tick: Tick, items: dict[tuple[str, ...], list[int]], batch_events: list[Event]) -> None:
        changed = tick.batches
        for event in batch_events:
            tpl, _ = self._resolve(event.path)
            record = self.batches.get(tpl)
            if type(event) is BatchStarted:
                if record is None:
                    record = self.batches[tpl] = BatchRecord(event.node, tpl, first=event.time, last=event.time)
                record.total += event.total
                record.active += 1
                record.instances += 1
                record.finished = False
            elif record is not None:
                record.active = max(0, record.active - 1)
                record.last = max(record.last, event.time)
                record.finished = record.active == 0
            changed.add(tpl)
        for path, (done, failed, when) in items.items():
            tpl, _ = self._resolve(path)
            record = self.batches.get(tpl)
            if record is None:
                continue
            record.done += done
            record.failed += failed
            record.last = max(record.last, when)
            changed.add(tpl)

    def _innermost(self, errors: list[Event]) -> list[Event]:
        """One entry per failure: a node error re-reported by each enclosing flow shows once."""
        out = []
        for event in errors:
            if type(event) is NodeFailed:
                if event.error is self._last_error or isinstance(event.error, Cancelled):
                    continue
                self._last_error = event.error
            out.append(event)
        return out

    def current_batch_rates(self) -> dict[tuple[str, ...], float]:
        return {path: record.rate for path, record in self.batches.items()}
