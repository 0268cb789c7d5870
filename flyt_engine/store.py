"""SharedStore: the thread-safe dictionary that nodes of a flow share."""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import sys
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .errors import BindError, error_text

T = TypeVar("T")
_MISSING = object()

# Called as watcher(store, key, value, deleted) after every write while a run watches.
StoreWatcher = Callable[["SharedStore", str, Any, bool], None]


class SharedStore:
    """A key-value store shared by the nodes of a flow; every method is atomic.

    Writes take one re-entrant lock. Single-key reads (``get``, ``in``, ``[]``) rely on
    the atomicity of ``dict`` operations and take no lock, which keeps the hot path of a
    flow short; everything that reads several keys takes the lock.
    """

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        if initial is not None and not isinstance(initial, Mapping):
            raise TypeError(f"SharedStore takes a mapping, not {type(initial).__name__}")
        self._data: dict[str, Any] = dict(initial) if initial else {}
        self._lock = threading.RLock()
        self._watchers: tuple[StoreWatcher, ...] = ()
        # thread id -> calls waiting until that thread no longer holds the lock (a paused
        # run must not hold the store's lock while the UI reads or edits the store)
        self._deferred: dict[int, list[Callable[[], None]]] = {}
        if type(self).get is SharedStore.get:
            # The fast path of `get`: the dict's own C method, bound once (a subclass that
            # overrides `get` keeps its override).
            self.get = self._data.get  # type: ignore[method-assign,assignment]

    def get(self, key: str, default: Any = None) -> Any:  # shadowed per instance by dict.get
        """The value under ``key``, or ``default`` when it is missing."""
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""
        with self._lock:
            self._data[key] = value
            watchers = self._watchers
            if watchers:
                for watcher in watchers:
                    watcher(self, key, value, False)
        if watchers and self._deferred:
            self._run_deferred()

    def has(self, key: str) -> bool:
        """True when ``key`` is present (even with a ``None`` value)."""
        return key in self._data

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is a no-op."""
        with self._lock:
            if key in self._data:
                del self._data[key]
                if self._watchers:
                    self._notify(key, None, True)
        if self._deferred:
            self._run_deferred()

    def keys(self) -> list[str]:
        """A snapshot of the keys."""
        with self._lock:
            return list(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Remove every key."""
        with self._lock:
            removed = list(self._data) if self._watchers else ()
            self._data.clear()
            for key in removed:
                self._notify(key, None, True)
        if self._deferred:
            self._run_deferred()

    def get_all(self) -> dict[str, Any]:
        """A shallow copy of the whole store."""
        with self._lock:
            return dict(self._data)

    def merge(self, mapping: Mapping[str, Any] | None) -> None:
        """Set every key of ``mapping`` at once (atomically); ``None`` is a no-op."""
        if mapping is None:
            return
        if not isinstance(mapping, Mapping):
            raise TypeError(f"merge takes a mapping, not {type(mapping).__name__}")
        with self._lock:
            self._data.update(mapping)
            if self._watchers:
                for key, value in mapping.items():
                    self._notify(key, value, False)
        if self._deferred:
            self._run_deferred()

    def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Atomically replace the value under ``key`` with ``fn(old)`` and return it.

        ``old`` is ``default`` when the key is missing. ``fn`` runs under the store's
        re-entrant lock: it may read the store but must not wait on other threads.
        """
        try:
            with self._lock:
                new = fn(self._data.get(key, default))
                self._data[key] = new
                if self._watchers:
                    self._notify(key, new, False)
                return new
        finally:
            if self._deferred:
                self._run_deferred()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._data[key]
            if self._watchers:
                self._notify(key, None, True)
        if self._deferred:
            self._run_deferred()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    # -- the rest of the Mapping interface, and dict habits --------------------------------
    def items(self) -> list[tuple[str, Any]]:
        """A snapshot of ``(key, value)`` pairs."""
        with self._lock:
            return list(self._data.items())

    def values(self) -> list[Any]:
        """A snapshot of the values."""
        with self._lock:
            return list(self._data.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SharedStore):
            return self.get_all() == other.get_all()
        if isinstance(other, Mapping):
            return self.get_all() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value; without a default, a missing key is ``KeyError``."""
        if len(default) > 1:
            raise TypeError(f"pop expected at most 2 arguments, got {1 + len(default)}")
        try:
            with self._lock:
                if key not in self._data:
                    if default:
                        return default[0]
                    raise KeyError(key)
                value = self._data.pop(key)
                if self._watchers:
                    self._notify(key, None, True)
                return value
        finally:
            if self._deferred:
                self._run_deferred()

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value under ``key``; when missing, store ``default`` there first and return it."""
        try:
            with self._lock:
                if key in self._data:
                    return self._data[key]
                self._data[key] = default
                if self._watchers:
                    self._notify(key, default, False)
                return default
        finally:
            if self._deferred:
                self._run_deferred()

    def __repr__(self) -> str:
        return f"SharedStore({self.get_all()!r})"

    # -- typed getters ------------------------------------------------------------------
    def get_str(self, key: str, default: str = "") -> str:
        """The value if it is a ``str``, else ``default``."""
        value = self._data.get(key, _MISSING)
        return value if isinstance(value, str) else default

    def get_int(self, key: str, default: int = 0) -> int:
        """The value as ``int`` (floats truncated toward zero); ``bool``, ``str``, NaN and ±inf give ``default``."""
        value = self._data.get(key, _MISSING)
        if isinstance(value, bool):
            return default
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return int(value) if math.isfinite(value) else default
        return default

    def get_float(self, key: str, default: float = 0.0) -> float:
        """The value as ``float`` (ints converted); ``bool`` and other types give ``default``."""
        value = self._data.get(key, _MISSING)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return default
        return float(value)

    def get_bool(self, key: str, default: bool = False) -> bool:
        """The value if it is a ``bool``, else ``default``."""
        value = self._data.get(key, _MISSING)
        return value if isinstance(value, bool) else default

    def get_list(self, key: str, default: list[Any] | None = None) -> list[Any] | None:
        """The value as a new ``list`` if it is a list or tuple, else ``default``."""
        value = self._data.get(key, _MISSING)
        return list(value) if isinstance(value, (list, tuple)) else default

    def get_dict(self, key: str, default: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The value as a new ``dict`` if it is any ``Mapping``, else ``default``."""
        value = self._data.get(key, _MISSING)
        return dict(value) if isinstance(value, Mapping) else default

    # -- bind ---------------------------------------------------------------------------
    def bind(self, key: str, cls: type[T]) -> T:
        """The value under ``key`` converted to ``cls``.

        An instance is returned as is; a mapping becomes a dataclass (nested dataclasses,
        lists, optional fields), a pydantic-style class (``model_validate``) or any class
        taking the keys as keyword arguments. Raises ``BindError`` naming the key and the
        reason when the key is missing or the conversion is impossible.
        """
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            raise BindError(f"cannot bind {key!r}: the key is missing from the store")
        try:
            return _convert(value, cls, key)
        except BindError:
            raise
        except Exception as exc:  # a constructor or validator refused the value
            raise BindError(f"cannot bind {key!r} to {_type_name(cls)}: {error_text(exc)}") from exc

    def watch(self, watcher: StoreWatcher) -> None:
        """Call ``watcher(store, key, value, deleted)`` after every write, holding the store's
        lock (so watchers see writes in the order they happened). For tools: a watcher
        must be quick and must not write to the store."""
        self._watch(watcher)

    def unwatch(self, watcher: StoreWatcher) -> None:
        """Stop calling ``watcher``."""
        self._unwatch(watcher)

    # -- engine hooks -------------------------------------------------------------------
    def _watch(self, watcher: StoreWatcher) -> None:
        with self._lock:
            self._watchers = self._watchers + (watcher,)

    def _unwatch(self, watcher: StoreWatcher) -> None:
        with self._lock:
            self._watchers = tuple(w for w in self._watchers if w is not watcher)

    def _defer(self, call: Callable[[], None]) -> None:
        """Run ``call`` once the calling thread has released the store's lock (watchers run
        holding it: a gate that pauses the run there would lock everybody else out)."""
        self._deferred.setdefault(threading.get_ident(), []).append(call)

    def _run_deferred(self) -> None:
        if _owned(self._lock):  # still inside an outer write (update's fn wrote a key)
            return
        calls = self._deferred.pop(threading.get_ident(), None)
        for call in calls or ():
            call()

    def _notify(self, key: str, value: Any, deleted: bool) -> None:
        for watcher in self._watchers:
            watcher(self, key, value, deleted)


