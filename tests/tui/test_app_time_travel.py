"""Time travel in the workbench (issue 10): walking a finished run with [ ] { } home end,
the store as it was, edits on the past, forks with R (skipping what they start after),
provenance with p, earlier runs kept, and a fork refused after a reload removed its node."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from conftest import SIZE, flow_path, wait_for, wait_loaded, wait_state
from test_app_debugger import select_store_key
from textual import events
from textual.widgets import TextArea

from flyt_tui.app import FlytApp
from flyt_tui.screens.value_editor import ValueEditor

CHAT = flow_path("chat_turns")


def app_for(path=CHAT) -> FlytApp:
    return FlytApp(path, watch=False, stable_output=True)


async def run_to_the_end(pilot) -> None:
    await wait_loaded(pilot)
    await pilot.press("r")
    await wait_state(pilot, "done")


async def test_the_timeline_keys_walk_the_run_and_the_store_shows_each_moment():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        assert "live · 5 steps" in app.timeline_strip.plain
        await pilot.press("home")
        assert app.status.state == "viewing"
        assert app.status.state_text == "viewing step 1/5 (chat · prep)"
        assert app.store_table.store_keys() == ["turn"]
        await pilot.press("right_curly_bracket", "right_curly_bracket")
        assert app.status.state_text == "viewing step 3/5 (turn · prep)"
        # one list appended in place: at this step it held the first message only
        assert app.store_table.value_text("messages") == "['message 0']"
        assert app.store_table.writer_of("messages") == "turn"
        assert app.flow_tree.pause is not None and app.flow_tree.pause.key[0] == ("chat", "turn")  # the tree marks it
        await pilot.press("right_square_bracket")
        assert app.status.state_text == "viewing step 3/5 (turn · exec)"
        assert "step 3/5" in app.timeline_strip.plain
        await pilot.press("left_curly_bracket")
        assert app.status.state_text == "viewing step 3/5 (turn · prep)"
        await pilot.press("left_square_bracket")
        assert app.status.state_text == "viewing step 2/5 (turn · done)"
        assert "was" in app.inspector.plain  # the diff: what the step changed, and from what
        await pilot.press("end")
        assert app.status.state == "done"
        assert app.flow_tree.pause is None
        assert app.store_table.value_text("messages") == "['message 0', 'message 1', 'message 2']"


async def test_a_fork_from_exec_uses_the_recorded_prep_result_the_edited_store_and_keeps_the_old_run():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        turn = app.entry.flow.start
        assert turn.prep_calls == 3
        await pilot.press("home", "right_curly_bracket", "right_curly_bracket", "right_square_bracket")
        assert app.status.state_text == "viewing step 3/5 (turn · exec)"
        app.store_table.focus()
        select_store_key(app, "messages")
        await pilot.press("enter")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ValueEditor)
        editor.query_one(TextArea).text = '["edited"]'
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.store_table.value_text("messages") == "['edited']"
        assert app.store_table.writer_of("messages") == "✎ your edit"
        assert "1 edit" in app.timeline_strip.plain
        await pilot.press("R")
        await wait_for(pilot, lambda: app.runs == 2 and app.session is not None and app.session.finished)
        await wait_state(pilot, "done")
        store = app.session.store
        assert store["messages"] == ["edited", "message 1", "message 2"]
        assert store["report"] == "edited | message 1 | message 2"
        assert turn.prep_calls == 4  # the fork started at exec: only the third turn's prep ran
        assert "forked from run 1 at step 3 (turn · exec)" in app.timeline_strip.plain
        # the run it came from stays inspectable
        app.action_previous_run()
        await pilot.pause()
        assert app.store_table.border_title == "SharedStore · run 1 · viewing step 1/5 (chat · done)"
        assert app.store_table.value_text("report") == "'message 0 | message 1 | message 2'"
        await pilot.press("end")
        assert app.store_table.value_text("report") == "'edited | message 1 | message 2'"


async def test_p_jumps_to_the_write_that_made_the_value_and_then_to_the_one_before():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        app.store_table.focus()
        select_store_key(app, "turn")
        await pilot.press("p")
        assert app.status.state_text == "viewing step 4/5 (turn · write turn)"
        assert "3 writes" in app.inspector.plain
        select_store_key(app, "turn")
        await pilot.press("p")
        assert app.status.state_text == "viewing step 3/5 (turn · write turn)"


async def test_R_at_the_live_end_says_where_to_put_the_cursor_and_runs_nothing():
    app = app_for()
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("R")  # no run yet
        await run_to_the_end(pilot)
        await pilot.press("R")
        assert app.runs == 1
        assert any("timeline cursor" in note for note in notes)
        await pilot.press("end", "right_square_bracket")  # already live: nothing moves
        assert app.status.state == "done"


async def test_a_fork_whose_node_is_gone_after_a_reload_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "chat.py"
    shutil.copy(CHAT, path)
    app = app_for(path)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await run_to_the_end(pilot)
        source = path.read_text().replace('turn - "done" >> report\n', "")
        path.write_text(source.replace("report = Report()\n", ""))
        app.action_reload()
        await wait_loaded(pilot, loads=2)
        await pilot.press("end", "left_curly_bracket")
        assert "report" in app.status.state_text
        await pilot.press("R")
        await pilot.pause()
        assert app.runs == 1
        assert any("'report' is not in the flow any more" in note for note in notes)


async def test_the_timeline_keys_before_any_run_explain_themselves():
    app = app_for()
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await wait_loaded(pilot)
        await pilot.press("home", "left_square_bracket")
        assert app.status.state == "idle"
        assert any("no run yet" in note for note in notes)


async def test_the_batch_bars_show_the_moment_under_the_cursor():
    app = FlytApp(flow_path("batches"), watch=False, stable_output=False)  # rates shown, as a user sees them
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        final = {bar.path: bar.record.done for bar in app.batch_panel.bars}
        square = next(path for path in final if path[-1] == "squares")
        assert final[square] == 20
        await pilot.press("home")
        bars = {bar.path: bar.record for bar in app.batch_panel.bars}
        assert bars[square].done == 0 and not bars[square].finished
        timeline = app.travel.timeline
        items = [
            i
            for i in range(len(timeline))
            if timeline.item_batch.get(i) is not None and timeline.paths[timeline.item_batch[i]] == square
        ]
        app.travel.jump(items[4])
        app._show_moment()
        bars = {bar.path: bar.record for bar in app.batch_panel.bars}
        assert bars[square].done == 5
        shown = next(bar for bar in app.batch_panel.bars if bar.path == square)
        assert shown.stats_text(shown.record).plain == "5/20"  # no rate: it would be the run's, not the moment's
        await pilot.press("end")
        bars = {bar.path: bar.record for bar in app.batch_panel.bars}
        assert bars[square].done == 20 and bars[square].finished


AGENT = Path(__file__).resolve().parents[2] / "sample_flows" / "agent_loop.py"
ETL = AGENT.with_name("etl.py")


async def test_E_edits_the_exec_result_a_fork_before_post_starts_with():
    """On the agent loop: at calculate · post, E edits the density calculate computed, and
    the fork's answer uses it (calculate's exec does not run again)."""
    app = FlytApp(AGENT, watch=False, stable_output=True, overrides={"pace": 0})
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        await pilot.press("home")
        while app.status.state_text != "viewing step 7/9 (calculate · prep)":
            await pilot.press("right_curly_bracket")
        assert "exec result" not in app.inspector.plain  # before prep: no result exists yet
        await pilot.press("E")  # a fork from prep runs prep again: nothing to edit
        assert not isinstance(app.screen, ValueEditor)
        await pilot.press("right_square_bracket")
        assert app.status.state_text == "viewing step 7/9 (calculate · exec)"
        assert "prep result" in app.inspector.plain and "exec result" not in app.inspector.plain
        await pilot.press("right_square_bracket")
        assert app.status.state_text == "viewing step 7/9 (calculate · post)"
        await pilot.press("E")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ValueEditor)
        assert editor.query_one(TextArea).text == "3.76"
        editor.query_one(TextArea).text = "42.5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "exec result (your edit, for the fork)" in app.inspector.plain
        assert "1 edit" in app.timeline_strip.plain
        await pilot.press("R")
        await wait_for(pilot, lambda: app.runs == 2 and app.session is not None and app.session.finished)
        await wait_state(pilot, "done")
        assert app.session.store["notes"]["density"] == 42.5
        assert "42.5 inhabitants" in app.session.store["answer"]


async def test_the_palette_edits_a_tuple_prep_result_as_json_and_the_fork_gets_a_tuple():
    app = FlytApp(AGENT, watch=False, stable_output=True, overrides={"pace": 0})
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        await pilot.press("home")
        while app.status.state_text != "viewing step 9/9 (answer · exec)":
            await pilot.press("right_square_bracket")
        app.action_edit_result("exec")  # before exec: a fork takes no exec result
        await pilot.pause()
        assert not isinstance(app.screen, ValueEditor)
        app.action_edit_result("prep")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ValueEditor)
        assert editor.text is not None  # a tuple is edited as a JSON array
        editor.query_one(TextArea).text = (
            '["What is the population density of Mars?", '
            '{"population": 2, "area": 1, "density": 2}, {"action": "answer", "argument": null}]'
        )
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("R")
        await wait_for(pilot, lambda: app.runs == 2 and app.session is not None and app.session.finished)
        await wait_state(pilot, "done")
        assert app.session.store["answer"].startswith("Mars has about 2 inhabitants")


async def test_a_scrub_between_checkpoints_with_the_same_store_keeps_the_rows_and_moves_the_highlight():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        rebuilt: list[int] = []
        show_rows = app.store_table.show_rows
        app.store_table.show_rows = lambda rows: (rebuilt.append(len(rows)), show_rows(rows))  # type: ignore[method-assign]
        await pilot.press("home", "right_curly_bracket", "right_curly_bracket")
        assert app.status.state_text == "viewing step 3/5 (turn · prep)"
        count = len(rebuilt)
        await pilot.press("right_square_bracket")  # prep to exec: nothing written between
        assert app.status.state_text == "viewing step 3/5 (turn · exec)"
        assert len(rebuilt) == count
        assert app.flow_tree.pause is not None and app.flow_tree.pause.text == "◆ here"  # the status says the rest
        while not app.status.state_text.startswith("viewing step 3/5 (turn · write"):
            await pilot.press("right_square_bracket")
        assert len(rebuilt) == count + 1  # a write: the store changed
        written = app.status.state_text.removeprefix("viewing step 3/5 (turn · write ").removesuffix(")")
        assert app.store_table.is_lit(written)
        await pilot.press("left_square_bracket", "right_square_bracket")
        assert app.store_table.is_lit(written)


async def test_leaving_the_app_while_a_fork_runs_raises_nothing_from_late_ticks_or_messages():
    """Textual's test harness shuts the app down without ``exit()``: the run's ticks and
    the worker's messages that arrive then find no widgets, and must do nothing."""
    app = FlytApp(ETL, watch=False, overrides={"pace": 0})
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        for key in ("home", "right_curly_bracket", "right_curly_bracket", "R"):
            app.post_message(events.Key(key, None))  # as typed, without waiting for each
        await wait_for(pilot, lambda: app.runs == 2 and bool(app.session.events or app.history.steps))
        app.session.stop()
    assert app.return_code in (None, 0)


