"""A recording's run read straight into a ``Timeline``, for opening big bundles fast.

Folding a recording record by record (``RunReader`` then ``Timeline.ingest`` and
``RunHistory.ingest``) costs about 9 µs a node step: a million steps take nine seconds.
Here the common step line (phases, results, writes, the action) goes straight into the
timeline's columns, with no record made; only the lines the history shows one by one (a
failed attempt, a fallback, a failure, a batch) and each node's latest step become
records, with the last write of each key, and the counts of every node's runs and actions.
The history folds those once, at the end, and ends up as it would have from every record.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from flyt_engine.events import (
    NodeFailed,
    NodeFinished,
    NodeStarted,
    Record,
    RunFinished,
    RunStarted,
    StoreChanged,
    field_getter,
    is_iteration,
    node_id_of,
    path_of,
)

from .recording_reader import PHASES, RecordingHead, RunReader
from .snapshots import Kept
from .tagged import decode
from .timeline import Timeline

# A line with one of these ops is made into records (the history shows each): a failed
# attempt, a fallback, a failure, a batch. Found in the raw bytes (a value that merely
# looks like one only takes the slower way).
_RARE = re.compile(rb'\["[xbFBiE]",')
_KEY = field_getter(StoreChanged, "key")
_ACTION = field_getter(NodeFinished, "action")


class IndexedRun:
    """What ``RunIndexer`` hands the workbench: the timeline, the records for the history,
    and every node's runs per action (``(path, node_id, action) -> count``, failures under
    the action ``None``)."""

    def __init__(self, timeline: Timeline, records: list[Record], counts: Counter[tuple[Any, ...]]) -> None:
        self.timeline = timeline
        self.records = records
        self.counts = counts


class RunIndexer(RunReader):
    """Reads a bundle's run into a ``Timeline`` without records (see the module docstring)."""

    def __init__(self, head: RecordingHead, node_ids: Mapping[int, int] | None = None) -> None:
        super().__init__(head, node_ids)
        self.timeline = Timeline(head.store)
        self.records: list[Record] = []  # for the history, in the order they happened
        self.counts: Counter[tuple[Any, ...]] = Counter()
        # path -> the lines of its latest step: (line, header, clock and phase before it,
        # whether it started the step, whether it was made into records already)
        self._latest: dict[tuple[str, ...], list[tuple[list[Any], tuple[Any, ...], int, str, bool, bool]]] = {}
        self._writers: dict[str, tuple[Any, ...]] = {}  # key -> the header of its last writer (not in an iteration)
        self._in_iteration: dict[tuple[str, ...], bool] = {}

    def index(self, cancelled: Callable[[], bool] = lambda: False) -> IndexedRun:
        """Read the whole run (``state`` says how far, for progress); stop early if ``cancelled()``."""
        with open(self.head.path, "rb") as stream:
            stream.seek(self.head.offset)
            for chunk in self._chunks(stream):
                if cancelled():
                    break
                self._index_chunk(chunk)
        return self._finish()

    def _index_chunk(self, lines: list[bytes]) -> None:
        state = self.state
        state.lines += len(lines)
        try:
            parsed = json.loads(b"[" + b",".join(lines) + b"]")
            rare = list(map(_RARE.search, lines))
        except ValueError:
            parsed, rare = [], []
            for raw in lines:
                try:
                    parsed.append(json.loads(raw))
                    rare.append(_RARE.search(raw))
                except ValueError:
                    state.garbage += 1
        for data, slow in zip(parsed, rare, strict=True):
            try:
                if type(data) is not list:
                    self._as_records(None, data)
                elif slow or data[0] == -1:
                    self._as_records(data, data)
                else:
                    self._index_line(data)
            except Exception:  # a line this reader does not know: skipped and counted
                state.garbage += 1

    def _as_records(self, line: list[Any] | None, data: Any) -> None:
        """A line the slow way: its records fold into the timeline and go to the history."""
        records: list[Record] = []
        kept: list[Kept] = []
        if line is None:
            self._other_line(data, records)
        else:
            step = line[0]
            clock, phase = self._clock, self._phases.get(step, "prep")
            header, new = self._step_line(line, records, kept)
            if step >= 0:
                self._remember(line, header, clock, phase, new, True)
            self._note_writes(records)
        if self.timeline.run_id is None and not any(record[0] is RunStarted for record in records):
            self.timeline.run_id = self.run_id  # a bundle without its run line
        self.timeline.ingest(records, kept)
        self.records.extend(records)

    def _index_line(self, line: list[Any]) -> None:
        """A common step line straight into the timeline's columns (the hot loop of opening
        a big recording: the common calls are bound to locals, prep's checkpoint is the step's)."""
        step = line[0]
        clock, phase = self._clock, self._phases.get(step, "prep")
        step, header, ops, new = self._line_head(line)
        timeline = self.timeline
        path = header[1]
        if new:
            timeline.open_step(path, header)
            self._latest[path] = [(line, header, clock, phase, True, False)]
        else:
            self._remember(line, header, clock, phase, False, False)
        enter_phase = timeline.enter_phase
        for op in ops:
            if type(op) is int:
                phase = PHASES[op]
                if op:  # exec or post
                    enter_phase(step, phase)
                continue
            code = op[0]
            if code == "f":  # (the timeline keeps no times: the clock is the lines' own)
                result = op[2] if len(op) > 2 else None
                if type(result) is dict or type(result) is list:
                    result = decode(result)
                if phase == "prep":
                    timeline.step_prep[step] = result
                elif phase == "exec":
                    timeline.step_exec[step] = result
                elif phase == "post":
                    self._post_result = result
            elif code == "w" or code == "d":
                key, _value, kept_value, flags, deleted = self._written(op)
                timeline.add_write(step, key, kept_value, flags, deleted, path)
                if not self._iteration(path):
                    self._writers[key] = header
            elif code == "e":
                action = decode(op[2]) if len(op) > 2 else self._post_result
                self._post_result = None
                timeline.close_step(step, header, action)
                self.counts[(path, header[3], action)] += 1
                phase = ""
        if phase or not new:
            self._line_end(step, phase)
        else:  # a whole step on one line: nothing of it to keep
            self._headers.pop(step, None)

    def _iteration(self, path: tuple[str, ...]) -> bool:
        found = self._in_iteration.get(path)
        if found is None:
            found = self._in_iteration[path] = any(is_iteration(part) for part in path)
        return found

    def _remember(
        self, line: list[Any], header: tuple[Any, ...], clock: int, phase: str, new: bool, done: bool
    ) -> None:
        path = header[1]
        if new:
            self._latest[path] = [(line, header, clock, phase, new, done)]
        else:
            lines = self._latest.get(path)
            if lines is not None and lines[0][1] is header:
                lines.append((line, header, clock, phase, new, done))

    def _note_writes(self, records: list[Record]) -> None:
        for record in records:
            kind = record[0]
            if kind is StoreChanged and not self._iteration(path_of(record)):
                self._writers[_KEY(record)] = record[1]
            elif kind is NodeFinished:
                self.counts[(path_of(record), node_id_of(record), _ACTION(record))] += 1
            elif kind is NodeFailed:
                self.counts[(path_of(record), node_id_of(record), None)] += 1

    def _finish(self) -> IndexedRun:
        """The records of each node's latest step (those not made already) and of the last
        write of each key, placed before the run's end."""
        records = self.records
        end = [record for record in records[-2:] if record[0] is RunFinished]
        if end:
            records.remove(end[0])
        latest: list[Record] = []
        for lines in self._latest.values():
            for line, header, clock, phase, new, done in lines:
                if done:
                    continue
                if new:
                    latest.append((NodeStarted, header, (clock + line[1]) / 1e6))
                ops = line[3:] if new else line[2:]
                self._line_ops(line[0], header, ops, latest, [], writes=False, phase=phase, clock=clock + line[1])
        latest.sort(key=lambda record: record[2])
        records.extend(latest)
        t_end = end[0][2] if end else (latest[-1][2] if latest else 0.0)
        for key, value in self.state.store.items():
            writer = self._writers.get(key)
            if writer is not None:
                records.append((StoreChanged, writer, t_end, key, value, False))
        records.extend(end)
        return IndexedRun(self.timeline, records, self.counts)
