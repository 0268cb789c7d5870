"""``i`` opens a batch's items: each one's input, result or error, tries and time."""

from __future__ import annotations

from conftest import SIZE, flow_path, select_node, wait_for, wait_loaded, wait_state
from textual.widgets import DataTable

from flyt_tui.app import FlytApp
from flyt_tui.screens.batch_items import BatchItems


async def test_i_opens_the_items_failed_first_with_their_inputs_errors_and_tries():
    app = FlytApp(flow_path("flaky_batch"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done", "failed")
        select_node(app, "prices")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchItems), what="the items screen")
        screen = app.screen
        table = screen.query_one(DataTable)
        rows = [table.get_row_at(index) for index in range(table.row_count)]
        assert len(rows) == 8
        first = rows[0]
        assert str(first[0]) == "#3" and str(first[1]).startswith("ValueError: item") and first[2] == "2"
        retried = next(row for row in rows if str(row[0]) == "#5")
        assert str(retried[1]) == "ok" and retried[2] == "2"  # one failed attempt, then success
        item = screen.query_one("#batch-item")
        await wait_for(pilot, lambda: "item #3  failed" in item.plain)
        assert "ValueError: item 3 has no price" in item.plain and "input" in item.plain and "'n': 3" in item.plain
        table.move_cursor(row=[str(row[0]) for row in rows].index("#5"))
        await wait_for(pilot, lambda: "item #5  ok" in item.plain)
        assert "attempts 2" in item.plain
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, BatchItems))


async def test_i_before_any_batch_ran_says_so():
    app = FlytApp(flow_path("flaky_batch"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("i")
        await pilot.pause()
        assert not isinstance(app.screen, BatchItems)
        assert any("no batch has run yet" in str(n.message) for n in app._notifications)
