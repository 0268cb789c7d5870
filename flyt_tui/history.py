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

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter, not_
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


_PATH = attrgetter("path")
_KEY = attrgetter("key")
_NODE = attrgetter("node")
_TIME = attrgetter("time")
_OK = attrgetter("ok")
_PATH_PHASE = attrgetter("path", "phase")
_PATH_ACTION = attrgetter("path", "action")
_NEXT_PHASE = {"prep": "exec", "exec": "post", "post": "post"}


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
        self.failed_key: NodeKey | None = None  # the node whose failure ended the run (innermost)

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

        Events of another run (a cancelled run still finishing) are dropped. The Python
        loop only sorts events into lists by type (skipping phase starts, which carry
        nothing the summary needs); keying, "last one wins" and counting are done by
        ``dict(zip(map(...)))`` and ``Counter``, which run in C.
        """
        tick = Tick()
        batch = events if isinstance(events, list) else list(events)
        if not batch:
            return tick
        run_id = self.run_id
        if run_id is None:
            first = next((event for event in batch if type(event) is RunStarted), None)
            if first is None:
                return tick
            run_id = self.run_id = first.run_id
        # A session's queue only ever holds its own run's events: check the ends, filter if needed.
        if batch[0].run_id == run_id and batch[-1].run_id == run_id:
            kept = batch
        else:
            kept = [event for event in batch if event.run_id == run_id]
            if not kept:
                return tick

        phase_done: list[PhaseFinished] = []
        writes: list[StoreChanged] = []
        node_starts: list[NodeStarted] = []
        node_ends: list[NodeFinished] = []
        items: list[BatchItemFinished] = []
        rare: list[Event] = []
        add_phase = phase_done.append
        add_write = writes.append
        add_start = node_starts.append
        add_end = node_ends.append
        add_item = items.append
        add_rare = rare.append
        for event in kept:
            kind = type(event)
            if kind is PhaseStarted:
                continue
            if kind is PhaseFinished:
                add_phase(event)
            elif kind is StoreChanged:
                add_write(event)
            elif kind is NodeStarted:
                add_start(event)
            elif kind is NodeFinished:
                add_end(event)
            elif kind is BatchItemFinished:
                add_item(event)
            else:
                add_rare(event)

        tick.count = len(kept)
        self.events += len(kept)
        maxlen = self.recent.maxlen or len(kept)
        self.recent.extend(kept[-maxlen:])
        per_log = LOG_LINES_PER_TICK
        if len(kept) > per_log:
            tick.tail = kept[-per_log:]
            tick.tail_skipped = len(kept) - per_log
        else:
            tick.tail = kept
        if writes:
            store = tick.store = dict(zip(map(_KEY, writes), writes, strict=False))
            self.writers.update(zip(store, map(_NODE, store.values()), strict=False))

        last: dict[tuple[str, ...], Event] = (
            dict(zip(map(_PATH, node_ends), node_ends, strict=False)) if node_ends else {}
        )
        fallbacks: dict[tuple[str, ...], FallbackUsed] = {}
        batch_events: list[Event] = []
        retries = tick.retries
        errors = tick.errors
        for event in rare:
            kind = type(event)
            if kind is ExecFailed:
                current = last.get(event.path)
                if current is None or event.time >= current.time:
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
                current = last.get(event.path)
                if current is None or event.time >= current.time:
                    last[event.path] = event
                if len(errors) < per_log:
                    errors.append(event)
                else:
                    tick.errors_skipped += 1
            elif kind is BatchStarted or kind is BatchFinished:
                batch_events.append(event)
            elif kind is RunStarted:
                tick.started = event
                self.started = event.time
            elif kind is RunFinished:
                tick.finished = self.finished = event

        starts = dict(zip(map(_PATH, node_starts), node_starts, strict=False)) if node_starts else {}
        results = dict(zip(map(_PATH_PHASE, phase_done), phase_done, strict=False)) if phase_done else {}
        taken = Counter(map(_PATH_ACTION, node_ends)) if node_ends else {}
        self._fold_nodes(tick, starts, last, results, taken, fallbacks)
        if items or batch_events:
            failed = list(compress(items, map(not_, map(_OK, items)))) if items else []
            for event in failed:
                if len(errors) < per_log:
                    errors.append(event)
                else:
                    tick.errors_skipped += 1
            self._fold_batches(tick, items, failed, batch_events)
        if errors:
            tick.errors = self._innermost(errors)
        return tick

    def _fold_nodes(
        self,
        tick: Tick,
        starts: dict[tuple[str, ...], NodeStarted],
        last: dict[tuple[str, ...], Event],
        results: dict[tuple[tuple[str, ...], str], PhaseFinished],
        taken: Mapping[tuple[tuple[str, ...], str], int],
        fallbacks: dict[tuple[str, ...], FallbackUsed],
    ) -> None:
        changed = tick.nodes
        # The latest lifecycle event per raw path decides the state: (time, rank) breaks the
        # ties of shared timestamps (a node's end and its post's end share one).
        latest: dict[tuple[str, ...], tuple[float, int, Event]] = {}
        for event in starts.values():
            latest[event.path] = (event.time, 0, event)
            key = self.key_of(event)
            record = self._node(key, event.node)
            if record is not None and event.time >= record.started:
                record.started = event.time
                record.fallback = False
                record.error = None
                record.attempt = 0
                changed.add(key)
        for event in results.values():
            path = event.path
            current = latest.get(path)
            if current is None or (event.time, 1) >= current[:2]:
                latest[path] = (event.time, 1, event)
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
        for path, event in last.items():
            rank = 2 if type(event) is ExecFailed else 3
            current = latest.get(path)
            if current is None or (event.time, rank) >= current[:2]:
                latest[path] = (event.time, rank, event)
        for (path, action), count in taken.items():
            event = last.get(path)
            if event is None:
                continue
            key = self.key_of(event)
            record = self._node(key, event.node)
            if record is not None:
                record.edges[action] = record.edges.get(action, 0) + count
                record.runs += count
                self.steps += count
                changed.add(key)
        for event in fallbacks.values():
            record = self.nodes.get(self.key_of(event))
            if record is not None and event.time >= record.started:
                record.fallback = True
        for when, _rank, event in latest.values():
            key = self.key_of(event)
            record = self._node(key, event.node)
            if record is None or when < record.last:
                continue
            record.last = when
            changed.add(key)
            kind = type(event)
            if kind is NodeStarted:
                record.state = NodeState.RUNNING
                record.phase = "prep"
            elif kind is PhaseFinished:
                record.state = NodeState.RUNNING
                record.phase = _NEXT_PHASE.get(event.phase, "post")
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
                retrying = event.wait > 0 or event.attempt < event.max_attempts
                record.state = NodeState.RETRYING if retrying else NodeState.RUNNING
                record.phase = "exec"
            elif kind is NodeFailed:
                record.state = NodeState.STOPPED if isinstance(event.error, Cancelled) else NodeState.FAILED
                record.phase = event.phase
                record.error = event.error
                record.runs += 1

    def _fold_batches(
        self,
        tick: Tick,
        items: list[BatchItemFinished],
        failed: list[BatchItemFinished],
        batch_events: list[Event],
    ) -> None:
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
        if not items:
            return
        done = Counter(map(_PATH, items))
        failures = Counter(map(_PATH, failed)) if failed else {}
        when = dict(zip(map(_PATH, items), map(_TIME, items), strict=False))
        for path, count in done.items():
            tpl, _ = self._resolve(path)
            record = self.batches.get(tpl)
            if record is None:
                continue
            record.done += count
            record.failed += failures.get(path, 0)
            record.last = max(record.last, when[path])
            changed.add(tpl)

    def _innermost(self, errors: list[Event]) -> list[Event]:
        """One entry per failure: a node error re-reported by each enclosing flow shows once."""
        out = []
        for event in errors:
            if type(event) is NodeFailed:
                if event.error is self._last_error or isinstance(event.error, Cancelled):
                    continue
                self._last_error = event.error
                self.failed_key = self.key_of(event)
            out.append(event)
        return out

    def current_batch_rates(self) -> dict[tuple[str, ...], float]:
        return {path: record.rate for path, record in self.batches.items()}
