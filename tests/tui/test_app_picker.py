"""Several flows in one module: the picker at start, switching later, and the command palette."""

from __future__ import annotations

from conftest import SIZE, flow_path, tree_text, wait_for, wait_loaded, wait_state

from flyt_tui.app import FlytApp
from flyt_tui.widgets.flow_picker import FlowPicker


async def test_the_picker_opens_when_a_module_has_several_flows():
    app = FlytApp(flow_path("several"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: isinstance(app.screen, FlowPicker), what="the picker")
        picker = app.screen
        assert [name for name, _ in picker.choices] == ["greeting_flow", "farewell_flow"]
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FlowPicker))
        await pilot.pause()
        assert app.entry.name == "farewell_flow"
        assert tree_text(app).splitlines()[0].startswith("○ farewell")
        assert "farewell" in app.status.plain
        await pilot.press("r")
        await wait_state(pilot, "done")
        assert app.store_table.value_text("said") == "'bye'"


async def test_switch_flow_from_the_keyboard_and_escape_keeps_the_current_one():
    app = FlytApp(flow_path("several"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: isinstance(app.screen, FlowPicker))
        await pilot.press("enter")  # the first one
        await wait_for(pilot, lambda: not isinstance(app.screen, FlowPicker))
        assert app.entry.name == "greeting_flow"
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowPicker))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FlowPicker))
        assert app.entry.name == "greeting_flow"
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowPicker))
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.entry.name == "farewell_flow")


async def test_one_flow_opens_directly_and_switch_is_not_offered():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.pause()
        assert not isinstance(app.screen, FlowPicker)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Switch flow" not in titles
        for title in ("Run / restart", "Next phase", "Next node", "Continue", "Toggle breakpoint", "Stop"):
            assert title in titles
        assert app.check_action("switch_flow", ()) is False


async def test_the_command_palette_runs_the_same_actions():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"next node")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_state(pilot, "paused")
        assert app.session.paused_at.node == "basic"


async def test_footer_shows_the_debugger_keys():
    app = FlytApp(flow_path("basic"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        shown = {binding.key: binding.description for _, binding, enabled, _ in app.screen.active_bindings.values()}
        for key, description in {
            "r": "Run",
            "n": "Next phase",
            "N": "Next node",
            "c": "Continue",
            "b": "Breakpoint",
            "x": "Stop",
            "q": "Quit",
        }.items():
            assert shown.get(key) == description
