"""Transitions are keyed by node identity, whatever the nodes' own equality says."""

from __future__ import annotations

from dataclasses import dataclass

from flyt_engine import Flow, Node, SharedStore, run


@dataclass(eq=True)
class Step(Node):
    """A node that compares by value (so it is unhashable): two equal steps are two nodes."""

    label: str = "step"

    def __post_init__(self) -> None:
        super().__init__()

    def post(self, ctx, shared, prep_result, exec_result):
        shared.update("trail", lambda trail: [*(trail or []), self.label])
        return None


def test_equal_dataclass_nodes_route_independently():
    first, second, end = Step("same"), Step("same"), Step("end")
    assert first == second and first is not second
    flow = Flow(first).connect(first, "default", second).connect(second, "default", end)
    store = SharedStore()
    run(flow, store)
    assert store["trail"] == ["same", "same", "end"]


def test_reconnecting_after_a_run_takes_effect():
    a = Node(post=lambda ctx, s, p, e: s.set("last", "a"), name="a")
    b = Node(post=lambda ctx, s, p, e: s.set("last", "b"), name="b")
    c = Node(post=lambda ctx, s, p, e: s.set("last", "c"), name="c")
    flow = Flow(a).connect(a, "default", b)
    store = SharedStore()
    run(flow, store)
    assert store["last"] == "b"
    flow.connect(a, "default", c)  # replaces the target: the cached routes must follow
    run(flow, store)
    assert store["last"] == "c"
    flow.connect(c, "default", b)  # a new source
    run(flow, store)
    assert store["last"] == "b"
