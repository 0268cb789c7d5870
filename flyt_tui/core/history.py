"""What the current run did, kept compact and bounded, built from drained batches of records.

The engine hands the session *records*, plain tuples ``(EventClass, run_id, path, node,
node_id, time, *fields)``; the UI drains them about 30 times a second and gives each batch
to ``RunHistory.ingest``. The per-record loop only sorts records into lists by class
(phase starts, which carry nothing the summary needs, are skipped); keying, "the last one
wins" and counting are then done by ``dict(zip(map(itemgetter)))`` and ``Counter``, which
run in C. Event objects are made (``materialize``) only for what is kept or shown: one per
node, store key and log line per tick. Nothing is formatted here and no widget is touched.

What is kept is bounded whatever the run does: a ring of recent records, one summary per
graph node, one per batch, the last writer per store key. A million-step loop leaves the
same footprint as a ten-step one.

Nodes are keyed as in the tree: ``(template path, node id)``, where the template path is
the event path without BatchFlow iteration markers (``"#3"``) and the id is ``0`` for
nodes inside a BatchFlow iteration (those objects are fresh per iteration).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress
from operator import not_
from typing import Any, cast

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
    Record,
    RunFinished,
    RunStarted,
    StoreChanged,
    field_getter,
    is_iteration,
    kind_of,
    materialize,
    node_id_of,
    node_of,
    path_of,
    run_id_of,
    time_of,
)

NodeKey = tuple[tuple[str, ...], int]

# Bounds: how much of a busy run the UI keeps per tick and overall.
RECENT_EVENTS = 256  # the ring of recent events
LOG_LINES_PER_TICK = 40  # entries handed to each log per tick (the rest are counted)
UNTIMED = -1.0  # a node duration no phase of this run measured
MAX_NODE_RECORDS = 5000  # records for paths not in the graph (dynamic flows) are capped
_RESOLVE_CACHE_LIMIT = 20000
ITERATION_STORES = 256  # BatchFlow iterations whose writes are kept (the latest ones)
FAILED_ITEMS = 1000  # failed batch items kept per batch, to be opened (the first ones)
RECENT_ITEMS = 100  # items that succeeded kept per batch (the latest ones)


_PATH = path_of
_NODE = node_of
_TIME = time_of
_KEY = field_getter(StoreChanged, "key")
_OK = field_getter(BatchItemFinished, "ok")
_PHASE = field_getter(PhaseFinished, "phase")
_ACTION = field_getter(NodeFinished, "action")
_NEXT = field_getter(NodeFinished, "next_node")
_RETRY = field_getter(ExecFailed, "attempt", "max_attempts", "error", "wait")
_FAILED = field_getter(NodeFailed, "phase", "error")
_TOTAL = field_getter(BatchStarted, "total")
_ITEM_FIELDS = field_getter(BatchItemFinished, "index", "ok", "error", "duration")


def _PATH_FIELD(record: Record) -> tuple[tuple[str, ...], Any]:
    """(path, phase) of PhaseFinished, (path, action) of NodeFinished (the same position)."""
    return path_of(record), _PHASE(record)


_NEXT_PHASE = {"prep": "exec", "exec": "post", "post": "post"}


is_iteration_marker = is_iteration  # ``"#12"``: the path component of a BatchFlow iteration


def will_retry(wait: float, attempt: int, max_attempts: int) -> bool:
    """Whether a failed exec attempt (an ``ExecFailed``) is followed by another attempt."""
    return wait > 0 or attempt < max_attempts


def iteration_of(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The innermost BatchFlow iteration a path lies in, ``(..., batch, "#i")``, else ``None``."""
    for cut in range(len(path) - 1, -1, -1):
        if is_iteration_marker(path[cut]):
            return path[: cut + 1]
    return None


