"""The Breakpoints tab: every breakpoint and watch with its hits, at a glance.

``space`` turns the highlighted one on or off, ``d`` deletes it; the list changes post
``BreakpointPane.Changed`` so the app redraws the tree marks and the status flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..core.breakpoints import Breakpoints, NodeBreakpoint, Watch

EMPTY = "none set: b, B on a node · w on a store key · e for errors"


class BreakpointPane(OptionList):
    """A live list of ``points`` (the app calls ``refill`` when they or their hits change)."""

    BINDINGS = [
        Binding("space", "switch", "On/off", id="breakpoint_pane.toggle"),
        Binding("d", "delete", "Delete", id="breakpoint_pane.delete"),
    ]

    @dataclass
    class Changed(Message):
        """The user turned a breakpoint on or off, or deleted one, here."""

    def __init__(self, points: Breakpoints | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points = points if points is not None else Breakpoints()
        self._shown: list[Text] | None = None

    def on_mount(self) -> None:
        self.refill()

    def refill(self) -> None:
        """Show the list as it is now (cheap when nothing changed: the lines are compared)."""
        entries = self.points.listing()
        lines = [describe(entry) for entry in entries] or [Text(EMPTY, style="dim")]
        if self._shown is not None and [line.plain for line in lines] == [line.plain for line in self._shown]:
            return
        self._shown = lines
        keep = self.highlighted
        self.clear_options()
        self.add_options(Option(line, id=str(index), disabled=not entries) for index, line in enumerate(lines))
        if entries:
            self.highlighted = min(keep or 0, len(entries) - 1)

    @property
    def count(self) -> int:
        return len(self.points.listing())

    def _current(self) -> NodeBreakpoint | Watch | None:
        entries = self.points.listing()
        index = self.highlighted
        return entries[index] if index is not None and index < len(entries) else None

    def action_switch(self) -> None:
        entry = self._current()
        if entry is not None:
            self.points.set_enabled(entry, not entry.enabled)
            self.refill()
            self.post_message(self.Changed())

    def action_delete(self) -> None:
        entry = self._current()
        if isinstance(entry, NodeBreakpoint):
            self.points.remove(entry.node, entry.phase)
        elif isinstance(entry, Watch):
            self.points.unwatch(entry.key)
        else:
            return
        self.refill()
        self.post_message(self.Changed())


def describe(entry: NodeBreakpoint | Watch) -> Text:
    """One line: what it is, on or off, its hits, orphaned after a reload."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("● " if entry.enabled else "○ ", style="red" if entry.enabled else "dim")
    if isinstance(entry, Watch):
        text.append(f"watch {entry.key}", style="bold")
    else:
        text.append(entry.text, style="bold")
    text.append(f"  {entry.hits} hit{'s' if entry.hits != 1 else ''}", style="dim")
    if isinstance(entry, NodeBreakpoint) and entry.orphaned:
        text.append("  orphaned: the node is gone since the reload", style="yellow")
    if not entry.enabled:
        text.append("  disabled", style="dim italic")
    return text
