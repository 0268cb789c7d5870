"""Retries, fallbacks, failures and batches as the workbench reports them; hostile values."""

from __future__ import annotations

from conftest import SIZE, flow_path, select_node, tree_text, wait_loaded, wait_state

from flyt_tui.app import FlytApp


async def test_retry_and_fallback_are_logged_and_shown_on_the_nodes():
    app = FlytApp(flow_path("retries"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        text = app.retry_log.visible_text()
        lines = text.splitlines()
        assert lines[0].startswith("flaky  attempt 1/3 failed  ConnectionError: flaky attempt 1  wait 10ms")
        assert lines[1].startswith("flaky  attempt 2/3 failed  ConnectionError: flaky attempt 2")
        assert lines[2].startswith("fragile  attempt 1/2 failed  TimeoutError: service down")
        assert lines[3].startswith("fragile  attempt 2/2 failed  TimeoutError: service down  no attempts left")
        assert lines[4].startswith("fragile  fallback used after  TimeoutError: service down")
        assert len(lines) == 5
        tree = tree_text(app)
        assert "default → ✓ fragile  → default  fallback used" in tree
        assert app.store_table.value_text("fragile_result") == "'cached'"
        assert app.store_table.value_text("flaky_result") == "'fetched'"
        assert app.error_log.entries.maxlen and not app.error_log.entries  # no failure
        assert str(app.query_one("#logs").get_tab("tab-retries").label) == "Retries (5)"


async def test_logs_filter_by_the_selected_node():
    app = FlytApp(flow_path("retries"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        select_node(app, "fragile")
        await pilot.press("f")
        text = app.retry_log.visible_text()
        assert "flaky" not in text and text.count("fragile") == 3
        assert all(line.text.startswith("fragile") for line in _rendered(app.retry_log))
        assert str(app.query_one("#logs").get_tab("tab-retries").label) == "Retries (5) · fragile"
        await pilot.press("f")  # again: the filter is cleared
        assert sum(line.startswith("flaky") for line in app.retry_log.visible_text().splitlines()) == 2
        assert len(_rendered(app.retry_log)) == 5


def _rendered(log):
    return [strip for strip in log.lines if strip.text.strip()]


async def test_a_failing_flow_reports_node_phase_exception_and_traceback():
    app = FlytApp(flow_path("failing"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "failed")
        assert app.is_running  # a flow error never closes the app
        text = app.error_log.visible_text()
        assert text.startswith("✗ explode  failed in exec")
        assert "ValueError: kaboom in exec" in text
        assert "Traceback" in text and 'raise ValueError("kaboom in exec")' in text
        assert len(app.error_log.entries) == 1  # reported once, not once per enclosing flow
        assert "failed in exec: ValueError: kaboom in exec" in tree_text(app)
        assert app.status.state == "failed" and "explode" in app.status.plain
        assert app.query_one("#logs").active == "tab-errors"
        assert app.store_table.value_text("prepared") == "True"


async def test_batch_bars_reach_100_percent_and_stay():
    app = FlytApp(flow_path("batches"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        await pilot.pause()
        bars = {bar.path: bar for bar in app.batch_panel.bars}
        assert set(bars) == {("batches", "squares"), ("batches", "per_user")}
        squares = bars[("batches", "squares")]
        assert squares.record.done == squares.record.total == 20
        assert squares.record.finished and squares.record.failed == 0
        assert squares._progress.percentage == 1.0
        assert str(squares._stats.render()).startswith("✓ 20/20")
        per_user = bars[("batches", "per_user")]
        assert (per_user.record.done, per_user.record.total) == (3, 3)
        assert app.store_table.value_text("results") == "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81, ...]"
        # the BatchFlow's template nodes show the iterations' states
        tree = tree_text(app)
        assert "⤷ ✓ greet  → done  ×3" in tree
        assert "done → ✓ mark  → default  ×3" in tree


async def test_hostile_values_and_names_are_shown_safely():
    app = FlytApp(flow_path("weird"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        table = app.store_table
        assert table.value_text("unprintable") == "<Unprintable object; repr raised RuntimeError>"
        assert table.value_text("huge_list").startswith("[0, 1, 2, 3,")
        assert len(table.value_text("huge_list")) < 250
        assert table.value_text("huge_int").startswith("<int of ")
        assert table.value_text("recursive").startswith("[1, 2, [1, 2, [")
        assert len(table.value_text("blob")) < 250
        assert table.value_text("[bold]") == "'[red]not markup[/red]'"
        assert "[x]" in tree_text(app)  # a name in brackets is not markup
        await pilot.press("r")
        await wait_state(pilot, "done")
        assert table.value_text("copy") == "<Unprintable object; repr raised RuntimeError>"
        assert table.value_text("big_dict").startswith("{'k0': 0, 'k1': 1")
        select_node(app, "[x]")
        await pilot.pause()
        assert "prep <Unprintable object; repr raised RuntimeError>" in app.inspector.plain


async def test_what_the_flow_prints_shows_in_the_events_log(tmp_path):
    from conftest import SIZE, wait_for, wait_loaded, wait_state

    from flyt_tui.app import FlytApp

    path = tmp_path / "printing.py"
    path.write_text(
        "import sys\nfrom flyt_engine import Flow, Node\n"
        "def exec_(ctx, p):\n    print('hello from the flow')\n    print('to stderr', file=sys.stderr)\n"
        "flow = Flow(Node(exec=exec_, name='talk'), name='printing')\n"
    )
    app = FlytApp(path, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        await wait_for(pilot, lambda: "hello from the flow" in app.event_log.visible_text(), what="the print")
        assert "stderr │ to stderr" in app.event_log.visible_text()
