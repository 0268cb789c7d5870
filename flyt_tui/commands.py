"""The command palette's entries: every workbench action, by name, beside its key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand

if TYPE_CHECKING:
    from .app import FlytApp


def workbench_commands(app: FlytApp) -> Iterator[SystemCommand]:
    """The palette's workbench entries (the app adds Textual's own after them)."""
    yield SystemCommand("Run / restart", "Run the flow from the start (r)", app.action_run)
    yield SystemCommand("Next phase", "Step to the next checkpoint (n)", app.action_step_phase)
    yield SystemCommand("Next node", "Run to the next node's prep (N)", app.action_step_node)
    yield SystemCommand("Continue", "Run on to a breakpoint or the end (c)", app.action_continue_run)
    yield SystemCommand("Toggle breakpoint", "On the selected node (b)", app.action_toggle_breakpoint)
    yield SystemCommand(
        "Conditional breakpoint",
        "Pause at a node's phase when an expression holds (B)",
        app.action_conditional_breakpoint,
    )
    yield SystemCommand("Watch store key", "Pause at every write to the key under the cursor (w)", app.action_watch_key)
    yield SystemCommand(
        "Break on errors", "Pause where a node is about to fail or fall back (e)", app.action_break_on_errors
    )
    yield SystemCommand("Run to cursor", "Run until the selected node's prep (t)", app.action_run_to_cursor)
    yield SystemCommand("Step out", "Run until the enclosing flow finishes (o)", app.action_step_out)
    yield SystemCommand("Breakpoints…", "See, disable and delete breakpoints and watches", app.action_list_breakpoints)
    yield SystemCommand(
        "Evaluate…", "An expression over shared, prep, exec_result, node, while paused (:)", app.action_evaluate
    )
    yield SystemCommand(
        "Edit store value", "The value under the store cursor, as JSON, while paused (enter)", app.action_edit_value
    )
    yield SystemCommand("Add store key", "KEY = JSON, while paused", app.action_add_key)
    yield SystemCommand("Delete store key", "The key under the store cursor, while paused", app.action_delete_key)
    yield SystemCommand(
        "Open batch items", "The selected batch's items: input, result or error, tries (i)", app.action_open_batch_items
    )
    yield SystemCommand(
        "Fork from the timeline cursor",
        "Run again from there: the store as it was plus your edits, the current code (R)",
        app.action_fork,
    )
    yield SystemCommand(
        "Fork: edit the prep result",
        "At a past exec or post checkpoint, the prep result the fork starts with (E before exec)",
        lambda: app.action_edit_result("prep"),
    )
    yield SystemCommand(
        "Fork: edit the exec result",
        "At a past post checkpoint, the exec result the fork starts with (E before post)",
        lambda: app.action_edit_result("exec"),
    )
    yield SystemCommand("Timeline: back", "One checkpoint back ([)", lambda: app.action_timeline("back"))
    yield SystemCommand("Timeline: forward", "One checkpoint forward (])", lambda: app.action_timeline("forward"))
    yield SystemCommand("Timeline: step back", "One node step back ({)", lambda: app.action_timeline("step_back"))
    yield SystemCommand(
        "Timeline: step forward", "One node step forward (})", lambda: app.action_timeline("step_forward")
    )
    yield SystemCommand(
        "Timeline: first checkpoint", "The start of the run (home)", lambda: app.action_timeline("first")
    )
    yield SystemCommand("Timeline: live", "Back to the live run (end)", lambda: app.action_timeline("last"))
    yield SystemCommand("Timeline: earlier run", "Look at the run before this one", app.action_previous_run)
    yield SystemCommand(
        "Who wrote this value", "Jump to the write of the key under the store cursor (p)", app.action_provenance
    )
    yield SystemCommand("Open source", "The selected node's phase in $EDITOR (ctrl+e)", app.action_edit_source)
    tabs = (
        ("tab-retries", "Retries"),
        ("tab-errors", "Errors"),
        ("tab-events", "Events"),
        ("tab-breakpoints", "Breakpoints"),
    )
    for tab, label in tabs:
        yield SystemCommand(f"Show {label} log", f"Switch the log area to {label}", lambda tab=tab: app.show_log(tab))
    yield SystemCommand(
        "Save this run", "As a FILE.flyt.jsonl that flyt-tui reopens without the code", app.action_save_run
    )
    yield SystemCommand("Stop", "Cancel the run (x)", app.action_stop)
    yield SystemCommand("Filter logs by node", "Show the selected node's entries only (f)", app.action_filter_logs)
    yield SystemCommand("Reload", "Import the module again", app.action_reload)
    if app.loaded is not None and len(app.loaded.entries) > 1:
        yield SystemCommand("Switch flow", "Open another flow of this module (s)", app.action_switch_flow)
