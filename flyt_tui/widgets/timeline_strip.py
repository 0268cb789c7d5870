"""One line under the panes: the run's checkpoints as a bar, where the run is, where the
timeline cursor is, and failures and retries marked (``✗``)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..core.travel import Travel


class TimelineStrip(Static):
    """``timeline ━━━━━✗━━━●━━━━━  step 12/40 · load · exec  [ ] { } home end · R fork``."""

    DEFAULT_CSS = """
    TimelineStrip { height: 1; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.travel: Travel | None = None

    def show(self, travel: Travel | None) -> None:
        self.travel = travel
        self.update(self._line(max(20, self.size.width or 80)), layout=False)

    def on_resize(self) -> None:
        self.show(self.travel)

    @property
    def plain(self) -> str:
        return self._line(max(20, self.size.width or 80)).plain

    def _line(self, width: int) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        travel = self.travel
        if travel is None or not len(travel.timeline):
            text.append(" timeline ", style="bold")
            text.append("(no run yet)", style="dim")
            return text
        timeline = travel.timeline
        count = len(timeline)
        if travel.cursor is None:
            where = f"live · {timeline.steps} steps"
        else:
            where = travel.position_words().removeprefix("viewing ")
            edits = travel.edit_count
            if edits:
                where += f" · {edits} edit{'s' if edits != 1 else ''}"
        title = f" run {travel.run} "
        if travel.origin is not None:
            title += f"({travel.origin}) "
        tail = f"  {where}  "
        bar_width = max(10, width - len(title) - len(tail) - 2)
        cells = ["━"] * bar_width
        for failure in timeline.failures:
            cells[min(bar_width - 1, failure * bar_width // count)] = "✗"
        cursor_cell = bar_width - 1 if travel.cursor is None else min(bar_width - 1, travel.cursor * bar_width // count)
        text.append(title, style="bold")
        for i, cell in enumerate(cells):
            if i == cursor_cell:
                text.append("●", style="bold reverse" if travel.cursor is not None else "bold green")
            elif cell == "✗":
                text.append(cell, style="bold red")
            else:
                text.append(cell, style="dim" if travel.cursor is not None and i > cursor_cell else "")
        text.append(tail, style="bold" if travel.cursor is not None else "dim")
        return text
