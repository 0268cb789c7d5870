"""The debugger's keys in the workbench (issue 9): B, w, e, t, o, :, enter, ctrl+e, the
breakpoint list, and their bad inputs, on the checkout sample whose bug a watch finds."""

from __future__ import annotations

from pathlib import Path

from conftest import SIZE, select_node, wait_for, wait_loaded, wait_state
from textual.widgets import Input, TextArea

from flyt_tui.app import FlytApp
from flyt_tui.screens.breakpoint_list import BreakpointList
from flyt_tui.screens.prompt import Prompt
from flyt_tui.screens.value_editor import ValueEditor

CHECKOUT = Path(__file__).resolve().parents[2] / "sample_flows" / "checkout_bug.py"


def app_for(path: Path = CHECKOUT, **options) -> FlytApp:
    return FlytApp(path, watch=False, stable_output=True, **options)


def select_store_key(app: FlytApp, key: str) -> None:
    table = app.store_table
    table.move_cursor(row=table.store_keys().index(key))


async def type_into_prompt(pilot, text: str) -> None:
    prompt = pilot.app.screen
    assert isinstance(prompt, Prompt)
    prompt.query_one(Input).value = text
    await pilot.press("enter")
    await pilot.pause()


async def test_w_on_a_store_key_pauses_at_each_write_showing_writer_old_and_new():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        select_store_key(app, "total")
        await pilot.press("w")
        assert "total" in app.points.watches
        await pilot.press("r")
        await wait_state(pilot, "paused")
        assert app.status.state_text == "paused: total written by subtotal"
        await pilot.press("c")
        await wait_for(pilot, lambda: "coupon" in app.status.state_text, what="the coupon's write")
        await pilot.press("c")
        await wait_for(pilot, lambda: "shipping" in app.status.state_text, what="the bug's write")
        text = app.inspector.plain
        assert "old      55.8" in text and "new      66.99" in text and "writer   shipping" in text
        await pilot.press("c")
        await wait_state(pilot, "done")
        assert app.points.watches["total"].hits == 3


