"""Dask batches in the workbench (issue 15): the cluster's worker processes start although
Textual's sys.stderr has no file descriptor, and the batch runs exactly as headless."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed", reason="dask[distributed] is not installed: pip install -e '.[dask]'")

from conftest import SIZE, wait_loaded, wait_state

from flyt_tui.app import FlytApp

MODULE = """
from flyt_engine import BatchNode, Flow
from flyt_engine.dask import executor

def double(ctx, item):
    return item * 2

def make_flow():
    return Flow(BatchNode(double, concurrent=True, executor=executor(n_workers=1), name="double"), name="on_dask")

def build_flow():
    return make_flow()

SHARED = {"items": [1, 2, 3]}
"""


async def test_a_batch_on_a_local_dask_cluster_runs_in_the_workbench(tmp_path):
    path = tmp_path / "on_dask.py"
    path.write_text(MODULE)
    app = FlytApp(path, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done", "failed", timeout=60)
        assert app.status.state == "done", app.status.plain
        assert app.session.store["results"] == [2, 4, 6]
