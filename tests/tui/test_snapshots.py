"""Screenshots of the workbench at 160×48: loaded, paused at a breakpoint, done, failed, broken reload.

Sync tests (pytest-textual-snapshot); the app runs with ``stable_output`` (no durations,
rates or clock times, no fading highlights) and without animations. The headline sample
``sample_flows/etl.py`` is used when present, else the test flow ``basic``. Update with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at every changed SVG.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from conftest import SIZE, flow_path, wait_for, wait_loaded, wait_state

from flyt_tui.app import FlytApp

ETL = Path(__file__).resolve().parents[2] / "sample_flows" / "etl.py"
FLOW = ETL if ETL.exists() else flow_path("basic")
# no delays, and a database path that reads the same on every machine (the inspector shows it)
FAST = {"pace": 0, "db_path": "/tmp/flyt-snapshot-etl.db"} if FLOW == ETL else {}
STOP_AT = "notify" if FLOW == ETL else "transform"


def make_app(path: Path = FLOW, **options) -> FlytApp:
    app = FlytApp(path, watch=False, stable_output=True, **options)
    app.animation_level = "none"
    return app


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def test_flow_loaded(snap_compare):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await settle(pilot)

    assert snap_compare(make_app(overrides=FAST), terminal_size=SIZE, run_before=run_before)


def test_paused_at_breakpoint(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.session.paused_at is not None and app.session.paused_at.node == STOP_AT)
        await pilot.press("n")  # on to the exec phase: the inspector shows the prep result
        await wait_for(pilot, lambda: app.status.state_text == f"paused at {STOP_AT} (exec)")
        await settle(pilot)

    app = make_app(overrides=FAST, breakpoints=[STOP_AT])
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_finished_run(snap_compare):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done", timeout=30)
        await settle(pilot)

    assert snap_compare(make_app(overrides=FAST), terminal_size=SIZE, run_before=run_before)


def test_failed_run(snap_compare):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "failed", timeout=30)
        await settle(pilot)

    app = make_app(overrides={**FAST, "load_failures": 5}) if FLOW == ETL else make_app(flow_path("failing"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_broken_reload(snap_compare):
    # a fixed directory (not tmp_path) so that the traceback in the screenshot is the same every time
    directory = Path(tempfile.gettempdir()) / "flyt-snapshot-reload"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    path = directory / FLOW.name
    shutil.copy(FLOW, path)

    async def run_before(pilot):
        app = pilot.app
        await wait_loaded(pilot)
        text = path.read_text()
        path.write_text(text + "\n\ndef broken(:\n    pass\n")
        app.action_reload()
        await wait_for(pilot, lambda: app.load_error is not None)
        await settle(pilot)

    try:
        assert snap_compare(make_app(path, overrides=FAST), terminal_size=SIZE, run_before=run_before)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


CHECKOUT = Path(__file__).resolve().parents[2] / "sample_flows" / "checkout_bug.py"


def test_paused_at_a_data_breakpoint(snap_compare):
    """The checkout bug found: the third write to `total`, by shipping, old and new value."""

    async def run_before(pilot):
        app = pilot.app
        await wait_loaded(pilot)
        await pilot.press("r")
        for writer in ("subtotal", "coupon", "shipping"):
            await wait_for(pilot, lambda writer=writer: f"total written by {writer}" in app.status.state_text)
            if writer != "shipping":
                await pilot.press("c")
        await settle(pilot)

    assert snap_compare(make_app(CHECKOUT, watches=["total"]), terminal_size=SIZE, run_before=run_before)


def test_paused_at_an_error(snap_compare):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "paused")
        await settle(pilot)

    app = make_app(flow_path("failing"), break_on=["error"])
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_viewing_a_past_step(snap_compare):
    """After a run: the timeline cursor on the second chat turn's post, the store as it was then."""

    async def run_before(pilot):
        app = pilot.app
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        await pilot.press("home", "right_curly_bracket", "right_curly_bracket")
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        await wait_for(pilot, lambda: app.status.state_text == "viewing step 3/5 (turn · write messages)")
        await settle(pilot)

    assert snap_compare(make_app(flow_path("chat_turns")), terminal_size=SIZE, run_before=run_before)
