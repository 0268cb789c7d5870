"""Value text off the UI thread: a value whose ``repr`` is slow never freezes the screen.

Cheap values (numbers, strings, small containers of them) are rendered where they are
asked for. Anything else is rendered once, on a single daemon thread, while the caller
shows ``PENDING``; ``on_ready(text)`` is then called on that thread (widgets turn it into
a message). A value whose ``repr`` never returns holds only that thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

from .format import pretty_lines, safe_repr

PENDING = "…rendering"

_ATOMIC = frozenset((type(None), bool, float, complex, str, bytes, range))


def is_cheap(value: Any) -> bool:
    """Whether ``safe_repr(value)`` is surely quick: what it would look at is plain data."""
    kind = type(value)
    if kind in _ATOMIC:
        return (kind is not str and kind is not bytes) or len(value) < 1_000_000
    if kind is int:
        return value.bit_length() <= 4096
    if kind in (list, tuple, set, frozenset):
        try:
            return all(type(item) in _ATOMIC or type(item) is int for item in list(value)[:10])
        except Exception:
            return False
    if kind is dict:
        try:
            pairs = list(value.items())[:8]
        except Exception:
            return False
        return all(type(k) in _ATOMIC | {int} and type(v) in _ATOMIC | {int} for k, v in pairs)
    return False


def _cheap_lines(value: Any) -> bool:
    """Whether ``pretty_lines(value)`` is surely quick: it shows a list, tuple or dict (of
    any subclass) item by item, so only the items it shows need to be cheap."""
    if isinstance(value, (list, tuple)):
        try:
            return all(is_cheap(item) for item in value[:12])
        except Exception:
            return False
    if isinstance(value, dict):
        try:
            return all(is_cheap(k) and is_cheap(v) for k, v in list(value.items())[:12])
        except Exception:
            return False
    return is_cheap(value)


class BackgroundRenderer:
    """Renders values on one daemon thread, in the order asked."""

    BUDGET = 0.05  # seconds the UI thread may wait for a rendering before showing PENDING

    def __init__(self) -> None:
        self._queue: SimpleQueue[Callable[[], None]] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ready: dict[Any, Any] = {}  # key -> a result that came in after its budget

    def text(self, value: Any, limit: int, on_ready: Callable[[str], None]) -> str:
        """The text now when it is cheap, else ``PENDING`` and ``on_ready(text)`` later."""
        if is_cheap(value):
            return safe_repr(value, limit)

        def job() -> None:
            text = safe_repr(value, limit)
            with contextlib.suppress(Exception):  # the widget is gone (the app is closing)
                on_ready(text)

        self._submit(job)
        return PENDING

    def lines(
        self,
        key: Any,
        value: Any,
        width: int,
        max_lines: int,
        on_ready: Callable[[], object],
        *,
        wait: float | None = None,
    ) -> list[str]:
        """``pretty_lines(value)`` within ``BUDGET``; past it ``[PENDING]``, and when the
        lines are ready ``on_ready()`` is called: asking again with the same ``key`` then
        returns them (once). ``wait`` replaces the budget (a caller rendering many values
        shares one budget among them)."""
        if _cheap_lines(value):
            return pretty_lines(value, width=width, max_lines=max_lines)
        slot = (key, width, max_lines)
        with self._lock:
            if slot in self._ready:
                return self._ready.pop(slot)
        finished = threading.Event()
        state: dict[str, Any] = {"waiting": True}

        def job() -> None:
            result = pretty_lines(value, width=width, max_lines=max_lines)
            with self._lock:
                state["lines"] = result
                late = not state["waiting"]
                if late:
                    if len(self._ready) > 256:
                        self._ready.clear()
                    self._ready[slot] = result
            finished.set()
            if late:
                with contextlib.suppress(Exception):
                    on_ready()

        self._submit(job)
        finished.wait(self.BUDGET if wait is None else max(0.0, wait))
        with self._lock:
            state["waiting"] = False
            if "lines" in state:
                return state["lines"]
        return [PENDING]

    def _submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="flyt-render", daemon=True)
                self._thread.start()
        self._queue.put(job)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            job()
            del job


RENDERER = BackgroundRenderer()
