"""One run of a flow: a worker thread, the step gate, and the event queue the UI drains.

The engine reports to ``events.append`` (a C call: no lock, no Python frame) and consults
the ``StepGate`` only at checkpoints and only while it is armed, so a free run pays
almost nothing for being watched. The UI drains ``events`` on a timer; every wait in
here has a timeout and re-checks cancellation, so stopping or quitting is immediate.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

from flyt_engine import Cancelled, Context, Node, SharedStore, StartAt, run
from flyt_engine.events import (
    Event,
    PhaseFinished,
    RunStarted,
    field_getter,
    kind_of,
    materialize,
    node_id_of,
    path_of,
    run_id_of,
)

from .breakpoints import BreakOn, Breakpoints, NodeBreakpoint, Pause
from .snapshots import ValueSnapshots

# Records waiting for the drain (about 60 MB) beyond which a run is held back at
# checkpoints: far above what a busy run queues between two drains.
BACKLOG_LIMIT = 500_000

# Once stop() was called, how long run_blocking waits for a flow stuck in code that
# ignores its Context before abandoning the (daemon) thread.
ABANDON_AFTER = 1.0


class _GarbageCollection:
    """While runs are active, collect garbage when the UI drains instead of mid-run.

    Records live from the engine's append to the UI's next drain. Collected mid-run, each
    of them would be traversed and promoted through the generations: the trap that makes
    an observed step 2.5 times slower. So while a run is active the automatic collector is
    off and ``after_drain`` collects right after each drain, when the queue is nearly
    empty: the young generation every time; generation 1 at most once a second and all of
    them at most once in ten, and less often when they cost more (each walks every record
    that survived into it), so that each takes at most ``SHARE`` of the time.
    """

    MIDDLE_EVERY = 1.0  # seconds between two collections of generation 1, at least ...
    FULL_EVERY = 10.0  # ... and between two full collections, at least
    SHARE = 0.02

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._active = 0
        self._was_enabled = False
        self._middle_at = 0.0
        self._full_at = 0.0

    def pause(self) -> None:
        with self._lock:
            if self._active == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
                now = self._clock()
                self._middle_at = now + self.MIDDLE_EVERY
                self._full_at = now + self.FULL_EVERY
            self._active += 1

    def resume(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._was_enabled:
                gc.enable()

    def after_drain(self) -> None:
        """Collect what is due; call it right after the UI drained the records."""
        if not self._active:
            return
        now = self._clock()
        if now >= self._full_at:
            self._full_at = self._collect(2, now, self.FULL_EVERY)
            self._middle_at = now + self.MIDDLE_EVERY
        elif now >= self._middle_at:
            self._middle_at = self._collect(1, now, self.MIDDLE_EVERY)
        else:
            gc.collect(0)

    def _collect(self, generation: int, now: float, least: float) -> float:
        """Collect ``generation``; returns when it is due next (its cost sets the spacing)."""
        gc.collect(generation)
        return now + max(least, (self._clock() - now) / self.SHARE)


GARBAGE = _GarbageCollection()


class RunState(StrEnum):
    """What a run is doing, in the words the status line shows."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FAILED = "failed"
    DONE = "done"


