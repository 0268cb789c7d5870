"""A run's ``Timeline`` as the engine's records again, for "save this run" in the workbench
when the run was not recorded with ``--record``: the same ``RecordingWriter`` then writes
it as a bundle.

The timeline keeps every step, phase, write (its value as it was), failed attempt,
fallback, batch item, action and failure, so that is what the bundle holds; it does not
keep durations or the time of each checkpoint (the bundle says 0), nor a batch's own
start and end (they are made from its items).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from flyt_engine.events import (
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    PhaseFinished,
    PhaseStarted,
    Record,
    RunFinished,
    RunStarted,
    StoreChanged,
)

from .snapshots import Kept, WriteFlag, thaw
from .timeline import Mark, Timeline


def timeline_records(
    timeline: Timeline, root: tuple[str, ...], root_id: int, *, run_id: int = 1, chunk: int = 5000
) -> Iterator[tuple[list[Record], list[Kept]]]:
    """The records (and kept write values) the timeline stands for, in batches of about ``chunk``."""
    root_header = (run_id, root, root[-1] if root else "", root_id)
    records: list[Record] = [(RunStarted, root_header, 0.0)]
    kept: list[Kept] = []
    items = Counter(timeline.step_of(i) for i, mark in enumerate(timeline.marks) if mark == Mark.ITEM)
    failed_items: Counter[int] = Counter()
    headers: dict[int, tuple[Any, ...]] = {}
    batches: set[int] = set()  # steps whose batch started
    write = 0
    error: BaseException | None = None
    for index, code in enumerate(timeline.marks):
        mark = Mark(code)
        step = timeline.step_of(index)
        if mark is Mark.PREP:
            path = timeline.paths[timeline.step_path[step]]
            node_id = root_id if path == root else 0
            header = headers[step] = (run_id, path, path[-1], node_id)
            records.append((NodeStarted, header, 0.0))
            records.append((PhaseStarted, header, 0.0, "prep"))
            continue
        header = headers.get(step) or root_header
        if mark is Mark.EXEC:
            records.append((PhaseFinished, header, 0.0, "prep", timeline.step_prep[step], 0.0))
            records.append((PhaseStarted, header, 0.0, "exec"))
        elif mark is Mark.POST:
            records.append((PhaseFinished, header, 0.0, "exec", timeline.step_exec[step], 0.0))
            records.append((PhaseStarted, header, 0.0, "post"))
        elif mark in (Mark.WRITE, Mark.EDIT):
            key = timeline.keys[timeline.write_key[write]]
            flags = WriteFlag(timeline.write_flags[write])
            value = timeline.write_value[write]
            deleted = bool(flags & WriteFlag.DELETED)
            written = None if deleted else thaw(value)
            writer = header if mark is Mark.WRITE else root_header
            kept.append((key, written, value, int(flags)))
            records.append((StoreChanged, writer, 0.0, key, written, deleted))
            write += 1
        elif mark is Mark.ATTEMPT_FAILED:
            attempt, max_attempts, exc = timeline.details[index]
            records.append((ExecFailed, header, 0.0, attempt, max_attempts, exc, 0.0))
        elif mark is Mark.FALLBACK:
            records.append((FallbackUsed, header, 0.0, timeline.details[index]))
        elif mark is Mark.ITEM:
            item, ok, exc = timeline.details[index]
            if step not in batches:
                batches.add(step)
                records.append((BatchStarted, header, 0.0, items[step]))
            failed_items[step] += 0 if ok else 1
            records.append((BatchItemFinished, header, 0.0, item, ok, exc, 0.0))
        elif mark is Mark.DONE:
            action = timeline.action_of(step) if step >= 0 else None
            if items.get(step):
                records.append((BatchFinished, header, 0.0, items[step], failed_items[step]))
            records.append((PhaseFinished, header, 0.0, "post", action, 0.0))
            records.append((NodeFinished, header, 0.0, action, None))
        elif mark is Mark.FAILED:
            phase, exc = timeline.details[index]
            records.append((NodeFailed, header, 0.0, phase, exc))
            if step == 0:
                error = exc
        if len(records) >= chunk:
            yield records, kept
            records, kept = [], []
    if error is not None or (timeline.steps and timeline.step_action[0]):  # the run ended
        action = None if error is not None else timeline.action_of(0)
        records.append((RunFinished, root_header, 0.0, action, error))
    yield records, kept
