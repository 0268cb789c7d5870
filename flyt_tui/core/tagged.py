"""Values as tagged JSON, and back, for recorded runs (``recording.py``): never a pickle.

JSON says ``None``, ``bool``, ``str``, finite ``float``, ``int``, lists and dicts with ``str``
keys; those are written as they are. Everything else is an object with a ``"$t"`` tag:

=============  ==========================================================  ================
``$t``         fields                                                      read back as
=============  ==========================================================  ================
``tuple``      ``v``: the items                                            ``tuple``
``set``        ``v``: the items (``frozen``: true for a frozenset)         ``set``/``frozenset``
``dict``       ``v``: ``[[key, value], …]`` (non-str keys, or a ``$t`` key)  ``dict``
``float``      ``v``: ``"nan"``, ``"inf"`` or ``"-inf"``                    ``float``
``int``        ``v``: the digits (an int JSON readers would round)          ``int``
``bytes``      ``v``: base64, ``n``: the full length when cut              ``bytes``
``time``       ``type``: datetime/date/time, ``v``: ISO 8601                the same type
``decimal``    ``v``: the digits                                            ``Decimal``
``object``     ``type``, ``v``: the fields (a dataclass, a namedtuple)      ``RecordedObject``
``error``      ``type``, ``msg``, ``tb`` (user frames), ``cause``           ``RecordedError``
``repr``       ``type``, ``v``: a capped ``repr``                           ``RecordedRepr``
``ext``        ``n``, ``v``: the key's previous list and these items        (``recording.py``)
=============  ==========================================================  ================

Strings are capped at ``TEXT_LIMIT`` characters (``"…(N chars)"`` said), containers at
``ITEM_LIMIT`` items, nesting at ``MAX_DEPTH``; a container that contains itself ends in a
``repr`` tag. ``encode`` never raises, whatever the value's ``__repr__``, ``__str__`` or
``__iter__`` do; ``decode`` never runs code from the file.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import math
import re
import time
from typing import Any

from .format import safe_repr, traceback_text, type_name, user_error

TEXT_LIMIT = 10_000  # characters of a string kept
ITEM_LIMIT = 1_000  # items of a container kept
BYTES_LIMIT = 4_096  # bytes of a bytes value kept
MAX_DEPTH = 32
REPR_LIMIT = 500
_SAFE_INT = 1 << 53

TAG = "$t"
_CUT_TAIL = re.compile(r"…\(\d+ chars\)")
_PLAIN = (str, int, float, bool, type(None))


_MORE = "…"  # the key (of a dict) or type (of a list's last item) that says how much was cut


def _cut(text: str) -> str:
    if len(text) <= TEXT_LIMIT or _CUT_TAIL.fullmatch(text, TEXT_LIMIT):  # (already cut: encoding is idempotent)
        return text
    return f"{text[:TEXT_LIMIT]}…({len(text)} chars)"


def _qualified(value: Any) -> str:
    try:
        kind = type(value)
        module = getattr(kind, "__module__", "") or ""
        name = getattr(kind, "__qualname__", kind.__name__)
        return name if module in ("builtins", "__main__", "") else f"{module}.{name}"
    except Exception:
        return "object"


def encode(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """``value`` as plain JSON or a tagged object (see the module docstring); never raises."""
    kind = type(value)
    if kind is str:
        return value if len(value) <= TEXT_LIMIT else _cut(value)
    if kind is int:
        return value if -_SAFE_INT < value < _SAFE_INT else _big_int(value)
    if kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
    try:
        return _encode_other(value, kind, _depth, _seen)
    except Exception:  # a hostile __iter__, __len__, __eq__...: the repr says what it was
        return _as_repr(value)


def _big_int(value: int) -> Any:
    if value.bit_length() > 13_000:  # about 4,000 digits: str() would refuse or take long
        return {TAG: "repr", "type": "int", "v": f"<int of {value.bit_length()} bits>"}
    return {TAG: "int", "v": str(value)}


SLOW_REPR = 0.05  # seconds: a type whose repr took longer is not asked again
_slow_types: set[type] = set()


def _as_repr(value: Any) -> dict[str, Any]:
    """A ``repr`` tag. A type whose ``repr`` once took over ``SLOW_REPR`` is written by its
    name from then on: a recording must keep up with the run, whatever a value does."""
    kind = type(value)
    name = _qualified(value)
    if kind in _slow_types:
        return {TAG: "repr", "type": name, "v": f"<{name} object: repr too slow to record>"}
    started = time.perf_counter()
    text = safe_repr(value, REPR_LIMIT)
    if time.perf_counter() - started > SLOW_REPR:
        try:
            _slow_types.add(kind)
        except TypeError:  # an unhashable metaclass: asked again next time
            pass
    return {TAG: "repr", "type": name, "v": text}


def _items(values: Any, depth: int, seen: frozenset[int]) -> list[Any]:
    out = []
    limit = ITEM_LIMIT
    if len(values) == ITEM_LIMIT + 1 and type(values[-1]) is RecordedRepr and values[-1].type == _MORE:
        limit += 1  # a list this module cut already
    for index, item in enumerate(values):
        if index >= limit:
            out.append({TAG: "repr", "type": _MORE, "v": f"… {len(values) - ITEM_LIMIT} more"})
            break
        out.append(encode(item, depth, seen))
    return out


def _encode_other(value: Any, kind: type, depth: int, seen: frozenset[int]) -> Any:
    if isinstance(value, BaseException):
        return encode_error(value)
    if kind is RecordedRepr:  # a recording's stand-ins write back as they were read
        return {TAG: "repr", "type": value.type, "v": value.text}
    if kind is RecordedObject:
        return {TAG: "object", "type": value.type, "v": {k: encode(v, depth, seen) for k, v in value.fields.items()}}
    if depth >= MAX_DEPTH or id(value) in seen:
        return _as_repr(value)
    inner = seen | {id(value)}
    depth += 1
    if kind is list:
        return _items(value, depth, inner)
    if kind is dict:
        if all(type(key) is str for key in value) and TAG not in value:
            if len(value) <= ITEM_LIMIT or (len(value) == ITEM_LIMIT + 1 and _MORE in value):
                return {key: encode(item, depth, inner) for key, item in value.items()}
            first = {key: encode(item, depth, inner) for key, item in list(value.items())[:ITEM_LIMIT]}
            first[_MORE] = f"{len(value) - ITEM_LIMIT} more keys"
            return first
        pairs = [[encode(k, depth, inner), encode(v, depth, inner)] for k, v in list(value.items())[:ITEM_LIMIT]]
        return {TAG: "dict", "v": pairs}
    if kind is tuple:
        return {TAG: "tuple", "v": _items(value, depth, inner)}
    if kind is set or kind is frozenset:
        return {TAG: "set", "v": _items(list(value), depth, inner), "frozen": kind is frozenset}
    if kind is bytes or kind is bytearray or kind is RecordedBytes:
        data = bytes(value[:BYTES_LIMIT])
        out: dict[str, Any] = {TAG: "bytes", "v": base64.b64encode(data).decode("ascii")}
        full = value.full_length if kind is RecordedBytes else len(value)
        if full > BYTES_LIMIT:
            out["n"] = full
        return out
    if kind in (datetime.datetime, datetime.date, datetime.time):
        return {TAG: "time", "type": kind.__name__, "v": value.isoformat()}
    if kind is decimal.Decimal:
        return {TAG: "decimal", "v": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name, None), depth, inner) for f in dataclasses.fields(value)}
        return {TAG: "object", "type": _qualified(value), "v": fields}
    if isinstance(value, tuple) and hasattr(kind, "_fields"):  # a namedtuple
        return {
            TAG: "object",
            "type": _qualified(value),
            "v": {f: encode(v, depth, inner) for f, v in zip(kind._fields, value, strict=False)},
        }
    return _as_repr(value)


def encode_error(error: BaseException, _depth: int = 0) -> dict[str, Any]:
    """An exception as a tagged object: its type, message, the user frames of its traceback
    and, for the engine's wrapping errors, the cause."""
    try:
        message = str(error)
    except Exception:
        message = "<str() raised>"
    out: dict[str, Any] = {TAG: "error", "type": type_name(error), "msg": _cut(message)}
    cause = error.__cause__
    if cause is not None and _depth < 4:
        out["cause"] = encode_error(cause, _depth + 1)
    inner = user_error(error)
    tb = traceback_text(inner if inner is not None else error, max_chars=4000)
    if tb:
        out["tb"] = tb
    return out


