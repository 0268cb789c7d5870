"""Recorded runs in the workbench: --record streams each run into a bundle; a bundle opens
read-only in the same screen (graph, timeline, store at every step, logs, batches) without
importing the module; keys that would run explain themselves; R offers to open the module
and forks from the recorded step."""

from __future__ import annotations

import shutil
import sys

from conftest import SIZE, flow_path, select_node, wait_for, wait_loaded, wait_state
from test_app_debugger import select_store_key
from textual.widgets import Input

from flyt_tui.app import FlytApp
from flyt_tui.core.loading import load_module
from flyt_tui.core.recording import start_recording
from flyt_tui.core.recording_reader import read_head
from flyt_tui.headless import run_headless
from flyt_tui.screens.prompt import Prompt


def record_headless(module, bundle) -> None:
    loaded = load_module(module)
    entry = loaded.entries[0]
    writer = start_recording(bundle, entry.flow, loaded.initial_store, module=module, entry=entry.name)
    run_headless(entry.flow, loaded.initial_store, record=writer)


async def wait_read(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.session is not None and app.session.finished, what="the recording to be read")
    await wait_for(pilot, lambda: app.status.state in ("done", "failed", "stopped"), what="the status")


def copy_flow(tmp_path, name: str):
    target = tmp_path / f"{name}.py"
    shutil.copy(flow_path(name), target)
    return target


async def test_record_in_the_workbench_then_reopen_shows_the_same_steps_and_store(tmp_path):
    bundle = tmp_path / "chat.flyt.jsonl"
    app = FlytApp(flow_path("chat_turns"), watch=False, stable_output=True, record=bundle)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        steps = app.travel.timeline.steps
        final = dict(app.session.store.get_all())
        await wait_for(pilot, lambda: not app.outputs.active and bundle.exists() and b'"end"' in bundle.read_bytes())
        await pilot.press("r")  # the second run goes to chat.2.flyt.jsonl
        await wait_state(pilot, "done")
    assert (tmp_path / "chat.2.flyt.jsonl").exists()
    replay = FlytApp(bundle, watch=False, stable_output=True)
    async with replay.run_test(size=SIZE) as pilot:
        await wait_read(pilot)
        assert replay.status.state == "done"
        assert "recorded" in replay.status.state_text
        assert replay.travel.timeline.steps == steps
        assert replay.session.store.get_all() == final
        await pilot.press("home", "right_curly_bracket", "right_curly_bracket")
        assert replay.status.state_text == "viewing step 3/5 (turn · prep)"
        assert replay.store_table.value_text("messages") == "['message 0']"
        assert replay.store_table.writer_of("messages") == "turn"


async def test_a_recording_opens_without_importing_the_module_and_refuses_to_run(tmp_path):
    module = copy_flow(tmp_path, "retries")
    bundle = tmp_path / "retries.flyt.jsonl"
    record_headless(module, bundle)
    module.write_text("raise SystemExit('a recording must never import me')\n")
    before = set(sys.modules)
    app = FlytApp(bundle, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_read(pilot)
        assert app.load_error is None
        assert "flaky" in app.flow_tree.node_names or app.flow_tree.node_names
        assert app.retry_log.count > 0  # the recorded retries are in the log
        for key in ("r", "n", "c", "b", "colon"):
            await pilot.press(key)
            await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert sum("this is a recording" in m for m in messages) >= 5
        assert app.runs == 1  # nothing ran
    assert not [name for name in set(sys.modules) - before if "retries" in name]


async def test_fork_from_a_recording_opens_the_module_and_runs_from_the_recorded_step(tmp_path):
    module = copy_flow(tmp_path, "chat_turns")
    bundle = tmp_path / "chat.flyt.jsonl"
    record_headless(module, bundle)
    app = FlytApp(bundle, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_read(pilot)
        await pilot.press("home", "right_curly_bracket", "right_curly_bracket")
        assert app.status.state_text == "viewing step 3/5 (turn · prep)"
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, Prompt)
        assert str(module) in app.screen.title_text
        assert app.screen.query_one(Input).value == "yes"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.runs == 2 and app.session is not None and app.session.finished)
        await wait_state(pilot, "done")
        assert app.recording is None
        assert "forked from run 1 at step 3 (turn · prep)" in app.timeline_strip.plain
        assert app.session.store["messages"] == ["message 0", "message 1", "message 2"]
        assert app.entry.flow.start.prep_calls == 2  # only the turns from the fork on ran here


