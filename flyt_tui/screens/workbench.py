"""The main screen: graph tree on the left; store, batch bars and inspector on the right;
the logs as tabs below; the status line and the key footer at the bottom.

Layout only: what the widgets show is decided by ``FlytApp``, which reads them by id.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from ..widgets.batch_panel import BatchPanel
from ..widgets.breakpoint_pane import BreakpointPane
from ..widgets.event_log import EventLog
from ..widgets.flow_tree import FlowTree
from ..widgets.inspector import Inspector
from ..widgets.status_bar import StatusBar
from ..widgets.store_table import StoreTable
from ..widgets.timeline_strip import TimelineStrip


class WorkbenchScreen(Screen[None]):
    """Everything a user watches during a run, at once (tabs only for the logs)."""

    class Ready(Message):
        """The widgets are mounted: the app may fill them (load the module, start timers)."""

    def on_mount(self) -> None:
        self.post_message(self.Ready())

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield FlowTree(id="tree")
            with Vertical(id="right"):
                yield StoreTable(id="store")
                yield BatchPanel(id="batches")
                yield Inspector(id="inspector")
        with TabbedContent(id="logs"):
            with TabPane("Retries", id="tab-retries"):
                yield EventLog(id="retry-log")
            with TabPane("Errors", id="tab-errors"):
                yield EventLog(id="error-log")
            with TabPane("Events", id="tab-events"):
                yield EventLog(id="event-log", max_entries=2000)
            with TabPane("Breakpoints", id="tab-breakpoints"):
                yield BreakpointPane(id="breakpoint-pane")
        yield TimelineStrip(id="timeline")
        yield StatusBar(id="status")
        yield Footer()
