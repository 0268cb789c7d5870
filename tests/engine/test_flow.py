"""Flows: transitions, orchestration, nesting, retries and argument checks (API.md "Flows")."""

import pytest
from async_style import NESTED, skip_when_async

from flyt_engine import DEFAULT_ACTION, Cancelled, Context, Flow, FlytError, Node, NodeError, SharedStore, run

# Every test here runs unobserved, with a recorder, with an observer and with a disarmed gate.
pytestmark = pytest.mark.usefixtures("each_driver", "each_wiring", "each_style")


def step(name: str, action: str | None = None, log: list[str] | None = None) -> Node:
    """A node that appends its name to ``shared["log"]`` (and to ``log``) and returns ``action``."""

    def post(ctx, shared, prep_result, exec_result):
        shared.update("log", lambda old: [*old, name], [])
        if log is not None:
            log.append(name)
        return action

    return Node(post=post, name=name)


def trail(store: SharedStore) -> list[str]:
    return store.get("log", [])


# -- connect ------------------------------------------------------------------------------------
def test_connect_is_chainable():
    a, b, c = step("a"), step("b"), step("c")
    flow = Flow(a)
    assert flow.connect(a, DEFAULT_ACTION, b) is flow
    assert flow.connect(a, "x", b).connect(b, DEFAULT_ACTION, c) is flow
    store = SharedStore()
    flow.run(store)
    assert trail(store) == ["a", "b", "c"]


def test_connect_same_src_and_action_replaces_target():
    a, b, c = step("a"), step("b"), step("c")
    flow = Flow(a).connect(a, DEFAULT_ACTION, b).connect(a, DEFAULT_ACTION, c)
    assert flow.successors(a) == {DEFAULT_ACTION: c}
    store = SharedStore()
    run(flow, store)
    assert trail(store) == ["a", "c"]


def test_dst_none_ends_the_flow_on_that_action():
    a, b = step("a", "stop"), step("b")
    flow = Flow(a).connect(a, "stop", None).connect(a, DEFAULT_ACTION, b)
    store = SharedStore()
    assert run(flow, store) == "stop"
    assert trail(store) == ["a"]


def test_missing_transition_ends_and_returns_last_action():
    a, b = step("a"), step("b", "unhandled")
    flow = Flow(a).connect(a, DEFAULT_ACTION, b).connect(b, "handled", a)
    store = SharedStore()
    assert run(flow, store) == "unhandled"
    assert trail(store) == ["a", "b"]


def test_node_without_transitions_ends_the_flow():
    store = SharedStore()
    assert run(Flow(step("only", "bye")), store) == "bye"
    assert trail(store) == ["only"]


def test_branching_by_action():
    def decide(ctx, shared, p, e):
        return "big" if shared.get_int("n") > 10 else "small"

    router = Node(post=decide, name="router")
    big, small = step("big"), step("small")
    flow = Flow(router).connect(router, "big", big).connect(router, "small", small)
    s1, s2 = SharedStore({"n": 50}), SharedStore({"n": 1})
    flow.run(s1)
    flow.run(s2)
    assert trail(s1) == ["big"]
    assert trail(s2) == ["small"]


def test_loops_are_allowed():
    def post(ctx, shared, p, e):
        count = shared.update("count", lambda n: n + 1, 0)
        return "again" if count < 4 else "done"

    looper = Node(post=post, name="looper")
    finish = step("finish")
    flow = Flow(looper).connect(looper, "again", looper).connect(looper, "done", finish)
    store = SharedStore()
    assert run(flow, store) == DEFAULT_ACTION
    assert store.get("count") == 4
    assert trail(store) == ["finish"]


def test_two_node_cycle():
    def ping_post(ctx, shared, p, e):
        return "pong" if shared.update("n", lambda n: n + 1, 0) < 3 else "stop"

    ping = Node(post=ping_post, name="ping")
    pong = step("pong")
    flow = Flow(ping).connect(ping, "pong", pong).connect(pong, DEFAULT_ACTION, ping)
    store = SharedStore()
    assert run(flow, store) == "stop"
    assert store.get("n") == 3
    assert trail(store) == ["pong", "pong"]


def test_successors_returns_a_copy():
    a, b = step("a"), step("b")
    flow = Flow(a).connect(a, "go", b).connect(a, "end", None)
    succ = flow.successors(a)
    assert succ == {"go": b, "end": None}
    succ["go"] = a
    succ["new"] = b
    assert flow.successors(a) == {"go": b, "end": None}
    assert flow.successors(b) == {}


def test_transitions_are_keyed_by_identity_not_equality():
    class Same(Node):
        def __eq__(self, other):
            return isinstance(other, Same)

        __hash__ = object.__hash__

    a1, a2 = Same(name="a1"), Same(name="a2")
    target = step("t")
    flow = Flow(a1).connect(a1, DEFAULT_ACTION, target)
    assert flow.successors(a2) == {}


