"""Run a flow without the workbench: Rich progress on stderr, the result on stdout.

The observer the engine calls is ``deque.append`` and nothing else; the flow runs on a worker
thread while the main thread wakes at most ten times a second, drains every queued event and
redraws once. So the display costs the run almost nothing and events never pile up.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from flyt_engine import BatchError, Cancelled, Context, Node, NodeError, SharedStore, run
from flyt_engine.events import (
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    Event,
    ExecFailed,
    FallbackUsed,
    NodeFinished,
)

from .core.format import error_line, safe_repr
from .core.history import is_iteration_marker, will_retry

__all__ = ["FlowOutcome", "ProgressDisplay", "run_headless", "to_jsonable"]

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

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.batches: dict[tuple[str, ...], Any] = {}  # path -> task id
        self.started: dict[tuple[str, ...], float] = {}

    def apply(self, events: deque[Event]) -> None:
        """Drain ``events`` completely and update the display once."""
        advances: dict[tuple[str, ...], int] = {}
        popleft = events.popleft
        while True:
            try:
                event = popleft()
            except IndexError:
                break
            kind = type(event)
            if kind is BatchItemFinished:
                advances[event.path] = advances.get(event.path, 0) + 1
            elif kind is NodeFinished:
                self._node_finished(event)
            elif kind is BatchStarted:
                self._flush(advances)
                self._batch_started(event)
            elif kind is BatchFinished:
                self._flush(advances)
                self._batch_finished(event)
            elif kind is ExecFailed:
                self._exec_failed(event)
            elif kind is FallbackUsed:
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
        self.progress.console.print(markup, highlight=False, soft_wrap=True)


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "error"
    return escape(error_line(error))


def run_observed(flow: Node, initial: dict[str, Any], display: ProgressDisplay, *, tick: float = TICK) -> FlowOutcome:
    """Run ``flow`` on a worker thread with a ``deque.append`` observer; the calling thread
    drains the events into ``display`` at most every ``tick`` seconds. Ctrl-C cancels the run."""
    events: deque[Event] = deque()
    ctx, cancel = Context.background().with_observer(events.append).with_cancel()
    store = SharedStore(initial)
    result: dict[str, Any] = {}

    done = threading.Event()  # not Thread.join: a Ctrl-C inside join() can break is_alive()

    def work() -> None:
        try:
            result["action"] = run(flow, store, ctx=ctx)
        except BaseException as exc:
            result["error"] = exc
        finally:
            done.set()

    started = time.monotonic()
    threading.Thread(target=work, name="flyt-headless-run", daemon=True).start()
    try:
        while not done.wait(tick):
            display.apply(events)
    except KeyboardInterrupt:
        cancel()
        try:
            done.wait()
        except KeyboardInterrupt:  # a second Ctrl-C: leave the (daemon) worker behind
            pass
        if not done.is_set():
            result.setdefault("error", Cancelled("interrupted (Ctrl-C)"))
    seconds = time.monotonic() - started
    display.apply(events)
    events.clear()
    cancel()
    return FlowOutcome(result.get("action"), result.get("error"), store, seconds)


def run_headless(
    flow: Node,
    initial: dict[str, Any],
    *,
    as_json: bool = False,
    breakpoints: Sequence[str] = (),
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``flow`` headless and report: exit code 0 on success, 1 when the flow failed."""
    err = Console(file=stderr if stderr is not None else sys.stderr, highlight=False, soft_wrap=True)
    out = stdout if stdout is not None else sys.stdout
    if breakpoints:
        err.print(
            f"[yellow]warning:[/] --break {escape(', '.join(breakpoints))} ignored: "
            "breakpoints apply to the workbench only, not to --headless runs"
        )
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
    display = ProgressDisplay(progress)
    err.print(f"[bold]▶ {escape(flow.name)}[/]")
    with progress:
        outcome = run_observed(flow, initial, display)
    _report(outcome, flow, err)
    if as_json:
        payload = {
            "action": outcome.action,
            "store": to_jsonable(outcome.store.get_all()),
            "error": None if outcome.ok else _error_line(outcome.error),
        }
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        _print_store(outcome.store, out)
    out.flush()
    return 0 if outcome.ok else 1


def _report(outcome: FlowOutcome, flow: Node, err: Console) -> None:
    name = escape(flow.name)
    if outcome.ok:
        err.print(
            f"[green bold]✓ {name}[/] finished with action {escape(repr(outcome.action))} in {outcome.seconds:.2f}s"
        )
        return
    error = outcome.error
    assert error is not None
    err.print(Text(f"✗ {flow.name} failed: {_error_line(error)}", style="red bold"))
    details = _error_details(error)
    if details:
        err.print(Text(details), soft_wrap=True)


def _error_line(error: BaseException | None) -> str:
    if error is None:
        return ""
    if isinstance(error, Cancelled):
        return f"cancelled ({type(error).__name__}{': ' + str(error) if str(error) else ''})"
    return str(error) or type(error).__name__


def _error_details(error: BaseException) -> str:
    """What a user needs to fix the failure: the node, phase and attempts, and the cause's traceback."""
    lines: list[str] = []
    if isinstance(error, NodeError):
        lines.append(f"  node: {error.node_name}   phase: {error.phase}   attempts: {error.attempts}")
        cause = error.__cause__ or error.error
        if cause is not None:
            lines.append("".join(traceback.format_exception(type(cause), cause, cause.__traceback__)).rstrip())
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
    elif not isinstance(error, Cancelled):
        lines.append("".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip())
    return "\n".join(lines)


def _print_store(store: SharedStore, out: IO[str]) -> None:
    data = store.get_all()
    width = max((len(str(key)) for key in data), default=0)
    for key in sorted(data, key=str):
        text = safe_repr(data[key], 200)
        out.write(f"{str(key).ljust(width)} = {text}\n")


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """``value`` with everything JSON cannot hold replaced by its ``repr`` (keys become strings)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > 50:
        return repr(value)
    if isinstance(value, dict):
        return {
            (key if isinstance(key, str) else str(key) if _is_scalar(key) else repr(key)): to_jsonable(item, _depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, _depth + 1) for item in value]
    return repr(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float))
