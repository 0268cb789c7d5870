"""Running a flow in the workbench: the tree, the store table, the logs, the status line."""

from __future__ import annotations

from conftest import SIZE, flow_path, tree_text, wait_loaded, wait_state

from flyt_tui.app import FlytApp


async def test_tree_shows_the_graph_before_any_run():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        text = tree_text(app)
        lines = [line.strip() for line in text.splitlines()]
        assert lines[0].startswith("○ basic")
        assert lines[1] == "⤷ ○ fetch"  # start node first
        assert lines[2] == "default → ○ validate"
        assert "valid → ○ transform" in lines
        assert "save → ○ save" in lines
        assert "invalid → ■ end" in lines  # a None target is an end
        assert "retry → ↺ fetch" in lines  # a loop back is a reference, not a recursion
        assert app.status.state == "idle"
        # the initial store is shown before any run
        assert app.store_table.store_keys() == ["source", "label"]
        assert app.store_table.value_text("label") == "'[x] not markup'"


async def test_run_shows_states_store_and_path():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        text = tree_text(app)
        assert "✓ basic" in text
        assert "⤷ ✓ fetch  → default  ×2" in text  # ran twice: validate looped back once
        assert "default → ✓ validate  → valid  ×2" in text
        assert "valid → ✓ transform  → save" in text
        assert "save → ✓ save  → default" in text
        # store: values and writers
        table = app.store_table
        assert table.value_text("rows") == "[30, 10, 20]"
        assert table.writer_of("rows") == "fetch"
        assert table.value_text("result") == "[10, 20, 30]"
        assert table.writer_of("result") == "transform"
        assert table.value_text("fetches") == "2"
        assert table.writer_of("saved") == "save"
        assert "done" in app.status.plain
        assert "action 'default'" in app.status.plain
        # the taken edge is marked: the history counts it
        record = app.history.nodes[app.flow_tree.find_key("validate")]
        assert record.edges == {"retry": 1, "valid": 1}


async def test_second_run_starts_clean():
    app = FlytApp(flow_path("failing"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "failed")
        assert len(app.error_log.entries) == 1
        first_history = app.history
        await pilot.press("r")
        await wait_state(pilot, "running", "failed")
        assert app.history is not first_history
        await wait_state(pilot, "failed")
        assert len(app.error_log.entries) == 1  # the log was cleared, then the new failure logged
        assert app.runs == 2


async def test_a_run_that_outpaces_the_screen_waits_for_it_in_short_drains(monkeypatch):
    """The UI folds what it drains in one go, without answering keys meanwhile. Once a run
    outpaced it (the first drain past the limit holds the run back), the run queues at most
    UI_BACKLOG_LIMIT records ahead of it (at 500,000 a drain of a fast loop took over a
    second), and the app drains again at once while the run waits."""
    from flyt_tui.app import UI_BACKLOG_LIMIT
    from flyt_tui.core.session import RunSession

    drained: list[int] = []
    real_pump = RunSession.pump

    def pump(self, *args, **kwargs):
        drained.append(len(self.events))
        return real_pump(self, *args, **kwargs)

    monkeypatch.setattr(RunSession, "pump", pump)
    app = FlytApp(flow_path("fast_loop"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done", timeout=120)
        assert app.session is not None and app.session.store.get("n") == 60_000
        assert app.history.steps == 60_000 + 1  # and the flow's own step
    assert max(drained) > UI_BACKLOG_LIMIT  # the run did outpace the screen ...
    over = [count for count in drained if count > UI_BACKLOG_LIMIT + 20]
    assert len(over) == 1  # ... and once held back, it queued one checkpoint's records past the limit at most
