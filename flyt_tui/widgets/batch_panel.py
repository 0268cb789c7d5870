"""Batch progress: one bar per BatchNode / BatchFlow of the run, kept after it ends.

Bars are keyed by the batch's template path (iteration markers dropped), so a batch
nested inside BatchFlow iterations is one bar summing all its instances.
"""

from __future__ import annotations

from dataclasses import replace

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
        self._label = Label(Text(" / ".join(record.path[1:]) or record.name, no_wrap=True, overflow="ellipsis"))
        self._label.add_class("batch-name")
        self._progress = ProgressBar(total=max(1, record.total), show_eta=False)
        self._stats = Static(classes="batch-stats")
        self.record = record
        self.past = False  # showing a past moment: no rate or time (they are the run's, not the moment's)

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._progress
        yield self._stats

    def on_mount(self) -> None:
        self.show(self.record)

    def show(self, record: BatchRecord) -> None:
        self.record = record
        total = record.total
        self._progress.update(total=total if total > 0 else 1, progress=record.done if total > 0 else 1)
        self.set_class(record.failed > 0, "-failed")
        self.set_class(record.finished, "-finished")
        self.set_class(record.finished and record.done < record.total, "-stopped")
        self._stats.update(self.stats_text(record), layout=False)  # one line, fixed size

    def stats_text(self, record: BatchRecord) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        stopped = record.finished and record.done < record.total
        if record.finished:
            if record.failed:
                text.append("✗ ", style="bold red")
            elif stopped:
                text.append("■ ", style="bold yellow")
            elif record.fallbacks:
                text.append("↩ ", style="bold yellow")
            else:
                text.append("✓ ", style="bold green")
        text.append(f"{record.done}/{record.total}")
        if stopped:
            text.append(f" · stopped, {record.total - record.done} not run", style="yellow")
        if record.failed:
            text.append(f" · {record.failed} failed", style="red")
        if record.fallbacks:
            text.append(f" · {record.fallbacks} fell back", style="yellow")
        if record.instances > 1:
            text.append(f" · {record.instances} runs", style="dim")
        if not self.stable and not self.past:
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
        self._progresss: dict[tuple[str, ...], BatchBar] = {}
        self._empty = Static(Text("no batch has run yet", style="dim"), classes="batch-empty")

    def compose(self) -> ComposeResult:
        yield self._empty

    def reset(self) -> None:
        """Remove every bar (a new run starts clean)."""
        for bar in self._progresss.values():
            bar.remove()
        self._progresss.clear()
        self._empty.display = True

    def apply(self, records: list[BatchRecord], *, past: bool = False) -> None:
        """Create or update the bars of the batches that changed this tick (``past``: as
        they were at a moment of the timeline)."""
        for record in records:
            bar = self._progresss.get(record.path)
            if bar is None:
                bar = self._progresss[record.path] = BatchBar(record, stable=self.stable)
                bar.past = past
                self._empty.display = False
                self.mount(bar)
            else:
                bar.past = past
                bar.show(record)

    def show_moment(self, records: list[BatchRecord], counts: dict[tuple[str, ...], tuple[int, int]]) -> None:
        """The bars as they were at a past checkpoint: ``counts`` gives each batch's items
        ended and failed by then (a batch not started by then shows 0)."""
        shown = []
        for record in records:
            done, failed = counts.get(record.path, (0, 0))
            finished = record.finished and done >= record.done
            fallbacks = record.fallbacks if finished else 0
            shown.append(replace(record, done=done, failed=failed, finished=finished, fallbacks=fallbacks))
        self.apply(shown, past=True)

    @property
    def bars(self) -> list[BatchBar]:
        return list(self._progresss.values())
