"""Context: cancellation, deadlines, values and observers, passed to every phase.

A ``Context`` is immutable; ``with_*`` methods return children. Cancellation lives in a
small shared ``_Signal`` so that deriving a context for values or observers costs one
object and cancelling a parent reaches every child. The engine's hot path reads
``ctx._signal.error`` (one attribute) to check for cancellation.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from .deadlines import TIMER
from .errors import Cancelled, DeadlineExceeded

Observer = Callable[[Any], None]


class _Signal:
    """Cancellation state shared by a context and the children derived for values."""

    __slots__ = ("__weakref__", "_callbacks", "_children", "_event", "_parent", "_timed", "error")

    def __init__(self, parent: _Signal | None) -> None:
        self.error: Cancelled | None = None
        self._event = threading.Event()
        self._children: set[_Signal] = set()
        self._parent = parent
        self._timed = False  # a deadline for it waits in the one timer (deadlines.py)
        self._callbacks: list[Callable[[], None]] | None = None  # async runs: cancel their tasks
        if parent is not None:
            with _LOCK:
                if parent.error is None:
                    parent._children.add(self)
            if parent.error is not None:
                self.cancel(parent.error)

    def cancel(self, error: Cancelled) -> None:
        with _LOCK:
            if self.error is not None:
                return
            self.error = error
            children = list(self._children)
            self._children.clear()
            if self._parent is not None:
                self._parent._children.discard(self)
            timed, self._timed = self._timed, False
            callbacks, self._callbacks = self._callbacks, None
        if timed and not isinstance(error, DeadlineExceeded):
            TIMER.discarded()
        self._event.set()
        for callback in callbacks or ():
            callback()
        for child in children:
            child.cancel(error)

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` (on the cancelling thread) when cancelled, at once if it is
        already; returns the function that forgets it."""
        with _LOCK:
            if self.error is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                done = False
            else:
                done = True
        if done:
            callback()

        def forget() -> None:
            with _LOCK:
                if self._callbacks is not None and callback in self._callbacks:
                    self._callbacks.remove(callback)

        return forget

    def wait(self, seconds: float) -> bool:
        if seconds <= _MAX_WAIT:
            return self._event.wait(seconds)
        # Event.wait overflows past threading.TIMEOUT_MAX: wait in chunks (math.inf: until cancelled).
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return self._event.is_set()
            if self._event.wait(min(remaining, _MAX_WAIT)):
                return True


class _NeverSignal:
    """The background signal: never cancelled, sleeps plainly."""

    __slots__ = ()
    error = None

    def wait(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while True:  # in chunks: time.sleep overflows on huge values (math.inf: forever)
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, _MAX_WAIT))


class _NoGate:
    """The gate of a context without one: never armed."""

    __slots__ = ()
    armed = False
    armed_writes = False
    nodes = None
    keys = None

    def __call__(self, event: Any) -> None:
        return None


class _PlainGate:
    """A gate with only ``armed``: called at every checkpoint, store writes included."""

    __slots__ = ("_gate",)
    nodes = None
    keys = None

    def __init__(self, gate: Any) -> None:
        self._gate = gate

    @property
    def armed(self) -> bool:
        return bool(self._gate.armed)

    @property
    def armed_writes(self) -> bool:
        return bool(self._gate.armed)

    def __call__(self, record: Any) -> None:
        self._gate(record)


_LOCK = threading.Lock()
# The longest single wait the threading primitives accept (with a margin for monotonic() drift).
_MAX_WAIT = min(threading.TIMEOUT_MAX, 86400.0 * 365)
_NEVER = _NeverSignal()
_NO_GATE = _NoGate()
_run_counter = iter(range(1, 1 << 62))


