"""Stepping, breakpoints, stop and quit: the debugger keys, driven through Pilot."""

from __future__ import annotations

import time

from conftest import SIZE, flow_path, select_node, tree_text, wait_for, wait_loaded, wait_state

from flyt_engine.events import NodeFinished, PhaseStarted
from flyt_tui.app import FlytApp


def paused_at(app) -> tuple[str, str] | None:
    event = app.session.paused_at if app.session is not None else None
    if event is None:
        return None
    kind = "finished" if type(event) is NodeFinished else event.phase if type(event) is PhaseStarted else event.kind
    return event.node, kind


async def test_n_when_idle_starts_paused_and_steps_phase_by_phase():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("basic", "prep"), what="pause at the flow's prep")
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("basic", "exec"))
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "prep"))
        await wait_state(pilot, "paused")
        assert app.status.state_text == "paused at fetch (prep)"
        assert "⏸ fetch  paused before prep" in tree_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "exec"))
        await wait_for(pilot, lambda: app.status.state_text == "paused at fetch (exec)")
        # the inspector shows the prep result of the paused node; exec is not known yet
        await wait_for(pilot, lambda: "prep [3, 1, 2]" in app.inspector.plain)
        assert "exec —" in app.inspector.plain
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "post"))
        await wait_for(pilot, lambda: "exec [30, 10, 20]" in app.inspector.plain)
        await pilot.press("n")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "finished"))
        await wait_for(pilot, lambda: "action default  → validate" in app.inspector.plain)
        assert app.store_table.value_text("rows") == "[30, 10, 20]"


async def test_N_steps_node_by_node_and_c_continues():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("N")
        await wait_for(pilot, lambda: paused_at(app) == ("basic", "prep"))
        await pilot.press("N")
        await wait_for(pilot, lambda: paused_at(app) == ("fetch", "prep"))
        await pilot.press("N")
        await wait_for(pilot, lambda: paused_at(app) == ("validate", "prep"))
        await wait_for(pilot, lambda: app.status.state_text == "paused at validate (prep)")
        assert "⤷ ✓ fetch  → default" in tree_text(app)
        await pilot.press("c")
        await wait_state(pilot, "done")
        assert app.store_table.value_text("saved") == "True"


async def test_breakpoint_on_selected_node_pauses_before_its_prep():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "transform")
        await pilot.press("b")
        assert app.breakpoints == {"transform"}
        assert "valid → ● ○ transform" in tree_text(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: paused_at(app) == ("transform", "prep"), what="the breakpoint")
        await wait_for(pilot, lambda: app.status.state_text == "paused at transform (prep)")
        # fetch ran twice and validate looped before the breakpoint was reached
        assert app.store_table.value_text("fetches") == "2"
        assert "result" not in app.store_table.store_keys()
        await pilot.press("c")
        await wait_state(pilot, "done")
        assert app.store_table.value_text("result") == "[10, 20, 30]"
        # toggling again removes it
        select_node(app, "transform")
        await pilot.press("b")
        assert app.breakpoints == set()
        await pilot.press("r")
        await wait_state(pilot, "done")


async def test_breakpoint_set_while_running_applies_live():
    app = FlytApp(flow_path("ticking"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.history.steps > 3, what="the loop to spin")
        select_node(app, "tick")
        await pilot.press("b")
        await wait_for(pilot, lambda: paused_at(app) == ("tick", "prep"), what="the live breakpoint")
        await pilot.press("x")
        await wait_state(pilot, "stopped")


async def test_x_stops_an_endless_loop_and_the_ui_stays_responsive():
    app = FlytApp(flow_path("forever"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.history.steps > 100, what="the loop to spin")
        # the UI keeps up while the loop spins: a key is handled and the store cell moves on
        seen = app.store_table.value_text("spins")
        await wait_for(pilot, lambda: app.store_table.value_text("spins") != seen, what="a store update")
        await pilot.press("x")
        await wait_state(pilot, "stopped")
        assert app.session.finished
        assert "stopped" in app.status.plain


async def test_x_stops_a_run_in_a_30s_retry_wait_at_once():
    app = FlytApp(flow_path("slow_retry"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.retry_log.entries) == 1, what="the first failed attempt")
        assert "attempt 1/3 failed" in app.retry_log.visible_text()
        assert "↻1/3" in tree_text(app)
        started = time.monotonic()
        await pilot.press("x")
        await wait_state(pilot, "stopped", timeout=5)
        assert time.monotonic() - started < 3.0
        assert app.error_log.entries == deque_empty()


def deque_empty():
    from collections import deque

    return deque()


async def test_r_while_paused_restarts_with_a_fresh_run():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "save")
        await pilot.press("b", "r")
        await wait_for(pilot, lambda: paused_at(app) == ("save", "prep"))
        first = app.session
        assert first.store.get("fetches") == 2
        select_node(app, "save")
        await pilot.press("b", "r")  # no breakpoint any more; restart
        await wait_state(pilot, "done")
        assert first.finished and str(first.state) == "stopped"
        assert app.session is not first
        # the new run started from the initial store, not from the old run's
        assert app.session.store.get("fetches") == 2
        assert app.store_table.value_text("fetches") == "2"


async def test_quit_while_paused_exits_within_two_seconds():
    app = FlytApp(flow_path("basic"), watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("n")
        await wait_state(pilot, "paused")
        session = app.session
        started = time.monotonic()
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, timeout=3)
    assert time.monotonic() - started < 2.0
    assert session.wait(1.0)
    assert str(session.state) in ("stopped", "RunState.STOPPED")
