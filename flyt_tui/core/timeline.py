"""Every checkpoint of a run, in compact columns, so that any past moment can be looked at.

A *checkpoint* is one moment of the run: before a node's prep, exec or post, a store
write, a failed attempt, a fallback, a batch item ending, a node ending or failing, a user
edit. A *step* is one visit of a node (every turn of a loop, every BatchFlow iteration's
node, its own step). Both live in ``array`` columns (a few bytes each); store writes keep
their value as it was at the write (``snapshots.py``), and the store as a whole is kept
only as a *keyframe* every ``KEYFRAME_EVERY`` writes: the store at any checkpoint is the
nearest keyframe before it plus at most that many writes replayed.

Built on the UI thread from drained records (``ingest``), never on the run thread.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from flyt_engine.events import (
    BatchItemFinished,
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    PhaseFinished,
    PhaseStarted,
    RunStarted,
    StoreChanged,
    field_getter,
    kind_of,
    node_id_of,
    path_of,
    run_id_of,
)

from .snapshots import WriteFlag, thaw

KEYFRAME_EVERY = 1024  # writes between two full copies of the store
_PAIR_WINDOW = 64  # how far into the kept values a write's own is looked for

Record = tuple[Any, ...]


class Mark(IntEnum):
    """What happened at a checkpoint."""

    PREP = 0  # before the node's prep (the start of a step)
    EXEC = 1  # before exec
    POST = 2  # before post
    WRITE = 3  # a store write (after it)
    ATTEMPT_FAILED = 4
    FALLBACK = 5
    ITEM = 6  # a batch item ended
    DONE = 7  # the node returned its action
    FAILED = 8  # the node failed
    EDIT = 9  # a user edit (after it)


PHASE_MARKS = {"prep": Mark.PREP, "exec": Mark.EXEC, "post": Mark.POST}
PHASE_OF_MARK = {Mark.PREP: "prep", Mark.EXEC: "exec", Mark.POST: "post"}
WORDS = {
    Mark.PREP: "prep",
    Mark.EXEC: "exec",
    Mark.POST: "post",
    Mark.WRITE: "write",
    Mark.ATTEMPT_FAILED: "attempt failed",
    Mark.FALLBACK: "fallback",
    Mark.ITEM: "batch item",
    Mark.DONE: "done",
    Mark.FAILED: "failed",
    Mark.EDIT: "user edit",
}

_PHASE = field_getter(PhaseStarted, "phase")
_RESULT = field_getter(PhaseFinished, "result")
_DONE_PHASE = field_getter(PhaseFinished, "phase")
_KEY = field_getter(StoreChanged, "key")
_VALUE = field_getter(StoreChanged, "value")
_DELETED = field_getter(StoreChanged, "deleted")
_ATTEMPT = field_getter(ExecFailed, "attempt", "max_attempts", "error")
_FALLBACK_ERROR = field_getter(FallbackUsed, "error")
_FAILED = field_getter(NodeFailed, "phase", "error")
_ITEM = field_getter(BatchItemFinished, "index", "ok", "error")


@dataclass(frozen=True)
class Moment:
    """One checkpoint, as the screen describes it."""

    index: int  # the checkpoint
    step: int  # the node step it belongs to (0-based), -1 before the first
    mark: Mark
    path: tuple[str, ...]  # the node's path ("#i" markers included)
    detail: Any = None  # the write's key, the attempt's (n, max, error), the item's (i, ok, error)

    @property
    def node(self) -> str:
        return self.path[-1] if self.path else ""

    @property
    def words(self) -> str:
        """``load · exec``, ``load · write total``, ``fetch · attempt 2/3 failed``."""
        what = WORDS[self.mark]
        if self.mark in (Mark.WRITE, Mark.EDIT) and self.detail is not None:
            what = f"{what} {self.detail}"
        elif self.mark is Mark.ATTEMPT_FAILED and self.detail is not None:
            what = f"attempt {self.detail[0]}/{self.detail[1]} failed"
        elif self.mark is Mark.ITEM and self.detail is not None:
            what = f"item {self.detail[0]} {'ok' if self.detail[1] else 'failed'}"
        return f"{self.node} · {what}" if self.node else what


@dataclass(frozen=True)
class Write:
    """One write to a key, for provenance: who wrote what, when."""

    index: int  # the write's number
    checkpoint: int
    step: int
    writer: tuple[str, ...]
    value: Any  # as it was written (thawed)
    flags: WriteFlag


class Timeline:
    """Every checkpoint of one run (see the module docstring). ``len(timeline)`` checkpoints."""

    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        self.run_id: int | None = None
        # checkpoints
        self.marks = array("B")
        # node steps
        self.step_path = array("I")  # index into self.paths
        self.step_cp = array("I")  # the step's first checkpoint
        self.step_prep: list[Any] = []  # prep and exec results, for forks
        self.step_exec: list[Any] = []
        # writes
        self.write_cp = array("I")
        self.write_key = array("I")
        self.write_flags = array("B")
        self.write_value: list[Any] = []  # kept values (snapshots.py)
        self.write_writer = array("I")  # path index of the writer
        # interned names
        self.paths: list[tuple[str, ...]] = []
        self._path_ids: dict[tuple[str, ...], int] = {}
        self.keys: list[str] = []
        self._key_ids: dict[str, int] = {}
        # sparse details: checkpoint -> what it carries
        self.details: dict[int, Any] = {}
        # checkpoints of a step other than the latest one started (a flow's post after its
        # children, items of concurrent steps): the exception, so kept sparse
        self._owner: dict[int, int] = {}
        self.failures: list[int] = []  # checkpoints of failed attempts and failures
        # the store: initial, keyframes, and the state at the live end
        self.initial: dict[str, Any] = dict(initial or {})
        self._state: dict[str, Any] = dict(self.initial)
        self.keyframes: list[dict[str, Any]] = [dict(self._state)]
        self._writers: dict[str, int] = {}  # key -> path index of its last writer, at the live end
        self.keyframe_writers: list[dict[str, int]] = [{}]
        self.keyframe_at = array("I", [0])  # the write each keyframe is the store before
        self.deletions = array("I")  # writes that deleted their key
        self._current: dict[tuple[tuple[str, ...], int], int] = {}  # (path, node_id) -> step
        self._kept: deque[tuple[str, Any, Any, int]] = deque()
        self.ended = False

    def __len__(self) -> int:
        return len(self.marks)

    @property
    def steps(self) -> int:
        return len(self.step_cp)

    # -- building ---------------------------------------------------------------------------
    def _path_id(self, path: tuple[str, ...]) -> int:
        found = self._path_ids.get(path)
        if found is None:
            found = self._path_ids[path] = len(self.paths)
            self.paths.append(path)
        return found

    def _key_id(self, key: str) -> int:
        found = self._key_ids.get(key)
        if found is None:
            found = self._key_ids[key] = len(self.keys)
            self.keys.append(key)
        return found

    def ingest(self, records: Iterable[Record], kept: Iterable[tuple[str, Any, Any, int]] = ()) -> None:
        """Fold drained records (and the values their writes kept, ``ValueSnapshots.take``)."""
        self._kept.extend(kept)
        marks = self.marks
        current = self._current
        for record in records:
            kind = kind_of(record)
            if kind is PhaseFinished:
                phase = _DONE_PHASE(record)
                if phase in ("prep", "exec"):
                    step = current.get((path_of(record), node_id_of(record)), -1)
                    if step >= 0:
                        (self.step_prep if phase == "prep" else self.step_exec)[step] = _RESULT(record)
                continue
            if kind is RunStarted:
                if self.run_id is None:
                    self.run_id = run_id_of(record)
                continue
            if self.run_id is not None and run_id_of(record) != self.run_id:
                continue
            if kind is NodeStarted:
                path = path_of(record)
                step = len(self.step_cp)
                current[(path, node_id_of(record))] = step
                self.step_path.append(self._path_id(path))
                self.step_cp.append(len(marks))
                self.step_prep.append(None)
                self.step_exec.append(None)
                marks.append(Mark.PREP)
                continue
            step = current.get((path_of(record), node_id_of(record)), -1)
            if 0 <= step != len(self.step_cp) - 1:
                self._owner[len(marks)] = step
            if kind is PhaseStarted:
                mark = PHASE_MARKS.get(_PHASE(record))
                if mark is None or mark is Mark.PREP:
                    self._owner.pop(len(marks), None)
                    continue
                if step >= 0 and self.marks[-1] == mark and self.step_of(len(marks) - 1) == step:
                    self._owner.pop(len(marks), None)
                    continue  # exec again after a failed attempt: the attempt marks it
                marks.append(mark)
            elif kind is StoreChanged:
                self._write(record, step)
            elif kind is ExecFailed:
                self.details[len(marks)] = _ATTEMPT(record)
                self.failures.append(len(marks))
                marks.append(Mark.ATTEMPT_FAILED)
            elif kind is FallbackUsed:
                self.details[len(marks)] = _FALLBACK_ERROR(record)
                marks.append(Mark.FALLBACK)
            elif kind is BatchItemFinished:
                item = _ITEM(record)
                self.details[len(marks)] = item
                if not item[1]:
                    self.failures.append(len(marks))
                marks.append(Mark.ITEM)
            elif kind is NodeFinished:
                marks.append(Mark.DONE)
            elif kind is NodeFailed:
                self.details[len(marks)] = _FAILED(record)
                self.failures.append(len(marks))
                marks.append(Mark.FAILED)
            else:  # nothing kept for it (batch start and end, run end)
                self._owner.pop(len(marks), None)

    def _write(self, record: Record, step: int) -> None:
        key, value, deleted = _KEY(record), _VALUE(record), _DELETED(record)
        kept_value, flags = self._pair(key, value, deleted)
        mark = Mark.EDIT if flags & WriteFlag.EDIT else Mark.WRITE
        index = len(self.write_cp)
        if index - self.keyframe_at[-1] >= max(KEYFRAME_EVERY, len(self._state)):
            self.keyframes.append(dict(self._state))  # amortized: at most one entry per write
            self.keyframe_writers.append(dict(self._writers))
            self.keyframe_at.append(index)
        cp = len(self.marks)
        self.marks.append(mark)
        self.write_cp.append(cp)
        self.write_key.append(self._key_id(key))
        if deleted:
            self.deletions.append(index)
        self.write_flags.append(flags)
        self.write_value.append(kept_value)
        writer = self._path_id(path_of(record))
        self.write_writer.append(writer)
        self._writers[key] = writer
        if deleted:
            self._state.pop(key, None)
        else:
            self._state[key] = kept_value

    def _pair(self, key: str, value: Any, deleted: bool) -> tuple[Any, int]:
        """The kept value of this write (what ``ValueSnapshots`` saw at the write), found by
        identity in the kept queue; without one, the value itself, marked live."""
        kept = self._kept
        for i, entry in enumerate(kept):
            if entry[0] == key and entry[1] is value:
                for _ in range(i + 1):  # writes kept before it had no record (before the run)
                    kept.popleft()
                return entry[2], entry[3]
            if i >= _PAIR_WINDOW:
                break
        if deleted:
            return None, WriteFlag.DELETED
        return value, WriteFlag.LIVE

    # -- reading ----------------------------------------------------------------------------
    def step_of(self, index: int) -> int:
        """The node step checkpoint ``index`` belongs to (-1 before the first)."""
        owner = self._owner.get(index)
        return bisect_right(self.step_cp, index) - 1 if owner is None else owner

    def moment(self, index: int) -> Moment:
        step = self.step_of(index)
        path = self.paths[self.step_path[step]] if step >= 0 else ()
        mark = Mark(self.marks[index])
        if mark in (Mark.WRITE, Mark.EDIT):
            detail: Any = self.keys[self.write_key[self.writes_until(index) - 1]]
        else:
            detail = self.details.get(index)
        return Moment(index, step, mark, path, detail)

    def writes_until(self, index: int) -> int:
        """How many writes the store holds at checkpoint ``index`` (a write: after it)."""
        return bisect_right(self.write_cp, index)

    def kept_store_at(self, index: int) -> dict[str, Any]:
        """The store at checkpoint ``index``, values as kept (``thaw`` each to read it)."""
        count = self.writes_until(index)
        frame = bisect_right(self.keyframe_at, count) - 1
        state = dict(self.keyframes[frame])
        lo = self.keyframe_at[frame]
        keys, write_key, values = self.keys, self.write_key, self.write_value
        deletions = self.deletions
        first_deletion = bisect_right(deletions, lo - 1)
        if first_deletion >= len(deletions) or deletions[first_deletion] >= count:
            state.update(zip(map(keys.__getitem__, write_key[lo:count]), values[lo:count], strict=True))  # in C
            return state
        flags = self.write_flags
        for i in range(lo, count):
            if flags[i] & WriteFlag.DELETED:
                state.pop(keys[write_key[i]], None)
            else:
                state[keys[write_key[i]]] = values[i]
        return state

    def store_at(self, index: int) -> dict[str, Any]:
        """The store as it was at checkpoint ``index`` (fresh objects where copies were kept)."""
        return {key: thaw(value) for key, value in self.kept_store_at(index).items()}

    def writer_at(self, index: int) -> dict[str, tuple[str, ...]]:
        """Who last wrote each key, as of checkpoint ``index`` (keys of the initial store
        never written since: absent)."""
        count = self.writes_until(index)
        frame = bisect_right(self.keyframe_at, count) - 1
        writers = dict(self.keyframe_writers[frame])
        lo = self.keyframe_at[frame]
        writers.update(
            zip(map(self.keys.__getitem__, self.write_key[lo:count]), self.write_writer[lo:count], strict=True)
        )
        paths = self.paths
        return {key: paths[writer] for key, writer in writers.items()}

    def changed_at(self, index: int) -> dict[str, Any]:
        """Keys written since the previous phase checkpoint, up to ``index``, with their value
        before (thawed; ``MISSING`` when the key was absent): the diff the screen shows."""
        writes = (Mark.WRITE, Mark.EDIT)
        marks = self.marks
        last = index
        while last >= 0 and marks[last] in writes:
            last -= 1
        if last == index:  # a phase or other checkpoint: what was written since the one before
            last -= 1
            while last >= 0 and marks[last] in writes:
                last -= 1
        lo = self.writes_until(last) if last >= 0 else 0
        hi = self.writes_until(index)
        if lo >= hi:
            return {}
        before = self.kept_store_at(self.write_cp[lo] - 1) if self.write_cp[lo] > 0 else dict(self.initial)
        changed: dict[str, Any] = {}
        for i in range(lo, hi):
            key = self.keys[self.write_key[i]]
            if key not in changed:
                changed[key] = thaw(before[key]) if key in before else MISSING
        return changed

    def provenance(self, key: str) -> list[Write]:
        """Every write of ``key``, oldest first: who wrote which value at which checkpoint."""
        key_id = self._key_ids.get(key)
        if key_id is None:
            return []
        out = []
        for i, k in enumerate(self.write_key):
            if k == key_id:
                out.append(
                    Write(
                        i,
                        self.write_cp[i],
                        self.step_of(self.write_cp[i]),
                        self.paths[self.write_writer[i]],
                        thaw(self.write_value[i]),
                        WriteFlag(self.write_flags[i]),
                    )
                )
        return out

    def step_start(self, step: int) -> int:
        return self.step_cp[step]

    def next_step_start(self, index: int, direction: int) -> int:
        """The first checkpoint of the node step that starts next after ``index`` (``direction``
        1; the last checkpoint when none does) or last before it (-1; 0 when none does)."""
        if not len(self):
            return 0
        starts = self.step_cp
        if direction > 0:
            later = bisect_right(starts, index)
            return starts[later] if later < len(starts) else len(self) - 1
        earlier = bisect_left(starts, index) - 1
        return starts[earlier] if earlier >= 0 else 0

    def fork_point(self, index: int) -> tuple[tuple[str, ...], str, Any, Any]:
        """Where a fork from checkpoint ``index`` starts: ``(path, phase, prep, exec)``.

        Before prep, exec or post: that phase of that node step, with the step's recorded
        results; any other checkpoint forks before the next phase of its step (after its
        last phase: before the next step's prep)."""
        mark = Mark(self.marks[index])
        step = self.step_of(index)
        if mark in PHASE_OF_MARK and step >= 0:
            return self.paths[self.step_path[step]], PHASE_OF_MARK[mark], self.step_prep[step], self.step_exec[step]
        for later in range(index + 1, len(self)):
            if Mark(self.marks[later]) in PHASE_OF_MARK:
                return self.fork_point(later)
        raise LookupError("the run ended after this checkpoint: there is nothing left to run from it")


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()
