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

from flyt_engine import Cancelled, Context, Node, SharedStore, run
from flyt_engine.events import (
    Event,
    ExecFailed,
    NodeFailed,
    NodeFinished,
    PhaseStarted,
    RunStarted,
    field_of,
    kind_of,
    materialize,
    node_of,
    run_id_of,
)

# Records waiting for the UI (about 60 MB) beyond which a run is held back at checkpoints:
# far above what a busy run queues between two frames, so only a UI that stalls holds it back.
BACKLOG_LIMIT = 500_000

# Once stop() was called, how long run_blocking waits for a flow stuck in code that
# ignores its Context before abandoning the (daemon) thread.
ABANDON_AFTER = 1.0


class _GarbageCollection:
    """While runs are active, collect garbage when the UI drains instead of mid-run.

    Events live from the engine's append to the UI's next drain (a frame). Collected
    mid-run, each of them would be traversed and promoted through the generations: the
    trap that makes an observed step 2.5 times slower. So while a run is active the
    automatic collector is off and ``after_drain`` collects the young generations right
    after each drain, when the queue is nearly empty, and all generations every ~100.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._was_enabled = False
        self._ticks = 0

    def pause(self) -> None:
        with self._lock:
            if self._active == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._active += 1

    def resume(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._was_enabled:
                gc.enable()

    def after_drain(self) -> None:
        if not self._active:
            return
        self._ticks += 1
        gc.collect(2 if self._ticks % 100 == 0 else 1 if self._ticks % 10 == 0 else 0)


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
    """Decides at each checkpoint whether the run pauses, and holds it there.

    Modes: ``"run"`` pauses only at breakpoints (and on errors with ``break_on_error``);
    ``"phase"`` pauses at every checkpoint; ``"node"`` pauses before the next node's prep.
    ``armed`` is what the engine reads: false while a free run has nothing to stop for.

    It also holds a run back while the UI is behind: when ``throttled``, a checkpoint waits
    until fewer than ``backlog_limit`` records wait to be drained, which bounds the memory
    a flow that outruns the screen can take.
    """

    def __init__(self, breakpoints: Iterable[str] = (), break_on_error: bool = False) -> None:
        self._cond = threading.Condition()
        self.breakpoints: frozenset[str] = frozenset(breakpoints)
        self.break_on_error = break_on_error
        self.mode = "run"
        self._generation = 0  # bumped by every release; a paused thread waits for a change
        self._cancelled: threading.Event | None = None
        self._last_error: BaseException | None = None
        self.on_pause: Any = None  # callable(event) -> None, called on the run thread
        self.throttled = False
        self.backlog_limit = 0
        self._backlog: Callable[[], int] = lambda: 0
        self._drained = threading.Event()
        self.armed = False
        self._rearm()

    def _rearm(self) -> None:
        self.armed = self.mode != "run" or bool(self.breakpoints) or self.break_on_error or self.throttled

    def bind_cancellation(self, done: threading.Event | None) -> None:
        self._cancelled = done

    # -- the engine side ------------------------------------------------------------------
    def __call__(self, record: tuple[Any, ...]) -> None:
        if self.throttled:
            self._hold_back()
        if not self._should_pause(record):
            return
        event = materialize(record)
        with self._cond:
            generation = self._generation
            if self.on_pause is not None:
                self.on_pause(event)
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

    def _should_pause(self, record: tuple[Any, ...]) -> bool:
        """Decide on the record ``(EventClass, (run_id, path, node, node_id), time, *fields)``."""
        kind = kind_of(record)
        if kind is NodeFailed:
            if not self.break_on_error and self.mode == "run":
                return False
            error = field_of(record, "error")
            if error is self._last_error or isinstance(error, Cancelled):
                return False  # the same failure re-reported by enclosing flows
            self._last_error = error
            return True
        if self.mode == "phase":
            return kind is PhaseStarted or kind is NodeFinished or kind is ExecFailed
        if kind is PhaseStarted and field_of(record, "phase") == "prep":
            return self.mode == "node" or node_of(record) in self.breakpoints
        return False

    # -- the UI side ----------------------------------------------------------------------
    def release(self, mode: str) -> None:
        """Leave the current pause (if any) and go on in ``mode``."""
        with self._cond:
            self.mode = mode
            self._rearm()
            self._generation += 1
            self._cond.notify_all()

    def set_breakpoints(self, names: Iterable[str]) -> None:
        with self._cond:
            self.breakpoints = frozenset(names)
            self._rearm()

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


class RunSession:
    """One run of one flow on a worker thread; drive it from the UI thread."""

    def __init__(
        self,
        flow: Node,
        initial_store: Mapping[str, Any] | None = None,
        *,
        breakpoints: Iterable[str] = (),
        break_on_error: bool = False,
        prepare: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        """``prepare``, when given, makes the initial store on the run thread (a deep copy
        of a big initial store must not hold up the UI); it is merged over ``initial_store``."""
        if not isinstance(flow, Node):
            raise TypeError(f"RunSession runs a Node or Flow, not {type(flow).__name__}")
        self.flow = flow
        self.store = SharedStore(dict(initial_store or {}))
        self._prepare = prepare
        # The engine records into this list: `append` is one C call, and records are plain
        # tuples (EventClass, header, time, *fields), a fraction of the cost of event objects. Draining
        # takes a prefix with two atomic list operations: the run never waits, nothing is lost.
        self.events: list[tuple[Any, ...]] = []
        self.state = RunState.IDLE
        self.paused_at: Event | None = None
        self.action: str | None = None
        self.error: BaseException | None = None
        self.run_id: int | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.paused_seconds = 0.0  # time spent paused at checkpoints so far
        self._paused_since: float | None = None
        self.gate = StepGate(breakpoints, break_on_error)
        self.gate.on_pause = self._paused
        self.gate.watch_backlog(self.events.__len__, BACKLOG_LIMIT)
        ctx, self._cancel = Context.background().with_cancel()
        self.gate.bind_cancellation(ctx.done())
        self.ctx = ctx.with_recorder(self.events.append).with_gate(self.gate)
        self._finished = threading.Event()
        self._stop_requested_at: float | None = None
        self._thread: threading.Thread | None = None

    # -- running --------------------------------------------------------------------------
    def run_blocking(self, mode: str = "run") -> None:
        """Run the flow to its end (the body of the UI's thread worker); never raises.

        The flow itself runs on a daemon thread of its own, so that a flow stuck in code
        that ignores cancellation cannot keep the app from quitting.
        """
        self.start(mode)
        while not self._finished.wait(0.1):
            stop_at = self._stop_requested_at
            if stop_at is not None and time.monotonic() - stop_at > ABANDON_AFTER:
                self.state = RunState.STOPPED
                self.error = self.error or Cancelled("stopped; the flow did not respond to cancellation")
                return

    def start(self, mode: str = "run") -> None:
        """Start the run on a daemon thread and return at once."""
        if self._thread is not None:
            raise RuntimeError("a RunSession runs once; make a new one to run again")
        if mode not in ("run", "step", "phase", "node"):
            raise ValueError(f"unknown run mode {mode!r}")
        if mode != "run":
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
            self.action = run(self.flow, self.store, ctx=self.ctx)
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

    def _paused(self, event: Event) -> None:
        self._paused_since = time.monotonic()
        self.paused_at = event
        self.state = RunState.PAUSED

    def _unpaused(self) -> None:
        since, self._paused_since = self._paused_since, None
        if since is not None:
            self.paused_seconds += time.monotonic() - since

    def _release(self, mode: str) -> None:
        if self.state is RunState.PAUSED:
            self.state = RunState.RUNNING
        self._unpaused()
        self.paused_at = None
        self.gate.release(mode)

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
        if count > BACKLOG_LIMIT:  # the UI fell that far behind: hold the run back at checkpoints
            if not gate.throttled:
                gate.throttle(True)
        elif gate.throttled and count < BACKLOG_LIMIT // 4:
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
