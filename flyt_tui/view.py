"""The run as the screen sees it: records folded into a ``RunHistory``, coalesced into one
``Tick`` of changes, handed to the widgets at most ~10 times a second while a run streams
(at once when it pauses or ends). No widget here: the app applies what ``take_due``
returns, so the drain and fold are testable without a terminal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from flyt_engine.events import Event

from .core.history import RunHistory, Tick
from .core.timeline import Timeline

APPLY_SECONDS = 0.1  # how often the folded changes are shown while a run streams
# ... and while the run outpaces the screen (it waits for the UI to drain): a frame costs
# about what folding a few thousand records does, and the run is waiting for both
APPLY_BEHIND_SECONDS = 0.5


class RunView:
    """What the current run changed since the widgets were last updated."""

    def __init__(self, apply_every: float = APPLY_SECONDS) -> None:
        self.apply_every = apply_every
        self.history = RunHistory()
        self.timeline = Timeline()  # every checkpoint of the run (core/timeline.py)
        self.pending: Tick | None = None  # folded changes not shown yet
        self.applied_at = 0.0
        # events for the Events tab, formatted only when it is shown (bounded like the log)
        self.unshown_events: deque[tuple[Event | None, float]] = deque(maxlen=2000)

    def reset(self, *, logs: bool = True, store: Mapping[str, Any] | None = None) -> RunHistory:
        """Start afresh (a new run, or another flow); returns the new history. Without
        ``logs``, changes not shown yet are kept (the log lines they carry stay due).
        ``store`` is the run's initial store (the timeline's first state)."""
        self.history = RunHistory()
        self.timeline = Timeline(dict(store) if store is not None else None)
        if logs:
            self.pending = None
            self.unshown_events.clear()
        return self.history

    def ingest(self, records: list[tuple[Any, ...]], kept: Iterable[tuple[str, Any, Any, int]] = ()) -> None:
        """Fold a drained batch into the history and the timeline now (``kept``: the values
        its writes kept, ``ValueSnapshots.take``); keep what changed for ``take_due``."""
        self.timeline.ingest(records, kept)
        tick = self.history.ingest(records)
        if tick.count:
            if self.pending is None:
                self.pending = tick
            else:
                self.pending.merge(tick)

    def adopt(self, timeline: Timeline, records: list[tuple[Any, ...]], counts: Mapping[tuple[Any, ...], int]) -> None:
        """Take a run indexed elsewhere (a recording, ``core/recording_index.py``): its
        timeline as it is, its history folded from ``records`` and set to ``counts``."""
        self.timeline = timeline
        tick = self.history.ingest(records)
        self.history.adopt_counts(counts)
        tick.nodes.update(self.history.nodes)
        if self.pending is None:
            self.pending = tick
        else:
            self.pending.merge(tick)

    def take_due(self, now: float, *, urgent: bool, behind: bool = False) -> Tick | None:
        """The changes to show now, if it is time (``urgent``: the run paused or ended;
        ``behind``: the run waits for the UI, which shows less often)."""
        pending = self.pending
        every = APPLY_BEHIND_SECONDS if behind else self.apply_every
        if pending is None or not (urgent or now - self.applied_at >= every):
            return None
        self.pending = None
        self.applied_at = now
        if pending.tail:
            t0 = self.history.started if self.history.started is not None else pending.tail[0].time
            if pending.tail_skipped:
                self.unshown_events.append((None, pending.tail_skipped))
            self.unshown_events.extend((event, t0) for event in pending.tail)
        return pending

    def take_events(self) -> list[tuple[Event | None, float]]:
        """The events kept for the Events tab (``None``: that many were skipped)."""
        events = list(self.unshown_events)
        self.unshown_events.clear()
        return events
