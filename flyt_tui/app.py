"""The workbench: a debugger for flows, in the terminal.

Wiring, in one place: the loader runs on a thread worker and posts the module; a run is
a ``RunSession`` whose blocking body runs on a thread worker; the engine's observer is
the session's ``deque.append`` and this app drains it on a 30 Hz timer (paused while no
run is active), folds each batch into a bounded ``RunHistory`` and applies what changed
to the widgets once per tick. The watcher (watchfiles) runs on a thread worker too;
every worker only posts messages.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from rich.text import Text
from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.events import DescendantFocus
from textual.screen import Screen
from textual.widgets import DataTable, Footer, TabbedContent, Tree
from textual.worker import Worker, WorkerState

from flyt_engine import StartAt
from flyt_engine.events import Event, ExecFailed, NodeFailed, NodeFinished, PhaseStarted, StoreChanged

from .commands import workbench_commands
from .core import exit_guard
from .core.breakpoints import BreakOn, BreakpointError, Breakpoints, NodeBreakpoint, Pause, Why
from .core.format import error_line, format_duration, safe_repr, traceback_text, type_name, user_error
from .core.history import NodeKey, RunHistory, Tick, is_iteration_marker, iteration_of, template_path
from .core.loading import FlowEntry, LoadedModule
from .core.recording import RecordingWriter, is_recording
from .core.recording_reader import RecordingHead
from .core.run_outputs import RunOutputs
from .core.session import RunSession
from .core.source import PhaseSource, node_sources
from .core.timeline import MISSING
from .core.travel import DELETED, ForkPoint, Move, Origin, Result, Travel
from .messages import FilesChanged, LoadFailed, ModuleLoaded, RecordingOpened, RunEnded
from .screens.workbench import WorkbenchScreen
from .view import RunView
from .widgets.batch_panel import BatchPanel
from .widgets.breakpoint_pane import BreakpointPane
from .widgets.event_log import (
    EventLog,
    error_entry,
    event_entry,
    message_entry,
    retry_entry,
    skipped_entry,
)
from .widgets.flow_tree import FlowTree, PausePoint
from .widgets.inspector import Inspector
from .widgets.status_bar import StatusBar, ViewState
from .widgets.store_table import HIGHLIGHT_SECONDS, StoreTable
from .widgets.timeline_strip import TimelineStrip

_MISSING = object()  # a store key that is not there
TICK_SECONDS = 1 / 30  # how often the run's records are drained and folded
# Records a run may queue ahead of the screen before it is held back: the UI folds them in
# one drain, so this bounds how long the app stops answering keys while a fast loop streams
# (a few tenths of a second here; at 500,000 it was over a second), and its memory.
UI_BACKLOG_LIMIT = 100_000
INSPECT_EVERY = 0.1  # during a free run, how often the inspector follows the tree cursor
KEEP_RUNS = 8  # earlier runs whose timelines stay inspectable


_WORKER_WORDS = {"watch": "hot reload", "load": "loading", "run": "the run"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


Handler = TypeVar("Handler", bound=Callable[..., None])


def _while_open(handler: Handler) -> Handler:
    """A message handler that does nothing once the app is closing (``FlytApp.closing``):
    a worker's news or a widget's message arriving while the screen is torn down."""

    @functools.wraps(handler)
    def guarded(self: FlytApp, *args: Any) -> None:
        if not self.closing:
            handler(self, *args)

    return cast(Handler, guarded)


class FlytApp(App[None]):
    """Open a flow file, show its graph, run and step it, and reload it on save."""

    CSS_PATH = "app.tcss"
    TITLE = "flyt"
    # Smaller terminals get narrower bars and a shorter log area (see app.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    BINDINGS = [
        Binding("r", "run", "Run", id="flyt.run", tooltip="Run the flow (restart if running)"),
        Binding("n", "step_phase", "Next phase", id="flyt.next_phase", tooltip="Step to the next checkpoint"),
        Binding("N", "step_node", "Next node", id="flyt.next_node", key_display="N"),
        Binding("c", "continue_run", "Continue", id="flyt.continue"),
        Binding("b", "toggle_breakpoint", "Breakpoint", id="flyt.breakpoint"),
        Binding("B", "conditional_breakpoint", "If…", id="flyt.conditional_breakpoint", key_display="B"),
        Binding("w", "watch_key", "Watch", id="flyt.watch"),
        Binding("e", "break_on_errors", "Break on errors", id="flyt.break_on_errors", show=False),
        Binding("t", "run_to_cursor", "Run to cursor", id="flyt.run_to_cursor", show=False),
        Binding("o", "step_out", "Step out", id="flyt.step_out", show=False),
        Binding("colon", "evaluate", "Evaluate", id="flyt.evaluate", key_display=":", show=False),
        Binding("ctrl+e", "edit_source", "Source", id="flyt.edit_source", show=False),
        Binding("l", "next_log", "Next log", id="flyt.next_log", show=False),
        Binding("i", "open_batch_items", "Batch items", id="flyt.batch_items", show=False),
        Binding("R", "fork", "Fork", id="flyt.fork", key_display="R", tooltip="Run again from the timeline cursor"),
        Binding(
            "left_square_bracket", "timeline('back')", "Back", id="flyt.timeline_back", key_display="[", show=False
        ),
        Binding(
            "right_square_bracket",
            "timeline('forward')",
            "Forward",
            id="flyt.timeline_forward",
            key_display="]",
            show=False,
        ),
        Binding(
            "left_curly_bracket",
            "timeline('step_back')",
            "Step back",
            id="flyt.timeline_step_back",
            key_display="{",
            show=False,
        ),
        Binding(
            "right_curly_bracket",
            "timeline('step_forward')",
            "Step forward",
            id="flyt.timeline_step_forward",
            key_display="}",
            show=False,
        ),
        Binding("home", "timeline('first')", "First", id="flyt.timeline_first", show=False, priority=True),
        Binding("end", "timeline('last')", "Live", id="flyt.timeline_last", show=False, priority=True),
        Binding("p", "provenance", "Who wrote it", id="flyt.provenance", show=False),
        Binding("E", "edit_result", "Edit result", id="flyt.edit_result", key_display="E", show=False),
        Binding("x", "stop", "Stop", id="flyt.stop"),
        Binding("f", "filter_logs", "Filter logs", id="flyt.filter", show=False),
        Binding("s", "switch_flow", "Switch flow", id="flyt.switch", show=False),
        Binding("q", "quit", "Quit", id="flyt.quit"),
    ]

    def __init__(
        self,
        path: str | Path,
        *,
        attr: str | None = None,
        flow_name: str | None = None,
        store_file: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
        breakpoints: Sequence[str] = (),
        watches: Sequence[str] = (),
        break_on: Sequence[str] = (),
        watch: bool = True,
        stable_output: bool | None = None,
        record: str | Path | None = None,
        otel: str | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        # A FILE.flyt.jsonl is a recorded run, opened read-only (core/replay.py); ``record``
        # names the bundle each run here is streamed into (core/recording.py).
        self.recording: RecordingHead | None = None
        self.outputs = RunOutputs(Path(record) if record is not None else None, otel)  # --record, --otel
        self._fork_after_load: tuple[Travel, int] | None = None
        self._recording_before_fork: RecordingHead | None = None
        self.load_options: dict[str, Any] = {
            "attr": attr,
            "flow_name": flow_name,
            "store_file": store_file,
            "overrides": overrides,
        }
        # Every way of pausing (core/breakpoints.py); they outlive runs and reloads.
        self.points = Breakpoints()
        for text in breakpoints:
            self.points.add(text)  # BreakpointError: the command line checked them first
        for key in watches:
            self.points.watch(key)
        self.points.set_break_on(break_on)
        self.breakpoints: set[str] = self.points.names  # nodes with a breakpoint before prep (the tree marks them)
        self.watch_files = watch
        self.stable = _env_flag("FLYT_TUI_STABLE") if stable_output is None else stable_output
        self.exit_after_paint = _env_flag("FLYT_TUI_EXIT_AFTER_PAINT")
        self.guard_exit = False  # the flyt-tui command sets it: quitting then ends the process in bounded time
        self.loaded: LoadedModule | None = None  # the last good load
        self.entry: FlowEntry | None = None  # the flow on screen
        self.session: RunSession | None = None  # the current (or last) run
        self.load_error: BaseException | None = None  # the LoadError of the last failed (re)load
        self.reload_pending = False
        self._run_after_load: str | None = None  # a run asked for while a reload was due
        self.loads = 0  # successful loads (tests wait on it)
        self.runs = 0
        self._painted = False
        self._shown_pause: tuple[Any, ...] | None = None
        self._store_lit = False
        self._tick_queued = False
        self._watch_stop: threading.Event | None = None
        self._log_filter: str | None = None
        self._inspected: NodeKey | None = None  # the node the inspector shows
        self._inspector_stale = False  # the tree cursor moved during a free run: refresh on a tick
        self._inspector_shown_at = 0.0
        self._inspected_value: str | None = None  # or the store key it shows
        self._store_view: tuple[str, ...] | None = None  # the BatchFlow iteration whose store is shown
        self.view = RunView()  # the drain and fold, coalesced for the widgets
        self.travel = Travel(self.view.timeline, run=0)  # the timeline cursor of the run on show
        self.past_runs: list[Travel] = []  # earlier runs, still inspectable (newest last)
        self._newest = self.travel  # the travel of the newest run (self.travel may show an earlier one)
        self._live_status: tuple[ViewState, str, str] | None = None  # the status to restore at the live end
        self._source_cache: dict[int, tuple[Any, list[PhaseSource]]] = {}  # id(node) -> (node, its sources)

    # -- layout: the screen owns it ---------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        return WorkbenchScreen()

    @property
    def flow_tree(self) -> FlowTree:
        return self.query_one("#tree", FlowTree)

    @property
    def store_table(self) -> StoreTable:
        return self.query_one("#store", StoreTable)

    @property
    def batch_panel(self) -> BatchPanel:
        return self.query_one("#batches", BatchPanel)

    @property
    def inspector(self) -> Inspector:
        return self.query_one("#inspector", Inspector)

    @property
    def timeline_strip(self) -> TimelineStrip:
        return self.query_one("#timeline", TimelineStrip)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def retry_log(self) -> EventLog:
        return self.query_one("#retry-log", EventLog)

    @property
    def error_log(self) -> EventLog:
        return self.query_one("#error-log", EventLog)

    @property
    def event_log(self) -> EventLog:
        return self.query_one("#event-log", EventLog)

    def on_workbench_screen_ready(self) -> None:
        """The screen's widgets exist: set them up, load the module, start watching."""
        tree = self.flow_tree
        tree.border_title = "Flow"
        tree.stable = self.stable
        tree.history = self.history
        tree.breakpoints = self.breakpoints
        self.store_table.border_title = "SharedStore"
        self.store_table.highlight = not self.stable
        self.batch_panel.border_title = "Batches"
        self.batch_panel.stable = self.stable
        self.inspector.border_title = "Inspector"
        self.inspector.stable = self.stable
        self.status.set_state(ViewState.LOADING, f"loading {self.path.name}")
        self.store_table.mark_watched(set(self.points.watches))
        self.status.set_flags(self._flags())
        self._show_breakpoints()
        self._ticker = self.set_interval(TICK_SECONDS, self._tick, pause=True)
        tree.focus()
        # What the flow prints (and what Dask's worker processes write) goes to the Events log, not the terminal.
        self.begin_capture_print(self.event_log, stdout=True, stderr=True)
        if is_recording(self.path):
            self._open_recording()
            return
        self._load(None)
        if self.watch_files:
            self._watch_stop = threading.Event()
            self._watch(self._watch_directory())

    @property
    def closing(self) -> bool:
        """The app is exiting, or its screen's widgets are already gone (Textual shutting down):
        timers and late messages then do nothing."""
        if self.return_code is not None:
            return True
        try:
            self.query_one("#store")
        except NoMatches:
            return True
        return False

    def on_unmount(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        if self.session is not None:
            self.session.stop()
        self.outputs.close_now()  # what was drained is written (bounded: quitting stays quick)

    # -- workers ---------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Nothing fails silently: a worker that dies says so on screen."""
        worker = event.worker
        if event.state is WorkerState.ERROR:
            what = _WORKER_WORDS.get(worker.group, worker.group or worker.name)
            message = f"{what} stopped: {error_line(worker.error, 100)}"
            self.status.set_reload(message, "bold red")
            self.notify(message, severity="error", timeout=8)
        elif event.state is WorkerState.SUCCESS and worker.group == "watch":
            stop = self._watch_stop
            if stop is not None and not stop.is_set():  # the watcher ended by itself
                self.status.set_reload("hot reload stopped: the file watcher ended", "bold red")

    # -- loading ---------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, previous: LoadedModule | None) -> None:
        """Import the module (fresh on reload) and post the result; never touches widgets."""
        from .core.loading import LoadError, load_module, reload_module

        reloaded = previous is not None or self.loads > 0 or self.load_error is not None
        try:
            loaded = reload_module(previous) if previous is not None else load_module(self.path, **self.load_options)
        except LoadError as exc:
            self.post_message(LoadFailed(exc, reloaded))
        except Exception as exc:  # a loader bug must not take the app down
            self.post_message(LoadFailed(LoadError(error_line(exc), traceback_text(exc), self.path), reloaded))
        else:
            self.post_message(ModuleLoaded(loaded, reloaded))

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _open_recording(self) -> None:
        """Read a bundle's head (its run is read by the ReplaySession); never imports the module."""
        from .core.loading import LoadError
        from .core.recording_reader import RecordingError, read_head

        try:
            self.post_message(RecordingOpened(read_head(self.path)))
        except RecordingError as exc:
            self.post_message(LoadFailed(LoadError(str(exc), "", self.path), False))

    @_while_open
    def on_recording_opened(self, message: RecordingOpened) -> None:
        """Show the recorded flow and play its run into the view, as a live run is shown."""
        from types import ModuleType

        from .core.loading import EntryOrigin
        from .core.replay import ReplaySession

        head = message.head
        session = ReplaySession(head)
        self.recording = head
        entry = FlowEntry(str(head.header.get("entry") or head.flow_name), session.flow, EntryOrigin.FLOW)
        self.loaded = LoadedModule(
            path=self.path,
            module=ModuleType(f"recording of {head.flow_name}"),
            entries=[entry],
            initial_store=head.store,
            user_modules={},
            watch_dir=head.module.parent if head.module is not None else self.path.parent,
        )
        self.loads += 1
        self._open_entry(entry)
        self.flow_tree.border_title = f"Flow · recorded · {self.path.name}"
        self.status.set_flow(head.flow_name, f"{self.path.name} · recorded {head.header.get('recorded', '')}")
        self.session = session
        self.runs += 1
        self._reset_run_view(head.store)
        self.travel = self._newest = Travel(self.view.timeline, run=self.runs)
        self.timeline_strip.show(self.travel)
        self.status.set_state(ViewState.RUNNING, "reading the recording")
        wall = head.header.get("wall")
        self._say_problems(
            self.outputs.start_spans(self.runs, head.flow_name, wall if isinstance(wall, (int, float)) else None)
        )
        if self.exit_after_paint and not self._painted:
            self._painted = True
            self.call_after_refresh(self._report_paint)
        # the run is read once the first screen is drawn: reading competes with drawing
        self.call_after_refresh(lambda: self._start_replay(session))

    def _start_replay(self, session: RunSession) -> None:
        if session is self.session:
            self._ticker.resume()
            self._run(session, None, "run")

    def _refuse_in_recording(self, what: str) -> bool:
        """In a recording, a key that would run something says why it does nothing (True)."""
        if self.recording is None:
            return False
        self.notify(
            f"this is a recording: {what} needs the flow's code; walk it with [ ] {{ }} home end, or fork with R",
            severity="warning",
            timeout=5,
        )
        return True

    @_while_open
    def on_module_loaded(self, message: ModuleLoaded) -> None:
        loaded = message.loaded
        self.loaded = loaded
        self.load_error = None
        self.loads += 1
        entries = loaded.entries
        previous = self.entry.name if self.entry is not None else None
        entry = next((e for e in entries if e.name == previous), None) or entries[0]
        self._open_entry(entry, reloaded=message.reloaded)
        if message.reloaded:
            stamp = "" if self.stable else " " + time.strftime("%H:%M:%S")
            self.status.set_reload(f"reloaded{stamp}", "green")
            mode, self._run_after_load = self._run_after_load, None
            if mode is not None:
                self._start_run(mode)
        elif len(entries) > 1 and not self.exit_after_paint:
            self.action_switch_flow()
        if self._fork_after_load is not None:  # a fork asked for from a recording
            travel, cursor = self._fork_after_load
            self._fork_after_load = None
            self.travel = travel
            travel.cursor = cursor
            self.action_fork()

    @_while_open
    def on_load_failed(self, message: LoadFailed) -> None:
        error = message.error
        if self._fork_after_load is not None:  # the module of a recording did not load: stay on the recording
            self._fork_after_load = None
            self.recording = self._recording_before_fork
            self.notify(f"cannot fork: {error.message}", severity="error", timeout=10)
        self._run_after_load = None
        self.load_error = error
        self.error_log.add([message_entry(error.message, error.details)])
        self._count_tab("tab-errors", "Errors", self.error_log.count)
        if self.entry is not None:  # keep the last good graph
            self.status.set_reload(f"reload failed: {error.message}", "bold red")
            self.inspector.show_message(f"reload failed: {error.message}", error.details)
        else:
            self.flow_tree.show_message(f"⚠ could not load {self.path.name}", [error.message])
            self.inspector.show_message(error.message, error.details)
            self.status.set_state(ViewState.ERROR, "load failed", error.message)
            if self.watch_files:
                self.status.set_reload("watching for a fix…", "dim")
            if self.exit_after_paint and not self._painted:
                self._painted = True
                self.call_after_refresh(self._report_paint)

    def _open_entry(self, entry: FlowEntry, *, reloaded: bool = False, reset_logs: bool = False) -> None:
        """Show ``entry``'s graph and initial store (a new flow, or the same after a reload)."""
        from flyt_engine.graph import describe

        try:
            graph = describe(entry.flow)
        except Exception as exc:
            self.load_error = exc
            self.inspector.show_message(f"cannot draw {entry.name}: {error_line(exc)}", traceback_text(exc))
            self.status.set_reload(f"cannot draw {entry.name}: {error_line(exc, 80)}", "bold red")
            return
        self.entry = entry
        if reloaded and self.session is not None and self.session.finished:
            # The last run's store, logs and status stay on screen until the next run.
            self.flow_tree.show_graph(entry.flow, graph)
            self.points.keep_only(self.flow_tree.node_names)
            self._show_breakpoints()
        else:
            self._reset_run_view(self._initial_store(), graph=(entry.flow, graph), reloaded=reloaded, logs=reset_logs)
            if self.session is None or self.session.finished:
                self.session = None
                self.status.set_state(ViewState.IDLE, "idle")
        self.status.set_flow(entry.flow.name, f"{self.path.name}:{entry.name}")
        self.flow_tree.border_title = f"Flow · {self.path.name}"
        self._fit_tree_width()
        self._refresh_inspector()

    def _fit_tree_width(self) -> None:
        """The graph pane only as wide as its lines need: 40 cells at least, half the screen at most."""
        if self.entry is None:
            return
        wanted = self.flow_tree.wanted_width()
        half = max(40, (self.size.width or 160) // 2)
        self.flow_tree.styles.width = max(40, min(wanted, half))

    def on_resize(self) -> None:
        self._fit_tree_width()
        footer = self.screen.query(Footer)
        if footer:  # below 140 columns the keys sit closer, so that q Quit still shows
            footer.first().compact = self.size.width < 140
        if self.exit_after_paint and not self._painted and not is_recording(self.path):
            self._painted = True  # (a recording reports its first screen once its graph is drawn)
            self.call_after_refresh(self._report_paint)

    def _report_paint(self) -> None:
        os.write(2, f"painted {time.time()}\n".encode())
        self.exit()

    def _initial_store(self) -> Mapping[str, Any]:
        return self.loaded.initial_store if self.loaded is not None else {}

    # -- hot reload ------------------------------------------------------------------------
    def _watch_directory(self) -> Path:
        path = self.path.resolve() if self.path.exists() else self.path.absolute()
        directory = path.parent
        while not directory.exists() and directory != directory.parent:
            directory = directory.parent
        return directory

    @work(thread=True, group="watch", exit_on_error=False)
    def _watch(self, directory: Path) -> None:
        from .core.reload import watch_python_files

        stop = self._watch_stop
        assert stop is not None  # set before the watcher starts
        for paths in watch_python_files(directory, stop):
            self.post_message(FilesChanged(set(paths)))

    @_while_open
    def on_files_changed(self, message: FilesChanged) -> None:
        if not self._is_relevant(message.paths):
            return
        if self._run_active():
            self.reload_pending = True
            self.status.set_reload("change detected — reload applies when the run ends", "yellow")
            return
        self._start_reload()

    def _is_relevant(self, paths: Iterable[Path]) -> bool:
        loaded = self.loaded
        if loaded is None:
            return True  # not loaded yet: any saved .py may be the fix
        watched = {Path(loaded.path).resolve()}
        for module in getattr(loaded, "user_modules", {}).values():
            file = getattr(module, "__file__", None)
            if file:
                watched.add(Path(file).resolve())
        return any(Path(p).resolve() in watched for p in paths)

    def _start_reload(self) -> None:
        self.reload_pending = False
        self.status.set_reload("reloading…", "yellow")
        self._load(self.loaded)

    def action_reload(self) -> None:
        """Reload the module now (or when the run ends)."""
        if self._refuse_in_recording("reloading"):
            return
        if self._run_active():
            self.reload_pending = True
            self.status.set_reload("reload applies when the run ends", "yellow")
        else:
            self._start_reload()

    # -- runs ------------------------------------------------------------------------------
    def _run_active(self) -> bool:
        return self._active_session() is not None

    def _active_session(self) -> RunSession | None:
        """The session of a run that has not ended, else ``None``."""
        session = self.session
        return session if session is not None and not session.finished else None

    def _start_run(
        self,
        mode: str,
        *,
        target: str | None = None,
        start_at: StartAt | None = None,
        store: Mapping[str, Any] | None = None,
        origin: Origin | None = None,
    ) -> None:
        """Start a run (``start_at``, ``store`` and ``origin``: a fork)."""
        if self.entry is None:
            self.notify("no flow loaded", severity="warning")
            return
        if self.load_error is not None:  # the file on disk is broken: say what runs instead
            words = f"{self.path.name} does not load; running the last good version"
            self.notify(f"{words}: {error_line(self.load_error, 100)}", severity="warning", timeout=6)
            self.status.set_reload(words, "bold yellow")
        old = self.session
        if old is not None and not old.finished:
            old.stop()
            if self.reload_pending:  # the file changed during the old run: run the new code
                self.session = None
                self._ticker.pause()
                self.status.set_state(ViewState.STOPPED, "stopped")
                self._run_after_load = mode
                self._start_reload()
                return
        initial = self._initial_store() if store is None else store
        # The run's own copy of the initial store is made on the run thread (it can be big).
        session = RunSession(
            self.entry.flow,
            breakpoints=self.points,
            prepare=lambda: fresh_store(initial),
            keep_values=True,
            start_at=start_at,
            backlog_limit=UI_BACKLOG_LIMIT,
        )
        if self._newest.run:
            self.past_runs = [*self.past_runs[-(KEEP_RUNS - 1) :], self._newest]
        self.session = session
        self.runs += 1
        self._say_problems(
            self.outputs.start(self.runs, session.flow, initial, module=self.path, entry=self.entry.name)
        )
        self._shown_pause = None
        self._reset_run_view(initial)
        self.travel = self._newest = Travel(self.view.timeline, run=self.runs, origin=origin)
        self._live_status = None
        self.timeline_strip.show(self.travel)
        self.status.set_state(ViewState.RUNNING, "running")
        self._ticker.resume()
        self._run(session, old, mode, target)

    def _say_problems(self, problems: list[str]) -> None:
        for problem in problems:
            self.notify(problem, severity="error", timeout=8)

    @work(thread=True, group="record", exit_on_error=False)
    def _finish_outputs(self, writer: RecordingWriter | None, spans: Any) -> None:
        """Finish a run's bundle and spans off the UI thread and say how it went."""
        for words, problem in RunOutputs.finish(writer, spans):
            self.notify(words, severity="warning" if problem else "information", timeout=6 if problem else 4)

    def _reset_run_view(
        self,
        store: Mapping[str, Any],
        *,
        graph: tuple[Any, Any] | None = None,
        reloaded: bool = False,
        logs: bool = True,
    ) -> None:
        """Start the run view afresh: a new ``RunHistory``, the tree relabelled (or redrawn
        from ``graph``, a ``(flow, describe graph)`` pair), the store table showing ``store``,
        no batch bars and, with ``logs``, empty logs."""
        tree = self.flow_tree
        tree.history = self.view.reset(logs=logs, store=store)
        if graph is None:
            tree.set_pause(None)
            tree.relabel_all()
        else:
            tree.show_graph(*graph)  # relabels every line itself
            self.points.keep_only(tree.node_names)  # breakpoints on absent nodes are kept, orphaned
            self._show_breakpoints()
            tree.relabel_all()
        self.store_table.reset(store)
        self.store_table.border_title = "SharedStore"
        self._store_view = None
        self.batch_panel.reset()
        if logs:
            for log in (self.retry_log, self.error_log, self.event_log):
                log.reset()
            self._count_tab("tab-retries", "Retries", 0)
            self._count_tab("tab-errors", "Errors", 0)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _run(self, session: RunSession, previous: RunSession | None, mode: str, target: str | None = None) -> None:
        """The run's worker: wait for the previous run to let go, run, report the end."""
        if previous is not None:
            previous.wait(2.0)
        session.run_blocking(mode, target=target)
        self.post_message(RunEnded(session))

    @_while_open
    def on_run_ended(self, message: RunEnded) -> None:
        session = message.session
        if session is not self.session:
            return  # an old run finishing after a restart
        if self.recording is not None:
            self._adopt_recording(session)
        self._tick()
        self._ticker.pause()
        if self.outputs.active:
            self._finish_outputs(*self.outputs.detach())
        self.flow_tree.set_pause(None)
        self._shown_pause = None
        state = str(getattr(session.state, "value", session.state))
        steps = f"{self.history.steps} step{'s' if self.history.steps != 1 else ''}"
        elapsed = ""
        active = session.active_seconds
        if not self.stable and active is not None and self.recording is None:
            elapsed = f" · {format_duration(active)}"
        if state == "done":
            self.status.set_state(ViewState.DONE, "done", f"action {session.action!r} · {steps}{elapsed}")
        elif state == "failed":
            self.status.set_state(ViewState.FAILED, "failed", error_line(session.error, 120))
            if session.error is not None and not self.error_log.entries:
                base = self.loaded.watch_dir if self.loaded is not None else None
                details = traceback_text(session.error, base=base)
                self.error_log.add([message_entry(error_line(session.error), details)])
            self._count_tab("tab-errors", "Errors", self.error_log.count)
            self.query_one("#logs", TabbedContent).active = "tab-errors"
            failed = self.history.failed_key
            line = self.flow_tree.node_line(failed) if failed is not None else None
            if line is not None:  # show where it failed, as a debugger would
                self.flow_tree.move_cursor(line, animate=False)
        elif state == "stopped":
            self.status.set_state(ViewState.STOPPED, "stopped", f"{steps}{elapsed}")
        else:
            self.status.set_state(state, state)
        if self.recording is not None:
            self._recording_read(session)
        self._refresh_inspector()
        self._keep_viewing()
        self.timeline_strip.show(self.travel)
        if self._store_lit:
            self.set_timer(HIGHLIGHT_SECONDS + 0.05, self._fade_store)
        if self.reload_pending:
            self._start_reload()

    def _show_reading(self, session: RunSession) -> None:
        """While a recording is read: how far, in the status line."""
        from .core.replay import ReplaySession

        if isinstance(session, ReplaySession):
            steps = session.reader.state.steps
            self.status.set_state(
                ViewState.RUNNING, "reading the recording", f"{session.progress:.0%} · {steps:,} steps so far"
            )

    def _adopt_recording(self, session: RunSession) -> None:
        """A recording was read: its timeline and history take the place of the empty ones."""
        from .core.replay import ReplaySession

        indexed = session.indexed if isinstance(session, ReplaySession) else None
        if indexed is None:
            return
        self.view.adopt(indexed.timeline, indexed.records, indexed.counts)
        self.travel.timeline = self.view.timeline
        self.flow_tree.history = self.history

    def _recording_read(self, session: RunSession) -> None:
        """The recording is read: say so, and what could not be read."""
        from .core.replay import ReplaySession

        if not isinstance(session, ReplaySession):
            return
        state = session.reader.state
        notes = []
        if state.garbage:
            notes.append(f"{state.garbage} unreadable line{'s' if state.garbage != 1 else ''} skipped")
        if state.cut:
            notes.append("its last line was cut off")
        steps = f"{state.steps} step{'s' if state.steps != 1 else ''} recorded"
        if not state.ended:
            self.status.set_state(ViewState.STOPPED, "recording ends here", f"the run did not end · {steps}")
        elif state.error is None:
            self.status.set_state(ViewState.DONE, "done (recorded)", f"action {state.action!r} · {steps}")
        else:
            self.status.set_state(ViewState.FAILED, "failed (recorded)", error_line(state.error, 120))
        if notes:
            self.notify(f"{self.path.name}: {'; '.join(notes)}", severity="warning", timeout=8)

    def _fade_store(self) -> None:
        self._store_lit = self.store_table.fade()
        if self._store_lit and not self._run_active():
            self.set_timer(HIGHLIGHT_SECONDS / 2, self._fade_store)

    # -- the drain -------------------------------------------------------------------------
    @property
    def history(self) -> RunHistory:
        """The current run's history (``view.history``)."""
        return self.view.history

    def _queued_tick(self) -> None:
        """The next drain for a run that outpaces the UI (see ``_tick``)."""
        self._tick_queued = False
        self._tick()

    def _tick(self) -> None:
        """Drain the run's records into the view; apply what is due, once."""
        session = self.session
        if session is None or self.closing:
            self._ticker.pause()
            return
        paused_at = session.paused_at  # read before draining: its record is then in the batch
        snapshots = session.snapshots
        outputs = self.outputs
        if outputs.active:  # --record, --otel: the same batch goes to the bundle and the spans

            def ingest_and_send(records: list[tuple[Any, ...]]) -> None:
                kept = snapshots.take() if snapshots is not None else []
                self.view.ingest(records, kept)
                outputs.feed(records, kept)

            session.pump(ingest_and_send)
        elif snapshots is None:
            session.pump(self.view.ingest)
        else:  # the values kept at the writes are taken after the records: each has its own
            session.pump(lambda records: self.view.ingest(records, snapshots.take()))
        behind = session.gate.throttled
        if behind and not self._tick_queued:
            # The run waits for the UI: drain again at once, but by a timer, not a message,
            # so that input and the screen's refresh get their turn in between.
            self._tick_queued = True
            self.set_timer(0.001, self._queued_tick)
        if self.recording is not None and not session.finished:
            self._show_reading(session)
        due = self.view.take_due(time.monotonic(), urgent=paused_at is not None or session.finished, behind=behind)
        if due is not None:
            self._apply(due)
        if paused_at is not None or session.paused_at is None:
            self._show_pause(session, paused_at)
        # else the run paused after this drain: the next tick shows the pause, once the
        # records up to it are folded (the status names an iteration's inputs from them)
        self._keep_viewing()
        if self._inspector_stale and time.monotonic() - self._inspector_shown_at >= INSPECT_EVERY:
            self._refresh_inspector()
        if self._store_lit:
            self._store_lit = self.store_table.fade()

    def _apply(self, tick: Tick) -> None:
        history = self.history
        if tick.nodes:
            self.flow_tree.relabel(tick.nodes)
        self.timeline_strip.show(self.travel)
        if not self.travel.live:
            pass  # the table shows a past moment; the live store comes back with `end`
        elif self._store_view is not None:  # an iteration's store is on show
            if self._store_view in tick.iterations or tick.store:
                self._show_iteration_store(self._store_view)
        elif tick.store:
            self.store_table.apply(tick.store)
            self._store_lit = self._store_lit or self.store_table.highlight
        if tick.batches:
            self.batch_panel.apply([history.batches[path] for path in tick.batches])
        if tick.retries:
            entries = [retry_entry(event) for event in tick.retries]
            if tick.retries_skipped:
                entries.append(skipped_entry(tick.retries_skipped, "retries"))
            self.retry_log.add(entries)
            self._count_tab("tab-retries", "Retries", self.retry_log.count)
        if tick.errors:
            base = str(self.loaded.watch_dir) if self.loaded is not None else None
            entries = [error_entry(event, base) for event in tick.errors]
            if tick.errors_skipped:
                entries.append(skipped_entry(tick.errors_skipped, "errors"))
            self.error_log.add(entries)
            self._count_tab("tab-errors", "Errors", self.error_log.count)
        if tick.tail and self.query_one("#logs", TabbedContent).active == "tab-events":
            self._show_events()
        if self._inspected_value is not None:
            if self._inspected_value in tick.store:
                self._show_store_value()
        elif self._inspected is not None and self._inspected in tick.nodes:
            self._refresh_inspector()

    def _show_events(self) -> None:
        """Write the events kept while the Events tab was hidden (formatting is the cost)."""
        entries = [
            skipped_entry(int(extra), "events") if event is None else event_entry(event, extra, self.stable)
            for event, extra in self.view.take_events()
        ]
        if entries:
            self.event_log.add(entries)

    @on(TabbedContent.TabActivated, "#logs")
    def _on_log_tab(self, message: TabbedContent.TabActivated) -> None:
        if message.pane.id == "tab-events":
            self._show_events()

    def _show_pause(self, session: RunSession, paused_at: Event | None) -> None:
        if paused_at is None and session.paused_at is None:
            if self._shown_pause is not None:
                self._shown_pause = None
                self.flow_tree.set_pause(None)
                self._refresh_inspector()
            if self._store_view is not None:
                self._show_run_store()
            if not session.finished and self.status.state is not ViewState.RUNNING:
                self.status.set_state(ViewState.RUNNING, "running")
            return
        event = paused_at if paused_at is not None else session.paused_at
        if event is None:  # pragma: no cover - the pause ended between the two reads
            return
        marker = (id(event),)
        if self._shown_pause == marker:
            return
        self._shown_pause = marker
        self._show_breakpoints()  # a hit more
        key = self.history.key_of(event)
        node_text, status_text = _pause_words(event)
        self.flow_tree.set_pause(PausePoint(key, node_text))
        iteration = iteration_of(event.path)
        label = _node_label(event) + self._iteration_words(iteration)
        pause = session.pause
        self.status.set_state(ViewState.PAUSED, _status_words(pause, label, status_text))
        if iteration is not None:
            self._show_iteration_store(iteration)
        elif self._store_view is not None:
            self._show_run_store()
        if pause is not None and pause.why in _EXPLAINED:
            self._explain_pause(pause, event)
        else:
            self._refresh_inspector()

    def _explain_pause(self, pause: Pause, event: Event) -> None:
        """What the user needs at a data or error pause: the writer, the old and the new
        value; the failure's traceback (user frames), the prep result and the attempt."""
        lines: list[str] = []
        values: list[tuple[str, Any]] = []
        if isinstance(event, StoreChanged):
            lines.append(f"writer   {'/'.join(event.path[1:]) or event.node}")
            if pause.existed:
                values.append(("old", pause.old))
            else:
                lines.append("old      (not set)")
            if event.deleted:
                lines.append("new      (deleted)")
            else:
                values.append(("new", event.value))
        else:
            if pause.detail:
                lines.append(pause.detail)
            error = getattr(event, "error", None)
            if isinstance(event, ExecFailed):
                lines.append(f"attempt  {event.attempt}/{event.max_attempts}")
            if isinstance(error, BaseException):
                base = self.loaded.watch_dir if self.loaded is not None else None
                lines.append(traceback_text(user_error(error) or error, base=base))
            record = self.history.nodes.get(self.history.key_of(event))
            if record is not None:
                known, prep = record.result_of("prep")
                if known:
                    values.append(("prep", prep))
        self.inspector.show_message(f"paused: {pause.words}", "\n".join(lines), "bold yellow", values=values)

    def _iteration_words(self, iteration: tuple[str, ...] | None) -> str:
        """`` · inputs {…}`` for a pause inside a BatchFlow iteration (the status names them)."""
        if iteration is None:
            return ""
        inputs = self.history.iteration_inputs(iteration)
        if not inputs:
            return ""
        return " · " + ", ".join(f"{key}={safe_repr(value, 24)}" for key, value in list(inputs.items())[:3])

    # -- which store the table shows -------------------------------------------------------
    def _show_iteration_store(self, iteration: tuple[str, ...]) -> None:
        """Paused inside BatchFlow iteration ``#i``: the table shows that iteration's store
        (the run's store when it began, its inputs, its own writes) and says so."""
        session = self.session
        base = session.store.get_all() if session is not None else dict(self._initial_store())
        rows: dict[str, tuple[str, Any, str]] = {
            str(key): (str(key), value, self.history.writers.get(key, "initial")) for key, value in base.items()
        }
        marker = iteration[-1]
        for key, value in (self.history.iteration_inputs(iteration) or {}).items():
            rows[str(key)] = (str(key), value, f"inputs {marker}")
        for key, event in self.history.iteration_writes(iteration).items():
            if event.deleted:
                rows.pop(str(key), None)
            else:
                rows[str(key)] = (str(key), event.value, event.node)
        self._store_view = iteration
        self.store_table.show_rows(list(rows.values()))
        self.store_table.border_title = f"SharedStore · iteration {marker} of {iteration[-2]}"

    def _show_run_store(self) -> None:
        """Back to the run's own store."""
        self._store_view = None
        session = self.session
        values = session.store.get_all() if session is not None else dict(self._initial_store())
        writers = self.history.writers
        self.store_table.show_rows([(str(k), v, writers.get(k, "initial")) for k, v in values.items()])
        self.store_table.border_title = "SharedStore"

    def _count_tab(self, pane_id: str, title: str, count: int) -> None:
        try:
            tab = self.query_one("#logs", TabbedContent).get_tab(pane_id)
        except Exception:
            return
        label = Text(f"{title} ({count})" if count else title)
        if self._log_filter is not None:
            label.append(f" · {self._log_filter}", style="italic")
        tab.label = label

    # -- inspector -------------------------------------------------------------------------
    def _refresh_inspector(self) -> None:
        self._inspector_stale = False
        self._inspector_shown_at = time.monotonic()
        tree = self.flow_tree
        pause = tree.pause
        if self._inspected_value is not None and pause is None:
            self._show_store_value()
            return
        width = self.inspector.size.width or 70
        if pause is not None:
            line = tree.node_line(pause.key)
            item = line.data if line is not None else None
            name = item.name if item is not None else pause.key[0][-1]
            kind = item.graph_kind if item is not None else "node"
            self._inspected = pause.key
            sources = self._phase_sources(pause.key)
            record = self.history.nodes.get(pause.key)
            self.inspector.show_node(name, kind, record, paused=pause.text, width=width, sources=sources)
            return
        item = tree.selected_item()
        if item is None or item.key is None:
            self._inspected = None
            if item is not None and item.kind == "end":
                self.inspector.show_message("■ end of the flow", "the flow ends when this action is returned", "bold")
            return
        self._inspected = item.key
        sources = self._phase_sources(item.key)
        self.inspector.show_node(
            item.name, item.graph_kind, self.history.nodes.get(item.key), width=width, sources=sources
        )

    @on(Inspector.Rendered)
    def _on_inspector_rendered(self) -> None:
        """A slow value finished rendering off the UI thread: show it."""
        if self._inspected_value is not None:
            self._show_store_value()
        else:
            self._refresh_inspector()

    @on(Tree.NodeHighlighted, "#tree")
    def _on_tree_highlight(self) -> None:
        if self.load_error is None or self.entry is not None:
            self._inspected_value = None
            session = self._active_session()
            if session is not None and session.paused_at is None:
                # A free run competes with the UI for the interpreter: the cursor moves at
                # once, the inspector follows on the next tick (at most 1/INSPECT_EVERY a second).
                self._inspector_stale = True
            else:
                self._refresh_inspector()

    @on(DataTable.RowSelected, "#store")
    def _on_store_row_selected(self, message: DataTable.RowSelected) -> None:
        """``enter`` on a store row: edit its value (while paused)."""
        paused = self._active_session() is not None and self.session is not None and self.session.paused_at is not None
        if paused or not self.travel.live:  # paused, or at a past step (an edit for a fork)
            self.action_edit_value()

    @on(DataTable.RowHighlighted, "#store")
    @_while_open
    def _on_store_highlight(self, message: DataTable.RowHighlighted) -> None:
        if self.store_table.has_focus and message.row_key.value is not None:
            self._inspected_value = message.row_key.value
            self._show_store_value()

    @on(DescendantFocus, "#store")
    def _on_store_focus(self) -> None:
        """Focusing the table shows the value under its cursor (no highlight event comes
        when the cursor is already on that row)."""
        key = self.store_table.key_at_cursor()
        if key is not None:
            self._inspected_value = key
            self._show_store_value()

    @on(DescendantFocus, "#tree")
    def _on_tree_focus(self) -> None:
        if self._inspected_value is not None:
            self._inspected_value = None
            self._refresh_inspector()

    def _show_store_value(self) -> None:
        """The inspector shows the store value under the table's cursor (read from the live store)."""
        key = self._inspected_value
        if key is None:
            return
        if not self.travel.live:
            self._show_past_value(key)
            return
        source = self.session.store if self.session is not None else self._initial_store()
        value = source.get(key, _MISSING)
        if value is _MISSING:
            return
        writer = self.store_table.writer_of(key)
        self.inspector.show_value(key, value, writer, width=self.inspector.size.width or 70)

    # -- actions ---------------------------------------------------------------------------
    def action_run(self) -> None:
        """Run the flow from the start (stopping a run in progress)."""
        if self._refuse_in_recording("running"):
            return
        self._start_run("run")

    def action_step_phase(self) -> None:
        """Pause at the next checkpoint (starts a run paused at the first one when idle)."""
        if self._refuse_in_recording("stepping (n)"):
            return
        session = self._active_session()
        if session is not None:
            session.step_phase()
            self._shown_pause = None
        else:
            self._start_run("step")

    def action_step_node(self) -> None:
        """Run to just before the next node's prep (starts a paused run when idle)."""
        if self._refuse_in_recording("stepping (N)"):
            return
        session = self._active_session()
        if session is not None:
            session.step_node()
            self._shown_pause = None
        else:
            self._start_run("node")

    def action_continue_run(self) -> None:
        """Run on until a breakpoint or the end (starts a run when idle)."""
        if self._refuse_in_recording("continuing"):
            return
        session = self._active_session()
        if session is not None:
            session.resume()
            self._shown_pause = None
        else:
            self._start_run("run")

    def action_toggle_breakpoint(self) -> None:
        """Toggle a breakpoint on the node under the cursor (pauses before its prep)."""
        if self._refuse_in_recording("a breakpoint"):
            return
        name = self.flow_tree.selected_node_name()
        if name is None:
            self.notify("select a node to set a breakpoint on", severity="warning")
            return
        self.points.toggle(name)
        self.flow_tree.relabel_names([name])
        self._show_breakpoints()

    def action_conditional_breakpoint(self) -> None:
        """Set a breakpoint with a condition (and a phase) on the node under the cursor."""
        if self._refuse_in_recording("a breakpoint"):
            return
        from .screens.prompt import Prompt

        name = self.flow_tree.selected_node_name()
        if name is None:
            self.notify("select a node to set a breakpoint on", severity="warning")
            return
        existing = next((bp for bp in self.points.nodes.values() if bp.node == name and bp.condition), None)
        self.push_screen(
            Prompt(
                f"Breakpoint on {name}: NODE[:PHASE] if EXPR over shared, prep, attempt, node",
                existing.text if existing is not None else f"{name} if ",
                check=_check_breakpoint,
            ),
            self._set_conditional,
        )

    def _set_conditional(self, text: str | None) -> None:
        if not text:
            return
        bp = self.points.add(text)
        self.flow_tree.relabel_names([bp.node])
        self._show_breakpoints()
        self.notify(f"breakpoint: {bp.text}", timeout=3)

    def action_watch_key(self) -> None:
        """Pause at every write to the store key under the table's cursor (again: stop watching)."""
        if self._refuse_in_recording("a watch (p shows who wrote a key)"):
            return
        key = self.store_table.key_at_cursor()
        if key is None:
            self.notify("move the store table's cursor to a key to watch it", severity="warning")
            return
        if key in self.points.watches:
            self.points.unwatch(key)
            self.notify(f"no longer watching {key}", timeout=2)
        else:
            source = self.session.store if self.session is not None else self._initial_store()
            self.points.watch(key, source.get(key))
            self.notify(f"watching {key}: the run pauses at every write to it", timeout=3)
        self.store_table.mark_watched(set(self.points.watches))
        self.status.set_flags(self._flags())
        self._show_breakpoints()

    def action_break_on_errors(self) -> None:
        """Toggle pausing where a node is about to fail or fall back (its traceback shown)."""
        if self._refuse_in_recording("breaking on errors"):
            return
        kinds = set(self.points.break_on)
        turning_on = BreakOn.ERROR not in kinds
        if turning_on:
            kinds |= {BreakOn.ERROR, BreakOn.FALLBACK}
        else:
            kinds -= {BreakOn.ERROR, BreakOn.FALLBACK}
        self.points.set_break_on(kinds)
        self.notify("break on errors and fallbacks: " + ("on" if turning_on else "off"), timeout=2)
        self.status.set_flags(self._flags())

    def action_run_to_cursor(self) -> None:
        """Run until just before the prep of the node under the tree cursor."""
        if self._refuse_in_recording("running to the cursor"):
            return
        name = self.flow_tree.selected_node_name()
        if name is None:
            self.notify("select the node to run to", severity="warning")
            return
        session = self._active_session()
        if session is not None:
            session.run_to(name)
            self._shown_pause = None
        else:
            self._start_run("cursor", target=name)

    def action_step_out(self) -> None:
        """Run until the flow enclosing the paused node has finished."""
        if self._refuse_in_recording("stepping out"):
            return
        session = self._active_session()
        if session is None or session.paused_at is None:
            self.notify("step out works while the run is paused", severity="warning")
            return
        session.step_out()
        self._shown_pause = None

    def action_open_batch_items(self) -> None:
        """Open the items of the selected batch (else the latest one): input, result or error, tries, time."""
        from .screens.batch_items import BatchItems, BatchItemsView

        batches = self.history.batches
        if not batches:
            self.notify("no batch has run yet: run the flow, then i opens a batch's items", severity="warning")
            return
        item = self.flow_tree.selected_item()
        selected = item.key[0] if item is not None and item.key is not None else None
        batch = batches.get(selected) if selected is not None else None
        if batch is None:
            batch = max(batches.values(), key=lambda record: record.first)
        inputs = results = None
        for key, record in self.history.nodes.items():
            if key[0] == batch.path:
                known, value = record.result_of("prep")
                inputs = value if known and isinstance(value, list | tuple) else None
                known, value = record.result_of("exec")
                results = value if known and isinstance(value, list | tuple) else None
                break
        base = str(self.loaded.watch_dir) if self.loaded is not None else None
        self.push_screen(BatchItems(BatchItemsView(batch, inputs, results, base)))

    def action_list_breakpoints(self) -> None:
        """See, disable and delete breakpoints and watches."""
        from .screens.breakpoint_list import BreakpointList

        self.push_screen(BreakpointList(self.points), lambda _: self._breakpoints_changed())

    def _breakpoints_changed(self) -> None:
        self.flow_tree.relabel_all()
        self.store_table.mark_watched(set(self.points.watches))
        self.status.set_flags(self._flags())
        self._show_breakpoints()

    @on(BreakpointPane.Changed)
    def _on_breakpoint_pane_changed(self) -> None:
        self._breakpoints_changed()

    def _show_breakpoints(self) -> None:
        """The Breakpoints tab: the list and its hits as they are now."""
        pane = self.query_one("#breakpoint-pane", BreakpointPane)
        pane.points = self.points
        pane.refill()
        self._count_tab("tab-breakpoints", "Breakpoints", pane.count)

    def _flags(self) -> str:
        """What may pause the run besides breakpoints, for the status line."""
        flags = [f"break on {kind}" for kind in sorted(self.points.break_on)]
        if self.points.watches:
            flags.append("watching " + ", ".join(sorted(self.points.watches)))
        return " · ".join(flags)

    # -- source, evaluate, edit -------------------------------------------------------------
    def _phase_sources(self, key: NodeKey | None) -> list[PhaseSource]:
        """Where the node's phases are written (read once per node object: inspect reads files)."""
        node = self.flow_tree.node_object(key)
        if node is None or self.recording is not None:  # a recording has no code: its nodes are stand-ins
            return []
        cached = self._source_cache.get(id(node))
        if cached is None or cached[0] is not node:
            if len(self._source_cache) > 4096:
                self._source_cache.clear()
            cached = self._source_cache[id(node)] = (node, node_sources(node))
        return cached[1]

    def action_edit_source(self) -> None:
        """Open the selected (or paused) node's phase in ``$EDITOR`` at its line; saving reloads."""
        if self._refuse_in_recording("opening a node's source"):
            return
        pause = self.flow_tree.pause
        key = pause.key if pause is not None else (item.key if (item := self.flow_tree.selected_item()) else None)
        sources = self._phase_sources(key)
        if not sources:
            self.notify("no source for this node (select a node whose phases you wrote)", severity="warning")
            return
        phase = (
            self.session.paused_at.phase if self.session and isinstance(self.session.paused_at, PhaseStarted) else None
        )
        source = next((src for src in sources if src.phase == phase), sources[0])
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            self.notify(
                f"set $EDITOR to open sources here; {source.phase} is at {source.file}:{source.line}", timeout=8
            )
            return
        import shlex
        import subprocess

        command = [*shlex.split(editor), f"+{source.line}", source.file]
        try:
            with self.suspend():
                subprocess.run(command, check=False)
        except Exception as exc:  # no terminal to hand over (a test), or the editor is missing
            self.notify(f"could not open {editor}: {error_line(exc, 100)}", severity="error")

    def action_evaluate(self) -> None:
        """Evaluate an expression over shared, prep, exec_result and node while paused."""
        if self._refuse_in_recording("evaluating"):
            return
        from .screens.prompt import Prompt

        session = self._active_session()
        if session is None or session.paused_at is None:
            self.notify("evaluate works while the run is paused (n, b, w or e pause it)", severity="warning")
            return
        self.push_screen(Prompt("Evaluate: an expression over shared, prep, exec_result, node", ""), self._evaluate)

    def _evaluate(self, text: str | None) -> None:
        session = self._active_session()
        if not text or session is None or session.paused_at is None:
            return
        event = session.paused_at
        record = self.history.nodes.get(self.history.key_of(event))
        names: dict[str, Any] = {"shared": session.store, "node": event.node, "prep": None, "exec_result": None}
        if record is not None:
            names["prep"] = record.result_of("prep")[1]
            names["exec_result"] = record.result_of("exec")[1]
        try:
            value = eval(compile(text, "<evaluate>", "eval"), {"__builtins__": __builtins__}, names)
        except BaseException as exc:  # shown, never fatal
            self.inspector.show_message(f"{text}  raised", error_line(exc, 400), "bold red")
            return
        self.inspector.show_message(f"{text}  →  {type_name(value)}", "", "bold cyan", values=[("value", value)])

    def action_edit_value(self) -> None:
        """Edit the store value under the table's cursor as JSON (while paused)."""
        from .screens.value_editor import ValueEditor

        session = self._active_session()
        key = self.store_table.key_at_cursor()
        if self.travel.live and self._refuse_in_recording("editing a value (at a past step, enter edits for a fork)"):
            return
        if not self.travel.live:  # the past: the edit is kept for a fork from this moment
            store = self.travel.store()
            if key is None or key not in store:
                self.notify("move the store table's cursor to a key", severity="warning")
                return
            self.push_screen(
                ValueEditor(key, store[key], writes="keeps it for a fork from here"),
                lambda result: self._write_edit(key, result),
            )
            return
        if session is None or session.paused_at is None:
            self.notify(
                "values can be edited while the run is paused, or at a past step for a fork", severity="warning"
            )
            return
        if key is None or key not in session.store:
            self.notify("move the store table's cursor to a key", severity="warning")
            return
        self.push_screen(ValueEditor(key, session.store[key]), lambda result: self._write_edit(key, result))

    def action_add_key(self) -> None:
        """Add a store key while paused: ``KEY = JSON``."""
        if self._refuse_in_recording("adding a key to a running store"):
            return
        from .screens.prompt import Prompt

        session = self._active_session()
        if self.travel.live and (session is None or session.paused_at is None):
            self.notify("keys can be added while the run is paused, or at a past step for a fork", severity="warning")
            return
        self.push_screen(Prompt("Add a store key: KEY = JSON", "", check=_check_assignment), self._add_key)

    def _add_key(self, text: str | None) -> None:
        if text:
            key, _, value = text.partition("=")
            self._write_edit(key.strip(), (json.loads(value),))

    def action_delete_key(self) -> None:
        """Delete the store key under the table's cursor (while paused)."""
        if self._refuse_in_recording("deleting a key of a running store"):
            return
        session = self._active_session()
        key = self.store_table.key_at_cursor()
        if not self.travel.live and key is not None:
            self._write_edit(key, None, delete=True)
            return
        if session is None or session.paused_at is None or key is None:
            self.notify("keys can be deleted while the run is paused (cursor on the key)", severity="warning")
            return
        self._write_edit(key, None, delete=True)

    def _write_edit(self, key: str, result: tuple[Any] | None, *, delete: bool = False) -> None:
        """Write a user edit through the store while the run is held; the logs show it."""
        if result is None and not delete:
            return
        value = None if delete else result[0]  # type: ignore[index]
        if not self.travel.live:
            self.travel.edits[key] = DELETED if delete else value
            self._show_moment()
            self.timeline_strip.show(self.travel)
            return
        session = self._active_session()
        if session is None:
            return
        session.edit(key, value, delete=delete)
        words = f"you deleted {key}" if delete else f"you set {key} = {safe_repr(value, 80)}"
        self.event_log.add([message_entry(f"edit: {words}")])
        self.retry_log.add([message_entry(f"edit: {words}")])
        self._tick()

    def show_log(self, pane_id: str) -> None:
        """Switch the log area to one tab (``tab-retries``, ``tab-errors``, ``tab-events``, ``tab-breakpoints``)."""
        self.query_one("#logs", TabbedContent).active = pane_id

    def action_next_log(self) -> None:
        """The next log tab (``l``)."""
        tabs = ["tab-retries", "tab-errors", "tab-events", "tab-breakpoints"]
        current = self.query_one("#logs", TabbedContent).active
        self.show_log(tabs[(tabs.index(current) + 1) % len(tabs)] if current in tabs else tabs[0])

    # -- time travel (core/timeline.py, core/travel.py) ------------------------------------
    def action_timeline(self, how: str) -> None:
        """``[``/``]`` one checkpoint, ``{``/``}`` one node step, ``home``/``end``."""
        travel = self.travel
        if not len(travel.timeline):
            if self.recording is not None and self._run_active():
                self.notify("the recording is still being read: its timeline comes when it is done", severity="warning")
            else:
                self.notify("no run yet: the timeline fills as a run goes (r)", severity="warning")
            return
        was_live = travel.live
        travel.move(Move(how))
        if travel.live:
            self._show_live()
        else:
            if was_live and self._live_status is None:
                self._live_status = (self.status.state, self.status.state_text, self.status.detail)
            self._show_moment()
        self.timeline_strip.show(travel)

    def _keep_viewing(self) -> None:
        """While the cursor is on a past moment, the run's news goes to the status kept for
        the live end, and the screen stays on the moment."""
        if self.travel.live or self.status.state is ViewState.VIEWING:
            return
        self._live_status = (self.status.state, self.status.state_text, self.status.detail)
        self._show_moment()

    def _show_moment(self) -> None:
        """The store table, status and inspector show the timeline cursor's moment."""
        travel = self.travel
        assert travel.cursor is not None
        timeline = travel.timeline
        moment = timeline.moment(travel.cursor)
        store = travel.store()
        cursor = travel.cursor
        changed = timeline.changed_at(cursor)

        def rows() -> list[tuple[str, Any, str]]:
            writers = timeline.writer_at(cursor)
            out = []
            for key, value in store.items():
                writer = "/".join(writers[key][1:]) or writers[key][-1] if key in writers else "initial"
                if key in travel.edits:
                    writer = "✎ your edit"
                out.append((str(key), value, writer))
            return out

        self._store_view = None
        table = self.store_table
        # the store at a checkpoint is the writes made by then: the same count, the same rows
        same_store = None if travel.edits else (travel.run, id(travel), timeline.writes_until(cursor))
        table.show_moment(same_store, rows, {str(key) for key in changed if key in store})
        run = f"run {travel.run} · " if travel is not self._newest else ""
        table.border_title = f"SharedStore · {run}{travel.position_words()}"
        edits = f" · {travel.edit_count} edited (R forks with them)" if travel.edit_count else ""
        table.border_subtitle = f"changed: {', '.join(changed)}{edits}" if changed else edits.removeprefix(" · ")
        self.status.set_state(
            ViewState.VIEWING, travel.position_words(), "[ ] { } home end · R fork · E edit result · p who wrote it"
        )
        here = self.flow_tree.key_for_path(template_path(moment.path)[0]) if moment.path else None
        self.flow_tree.set_pause(PausePoint(here, "◆ here") if here is not None else None)
        if travel is not self._newest:  # an earlier run: its bars are not kept
            self.batch_panel.reset()
        elif self.history.batches:  # the bars as they were at that moment
            self.batch_panel.show_moment(list(self.history.batches.values()), timeline.batches_at(travel.cursor))
        self._show_moment_inspector(moment, changed, store)

    def _show_moment_inspector(self, moment: Any, changed: dict[str, Any], store: dict[str, Any]) -> None:
        timeline = self.travel.timeline
        facts: dict[str, Any] = {"node": "/".join(moment.path) or "(the run)", "checkpoint": moment.words}
        if moment.step >= 0:  # the results that existed at that moment, or the ones you gave the fork
            edits = self.travel.result_edits
            known = dict(zip((Result.PREP, Result.EXEC), timeline.results_known(moment.index), strict=True))
            recorded = {Result.PREP: timeline.step_prep[moment.step], Result.EXEC: timeline.step_exec[moment.step]}
            for result in Result:
                if result in edits:
                    facts[f"{result.value} result (your edit, for the fork)"] = edits[result]
                elif known[result]:
                    facts[f"{result.value} result"] = recorded[result]
        if isinstance(moment.detail, tuple) and len(moment.detail) == 3 and isinstance(moment.detail[2], BaseException):
            facts["error"] = error_line(moment.detail[2], 200)
        if changed:
            facts["changed"] = {
                key: {"was": "(absent)" if old is MISSING else old, "now": store.get(key, "(deleted)")}
                for key, old in changed.items()
            }
        self._inspected_value = None
        self.inspector.show_value(f"step {moment.step + 1}", facts, None, width=self.inspector.size.width or 70)

    def _show_live(self) -> None:
        """Back at the live end: the run's own store and status again."""
        if self.travel is not self._newest:  # was looking at an earlier run
            self.travel.cursor = None
            self.travel = self._newest
        self._show_run_store()
        self.store_table.border_subtitle = ""
        if self.history.batches:  # the bars of the run again
            self.batch_panel.apply(list(self.history.batches.values()))
        self.flow_tree.set_pause(None)
        self._shown_pause = None
        if self.session is not None:
            self._show_pause(self.session, None)  # the run's own pause again, if it is paused
        if self._live_status is not None:
            self.status.set_state(*self._live_status)
            self._live_status = None
        self._refresh_inspector()

    def action_previous_run(self) -> None:
        """Look at the run before the one on show (its timeline, from its end)."""
        runs = [*self.past_runs, self._newest]
        index = next((i for i, t in enumerate(runs) if t is self.travel), len(runs) - 1)
        if index == 0:
            self.notify("no earlier run is kept", severity="warning")
            return
        if self.travel.live:
            self._live_status = (self.status.state, self.status.state_text, self.status.detail)
        self.travel.cursor = None
        self.travel = runs[index - 1]
        self.travel.cursor = max(0, len(self.travel.timeline) - 1)
        self._show_moment()
        self.timeline_strip.show(self.travel)

    def action_provenance(self) -> None:
        """Who wrote the store value under the cursor: the write it came from, then the one
        before it on each press (the timeline cursor jumps there)."""
        key = self.store_table.key_at_cursor()
        if key is None:
            self.notify("move the store table's cursor to a key", severity="warning")
            return
        travel = self.travel
        writes = travel.timeline.provenance(key)
        if not writes:
            self.notify(f"{key} was never written in this run (it is from the initial store)")
            return
        here = len(travel.timeline) if travel.cursor is None else travel.cursor
        earlier = [write for write in writes if write.checkpoint < here] or writes[:1]
        if travel.live and self._live_status is None:
            self._live_status = (self.status.state, self.status.state_text, self.status.detail)
        travel.jump(earlier[-1].checkpoint)
        self._show_moment()
        self.timeline_strip.show(travel)
        self._inspected_value = key
        self._show_store_value()

    def _show_past_value(self, key: str) -> None:
        """The value of ``key`` at the timeline cursor, and every write of it (provenance)."""
        travel = self.travel
        store = travel.store()
        if key not in store:
            return
        writes = travel.timeline.provenance(key)
        here = len(travel.timeline) if travel.cursor is None else travel.cursor
        shown: dict[str, Any] = {"at this step": store[key]}
        if writes:
            shown[f"{len(writes)} write{'s' if len(writes) != 1 else ''} (p: go to the one that made it)"] = {
                f"{'▶ ' if write.checkpoint <= here else ''}step {write.step + 1} · "
                f"{'/'.join(write.writer[1:]) or write.writer[-1]}": write.value
                for write in writes[-20:]
            }
        else:
            shown["written"] = "never in this run (the initial store)"
        writer = self.store_table.writer_of(key)
        self.inspector.show_value(key, shown, writer, width=self.inspector.size.width or 70)

    def action_fork(self) -> None:
        """Run again from the timeline cursor: the store as it was there plus your edits,
        the recorded prep or exec result where the fork skips them, the code as it is now."""
        travel = self.travel
        if self.recording is not None:
            self._offer_fork_from_recording()
            return
        if self.entry is None:
            self.notify("no flow loaded", severity="warning")
            return
        point = self._fork_point("move the timeline cursor to where the fork starts ([ { home), then R")
        if point is None:
            return
        path, phase = point.path, point.phase
        missing = _missing_from(self.entry.flow, path)
        if missing is not None:
            self.notify(f"cannot fork: {missing}", severity="error", timeout=8)
            return
        store = travel.store()
        assert travel.cursor is not None  # _fork_point found a place
        moment = travel.timeline.moment(travel.cursor)
        origin = Origin(travel.run, moment.step + 1, moment.words)
        self._start_run(
            "run",
            start_at=StartAt(path, phase, prep_result=point.prep_result, exec_result=point.exec_result),
            store=store,
            origin=origin,
        )
        given = "".join(f" · your {result.value} result" for result in point.results if result in point.edited)
        self.notify(f"run {self.runs}: {origin} · {'/'.join(path[1:]) or path[0]} · {phase}{given}")

    def _offer_fork_from_recording(self) -> None:
        """A fork needs the code: offer to open the recorded module (imported, so asked first)."""
        from .screens.prompt import Prompt

        head, travel = self.recording, self.travel
        assert head is not None
        cursor = travel.cursor
        if cursor is None:
            self.notify("move the timeline cursor to where the fork starts ([ { home), then R", severity="warning")
            return
        try:
            travel.timeline.fork_point(cursor)
        except LookupError as exc:
            self.notify(str(exc), severity="warning")
            return
        module = head.module
        if module is None or not module.is_file():
            self.notify(
                f"cannot fork: the recorded module ({module or 'unknown'}) is not on this machine, and a fork runs its code",
                severity="error",
                timeout=8,
            )
            return
        moment = travel.timeline.moment(cursor)
        question = (
            f"A fork runs the flow's code: open {module} (it is imported) and fork from step {moment.step + 1} "
            f"({moment.words})? enter: yes · escape: no"
        )
        self.push_screen(
            Prompt(question, "yes"),
            lambda answer: self._fork_from_recording(module, travel, cursor) if _yes(answer) else None,
        )

    def _fork_from_recording(self, module: Path, travel: Travel, cursor: int) -> None:
        """Load the recorded module in place of the recording, then fork (``on_module_loaded``)."""
        head = self.recording
        assert head is not None
        self._fork_after_load = (travel, cursor)
        self._recording_before_fork = head
        self.recording = None
        self.path = module
        self.load_options["attr"] = head.header.get("entry") or None
        self.status.set_reload(f"opening {module.name} to fork", "yellow")
        self._load(None)

    def _fork_point(self, where: str) -> ForkPoint | None:
        """Where a fork from the timeline cursor starts; ``None`` (and the reason shown, or
        ``where`` to put the cursor) when there is no such place."""
        if self.travel.cursor is None:
            self.notify(where, severity="warning")
            return None
        try:
            return self.travel.fork_point()
        except LookupError as exc:
            self.notify(str(exc), severity="warning")
            return None

    def action_edit_result(self, which: str = "") -> None:
        """At a past checkpoint, edit (as JSON) the prep or exec result a fork from there starts
        with: before exec the prep result, before post the exec result (or ``which``)."""
        from .screens.value_editor import ValueEditor

        travel = self.travel
        point = self._fork_point("move the timeline cursor to a node's exec or post checkpoint ([ ] { }), then E")
        if point is None:
            return
        node = "/".join(point.path[1:]) or point.path[-1]
        if not point.results:
            self.notify(
                f"a fork from here runs {node}'s prep again: no result to give it (] moves to its exec)",
                severity="warning",
            )
            return
        result = Result(which) if which else point.results[-1]
        if result not in point.results:
            self.notify(
                f"a fork from here starts before {point.phase}: it takes no {result.value} result", severity="warning"
            )
            return
        value = point.prep_result if result is Result.PREP else point.exec_result
        self.push_screen(
            ValueEditor(f"{node} {result.value} result", value, writes="keeps it for a fork from here"),
            lambda edited: self._edit_result(travel, result, edited),
        )

    def _edit_result(self, travel: Travel, result: Result, edited: tuple[Any] | None) -> None:
        if edited is None or travel is not self.travel or travel.cursor is None:
            return
        travel.result_edits[result] = edited[0]
        self._show_moment()
        self.timeline_strip.show(travel)

    def action_save_run(self) -> None:
        """Save the run on show as a ``.flyt.jsonl`` bundle (the palette's "Save this run")."""
        from .screens.prompt import Prompt

        travel = self.travel
        if not len(travel.timeline):
            self.notify("no run to save yet: run the flow (r) first", severity="warning")
            return
        if travel is self._newest and self._run_active():
            self.notify("the run is still going: save it once it ends (x stops it)", severity="warning")
            return
        stem = self.path.name.removesuffix(".flyt.jsonl").removesuffix(".py")
        default = Path.cwd() / f"{stem}.run{travel.run}.flyt.jsonl"
        self.push_screen(
            Prompt(
                "Save this run as (a FILE.flyt.jsonl that flyt-tui reopens without the code)",
                str(default),
                check=_check_bundle_name,
            ),
            lambda text: self._saved_as(travel, text),
        )

    def _saved_as(self, travel: Travel, text: str | None) -> None:
        if text:
            self._save_run(travel, Path(text).expanduser())

    @work(thread=True, group="record", exit_on_error=False)
    def _save_run(self, travel: Travel, target: Path) -> None:
        """Write the bundle (``RunOutputs.save``) off the UI thread."""
        entry = self.entry
        try:
            self.outputs.save(
                travel.timeline,
                travel.run,
                target,
                flow=entry.flow if entry is not None else None,
                module=self.path,
                entry=entry.name if entry is not None else "flow",
                source=self.path if self.recording is not None else None,
            )
        except Exception as exc:
            self.notify(f"could not save the run: {error_line(exc, 160)}", severity="error", timeout=8)
            return
        self.notify(f"run {travel.run} saved to {target}", timeout=6)

    def action_stop(self) -> None:
        """Stop the run: cancels its Context, so waits and sleeps end at once."""
        session = self._active_session()
        if session is not None:
            session.stop()
            self.status.set_state(ViewState.STOPPING, "stopping…")

    def action_filter_logs(self) -> None:
        """Filter the logs to the node under the cursor (again: show everything)."""
        name = self.flow_tree.selected_node_name()
        new = None if name is None or name == self._log_filter else name
        self._log_filter = new
        for log in (self.retry_log, self.error_log, self.event_log):
            log.set_filter(new)
        self._count_tab("tab-retries", "Retries", self.retry_log.count)
        self._count_tab("tab-errors", "Errors", self.error_log.count)
        self._count_tab("tab-events", "Events", 0)
        self.notify(f"logs filtered to {new}" if new else "log filter cleared", timeout=2)

    def action_switch_flow(self) -> None:
        """Pick another flow of the module."""
        from .widgets.flow_picker import FlowPicker

        loaded = self.loaded
        if loaded is None or len(loaded.entries) < 2:
            self.notify("this module has only one flow", timeout=2)
            return
        choices = [(entry.name, f"{entry.origin} · {entry.flow.name}") for entry in loaded.entries]
        current = self.entry.name if self.entry is not None else None
        self.push_screen(FlowPicker(choices, current), self._picked)

    def _picked(self, name: str | None) -> None:
        if name is None or self.loaded is None:
            return
        entry = next((e for e in self.loaded.entries if e.name == name), None)
        if entry is None or (self.entry is not None and entry.name == self.entry.name):
            return
        session = self._active_session()
        if session is not None:
            session.stop()
        self.session = None
        self._ticker.pause()
        self._open_entry(entry, reset_logs=True)

    async def action_quit(self) -> None:
        """Quit (a paused or running flow is stopped first); never waits for user code:
        if the app has not closed within ``QUIT_SECONDS``, the exit guard ends it."""
        if self.guard_exit:
            exit_guard.arm()
        if self.session is not None:
            self.session.stop()
        if self._watch_stop is not None:
            self._watch_stop.set()
        self.exit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_flow":
            return self.loaded is not None and len(self.loaded.entries) > 1
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from workbench_commands(self)
        yield from super().get_system_commands(screen)


_ATOMIC = frozenset((int, float, complex, bool, str, bytes, type(None), range))


def _fresh(value: Any) -> Any:
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is list and set(map(type, value)) <= _ATOMIC:  # a list of plain values: a shallow copy will do
        return list(value)
    if kind is dict and set(map(type, value.values())) <= _ATOMIC:
        return dict(value)
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def fresh_store(initial: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the initial store for one run, so a run that mutates a value in place never
    changes what the next run starts from. Lists and dicts of plain values are copied
    shallowly (a deep copy of a 100,000-item list costs a tenth of a second)."""
    return {key: _fresh(value) for key, value in dict(initial).items()}


def _missing_from(flow: Any, path: tuple[str, ...]) -> str | None:
    """Why a fork's path is not in ``flow`` any more (after a reload), or ``None``."""
    from flyt_engine.graph import describe

    if not path or path[0] != flow.name:
        return f"the flow is called {flow.name!r} now, not {path[0]!r}" if path else "no path"
    names: set[str] = set()
    try:
        stack = [describe(flow)]
        while stack:
            graph = stack.pop()
            for node in graph.nodes:
                names.add(node.name)
                if node.children is not None:
                    stack.append(node.children)
    except Exception:  # a graph that cannot be drawn: let the engine decide
        return None
    for name in path[1:]:
        if not is_iteration_marker(name) and name not in names:
            return f"node {name!r} is not in the flow any more (after the reload)"
    return None


def _check_bundle_name(text: str) -> str | None:
    """Why ``text`` cannot name a bundle to save, or ``None``."""
    path = Path(text).expanduser()
    if not text.endswith(".flyt.jsonl"):
        return "name it FILE.flyt.jsonl"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    return None


def _yes(answer: str | None) -> bool:
    return answer is not None and answer.strip().lower() in ("y", "yes")


def _node_label(event: Event) -> str:
    iterations = [part for part in event.path if is_iteration_marker(part)]
    return event.node + (f" {iterations[-1]}" if iterations else "")


_EXPLAINED = frozenset((Why.WATCH, Why.ERROR, Why.RETRY, Why.FALLBACK, Why.CONDITION_FAILED))


def _status_words(pause: Pause | None, label: str, status_text: str) -> str:
    """The status line of a pause: ``paused at NODE (phase)``, ``paused: KEY written by
    NODE``, ``paused: NODE failed``, ``paused: condition of NODE raised …``."""
    if pause is None or pause.why not in _EXPLAINED:
        return f"paused at {label} ({status_text})"
    return f"paused: {pause.words}"


def _check_assignment(text: str) -> str | None:
    """Why ``KEY = JSON`` is refused, or ``None``."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        return "write KEY = JSON, e.g. retries = 3"
    try:
        json.loads(value)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    return None


def _check_breakpoint(text: str) -> str | None:
    """Why ``text`` is not a breakpoint, or ``None``."""
    try:
        NodeBreakpoint.parse(text)
    except BreakpointError as exc:
        return str(exc)
    return None


def _pause_words(event: Event) -> tuple[str, str]:
    """(what the tree line says, what the status line says in parentheses)."""
    if isinstance(event, PhaseStarted):
        return f"paused before {event.phase}", event.phase
    if isinstance(event, NodeFinished):
        following = f" → {event.next_node}" if event.next_node else " → end"
        return f"paused after post: {event.action}{following}", f"action {event.action}{following}"
    if isinstance(event, ExecFailed):
        words = f"attempt {event.attempt}/{event.max_attempts} failed"
        return f"paused: {words}", f"exec, {words}"
    if isinstance(event, NodeFailed):
        return f"paused: failed in {event.phase}", f"{event.phase}, failed"
    if isinstance(event, StoreChanged):
        return f"paused at write of {event.key}", f"write of {event.key}"
    return "paused", "paused"
