"""Hot reload in the workbench: good edits, broken edits, edits during a run, a fix after a bad start."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import SIZE, select_node, tree_text, wait_for, wait_loaded, wait_state

from flyt_tui.app import FlytApp


async def edit_until(pilot, path: Path, text: str, predicate, timeout: float = 10.0) -> None:
    """Write ``text`` to ``path`` until ``predicate()`` holds (the watcher may start after the first write)."""
    deadline = time.monotonic() + timeout
    while True:
        path.write_text(text)
        try:
            await wait_for(pilot, predicate, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


async def test_a_good_edit_reloads_and_keeps_breakpoints_expansion_and_cursor(flow_copy):
    path = flow_copy("basic")
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "transform")
        await pilot.press("b")
        select_node(app, "save")
        await pilot.press("b")
        validate_line = app.flow_tree.node_line(app.flow_tree.find_key("validate"))
        validate_line.collapse()
        select_node(app, "fetch")
        new = path.read_text().replace("save = Save()", "save = Save(name='persist')")
        await edit_until(pilot, path, new, lambda: app.loads >= 2)
        await pilot.pause()
        text = tree_text(app)
        assert "save → ○ persist" in text and "save → ○ save" not in text
        assert app.breakpoints == {"transform"}  # "save" is gone, "transform" survived
        assert app.flow_tree.cursor_node.data.name == "fetch"
        new_validate = app.flow_tree.node_line(app.flow_tree.find_key("validate"))
        assert not new_validate.is_expanded
        assert app.flow_tree.node_line(app.flow_tree.find_key("transform")).is_expanded
        assert "valid → ● ○ transform" in tree_text(app)
        assert app.status.reload_text == "reloaded"


async def test_a_broken_edit_shows_the_error_and_keeps_the_last_good_graph(flow_copy):
    path = flow_copy("basic")
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        before = tree_text(app)
        good = path.read_text()
        await edit_until(pilot, path, good + "\ndef broken(:\n", lambda: app.load_error is not None)
        assert app.status.reload_text.startswith("reload failed: SyntaxError")
        assert tree_text(app) == before
        assert "SyntaxError" in app.error_log.visible_text()
        assert "reload failed" in app.inspector.plain
        # the last good flow still runs, and the app says that it does
        await pilot.press("r")
        await wait_state(pilot, "done")
        assert app.status.reload_text == "basic.py does not load; running the last good version"
        # an exception at import is reported the same way
        await edit_until(
            pilot, path, good + "\nraise RuntimeError('import boom')\n", lambda: "import boom" in app.status.reload_text
        )
        # and a fix loads
        await edit_until(
            pilot, path, good.replace("save = Save()", "save = Save(name='fixed')"), lambda: app.loads >= 2
        )
        await pilot.pause()
        assert "fixed" in tree_text(app)
        assert app.status.reload_text == "reloaded"


async def test_an_edit_during_a_run_applies_when_the_run_ends(flow_copy):
    path = flow_copy("basic")
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("n")
        await wait_state(pilot, "paused")
        new = path.read_text().replace("save = Save()", "save = Save(name='later')")
        await edit_until(pilot, path, new, lambda: app.reload_pending)
        assert app.status.reload_text == "change detected — reload applies when the run ends"
        assert app.loads == 1 and "later" not in tree_text(app)
        await pilot.press("c")
        await wait_for(pilot, lambda: app.loads == 2, what="the reload after the run")
        await pilot.pause()
        assert "save → ○ later" in tree_text(app)
        assert app.status.reload_text == "reloaded"


async def test_a_broken_file_at_start_opens_with_the_error_and_a_fix_loads(tmp_path):
    path = tmp_path / "flowmod.py"
    path.write_text("from flyt_engine import Flow, Node\ndef broken(:\n")
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.load_error is not None)
        await pilot.pause()
        assert app.is_running
        assert app.status.state_text == "load failed"
        assert "SyntaxError" in app.status.plain
        assert tree_text(app).startswith("⚠ could not load flowmod.py")
        assert "SyntaxError" in app.inspector.plain
        await pilot.press("r")  # nothing to run: the app says so and stays up
        assert app.session is None
        fixed = "from flyt_engine import Flow, Node\nhello = Node(name='hello')\nflow = Flow(hello, name='fixed')\n"
        await edit_until(pilot, path, fixed, lambda: app.loads >= 1)
        await pilot.pause()
        assert tree_text(app).splitlines()[0].startswith("○ fixed")
        await pilot.press("r")
        await wait_state(pilot, "done")


async def test_no_watch_never_reloads(flow_copy):
    path = flow_copy("basic")
    app = FlytApp(path, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        path.write_text(path.read_text().replace("save = Save()", "save = Save(name='nope')"))
        await pilot.pause(1.0)
        assert app.loads == 1 and "nope" not in tree_text(app)
        assert not [worker for worker in app.workers if worker.group == "watch"]


async def test_saving_a_sibling_module_the_flow_imports_reloads_it(tmp_path):
    (tmp_path / "helpers.py").write_text("NAME = 'first_name'\n")
    path = tmp_path / "main_flow.py"
    path.write_text(
        "from flyt_engine import Flow, Node\n"
        "import helpers\n"
        "step = Node(name=helpers.NAME)\n"
        "flow = Flow(step, name='sibling')\n"
    )
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        assert "first_name" in tree_text(app)
        await edit_until(pilot, tmp_path / "helpers.py", "NAME = 'second_name'\n", lambda: app.loads >= 2)
        await pilot.pause()
        assert "second_name" in tree_text(app) and "first_name" not in tree_text(app)


async def test_a_module_without_a_flow_opens_with_the_error(tmp_path):
    path = tmp_path / "empty_flow.py"
    path.write_text("X = 1\n")
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.load_error is not None)
        await pilot.pause()
        assert app.status.state_text == "load failed"
        assert tree_text(app).startswith("⚠ could not load empty_flow.py")
        text = "from flyt_engine import Flow, Node\nflow = Flow(Node(name='now_here'), name='late')\n"
        await edit_until(pilot, path, text, lambda: app.loads >= 1)
        await pilot.pause()
        assert "now_here" in tree_text(app)
        assert app.status.state == "idle"


async def test_r_during_a_run_with_a_pending_change_runs_the_new_code(flow_copy):
    path = flow_copy("basic")
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("n")
        await wait_state(pilot, "paused")
        old = app.session
        new = path.read_text().replace("save = Save()", "save = Save(name='newer')")
        await edit_until(pilot, path, new, lambda: app.reload_pending)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.loads == 2, what="the reload")
        await wait_state(pilot, "done")
        assert old.finished and app.session is not old
        assert app.store_table.writer_of("saved") == "newer"


async def test_a_pending_reload_keeps_the_stopped_runs_store_and_logs(flow_copy):
    path = flow_copy("basic")
    app = FlytApp(path, watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        select_node(app, "validate")
        await pilot.press("b", "r")
        await wait_state(pilot, "paused")
        assert app.store_table.writer_of("rows") == "fetch"
        events_before = len(app.history.nodes)
        new = path.read_text().replace("save = Save()", "save = Save(name='after_stop')")
        await edit_until(pilot, path, new, lambda: app.reload_pending)
        await pilot.press("x")
        await wait_for(pilot, lambda: app.loads == 2, what="the reload after the stop")
        await pilot.pause()
        assert "after_stop" in tree_text(app)
        assert app.status.state == "stopped"
        assert app.store_table.writer_of("rows") == "fetch"  # the stopped run's store is still shown
        assert len(app.history.nodes) == events_before


async def test_a_watcher_that_dies_says_so_on_screen(flow_copy, monkeypatch):
    import flyt_tui.core.reload as reload_module

    def broken_watch(directory, stop):
        raise OSError("inotify watch limit reached")
        yield  # pragma: no cover - a generator, as the real one

    monkeypatch.setattr(reload_module, "watch_python_files", broken_watch)
    app = FlytApp(flow_copy("basic"), watch=True, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: "hot reload stopped" in app.status.reload_text, what="the watcher's failure")
        assert "inotify watch limit reached" in app.status.reload_text
        assert app.is_running
