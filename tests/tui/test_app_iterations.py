"""BatchFlow iterations write to stores of their own: the table shows the run's store, and
while paused inside iteration #i, that iteration's store (issue 8, points 1 and 7)."""

from __future__ import annotations

from conftest import SIZE, flow_path, select_node, wait_for, wait_loaded, wait_state

from flyt_tui.app import FlytApp


async def test_the_store_table_shows_the_runs_own_store_not_iteration_stores():
    app = FlytApp(flow_path("batches"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        await pilot.pause()
        keys = set(app.store_table.store_keys())
        real = set(app.session.store.keys())
        assert keys == real
        assert "greeting" not in keys and "marked" not in keys and "user" not in keys


async def test_paused_inside_an_iteration_the_table_shows_that_iterations_store():
    app = FlytApp(flow_path("batches"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "mark")
        await pilot.press("b", "r")
        await wait_state(pilot, "paused")
        await wait_for(pilot, lambda: "iteration #0" in (app.store_table.border_title or ""), what="iteration view")
        assert app.store_table.value_text("user") == "'ada'"
        assert app.store_table.writer_of("user") == "inputs #0"
        assert app.store_table.value_text("greeting") == "'hello ada'"
        assert app.store_table.writer_of("greeting") == "greet"
        assert "#0" in app.status.plain and "user='ada'" in app.status.plain
        await pilot.press("c")  # the next iteration pauses at mark again
        await wait_for(pilot, lambda: "iteration #1" in (app.store_table.border_title or ""), what="iteration 1")
        assert app.store_table.value_text("greeting") == "'hello bob'"
        select_node(app, "mark")
        await pilot.press("b", "c")  # breakpoint off: on to the end
        await wait_state(pilot, "done")
        await pilot.pause()
        assert app.store_table.border_title == "SharedStore"
        assert "greeting" not in app.store_table.store_keys()
