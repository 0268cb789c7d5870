"""One timer thread for every deadline: ``Context.with_timeout`` schedules here.

A thread per deadline (``threading.Timer``) made 5,000 pending timeouts 5,000 threads.
This keeps a heap of ``(due, seq, signal)`` on one daemon thread, started on first use,
that sleeps until the earliest deadline (or a new, earlier one) and cancels what is due.
A deadline cancelled early stays in the heap until it is due or until dead entries
outnumber live ones, when the heap is rebuilt: cancelling costs no heap work.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Protocol


class _Cancellable(Protocol):
    error: Any

    def cancel(self, error: Any) -> None: ...


class DeadlineTimer:
    """Fires ``signal.cancel(make_error())`` at ``due`` (``time.monotonic()`` seconds)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Cancellable, Any]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._dead = 0  # entries whose signal was cancelled before it was due

    def schedule(self, due: float, signal: _Cancellable, error: Any) -> None:
        """Cancel ``signal`` with ``error`` at ``due`` unless it is cancelled before."""
        with self._cond:
            entry = (due, next(self._seq), signal, error)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="flyt-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:  # earlier than what the thread sleeps towards
                self._cond.notify()

    def discarded(self) -> None:
        """A scheduled signal was cancelled early; rebuild the heap when mostly dead."""
        with self._cond:
            self._dead += 1
            if self._dead > 1024 and self._dead * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].error is None]
                heapq.heapify(self._heap)
                self._dead = 0

    def pending(self) -> int:
        """Deadlines not yet due whose contexts are still live."""
        with self._cond:
            return sum(1 for entry in self._heap if entry[2].error is None)

    def _loop(self) -> None:
        heap = self._heap
        while True:
            with self._cond:
                heap = self._heap
                now = time.monotonic()
                due: list[tuple[_Cancellable, Any]] = []
                while heap and heap[0][0] <= now:
                    _, _, signal, error = heapq.heappop(heap)
                    due.append((signal, error))
                if not due:
                    timeout = heap[0][0] - now if heap else None
                    self._cond.wait(timeout)
                    continue
            for signal, error in due:  # outside the lock: cancel() wakes waiters and children
                if signal.error is None:
                    signal.cancel(error)
                else:
                    with self._cond:
                        self._dead = max(0, self._dead - 1)


TIMER = DeadlineTimer()
