"""The Flyt docs' chapter "Actions" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


@pytest.mark.parametrize(("success", "expected"), [(True, ["process"]), (False, ["retry"])])
def test_actions__how_actions_work(success: bool, expected: list[str]) -> None:
    """### How Actions Work — post returns an action; the flow goes to the node connected
    with that action."""

    class MyNode(Node):
        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if success:
                return "continue"
            return "retry"

    trail: list[str] = []
    start_node, process_node, retry_node = MyNode(), visit(trail, "process"), visit(trail, "retry")
    flow = Flow(start_node)
    flow.connect(start_node, "continue", process_node)
    flow.connect(start_node, "retry", retry_node)
    assert flow.run() == DEFAULT_ACTION
    assert trail == expected


def test_actions__default_action() -> None:
    """### Default Action — ``DefaultAction`` is ``"default"``; a post returning nothing
    (``None`` or ``""``) means it too, and ``Connect(node1, DefaultAction, node2)`` follows it."""
    assert DEFAULT_ACTION == "default"
    for returned in (DEFAULT_ACTION, None, ""):
        trail: list[str] = []
        node1 = Node(post=lambda ctx, shared, p, e, returned=returned: returned)
        node2 = visit(trail, "node2")
        flow = Flow(node1).connect(node1, DEFAULT_ACTION, node2)
        assert flow.run() == DEFAULT_ACTION
        assert trail == ["node2"]


@pytest.mark.parametrize(("data", "expected"), [("some data", ["process"]), ("", ["error"])])
def test_actions__simple_branching(data: str, expected: list[str]) -> None:
    """#### Simple Branching — non-empty data goes to ``valid``, empty data to ``invalid``."""

    def exec_(ctx: Context, prep_result: Any) -> Any:
        return len(prep_result) > 0

    def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        if exec_result:
            return "valid"
        return "invalid"

    trail: list[str] = []
    validation_node = Node(prep=lambda ctx, shared: shared.get_str("data"), exec=exec_, post=post)
    process_node, error_node = visit(trail, "process"), visit(trail, "error")
    flow = Flow(validation_node)
    flow.connect(validation_node, "valid", process_node)
    flow.connect(validation_node, "invalid", error_node)
    flow.run(SharedStore({"data": data}))
    assert trail == expected


@pytest.mark.parametrize(
    ("value", "handler"), [(5, "small"), (10, "medium"), (99, "medium"), (100, "large"), (5000, "large")]
)
def test_actions__multi_way_branching(value: int, handler: str) -> None:
    """#### Multi-Way Branching — below 10 is small, below 100 medium, the rest large."""

    def exec_(ctx: Context, prep_result: Any) -> Any:
        if prep_result < 10:
            return "small"
        elif prep_result < 100:
            return "medium"
        return "large"

    trail: list[str] = []
    category_node = Node(prep=lambda ctx, shared: shared.get_int("value"), exec=exec_, post=lambda c, s, p, e: e)
    flow = Flow(category_node)
    for name in ("small", "medium", "large"):
        flow.connect(category_node, name, visit(trail, name))
    flow.run(SharedStore({"value": value}))
    assert trail == [handler]


def test_actions__flow_termination() -> None:
    """### Flow Termination — an action without a connection ends the flow, and so does a
    connection to nil; the run returns that last action."""
    trail: list[str] = []
    node1 = Node(exec=lambda ctx, p: trail.append("node1"), post=lambda ctx, shared, p, e: "stop")
    node2 = visit(trail, "node2")
    flow = Flow(node1)
    flow.connect(node1, "continue", node2)
    assert flow.run() == "stop"
    assert trail == ["node1"]

    final_node = Node(post=lambda ctx, shared, p, e: "done")
    explicit = Flow(final_node).connect(final_node, "done", None)
    assert explicit.successors(final_node) == {"done": None}
    assert explicit.run() == "done"


@pytest.mark.parametrize(("fails", "action"), [(False, "success"), (True, "failure")])
def test_actions__success_failure_pattern(fails: bool, action: str) -> None:
    """#### Success/Failure Pattern — post inspects an error result (here handed over by a
    fallback that returns the error) and routes to ``failure`` or ``success``."""

    def make_decision_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        if isinstance(exec_result, Exception):
            return "failure"
        return "success"

    def operation(ctx: Context, prep_result: Any) -> Any:
        if fails:
            raise NetworkError("unreachable")
        return "ok"

    node = Node(exec=operation, fallback=lambda prep_result, err: err, post=make_decision_post)
    assert run(node) == action


@pytest.mark.parametrize(("succeed_on", "execs", "attempts"), [(None, 4, 3), (2, 2, 1)])
def test_actions__retry_pattern(succeed_on: int | None, execs: int, attempts: int) -> None:
    """#### Retry Pattern — a nil result loops back through ``retry`` while ``attempts`` < 3,
    then the flow continues."""
    calls: list[int] = []

    def exec_(ctx: Context, prep_result: Any) -> Any:
        calls.append(1)
        return "ok" if len(calls) == succeed_on else None

    def retryable_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        count = shared.get_int("attempts")
        if exec_result is None and count < 3:
            shared.set("attempts", count + 1)
            return "retry"
        return "continue"

    trail: list[str] = []
    node = Node(exec=exec_, post=retryable_post)
    flow = Flow(node).connect(node, "retry", node).connect(node, "continue", visit(trail, "next"))
    shared = SharedStore()
    flow.run(shared)
    assert len(calls) == execs
    assert shared.get_int("attempts") == attempts
    assert trail == ["next"]


def test_actions__state_machine_pattern() -> None:
    """#### State Machine Pattern — init → processing → complete, then ``done`` ends it."""
    visits: list[str] = []

    def state_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        current_state = shared.get_str("state")
        visits.append(current_state)
        if current_state == "init":
            shared.set("state", "processing")
            return "process"
        if current_state == "processing":
            shared.set("state", "complete")
            return "finalize"
        return "done"

    node = Node(post=state_post)
    flow = Flow(node).connect(node, "process", node).connect(node, "finalize", node)
    shared = SharedStore({"state": "init"})
    assert flow.run(shared) == "done"
    assert visits == ["init", "processing", "complete"]
    assert shared["state"] == "complete"


@pytest.mark.parametrize("next_action", ["archive", "notify"])
def test_actions__dynamic_actions(next_action: str) -> None:
    """### Dynamic Actions — the action is computed at runtime from the exec result."""

    def dynamic_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        return exec_result["next_action"]

    trail: list[str] = []
    node = Node(exec=lambda ctx, p: {"next_action": next_action}, post=dynamic_post)
    flow = Flow(node).connect(node, "archive", visit(trail, "archive")).connect(node, "notify", visit(trail, "notify"))
    flow.run()
    assert trail == [next_action]


def test_actions__best_practices__action_constants() -> None:
    """### Best Practices — "Avoid Magic Strings: Define action constants": constants are
    plain strings and route exactly like literals."""
    action_validate, action_process, action_complete = "validate", "process", "complete"
    trail: list[str] = []
    step = {"n": 0}

    def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        step["n"] += 1
        return [action_validate, action_process, action_complete][step["n"] - 1]

    hub = Node(post=post)
    flow = Flow(hub)
    flow.connect(hub, action_validate, hub).connect(hub, action_process, hub)
    flow.connect(hub, action_complete, visit(trail, "complete"))
    assert flow.run() == DEFAULT_ACTION
    assert trail == ["complete"] and step["n"] == 3