async def test_fork_is_refused_with_the_reason_when_the_module_is_gone(tmp_path):
    module = copy_flow(tmp_path, "chat_turns")
    bundle = tmp_path / "chat.flyt.jsonl"
    record_headless(module, bundle)
    module.unlink()
    app = FlytApp(bundle, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_read(pilot)
        await pilot.press("home", "R")
        await pilot.pause()
        assert not isinstance(app.screen, Prompt)
        assert any("not on this machine" in n.message for n in app._notifications)


async def test_a_bundle_cut_off_says_the_run_did_not_end_and_shows_what_it_has(tmp_path):
    bundle = tmp_path / "chat.flyt.jsonl"
    record_headless(flow_path("chat_turns"), bundle)
    data = bundle.read_bytes()
    bundle.write_bytes(data[: int(len(data) * 0.75)])
    app = FlytApp(bundle, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_read(pilot)
        assert app.status.state == "stopped"
        assert app.status.state_text == "recording ends here"
        assert len(app.travel.timeline) > 0
        await pilot.press("home")
        assert app.status.state == "viewing"


async def test_not_a_bundle_says_so_and_the_app_stays_up(tmp_path):
    bundle = tmp_path / "junk.flyt.jsonl"
    bundle.write_text("this is not json\n")
    app = FlytApp(bundle, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.load_error is not None)
        assert "not a flyt recording" in app.load_error.message
        assert app.status.state == "error"
        await pilot.press("r")  # no flow: says so, does not crash
        await pilot.pause()


def test_read_head_names_the_module_and_flow(tmp_path):
    bundle = tmp_path / "chat.flyt.jsonl"
    record_headless(flow_path("chat_turns"), bundle)
    head = read_head(bundle)
    assert head.flow_name == "chat"
    assert head.module == flow_path("chat_turns")


async def test_edits_at_a_past_step_of_a_recording_go_into_the_fork(tmp_path):
    module = copy_flow(tmp_path, "chat_turns")
    bundle = tmp_path / "chat.flyt.jsonl"
    record_headless(module, bundle)
    app = FlytApp(bundle, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_read(pilot)
        await pilot.press("home", "right_curly_bracket", "right_curly_bracket", "right_square_bracket")
        assert app.status.state_text == "viewing step 3/5 (turn · exec)"
        app.store_table.focus()
        select_store_key(app, "messages")
        app._write_edit("messages", (["edited"],))
        await pilot.press("R")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.runs == 2 and app.session is not None and app.session.finished)
        assert app.session.store["messages"] == ["edited", "message 1", "message 2"]


async def test_save_this_run_writes_a_bundle_from_the_timeline_that_reopens_the_same(tmp_path):
    from flyt_tui.core.recording_reader import RunReader, stand_in_flow
    from flyt_tui.core.tagged import encode
    from flyt_tui.core.timeline import Timeline

    app = FlytApp(flow_path("retries"), watch=False, stable_output=True)
    target = tmp_path / "saved.flyt.jsonl"
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        app.action_save_run()
        await pilot.pause()
        assert any("no run to save" in n.message for n in app._notifications)
        await pilot.press("r")
        await wait_state(pilot, "done", "failed")
        live = app.travel.timeline
        app.action_save_run()
        await pilot.pause()
        assert isinstance(app.screen, Prompt)
        field = app.screen.query_one(Input)
        assert field.value.endswith("retries.run1.flyt.jsonl")
        field.value = str(tmp_path / "saved.json")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, Prompt)  # refused: not a bundle name
        field.value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("saved to" in n.message for n in app._notifications))
    head = read_head(target)
    _flow, ids = stand_in_flow(head)
    reader = RunReader(head, ids)
    replay = Timeline(head.store)
    for records, kept in reader.batches():
        replay.ingest(records, kept)
    assert reader.state.ended
    assert list(replay.marks) == list(live.marks)
    for index in range(len(live)):
        assert encode(replay.store_at(index)) == encode(live.store_at(index))
        assert replay.moment(index).words == live.moment(index).words
    assert [replay.action_of(step) for step in range(replay.steps)] == [live.action_of(s) for s in range(live.steps)]


async def test_the_inspector_shows_no_source_for_a_recorded_node(tmp_path):
    bundle = tmp_path / "batches.flyt.jsonl"
    record_headless(flow_path("batches"), bundle)
    app = FlytApp(bundle, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_read(pilot)
        select_node(app, "squares")  # a BatchNode: its stand-in has a process function of its own
        await pilot.pause()
        assert "squares" in app.inspector.plain
        assert "recording_reader" not in app.inspector.plain and "source" not in app.inspector.plain
