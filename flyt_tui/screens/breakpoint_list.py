"""The breakpoint list: every breakpoint and watch with its hits; enable, disable, delete."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from ..core.breakpoints import Breakpoints, NodeBreakpoint, Watch
from ..widgets.breakpoint_pane import describe


class BreakpointList(ModalScreen[None]):
    """``space`` enables or disables the highlighted one, ``d`` deletes it, ``escape`` closes."""

    DEFAULT_CSS = """
    BreakpointList { align: center middle; }
    BreakpointList > Vertical { width: 90%; max-width: 110; height: auto; max-height: 80%;
                                border: round $accent; padding: 0 1; background: $panel; }
    """
    BINDINGS = [
        Binding("space", "switch", "Enable/disable", id="breakpoints.toggle"),
        Binding("d", "delete", "Delete", id="breakpoints.delete"),
        Binding("escape", "close", "Close", id="breakpoints.close"),
    ]

    def __init__(self, points: Breakpoints) -> None:
        super().__init__()
        self.points = points

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Breakpoints and watches  (space: on/off · d: delete · esc: close)", style="bold"))
            yield OptionList(id="breakpoint-list")

    def on_mount(self) -> None:
        self._refill()
        self.query_one(OptionList).focus()

    def _refill(self, keep: int | None = None) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        entries = self.points.listing()
        if not entries:
            options.add_option(Option(Text("none set: b, B on a node · w on a store key · e for errors", style="dim")))
            return
        options.add_options(Option(describe(entry), id=str(index)) for index, entry in enumerate(entries))
        options.highlighted = min(keep or 0, len(entries) - 1)

    def _current(self) -> NodeBreakpoint | Watch | None:
        options = self.query_one(OptionList)
        index = options.highlighted
        entries = self.points.listing()
        return entries[index] if index is not None and index < len(entries) else None

    def action_switch(self) -> None:
        entry = self._current()
        if entry is not None:
            self.points.set_enabled(entry, not entry.enabled)
            self._refill(self.query_one(OptionList).highlighted)

    def action_delete(self) -> None:
        entry = self._current()
        if isinstance(entry, NodeBreakpoint):
            self.points.remove(entry.node, entry.phase)
        elif isinstance(entry, Watch):
            self.points.unwatch(entry.key)
        self._refill(self.query_one(OptionList).highlighted)

    def action_close(self) -> None:
        self.dismiss(None)