async def test_a_status_line_too_long_for_a_narrow_terminal_ends_in_an_ellipsis():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await run_to_the_end(pilot)
        await pilot.press("home", "right_curly_bracket", "right_curly_bracket")
        assert len(app.status.plain) > 100  # the whole line: state, flow, the keys' hint
        shown = str(app.status.render())
        assert len(shown) <= app.status.size.width and shown.endswith("…")
        assert shown.startswith(" viewing step 3/5 (turn · prep)")


async def test_a_fork_shows_no_made_up_time_for_the_flow_it_started_inside():
    app = FlytApp(AGENT, watch=False, overrides={"pace": 0})  # durations shown
    async with app.run_test(size=SIZE) as pilot:
        await run_to_the_end(pilot)
        await pilot.press("home")
        while app.status.state_text != "viewing step 7/9 (calculate · exec)":
            await pilot.press("right_square_bracket")
        await pilot.press("R")
        await wait_for(pilot, lambda: app.runs == 2 and app.session is not None and app.session.finished)
        await wait_state(pilot, "done")
        tree = app.flow_tree

        def label(name: str) -> str:
            line = tree.node_line(tree.find_key(name))
            assert line is not None
            return tree.label_for(line.data).plain

        assert label("agent_loop").endswith("→ answer")  # its phases never ran in the fork: no time
        assert re.search(r"→ decide  \d", label("calculate"))  # exec and post ran: timed