def template_path(path: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """The path without iteration markers, and whether it had any."""
    if not any(is_iteration_marker(part) for part in path):
        return path, False
    return tuple(part for part in path if not is_iteration_marker(part)), True


class NodeState(StrEnum):
    """The states a node shows in the tree."""

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
    state: NodeState = NodeState.PENDING
    phase: str = ""  # the running phase, or the failed one
    runs: int = 0  # executions finished (ok or failed)
    action: str | None = None  # the latest action
    next_node: str | None = None
    duration: float = 0.0  # the latest execution: sum of its phase durations (UNTIMED: none ran)
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


@dataclass(frozen=True)
class ItemOutcome:
    """One finished batch item: its index, ok or its error, and how long it took."""

    index: int
    ok: bool
    error: BaseException | None
    duration: float


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
    fallbacks: int = 0  # items whose result came from the fallback
    outcomes: dict[int, ItemOutcome] = field(default_factory=dict)  # kept items (see keep_outcomes)
    attempts: dict[int, int] = field(default_factory=dict)  # item index -> failed attempts so far
    failures_kept: int = 0

    def keep_outcomes(self, finished: list[Record], failed: list[Record]) -> None:
        """Keep what a user opens an item for: every failed item (the first ``FAILED_ITEMS``)
        and the latest ``RECENT_ITEMS`` that succeeded; the rest are only counted."""
        outcomes = self.outcomes
        for record in failed:
            if self.failures_kept >= FAILED_ITEMS:
                break
            outcome = ItemOutcome(*_ITEM_FIELDS(record))
            self.failures_kept += outcome.index not in outcomes
            outcomes[outcome.index] = outcome
        for record in finished[-RECENT_ITEMS:]:
            if _OK(record):
                outcome = ItemOutcome(*_ITEM_FIELDS(record))
                previous = outcomes.pop(outcome.index, None)
                if previous is not None and not previous.ok:
                    self.failures_kept -= 1
                outcomes[outcome.index] = outcome
        extra = len(outcomes) - self.failures_kept - RECENT_ITEMS
        if extra > 0:  # the oldest that succeeded go (a dict keeps the order they came in)
            for index in [index for index, outcome in outcomes.items() if outcome.ok][:extra]:
                del outcomes[index]

    @property
    def rate(self) -> float:
        """Items per second since the batch started."""
        elapsed = self.last - self.first
        return self.done / elapsed if elapsed > 0 else 0.0


@dataclass
class Tick:
    """What one drained batch changed, for the widgets to apply once."""

    nodes: set[NodeKey] = field(default_factory=set)
    store: dict[str, StoreChanged] = field(default_factory=dict)  # writes to the run's own store
    iterations: set[tuple[str, ...]] = field(default_factory=set)  # iterations whose stores changed
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

    def merge(self, later: Tick) -> None:
        """Fold a later tick into this one (the UI applies several drains at once), bounded."""
        self.nodes |= later.nodes
        self.store.update(later.store)
        self.iterations |= later.iterations
        self.batches |= later.batches
        self.retries, self.retries_skipped = _bounded(
            self.retries, later.retries, self.retries_skipped + later.retries_skipped
        )
        self.errors, self.errors_skipped = _bounded(
            self.errors, later.errors, self.errors_skipped + later.errors_skipped
        )
        joined = self.tail + later.tail
        self.tail_skipped += later.tail_skipped + max(0, len(joined) - LOG_LINES_PER_TICK)
        self.tail = joined[-LOG_LINES_PER_TICK:]
        self.started = self.started or later.started
        self.finished = later.finished or self.finished
        self.count += later.count


def _bounded(first: list[Event], second: list[Event], skipped: int) -> tuple[list[Event], int]:
    """The first entries of both lists up to the per-tick bound; the rest counted as skipped."""
    room = max(0, LOG_LINES_PER_TICK - len(first))
    return first + second[:room], skipped + max(0, len(second) - room)


class RunHistory:
    """The bounded record of one run; ``ingest`` folds a drained batch into it."""

    def __init__(self, run_id: int | None = None, recent: int = RECENT_EVENTS) -> None:
        self.run_id = run_id
        self.recent: deque[Record] = deque(maxlen=recent)  # the latest records, as they came
        self.nodes: dict[NodeKey, NodeRecord] = {}
        self.batches: dict[tuple[str, ...], BatchRecord] = {}
        self.writers: dict[str, str] = {}  # store key -> the node that wrote it last
        # BatchFlow iteration path (..., batch, "#i") -> key -> its latest write record
        self.iteration_stores: dict[tuple[str, ...], dict[str, Record]] = {}
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
        return self._key(event.path, event.node_id)

    def _key(self, path: tuple[str, ...], node_id: int) -> NodeKey:
        tpl, in_iteration = self._resolve(path)
        return (tpl, 0 if in_iteration else node_id)

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
    def ingest(self, records: Iterable[Record]) -> Tick:
        """Fold a drained batch of records into the history; return what changed.

        Records of another run (a cancelled run still finishing) are dropped.
        """
        tick = Tick()
        batch = records if isinstance(records, list) else list(records)
        if not batch:
            return tick
        run_id = self.run_id
        if run_id is None:
            first = next((record for record in batch if kind_of(record) is RunStarted), None)
            if first is None:
                return tick
            run_id = self.run_id = run_id_of(first)
        # A session's queue only ever holds its own run's records: check the ends, filter if needed.
        if run_id_of(batch[0]) == run_id and run_id_of(batch[-1]) == run_id:
            kept = batch
        else:
            kept = [record for record in batch if run_id_of(record) == run_id]
            if not kept:
                return tick

        phase_done: list[Record] = []
        writes: list[Record] = []
        node_starts: list[Record] = []
        node_ends: list[Record] = []
        items: list[Record] = []
        rare: list[Record] = []
        add_phase = phase_done.append
        add_write = writes.append
        add_start = node_starts.append
        add_end = node_ends.append
        add_item = items.append
        add_rare = rare.append
        for record in kept:
            kind = kind_of(record)
            if kind is PhaseStarted:
                continue
            if kind is PhaseFinished:
                add_phase(record)
            elif kind is StoreChanged:
                add_write(record)
            elif kind is NodeStarted:
                add_start(record)
            elif kind is NodeFinished:
                add_end(record)
            elif kind is BatchItemFinished:
                add_item(record)
            else:
                add_rare(record)

        tick.count = len(kept)
        self.events += len(kept)
        maxlen = self.recent.maxlen or len(kept)
        self.recent.extend(kept[-maxlen:])
        per_log = LOG_LINES_PER_TICK
        tail = kept[-per_log:]
        tick.tail = [materialize(record) for record in tail]
        tick.tail_skipped = len(kept) - len(tail)
        if writes:
            own = [record for record in writes if not self._resolve(path_of(record))[1]]
            if len(own) != len(writes):  # BatchFlow iterations write to stores of their own
                self._fold_iteration_writes(tick, [record for record in writes if self._resolve(path_of(record))[1]])
            if own:
                latest_writes = dict(zip(map(_KEY, own), own, strict=True))
                self.writers.update(zip(latest_writes, map(_NODE, latest_writes.values()), strict=True))
                tick.store = {key: cast(StoreChanged, materialize(record)) for key, record in latest_writes.items()}

        last: dict[tuple[str, ...], Record] = dict(zip(map(_PATH, node_ends), node_ends, strict=True))
        fallbacks: dict[tuple[str, ...], Record] = {}
        batch_records: list[Record] = []
        retries = tick.retries
        errors: list[Record] = []
        item_attempts: list[tuple[str, ...]] = []
        for record in rare:
            kind = kind_of(record)
            if kind is ExecFailed or kind is NodeFailed:
                path = path_of(record)
                current = last.get(path)
                if current is None or time_of(record) >= time_of(current):
                    last[path] = record
                if kind is ExecFailed:
                    if path and is_iteration_marker(path[-1]):  # a batch item's failed attempt
                        item_attempts.append(path)
                    if len(retries) < per_log:
                        retries.append(materialize(record))
                    else:
                        tick.retries_skipped += 1
                elif len(errors) < per_log:
                    errors.append(record)
                else:
                    tick.errors_skipped += 1
            elif kind is FallbackUsed:
                path = path_of(record)
                fallbacks[path] = record
                if path and is_iteration_marker(path[-1]):  # a batch item fell back
                    tpl, _ = self._resolve(path[:-1])
                    summary = self.batches.get(tpl)
                    if summary is not None:
                        summary.fallbacks += 1
                        tick.batches.add(tpl)
                if len(retries) < per_log:
                    retries.append(materialize(record))
                else:
                    tick.retries_skipped += 1
            elif kind is BatchStarted or kind is BatchFinished:
                batch_records.append(record)
            elif kind is RunStarted:
                tick.started = cast(RunStarted, materialize(record))
                self.started = time_of(record)
            elif kind is RunFinished:
                tick.finished = self.finished = cast(RunFinished, materialize(record))

        starts = dict(zip(map(_PATH, node_starts), node_starts, strict=True))
        results = dict(zip(map(_PATH_FIELD, phase_done), phase_done, strict=True))
        taken = Counter(map(_PATH_FIELD, node_ends))
        self._fold_nodes(tick, starts, last, results, taken, fallbacks)
        if items or batch_records:
            failed = list(compress(items, map(not_, map(_OK, items))))
            for record in failed:
                if len(errors) < per_log:
                    errors.append(record)
                else:
                    tick.errors_skipped += 1
            self._fold_batches(tick, items, failed, batch_records)
        for path in item_attempts:  # after the batches: their BatchStarted may be in this tick
            self._count_item_attempt(path)
        if errors:
            errors.sort(key=_TIME)
            tick.errors = self._innermost([materialize(record) for record in errors])
        return tick

    def adopt_counts(self, counts: Mapping[tuple[Any, ...], int]) -> None:
        """Set every node's runs and action counts, and the steps, from ``counts``:
        ``(path, node_id, action) -> how many`` (``action`` ``None``: failures). For a run
        folded from fewer records than it had (``recording_index.py``)."""
        runs: Counter[NodeKey] = Counter()
        edges: dict[NodeKey, Counter[str]] = {}
        steps = 0
        for (path, node_id, action), count in counts.items():
            key = self._key(path, node_id)
            runs[key] += count
            if action is not None:
                edges.setdefault(key, Counter())[action] += count
                steps += count
        for key, count in runs.items():
            summary = self.nodes.get(key)
            if summary is not None:
                summary.runs = count
                summary.edges = dict(edges.get(key, {}))
        self.steps = steps

    def _fold_iteration_writes(self, tick: Tick, writes: list[Record]) -> None:
        """Writes inside BatchFlow iterations: kept per iteration (the path up to its
        ``"#i"``), never mixed into the run's own store; the latest iterations only."""
        stores = self.iteration_stores
        for record in writes:
            iteration = iteration_of(path_of(record))
            if iteration is None:  # pragma: no cover - the caller passes iteration writes only
                continue
            store = stores.get(iteration)
            if store is None:
                if len(stores) >= ITERATION_STORES:
                    del stores[next(iter(stores))]
                store = stores[iteration] = {}
            store[_KEY(record)] = record
            tick.iterations.add(iteration)

    def iteration_writes(self, iteration: tuple[str, ...]) -> dict[str, StoreChanged]:
        """The writes of one BatchFlow iteration so far (key → its latest ``StoreChanged``)."""
        return {
            key: cast(StoreChanged, materialize(record))
            for key, record in self.iteration_stores.get(iteration, {}).items()
        }

    def iteration_inputs(self, iteration: tuple[str, ...]) -> Mapping[str, Any] | None:
        """The inputs of BatchFlow iteration ``(..., batch, "#i")``: entry ``i`` of the
        batch's prep result (its ``batch_func``'s list), when the history has it."""
        if len(iteration) < 2 or not is_iteration_marker(iteration[-1]):
            return None
        index = int(iteration[-1][1:])
        batch_path, _ = self._resolve(iteration[:-1])
        for key, summary in self.nodes.items():
            if key[0] != batch_path:
                continue
            known, inputs = summary.result_of("prep")
            if known and isinstance(inputs, list) and index < len(inputs) and isinstance(inputs[index], Mapping):
                return inputs[index]
        return None

    def _fold_nodes(
        self,
        tick: Tick,
        starts: dict[tuple[str, ...], Record],
        last: dict[tuple[str, ...], Record],
        results: dict[tuple[tuple[str, ...], str], Record],
        taken: Mapping[tuple[tuple[str, ...], str], int],
        fallbacks: dict[tuple[str, ...], Record],
    ) -> None:
        changed = tick.nodes
        # The latest lifecycle record per raw path decides the state: (time, rank) breaks the
        # ties of shared timestamps (a node's end and its post's end share one).
        latest: dict[tuple[str, ...], tuple[float, int, Record]] = {}
        for path, record in starts.items():
            when = time_of(record)
            latest[path] = (when, 0, record)
            key = self._key(path, node_id_of(record))
            summary = self._node(key, node_of(record))
            if summary is not None and when >= summary.started:
                summary.started = when
                summary.fallback = False
                summary.error = None
                summary.attempt = 0
                changed.add(key)
        for (path, phase), record in results.items():
            when = time_of(record)
            current = latest.get(path)
            if current is None or (when, 1) >= current[:2]:
                latest[path] = (when, 1, record)
            summary = self._node(self._key(path, node_id_of(record)), node_of(record))
            if summary is None:
                continue
            previous = summary.prep if phase == "prep" else summary.exec if phase == "exec" else summary.post
            if previous is None or when >= previous.time:
                event = cast(PhaseFinished, materialize(record))
                if phase == "prep":
                    summary.prep = event
                elif phase == "exec":
                    summary.exec = event
                else:
                    summary.post = event
        for path, record in last.items():
            rank = 2 if kind_of(record) is ExecFailed else 3
            current = latest.get(path)
            if current is None or (time_of(record), rank) >= current[:2]:
                latest[path] = (time_of(record), rank, record)
        for (path, action), count in taken.items():
            ended = last.get(path)
            if ended is None:
                continue
            record = ended
            key = self._key(path, node_id_of(record))
            summary = self._node(key, node_of(record))
            if summary is not None:
                summary.edges[action] = summary.edges.get(action, 0) + count
                summary.runs += count
                self.steps += count
                changed.add(key)
        for path, record in fallbacks.items():
            summary = self.nodes.get(self._key(path, node_id_of(record)))
            if summary is not None and time_of(record) >= summary.started:
                summary.fallback = True
        for path, (when, _rank, record) in latest.items():
            key = self._key(path, node_id_of(record))
            summary = self._node(key, node_of(record))
            if summary is None or when < summary.last:
                continue
            summary.last = when
            changed.add(key)
            kind = kind_of(record)
            if kind is NodeStarted:
                summary.state = NodeState.RUNNING
                summary.phase = "prep"
            elif kind is PhaseFinished:
                summary.state = NodeState.RUNNING
                summary.phase = _NEXT_PHASE.get(_PHASE(record), "post")
            elif kind is NodeFinished:
                summary.state = NodeState.DONE
                summary.phase = ""
                summary.action = _ACTION(record)
                summary.next_node = _NEXT(record)
                phases = [
                    phase_event.duration
                    for phase_event in (summary.prep, summary.exec, summary.post)
                    if phase_event is not None and phase_event.time >= summary.started
                ]
                # none: a flow a fork started inside (its own phases never ran in this run)
                summary.duration = sum(phases) if phases else UNTIMED
            elif kind is ExecFailed:
                attempt, max_attempts, error, wait = _RETRY(record)
                summary.attempt = attempt
                summary.max_attempts = max_attempts
                summary.error = error
                summary.state = NodeState.RETRYING if will_retry(wait, attempt, max_attempts) else NodeState.RUNNING
                summary.phase = "exec"
            elif kind is NodeFailed:
                phase, error = _FAILED(record)
                summary.state = NodeState.STOPPED if isinstance(error, Cancelled) else NodeState.FAILED
                summary.phase = phase
                summary.error = error
                summary.runs += 1

    def _fold_batches(self, tick: Tick, items: list[Record], failed: list[Record], batch_records: list[Record]) -> None:
        changed = tick.batches
        for record in batch_records:
            tpl, _ = self._resolve(path_of(record))
            summary = self.batches.get(tpl)
            if kind_of(record) is BatchStarted:
                if summary is None:
                    summary = self.batches[tpl] = BatchRecord(
                        node_of(record), tpl, first=time_of(record), last=time_of(record)
                    )
                summary.total += _TOTAL(record)
                summary.active += 1
                summary.instances += 1
                summary.finished = False
            elif summary is not None:
                summary.active = max(0, summary.active - 1)
                summary.last = max(summary.last, time_of(record))
                summary.finished = summary.active == 0
            changed.add(tpl)
        if not items:
            return
        done = Counter(map(_PATH, items))
        failures = Counter(map(_PATH, failed))
        when = dict(zip(map(_PATH, items), map(_TIME, items), strict=True))
        by_path: dict[tuple[str, ...], list[Record]] = {}
        failed_by_path: dict[tuple[str, ...], list[Record]] = {}
        for record in items[-RECENT_ITEMS:] if len(done) == 1 else items:
            by_path.setdefault(_PATH(record), []).append(record)
        for record in failed:
            failed_by_path.setdefault(_PATH(record), []).append(record)
        for path, count in done.items():
            tpl, _ = self._resolve(path)
            summary = self.batches.get(tpl)
            if summary is None:
                continue
            summary.keep_outcomes(by_path.get(path, []), failed_by_path.get(path, []))
            summary.done += count
            summary.failed += failures.get(path, 0)
            summary.last = max(summary.last, when[path])
            changed.add(tpl)

    def _count_item_attempt(self, path: tuple[str, ...]) -> None:
        tpl, _ = self._resolve(path[:-1])
        summary = self.batches.get(tpl)
        if summary is None:
            return
        index = int(path[-1][1:])
        if len(summary.attempts) < FAILED_ITEMS or index in summary.attempts:
            summary.attempts[index] = summary.attempts.get(index, 0) + 1

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