def test_same_node_in_two_flows_routes_independently(each_wiring):
    if each_wiring == "rshift":
        pytest.skip("a node's own successors (>>) are shared by every flow it is in (API.md): this rule is connect's")
    shared_node = step("shared", "next")
    x, y = step("x"), step("y")
    flow1 = Flow(shared_node).connect(shared_node, "next", x)
    flow2 = Flow(shared_node).connect(shared_node, "next", y)
    s1, s2 = SharedStore(), SharedStore()
    flow1.run(s1)
    flow2.run(s2)
    assert trail(s1) == ["shared", "x"]
    assert trail(s2) == ["shared", "y"]
    assert flow1.successors(shared_node) == {"next": x}
    assert flow2.successors(shared_node) == {"next": y}


def test_start_can_be_set_later():
    a = step("a")
    flow = Flow()
    assert flow.start is None
    flow.start = a
    store = SharedStore()
    run(flow, store)
    assert trail(store) == ["a"]


# -- flow as a node ---------------------------------------------------------------------------
def test_flow_prep_returns_store_and_post_returns_exec_result():
    flow = Flow(step("a"))
    store = SharedStore()
    ctx = Context.background()
    assert flow.prep(ctx, store) is store
    assert flow.post(ctx, store, store, "last") == "last"


def test_sub_flow_routes_enclosing_flow_by_its_last_action():
    inner_a, inner_b = step("inner_a"), step("inner_b", "left")
    inner = Flow(inner_a, name="inner").connect(inner_a, DEFAULT_ACTION, inner_b)
    left, right = step("left"), step("right")
    outer = Flow(inner, name="outer").connect(inner, "left", left).connect(inner, "right", right)
    store = SharedStore()
    assert run(outer, store) == DEFAULT_ACTION
    assert trail(store) == ["inner_a", "inner_b", "left"]


def test_nested_flows_share_the_same_store_object():
    seen = []

    def prep(ctx, shared):
        seen.append(shared)

    leaf = Node(prep=prep, name="leaf")
    middle = Flow(leaf, name="middle")
    outer = Flow(middle, name="outer")
    store = SharedStore({"k": 1})
    run(outer, store)
    assert len(seen) == 1
    assert seen[0] is store


def test_writes_in_sub_flow_are_visible_to_later_nodes():
    writer = Node(post=lambda c, s, p, e: s.set("from_inner", 42), name="writer")
    inner = Flow(writer, name="inner")
    reader_seen = []
    reader = Node(prep=lambda c, s: reader_seen.append(s.get("from_inner")), name="reader")
    outer = Flow(inner).connect(inner, DEFAULT_ACTION, reader)
    run(outer)
    assert reader_seen == [42]


def test_node_error_from_sub_flow_passes_through_unwrapped(each_style):
    skip_when_async(each_style, NESTED)
    captured = {}
    failing = Node(exec=lambda c, p: 1 / 0, name="failing")

    def exec_(ctx, p):
        try:
            return run(failing, ctx=ctx)
        except NodeError as exc:
            captured["error"] = exc
            raise

    leaf = Node(exec=exec_, name="leaf")
    outer = Flow(Flow(Flow(leaf, name="inner"), name="middle"), name="outer")
    with pytest.raises(NodeError) as info:
        run(outer)
    assert info.value is captured["error"]
    assert info.value.node is failing
    assert info.value.phase == "exec"


def test_leaf_error_in_nested_flows_names_the_leaf():
    def prep(ctx, shared):
        raise ValueError("bad input")

    leaf = Node(prep=prep, name="leaf")
    outer = Flow(Flow(leaf, name="inner"), name="outer")
    with pytest.raises(NodeError) as info:
        run(outer)
    assert info.value.node is leaf
    assert info.value.phase == "prep"
    assert isinstance(info.value.__cause__, ValueError)


def test_cancelled_from_sub_flow_passes_through_unwrapped():
    cancelled = Cancelled("stop here")

    def exec_(ctx, p):
        raise cancelled

    outer = Flow(Flow(Node(exec=exec_, name="leaf"), name="inner"), name="outer")
    with pytest.raises(Cancelled) as info:
        run(outer)
    assert info.value is cancelled


def test_context_checked_before_every_node():
    ctx, cancel = Context.background().with_cancel()
    log = []
    a = Node(post=lambda c, s, p, e: (log.append("a"), cancel())[0], name="a")
    b = step("b", log=log)
    flow = Flow(a).connect(a, DEFAULT_ACTION, b)
    with pytest.raises(Cancelled):
        run(flow, ctx=ctx)
    assert log == ["a"]