# Generic origins bound as sequences: a list unless the origin is a tuple, set or frozenset.
_SEQUENCE_ORIGINS = (
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
    collections.abc.Set,
    collections.abc.MutableSet,
)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to the type hint ``tp``; raise ``BindError`` saying where it failed."""
    if tp is Any or tp is object:
        return value
    if isinstance(tp, _Unresolved):
        raise BindError(
            f"cannot bind {where!r}: cannot resolve the type hint {tp.text!r} (define that class at module level)"
        )
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        failures = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except (BindError, TypeError, ValueError) as exc:
                failures.append(str(exc))
        reasons = "; ".join(failures)
        raise BindError(f"cannot bind {where!r}: {_short(value)} fits none of {tp} ({reasons})")
    if origin in _SEQUENCE_ORIGINS:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise BindError(f"cannot bind {where!r}: expected a sequence, got {type(value).__name__}")
        args = typing.get_args(tp)
        values = list(value)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            # tuple[int, str]: one type per position
            if args == ((),):  # tuple[()]
                args = ()
            if len(values) != len(args):
                raise BindError(f"cannot bind {where!r}: expected {len(args)} items, got {len(values)}")
            return tuple(_convert(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(values, args, strict=True)))
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(values)]
        if origin in (set, collections.abc.Set, collections.abc.MutableSet):
            return set(items)
        return origin(items) if origin in (tuple, frozenset) else items
    if origin in (dict, Mapping, collections.abc.MutableMapping):
        if not isinstance(value, Mapping):
            raise BindError(f"cannot bind {where!r}: expected a mapping, got {type(value).__name__}")
        args = typing.get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _convert(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if origin is not None:  # other generics: check the bare origin
        tp = origin
    if not isinstance(tp, type):
        raise BindError(f"cannot bind {where!r}: {tp!r} is not a type")
    if isinstance(value, bool) and tp in (int, float):
        raise BindError(f"cannot bind {where!r} to {tp.__name__}: got a bool ({value!r})")
    if isinstance(value, tp):
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise BindError(f"cannot bind {where!r} to {tp.__name__}: expected a mapping, got {type(value).__name__}")
        return _to_dataclass(value, tp, where)
    validate = getattr(tp, "model_validate", None)
    if callable(validate):
        return validate(value)
    if isinstance(value, Mapping) and tp not in (int, float, str, bool, bytes, list, dict, tuple, set):
        try:
            return tp(**value)
        except TypeError as exc:
            raise BindError(f"cannot bind {where!r} to {tp.__name__}: {error_text(exc)}") from exc
    raise BindError(f"cannot bind {where!r} to {tp.__name__}: got {type(value).__name__} {_short(value)}")


def _to_dataclass(value: Mapping[str, Any], cls: type, where: str) -> Any:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # some annotation names a type out of reach: resolve field by field
        hints = _field_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name in value:
            kwargs[field.name] = _convert(value[field.name], hints.get(field.name, Any), f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            hint = hints.get(field.name, Any)
            if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
                kwargs[field.name] = None
            else:
                raise BindError(f"cannot bind {where!r} to {cls.__name__}: missing field {field.name!r}")
    return cls(**kwargs)


class _Unresolved:
    """A string annotation that names no type reachable from the class's module."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _field_hints(cls: type) -> dict[str, Any]:
    """Each field's type hint, resolving string annotations one by one in the class's module
    (``typing.get_type_hints`` gives up on all of them when one fails, e.g. for a class
    defined inside a function under ``from __future__ import annotations``)."""
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module is not None else {}
    localns = {cls.__name__: cls}
    hints: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = f.type
        if isinstance(hint, str):
            try:
                hint = eval(hint, globalns, localns)  # what typing.get_type_hints does
            except Exception:
                hint = _Unresolved(hint)
        hints[f.name] = hint
    return hints


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _owned(lock: Any) -> bool:
    """Whether the calling thread holds ``lock`` (a ``threading.RLock``)."""
    is_owned = getattr(lock, "_is_owned", None)
    return bool(is_owned()) if is_owned is not None else False


# A Mapping by registration: isinstance(store, Mapping) holds, and the class keeps a plain
# metaclass (an ABC's isinstance checks would cost the hot path of run()).
Mapping.register(SharedStore)
