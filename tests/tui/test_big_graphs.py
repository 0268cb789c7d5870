"""Big graphs (issue 15): a 1,000-node chain and a 5,000-node graph open, run and quit."""

from __future__ import annotations

from conftest import SIZE, wait_loaded, wait_state

from flyt_tui.app import FlytApp

CHAIN = """
from flyt_engine import Flow, Node
nodes = [Node(name=f"n{i}") for i in range(1000)]
flow = Flow(nodes[0], name="chain")
for a, b in zip(nodes, nodes[1:]):
    flow.connect(a, "default", b)
"""

WIDE = """
from flyt_engine import Flow, Node
hub = Node(name="hub", post=lambda ctx, shared, p, e: "to1")
flow = Flow(hub, name="wide")
for i in range(4999):
    flow.connect(hub, f"to{i}", Node(name=f"leaf{i}"))
"""


async def _open_run_quit(path, steps: str) -> None:
    app = FlytApp(path, watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        assert app.load_error is None
        before = app.flow_tree.cursor_line
        await pilot.press("down", "down")
        assert app.flow_tree.cursor_line == before + 2  # the tree stays responsive
        await pilot.press("r")
        await wait_state(pilot, "done", timeout=60)
        assert steps in app.status.plain
        await pilot.press("q")


async def test_a_thousand_node_chain_opens_runs_and_quits(tmp_path):
    path = tmp_path / "chain.py"
    path.write_text(CHAIN)
    await _open_run_quit(path, "1001 steps")


async def test_a_five_thousand_node_graph_opens_runs_and_quits(tmp_path):
    path = tmp_path / "wide.py"
    path.write_text(WIDE)
    await _open_run_quit(path, "3 steps")
