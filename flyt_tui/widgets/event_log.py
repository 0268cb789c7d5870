"""The logs below the panes: retries/fallbacks, errors with tracebacks, and every event.

Each log keeps a bounded list of entries (path, text) so it can be filtered by node: an
entry matches when the node name is anywhere on its path (a sub-flow matches its inner
nodes). Entries arrive once per tick and are written with one ``write`` per tick.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual import events
from textual.widgets import RichLog

from flyt_engine.events import (
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    Event,
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    StoreChanged,
)

from ..core.format import error_line, format_duration, safe_repr, traceback_text, user_error
from ..core.history import will_retry

Entry = tuple[tuple[str, ...], Text]


class _SkippedPath(tuple):
    """The (empty) path of a "… N more not shown" marker, so a log can tell markers apart."""

    __slots__ = ()


_SKIPPED_PATH = _SkippedPath()


class EventLog(RichLog):
    """A bounded, node-filterable log; ``add`` writes a tick's entries at once."""

    def __init__(self, *, max_entries: int = 1000, id: str | None = None) -> None:
        # wrap: a long line (a traceback, printed output) wraps at the pane; one-line entries end in …
        super().__init__(id=id, wrap=True, markup=False, highlight=False, max_lines=max_entries * 4)
        self.entries: deque[Entry] = deque(maxlen=max_entries)
        self.node_filter: str | None = None

    def on_print(self, event: events.Print) -> None:
        """Output captured from the flow's ``print`` and ``sys.stderr`` (see ``FlytApp``)."""
        if event.text.strip():
            self.add([output_entry(event.text, event.stderr)])

    def add(self, entries: Iterable[Entry]) -> None:
        """Append entries; the ones passing the filter are written in one go."""
        shown: list[Text] = []
        for entry in entries:
            self.entries.append(entry)
            if self._matches(entry):
                shown.append(entry[1])
        if shown:
            self.write(Text("\n").join(shown))

    @property
    def count(self) -> int:
        """How many real entries the log holds ("… N more not shown" markers left out)."""
        return sum(1 for path, _ in self.entries if path is not _SKIPPED_PATH)

    def reset(self) -> None:
        self.entries.clear()
        self.clear()

    def set_filter(self, name: str | None) -> None:
        """Show only entries whose path contains ``name`` (``None``: everything)."""
        self.node_filter = name or None
        self.clear()
        shown = [entry[1] for entry in self.entries if self._matches(entry)]
        if shown:
            self.write(Text("\n").join(shown))

    def _matches(self, entry: Entry) -> bool:
        return self.node_filter is None or self.node_filter in entry[0]

    def visible_text(self) -> str:
        """What the log shows, as plain text (tests read it)."""
        return "\n".join(entry[1].plain for entry in self.entries if self._matches(entry))


def _where(event: Event) -> str:
    return " / ".join(event.path[1:]) or event.node


def retry_entry(event: Event) -> Entry:
    """``fetch  attempt 1/3 failed  ConnectionError: …  wait 0.5s`` or a fallback line."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(_where(event), style="bold")
    if type(event) is ExecFailed:
        text.append(f"  attempt {event.attempt}/{event.max_attempts} failed  ", style="dark_orange")
        text.append(error_line(event.error, 100), style="red")
        if event.wait > 0:
            text.append(f"  wait {format_duration(event.wait)}", style="dim")
        elif not will_retry(event.wait, event.attempt, event.max_attempts):
            text.append("  no attempts left", style="dim")
    elif type(event) is FallbackUsed:
        text.append("  fallback used after  ", style="magenta")
        text.append(error_line(event.error, 100), style="red")
    return event.path, text


def error_entry(event: Event, base: str | None = None) -> Entry:
    """A failure: node, phase, exception, then the traceback of the user's code."""
    text = Text()
    text.append("✗ ", style="bold red")
    text.append(_where(event), style="bold")
    if type(event) is NodeFailed:
        text.append(f"  failed in {event.phase}\n", style="red")
        error = event.error
        cause = user_error(error) or error
        text.append(error_line(cause, 200) + "\n", style="bold red")
        text.append(_indent(traceback_text(cause, base=base)), style="dim")
    elif type(event) is BatchItemFinished:
        text.append(f"  item #{event.index} failed: ", style="red")
        text.append(error_line(event.error, 160), style="bold red")
    return event.path, text


def message_entry(title: str, details: str = "", path: tuple[str, ...] = ()) -> Entry:
    """A free-form entry (a load error with its traceback)."""
    text = Text(title, style="bold red")
    if details:
        text.append("\n" + _indent(details.rstrip()), style="dim")
    return path, text


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


_SHOW_DETAIL = {
    PhaseStarted: lambda e: e.phase,
    PhaseFinished: lambda e: f"{e.phase} → {safe_repr(e.result, 60)}",
    NodeFinished: lambda e: f"→ {e.action}" + (f" → {e.next_node}" if e.next_node else " (end)"),
    ExecFailed: lambda e: f"attempt {e.attempt}/{e.max_attempts} {error_line(e.error, 60)}",
    FallbackUsed: lambda e: error_line(e.error, 60),
    NodeFailed: lambda e: f"{e.phase}: {error_line(e.error, 60)}",
    BatchStarted: lambda e: f"{e.total} items",
    BatchItemFinished: lambda e: f"#{e.index} " + ("ok" if e.ok else error_line(e.error, 50)),
    BatchFinished: lambda e: f"{e.done} done, {e.failed} failed",
    StoreChanged: lambda e: f"{e.key} {'deleted' if e.deleted else '= ' + safe_repr(e.value, 60)}",
    RunFinished: lambda e: f"action {e.action!r}" if e.error is None else error_line(e.error, 80),
}


def event_entry(event: Event, t0: float, stable: bool = False) -> Entry:
    """One line of the all-events log: time since the run started, kind, node, details."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if not stable:
        text.append(f"{event.time - t0:9.3f}s ", style="dim")
    text.append(f"{event.kind:<20}", style="cyan")
    text.append(" / ".join(event.path) or event.node, style="bold")
    detail = _SHOW_DETAIL.get(type(event))
    if detail is not None:
        try:
            text.append("  " + detail(event))
        except Exception:
            pass
    return event.path, text


def output_entry(text: str, stderr: bool) -> Entry:
    """A line the flow (or a library it uses, such as Dask) printed while the app runs."""
    line = Text("stderr │ " if stderr else "stdout │ ", style="dim")
    line.append(text.rstrip("\n"), style="yellow" if stderr else "")
    return (), line


def skipped_entry(count: int, what: str) -> Entry:
    return _SKIPPED_PATH, Text(f"… {count} more {what} not shown", style="dim italic")
