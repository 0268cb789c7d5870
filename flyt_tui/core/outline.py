"""How a value opens into parts, for the inspector's expandable values.

A debugger's variables view: a dict opens into its items, a list or tuple into its
elements, a set into its members, an object into its attributes, and a long string into
its text wrapped at the pane's width. Opening is lazy (one level at a time, only when the
user asks), capped (``MAX_PARTS``), and never runs the user's code: containers are walked
with the built-in types' own methods (``dict.items(value)``, not ``value.items()``), so a
self-containing list or a subclass with a hostile ``__iter__`` opens like any other.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from itertools import islice
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any

MAX_PARTS = 200  # parts shown when a value opens; the rest are counted
MAX_TEXT_LINES = 400  # wrapped lines of a long string


@dataclass(frozen=True)
class Part:
    """One part of an opened value: ``name`` (``'key'``, ``[3]``, ``.attr``) and its value;
    ``text`` instead for a line of wrapped string or a ``… N more`` marker."""

    name: str
    value: Any = None
    text: str | None = None


def _is(value: Any, kinds: type | tuple[type, ...]) -> bool:
    """``isinstance`` by the value's real type: never asks the value for ``__class__``."""
    return issubclass(type(value), kinds)


def _size(value: Any) -> int:
    for kind in (dict, list, tuple, set, frozenset):
        if _is(value, kind):
            return kind.__len__(value)
    return 0


def _attributes(value: Any) -> dict[str, Any] | None:
    """An object's own attributes, read without calling its ``__getattr__``."""
    if _is(value, (type, ModuleType, FunctionType, BuiltinFunctionType, MethodType)):
        return None
    try:
        attributes = object.__getattribute__(value, "__dict__")
    except Exception:
        return None
    return attributes if type(attributes) is dict and attributes else None


def can_open(value: Any, width: int) -> bool:
    """Whether ``value`` has parts worth a line each (a long string: longer than ``width``)."""
    if _is(value, (str, bytes)):
        return len(value) > width
    if _is(value, (dict, list, tuple, set, frozenset)):
        return _size(value) > 0
    return _attributes(value) is not None


def parts_of(value: Any, width: int) -> list[Part]:
    """The parts of ``value`` (see the module's docstring); never raises."""
    try:
        return _parts(value, max(8, width))
    except Exception as exc:  # a container changed size under us, a broken __dict__
        return [Part("", text=f"cannot open: {type(exc).__name__}")]


def _parts(value: Any, width: int) -> list[Part]:
    if _is(value, (str, bytes)):
        return _text_parts(value, width)
    if _is(value, dict):
        pairs = list(islice(dict.items(value), MAX_PARTS))
        return _capped([Part(_key_name(key), item) for key, item in pairs], dict.__len__(value))
    if _is(value, (list, tuple)):
        kind = list if _is(value, list) else tuple
        items = list(islice(kind.__iter__(value), MAX_PARTS))
        return _capped([Part(f"[{index}]", item) for index, item in enumerate(items)], kind.__len__(value))
    if _is(value, (set, frozenset)):
        members = list(islice(set.__iter__(value) if _is(value, set) else frozenset.__iter__(value), MAX_PARTS))
        return _capped([Part("·", member) for member in members], _size(value))
    attributes = _attributes(value)
    if attributes is not None:
        pairs = list(islice(attributes.items(), MAX_PARTS))
        return _capped([Part(f".{name}", item) for name, item in pairs], len(attributes))
    return []


def _key_name(key: Any) -> str:
    from .format import safe_repr

    return safe_repr(key, 40)


def _capped(parts: list[Part], size: int) -> list[Part]:
    if size > len(parts):
        parts.append(Part("", text=f"… {size - len(parts):,} more"))
    return parts


def _text_parts(value: str | bytes, width: int) -> list[Part]:
    """A long string wrapped at ``width`` (newlines kept), capped at ``MAX_TEXT_LINES``."""
    text = str.__str__(value) if isinstance(value, str) else repr(bytes(value[: width * MAX_TEXT_LINES]))[2:-1]
    head = text[: width * MAX_TEXT_LINES]
    lines: list[str] = []
    for paragraph in head.split("\n"):
        lines.extend(textwrap.wrap(paragraph, width, replace_whitespace=False, drop_whitespace=False) or [""])
        if len(lines) >= MAX_TEXT_LINES:
            break
    parts = [Part("", text=line) for line in lines[:MAX_TEXT_LINES]]
    shown = sum(len(line) for line in lines[:MAX_TEXT_LINES])
    if len(value) > shown + head.count("\n"):
        parts.append(Part("", text=f"… {len(value):,} characters in all"))
    return parts