class StepGate:
    """Holds the run at a checkpoint when ``Breakpoints.decide`` says so (``breakpoints.py``:
    stepping, run to cursor, step out, node, data and error breakpoints: one decision).

    ``armed`` is what the engine reads: false while nothing could stop the run. It also
    holds a run back while the UI is behind: when ``throttled``, a checkpoint waits until
    fewer than ``backlog_limit`` records wait to be drained, which bounds the memory a flow
    that outruns the screen can take. With ``report_only`` (headless) a pause is reported
    and the run goes on.
    """

    def __init__(
        self,
        breakpoints: Iterable[str] | Breakpoints = (),
        break_on_error: bool = False,
        *,
        report_only: bool = False,
    ) -> None:
        self._cond = threading.Condition()
        if isinstance(breakpoints, Breakpoints):
            self.points = breakpoints
        else:
            self.points = Breakpoints()
            for name in breakpoints:
                self.points.add(NodeBreakpoint.parse(name))
        if break_on_error:
            self.points.set_break_on({*self.points.break_on, BreakOn.ERROR})
        self.points.new_run()
        self.report_only = report_only
        self.quiet = False  # set while the UI writes a user edit
        self._generation = 0  # bumped by every release; a paused thread waits for a change
        self._cancelled: threading.Event | None = None
        self.on_pause: Any = None  # callable(event, pause) -> None, called on the run thread
        self.context: Callable[[tuple[Any, ...]], tuple[Any, Any]] | None = None  # (shared, prep_of)
        self.throttled = False
        self.backlog_limit = 0
        self._backlog: Callable[[], int] = lambda: 0
        self._drained = threading.Event()
        self.armed = False  # the engine's gate protocol (Context.with_gate): armed, nodes, armed_writes
        self.nodes: frozenset[str] | None = None
        self.armed_writes = False
        self.keys: frozenset[str] | None = None
        self.points.on_change = self._rearm
        self._rearm()

    @property
    def mode(self) -> str:
        return str(self.points.mode)

    @property
    def breakpoints(self) -> frozenset[str]:
        return frozenset(self.points.names)

    def _rearm(self) -> None:
        points = self.points
        self.armed = points.armed_phases or self.throttled
        self.nodes = None if self.throttled else points.only_nodes
        self.armed_writes = points.armed_writes
        self.keys = points.only_keys

    def bind_cancellation(self, done: threading.Event | None) -> None:
        self._cancelled = done

    # -- the engine side ------------------------------------------------------------------
    def __call__(self, record: tuple[Any, ...]) -> None:
        if self.quiet:  # a user edit while paused: reported, never a pause of its own
            return
        if self.throttled:
            self._hold_back()
        if not self.points.armed:
            return
        shared, prep_of = self.context(record) if self.context is not None else (None, None)
        pause = self.points.decide(record, shared, prep_of)
        if pause is None:
            return
        event = materialize(record)
        if self.report_only:
            if self.on_pause is not None:
                self.on_pause(event, pause)
            return
        with self._cond:
            generation = self._generation
            if self.on_pause is not None:
                self.on_pause(event, pause)
            while self._generation == generation:
                if self._cancelled is not None and self._cancelled.is_set():
                    break
                self._cond.wait(0.1)

    def _hold_back(self) -> None:
        """Wait (at a checkpoint) while the UI has more than ``backlog_limit`` records to drain."""
        while self._backlog() > self.backlog_limit:
            if self._cancelled is not None and self._cancelled.is_set():
                return
            self._drained.clear()
            self._drained.wait(0.05)

    # -- the UI side ----------------------------------------------------------------------
    def release(self, mode: str, *, target: str | None = None, out_of: tuple[str, ...] | None = None) -> None:
        """Leave the current pause (if any) and go on in ``mode`` (``StepMode``)."""
        with self._cond:
            self.points.go(mode, target=target, out_of=out_of)
            self._generation += 1
            self._cond.notify_all()

    def set_breakpoints(self, names: Iterable[str]) -> None:
        """Replace the plain node breakpoints (before prep) by ``names``."""
        wanted = set(names)
        points = self.points
        for bp in list(points.nodes.values()):
            if bp.phase == "prep" and bp.condition is None and bp.node not in wanted:
                points.remove(bp.node)
        for name in wanted - points.names:
            points.add(NodeBreakpoint(name))

    def watch_backlog(self, backlog: Callable[[], int], limit: int) -> None:
        """How to count the records waiting for the UI, and how many are too many."""
        self._backlog = backlog
        self.backlog_limit = limit

    def throttle(self, on: bool) -> None:
        """Hold the run back at checkpoints while the backlog is over the limit (or stop)."""
        with self._cond:
            self.throttled = on
            self._rearm()
        self._drained.set()

    def drained(self) -> None:
        """The UI just drained: a held-back run may go on."""
        self._drained.set()


_PHASE = field_getter(PhaseFinished, "phase")
_RESULT = field_getter(PhaseFinished, "result")