# -- reading back ------------------------------------------------------------------------------
class RecordedRepr:
    """A value the recording could only describe: shows as the ``repr`` it had."""

    __slots__ = ("text", "type")
    recorded = True  # format.type_name names ``recorded_type``

    @property
    def recorded_type(self) -> str:
        return self.type

    def __init__(self, type_: str, text: str) -> None:
        self.type = type_
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordedRepr) and (other.type, other.text) == (self.type, self.text)

    __hash__ = None  # type: ignore[assignment]


class RecordedBytes(bytes):
    """Bytes that were cut when recorded: the first ``BYTES_LIMIT`` of ``full_length``."""

    full_length: int = 0
    recorded = True
    recorded_type = "bytes"

    def __repr__(self) -> str:
        return f"{bytes.__repr__(self[:60])}… ({self.full_length} bytes, {len(self)} recorded)"


class RecordedObject:
    """A dataclass or namedtuple as recorded: its type's name and its fields."""

    __slots__ = ("fields", "type")
    recorded = True

    @property
    def recorded_type(self) -> str:
        return self.type

    def __init__(self, type_: str, fields: dict[str, Any]) -> None:
        self.type = type_
        self.fields = fields

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={safe_repr(value, 60)}" for name, value in self.fields.items())
        return f"{self.type.rsplit('.', 1)[-1]}({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordedObject) and (other.type, other.fields) == (self.type, self.fields)

    __hash__ = None  # type: ignore[assignment]


