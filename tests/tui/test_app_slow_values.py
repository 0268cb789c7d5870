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
