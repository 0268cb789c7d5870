"""The status line: the run state in words, the flow, and what hot reload is doing."""

from __future__ import annotations

from enum import StrEnum

from rich.text import Text
from textual.widgets import Static


class ViewState(StrEnum):
    """What the status line says the workbench is doing (its colour follows)."""

    LOADING = "loading"
    ERROR = "error"  # the module could not be loaded
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    DONE = "done"
    VIEWING = "viewing"  # the timeline cursor is on a past moment


_STATE_STYLES = {
    ViewState.IDLE: "bold",
    ViewState.RUNNING: "bold black on yellow",
    ViewState.PAUSED: "bold black on dark_orange",
    ViewState.STOPPING: "bold black on dark_orange",
    ViewState.STOPPED: "bold white on red",
    ViewState.FAILED: "bold white on red",
    ViewState.DONE: "bold black on green",
    ViewState.VIEWING: "bold black on cyan",
    ViewState.LOADING: "bold",
    ViewState.ERROR: "bold white on red",
}


class StatusBar(Static):
    """``● done  etl  │ 12 steps  │ reloaded 12:03:04``, built from plain parts (no markup)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = ViewState.IDLE
        self.state_text = "idle"
        self.flow_name = ""
        self.flow_where = ""
        self.detail = ""
        self.reload_text = ""
        self.reload_style = "dim"
        self.flags = ""  # what may pause the run besides breakpoints ("break on error")

    def set_state(self, state: ViewState | str, text: str | None = None, detail: str = "") -> None:
        """``state`` picks the colour; ``text`` is what it says (``paused at fetch (exec)``)."""
        self.state = ViewState(state)
        self.state_text = text or state
        self.detail = detail
        self._render_line()

    def set_flow(self, name: str, where: str = "") -> None:
        self.flow_name = name
        self.flow_where = where
        self._render_line()

    def set_flags(self, text: str) -> None:
        self.flags = text
        self._render_line()

    def set_reload(self, text: str, style: str = "dim") -> None:
        self.reload_text = text
        self.reload_style = style
        self._render_line()

    @property
    def plain(self) -> str:
        return self._line().plain

    def _line(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.state_text} ", style=_STATE_STYLES.get(self.state, "bold"))
        if self.flow_name:
            text.append("  ")
            text.append(self.flow_name, style="bold")
            if self.flow_where:
                text.append(f"  {self.flow_where}", style="dim")
        if self.detail:
            text.append("  │ ", style="dim")
            text.append(self.detail)
        if self.flags:
            text.append("  │ ", style="dim")
            text.append(self.flags, style="magenta")
        if self.reload_text:
            text.append("  │ ", style="dim")
            text.append(self.reload_text, style=self.reload_style)
        return text

    def _render_line(self) -> None:
        line = self._line()
        width = self.size.width
        if width and line.cell_len > width:  # cut where the pane ends, with "…" (never silently)
            line.truncate(width, overflow="ellipsis")
        self.update(line, layout=False)  # always one line

    def on_resize(self) -> None:
        self._render_line()