class Context:
    """What every phase receives first: cancellation, deadline, values, observers.

    Build one with ``Context.background()`` and derive children with ``with_cancel``,
    ``with_timeout``, ``with_value`` and ``with_observer``. A child is cancelled when its
    parent is.
    """

    __slots__ = ("_deadline", "_emit", "_gate", "_path", "_run_id", "_signal", "_sinks", "_values")

    def __init__(self) -> None:
        self._signal: Any = _NEVER
        self._values: dict[Any, Any] | None = None
        self._emit: Observer | None = None  # called with records; see with_recorder
        self._sinks: tuple[tuple[Callable[[Any], None], bool], ...] = ()  # (sink, wants events)
        self._gate: Any = _NO_GATE
        self._run_id: int = 0
        self._path: tuple[str, ...] = ()
        self._deadline: float | None = None

    @classmethod
    def background(cls) -> Context:
        """A context that is never cancelled and carries no values: the root of all others."""
        return cls()

    def _derive(self) -> Context:
        child = Context.__new__(Context)
        child._signal = self._signal
        child._values = self._values
        child._emit = self._emit
        child._sinks = self._sinks
        child._gate = self._gate
        child._run_id = self._run_id
        child._path = self._path
        child._deadline = self._deadline
        return child

    # -- cancellation -------------------------------------------------------------------
    def with_cancel(self) -> tuple[Context, Callable[[], None]]:
        """A child context and the function that cancels it (and its own children)."""
        child = self._derive()
        signal = _Signal(self._signal if isinstance(self._signal, _Signal) else None)
        child._signal = signal

        def cancel() -> None:
            signal.cancel(Cancelled("context cancelled"))

        return child, cancel

    def with_timeout(self, seconds: float) -> tuple[Context, Callable[[], None]]:
        """A child context cancelled with ``DeadlineExceeded`` after ``seconds``.

        The returned function cancels it early (call it when done, as with Go's ``cancel``).
        """
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise TypeError(f"with_timeout takes seconds as a number, not {type(seconds).__name__}")
        if math.isnan(seconds):
            raise ValueError("with_timeout takes a number of seconds, not NaN")
        child, cancel = self.with_cancel()
        signal: _Signal = child._signal
        deadline = time.monotonic() + max(0.0, seconds)
        if self._deadline is None or deadline < self._deadline:
            child._deadline = deadline
        if seconds <= 0:
            signal.cancel(DeadlineExceeded("context deadline exceeded"))
        elif seconds > _MAX_WAIT:
            pass  # beyond what a timer can wait (math.inf: no deadline); cancel() still works
        elif signal.error is None:
            signal._timed = True
            TIMER.schedule(deadline, signal, DeadlineExceeded("context deadline exceeded"))
        return child, cancel

    @property
    def cancelled(self) -> bool:
        """True once this context (or an ancestor) was cancelled or timed out."""
        return self._signal.error is not None

    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` instant this context expires at, or ``None``."""
        return self._deadline

    def error(self) -> Cancelled | None:
        """The ``Cancelled`` (or ``DeadlineExceeded``) of this context, else ``None``."""
        return self._signal.error

    def check(self) -> None:
        """Raise the context's ``Cancelled`` error if it was cancelled; else do nothing."""
        error = self._signal.error
        if error is not None:
            raise _fresh(error)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``; raise ``Cancelled`` at once if the context is cancelled meanwhile."""
        self.check()
        if seconds > 0 and self._signal.wait(seconds):
            raise _fresh(self._signal.error)

    async def asleep(self, seconds: float) -> None:
        """``sleep`` for coroutines: awaits ``seconds`` without blocking the loop, and ends
        at once with ``Cancelled`` when the context is cancelled meanwhile."""
        import asyncio

        self.check()
        if not seconds > 0:
            return
        signal = self._signal
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        def wake_threadsafe() -> None:
            try:
                loop.call_soon_threadsafe(wake)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        forget = signal.on_cancel(wake_threadsafe) if isinstance(signal, _Signal) else None
        timer = loop.call_later(min(seconds, _MAX_WAIT), wake) if seconds < math.inf else None
        try:
            await woken
        except asyncio.CancelledError:
            if signal.error is not None:
                raise _fresh(signal.error) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if forget is not None:
                forget()
        if signal.error is not None:
            raise _fresh(signal.error)
        if seconds > _MAX_WAIT and seconds < math.inf:  # beyond one timer: the rest
            await self.asleep(seconds - _MAX_WAIT)

    def done(self) -> threading.Event | None:
        """An ``Event`` set on cancellation (``None`` for a context that cannot be cancelled)."""
        return getattr(self._signal, "_event", None)

    # -- values -------------------------------------------------------------------------
    def with_value(self, key: Any, value: Any) -> Context:
        """A child context that also carries ``key`` → ``value``."""
        child = self._derive()
        values = dict(self._values) if self._values else {}
        values[key] = value
        child._values = values
        return child

    def value(self, key: Any, default: Any = None) -> Any:
        """The value stored under ``key`` by this context or an ancestor, else ``default``."""
        values = self._values
        if values is None:
            return default
        return values.get(key, default)

    # -- observers ----------------------------------------------------------------------
    def with_observer(self, observer: Observer) -> Context:
        """A child context whose runs report every ``Event`` to ``observer`` as well.

        Observers are called synchronously on the thread doing the work; one that blocks
        pauses the run at that checkpoint. Every observer of a run sees the same event objects.
        """
        if not callable(observer):
            raise TypeError(f"an observer must be callable, not {type(observer).__name__}")
        return self._with_sink(observer, wants_events=True)

    def with_recorder(self, recorder: Callable[[tuple[Any, ...]], None]) -> Context:
        """A child context whose runs hand every event to ``recorder`` as a *record*: the
        plain tuple ``(EventClass, (run_id, path, node, node_id), time, *kind_fields)``
        (``events.materialize`` makes the event).

        The cheap way to watch a run: with a C-level recorder such as ``list.append`` an
        observed step costs a fraction of what event objects cost. Called synchronously on
        the thread doing the work, like an observer.
        """
        if not callable(recorder):
            raise TypeError(f"a recorder must be callable, not {type(recorder).__name__}")
        return self._with_sink(recorder, wants_events=False)

    def _with_sink(self, sink: Callable[[Any], None], *, wants_events: bool) -> Context:
        child = self._derive()
        child._sinks = (*self._sinks, (sink, wants_events))
        child._emit = _emitter(child._sinks)
        return child

    def with_gate(self, gate: Callable[[Any], None]) -> Context:
        """A child context whose runs call ``gate(record)`` at every checkpoint while
        ``gate.armed`` is true: before each phase (``PhaseStarted``), on each action edge
        (``NodeFinished``), on failed attempts (``ExecFailed``), failures (``NodeFailed``)
        and store writes (``StoreChanged``). A gate that blocks pauses the run there.

        The gate gets the checkpoint's *record* (see ``events``; ``events.materialize``
        makes the event), so deciding not to pause costs no event object. Observers see
        every event; a gate is how a debugger pauses. Disarmed, it costs one attribute read
        per checkpoint, so a workbench keeps one attached for a whole run. A gate needs an
        observer or recorder on the context too (events are only made for observed runs).

        Two optional attributes narrow where an armed gate is called, so that breakpoints
        that cannot match cost nothing: ``nodes``, a set of node names (``None``: every
        node), limits the phase, edge, attempt and failure checkpoints to those nodes;
        ``armed_writes`` (else ``armed``) says whether store writes call it, and ``keys``
        (``None``: every key) which keys' writes.
        """
        if not callable(gate) or not hasattr(gate, "armed"):
            raise TypeError("a gate must be callable and have an `armed` attribute")
        if not all(hasattr(gate, name) for name in ("nodes", "armed_writes", "keys")):
            gate = _PlainGate(gate)
        child = self._derive()
        child._gate = gate
        return child

    @property
    def observers(self) -> tuple[Observer, ...]:
        """The observers and recorders runs under this context report to."""
        return tuple(sink for sink, _ in self._sinks)

    @property
    def run_id(self) -> int:
        """The id of the observed run this context belongs to (0 outside a run)."""
        return self._run_id

    @property
    def path(self) -> tuple[str, ...]:
        """The node names from the outermost flow down to the node running with this context."""
        return self._path

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as a background context with the same values: cancellation and observers
        stay in this process (what a process pool or a Dask worker receives)."""
        return (_detached, (self._values,))

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "active"
        return f"<Context {state} observers={len(self._sinks)} values={len(self._values or ())}>"


def _detached(values: dict[Any, Any] | None) -> Context:
    ctx = Context()
    ctx._values = values
    return ctx


_event_of = tuple.__new__


def _emitter(sinks: tuple[tuple[Callable[[Any], None], bool], ...]) -> Callable[[tuple[Any, ...]], None]:
    """The function the engine calls with each record: recorders get the record, observers
    one shared event object made from it (only when some observer wants one)."""
    if len(sinks) == 1:
        sink, wants_events = sinks[0]
        if not wants_events:
            return sink

        def deliver_one(record: tuple[Any, ...]) -> None:
            sink(_event_of(record[0], record[1] + record[2:]))

        return deliver_one

    def deliver(record: tuple[Any, ...]) -> None:
        event = None
        for sink, wants_events in sinks:
            if wants_events:
                if event is None:
                    event = _event_of(record[0], record[1] + record[2:])
                sink(event)
            else:
                sink(record)

    return deliver


def _fresh(error: Cancelled) -> Cancelled:
    """A new exception of the same kind, so tracebacks of different raisers never mix."""
    return type(error)(*error.args)


def new_run_id() -> int:
    """A fresh id for a top-level run (unique within this process)."""
    return next(_run_counter)