class RunSession:
    """One run of one flow on a worker thread; drive it from the UI thread."""

    def __init__(
        self,
        flow: Node,
        initial_store: Mapping[str, Any] | None = None,
        *,
        breakpoints: Iterable[str] | Breakpoints = (),
        break_on_error: bool = False,
        prepare: Callable[[], Mapping[str, Any]] | None = None,
        report_only: bool = False,
        keep_values: bool = False,
        start_at: StartAt | None = None,
        backlog_limit: int = BACKLOG_LIMIT,
    ) -> None:
        """``prepare``, when given, makes the initial store on the run thread (a deep copy
        of a big initial store must not hold up the UI); it is merged over ``initial_store``.
        ``keep_values`` keeps each written value as it was at the write (``snapshots``, for
        the timeline); ``start_at`` starts the run part-way (a fork). Past ``backlog_limit``
        records waiting for ``pump``, the run is held back at checkpoints."""
        if not isinstance(flow, Node):
            raise TypeError(f"RunSession runs a Node or Flow, not {type(flow).__name__}")
        self.flow = flow
        self.store = SharedStore(dict(initial_store or {}))
        self._prepare = prepare
        self.start_at = start_at
        self.snapshots: ValueSnapshots | None = None
        if keep_values:
            self.snapshots = ValueSnapshots(lambda: self.gate.quiet)
            self.store.watch(self.snapshots)
        # The engine records into this list: `append` is one C call, and records are plain
        # tuples (EventClass, header, time, *fields), a fraction of the cost of event objects. Draining
        # takes a prefix with two atomic list operations: the run never waits, nothing is lost.
        self.events: list[tuple[Any, ...]] = []
        self.state = RunState.IDLE
        self.paused_at: Event | None = None
        self.pause: Pause | None = None  # why it is paused (Breakpoints.decide's answer)
        self.on_pause: Callable[[Event, Pause], None] | None = None  # called on the run thread
        self.action: str | None = None
        self.error: BaseException | None = None
        self.run_id: int | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.paused_seconds = 0.0  # time spent paused at checkpoints so far
        self._paused_since: float | None = None
        self.gate = StepGate(breakpoints, break_on_error, report_only=report_only)
        self.gate.on_pause = self._paused
        self.gate.context = self._decision_context
        self.gate.watch_backlog(self.events.__len__, backlog_limit)
        self.gate.points.has_fallback = _fallback_finder(flow)
        ctx, self._cancel = Context.background().with_cancel()
        self.gate.bind_cancellation(ctx.done())
        self.ctx = ctx.with_recorder(self.events.append).with_gate(self.gate)
        self._finished = threading.Event()
        self._stop_requested_at: float | None = None
        self._thread: threading.Thread | None = None

    # -- running --------------------------------------------------------------------------
    def run_blocking(self, mode: str = "run", *, target: str | None = None) -> None:
        """Run the flow to its end (the body of the UI's thread worker); never raises.

        The flow itself runs on a daemon thread of its own, so that a flow stuck in code
        that ignores cancellation cannot keep the app from quitting.
        """
        self.start(mode, target=target)
        while not self._finished.wait(0.1):
            stop_at = self._stop_requested_at
            if stop_at is not None and time.monotonic() - stop_at > ABANDON_AFTER:
                self.state = RunState.STOPPED
                self.error = self.error or Cancelled("stopped; the flow did not respond to cancellation")
                return

    def start(self, mode: str = "run", *, target: str | None = None) -> None:
        """Start the run on a daemon thread and return at once: ``mode`` ``"run"``,
        ``"step"``/``"phase"`` (paused at the first checkpoint), ``"node"`` (before the first
        node's prep) or ``"cursor"`` (before ``target``'s prep)."""
        if self._thread is not None:
            raise RuntimeError("a RunSession runs once; make a new one to run again")
        if mode not in ("run", "step", "phase", "node", "cursor"):
            raise ValueError(f"unknown run mode {mode!r}")
        if mode == "run":
            self.gate.points.go("run")
        elif mode == "cursor":
            self.gate.release("cursor", target=target)
        else:
            self.gate.release("node" if mode == "node" else "phase")
        self.state = RunState.RUNNING
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"flyt-run-{self.flow.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        GARBAGE.pause()
        try:
            if self._prepare is not None:
                self.store.merge(self._prepare())
            self.gate.points.seed(self.store)
            self.action = run(self.flow, self.store, ctx=self.ctx, start_at=self.start_at)
            self.state = RunState.DONE
        except Cancelled as exc:
            self.error = exc
            self.state = RunState.STOPPED
        except BaseException as exc:  # the user's flow failed: report it, never crash the app
            self.error = exc
            self.state = RunState.FAILED
        finally:
            GARBAGE.resume()
            self._unpaused()
            self.paused_at = None
            self.finished_at = time.monotonic()
            self._finished.set()

    def _paused(self, event: Event, pause: Pause) -> None:
        if self.on_pause is not None:  # headless reports the pause (and the run goes on)
            self.on_pause(event, pause)
        if self.gate.report_only:
            return
        self._paused_since = time.monotonic()
        self.pause = pause
        self.paused_at = event
        self.state = RunState.PAUSED

    def _decision_context(self, record: tuple[Any, ...]) -> tuple[Any, Callable[[tuple[Any, ...]], Any]]:
        """What a breakpoint's condition may read: the store, and the node's prep result."""
        return self.store, self._prep_of

    def _prep_of(self, record: tuple[Any, ...]) -> Any:
        """The prep result of ``record``'s node step, from the records not drained yet."""
        path, node_id = path_of(record), node_id_of(record)
        for earlier in reversed(self.events[-64:]):
            if kind_of(earlier) is not PhaseFinished or node_id_of(earlier) != node_id:
                continue
            if path_of(earlier) == path and _PHASE(earlier) == "prep":
                return _RESULT(earlier)
        return None

    def _unpaused(self) -> None:
        since, self._paused_since = self._paused_since, None
        if since is not None:
            self.paused_seconds += time.monotonic() - since

    def _release(self, mode: str, *, target: str | None = None, out_of: tuple[str, ...] | None = None) -> None:
        if self.state is RunState.PAUSED:
            self.state = RunState.RUNNING
        self._unpaused()
        self.paused_at = None
        self.pause = None
        self.gate.release(mode, target=target, out_of=out_of)

    @property
    def active_seconds(self) -> float | None:
        """How long the run ran, time spent paused left out (``None`` until it ended)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at - self.paused_seconds)

    # -- controls (UI thread) ---------------------------------------------------------------
    def step_phase(self) -> None:
        """Go on to the next checkpoint (phase start, action edge, failed attempt)."""
        self._release("phase")

    def step_node(self) -> None:
        """Go on until just before the next node's prep."""
        self._release("node")

    def resume(self) -> None:
        """Run on until a breakpoint (or an error, with break_on_error)."""
        self._release("run")

    def run_to(self, node: str) -> None:
        """Run on until just before ``node``'s prep (or a breakpoint on the way)."""
        self._release("cursor", target=node)

    def step_out(self) -> None:
        """Run on until the flow enclosing the paused node has finished (or left)."""
        event = self.paused_at
        path = tuple(event.path[:-1]) if event is not None else ()
        self._release("out" if path else "run", out_of=path or None)

    def edit(self, key: str, value: Any = None, *, delete: bool = False) -> None:
        """A user edit while the run is held: written through the store (the run's
        observers see a ``StoreChanged`` from the run's root), never pausing on itself."""
        gate = self.gate
        gate.quiet = True
        try:
            if delete:
                self.store.delete(key)
            else:
                self.store.set(key, value)
        finally:
            gate.quiet = False

    def stop(self) -> None:
        """Cancel the run's Context; a pause, a retry wait or a ``ctx.sleep`` ends at once."""
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._cancel()
        self.gate.release("run")

    def set_breakpoints(self, names: Iterable[str]) -> None:
        """Replace the breakpoints (node names); takes effect at the next checkpoint."""
        self.gate.set_breakpoints(names)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ended (True) or ``timeout`` passed (False)."""
        if self._thread is None:
            return True
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def pump(self, handle: Callable[[list[tuple[Any, ...]]], None] | None = None) -> int:
        """Drain the queued records into ``handle`` (the UI's coalescing update), drop them,
        then collect young garbage; returns how many there were. Call it from the UI's
        timer, ~30 times a second, while the run is active. ``events.materialize(record)``
        turns a record into its Event where one is needed."""
        batch = self.drain_records()
        count = len(batch)
        gate = self.gate
        if count > gate.backlog_limit:  # the UI fell that far behind: hold the run back at checkpoints
            if not gate.throttled:
                gate.throttle(True)
        elif gate.throttled and count < gate.backlog_limit // 4:
            gate.throttle(False)
        gate.drained()
        if handle is not None and count:
            handle(batch)
        del batch
        GARBAGE.after_drain()
        return count

    def drain_records(self) -> list[tuple[Any, ...]]:
        """Every record queued so far, oldest first (``flyt_engine.events`` says their shape)."""
        events = self.events
        count = len(events)
        batch = events[:count]
        del events[:count]
        if self.run_id is None and batch and kind_of(batch[0]) is RunStarted:
            self.run_id = run_id_of(batch[0])
        return batch

    def drain(self) -> list[Event]:
        """Every event queued so far, oldest first, as Event objects (convenient, slower)."""
        return [materialize(record) for record in self.drain_records()]


def _fallback_finder(flow: Node) -> Callable[[str], bool]:
    """Whether the node called ``name`` has an ``exec_fallback`` the user wrote (the break
    before a fallback is for those; without one, the failure itself is the pause). Read
    from the flow's graph once, when first asked; a node not in the graph counts as having one."""
    from flyt_engine.graph import describe

    from .source import phase_source

    without: set[str] | None = None

    def has_fallback(name: str) -> bool:
        nonlocal without
        if without is None:
            without = set()
            try:
                stack = [describe(flow)]
                while stack:
                    graph = stack.pop()
                    for node in graph.nodes:
                        if node.children is not None:
                            stack.append(node.children)
                        if node.node is not None and phase_source(node.node, "exec_fallback") is None:
                            without.add(node.name)
            except Exception:  # a graph that cannot be drawn: pause before every fallback
                without = set()
        return name not in without

    return has_fallback
