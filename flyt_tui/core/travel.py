"""Where the user is looking in a run's timeline, and what they changed there for a fork.

``cursor`` is ``None`` at the live end (the screen follows the run) or a checkpoint of the
``Timeline``. Edits made while looking at the past are not written anywhere: they are
kept here, shown over the past store, and given to the fork: store values (``edits``) and
the prep or exec result a fork before exec or post starts with (``result_edits``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .timeline import Timeline

DELETED: Any = object()  # an edit that removes the key


class Result(Enum):
    """A phase result a fork can start with (``start_at``'s ``prep_result``/``exec_result``)."""

    PREP = "prep"
    EXEC = "exec"


@dataclass(frozen=True)
class ForkPoint:
    """Where a fork from the cursor starts, with the results it is given."""

    path: tuple[str, ...]
    phase: str  # the phase it starts before: prep, exec or post
    prep_result: Any
    exec_result: Any
    edited: frozenset[Result]  # the results that are the user's, not the run's

    @property
    def results(self) -> tuple[Result, ...]:
        """The results the fork starts with: prep's before exec, both before post."""
        return {"exec": (Result.PREP,), "post": (Result.PREP, Result.EXEC)}.get(self.phase, ())


class Move(Enum):
    """How a timeline key moves the cursor."""

    BACK = "back"  # one checkpoint
    FORWARD = "forward"
    STEP_BACK = "step_back"  # one node step
    STEP_FORWARD = "step_forward"
    FIRST = "first"
    LAST = "last"  # the live end


@dataclass
class Origin:
    """Where a forked run came from: ``forked from run 3 at step 17``."""

    run: int
    step: int  # 1-based, as the status says
    words: str  # ``load · exec``

    def __str__(self) -> str:
        return f"forked from run {self.run} at step {self.step} ({self.words})"


@dataclass
class Travel:
    """The timeline cursor of one run, and the edits waiting for a fork from it."""

    timeline: Timeline
    run: int = 1  # the run's number in this session of the workbench
    origin: Origin | None = None
    cursor: int | None = None
    edits: dict[str, Any] = field(default_factory=dict)
    result_edits: dict[Result, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.cursor is None

    def move(self, how: Move) -> int | None:
        """Move the cursor; returns the new one (``None``: back at the live end)."""
        timeline = self.timeline
        count = len(timeline)
        if not count:
            return None
        last = count - 1
        here = last if self.cursor is None else self.cursor
        if how is Move.BACK:
            target = max(0, here - 1)
        elif how is Move.FORWARD:
            target = here + 1
        elif how is Move.STEP_BACK:
            target = timeline.next_step_start(here, -1)
        elif how is Move.STEP_FORWARD:
            target = timeline.next_step_start(here, 1) if here < last else count
            if target == here:
                target = count
        elif how is Move.FIRST:
            target = 0
        else:
            target = count
        if target != (self.cursor if self.cursor is not None else count):
            self.forget_edits()  # edits belong to the moment they were made at
        self.cursor = None if target >= count else target
        return self.cursor

    def jump(self, index: int) -> None:
        """Put the cursor on checkpoint ``index`` (provenance: "go to this write")."""
        if index != self.cursor:
            self.forget_edits()
        self.cursor = max(0, min(index, len(self.timeline) - 1))

    def forget_edits(self) -> None:
        self.edits.clear()
        self.result_edits.clear()

    @property
    def edit_count(self) -> int:
        """Store edits and result edits waiting for a fork."""
        return len(self.edits) + len(self.result_edits)

    def fork_point(self) -> ForkPoint:
        """Where a fork from the cursor starts (``Timeline.fork_point``), with the results
        the user edited in place of the run's. ``LookupError`` after the run's last phase."""
        assert self.cursor is not None
        path, phase, prep, exec_result = self.timeline.fork_point(self.cursor)
        point = ForkPoint(path, phase, prep, exec_result, frozenset())
        edited = frozenset(self.result_edits).intersection(point.results)
        prep = self.result_edits[Result.PREP] if Result.PREP in edited else prep
        exec_result = self.result_edits[Result.EXEC] if Result.EXEC in edited else exec_result
        return ForkPoint(path, phase, prep, exec_result, edited)

    def store(self) -> dict[str, Any]:
        """The store at the cursor with the user's edits over it."""
        assert self.cursor is not None
        store = self.timeline.store_at(self.cursor)
        for key, value in self.edits.items():
            if value is DELETED:
                store.pop(key, None)
            else:
                store[key] = value
        return store

    def position_words(self) -> str:
        """``viewing step 12/40 (load · exec)``."""
        assert self.cursor is not None
        moment = self.timeline.moment(self.cursor)
        return f"viewing step {moment.step + 1}/{self.timeline.steps} ({moment.words})"