async def test_watch_from_the_command_line_and_a_key_never_written():
    app = app_for(watches=["never_written"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")


async def test_B_sets_a_conditional_breakpoint_and_refuses_a_syntax_error():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "shipping")
        await pilot.press("B")
        await pilot.pause()
        await type_into_prompt(pilot, "shipping:post if shared[")
        assert isinstance(app.screen, Prompt)  # refused: the prompt stays, with the error
        assert "not Python" in str(app.screen.query_one("#prompt-error").render())
        await type_into_prompt(pilot, 'shipping:post if shared["total"] < shared["subtotal"]')
        assert not isinstance(app.screen, Prompt)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        assert "shipping (post)" in app.status.state_text
        await pilot.press("x")
        await wait_state(pilot, "stopped")


async def test_a_condition_that_raises_pauses_with_the_reason():
    app = app_for(breakpoints=["coupon if shared['no_such_key']"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        assert app.status.state_text == "paused: condition of coupon raised KeyError"
        assert "no_such_key" in app.inspector.plain
        await pilot.press("c")
        await wait_state(pilot, "done")


async def test_e_breaks_where_a_node_is_about_to_fail_and_e_without_errors_runs_through(tmp_path):
    path = tmp_path / "fails.py"
    path.write_text(
        "from flyt_engine import Flow, Node\n"
        "def explode(ctx, prep):\n    raise ValueError(f'bad input {prep}')\n"
        "boom = Node(prep=lambda ctx, s: 41, exec=explode, name='boom')\n"
        "flow = Flow(boom, name='fails')\n"
    )
    app = app_for(path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("e")
        assert "break on error" in app.status.plain
        await pilot.press("r")
        await wait_state(pilot, "paused")
        assert app.status.state_text == "paused: boom failed in exec"
        text = app.inspector.plain
        assert "ValueError: bad input 41" in text and "prep     41" in text
        await pilot.press("c")
        await wait_state(pilot, "failed")
    app = app_for(break_on=["error"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")  # no error: nothing to stop for


async def test_t_runs_to_the_cursor_and_o_steps_out():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "shipping")
        await pilot.press("t")
        await wait_state(pilot, "paused")
        assert app.status.state_text == "paused at shipping (prep)"
        await pilot.press("o")  # out of the checkout flow: its end
        await wait_for(pilot, lambda: "checkout" in app.status.state_text or app.status.state == "done")
        await pilot.press("c")
        await wait_state(pilot, "done")


async def test_evaluate_while_paused_shows_the_result_or_the_exception():
    app = app_for(breakpoints=["shipping:post"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        await pilot.press("colon")
        await pilot.pause()
        await type_into_prompt(pilot, "shared['subtotal'] - prep")
        assert "6.2" in app.inspector.plain
        await pilot.press("colon")
        await pilot.pause()
        await type_into_prompt(pilot, "1 / 0")
        assert "ZeroDivisionError" in app.inspector.plain
        assert app.is_running
        await pilot.press("x")


async def test_enter_edits_a_value_as_json_invalid_json_writes_nothing_and_the_edit_counts():
    app = app_for(breakpoints=["shipping"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        app.store_table.focus()
        select_store_key(app, "total")
        await pilot.press("enter")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ValueEditor)
        editor.query_one(TextArea).text = "{not json"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ValueEditor)
        assert "not JSON" in str(editor.query_one("#editor-error").render())
        assert app.session.store["total"] == 55.8  # nothing written
        editor.query_one(TextArea).text = "120.0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.session.store["total"] == 120.0
        assert "edit: you set total = 120.0" in app.event_log.visible_text()
        await pilot.press("c")
        await wait_state(pilot, "done")
        assert app.session.store["shipping"] == 0.0  # the edited total earned free shipping


async def test_a_value_json_cannot_say_is_read_only(tmp_path):
    path = tmp_path / "odd.py"
    path.write_text(
        "from flyt_engine import Flow, Node\n"
        "flow = Flow(Node(post=lambda ctx, s, p, e: s.set('odd', {1, 2}), name='w'), name='odd')\n"
    )
    app = app_for(path, watches=["odd"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        app.store_table.focus()
        select_store_key(app, "odd")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ValueEditor)
        assert app.screen.query_one(TextArea).read_only
        await pilot.press("escape")
        await pilot.press("c")
        await wait_state(pilot, "done")


async def test_ctrl_e_without_editor_says_where_the_source_is(monkeypatch):
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "shipping")
        await pilot.pause()
        assert "checkout_bug.py:" in app.inspector.plain  # the inspector names the source
        assert "def exec(self, ctx: Any, total: float) -> float:" in app.inspector.plain  # and shows it
        notes: list[str] = []
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append(message))
        await pilot.press("ctrl+e")
        assert notes and "set $EDITOR" in notes[0] and "checkout_bug.py" in notes[0]


async def test_the_breakpoint_list_disables_and_deletes_and_orphans_survive(tmp_path):
    path = tmp_path / "two.py"
    path.write_text("from flyt_engine import Flow, Node\na = Node(name='a')\nflow = Flow(a, name='two')\n")
    app = app_for(path, breakpoints=["a", "gone"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        gone = app.points.nodes[("gone", "prep")]
        assert gone.orphaned  # no such node: listed, not dropped
        app.action_list_breakpoints()
        await pilot.pause()
        assert isinstance(app.screen, BreakpointList)
        await pilot.press("space")  # disable the first: a
        assert not app.points.nodes[("a", "prep")].enabled
        await pilot.press("down", "d")  # delete the orphan
        assert ("gone", "prep") not in app.points.nodes
        await pilot.press("escape")
        await pilot.press("r")
        await wait_state(pilot, "done")  # a is disabled: no pause


async def test_the_breakpoints_tab_lists_hits_and_turns_them_off_and_deletes():
    app = app_for(breakpoints=["coupon"], watches=["total"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        pane = app.query_one("#breakpoint-pane")
        lines = [str(pane.get_option_at_index(i).prompt) for i in range(pane.option_count)]
        assert lines == ["● coupon  0 hits", "● watch total  0 hits"]
        for _ in range(4):  # l cycles the log tabs: Retries → Errors → Events → Breakpoints
            if app.query_one("#logs").active == "tab-breakpoints":
                break
            await pilot.press("l")
        assert app.query_one("#logs").active == "tab-breakpoints"
        await pilot.press("r")
        await wait_state(pilot, "paused")
        await wait_for(pilot, lambda: "1 hit" in str(pane.get_option_at_index(1).prompt), what="the watch's hit")
        pane.focus()
        pane.highlighted = 1
        await pilot.press("space")  # turn the watch off: the run no longer stops at its writes
        assert not app.points.watches["total"].enabled
        assert "disabled" in str(pane.get_option_at_index(1).prompt)
        pane.highlighted = 0
        await pilot.press("d")
        assert "coupon" not in {bp.node for bp in app.points.nodes.values()}
        assert pane.option_count == 1
        await pilot.press("c")
        await wait_state(pilot, "done")
        tab = app.query_one("#logs").get_tab("tab-breakpoints")
        assert str(tab.label) == "Breakpoints (1)"


async def test_e_also_breaks_before_a_fallback_the_user_wrote(tmp_path):
    path = tmp_path / "falls_back.py"
    path.write_text(
        "from flyt_engine import Flow, Node\n"
        "class Mail(Node):\n"
        "    def exec(self, ctx, prep):\n        raise ConnectionError('relay down')\n"
        "    def exec_fallback(self, prep, error):\n        return 'queued'\n"
        "mail = Mail(name='mail')\n"
        "flow = Flow(mail, name='mails')\n"
    )
    app = app_for(path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("e")
        await pilot.press("r")
        await wait_state(pilot, "paused")
        assert app.status.state_text == "paused: mail attempt 1/1 failed: the fallback comes next"
        assert "ConnectionError: relay down" in app.inspector.plain
        await pilot.press("c")
        await wait_state(pilot, "done")  # the fallback ran: no failure to stop at
        await pilot.press("e")
        assert "break on" not in app.status.plain
