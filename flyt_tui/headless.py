"""Run a flow without the workbench: Rich progress on stderr, the result on stdout.

The run is the workbench's own ``RunSession`` (records appended to a list, the flow on a
thread of its own); the main thread wakes at most ten times a second, drains the records,
counts them into a bounded ``RunSummary`` and redraws once. Output is a summary by default
(a million steps print a handful of lines); ``-v`` prints a line per node step.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from flyt_engine import BatchError, Cancelled, Node, NodeError, SharedStore
from flyt_engine.events import (
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    Event,
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    PhaseStarted,
    RunFinished,
    StoreChanged,
    field_of,
    kind_of,
    materialize,
)

from .core.breakpoints import BreakOn, Breakpoints, Pause, Why
from .core.format import error_line, safe_repr, traceback_text
from .core.history import is_iteration_marker, will_retry
from .core.jsonable import capped, to_jsonable
from .core.recording import RecordingWriter

if TYPE_CHECKING:
    from .core.otel import SpanBuilder
from .core.session import ABANDON_AFTER, RunSession

__all__ = ["FlowOutcome", "ProgressDisplay", "RunSummary", "run_headless", "to_jsonable"]

TICK = 0.1  # seconds between redraws: at most 10 Hz


class FlowOutcome:
    """How a run ended: ``action`` on success, else ``error``; ``store`` either way."""

    def __init__(self, action: str | None, error: BaseException | None, store: SharedStore, seconds: float) -> None:
        self.action = action
        self.error = error
        self.store = store
        self.seconds = seconds

    @property
    def ok(self) -> bool:
        return self.error is None


class ProgressDisplay:
    """Turns drained events into Rich progress tasks (one per running batch) and log lines."""

    def __init__(self, progress: Progress, *, verbose: bool = False) -> None:
        self.progress = progress
        self.verbose = verbose  # a line per node step and batch; else bars and the summary only
        self.batches: dict[tuple[str, ...], Any] = {}  # path -> task id
        self.started: dict[tuple[str, ...], float] = {}
        self._steps_task: Any = None

    def show_steps(self, steps: int) -> None:
        """The step counter on a terminal (a bar without a total)."""
        if self.progress.disable:
            return
        if self._steps_task is None:
            self._steps_task = self.progress.add_task("steps", total=None)
        self.progress.update(self._steps_task, completed=steps)

    def apply(self, events: deque[Event]) -> None:
        """Drain ``events`` completely and update the display once."""
        advances: dict[tuple[str, ...], int] = {}
        popleft = events.popleft
        while True:
            try:
                event = popleft()
            except IndexError:
                break
            if isinstance(event, BatchItemFinished):
                advances[event.path] = advances.get(event.path, 0) + 1
            elif isinstance(event, NodeFinished):
                self._node_finished(event)
            elif isinstance(event, BatchStarted):
                self._flush(advances)
                self._batch_started(event)
            elif isinstance(event, BatchFinished):
                self._flush(advances)
                self._batch_finished(event)
            elif isinstance(event, ExecFailed):
                self._exec_failed(event)
            elif isinstance(event, FallbackUsed):
                self._print(f"[yellow]⚠[/] {self._where(event.path)}: fallback used after {_describe(event.error)}")
        self._flush(advances)
        self.progress.refresh()

    # -- handlers --------------------------------------------------------------------------
    def _node_finished(self, event: NodeFinished) -> None:
        path = event.path
        if len(path) <= 1 or any(is_iteration_marker(part) for part in path):
            return  # the root is summed up at the end; batch-flow iterations show as a bar
        target = f" → {escape(event.next_node)}" if event.next_node else " → end"
        self._print(f"[green]✓[/] {self._where(path)} [dim]({escape(event.action)}){target}[/]")

    def _batch_started(self, event: BatchStarted) -> None:
        old = self.batches.pop(event.path, None)
        if old is not None:
            self.progress.remove_task(old)
        self.batches[event.path] = self.progress.add_task(self._where(event.path), total=event.total)
        self.started[event.path] = event.time

    def _batch_finished(self, event: BatchFinished) -> None:
        task = self.batches.pop(event.path, None)
        if task is not None:
            self.progress.remove_task(task)
        seconds = event.time - self.started.pop(event.path, event.time)
        failed = f", [red]{event.failed} failed[/]" if event.failed else ""
        self._print(f"[cyan]▣[/] {self._where(event.path)}: {event.done} items{failed} [dim]in {seconds:.2f}s[/]")

    def _exec_failed(self, event: ExecFailed) -> None:
        where = self._where(event.path)
        error = _describe(event.error)
        if will_retry(event.wait, event.attempt, event.max_attempts):
            self._print(
                f"[yellow]↻[/] {where}: attempt {event.attempt}/{event.max_attempts} failed: {error}; "
                f"retrying in {event.wait:g}s"
            )
        else:
            self._print(f"[red]✗[/] {where}: attempt {event.attempt}/{event.max_attempts} failed: {error}")

    def _flush(self, advances: dict[tuple[str, ...], int]) -> None:
        for path, count in advances.items():
            task = self.batches.get(path)
            if task is not None:
                self.progress.advance(task, count)
        advances.clear()

    def _where(self, path: tuple[str, ...]) -> str:
        shown = path[1:] if len(path) > 1 else path
        return escape("/".join(shown))

    def _print(self, markup: str) -> None:
        if self.verbose:
            self.progress.console.print(markup, highlight=False, soft_wrap=True)


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "error"
    return escape(error_line(error))


class RunSummary:
    """What a headless run reports when it ends, bounded whatever the run does: counts of
    steps, retries, fallbacks and failures, and the first and last few failures."""

    KEEP = 3  # failures kept at each end

    def __init__(self) -> None:
        self.steps = 0
        self.retries = 0
        self.fallbacks = 0
        self.failures = 0  # failed attempts that were not retried, failed items, failed nodes
        self.first: list[Event] = []
        self.last: deque[Event] = deque(maxlen=self.KEEP)
        self._last_node_error: BaseException | None = None

    def add(self, records: list[tuple[Any, ...]]) -> Counter[type]:
        """Fold one drained batch of records (C-speed counting; Python only for failures);
        returns how many records of each kind it held."""
        kinds = Counter(map(_KIND, records))
        self.steps += kinds.get(NodeFinished, 0)
        if kinds.get(RunFinished) and any(kind_of(r) is RunFinished and field_of(r, "error") is None for r in records):
            self.steps -= 1  # the root's own NodeFinished is the run ending, not a step
        self.fallbacks += kinds.get(FallbackUsed, 0)
        if not (kinds.get(ExecFailed) or kinds.get(NodeFailed) or kinds.get(BatchItemFinished)):
            return kinds
        for record in records:
            kind = kind_of(record)
            if kind is ExecFailed:
                failed = cast(ExecFailed, materialize(record))
                if will_retry(failed.wait, failed.attempt, failed.max_attempts):
                    self.retries += 1
            elif kind is NodeFailed:
                event = cast(NodeFailed, materialize(record))
                error = event.error
                # one failure, one entry: enclosing flows re-report the same error; a stop is no failure
                if error is self._last_node_error or isinstance(error, (Cancelled, BatchError)):
                    continue
                self._last_node_error = error
                if isinstance(error, NodeError) and error.node_name != event.node:
                    continue
                self._failure(event)
            elif kind is BatchItemFinished and not field_of(record, "ok"):
                self._failure(materialize(record))
        return kinds

    def _failure(self, event: Event) -> None:
        self.failures += 1
        if len(self.first) < self.KEEP:
            self.first.append(event)
        else:
            self.last.append(event)

    def as_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "retries": self.retries, "fallbacks": self.fallbacks, "failures": self.failures}

    def lines(self) -> list[str]:
        """The kept failures, one line each, with a gap line for what was left out."""
        out = [_failure_line(event) for event in self.first]
        skipped = self.failures - len(self.first) - len(self.last)
        if skipped > 0:
            out.append(f"  … {skipped} more failure{'s' if skipped != 1 else ''} …")
        out.extend(_failure_line(event) for event in self.last)
        return out


def _failure_line(event: Event) -> str:
    where = "/".join(event.path[1:]) or event.node
    if isinstance(event, BatchItemFinished):
        return f"  ✗ {where} item #{event.index}: {error_line(event.error, 160)}"
    if isinstance(event, ExecFailed):
        return f"  ✗ {where}: attempt {event.attempt}/{event.max_attempts} failed: {error_line(event.error, 160)}"
    return f"  ✗ {where}: failed in {getattr(event, 'phase', '?')}: {error_line(getattr(event, 'error', None), 160)}"


_KIND = itemgetter(0)  # events.kind_of at C speed: the drain counts millions of records
_SHOWN = (BatchStarted, BatchItemFinished, BatchFinished, ExecFailed, FallbackUsed, NodeFinished)
_BARS = (BatchStarted, BatchItemFinished, BatchFinished)


def run_observed(
    flow: Node,
    initial: dict[str, Any],
    display: ProgressDisplay,
    *,
    verbose: bool = False,
    tick: float = TICK,
    points: Breakpoints | None = None,
    on_pause: Callable[[Event, Pause], None] | None = None,
    record: RecordingWriter | None = None,
    spans: SpanBuilder | None = None,
) -> tuple[FlowOutcome, RunSummary]:
    """Run ``flow`` in a ``RunSession`` (the workbench's own), draining its records into a
    ``RunSummary`` and ``display`` at most every ``tick`` seconds (and into ``record``, the
    bundle's writer, with the values as they were at each write). One Ctrl-C stops the run;
    a flow stuck in code that ignores cancellation is abandoned after ``ABANDON_AFTER``."""
    session = RunSession(flow, initial, breakpoints=points or (), report_only=True, keep_values=record is not None)
    snapshots = session.snapshots
    summary = RunSummary()
    stopped_at: list[Pause] = []

    def paused(event: Event, pause: Pause) -> None:  # on the run thread; the run goes on
        if on_pause is not None:
            on_pause(event, pause)
        if pause.why is Why.ERROR and points is not None and BreakOn.ERROR in points.break_on:
            stopped_at.append(pause)  # --break-on error: nothing after the failing node runs
            session.stop()

    session.on_pause = paused
    wanted = _SHOWN if verbose else _BARS

    def handle(records: list[tuple[Any, ...]]) -> None:
        if record is not None and snapshots is not None:
            record.feed(records, snapshots.take())
        if spans is not None:
            spans.feed(records)
        kinds = summary.add(records)
        if verbose or any(kinds.get(kind) for kind in _BARS):  # most drains have nothing to draw
            display.apply(deque(materialize(r) for r in records if kind_of(r) in wanted))
        display.show_steps(summary.steps)

    started = time.monotonic()
    interrupted = False
    try:
        session.start("run")
        while not session.wait(tick):
            session.pump(handle)
    except KeyboardInterrupt:
        interrupted = True
        session.stop()
        try:
            session.wait(ABANDON_AFTER + 1.0)
        except KeyboardInterrupt:  # a second Ctrl-C: leave the (daemon) run thread behind
            pass
    session.pump(handle)
    seconds = time.monotonic() - started
    if session.finished:
        error = session.error
        if interrupted and isinstance(error, Cancelled):
            error = Cancelled("interrupted (Ctrl-C)")
    else:
        error = Cancelled("interrupted (Ctrl-C); the flow did not respond to cancellation and was abandoned")
    if stopped_at and isinstance(error, Cancelled):
        error = _StoppedAtError(f"stopped at the first error (--break-on error): {stopped_at[0].words}")
    return FlowOutcome(session.action if error is None else None, error, session.store, seconds), summary


def run_headless(
    flow: Node,
    initial: dict[str, Any],
    *,
    as_json: bool = False,
    verbose: bool = False,
    breakpoints: Breakpoints | Sequence[str] = (),
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    record: RecordingWriter | None = None,
    spans: SpanBuilder | None = None,
) -> int:
    """Run ``flow`` headless and report: exit code 0 on success, 1 when the flow failed.

    By default the report is a bounded summary (progress on a terminal, the result, the
    counts, the first and last failures); ``verbose`` adds a line per node step. With
    ``record``, the run is streamed into that bundle (``core/recording.py``)."""
    err = Console(file=stderr if stderr is not None else sys.stderr, highlight=False, soft_wrap=True)
    out = stdout if stdout is not None else sys.stdout
    if isinstance(breakpoints, Breakpoints):
        points: Breakpoints | None = breakpoints
    elif breakpoints:
        points = Breakpoints()
        for text in breakpoints:
            points.add(text)
    else:
        points = None

    def report(event: Event, pause: Pause) -> None:
        err.print(Text(pause_block(event, pause)), soft_wrap=True)

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        auto_refresh=False,
        transient=True,
        disable=not err.is_terminal,  # bars only on a terminal; the log lines go everywhere
    )
    display = ProgressDisplay(progress, verbose=verbose)
    err.print(f"[bold]▶ {escape(flow.name)}[/]")
    with progress:
        outcome, summary = run_observed(
            flow, initial, display, verbose=verbose, points=points, on_pause=report, record=record, spans=spans
        )
    _report(outcome, flow, err, summary)
    if record is not None:
        _close_recording(record, err)
    if spans is not None:
        spans.close()
        err.print(Text(spans.summary(), style="yellow" if spans.dropped or spans.error else "dim"))
    if as_json:
        payload = {
            "action": outcome.action,
            "store": to_jsonable(outcome.store.get_all()),
            "error": None if outcome.ok else _error_line(outcome.error),
        }
        out.write(json.dumps(payload, indent=2, ensure_ascii=True) + "\n")
    else:
        _print_store(outcome.store, out)
    out.flush()
    return 0 if outcome.ok else 1


def _close_recording(record: RecordingWriter, err: Console) -> None:
    if not record.close():
        err.print(
            Text(f"⚠ the recording {record.path} is still being written; it is readable up to here", style="yellow")
        )
    elif record.error is not None:
        err.print(Text(f"⚠ the recording {record.path} stopped: {error_line(record.error, 200)}", style="yellow"))
    else:
        err.print(Text(f"● recorded {record.steps} steps to {record.path}", style="dim"))


class _StoppedAtError(Exception):
    """The run was stopped at its first error (``--break-on error``)."""


def pause_block(event: Event, pause: Pause) -> str:
    """What the workbench would show at a pause, as one block of text (safe, capped):
    where (node path, phase, attempt), and for a watched key the writer, the old and the
    new value; for an error the exception, its user frames and the prep result."""
    where = "/".join(event.path[1:]) or event.node
    lines = [f"⏸ paused: {pause.words}", f"  at      {where}"]
    if isinstance(event, PhaseStarted):
        lines.append(f"  phase   {event.phase}")
    if isinstance(event, ExecFailed):
        lines.append(f"  attempt {event.attempt}/{event.max_attempts}")
    if isinstance(event, StoreChanged):
        lines.append(f"  writer  {where}")
        lines.append(f"  old     {safe_repr(pause.old, 300) if pause.existed else '(not set)'}")
        lines.append(f"  new     {'(deleted)' if event.deleted else safe_repr(event.value, 300)}")
    elif pause.detail:
        lines.append(f"  {pause.detail}")
    error = getattr(event, "error", None)
    if isinstance(error, BaseException) and not isinstance(error, Cancelled):
        cause = error.__cause__ if isinstance(error, NodeError) and error.__cause__ is not None else error
        lines.append("  " + traceback_text(cause, max_chars=3000).replace("\n", "\n  "))
    return "\n".join(lines)


def _report(outcome: FlowOutcome, flow: Node, err: Console, summary: RunSummary) -> None:
    name = escape(flow.name)
    counts = summary.as_dict()
    tally = " · ".join(
        f"{count} {word if count != 1 else word[:-1]}" for word, count in counts.items() if count or word == "steps"
    )
    if outcome.ok:
        err.print(
            f"[green bold]✓ {name}[/] finished with action {escape(safe_repr(outcome.action, 80))} "
            f"in {outcome.seconds:.2f}s [dim]· {tally}[/]"
        )
    else:
        error = outcome.error
        assert error is not None
        err.print(Text(f"✗ {flow.name} failed: {_error_line(error)}", style="red bold"))
        err.print(Text(f"  {tally}", style="dim"))
    if summary.failures:
        err.print(Text("failures:", style="bold"))
        for line in summary.lines():
            err.print(Text(line))
    if not outcome.ok:
        details = _error_details(outcome.error)  # type: ignore[arg-type]
        if details:
            err.print(Text(details), soft_wrap=True)


def _error_line(error: BaseException | None) -> str:
    """The failure in one line (safe for any exception, capped)."""
    if error is None:
        return ""
    if isinstance(error, Cancelled):
        return f"cancelled ({error_line(error, 200)})"
    try:
        text = str(error)
    except BaseException:
        text = f"<unprintable {type(error).__name__}>"
    return capped(text or type(error).__name__, 2000)


def _error_details(error: BaseException) -> str:
    """What a user needs to fix the failure: the node, phase and attempts, and the cause's traceback."""
    lines: list[str] = []
    if isinstance(error, NodeError):
        lines.append(f"  node: {error.node_name}   phase: {error.phase}   attempts: {error.attempts}")
        cause = error.__cause__ or error.error
        if cause is not None:
            lines.append(traceback_text(cause))
    elif isinstance(error, BatchError):
        shown = 0
        for index, item_error in enumerate(error.errors):
            if item_error is None:
                continue
            shown += 1
            if shown > 5:
                lines.append(f"  ... and {sum(e is not None for e in error.errors) - 5} more failed items")
                break
            lines.append(f"  item #{index}: {error_line(item_error)}")
    elif not isinstance(error, (Cancelled, _StoppedAtError)):
        lines.append(traceback_text(error))
    return "\n".join(lines)


def _print_store(store: SharedStore, out: IO[str]) -> None:
    data = store.get_all()
    width = max((len(str(key)) for key in data), default=0)
    for key in sorted(data, key=str):
        text = safe_repr(data[key], 200)
        out.write(f"{str(key).ljust(width)} = {text}\n")
