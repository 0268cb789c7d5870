"""Any store as a JSON document that always parses (``flyt-tui --json``).

- ``str``, ``bool``, ``None``, finite ``float`` and ``int`` (up to 4,000 digits) stay as
  they are; lists and tuples become arrays; mappings become objects.
- Everything else becomes a string: its ``repr`` made safely (one that raises or loops
  gives ``<unreprable T>``), capped at ``TEXT_LIMIT`` characters with the full length said,
  e.g. ``"xxxx… (10485760 chars)"``. NaN and infinities become ``"nan"``, ``"inf"``.
- Containers deeper than ``MAX_DEPTH`` or that contain themselves end in such a string.
- Keys: a ``str`` key stays itself unless it starts with ``$``; every other key is written
  ``"$<type>:<repr>"`` (``1`` → ``"$int:1"``, ``(1, 2)`` → ``"$tuple:(1, 2)"``) and a
  ``str`` key starting with ``$`` as ``"$str:<key>"``, so ``1`` and ``"1"`` never collide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .format import safe_repr

TEXT_LIMIT = 100_000
MAX_DEPTH = 64
_INT_DIGITS = 4000


def capped(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def encode_key(key: Any) -> str:
    """The JSON object key of a store key (see the module docstring)."""
    if isinstance(key, str):
        return "$str:" + key if key.startswith("$") else key
    return f"${type(key).__name__}:{capped(safe_repr(key, 200), 200)}"


def to_jsonable(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """``value`` as something ``json.dumps`` always accepts (see the module docstring)."""
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    if kind is str:
        return capped(value)
    if kind is int:
        if value.bit_length() > _INT_DIGITS * 3.3:
            return f"<int of {value.bit_length()} bits>"
        return value
    if kind is float:
        return value if math.isfinite(value) else repr(value)
    if _depth >= MAX_DEPTH or id(value) in _seen:
        return capped(safe_repr(value, 200))
    if isinstance(value, Mapping):
        seen = _seen | {id(value)}
        try:
            items = list(value.items())
        except Exception:
            return capped(safe_repr(value, 200))
        return {encode_key(k): to_jsonable(v, _depth + 1, seen) for k, v in items}
    if kind is list or kind is tuple:
        seen = _seen | {id(value)}
        return [to_jsonable(item, _depth + 1, seen) for item in value]
    return capped(safe_repr(value, TEXT_LIMIT))
