"""graph.describe() and to_mermaid(): a flow's structure as data (API.md "Events", flyt_engine.graph)."""

import pytest

from flyt_engine import DEFAULT_ACTION, BatchFlow, BatchNode, Context, Flow, Node, SharedStore, run
from flyt_engine.graph import Graph, GraphNode, describe, to_mermaid

pytestmark = pytest.mark.usefixtures("each_wiring")


def by_id(graph: Graph) -> dict[int, GraphNode]:
    return {n.id: n for n in graph.nodes}


def branching():
    check = Node(name="check")
    approve = Node(name="approve")
    reject = Node(name="reject")
    notify = Node(name="notify")
    flow = Flow(check, name="review")
    flow.connect(check, "ok", approve).connect(check, "bad", reject)
    flow.connect(approve, DEFAULT_ACTION, notify).connect(reject, DEFAULT_ACTION, notify)
    flow.connect(notify, "done", None)
    return flow, check, approve, reject, notify


def test_describe_branching_flow_nodes_edges_start():
    flow, check, approve, reject, notify = branching()
    graph = describe(flow)
    assert isinstance(graph, Graph)
    assert graph.start == id(check)
    nodes = by_id(graph)
    assert set(nodes) == {id(check), id(approve), id(reject), id(notify)}
    assert len(graph.nodes) == 4  # each node once
    for obj in (check, approve, reject, notify):
        gn = nodes[id(obj)]
        assert isinstance(gn, GraphNode)
        assert gn.name == obj.name
        assert gn.kind == "node"
        assert gn.children is None
    assert sorted(graph.edges, key=repr) == sorted(
        [
            (id(check), "ok", id(approve)),
            (id(check), "bad", id(reject)),
            (id(approve), DEFAULT_ACTION, id(notify)),
            (id(reject), DEFAULT_ACTION, id(notify)),
            (id(notify), "done", None),
        ],
        key=repr,
    )


def test_describe_is_the_flow_own_graph_not_a_wrapper():
    flow, check, *_ = branching()
    graph = describe(flow)
    assert id(flow) not in by_id(graph)
    assert graph.start == id(check)


def test_describe_single_node():
    node = Node(name="solo")
    graph = describe(node)
    assert graph.start == id(node)
    assert [(n.id, n.name, n.kind, n.children) for n in graph.nodes] == [(id(node), "solo", "node", None)]
    assert graph.edges == []


def test_sub_flow_children_and_edge_into_sub_flow():
    first = Node(name="first")
    leaf_a, leaf_b = Node(name="leaf_a"), Node(name="leaf_b")
    inner = Flow(leaf_a, name="inner").connect(leaf_a, "next", leaf_b)
    last = Node(name="last")
    outer = Flow(first, name="outer").connect(first, DEFAULT_ACTION, inner).connect(inner, DEFAULT_ACTION, last)
    graph = describe(outer)
    nodes = by_id(graph)
    assert set(nodes) == {id(first), id(inner), id(last)}
    sub = nodes[id(inner)]
    assert sub.kind == "flow"
    assert sub.name == "inner"
    assert isinstance(sub.children, Graph)
    assert sub.children.start == id(leaf_a)
    assert set(by_id(sub.children)) == {id(leaf_a), id(leaf_b)}
    assert sub.children.edges == [(id(leaf_a), "next", id(leaf_b))]
    assert (id(first), DEFAULT_ACTION, id(inner)) in graph.edges
    assert (id(inner), DEFAULT_ACTION, id(last)) in graph.edges


def test_loops_appear_once():
    a, b = Node(name="a"), Node(name="b")
    flow = Flow(a).connect(a, "go", b).connect(b, "back", a).connect(a, "self", a)
    graph = describe(flow)
    assert [n.id for n in graph.nodes].count(id(a)) == 1
    assert [n.id for n in graph.nodes].count(id(b)) == 1
    assert len(graph.nodes) == 2
    assert sorted(graph.edges, key=repr) == sorted(
        [(id(a), "go", id(b)), (id(b), "back", id(a)), (id(a), "self", id(a))], key=repr
    )


