"""What a store value was at the moment it was written, kept cheaply (DESIGN.md "time travel").

The store hands its watchers the live object: a list appended in place and set again is the
same object at every step, so keeping the reference would show its newest contents at old
steps. ``ValueSnapshots`` runs as a store watcher on the run thread, at the write, and keeps
for each write what the value *was*:

- immutable values (numbers, strings, bytes, ``None``, tuples, frozensets) by reference;
- a list whose previous version is a prefix of it shares one growing *shadow* list with
  its earlier versions (``Prefix``): an append costs the appended tail, whatever the
  length; any other list is copied shallowly;
- dicts and sets are copied shallowly;
- anything else is pickled (``Pickled``; only our own bytes are ever unpickled) or, failing
  that, kept by reference and marked (``Live``: it may have changed since).

A value set again as the very same object is flagged ``MUTATED`` (changed in place).
Writes that never go through the store are invisible to all of this.
"""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Callable, Iterable
from enum import IntFlag
from operator import is_
from typing import Any

# Lists up to this long are checked element by element (by identity, in C) to be an
# extension of their previous version; longer ones by their first and last elements.
FULL_PREFIX_CHECK = 4096
SAMPLE = 256
PICKLE_LIMIT = 1 << 20  # bytes: a bigger pickle is not kept (the value is kept Live)

_PAIR_WINDOW = 64  # how far into the kept values a write's own is looked for

_IMMUTABLE = frozenset({int, float, complex, bool, str, bytes, type(None), tuple, frozenset, range})


class WriteFlag(IntFlag):
    """What a kept write says beyond its value."""

    NONE = 0
    DELETED = 1
    EDIT = 2  # a user edit while paused
    MUTATED = 4  # set again as the same object: it was changed in place
    LIVE = 8  # kept by reference: later changes show at this step too


class Prefix:
    """A list version: the first ``length`` items of a shadow shared with later versions."""

    __slots__ = ("items", "length")

    def __init__(self, items: list[Any], length: int) -> None:
        self.items = items
        self.length = length

    def value(self) -> list[Any]:
        return self.items[: self.length]


class Pickled:
    """A value kept as its pickle (made in this process, at the write)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def value(self) -> Any:
        return pickle.loads(self.data)


class Live:
    """A value that could not be copied: the object itself, which may have changed since."""

    __slots__ = ("ref",)

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def value(self) -> Any:
        return self.ref


def thaw(kept: Any) -> Any:
    """The value a kept write stands for (a fresh list for a ``Prefix``)."""
    if type(kept) in _KEPT:
        try:
            return kept.value()
        except Exception as exc:  # a pickle that will not load back: say so, never raise
            return Unreadable(f"{type(exc).__name__} while reading the kept value back")
    return kept


class Unreadable:
    """Shown in place of a kept value that could not be read back."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<unreadable: {self.reason}>"


_KEPT = (Prefix, Pickled, Live)


def _is_prefix(shadow: list[Any], value: list[Any]) -> bool:
    n = len(shadow)
    if len(value) < n:
        return False
    if n <= FULL_PREFIX_CHECK:
        return all(map(is_, shadow, value))
    head = all(map(is_, shadow[:SAMPLE], value[:SAMPLE]))
    return head and all(map(is_, shadow[n - SAMPLE : n], value[n - SAMPLE : n]))


class ValueSnapshots:
    """The store watcher that keeps each write's value as it was (see the module docstring).

    ``kept`` receives ``(key, value, kept, flags)`` per write, in write order; the timeline
    pairs them with the run's ``StoreChanged`` records. ``is_edit()`` says whether the
    write being made is a user edit.
    """

    def __init__(self, is_edit: Callable[[], bool] = lambda: False) -> None:
        self.kept: list[tuple[str, Any, Any, int]] = []
        self._last: dict[str, tuple[Any, list[Any] | None]] = {}  # key -> (object, its shadow)
        self._is_edit = is_edit

    def __call__(self, store: object, key: str, value: Any, deleted: bool) -> None:
        flags = WriteFlag.EDIT if self._is_edit() else WriteFlag.NONE
        if deleted:
            self._last.pop(key, None)
            self.kept.append((key, value, None, flags | WriteFlag.DELETED))
            return
        kind = type(value)
        if kind in _IMMUTABLE:
            self._last.pop(key, None)
            self.kept.append((key, value, value, flags))
            return
        last = self._last.get(key)
        if last is not None and last[0] is value:
            flags |= WriteFlag.MUTATED
        try:
            kept, shadow = self._keep(kind, value, last)
        except Exception:  # a container whose copy raises (a hostile subclass): keep it live
            kept, shadow = Live(value), None
        if type(kept) is Live:
            flags |= WriteFlag.LIVE
        self._last[key] = (value, shadow)
        self.kept.append((key, value, kept, flags))

    @staticmethod
    def _keep(kind: type, value: Any, last: tuple[Any, list[Any] | None] | None) -> tuple[Any, list[Any] | None]:
        if kind is list:
            shadow = last[1] if last is not None else None
            if shadow is not None and _is_prefix(shadow, value):
                shadow.extend(value[len(shadow) :])
            else:
                shadow = list(value)
            return Prefix(shadow, len(shadow)), shadow
        if kind is dict:
            return dict(value), None
        if kind is set:
            return set(value), None
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return Live(value), None
        if len(data) > PICKLE_LIMIT:
            return Live(value), None
        return Pickled(data), None

    def take(self) -> list[tuple[str, Any, Any, int]]:
        """The writes kept so far, oldest first (two atomic list operations, as a drain)."""
        kept = self.kept
        count = len(kept)
        batch = kept[:count]
        del kept[:count]
        return batch


Kept = tuple[str, Any, Any, int]  # (key, the value written, what was kept of it, WriteFlag)


class KeptPairing:
    """Pairs each ``StoreChanged`` record with the value ``ValueSnapshots`` kept at its write.

    Both arrive in write order, drained separately (``queue`` holds the kept values not
    paired yet); a record's own kept value is the one with its key and the very object it
    carries, usually the first in the queue (callers may test that inline, the hot case).
    """

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: deque[Kept] = deque()

    def extend(self, kept: Iterable[Kept]) -> None:
        self.queue.extend(kept)

    def pair(self, key: str, value: Any, deleted: bool) -> tuple[Any, int]:
        """The kept value of this write and its flags; without one, the value itself,
        marked live (``DELETED`` for a deletion)."""
        queue = self.queue
        if queue and (entry := queue[0])[1] is value and entry[0] == key:
            queue.popleft()
            return entry[2], entry[3]
        for i, entry in enumerate(queue):
            if entry[0] == key and entry[1] is value:
                for _ in range(i + 1):  # writes kept before it had no record (before the run)
                    queue.popleft()
                return entry[2], entry[3]
            if i >= _PAIR_WINDOW:
                break
        if deleted:
            return None, WriteFlag.DELETED
        return value, WriteFlag.LIVE
