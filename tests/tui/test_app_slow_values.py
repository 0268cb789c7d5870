"""The UI thread never does the slow work (issue 15): a slow repr renders off it, a huge
initial store is copied off it and shown in part."""

from __future__ import annotations

import time

from conftest import SIZE, wait_for, wait_loaded, wait_state

from flyt_tui.app import FlytApp
from flyt_tui.core.rendering import PENDING
from flyt_tui.widgets.store_table import MAX_ROWS

SLOW = """
import sys
sys.path.insert(0, {root!r})
from flyt_engine import Flow, Node
from tests.hostile import SlowRepr

def post(ctx, shared, p, e):
    shared["slow"] = SlowRepr(2.0)
    shared["quick"] = 1

flow = Flow(Node(post=post, name="writer"), name="slow_values")
"""

HUGE = """
from flyt_engine import Flow, Node
SHARED = {{f"k{{i}}": [i] for i in range(300_000)}}
flow = Flow(Node(post=lambda ctx, shared, p, e: shared.set("k0", "changed"), name="touch"), name="huge")
"""


async def test_a_slow_repr_renders_off_the_ui_thread(tmp_path):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    path = tmp_path / "slow.py"
    path.write_text(SLOW.format(root=root))
    app = FlytApp(path, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        started = time.monotonic()
        await pilot.press("r")
        await wait_state(pilot, "done")
        await pilot.pause()
        assert app.store_table.value_text("quick") == "1"
        assert app.store_table.value_text("slow") == PENDING  # the UI went on while it renders
        assert time.monotonic() - started < 1.9
        await wait_for(pilot, lambda: app.store_table.value_text("slow") == "<slow>", timeout=10)


async def test_a_huge_initial_store_is_shown_in_part_and_runs(tmp_path):
    path = tmp_path / "huge.py"
    path.write_text(HUGE.format())
    app = FlytApp(path, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        assert len(app.store_table.store_keys()) == MAX_ROWS
        assert app.store_table.border_subtitle == f"{300_000 - MAX_ROWS} more keys not shown"
        await pilot.press("r")
        await wait_state(pilot, "done", timeout=30)
        await pilot.pause()
        assert app.store_table.value_text("k0") == "'changed'"
        assert len(app.session.store) == 300_000


MANY_SLOW = """
import sys
sys.path.insert(0, {root!r})
from flyt_engine import Flow, Node
from tests.hostile import SlowRepr
SHARED = {{"many": [SlowRepr(0.1) for _ in range(60)]}}
flow = Flow(Node(name="noop"), name="many_slow")
"""


async def test_opening_many_slow_values_waits_one_budget_not_one_each(tmp_path, monkeypatch):
    """Opening a list of 60 slow reprs used to hold the UI thread 60 budgets (3 s)."""
    from pathlib import Path

    from flyt_tui.core import rendering
    from flyt_tui.widgets import inspector as inspector_module

    renderer = rendering.BackgroundRenderer()  # its own: the slow jobs clog no other test
    monkeypatch.setattr(inspector_module, "RENDERER", renderer)
    waited: list[float] = []
    original = renderer.lines

    def counting(*args, wait=None, **kwargs):
        waited.append(renderer.BUDGET if wait is None else max(0.0, wait))
        return original(*args, wait=wait, **kwargs)

    monkeypatch.setattr(renderer, "lines", counting)
    root = str(Path(__file__).resolve().parents[2])
    path = tmp_path / "many.py"
    path.write_text(MANY_SLOW.format(root=root))
    app = FlytApp(path, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        app.store_table.focus()
        await pilot.pause()
        app.store_table.move_cursor(row=app.store_table.store_keys().index("many"))
        await wait_for(pilot, lambda: app.inspector.plain.startswith("many  list"))
        inspector = app.inspector
        number = next(
            n
            for n in range(inspector.last_line + 1)
            if (node := inspector.get_node_at_line(n)) is not None and node.label.plain.lstrip().startswith("value")
        )
        waited.clear()
        inspector.focus()
        inspector.cursor_line = number
        await pilot.press("enter")
        await wait_for(pilot, lambda: "[59]" in inspector.plain, what="the sixty parts")
        assert len(waited) >= 60
        assert sum(waited[:60]) <= renderer.BUDGET * 1.5  # the sixty parts share one budget
        assert PENDING in inspector.plain  # the parts not rendered yet say so
