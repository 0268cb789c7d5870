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
    Record,
    RunStarted,
    StoreChanged,
    field_getter,
    is_iteration,
    path_of,
    run_id_of,
)

from .snapshots import Kept, KeptPairing, WriteFlag, thaw

KEYFRAME_EVERY = 1024  # writes between two full copies of the store
_WRITES_LOOKED_BACK = 4096  # results_known: past this many writes in a row, a step's post is assumed


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
_PHASE_MARK = {"exec": int(Mark.EXEC), "post": int(Mark.POST)}  # prep's checkpoint is the step's start
# plain ints for the ingest loop (an IntEnum costs a conversion per append)
_PREP, _EXEC, _POST, _WRITE = int(Mark.PREP), int(Mark.EXEC), int(Mark.POST), int(Mark.WRITE)
_ATTEMPT_FAILED, _FALLBACK, _ITEM_MARK = int(Mark.ATTEMPT_FAILED), int(Mark.FALLBACK), int(Mark.ITEM)
_DONE, _FAILED_MARK, _EDIT = int(Mark.DONE), int(Mark.FAILED), int(Mark.EDIT)
_EDIT_FLAG = int(WriteFlag.EDIT)
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
        self.step_action = array("H")  # the action each step returned (index into self.actions; 0: none yet)
        self.actions: list[Any] = [None]
        self._action_ids: dict[Any, int] = {}
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
        self.item_batch: dict[int, int] = {}  # checkpoint of a batch item -> its batch's path (index into paths)
        # per batch (template path): the checkpoints of its items and how many had failed by each
        self._items_of: dict[tuple[str, ...], tuple[array[int], array[int]]] = {}
        self._items_indexed = 0  # entries of item_batch already in _items_of
        # the store: initial, keyframes, and the state at the live end
        self.initial: dict[str, Any] = dict(initial or {})
        self._state: dict[str, Any] = dict(self.initial)
        self.keyframes: list[dict[str, Any]] = [dict(self._state)]
        self._writers: dict[str, int] = {}  # key -> path index of its last writer, at the live end
        self.keyframe_writers: list[dict[str, int]] = [{}]
        self.keyframe_at = array("I", [0])  # the write each keyframe is the store before
        self.deletions = array("I")  # writes that deleted their key
        # id(record header) -> its node step, while the step runs (records of one step share
        # one header tuple, alive while they are: an id is not reused before the step ends)
        self._by_header: dict[int, int] = {}
        self._pairing = KeptPairing()  # the values the writes kept (snapshots.py)
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

    def _action_id(self, action: str) -> int:
        if len(self.actions) >= 65535:  # an action column of two bytes: later ones are not told apart
            return 0
        found = self._action_ids[action] = len(self.actions)
        self.actions.append(action)
        return found

    def action_of(self, step: int) -> Any:
        """The action node step ``step`` returned (``None`` while it runs, or when it failed)."""
        return self.actions[self.step_action[step]]

    def _key_id(self, key: str) -> int:
        found = self._key_ids.get(key)
        if found is None:
            found = self._key_ids[key] = len(self.keys)
            self.keys.append(key)
        return found

    def ingest(self, records: Iterable[Record], kept: Iterable[Kept] = ()) -> None:
        """Fold drained records (and the values their writes kept, ``ValueSnapshots.take``).

        The hot loop of the workbench's UI thread while a run streams: records are read by
        position (``flyt_engine.events`` documents the layout), node steps are found by the
        identity of the header tuple their records share, and the columns' ``append`` and
        the marks are bound to locals.
        """
        self._pairing.extend(kept)
        batch = records if isinstance(records, list) else list(records)
        if not batch:
            return
        if self.run_id is None:
            first = next((record for record in batch if record[0] is RunStarted), None)
            if first is None:
                return
            self.run_id = run_id_of(first)
        run_id = self.run_id
        if run_id_of(batch[0]) != run_id or run_id_of(batch[-1]) != run_id:
            batch = [record for record in batch if run_id_of(record) == run_id]
        marks = self.marks
        add_mark = marks.append
        steps = self.step_cp
        add_step = steps.append
        add_step_path = self.step_path.append
        add_prep = self.step_prep.append
        add_exec = self.step_exec.append
        add_action = self.step_action.append
        action_ids = self._action_ids
        results_of = {"prep": self.step_prep, "exec": self.step_exec}
        by_header = self._by_header
        owner = self._owner
        path_ids = self._path_ids
        details = self.details
        pairing = self._pairing
        kept = pairing.queue
        add_write = self.add_write
        newest = len(steps) - 1  # the step started last
        # the step of the record before: a step's records mostly come one after another
        last_header: Any = None
        last_step = -1
        for record in batch:
            kind = record[0]
            header = record[1]
            if header is last_header:
                step = last_step
            else:
                step = by_header.get(id(header), -1)
                last_header, last_step = header, step
            if kind is PhaseFinished:
                results = results_of.get(record[3])  # prep's and exec's are kept, for forks
                if results is not None and step >= 0:
                    results[step] = record[4]
                continue
            if kind is PhaseStarted:
                mark = _PHASE_MARK.get(record[3], -1)
                if mark < 0:
                    continue
                if step >= 0:
                    if marks[-1] == mark and self.step_of(len(marks) - 1) == step:
                        continue  # exec again after a failed attempt: the attempt marks it
                    if step != newest:
                        owner[len(marks)] = step
                add_mark(mark)
                continue
            if kind is NodeStarted:
                path = path_of(record)
                step = newest = len(steps)
                by_header[id(header)] = step
                last_header, last_step = header, step
                path_id = path_ids.get(path)
                add_step_path(self._path_id(path) if path_id is None else path_id)
                add_step(len(marks))
                add_prep(None)
                add_exec(None)
                add_action(0)
                add_mark(_PREP)
                continue
            if kind is StoreChanged:
                key, value, deleted = record[3], record[4], record[5]
                if kept and (entry := kept[0])[1] is value and entry[0] == key:  # the usual case: in order
                    kept.popleft()
                    kept_value, flags = entry[2], entry[3]
                else:
                    kept_value, flags = pairing.pair(key, value, deleted)
                add_write(step, key, kept_value, flags, deleted, header[1])  # (header: run_id, path, ...)
                continue
            index = len(marks)
            if kind is NodeFinished:
                mark = _DONE
                by_header.pop(id(header), None)
                last_header = None
                if step >= 0:
                    action = record[3]
                    action_id = action_ids.get(action) if type(action) is str else 0
                    if action_id is None:
                        action_id = self._action_id(action)
                    self.step_action[step] = action_id
            elif kind is ExecFailed:
                mark = _ATTEMPT_FAILED
                details[index] = _ATTEMPT(record)
                self.failures.append(index)
            elif kind is FallbackUsed:
                mark = _FALLBACK
                details[index] = _FALLBACK_ERROR(record)
            elif kind is BatchItemFinished:
                mark = _ITEM_MARK
                item = _ITEM(record)
                details[index] = item
                path = path_of(record)
                path_id = path_ids.get(path)
                self.item_batch[index] = self._path_id(path) if path_id is None else path_id
                if not item[1]:
                    self.failures.append(index)
            elif kind is NodeFailed:
                mark = _FAILED_MARK
                details[index] = _FAILED(record)
                self.failures.append(index)
                by_header.pop(id(header), None)
                last_header = None
            else:  # nothing kept for it (batch start and end, run end)
                continue
            if step >= 0 and step != newest:
                owner[index] = step
            add_mark(mark)

    def _write(self, record: Record, step: int) -> None:
        key, value, deleted = record[3], record[4], record[5]
        kept = self._pairing.queue
        if kept and (entry := kept[0])[1] is value and entry[0] == key:  # the usual case: in order
            kept.popleft()
            kept_value, flags = entry[2], entry[3]
        else:
            kept_value, flags = self._pairing.pair(key, value, deleted)
        self.add_write(step, key, kept_value, flags, bool(deleted), path_of(record))

    def add_write(
        self, step: int, key: str, kept_value: Any, flags: int, deleted: bool, writer_path: tuple[str, ...]
    ) -> None:
        """A write (after it) of ``key`` by ``writer_path`` during ``step``, its value as kept."""
        index = len(self.write_cp)
        if index - self.keyframe_at[-1] >= KEYFRAME_EVERY and index - self.keyframe_at[-1] >= len(self._state):
            self.keyframes.append(dict(self._state))  # amortized: at most one entry per write
            self.keyframe_writers.append(dict(self._writers))
            self.keyframe_at.append(index)
        marks = self.marks
        cp = len(marks)
        if 0 <= step != len(self.step_cp) - 1:
            self._owner[cp] = step
        marks.append(_EDIT if flags & _EDIT_FLAG else _WRITE)
        self.write_cp.append(cp)
        key_id = self._key_ids.get(key)
        self.write_key.append(self._key_id(key) if key_id is None else key_id)
        self.write_flags.append(flags)
        self.write_value.append(kept_value)
        writer = self._path_ids.get(writer_path)
        if writer is None:
            writer = self._path_id(writer_path)
        self.write_writer.append(writer)
        self._writers[key] = writer
        if deleted:
            self.deletions.append(index)
            self._state.pop(key, None)
        else:
            self._state[key] = kept_value

    # -- building straight from a recording (recording_index.py): what ingest does, by call --
    def open_step(self, path: tuple[str, ...], header: tuple[Any, ...]) -> int:
        """A node step starts (its prep checkpoint); ``header`` finds it for ``ingest``."""
        step = len(self.step_cp)
        self._by_header[id(header)] = step
        path_id = self._path_ids.get(path)
        self.step_path.append(self._path_id(path) if path_id is None else path_id)
        self.step_cp.append(len(self.marks))
        self.step_prep.append(None)
        self.step_exec.append(None)
        self.step_action.append(0)
        self.marks.append(_PREP)
        return step

    def enter_phase(self, step: int, phase: str) -> None:
        """The checkpoint before ``phase`` (exec, post) of ``step``; prep's is the step's start."""
        mark = _EXEC if phase == "exec" else _POST if phase == "post" else -1
        if mark < 0:
            return
        marks = self.marks
        last = len(marks) - 1
        if marks[last] == mark and self.step_of(last) == step:
            return  # exec again after a failed attempt: the attempt marks it
        if step != len(self.step_cp) - 1:
            self._owner[len(marks)] = step
        marks.append(mark)

    def close_step(self, step: int, header: tuple[Any, ...], action: Any) -> None:
        """``step`` returned ``action`` (its done checkpoint)."""
        self._by_header.pop(id(header), None)
        action_id = self._action_ids.get(action) if type(action) is str else 0
        if action_id is None:
            action_id = self._action_id(action)
        self.step_action[step] = action_id
        if step != len(self.step_cp) - 1:
            self._owner[len(self.marks)] = step
        self.marks.append(_DONE)

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

    def batches_at(self, index: int) -> dict[tuple[str, ...], tuple[int, int]]:
        """Per batch (its template path, iteration markers dropped), how many items had ended
        and how many of them had failed by checkpoint ``index``."""
        if self._items_indexed < len(self.item_batch):
            items = list(self.item_batch.items())[self._items_indexed :]
            paths, details = self.paths, self.details
            for checkpoint, path_id in items:
                path = paths[path_id]
                if any(is_iteration(part) for part in path):
                    path = tuple(part for part in path if not is_iteration(part))
                column = self._items_of.get(path)
                if column is None:
                    column = self._items_of[path] = (array("I"), array("I"))
                failed_before = column[1][-1] if column[1] else 0
                column[0].append(checkpoint)
                column[1].append(failed_before + (0 if details[checkpoint][1] else 1))
            self._items_indexed += len(items)
        out: dict[tuple[str, ...], tuple[int, int]] = {}
        for path, (checkpoints, failed) in self._items_of.items():
            done = bisect_right(checkpoints, index)
            out[path] = (done, failed[done - 1] if done else 0)
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

    def results_known(self, index: int) -> tuple[bool, bool]:
        """Whether the prep result and the exec result of checkpoint ``index``'s step existed
        yet at that moment (before exec: prep's only; before prep: neither)."""
        marks = self.marks
        step = self.step_of(index)
        at = index
        mark = marks[at]
        while mark in (_WRITE, _EDIT):  # a write: as of the phase it was made in
            if at == 0 or index - at >= _WRITES_LOOKED_BACK:
                return True, True
            at -= 1
            mark = marks[at]
            if self.step_of(at) != step:  # after a child's checkpoint: the step's post
                return True, True
        if mark == _FAILED_MARK:
            phase = self.details.get(at, ("post",))[0]
            return phase != "prep", phase == "post"
        if mark == _PREP:
            return False, False
        if mark in (_EXEC, _ATTEMPT_FAILED, _ITEM_MARK):  # exec under way
            return True, False
        return True, True

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