class RecordedError(Exception):
    """An exception as recorded. ``type(error).__name__`` is the original type's name (a
    subclass is made per name), ``str(error)`` its message, ``traceback`` its user frames."""

    traceback: str = ""


_ERROR_TYPES: dict[str, type[RecordedError]] = {}


def _error_type(name: str) -> type[RecordedError]:
    found = _ERROR_TYPES.get(name)
    if found is None:
        clean = name if name.isidentifier() else "Error"
        found = _ERROR_TYPES[name] = type(clean, (RecordedError,), {"__module__": "recorded"})
    return found


def decode_error(data: Any) -> RecordedError:
    """The ``RecordedError`` of a tagged error (a malformed one still gives an error)."""
    if not isinstance(data, dict):
        return _error_type("Error")(safe_repr(data, 200))
    error = _error_type(str(data.get("type", "Error")))(str(data.get("msg", "")))
    error.traceback = str(data.get("tb", ""))
    cause = data.get("cause")
    if cause is not None:
        error.__cause__ = decode_error(cause)
    return error


def decode(data: Any) -> Any:
    """The Python value of what ``encode`` wrote (recorded stand-ins where it must)."""
    kind = type(data)
    if kind is list:
        return [decode(item) for item in data]
    if kind is not dict:
        return data
    tag = data.get(TAG)
    if tag is None:
        return {key: decode(item) for key, item in data.items()}
    try:
        return _decode_tagged(tag, data)
    except Exception:
        return RecordedRepr("?", safe_repr(data, REPR_LIMIT))


def _decode_tagged(tag: Any, data: dict[str, Any]) -> Any:
    value: Any = data.get("v")
    if tag == "tuple":
        return tuple(decode(item) for item in value)
    if tag == "set":
        items = [decode(item) for item in value]
        try:
            return frozenset(items) if data.get("frozen") else set(items)
        except TypeError:  # unhashable stand-ins: keep the items in a list
            return items
    if tag == "dict":
        out = {}
        for key, item in value:
            key = decode(key)
            try:
                out[key] = decode(item)
            except TypeError:
                out[safe_repr(key, 200)] = decode(item)
        return out
    if tag == "float":
        return float(value)
    if tag == "int":
        return int(value)
    if tag == "bytes":
        raw = base64.b64decode(value)
        if "n" not in data:
            return raw
        cut = RecordedBytes(raw)
        cut.full_length = int(data["n"])
        return cut
    if tag == "time":
        kind: Any = {"datetime": datetime.datetime, "date": datetime.date, "time": datetime.time}[data["type"]]
        return kind.fromisoformat(value)
    if tag == "decimal":
        return decimal.Decimal(value)
    if tag == "object":
        return RecordedObject(str(data.get("type", "object")), {str(k): decode(v) for k, v in value.items()})
    if tag == "error":
        return decode_error(data)
    return RecordedRepr(str(data.get("type", "object")), str(value))
