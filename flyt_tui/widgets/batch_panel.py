"""Batch progress: one bar per BatchNode / BatchFlow of the run, kept after it ends.

Bars are keyed by the batch's template path (iteration markers dropped), so a batch
nested inside BatchFlow iterations is one bar summing all its instances.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, ProgressBar, Static

from ..core.format import format_duration, format_rate
from ..core.history import BatchRecord


class BatchBar(Horizontal):
    """One batch: name, bar with percentage, and done/total · failed · rate (or the outcome)."""

    def __init__(self, record: BatchRecord, *, stable: bool = False) -> None:
        super().__init__(classes="batch-bar")
        self.path = record.path
        self.stable = stable
        self._name = Label(Text(" / ".join(record.path[1:]) or record.name, no_wrap=True, overflow="ellipsis"))
        self._name.add_class("batch-name")
        self._bar = ProgressBar(total=max(1, record.total), show_eta=False)
        self._stats = Static(classes="batch-stats")
        self.record = record

    def compose(self) -> ComposeResult:
        yield self._name
        yield self._bar
        yield self._stats

    def on_mount(self) -> None:
        self.show(self.record)

    def show(self, record: BatchRecord) -> None:
        self.record = record
        total = record.total
        self._bar.update(total=total if total > 0 else 1, progress=record.done if total > 0 else 1)
        self.set_class(record.failed > 0, "-failed")
        self.set_class(record.finished, "-finished")
        self._stats.update(self.stats_text(record), layout=False)  # one line, fixed size

    def stats_text(self, record: BatchRecord) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if record.finished:
            if record.failed:
                text.append("✗ ", style="bold red")
            else:
                text.append("✓ ", style="bold green")
        text.append(f"{record.done}/{record.total}")
        if record.failed:
            text.append(f" · {record.failed} failed", style="red")
        if record.instances > 1:
            text.append(f" · {record.instances} runs", style="dim")
        if not self.stable:
            if record.finished:
                text.append(f" · {format_duration(record.last - record.first)}", style="dim")
            else:
                text.append(f" · {format_rate(record.rate)}", style="dim")
        return text


class BatchPanel(VerticalScroll):
    """All batch bars of the run; cleared when a new run starts."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stable = False
        self._bars: dict[tuple[str, ...], BatchBar] = {}
        self._empty = Static(Text("no batch has run yet", style="dim"), classes="batch-empty")

    def compose(self) -> ComposeResult:
        yield self._empty

    def reset(self) -> None:
        """Remove every bar (a new run starts clean)."""
        for bar in self._bars.values():
            bar.remove()
        self._bars.clear()
        self._empty.display = True

    def apply(self, records: list[BatchRecord]) -> None:
        """Create or update the bars of the batches that changed this tick."""
        for record in records:
            bar = self._bars.get(record.path)
            if bar is None:
                bar = self._bars[record.path] = BatchBar(record, stable=self.stable)
                self._empty.display = False
                self.mount(bar)
            else:
                bar.show(record)

    @property
    def bars(self) -> list[BatchBar]:
        return list(self._bars.values())
