"""The gate protocol's filters (``Context.with_gate``): ``nodes`` and ``keys`` narrow where
an armed gate is called; a gate with only ``armed`` is called at every checkpoint."""

from __future__ import annotations

from typing import Any

import pytest

from flyt_engine import Context, Flow, Node, SharedStore, run
from flyt_engine.events import ExecFailed, NodeFailed, PhaseStarted, StoreChanged, field_of, kind_of, node_of


class Writer(Node):
    def __init__(self, name: str, key: str) -> None:
        super().__init__(name=name)
        self.key = key

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> None:
        shared.set(self.key, self.name)


def two_writers() -> Flow:
    a, b = Writer("a", "x"), Writer("b", "y")
    return Flow(a, name="pair").connect(a, "default", b)


class Gate:
    def __init__(self, **filters: Any) -> None:
        self.armed = filters.pop("armed", True)
        for name, value in filters.items():
            setattr(self, name, value)
        self.seen: list[tuple[Any, ...]] = []

    def __call__(self, record: tuple[Any, ...]) -> None:
        self.seen.append(record)


def gated(gate: Gate, flow: Node | None = None) -> list[tuple[Any, ...]]:
    ctx = Context.background().with_recorder(lambda record: None).with_gate(gate)
    run(flow or two_writers(), SharedStore(), ctx=ctx)
    return gate.seen


def test_a_gate_with_only_armed_is_called_at_every_checkpoint_and_every_write():
    seen = gated(Gate())
    assert {node_of(r) for r in seen if kind_of(r) is PhaseStarted} == {"pair", "a", "b"}
    assert [field_of(r, "key") for r in seen if kind_of(r) is StoreChanged] == ["x", "y"]


def test_nodes_limits_the_phase_checkpoints_to_those_nodes():
    seen = gated(Gate(nodes=frozenset({"b"}), armed_writes=False, keys=None))
    assert seen and {node_of(r) for r in seen} == {"b"}
    assert not [r for r in seen if kind_of(r) is StoreChanged]


def test_keys_limits_the_write_checkpoints_to_those_keys():
    seen = gated(Gate(armed=False, nodes=None, armed_writes=True, keys=frozenset({"y"})))
    assert [(kind_of(r), field_of(r, "key")) for r in seen] == [(StoreChanged, "y")]


def test_a_node_filter_applies_to_attempts_and_failures_too():
    def fail(ctx: Context, prep: Any) -> Any:
        raise ValueError("no")

    broken = Node(exec=fail, max_retries=2, name="broken")
    flow = Flow(broken, name="f")
    for nodes, expected in ((frozenset({"other"}), []), (frozenset({"broken"}), [ExecFailed, ExecFailed, NodeFailed])):
        gate = Gate(nodes=nodes, armed_writes=False, keys=None)
        with pytest.raises(Exception, match="no"):
            gated(gate, flow)
        kinds = [kind_of(r) for r in gate.seen if kind_of(r) in (ExecFailed, NodeFailed)]
        assert kinds[:3] == expected
