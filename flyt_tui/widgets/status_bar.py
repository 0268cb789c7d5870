"""The status line: the run state in words, the flow, and what hot reload is doing."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

_STATE_STYLES = {
    "idle": "bold",
    "running": "bold black on yellow",
    "paused": "bold black on dark_orange",
    "stopping": "bold black on dark_orange",
    "stopped": "bold white on red",
    "failed": "bold white on red",
    "done": "bold black on green",
    "loading": "bold",
    "error": "bold white on red",
}


class StatusBar(Static):
    """``● done  etl  │ 12 steps  │ reloaded 12:03:04``, built from plain parts (no markup)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = "idle"
        self.state_text = "idle"
        self.flow_name = ""
        self.flow_where = ""
        self.detail = ""
        self.reload_text = ""
        self.reload_style = "dim"

    def set_state(self, state: str, text: str | None = None, detail: str = "") -> None:
        """``state`` picks the colour; ``text`` is what it says (``paused at fetch (exec)``)."""
        self.state = state
        self.state_text = text or state
        self.detail = detail
        self._render_line()

    def set_flow(self, name: str, where: str = "") -> None:
        self.flow_name = name
        self.flow_where = where
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
        if self.reload_text:
            text.append("  │ ", style="dim")
            text.append(self.reload_text, style=self.reload_style)
        return text

    def _render_line(self) -> None:
        self.update(self._line(), layout=False)  # always one line
