"""Details of the workbench: nested flows, the path taken, failures in every phase, the store
table's updates and highlights, fresh stores per run, the Events tab."""

from __future__ import annotations

import pytest
from conftest import SIZE, flow_path, tree_text, wait_for, wait_loaded, wait_state

from flyt_tui.app import FlytApp, fresh_store
from flyt_tui.widgets.store_table import StoreTable


async def test_sub_flows_expand_to_their_nodes_and_show_their_states():
    app = FlytApp(flow_path("nested"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        lines = tree_text(app).splitlines()
        assert lines == [
            "○ outer  flow",
            "  ⤷ ○ prepare",
            "    default → ○ inner  flow",
            "      ⤷ ○ first",
            "        default → ○ second",
            "      inner_done → ○ finish",
        ]
        await pilot.press("r")
        await wait_state(pilot, "done")
        text = tree_text(app)
        assert "default → ✓ inner  flow  → inner_done" in text
        assert "⤷ ✓ first  → default" in text
        assert "default → ✓ second  → inner_done" in text
        assert "inner_done → ✓ finish  → default" in text


async def test_the_path_taken_is_marked_on_the_edges():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        tree = app.flow_tree

        def edge_style(action: str) -> str:
            line = next(line for line in tree._by_ident.values() if line.data.edge and line.data.edge[1] == action)
            label = line.label
            return str(next(span.style for span in label.spans if span.start == 0))

        assert edge_style("valid") == "bold green"  # taken
        assert edge_style("retry") == "bold green"  # taken once, looped back
        assert edge_style("invalid") == "cyan"  # never taken
        assert "retry → ↺ fetch" in tree_text(app)


@pytest.mark.parametrize(
    ("phase", "error"),
    [("prep", "KeyError: 'missing input'"), ("exec", "ZeroDivisionError"), ("post", "TypeError: cannot store that")],
)
async def test_a_failure_in_any_phase_is_reported(phase, error):
    app = FlytApp(flow_path("phases"), watch=False, stable_output=True, overrides={"fail_in": phase})
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "failed")
        text = app.error_log.visible_text()
        assert text.startswith(f"✗ fragile  failed in {phase}")
        assert error in text
        assert f"failed in {phase}" in tree_text(app)
        assert app.flow_tree.cursor_node.data.name == "fragile"  # the cursor went to the failure
        assert f"fragile  failed in {phase}" in app.inspector.plain


async def test_store_cells_update_in_place_and_changed_rows_light_up(monkeypatch):
    rebuilds = []
    original = StoreTable.clear

    def counting_clear(self, *args, **kwargs):
        rebuilds.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StoreTable, "clear", counting_clear)
    app = FlytApp(flow_path("ticking"), watch=False, stable_output=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        before = len(rebuilds)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.store_table.value_text("ticks") not in (None, "1"))
        first = app.store_table.value_text("ticks")
        await wait_for(pilot, lambda: app.store_table.value_text("ticks") != first, what="another update")
        assert app.store_table.is_lit("ticks")
        assert app.store_table.writer_of("ticks") == "tick"
        assert len(rebuilds) == before + 1  # once, when the run started; updates touch cells
        await pilot.press("x")
        await wait_state(pilot, "stopped")
        await wait_for(pilot, lambda: not app.store_table.is_lit("ticks"), what="the highlight to fade")


async def test_every_run_starts_from_a_fresh_copy_of_the_initial_store():
    app = FlytApp(flow_path("retries"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        for _ in range(2):  # flaky mutates its counter dict in place; each run sees calls=0 again
            await pilot.press("r")
            await wait_state(pilot, "done")
            assert len(app.retry_log.entries) == 5
            assert app.session.store.get("counter") == {"calls": 3}
        assert app.loaded.initial_store["counter"] == {"calls": 0}


def test_fresh_store_copies_containers():
    nested = {"a": [1, 2], "b": {"c": [3]}, "d": "text", "e": [[1]]}
    copy = fresh_store(nested)
    assert copy == nested
    assert copy["a"] is not nested["a"]
    assert copy["b"]["c"] is not nested["b"]["c"]
    assert copy["e"][0] is not nested["e"][0]
    assert copy["d"] is nested["d"]


async def test_the_events_tab_lists_the_run():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        assert app.event_log.visible_text() == ""  # not formatted while hidden
        app.query_one("#logs").active = "tab-events"
        await wait_for(pilot, lambda: "run_finished" in app.event_log.visible_text())
        lines = app.event_log.visible_text().splitlines()
        assert lines[-1].startswith("run_finished") and "action 'default'" in lines[-1]
        assert any(line.startswith("store_changed") and "saved = True" in line for line in lines)


async def test_the_store_row_under_the_cursor_is_inspected_in_full():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        app.store_table.focus()
        await pilot.pause()
        row = app.store_table.store_keys().index("rows")
        app.store_table.move_cursor(row=row)
        await wait_for(pilot, lambda: app.inspector.plain.startswith("rows  list  written by fetch"))
        assert "[30, 10, 20]" in app.inspector.plain
        app.flow_tree.focus()
        await wait_for(pilot, lambda: app.inspector.plain.startswith("basic  flow"))


async def test_at_100_columns_the_store_table_still_shows_who_wrote_each_key():
    from conftest import wait_loaded

    from flyt_tui.app import FlytApp

    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        await pilot.pause()
        table = app.store_table
        used = sum(column.get_render_width(table) for column in table.columns.values())
        assert used <= table.size.width  # every column, "written by" included, fits the pane
