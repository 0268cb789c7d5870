"""Async flows in the workbench (issue 12): they load, run, step by phase and node, pause
at every kind of breakpoint, stop at once inside ``await ctx.asleep``, quit while paused,
and fork from a past step."""

from __future__ import annotations

import time

from conftest import SIZE, flow_path, wait_for, wait_loaded, wait_state
from test_app_stepping import paused_at
from textual.widgets import TextArea

from flyt_tui.app import FlytApp
from flyt_tui.screens.value_editor import ValueEditor

ASYNC = flow_path("async_steps")


def app_for(**options) -> FlytApp:
    return FlytApp(ASYNC, watch=False, stable_output=True, **options)


async def test_an_async_flow_runs_to_the_end_with_its_batch():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        assert app.store_table.value_text("doubled") == "[0, 2, 4]"
        assert app.store_table.writer_of("doubled") == "doubles"
        assert app.store_table.writer_of("rows") == "fetch"


async def test_n_and_N_step_an_async_flow_phase_by_phase_and_node_by_node():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("N")
        await wait_for(pilot, lambda: paused_at(app) == ("async_steps", "prep"))
        await pilot.press("N")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "prep"))
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "exec"))
        await wait_for(pilot, lambda: "prep 3" in app.inspector.plain)
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "post"))
        await wait_for(pilot, lambda: "exec [0, 1, 2]" in app.inspector.plain)
        await pilot.press("N")
        await wait_for(pilot, lambda: paused_at(app) == ("doubles", "prep"))
        await pilot.press("c")
        await wait_state(pilot, "done")


async def test_breakpoints_conditions_watches_and_errors_pause_an_async_run():
    app = app_for(breakpoints=["check if shared['doubled'][1] == 2"], watches=["rows"], break_on=["error"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        await wait_for(pilot, lambda: "rows" in app.status.state_text, what="the watch on rows")
        await pilot.press("c")
        await wait_for(pilot, lambda: paused_at(app) == ("check", "prep"), what="the conditional breakpoint")
        await pilot.press("c")
        await wait_state(pilot, "done")


async def test_e_pauses_where_an_async_node_is_about_to_fail():
    app = FlytApp(ASYNC, watch=False, stable_output=True, overrides={"fail": True}, break_on=["error"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        await wait_for(pilot, lambda: "check" in app.status.state_text and "fail" in app.status.state_text)
        await wait_for(pilot, lambda: "the async bug" in app.inspector.plain)
        await pilot.press("c")
        await wait_state(pilot, "failed")


async def test_x_ends_an_await_of_ctx_asleep_at_once():
    app = FlytApp(ASYNC, watch=False, stable_output=True, overrides={"wait": True})
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.store_table.value_text("checked") == "True", what="the run to reach wait")
        await pilot.pause(0.1)
        started = time.monotonic()
        await pilot.press("x")
        await wait_state(pilot, "stopped")
        assert time.monotonic() - started < 2


async def test_q_while_an_async_run_is_paused_quits():
    app = app_for(breakpoints=["doubles"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to quit")


async def test_R_forks_an_async_run_from_exec_with_the_recorded_prep_result():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        await pilot.press("home")
        seen = []
        while app.status.state_text != "viewing step 2/4 (fetch · exec)" and len(seen) < 30:
            seen.append(app.status.state_text)
            await pilot.press("right_square_bracket")
        assert app.status.state_text == "viewing step 2/4 (fetch · exec)", seen
        await pilot.press("E")  # before exec: the prep result (3) the fork starts with
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ValueEditor)
        editor.query_one(TextArea).text = "5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("R")
        await wait_for(pilot, lambda: app.runs == 2 and app.session is not None and app.session.finished)
        await wait_state(pilot, "done")
        assert app.session.store["rows"] == [0, 1, 2, 3, 4]
        assert app.session.store["doubled"] == [0, 2, 4, 6, 8]
        assert "forked from run 1 at step 2 (fetch · exec)" in app.timeline_strip.plain
