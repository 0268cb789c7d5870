"""Safe, bounded text for any value a flow puts in front of the workbench.

User values are hostile by accident: a ``__repr__`` that raises, a list that contains
itself, a million-key dict, an int too long to print, a bytes blob of a gigabyte. Every
helper here returns a short string and never raises, and none of them walks a whole
container (no sorting of a dict's keys, no full ``repr`` of big builtins).
"""

from __future__ import annotations

import os
import reprlib
import traceback
from itertools import islice
from typing import Any

import flyt_engine

__all__ = [
    "error_line",
    "format_duration",
    "format_rate",
    "pretty_lines",
    "safe_repr",
    "traceback_text",
    "type_name",
    "user_error",
]

_ELLIPSIS = "…"


class _SafeRepr(reprlib.Repr):
    """``reprlib.Repr`` without the parts that cost O(n) or raise on big builtins."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = 8
        self.maxlist = 10
        self.maxtuple = 10
        self.maxset = 8
        self.maxfrozenset = 8
        self.maxdeque = 8
        self.maxarray = 8
        self.maxstring = max(8, limit)
        self.maxother = max(8, limit)
        self.maxlong = 40

    def repr_dict(self, x: Any, level: int) -> str:  # unsorted: sorting a big dict costs O(n log n)
        n = len(x)
        if n == 0:
            return "{}"
        if level <= 0:
            return "{...}"
        parts = [f"{self.repr1(k, level - 1)}: {self.repr1(x[k], level - 1)}" for k in islice(x, self.maxdict)]
        if n > self.maxdict:
            parts.append("...")
        return "{" + ", ".join(parts) + "}"

    def _repr_unordered(self, x: Any, level: int, left: str, right: str, limit: int) -> str:
        n = len(x)
        if n == 0:
            return f"{type(x).__name__}()"
        if level <= 0:
            return left + "..." + right
        parts = [self.repr1(item, level - 1) for item in islice(x, limit)]
        if n > limit:
            parts.append("...")
        return left + ", ".join(parts) + right

    def repr_set(self, x: Any, level: int) -> str:
        return self._repr_unordered(x, level, "{", "}", self.maxset)

    def repr_frozenset(self, x: Any, level: int) -> str:
        return self._repr_unordered(x, level, "frozenset({", "})", self.maxfrozenset)

    def repr_int(self, x: Any, level: int) -> str:
        if x.bit_length() > 256:  # str() of a huge int is slow, and raises past 4300 digits
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_bytes(self, x: Any, level: int) -> str:
        text = repr(x[: self.maxstring])
        return text + _ELLIPSIS if len(x) > self.maxstring else text

    repr_bytearray = repr_bytes

    def repr_instance(self, x: Any, level: int) -> str:
        builtin = _builtin_repr_of(type(x))
        if builtin is not None:  # a subclass of a builtin container that keeps its repr: bounded too
            return builtin(self, x, level)
        try:
            text = repr(x)
        except Exception as exc:
            return f"<{_qualname(x)} object; repr raised {type(exc).__name__}>"
        if not isinstance(text, str):
            return f"<{_qualname(x)} object>"
        return text if len(text) <= self.maxother else text[: self.maxother] + _ELLIPSIS


_REPRS: dict[int, _SafeRepr] = {}
_CONTAINER_REPRS: tuple[tuple[type, Any], ...] = (
    (dict, _SafeRepr.repr_dict),
    (list, _SafeRepr.repr_list),
    (tuple, _SafeRepr.repr_tuple),
    (set, _SafeRepr.repr_set),
    (frozenset, _SafeRepr.repr_frozenset),
)


def _builtin_repr_of(kind: type) -> Any:
    """The bounded repr of the builtin container ``kind`` derives from, when ``kind`` does
    not define its own ``__repr__`` (``class Rows(list)``, the engine's ``BatchItems``);
    ``reprlib`` would otherwise call ``repr()`` on it whole, however big."""
    for base, bounded in _CONTAINER_REPRS:
        if issubclass(kind, base) and getattr(kind, "__repr__", None) is base.__repr__:
            return bounded
    return None


def _qualname(value: Any) -> str:
    try:
        return type(value).__qualname__
    except Exception:
        return "object"


def type_name(value: Any) -> str:
    """The value's type as a short name (``dict``, ``MyRecord``); for a value read back from
    a recording (``tagged.py``), the type it had when it was recorded."""
    try:
        if getattr(type(value), "recorded", False):
            return str(value.recorded_type).rsplit(".", 1)[-1]
        return type(value).__name__
    except Exception:
        return "object"


def safe_repr(value: Any, limit: int = 120) -> str:
    """A one-line ``repr`` of ``value`` of at most ``limit`` characters; never raises."""
    limit = max(8, limit)
    engine = _REPRS.get(limit)
    if engine is None:
        engine = _REPRS[limit] = _SafeRepr(limit)
    try:
        text = engine.repr(value)
    except Exception as exc:
        text = f"<{_qualname(value)} object; repr raised {type(exc).__name__}>"
    if "\n" in text or "\r" in text:
        text = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")
    if len(text) > limit:
        text = text[: limit - 1] + _ELLIPSIS
    return text


def pretty_lines(value: Any, *, width: int = 72, max_lines: int = 12) -> list[str]:
    """``value`` over a few lines: one per key or item of a container, else the repr wrapped.

    Bounded in lines and width; never raises, never walks more than ``max_lines`` items.
    """
    width = max(16, width)
    try:
        lines = _pretty(value, width, max_lines)
    except Exception:
        lines = [safe_repr(value, width)]
    return lines[:max_lines]


def _pretty(value: Any, width: int, max_lines: int) -> list[str]:
    if isinstance(value, dict):
        size = len(value)
        if size == 0:
            return ["{}"]
        if max_lines < 2:  # no room for keys: the repr, cut to the line
            return [safe_repr(value, width)]
        lines = [f"{type_name(value)} · {size} key{'s' if size != 1 else ''}"]
        room = max_lines - 1
        for key in islice(value, room if size <= room else room - 1):
            key_text = safe_repr(key, 24)
            lines.append(f"  {key_text}: {safe_repr(value[key], width - len(key_text) - 4)}")
        if size > room:
            lines.append(f"  {_ELLIPSIS} {size - (room - 1)} more")
        return lines
    if isinstance(value, (list, tuple)):
        size = len(value)
        if size == 0 or (size <= 8 and len(safe_repr(value, width + 1)) <= width):
            return [safe_repr(value, width)]
        lines = [f"{type_name(value)} · {size} item{'s' if size != 1 else ''}"]
        room = max_lines - 1
        shown = room if size <= room else room - 1
        for index in range(shown):
            lines.append(f"  [{index}] {safe_repr(value[index], width - 8)}")
        if size > room:
            lines.append(f"  {_ELLIPSIS} {size - shown} more")
        return lines
    if isinstance(value, str) and "\n" in value:
        parts = value[: width * max_lines].split("\n")
        out = [(part if len(part) <= width else part[: width - 1] + _ELLIPSIS) for part in parts[:max_lines]]
        if len(parts) > max_lines:
            out[-1] = f"{_ELLIPSIS} ({value.count(chr(10)) + 1} lines)"
        return out
    text = safe_repr(value, width * max_lines)
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def error_line(error: BaseException | None, limit: int = 160) -> str:
    """``ValueError: message`` on one line; for engine errors, the user's cause is named."""
    if error is None:
        return ""
    try:
        message = str(error)
    except Exception:
        message = "<str() raised>"
    text = f"{type_name(error)}: {message}" if message else type_name(error)
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def user_error(error: BaseException | None) -> BaseException | None:
    """The user's exception inside the engine's wrapping (a NodeError's cause), else ``error``."""
    seen = 0
    while error is not None and type(error).__name__ == "NodeError" and error.__cause__ is not None and seen < 20:
        error = error.__cause__
        seen += 1
    return error


_ENGINE_DIR = os.path.dirname(os.path.abspath(flyt_engine.__file__)) + os.sep


def traceback_text(error: BaseException, max_chars: int = 6000, base: str | os.PathLike[str] | None = None) -> str:
    """The traceback of ``error`` through the user's code, bounded; never raises.

    Engine frames are left out (unless nothing else is left) and files under ``base``
    (the flow's directory) are shown relative to it.
    """
    if getattr(type(error), "__module__", "") == "recorded":  # a RecordedError (tagged.py): its text as recorded
        text = str(getattr(error, "traceback", "") or error_line(error))
        return text if len(text) <= max_chars else _ELLIPSIS + text[-max_chars:]
    try:
        summary = traceback.TracebackException.from_exception(error)
        frames = [frame for frame in summary.stack if not frame.filename.startswith(_ENGINE_DIR)]
        if frames and len(frames) != len(summary.stack):
            summary.stack = traceback.StackSummary.from_list(frames)
        if base is not None:
            prefix = os.path.abspath(base) + os.sep
            for frame in summary.stack:
                if frame.filename.startswith(prefix):
                    frame.filename = frame.filename[len(prefix) :]
        text = "".join(summary.format(chain=False)).rstrip()
    except Exception:
        text = error_line(error)
    if len(text) > max_chars:
        text = _ELLIPSIS + text[-max_chars:]
    return text


def format_duration(seconds: float) -> str:
    """``850µs``, ``12ms``, ``1.24s``, ``2m05s``."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def format_rate(per_second: float) -> str:
    """``12.5/s``, ``1.2k/s``."""
    if per_second >= 1000:
        return f"{per_second / 1000:.1f}k/s"
    if per_second >= 10:
        return f"{per_second:.0f}/s"
    return f"{per_second:.1f}/s"