def test_cancelled_flow_raises_cancelled_in_a_loop():
    ctx, cancel = Context.background().with_cancel()

    def post(c, shared, p, e):
        if shared.update("n", lambda n: n + 1, 0) == 5:
            cancel()
        return "again"

    looper = Node(post=post, name="looper")
    flow = Flow(looper).connect(looper, "again", looper)
    store = SharedStore()
    with pytest.raises(Cancelled):
        run(flow, store, ctx=ctx)
    assert store.get("n") == 5


def test_flow_max_retries_reruns_the_whole_flow():
    attempts = {"b": 0}

    def b_exec(ctx, p):
        attempts["b"] += 1
        if attempts["b"] < 3:
            raise RuntimeError("flaky")
        return "ok"

    a = step("a")
    b = step("b")
    b.exec = b_exec
    flow = Flow(a).connect(a, DEFAULT_ACTION, b)
    flow.max_retries = 3
    store = SharedStore()
    run(flow, store)
    assert attempts["b"] == 3
    assert trail(store) == ["a", "a", "a", "b"]


def test_flow_without_retries_fails_on_first_error():
    a = step("a")
    b = Node(exec=lambda c, p: 1 / 0, name="b")
    flow = Flow(a).connect(a, DEFAULT_ACTION, b)
    store = SharedStore()
    with pytest.raises(NodeError) as info:
        run(flow, store)
    assert info.value.node is b
    assert trail(store) == ["a"]


def test_flow_run_is_run_of_flow():
    def make():
        a, b = step("a"), step("b", "end")
        return Flow(a).connect(a, DEFAULT_ACTION, b)

    s1, s2 = SharedStore(), SharedStore()
    ctx = Context.background().with_value("k", "v")
    assert make().run(s1, ctx=ctx) == run(make(), s2, ctx=ctx) == "end"
    assert s1.get_all() == s2.get_all()
    assert make().run() == "end"


def test_flow_passes_context_to_its_nodes():
    seen = []
    flow = Flow(Flow(Node(prep=lambda c, s: seen.append(c.value("user")), name="leaf")))
    run(flow, ctx=Context.background().with_value("user", "ann"))
    assert seen == ["ann"]


def test_flow_containing_itself_runs():
    """The seed's recursive pattern: a flow that routes back into itself until a depth."""
    max_depth = 3

    def check_exec(ctx, depth):
        return "terminate" if depth >= max_depth else "recurse"

    def check_post(ctx, shared, depth, decision):
        if decision == "recurse":
            shared.set("recursion_depth", depth + 1)
        return decision

    depth_check = Node(
        prep=lambda ctx, shared: shared.get_int("recursion_depth"),
        exec=check_exec,
        post=check_post,
        name="depth_check",
    )

    def process_post(ctx, shared, p, e):
        shared.update("processed", lambda n: n + 1, 0)

    process = Node(post=process_post, name="process")
    flow = Flow(depth_check, name="recursive")
    flow.connect(depth_check, "recurse", process)
    flow.connect(process, DEFAULT_ACTION, flow)
    flow.connect(depth_check, "terminate", None)
    store = SharedStore()
    assert run(flow, store) == "terminate"
    assert store.get("recursion_depth") == max_depth
    assert store.get("processed") == max_depth


# -- errors ---------------------------------------------------------------------------------------
def test_no_start_is_flyt_error():
    with pytest.raises(FlytError) as info:
        run(Flow(name="empty"))
    assert "start" in str(info.value)


@pytest.mark.parametrize("bad", [object(), "node", 42, lambda: None])
def test_connect_with_non_node_is_type_error(bad):
    a = step("a")
    flow = Flow(a)
    with pytest.raises(TypeError):
        flow.connect(bad, DEFAULT_ACTION, a)
    with pytest.raises(TypeError):
        flow.connect(a, DEFAULT_ACTION, bad)


def test_connect_with_non_str_action_is_type_error():
    a = step("a")
    with pytest.raises(TypeError):
        Flow(a).connect(a, 1, a)  # type: ignore[arg-type]


def test_flow_start_must_be_a_node():
    with pytest.raises(TypeError):
        Flow("start")  # type: ignore[arg-type]


def test_flow_start_set_to_a_non_node_is_not_an_attribute_error():
    """``start`` is a public attribute: a bad value must give a clear error, not an AttributeError."""
    flow = Flow()
    with pytest.raises((TypeError, FlytError)) as info:
        flow.start = "not a node"  # type: ignore[assignment]
        run(flow)
    error = info.value
    assert not isinstance(error, AttributeError)
    assert not isinstance(error.__cause__, AttributeError), f"AttributeError leaked: {error!r}"