def test_self_containing_flow_describes_inner_reference_without_children():
    check = Node(post=lambda c, s, p, e: "recurse" if s.update("depth", lambda d: d + 1, 0) < 3 else "stop")
    check.name = "check"
    process = Node(name="process")
    flow = Flow(check, name="recursive")
    flow.connect(check, "recurse", process).connect(process, DEFAULT_ACTION, flow).connect(check, "stop", None)
    graph = describe(flow)  # must terminate
    nodes = by_id(graph)
    assert set(nodes) == {id(check), id(process), id(flow)}
    assert nodes[id(flow)].kind == "flow"
    assert nodes[id(flow)].children is None
    assert (id(process), DEFAULT_ACTION, id(flow)) in graph.edges
    store = SharedStore()
    assert run(flow, store) == "stop"  # and it runs


def test_flow_nested_in_itself_two_levels_stops_at_the_repeat():
    leaf = Node(name="leaf")
    outer = Flow(name="outer")
    inner = Flow(leaf, name="inner").connect(leaf, "up", outer)
    outer.start = inner
    graph = describe(outer)
    inner_node = by_id(graph)[id(inner)]
    assert inner_node.children is not None
    back = by_id(inner_node.children)[id(outer)]
    assert back.kind == "flow"
    assert back.children is None


def test_same_sub_flow_twice_is_described_in_both_places():
    leaf = Node(name="leaf")
    shared_sub = Flow(leaf, name="sub")
    a = Flow(shared_sub, name="a")
    b = Flow(shared_sub, name="b")
    outer = Flow(a, name="outer").connect(a, DEFAULT_ACTION, b)
    graph = describe(outer)
    for parent in (a, b):
        children = by_id(graph)[id(parent)].children
        assert children is not None
        assert by_id(children)[id(shared_sub)].children is not None


def test_batch_flow_template_is_described_once():
    calls = []

    def factory():
        calls.append(1)
        step = Node(name="step")
        return Flow(step, name="per_item")

    batch = BatchFlow(factory, lambda ctx, shared: [{"i": 1}], name="fanout")
    flow = Flow(batch, name="outer")
    graph = describe(flow)
    assert len(calls) == 1
    node = by_id(graph)[id(batch)]
    assert node.kind == "batch_flow"
    assert node.name == "fanout"
    assert node.children is not None
    assert [n.name for n in node.children.nodes] == ["step"]


def test_batch_node_kind():
    batch = BatchNode(lambda ctx, item: item, name="items")
    graph = describe(Flow(batch))
    assert by_id(graph)[id(batch)].kind == "batch_node"


def test_unreachable_connected_nodes_and_none_targets():
    a, orphan, target = Node(name="a"), Node(name="orphan"), Node(name="target")
    flow = Flow(a).connect(a, "end", None).connect(orphan, "x", target)
    graph = describe(flow)
    assert (id(a), "end", None) in graph.edges
    assert {id(a), id(orphan), id(target)} <= set(by_id(graph))


def test_describe_non_node_is_type_error():
    with pytest.raises(TypeError):
        describe("flow")  # type: ignore[arg-type]


def test_graph_ids_match_event_node_ids():
    flow, *_ = branching()
    events = []
    flow.start.post = lambda c, s, p, e: "ok"
    run(flow, ctx=Context.background().with_observer(events.append))
    ids = set(by_id(describe(flow)))
    event_ids = {e.node_id for e in events if len(e.path) == 2 and e.kind == "node_started"}
    assert event_ids and event_ids <= ids


# -- mermaid ----------------------------------------------------------------------------------------
def test_to_mermaid_contains_names_and_action_labels():
    flow, *_ = branching()
    text = to_mermaid(describe(flow))
    assert isinstance(text, str)
    assert text.lstrip().startswith(("flowchart", "graph"))
    for name in ("check", "approve", "reject", "notify"):
        assert name in text
    for action in ("ok", "bad", DEFAULT_ACTION, "done"):
        assert action in text


def test_to_mermaid_includes_sub_flow_contents():
    leaf = Node(name="deep_leaf")
    inner = Flow(leaf, name="inner_flow")
    text = to_mermaid(describe(Flow(inner, name="outer")))
    assert "inner_flow" in text
    assert "deep_leaf" in text


def test_to_mermaid_of_self_containing_flow_terminates():
    a = Node(name="a")
    flow = Flow(a, name="me")
    flow.connect(a, "again", flow)
    text = to_mermaid(describe(flow))
    assert "again" in text and "me" in text


def test_to_mermaid_is_the_same_text_for_the_same_flow():
    first, *_ = branching()
    second, *_ = branching()
    text = to_mermaid(describe(first))
    assert text == to_mermaid(describe(second))  # ids numbered as drawn, not id()s
    assert 'n1["check"]' in text
