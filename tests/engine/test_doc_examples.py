"""The Go examples of the Flyt documentation (``seed/flyt-docs.md``), ported to Python.

Each test is one documented section (``test_<chapter>__<section>``): the Go code ported
as literally as Python allows, with fakes for external services (HTTP, databases, clocks)
and every documented second scaled down to ``SECOND`` so the suite stays fast. The
assertions are what the section promises. Batch chapters live in
``test_doc_examples_batch.py``.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from flyt_engine import (
    DEFAULT_ACTION,
    BatchError,
    BatchFlow,
    BatchNode,
    BindError,
    Cancelled,
    Context,
    DeadlineExceeded,
    FallbackNode,
    Flow,
    FlytError,
    Node,
    NodeError,
    RetryableNode,
    SharedStore,
    run,
    to_slice,
)
from flyt_engine.events import ExecFailed, FallbackUsed, PhaseFinished
from flyt_engine.graph import describe, to_mermaid

SECOND = 0.001  # one documented second, scaled down so that retries and timeouts stay fast

log = logging.getLogger("flyt.docs")


# ---------------------------------------------------------------------------------------
# Helpers shared by the ports
# ---------------------------------------------------------------------------------------
def visit(trail: list[str], name: str, action: str | None = None) -> Node:
    """The docs' ``createXNode()``: a node that records its name in ``trail`` and returns ``action``."""

    def exec_(ctx: Context, prep_result: Any) -> str:
        trail.append(name)
        return name

    return Node(exec=exec_, post=lambda ctx, shared, p, e: action, name=name)


def observed() -> tuple[Context, list[Any]]:
    """A context whose run reports every event into the returned list."""
    events: list[Any] = []
    return Context.background().with_observer(events.append), events


def failures(events: list[Any]) -> list[ExecFailed]:
    return [e for e in events if isinstance(e, ExecFailed)]


def exec_results(events: list[Any], node: str) -> list[Any]:
    """What ``exec`` of ``node`` returned in an observed run (one entry per run of the node)."""
    return [e.result for e in events if isinstance(e, PhaseFinished) and e.phase == "exec" and e.node == node]


class FakeClock:
    """Stands in for ``time.Now()`` so that circuit breakers and cache ages need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class NetworkError(ConnectionError):
    """A transient failure of a fake remote service."""


def caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    """Go's ``errors.Is``: whether ``kind`` is anywhere in the ``__cause__`` chain."""
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__
    return False


# =======================================================================================
# Nodes
# =======================================================================================
@dataclass
class Config:
    timeout: int = 30
    retries: int = 3


def test_nodes__prep_phase() -> None:
    """#### 1. Prep Phase — prep reads the store with typed getters and ``bind`` and hands
    exec its data; a config that cannot be bound fails prep, so exec never runs."""
    seen: list[Any] = []

    class MyNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            user_id = shared.get_int("user_id")
            api_key = shared.get_str("api_key")
            config = shared.bind("config", Config)
            return {"userID": user_id, "apiKey": api_key, "config": config}

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            seen.append(prep_result)

    shared = SharedStore({"user_id": 42, "api_key": "k-1", "config": {"timeout": 5, "retries": 2}})
    assert run(MyNode(), shared) == DEFAULT_ACTION
    assert seen == [{"userID": 42, "apiKey": "k-1", "config": Config(timeout=5, retries=2)}]

    seen.clear()
    with pytest.raises(NodeError) as info:
        run(MyNode(), SharedStore({"user_id": 1}))
    assert info.value.phase == "prep"
    assert isinstance(info.value.__cause__, BindError)
    assert seen == []


def test_nodes__exec_phase() -> None:
    """#### 2. Exec Phase — "This phase can be retried on failure": an exception from exec
    triggers a retry when retries are configured, else the run fails in exec."""
    inputs: list[str] = []

    def process_data(value: str) -> str:
        inputs.append(value)
        if len(inputs) == 1:
            raise NetworkError("flaky")
        return value.upper()

    class MyNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return {"input": shared.get_str("input")}

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return process_data(prep_result["input"])  # an exception here triggers a retry

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("output", exec_result)
            return None

    shared = SharedStore({"input": "abc"})
    run(MyNode(max_retries=2), shared)
    assert shared["output"] == "ABC"
    assert inputs == ["abc", "abc"]

    inputs.clear()
    with pytest.raises(NodeError) as info:
        run(MyNode(), SharedStore({"input": "abc"}))
    assert (info.value.phase, info.value.attempts) == ("exec", 1)
    assert isinstance(info.value.__cause__, NetworkError)


@pytest.mark.parametrize(("value", "action"), [("ok", "success"), ("", "failure")])
def test_nodes__post_phase(value: str, action: str) -> None:
    """#### 3. Post Phase — post stores the result and picks the next action from it."""

    def is_valid(result: Any) -> bool:
        return bool(result)

    class MyNode(Node):
        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return value

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("output", exec_result)
            if is_valid(exec_result):
                return "success"
            return "failure"

    shared = SharedStore()
    assert run(MyNode(), shared) == action
    assert shared["output"] == value


@pytest.mark.parametrize(("retry_count", "action"), [(0, DEFAULT_ACTION), (4, "max_retries")])
def test_nodes__using_helper_functions(retry_count: int, action: str) -> None:
    """#### Using Helper Functions — the functional node: prep, exec and post as functions."""

    def process_message(message: str) -> str:
        return f"processed {message}"

    def prep(ctx: Context, shared: SharedStore) -> Any:
        message = shared.get_str("message")
        retry = shared.get_int("retry_count", 0)
        return {"message": message, "retry": retry}

    def exec_(ctx: Context, prep_result: Any) -> Any:
        return process_message(prep_result["message"])

    def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("result", exec_result)
        if shared.get_int("retry_count") > 3:
            return "max_retries"
        return DEFAULT_ACTION

    node = Node(prep=prep, exec=exec_, post=post)
    shared = SharedStore({"message": "hi", "retry_count": retry_count})
    assert run(node, shared) == action
    assert shared["result"] == "processed hi"


def test_nodes__custom_node_types() -> None:
    """#### Custom Node Types — a node with state of its own (a database handle; sqlite
    in memory stands in for the SQL server)."""

    class DatabaseNode(Node):
        def __init__(self, db: sqlite3.Connection) -> None:
            super().__init__()
            self.db = db

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_str("query")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return self.db.execute(prep_result).fetchall()

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("rows", exec_result)
            return None

    db = sqlite3.connect(":memory:")
    db.executescript("CREATE TABLE users (id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'ada'), (2, 'bob');")
    node = DatabaseNode(db)
    shared = SharedStore({"query": "SELECT name FROM users ORDER BY id"})
    run(node, shared)
    assert shared["rows"] == [("ada",), ("bob",)]

    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"query": "SELECT nope FROM missing"}))
    assert info.value.phase == "exec"
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


def test_nodes__node_options() -> None:
    """### Node Options — ``WithMaxRetries(3)`` and ``WithWait(2s)``: three attempts, two
    seconds apart (no wait after the last one)."""
    calls: list[int] = []

    def exec_func(ctx: Context, prep_result: Any) -> Any:
        calls.append(1)
        raise NetworkError("down")

    node = Node(exec=exec_func, max_retries=3, wait=2 * SECOND)
    ctx, events = observed()
    with pytest.raises(NodeError) as info:
        run(node, ctx=ctx)
    assert len(calls) == 3
    assert info.value.attempts == 3
    assert [f.wait for f in failures(events)] == [2 * SECOND, 2 * SECOND, 0.0]
    assert [f.attempt for f in failures(events)] == [1, 2, 3]


def test_nodes__base_node() -> None:
    """### BaseNode — subclass, configure retries and wait, override only exec; prep and
    post keep their defaults (``None`` and the default action)."""
    calls: list[int] = []

    class MyNode(Node):
        def __init__(self) -> None:
            super().__init__(max_retries=5, wait=SECOND)

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            calls.append(prep_result)
            if len(calls) < 5:
                raise NetworkError("not yet")
            return "result"

    node = MyNode()
    assert (node.get_max_retries(), node.get_wait()) == (5, SECOND)
    assert node.name == "MyNode"
    ctx, events = observed()
    assert run(node, ctx=ctx) == DEFAULT_ACTION
    assert calls == [None] * 5
    assert exec_results(events, "MyNode") == ["result"]


def test_nodes__thread_safety() -> None:
    """### Thread Safety — a node with a lock-protected counter, run from many threads at
    once, numbers every execution exactly once."""

    class SafeNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.mu = threading.Lock()
            self.counter = 0

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            with self.mu:
                self.counter += 1
                count = self.counter
            return f"Execution #{count}"

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.update("seen", lambda old: [*old, exec_result], default=[])
            return None

    node = SafeNode()
    shared = SharedStore()
    threads = [threading.Thread(target=lambda: [run(node, shared) for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert node.counter == 40
    assert sorted(shared["seen"]) == sorted(f"Execution #{i}" for i in range(1, 41))


# =======================================================================================
# Actions
# =======================================================================================
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


# =======================================================================================
# Flows
# =======================================================================================
def test_flows__creating_flows() -> None:
    """### Creating Flows — start → process → end, in that order."""
    trail: list[str] = []
    start_node, process_node, end_node = visit(trail, "start"), visit(trail, "process"), visit(trail, "end")
    flow = Flow(start_node)
    flow.connect(start_node, DEFAULT_ACTION, process_node)
    flow.connect(process_node, DEFAULT_ACTION, end_node)
    assert flow.run() == DEFAULT_ACTION
    assert trail == ["start", "process", "end"]


def test_flows__running_flows() -> None:
    """### Running Flows — put input in the store, run the flow, read the output."""
    node = Node(
        prep=lambda ctx, shared: shared.get_str("input"),
        exec=lambda ctx, text: text.upper(),
        post=lambda ctx, shared, p, e: shared.set("output", e),
    )
    flow = Flow(node)
    ctx = Context.background()
    shared = SharedStore()
    shared.set("input", "data to process")
    flow.run(shared, ctx=ctx)
    assert shared.get_str("output") == "DATA TO PROCESS"


def test_flows__linear_flow() -> None:
    """#### Linear Flow — node1 → node2 → node3 → nil."""
    trail: list[str] = []
    node1, node2, node3 = visit(trail, "node1"), visit(trail, "node2"), visit(trail, "node3")
    flow = Flow(node1)
    flow.connect(node1, DEFAULT_ACTION, node2)
    flow.connect(node2, DEFAULT_ACTION, node3)
    flow.connect(node3, DEFAULT_ACTION, None)
    assert flow.run() == DEFAULT_ACTION
    assert trail == ["node1", "node2", "node3"]


@pytest.mark.parametrize(("path", "branch"), [("path_a", "A"), ("path_b", "B")])
def test_flows__branching_flow(path: str, branch: str) -> None:
    """#### Branching Flow — the decision picks one path; both paths merge."""
    trail: list[str] = []
    decision_node = Node(post=lambda ctx, shared, p, e: path)
    node_a, node_b, merge_node = visit(trail, "A"), visit(trail, "B"), visit(trail, "merge")
    flow = Flow(decision_node)
    flow.connect(decision_node, "path_a", node_a)
    flow.connect(decision_node, "path_b", node_b)
    flow.connect(node_a, DEFAULT_ACTION, merge_node)
    flow.connect(node_b, DEFAULT_ACTION, merge_node)
    flow.run()
    assert trail == [branch, "merge"]


def test_flows__loop_flow() -> None:
    """#### Loop Flow — ``retry`` loops back to the start until ``success`` leads on."""
    trail: list[str] = []
    start_node, end_node = visit(trail, "start"), visit(trail, "end")
    tries = {"n": 0}

    def process_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        trail.append("process")
        tries["n"] += 1
        return "success" if tries["n"] == 3 else "retry"

    process_node = Node(post=process_post)
    flow = Flow(start_node)
    flow.connect(start_node, DEFAULT_ACTION, process_node)
    flow.connect(process_node, "retry", start_node)
    flow.connect(process_node, "success", end_node)
    flow.run()
    assert trail == ["start", "process"] * 3 + ["end"]


def test_flows__flow_as_node() -> None:
    """### Flow as Node — fetch → [validate → transform] → save."""
    trail: list[str] = []
    validate_node, transform_node = visit(trail, "validate"), visit(trail, "transform")
    sub_flow = Flow(validate_node)
    sub_flow.connect(validate_node, DEFAULT_ACTION, transform_node)
    fetch_node, save_node = visit(trail, "fetch"), visit(trail, "save")
    main_flow = Flow(fetch_node)
    main_flow.connect(fetch_node, DEFAULT_ACTION, sub_flow)
    main_flow.connect(sub_flow, DEFAULT_ACTION, save_node)
    assert main_flow.run() == DEFAULT_ACTION
    assert trail == ["fetch", "validate", "transform", "save"]


@pytest.mark.parametrize(("path", "process"), [("path1", "process1"), ("path2", "process2")])
def test_flows__diamond_pattern(path: str, process: str) -> None:
    """#### Diamond Pattern — split into one of two paths, then merge."""
    trail: list[str] = []
    split_node = Node(post=lambda ctx, shared, p, e: path)
    process1, process2, merge_node = visit(trail, "process1"), visit(trail, "process2"), visit(trail, "merge")
    flow = Flow(split_node)
    flow.connect(split_node, "path1", process1)
    flow.connect(split_node, "path2", process2)
    flow.connect(process1, DEFAULT_ACTION, merge_node)
    flow.connect(process2, DEFAULT_ACTION, merge_node)
    flow.run()
    assert trail == [process, "merge"]


@pytest.mark.parametrize(
    ("failing", "expected"),
    [
        (None, ["start", "process", "save"]),
        ("start", ["start", "errorHandler"]),
        ("process", ["start", "process", "errorHandler"]),
        ("save", ["start", "process", "save", "errorHandler"]),
    ],
)
def test_flows__error_handling_flow(failing: str | None, expected: list[str]) -> None:
    """#### Error Handling Flow — every node's ``error`` action leads to one handler."""
    trail: list[str] = []

    def step(name: str) -> Node:
        return Node(
            exec=lambda ctx, p: trail.append(name),
            post=lambda ctx, shared, p, e: "error" if name == failing else DEFAULT_ACTION,
        )

    start_node, process_node, save_node = step("start"), step("process"), step("save")
    error_handler = visit(trail, "errorHandler")
    flow = Flow(start_node)
    flow.connect(start_node, "error", error_handler)
    flow.connect(start_node, DEFAULT_ACTION, process_node)
    flow.connect(process_node, "error", error_handler)
    flow.connect(process_node, DEFAULT_ACTION, save_node)
    flow.connect(save_node, "error", error_handler)
    flow.run()
    assert trail == expected


@pytest.mark.parametrize(
    ("valid", "expected"),
    [(True, ["fetch", "validate", "transform", "enrich", "save"]), (False, ["fetch", "validate", "reject"])],
)
def test_flows__pipeline_pattern(valid: bool, expected: list[str]) -> None:
    """#### Pipeline Pattern — fetch → validate → (transform → enrich → save | reject)."""
    trail: list[str] = []
    fetch_node = visit(trail, "fetch")
    validate_node = visit(trail, "validate", "valid" if valid else "invalid")
    transform_node, enrich_node = visit(trail, "transform"), visit(trail, "enrich")
    save_node, reject_node = visit(trail, "save"), visit(trail, "reject")
    flow = Flow(fetch_node)
    flow.connect(fetch_node, DEFAULT_ACTION, validate_node)
    flow.connect(validate_node, "valid", transform_node)
    flow.connect(validate_node, "invalid", reject_node)
    flow.connect(transform_node, DEFAULT_ACTION, enrich_node)
    flow.connect(enrich_node, DEFAULT_ACTION, save_node)
    flow.run()
    assert trail == expected


@pytest.mark.parametrize(
    ("format_ok", "expected", "action"),
    [
        (True, ["fetch", "checkFormat", "checkBusiness", "process"], DEFAULT_ACTION),
        (False, ["fetch", "checkFormat"], "invalid"),
    ],
)
def test_flows__flow_composition(format_ok: bool, expected: list[str], action: str) -> None:
    """### Flow Composition — a validation sub-flow inside the main flow; the sub-flow's
    last action routes the main flow (an ``invalid`` format stops before process)."""
    trail: list[str] = []

    def create_validation_flow() -> Flow:
        check_format = visit(trail, "checkFormat", "valid" if format_ok else "invalid")
        check_business = visit(trail, "checkBusiness")
        flow = Flow(check_format)
        flow.connect(check_format, "valid", check_business)
        return flow

    def create_main_flow() -> Flow:
        fetch, validation, process = visit(trail, "fetch"), create_validation_flow(), visit(trail, "process")
        flow = Flow(fetch)
        flow.connect(fetch, DEFAULT_ACTION, validation)
        flow.connect(validation, DEFAULT_ACTION, process)
        return flow

    assert create_main_flow().run() == action
    assert trail == expected


def create_logging_node(name: str, logbook: list[str]) -> Node:
    """The docs' ``createLoggingNode``: logs the store in prep, then passes through."""

    def prep(ctx: Context, shared: SharedStore) -> Any:
        logbook.append(f"[{name}] Prep: SharedStore keys: {sorted(shared.get_all())}")
        return None

    def exec_(ctx: Context, prep_result: Any) -> Any:
        logbook.append(f"[{name}] Exec")
        return prep_result

    def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        logbook.append(f"[{name}] Post: Result: {exec_result}")
        return DEFAULT_ACTION

    return Node(prep=prep, exec=exec_, post=post, name=name)


def test_flows__debugging_flows() -> None:
    """### Debugging Flows — a logging node inserted between two nodes logs the store's keys
    and lets the flow carry on."""
    trail: list[str] = []
    logbook: list[str] = []
    node1 = Node(exec=lambda ctx, p: trail.append("node1"), post=lambda ctx, shared, p, e: shared.set("a", 1))
    node2 = visit(trail, "node2")
    debug = create_logging_node("debug", logbook)
    flow = Flow(node1)
    flow.connect(node1, DEFAULT_ACTION, debug)
    flow.connect(debug, DEFAULT_ACTION, node2)
    flow.run()
    assert trail == ["node1", "node2"]
    assert logbook == ["[debug] Prep: SharedStore keys: ['a']", "[debug] Exec", "[debug] Post: Result: None"]


def test_flows__debugging_flows__each_call_makes_a_new_node() -> None:
    """### Debugging Flows, as literally written — the snippet calls ``createLoggingNode``
    twice, which makes two different nodes: transitions are keyed by node identity, so the
    second connection leaves from a node that never runs and node2 is never reached."""
    trail: list[str] = []
    logbook: list[str] = []
    node1, node2 = visit(trail, "node1"), visit(trail, "node2")
    flow = Flow(node1)
    flow.connect(node1, DEFAULT_ACTION, create_logging_node("debug", logbook))
    flow.connect(create_logging_node("debug", logbook), DEFAULT_ACTION, node2)
    flow.run()
    assert trail == ["node1"]
    assert len(logbook) == 3  # one logging node ran, once


def test_flows__visualizing_flows() -> None:
    """### Visualizing Flows — Start → Validate → Process → Save, Validate └→ Error: the
    flow's graph has exactly the documented structure."""
    start_node, validate_node = Node(name="start"), Node(name="validate")
    process_node, error_node, save_node = Node(name="process"), Node(name="error"), Node(name="save")
    flow = Flow(start_node)
    flow.connect(start_node, DEFAULT_ACTION, validate_node)
    flow.connect(validate_node, "valid", process_node)
    flow.connect(validate_node, "invalid", error_node)
    flow.connect(process_node, DEFAULT_ACTION, save_node)

    graph = describe(flow)
    names = {n.id: n.name for n in graph.nodes}
    assert names[graph.start] == "start"
    assert sorted((names[s], a, names[d]) for s, a, d in graph.edges if d is not None) == [
        ("process", "default", "save"),
        ("start", "default", "validate"),
        ("validate", "invalid", "error"),
        ("validate", "valid", "process"),
    ]
    mermaid = to_mermaid(graph)
    assert mermaid.startswith("flowchart")
    assert '|"invalid"|' in mermaid and '"save"' in mermaid


# =======================================================================================
# Shared Store
# =======================================================================================
def test_shared_store__creating_a_shared_store() -> None:
    """### Creating a SharedStore — a new store is empty."""
    shared = SharedStore()
    assert len(shared) == 0
    assert shared.keys() == []


def test_shared_store__set_and_get() -> None:
    """#### Set and Get — ``Set`` a value, read it back with a typed getter."""
    shared = SharedStore()
    shared.set("user_id", 123)
    shared.set("config", {"timeout": 30})
    user_id = shared.get_int("user_id")
    assert f"User ID: {user_id}" == "User ID: 123"
    assert shared.get("config") == {"timeout": 30}


def test_shared_store__type_safe_getters() -> None:
    """#### Type-Safe Getters — zero values when missing or of the wrong type, or the
    custom default of the ``...Or`` variants."""
    shared = SharedStore()
    assert shared.get_int("user_id") == 0
    assert shared.get_str("name") == ""
    assert shared.get_float("price") == 0.0
    assert shared.get_bool("enabled") is False
    assert shared.get_list("items") is None
    assert shared.get_dict("config") is None

    assert shared.get_int("user_id", -1) == -1
    assert shared.get_str("name", "anonymous") == "anonymous"
    assert shared.get_float("price", 99.99) == 99.99
    assert shared.get_bool("enabled", True) is True

    shared.merge({"user_id": "123", "name": 7, "price": "9.5", "enabled": 1, "items": "abc", "config": [1]})
    assert shared.get_int("user_id") == 0  # wrong types give the zero value, never an exception
    assert shared.get_str("name") == ""
    assert shared.get_float("price") == 0.0
    assert shared.get_bool("enabled") is False
    assert shared.get_list("items") is None
    assert shared.get_dict("config") is None

    shared.merge({"user_id": 7, "name": "ada", "price": 9.5, "enabled": True, "items": ("a", "b"), "config": {"k": 1}})
    assert (shared.get_int("user_id"), shared.get_str("name"), shared.get_float("price")) == (7, "ada", 9.5)
    assert shared.get_bool("enabled") is True
    assert shared.get_list("items") == ["a", "b"]
    assert shared.get_dict("config") == {"k": 1}


def test_shared_store__type_safe_getters__numeric_conversions() -> None:
    """#### Type-Safe Getters — "GetInt() converts from ... float types", "GetFloat64()
    converts from all numeric types including int"."""
    shared = SharedStore({"f": 3.9, "neg": -3.9, "i": 42})
    assert shared.get_int("f") == 3
    assert shared.get_int("neg") == -3  # truncated toward zero
    value = shared.get_float("i")
    assert value == 42.0 and isinstance(value, float)


@dataclass
class User:
    id: int
    name: str
    email: str
    tags: list[str]


def test_shared_store__bind_method() -> None:
    """#### Bind Method — a stored map binds to a struct; ``MustBind`` on missing data fails
    loudly (in Python ``bind`` raises ``BindError`` naming the key)."""
    shared = SharedStore()
    shared.set("user", {"id": 123, "name": "Alice", "email": "alice@example.com", "tags": ["admin", "developer"]})
    user = shared.bind("user", User)
    assert user == User(id=123, name="Alice", email="alice@example.com", tags=["admin", "developer"])

    with pytest.raises(BindError, match="config"):
        shared.bind("config", Config)


def test_shared_store__utility_methods() -> None:
    """#### Utility Methods — Has, Delete, Keys, Len, Clear."""
    shared = SharedStore({"user_id": 1, "temp_data": "x"})
    assert shared.has("user_id")
    shared.delete("temp_data")
    shared.delete("temp_data")  # deleting a missing key is a no-op
    assert not shared.has("temp_data")
    assert shared.keys() == ["user_id"]
    assert len(shared) == 1
    shared.clear()
    assert len(shared) == 0 and shared.keys() == []


def test_shared_store__get_all() -> None:
    """#### GetAll — a copy of all stored data: changing the copy leaves the store alone."""
    shared = SharedStore({"a": 1, "b": "two"})
    all_data = shared.get_all()
    assert all_data == {"a": 1, "b": "two"}
    all_data["a"] = 99
    all_data["c"] = 3
    assert shared.get_all() == {"a": 1, "b": "two"}


def test_shared_store__merge() -> None:
    """#### Merge — several values at once; merged keys overwrite, others stay."""
    shared = SharedStore({"status": "inactive", "owner": "ops"})
    shared.merge({"status": "active", "timestamp": 1700000000, "metadata": {"version": "1.0", "env": "production"}})
    assert shared.get_all() == {
        "status": "active",
        "owner": "ops",
        "timestamp": 1700000000,
        "metadata": {"version": "1.0", "env": "production"},
    }


def test_shared_store__thread_safety() -> None:
    """### Thread Safety — ten goroutines (threads) set their own keys safely."""
    shared = SharedStore()

    def worker(worker_id: int) -> None:
        shared.set(f"worker_{worker_id}", "done")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared.get_all() == {f"worker_{i}": "done" for i in range(10)}


@dataclass
class APIConfig:
    base_url: str
    api_key: str
    timeout: str


def test_shared_store__configuration_storage() -> None:
    """#### Configuration Storage — configuration stored once and read by any node, with
    ``Bind`` (a stored struct comes back as is) or with ``GetMap`` (a stored map)."""
    seen: list[Any] = []

    class APINode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.bind("api_config", APIConfig)

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            seen.append(prep_result)

    config = APIConfig(base_url="https://api.example.com", api_key="test-key", timeout="30s")
    shared = SharedStore()
    shared.set("api_config", config)
    run(APINode(), shared)
    assert seen == [config] and seen[0] is config

    map_node = Node(prep=lambda ctx, shared: shared.get_dict("api_config"), exec=lambda ctx, p: seen.append(p))
    run(map_node, SharedStore({"api_config": {"base_url": "https://api.example.com"}}))
    assert seen[-1] == {"base_url": "https://api.example.com"}


def test_shared_store__accumulating_results() -> None:
    """#### Accumulating Results — each node appends its result to the ``results`` list,
    starting it when ``GetSlice`` finds nothing."""

    def append_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        results = shared.get_list("results")
        if results is None:
            results = []
        results.append(exec_result)
        shared.set("results", results)
        return DEFAULT_ACTION

    node1 = Node(exec=lambda ctx, p: "one", post=append_post)
    node2 = Node(exec=lambda ctx, p: "two", post=append_post)
    shared = SharedStore()
    Flow(node1).connect(node1, DEFAULT_ACTION, node2).run(shared)
    assert shared.get_list("results") == ["one", "two"]


def test_shared_store__state_management() -> None:
    """#### State Management — a retry counter incremented through the store, and a state
    read with a default."""

    def increment_retry(shared: SharedStore) -> int:
        count = shared.get_int("retry_count")
        count += 1
        shared.set("retry_count", count)
        shared.set("last_retry", time.time())
        return count

    def check_state(shared: SharedStore) -> str:
        return shared.get_str("workflow_state", "unknown")

    shared = SharedStore()
    assert check_state(shared) == "unknown"
    shared.set("workflow_state", "initialized")
    shared.set("retry_count", 0)
    assert [increment_retry(shared) for _ in range(3)] == [1, 2, 3]
    assert shared.has("last_retry")
    assert check_state(shared) == "initialized"


@pytest.mark.parametrize("fails", [False, True])
def test_shared_store__error_context(fails: bool) -> None:
    """#### Error Context — an error result is stored under ``last_error`` with the node,
    the input and the message, and the node returns ``error``."""

    class ErrorHandler(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("input")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            if fails:
                raise ValueError("bad input")
            return "ok"

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            return error  # hand the error to post, as the Go snippet expects

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if isinstance(exec_result, Exception):
                shared.set(
                    "last_error",
                    {"error": str(exec_result), "node": "ProcessNode", "timestamp": time.time(), "input": prep_result},
                )
                return "error"
            return DEFAULT_ACTION

    shared = SharedStore({"input": {"id": 7}})
    assert run(ErrorHandler(), shared) == ("error" if fails else DEFAULT_ACTION)
    if fails:
        last_error = shared.get_dict("last_error")
        assert (last_error["error"], last_error["node"], last_error["input"]) == ("bad input", "ProcessNode", {"id": 7})
    else:
        assert not shared.has("last_error")


def test_shared_store__batch_processing() -> None:
    """### Batch Processing — items go in under ``items``, results come out under
    ``results``; nothing is written under ``errors`` when every item succeeded."""
    shared = SharedStore()
    shared.set("items", ["item1", "item2", "item3"])
    shared.set("batch_config", {"batch_size": 10, "concurrent": True, "timeout": 60})
    run(BatchNode(lambda ctx, item: item.upper(), True), shared)
    assert shared.get_list("results") == ["ITEM1", "ITEM2", "ITEM3"]
    assert shared.get_list("errors") is None


def test_shared_store__isolation_in_batch_flows() -> None:
    """### Isolation in Batch Flows — "Each flow in a batch has its own SharedStore": a
    child sees the parent's data plus its inputs, and its writes stay its own."""

    def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        base_config = shared.get_dict("base_config")
        return [{"id": 1, "config": base_config}, {"id": 2, "config": base_config}]

    def child_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        shared.set("owner", shared.get_int("id"))
        shared.set("touched", True)
        return None

    def flow_factory() -> Flow:
        return Flow(Node(post=child_post))

    parent = SharedStore({"base_config": {"region": "eu"}, "owner": "parent"})
    run(BatchFlow(flow_factory, batch_func, True), parent)
    children = parent.get_list("batch_results")
    assert [c["owner"] for c in children] == [1, 2]
    assert all(c["config"] == {"region": "eu"} and c["touched"] for c in children)
    assert parent["owner"] == "parent" and not parent.has("touched") and not parent.has("id")


def test_shared_store__best_practices__type_safety() -> None:
    """#### 1. Type Safety — ``GetInt`` and ``GetIntOr`` for counts, ``Bind`` for complex types."""

    @dataclass
    class UserData:
        name: str
        age: int

    shared = SharedStore({"user_data": {"name": "ada", "age": 36}})
    assert shared.get_int("count") == 0
    assert shared.get_int("count", -1) == -1
    assert shared.bind("user_data", UserData) == UserData("ada", 36)
    shared.set("user_data", {"name": "ada"})
    with pytest.raises(BindError, match="user_data"):
        shared.bind("user_data", UserData)


def test_shared_store__best_practices__data_structure() -> None:
    """#### 3. Data Structure — a struct stored as one value comes back intact."""

    @dataclass
    class WorkflowContext:
        request_id: str
        user_id: int
        start_time: float
        metadata: dict[str, str] = field(default_factory=dict)

    context = WorkflowContext("req-123", 456, time.time(), {"source": "api"})
    shared = SharedStore()
    shared.set("context", context)
    assert shared.bind("context", WorkflowContext) is context


def test_shared_store__best_practices__cleanup() -> None:
    """#### 4. Cleanup — sensitive values are overwritten with nil when the work is done."""
    shared = SharedStore({"auth_token": "secret", "api_key": "key"})

    def work() -> None:
        try:
            assert shared.get_str("auth_token") == "secret"
        finally:
            shared.set("auth_token", None)
            shared.set("api_key", None)

    work()
    assert shared.get_str("auth_token") == "" and shared.get("api_key") is None


def test_shared_store__debugging(capsys: pytest.CaptureFixture[str]) -> None:
    """### Debugging — ``GetAll`` lists every key with its type and value."""

    def debug_shared_store(shared: SharedStore) -> None:
        data = shared.get_all()
        print("=== SharedStore Contents ===")
        for k, v in data.items():
            print(f"{k}: {type(v).__name__} = {v}")
        print("===========================")

    debug_shared_store(SharedStore({"user_id": 123, "name": "ada"}))
    out = capsys.readouterr().out.splitlines()
    assert out == ["=== SharedStore Contents ===", "user_id: int = 123", "name: str = ada", "=" * 27]


# =======================================================================================
# Quick Start
# =======================================================================================
def test_quick_start__your_first_node(capsys: pytest.CaptureFixture[str]) -> None:
    """### Your First Node — a node with just an exec function completes with the default action."""

    def exec_(ctx: Context, prep_result: Any) -> Any:
        print("Processing data...")
        return "Hello, Flyt!"

    node = Node(exec=exec_)
    shared = SharedStore()
    ctx, events = observed()
    action = run(node, shared, ctx=ctx)
    print(f"Completed with action: {action}")
    assert capsys.readouterr().out.splitlines() == ["Processing data...", "Completed with action: default"]
    assert exec_results(events, "exec_") == ["Hello, Flyt!"]


def test_quick_start__building_a_flow(capsys: pytest.CaptureFixture[str]) -> None:
    """### Building a Flow — fetch stores its data; process reads it with ``GetMap``."""

    def fetch_exec(ctx: Context, prep_result: Any) -> Any:
        print("Fetching data...")
        return {"data": "important info"}

    def fetch_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("fetched_data", exec_result)
        return DEFAULT_ACTION

    def process_exec(ctx: Context, prep_result: Any) -> Any:
        print(f"Processing: {prep_result['data']}")
        return "processed: " + str(prep_result["data"])

    fetch_node = Node(exec=fetch_exec, post=fetch_post)
    process_node = Node(prep=lambda ctx, shared: shared.get_dict("fetched_data"), exec=process_exec)
    flow = Flow(fetch_node)
    flow.connect(fetch_node, DEFAULT_ACTION, process_node)
    shared = SharedStore()
    ctx, events = observed()
    flow.run(shared, ctx=ctx)
    print("Flow completed successfully!")
    out = capsys.readouterr().out.splitlines()
    assert out == ["Fetching data...", "Processing: important info", "Flow completed successfully!"]
    assert exec_results(events, "process_exec") == ["processed: important info"]


def test_quick_start__adding_error_handling(capsys: pytest.CaptureFixture[str]) -> None:
    """### Adding Error Handling — the flaky operation fails once and succeeds on attempt 2
    of 3, one (scaled) second later."""

    def create_robust_node() -> Node:
        attempts = 0

        def exec_(ctx: Context, prep_result: Any) -> Any:
            nonlocal attempts
            attempts += 1
            print(f"Attempt {attempts}...")
            if attempts < 2:
                raise RuntimeError("temporary failure")
            return "Success!"

        return Node(exec=exec_, max_retries=3, wait=SECOND)

    ctx, events = observed()
    assert run(create_robust_node(), ctx=ctx) == DEFAULT_ACTION
    assert capsys.readouterr().out.splitlines() == ["Attempt 1...", "Attempt 2..."]
    assert exec_results(events, "exec_") == ["Success!"]
    assert [(f.attempt, f.max_attempts, f.wait) for f in failures(events)] == [(1, 3, SECOND)]


def test_quick_start__using_shared_store(capsys: pytest.CaptureFixture[str]) -> None:
    """### Using Shared Store — the node reads the config set before the run."""
    shared = SharedStore()
    shared.set("config", {"timeout": 30, "retries": 3})

    def exec_(ctx: Context, prep_result: Any) -> Any:
        print(f"Using config: {prep_result}")
        return "configured"

    node = Node(prep=lambda ctx, shared: shared.get_dict("config"), exec=exec_)
    run(node, shared, ctx=Context.background())
    assert capsys.readouterr().out == "Using config: {'timeout': 30, 'retries': 3}\n"


# =======================================================================================
# Flow as Node
# =======================================================================================
def test_flow_as_node__the_node_interface() -> None:
    """### The Node Interface — a Flow is a Node, with Prep, Exec and Post."""
    flow = Flow(Node())
    assert isinstance(flow, Node)
    assert all(callable(getattr(flow, phase)) for phase in ("prep", "exec", "post"))


def test_flow_as_node__basic_usage() -> None:
    """### Basic Usage — a processing flow used as a node between fetch and save."""
    trail: list[str] = []
    validate_node = visit(trail, "validate", "valid")
    transform_node, enrich_node = visit(trail, "transform"), visit(trail, "enrich")
    processing_flow = Flow(validate_node)
    processing_flow.connect(validate_node, "valid", transform_node)
    processing_flow.connect(transform_node, DEFAULT_ACTION, enrich_node)
    fetch_node, save_node = visit(trail, "fetch"), visit(trail, "save")
    main_flow = Flow(fetch_node)
    main_flow.connect(fetch_node, DEFAULT_ACTION, processing_flow)
    main_flow.connect(processing_flow, DEFAULT_ACTION, save_node)
    main_flow.run()
    assert trail == ["fetch", "validate", "transform", "enrich", "save"]


def test_flow_as_node__flow_lifecycle_as_node() -> None:
    """### Flow Lifecycle as Node — when the main flow reaches the sub-flow, the sub-flow
    runs its nodes' phases in order and its final action becomes the sub-flow's action."""
    phases: list[str] = []

    def traced(name: str, action: str | None = None) -> Node:
        return Node(
            prep=lambda ctx, shared: phases.append(f"{name}.prep"),
            exec=lambda ctx, p: phases.append(f"{name}.exec"),
            post=lambda ctx, shared, p, e: phases.append(f"{name}.post") or action,
            name=name,
        )

    start_node, end_node, init_node = traced("start"), traced("end", "finished"), traced("init")
    sub_flow = Flow(start_node)
    sub_flow.connect(start_node, DEFAULT_ACTION, end_node)
    main_flow = Flow(init_node)
    main_flow.connect(init_node, DEFAULT_ACTION, sub_flow)
    assert main_flow.run() == "finished"
    assert phases == [f"{n}.{p}" for n in ("init", "start", "end") for p in ("prep", "exec", "post")]


def test_flow_as_node__composable_workflows() -> None:
    """### Composable Workflows — three levels of flows nest into one application flow."""
    trail: list[str] = []

    def create_validation_flow() -> Flow:
        schema_node, business_node = visit(trail, "schema", "valid"), visit(trail, "business")
        return Flow(schema_node).connect(schema_node, "valid", business_node)

    def create_enrichment_flow() -> Flow:
        fetch_node, merge_node = visit(trail, "fetchData"), visit(trail, "mergeData")
        return Flow(fetch_node).connect(fetch_node, DEFAULT_ACTION, merge_node)

    def create_processing_pipeline() -> Flow:
        validation, enrichment = create_validation_flow(), create_enrichment_flow()
        return Flow(validation).connect(validation, DEFAULT_ACTION, enrichment)

    def create_application_flow() -> Flow:
        auth, pipeline, audit = Flow(visit(trail, "auth")), create_processing_pipeline(), Flow(visit(trail, "audit"))
        app = Flow(auth)
        app.connect(auth, DEFAULT_ACTION, pipeline)
        app.connect(pipeline, DEFAULT_ACTION, audit)
        return app

    create_application_flow().run()
    assert trail == ["auth", "schema", "business", "fetchData", "mergeData", "audit"]


@pytest.mark.parametrize("flow_type", ["simple", "complex", "custom"])
def test_flow_as_node__dynamic_flow_selection(flow_type: str) -> None:
    """### Dynamic Flow Selection — the selector's result names the flow to run."""
    trail: list[str] = []

    class FlowSelector:
        def __init__(self, flows: dict[str, Flow]) -> None:
            self.flows = flows

        def create_selector_node(self) -> Node:
            return Node(
                prep=lambda ctx, shared: shared.get_str("flow_type"),
                exec=lambda ctx, prep_result: prep_result,
                post=lambda ctx, shared, p, exec_result: exec_result,
            )

        def build_dynamic_flow(self) -> Flow:
            selector = self.create_selector_node()
            main_flow = Flow(selector)
            for name, flow in self.flows.items():
                main_flow.connect(selector, name, flow)
            return main_flow

    selector = FlowSelector({name: Flow(visit(trail, name)) for name in ("simple", "complex", "custom")})
    selector.build_dynamic_flow().run(SharedStore({"flow_type": flow_type}))
    assert trail == [flow_type]


def test_flow_as_node__flow_factories() -> None:
    """### Flow Factories — flows built from configurations and chained after a start node."""
    trail: list[str] = []

    @dataclass
    class FlowConfig:
        nodes: list[str]

    class ProcessingFlowFactory:
        def create_flow(self, config: FlowConfig) -> Flow:
            nodes = [visit(trail, name) for name in config.nodes]
            flow = Flow(nodes[0])
            for i in range(len(nodes) - 1):
                flow.connect(nodes[i], DEFAULT_ACTION, nodes[i + 1])
            return flow

    def create_dynamic_pipeline(factory: ProcessingFlowFactory, configs: list[FlowConfig]) -> Flow:
        start_node = visit(trail, "start")
        pipeline = Flow(start_node)
        previous: Node = start_node
        for config in configs:
            flow = factory.create_flow(config)
            pipeline.connect(previous, DEFAULT_ACTION, flow)
            previous = flow
        return pipeline

    pipeline = create_dynamic_pipeline(ProcessingFlowFactory(), [FlowConfig(["a1", "a2"]), FlowConfig(["b1"])])
    pipeline.run()
    assert trail == ["start", "a1", "a2", "b1"]


def create_recursive_processing_flow(max_depth: int, processed: list[int]) -> Flow:
    """The docs' recursive pattern: a flow whose process node leads back into the flow itself."""

    def prep(ctx: Context, shared: SharedStore) -> Any:
        return shared.get_int("recursion_depth")

    def exec_(ctx: Context, depth: Any) -> Any:
        if depth >= max_depth:
            return "terminate"
        return "recurse"

    def post(ctx: Context, shared: SharedStore, depth: Any, exec_result: Any) -> str:
        if exec_result == "recurse":
            shared.set("recursion_depth", depth + 1)
        return exec_result

    depth_check = Node(prep=prep, exec=exec_, post=post)
    process_node = Node(
        prep=lambda ctx, shared: shared.get_int("recursion_depth"), exec=lambda c, d: processed.append(d)
    )
    flow = Flow(depth_check)
    flow.connect(depth_check, "recurse", process_node)
    flow.connect(process_node, DEFAULT_ACTION, flow)  # recursive reference
    flow.connect(depth_check, "terminate", None)
    return flow


def test_flow_as_node__recursive_flow_patterns() -> None:
    """### Recursive Flow Patterns — a flow containing itself recurses until the depth
    check says ``terminate``."""
    processed: list[int] = []
    shared = SharedStore()
    assert create_recursive_processing_flow(3, processed).run(shared) == "terminate"
    assert shared.get_int("recursion_depth") == 3
    assert processed == [1, 2, 3]


def test_flow_as_node__flow_middleware(caplog: pytest.LogCaptureFixture) -> None:
    """### Flow Middleware — ``withLogging`` wraps a flow between a start and an end log."""
    trail: list[str] = []

    def with_logging(name: str, flow: Flow) -> Flow:
        def log_start_exec(ctx: Context, prep_result: Any) -> Any:
            log.info("[%s] Flow starting", name)
            return prep_result

        def log_end_exec(ctx: Context, prep_result: Any) -> Any:
            log.info("[%s] Flow completed", name)
            return prep_result

        log_start, log_end = Node(exec=log_start_exec), Node(exec=log_end_exec)
        wrapped = Flow(log_start)
        wrapped.connect(log_start, DEFAULT_ACTION, flow)
        wrapped.connect(flow, DEFAULT_ACTION, log_end)
        return wrapped

    step = visit(trail, "process")
    process_flow = Flow(step)
    with caplog.at_level(logging.INFO, logger=log.name):
        with_logging("ProcessingPipeline", process_flow).run()
    assert trail == ["process"]
    assert [r.getMessage() for r in caplog.records] == [
        "[ProcessingPipeline] Flow starting",
        "[ProcessingPipeline] Flow completed",
    ]


def test_flow_as_node__testing_flows_as_nodes() -> None:
    """### Testing Flows as Nodes — calling a flow's Prep, Exec and Post by hand runs it
    and yields the default action."""
    inner_flow = Flow(Node(exec=lambda ctx, p: "inner_result"))
    ctx = Context.background()
    shared = SharedStore()
    prep_result = inner_flow.prep(ctx, shared)
    exec_result = inner_flow.exec(ctx, prep_result)
    action = inner_flow.post(ctx, shared, prep_result, exec_result)
    assert action == DEFAULT_ACTION


def test_flow_as_node__performance_considerations() -> None:
    """### Performance Considerations — a lightweight flow of three steps and the optimized
    node that inlines them compute the same result."""

    def step1(x: int) -> int:
        return x + 1

    def step2(x: int) -> int:
        return x * 10

    def step3(x: int) -> int:
        return x - 3

    def stage(fn: Callable[[int], int]) -> Node:
        return Node(
            prep=lambda ctx, s: s.get_int("value"), exec=lambda c, p: fn(p), post=lambda c, s, p, e: s.set("value", e)
        )

    nodes = [stage(step1), stage(step2), stage(step3)]
    lightweight = Flow(nodes[0]).connect(nodes[0], DEFAULT_ACTION, nodes[1]).connect(nodes[1], DEFAULT_ACTION, nodes[2])
    optimized = Node(
        prep=lambda ctx, s: s.get_int("value"),
        exec=lambda ctx, p: step3(step2(step1(p))),
        post=lambda ctx, s, p, e: s.set("value", e),
    )
    as_flow, inlined = SharedStore({"value": 4}), SharedStore({"value": 4})
    lightweight.run(as_flow)
    run(optimized, inlined)
    assert as_flow["value"] == inlined["value"] == 47


# =======================================================================================
# Nested Flows
# =======================================================================================
@pytest.mark.parametrize(
    ("schema", "expected", "action"),
    [
        ("valid", ["fetch", "schemaCheck", "businessRules", "process"], DEFAULT_ACTION),
        ("invalid", ["fetch", "schemaCheck"], "invalid"),
    ],
)
def test_nested_flows__basic_nested_flow(schema: str, expected: list[str], action: str) -> None:
    """### Basic Nested Flow — a validation sub-flow: ``invalid`` ends it (nil), and its
    action then finds no connection in the main flow, so process is skipped."""
    trail: list[str] = []

    def create_validation_flow() -> Flow:
        schema_check, business_rules = visit(trail, "schemaCheck", schema), visit(trail, "businessRules")
        flow = Flow(schema_check)
        flow.connect(schema_check, "valid", business_rules)
        flow.connect(schema_check, "invalid", None)
        return flow

    validation_flow = create_validation_flow()
    fetch_node, process_node = visit(trail, "fetch"), visit(trail, "process")
    main_flow = Flow(fetch_node)
    main_flow.connect(fetch_node, DEFAULT_ACTION, validation_flow)
    main_flow.connect(validation_flow, DEFAULT_ACTION, process_node)
    assert main_flow.run() == action
    assert trail == expected


def test_nested_flows__reusable_flow_components() -> None:
    """### Reusable Flow Components — the auth flow refreshes an expired token; one
    factory serves two different flows."""
    refreshed: list[str] = []

    def validate_token(token: str) -> str:
        return "expired" if token.startswith("old") else "valid"

    def refresh_auth_token() -> str:
        refreshed.append("refresh")
        return "new-token"

    def create_auth_flow() -> Flow:
        check_token = Node(
            prep=lambda ctx, shared: shared.get_str("token"),
            exec=lambda ctx, token: validate_token(token),
            post=lambda ctx, shared, p, e: e,
        )
        refresh_token = Node(
            exec=lambda ctx, p: refresh_auth_token(), post=lambda ctx, shared, p, e: shared.set("token", e)
        )
        flow = Flow(check_token)
        flow.connect(check_token, "expired", refresh_token)
        flow.connect(check_token, "valid", None)
        flow.connect(refresh_token, DEFAULT_ACTION, None)
        return flow

    trail: list[str] = []
    start_node, admin_node = visit(trail, "start"), visit(trail, "admin")
    api_flow = Flow(start_node).connect(start_node, DEFAULT_ACTION, create_auth_flow())
    admin_flow = Flow(admin_node).connect(admin_node, DEFAULT_ACTION, create_auth_flow())

    api_shared = SharedStore({"token": "old-1"})
    assert api_flow.run(api_shared) == DEFAULT_ACTION
    assert api_shared["token"] == "new-token" and refreshed == ["refresh"]
    admin_shared = SharedStore({"token": "fresh-2"})
    assert admin_flow.run(admin_shared) == "valid"
    assert admin_shared["token"] == "fresh-2" and refreshed == ["refresh"]
    assert trail == ["start", "admin"]


def test_nested_flows__hierarchical_workflows() -> None:
    """### Hierarchical Workflows — application → user operation → database operation."""
    trail: list[str] = []

    def create_database_operation() -> Flow:
        connect, query, disconnect = visit(trail, "connect"), visit(trail, "query"), visit(trail, "disconnect")
        return Flow(connect).connect(connect, DEFAULT_ACTION, query).connect(query, DEFAULT_ACTION, disconnect)

    def create_user_operation() -> Flow:
        validate, db_op, notify = (
            visit(trail, "validateUser", "valid"),
            create_database_operation(),
            visit(trail, "notify"),
        )
        return Flow(validate).connect(validate, "valid", db_op).connect(db_op, DEFAULT_ACTION, notify)

    def create_application_flow() -> Flow:
        auth, user_op, audit = Flow(visit(trail, "auth")), create_user_operation(), Flow(visit(trail, "audit"))
        return Flow(auth).connect(auth, DEFAULT_ACTION, user_op).connect(user_op, DEFAULT_ACTION, audit)

    create_application_flow().run()
    assert trail == ["auth", "validateUser", "connect", "query", "disconnect", "notify", "audit"]


@pytest.mark.parametrize("request_type", ["user", "admin", "api"])
def test_nested_flows__conditional_nesting(request_type: str) -> None:
    """### Conditional Nesting — the request type chooses the nested flow."""

    @dataclass
    class Request:
        type: str

    trail: list[str] = []
    router_node = Node(
        prep=lambda ctx, shared: shared.get("request"),
        exec=lambda ctx, request: request.type,
        post=lambda ctx, shared, p, e: e,
    )
    main_flow = Flow(router_node)
    for name in ("user", "admin", "api"):
        main_flow.connect(router_node, name, Flow(visit(trail, f"{name}Flow")))
    main_flow.run(SharedStore({"request": Request(request_type)}))
    assert trail == [f"{request_type}Flow"]


def test_nested_flows__shared_context_in_nested_flows() -> None:
    """### Shared Context in Nested Flows — the nested flow works on the parent's store: it
    sees ``parent_data``, and what it sets is visible to the parent afterwards."""
    parent_context = {"tenant": "acme", "locale": "fr"}
    seen: list[Any] = []

    def create_nested_flow_with_context(parent_context: dict[str, Any]) -> Flow:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            for k, v in parent_context.items():
                shared.set(k, v)
            return shared.get_dict("parent_data")

        def exec_(ctx: Context, prep_result: Any) -> Any:
            seen.append({**prep_result, **parent_context})

        return Flow(Node(prep=prep, exec=exec_))

    nested = create_nested_flow_with_context(parent_context)
    start = Node(post=lambda ctx, shared, p, e: shared.set("parent_data", {"order": 9}))
    shared = SharedStore()
    Flow(start).connect(start, DEFAULT_ACTION, nested).run(shared)
    assert seen == [{"order": 9, "tenant": "acme", "locale": "fr"}]
    assert shared["tenant"] == "acme" and shared["locale"] == "fr"


@pytest.mark.parametrize(
    ("recovers", "expected", "action"),
    [
        (True, ["start", "sub", "errorHandler", "sub", "success"], DEFAULT_ACTION),
        (False, ["start", "sub", "errorHandler"], "abort"),
    ],
)
def test_nested_flows__error_propagation(recovers: bool, expected: list[str], action: str) -> None:
    """### Error Propagation — a sub-flow's ``error`` action reaches the main flow's error
    handler, which retries the sub-flow or aborts."""
    trail: list[str] = []
    runs = {"sub": 0}

    def sub_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        trail.append("sub")
        runs["sub"] += 1
        return "error" if runs["sub"] == 1 else DEFAULT_ACTION

    sub_flow = Flow(Node(post=sub_post))
    start_node, success_node = visit(trail, "start"), visit(trail, "success")
    error_handler = visit(trail, "errorHandler", "retry" if recovers else "abort")
    main_flow = Flow(start_node)
    main_flow.connect(start_node, DEFAULT_ACTION, sub_flow)
    main_flow.connect(sub_flow, "error", error_handler)
    main_flow.connect(sub_flow, DEFAULT_ACTION, success_node)
    main_flow.connect(error_handler, "retry", sub_flow)
    main_flow.connect(error_handler, "abort", None)
    assert main_flow.run() == action
    assert trail == expected


def test_nested_flows__error_propagation__exceptions() -> None:
    """### Error Propagation — an exception inside a nested flow surfaces from the outer
    run as the failing node's ``NodeError``, not re-wrapped by the enclosing flows."""
    boom = Node(exec=lambda ctx, p: 1 / 0, name="divide")
    inner = Flow(boom)
    outer = Flow(Flow(inner))
    with pytest.raises(NodeError) as info:
        outer.run()
    assert info.value.node is boom and info.value.phase == "exec"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_nested_flows__recursive_flows() -> None:
    """### Recursive Flows — ``continue`` recurses into the flow itself until ``max_depth``."""
    processed: list[int] = []

    def create_recursive_flow(max_depth: int) -> Flow:
        def exec_(ctx: Context, depth: Any) -> Any:
            if depth >= max_depth:
                return "max_depth"
            return "continue"

        def post(ctx: Context, shared: SharedStore, depth: Any, exec_result: Any) -> str:
            if exec_result == "continue":
                shared.set("depth", depth + 1)
            return exec_result

        check_depth = Node(prep=lambda ctx, shared: shared.get_int("depth"), exec=exec_, post=post)
        process_node = Node(prep=lambda ctx, shared: shared.get_int("depth"), exec=lambda c, d: processed.append(d))
        flow = Flow(check_depth)
        flow.connect(check_depth, "continue", process_node)
        flow.connect(process_node, DEFAULT_ACTION, flow)
        flow.connect(check_depth, "max_depth", None)
        return flow

    shared = SharedStore()
    assert create_recursive_flow(4).run(shared) == "max_depth"
    assert shared.get_int("depth") == 4
    assert processed == [1, 2, 3, 4]


@pytest.mark.parametrize(("chosen", "other"), [("flow1", "flow2"), ("flow2", "flow1")])
def test_nested_flows__parallel_nested_flows(chosen: str, other: str) -> None:
    """### Parallel Nested Flows — the section claims both sub-flows run after the split;
    a node returns exactly one action, so only the branch it names runs before the merge
    (run several flows at once with a BatchFlow instead)."""
    trail: list[str] = []

    def split_post(ctx: Context, shared: SharedStore, data: Any, exec_result: Any) -> str:
        shared.set("part1", data["part1"])  # the Go snippet writes these from exec, where
        shared.set("part2", data["part2"])  # no store is in scope: they belong in post
        return chosen

    def processing_flow(name: str, part: str, result_key: str) -> Flow:
        def exec_(ctx: Context, value: Any) -> Any:
            trail.append(name)
            return {"value": value * 2}

        return Flow(Node(prep=lambda c, s: s.get_int(part), exec=exec_, post=lambda c, s, p, e: s.set(result_key, e)))

    merged: list[Any] = []
    split_node = Node(prep=lambda ctx, shared: shared.get_dict("data"), post=split_post)
    flow1, flow2 = processing_flow("flow1", "part1", "result1"), processing_flow("flow2", "part2", "result2")
    merge_node = Node(
        prep=lambda ctx, shared: {"result1": shared.get_dict("result1"), "result2": shared.get_dict("result2")},
        exec=lambda ctx, p: merged.append(p),
    )
    main_flow = Flow(split_node)
    main_flow.connect(split_node, "flow1", flow1)
    main_flow.connect(split_node, "flow2", flow2)
    main_flow.connect(flow1, DEFAULT_ACTION, merge_node)
    main_flow.connect(flow2, DEFAULT_ACTION, merge_node)
    main_flow.run(SharedStore({"data": {"part1": 1, "part2": 2}}))
    assert trail == [chosen]
    expected = {"result1": {"value": 2}, "result2": {"value": 4}}
    expected[other.replace("flow", "result")] = None
    assert merged == [expected]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (["validate", "process", "save"], ["start", "validate", "process", "save"]),
        (["process", "unknown", "save"], ["start", "process", "save"]),
        ([], ["start"]),
    ],
)
def test_nested_flows__dynamic_flow_composition(steps: list[str], expected: list[str]) -> None:
    """### Dynamic Flow Composition — one sub-flow per known step type, chained in order;
    unknown step types are skipped."""
    trail: list[str] = []

    @dataclass
    class Step:
        type: str
        config: dict[str, Any] = field(default_factory=dict)

    @dataclass
    class FlowConfig:
        steps: list[Step]

    def create_dynamic_flow(config: FlowConfig) -> Flow:
        start_node = visit(trail, "start")
        flow = Flow(start_node)
        previous_node: Node = start_node
        for step in config.steps:
            step_flow = Flow(visit(trail, step.type)) if step.type in ("validate", "process", "save") else None
            if step_flow is not None:
                flow.connect(previous_node, DEFAULT_ACTION, step_flow)
                previous_node = step_flow
        return flow

    create_dynamic_flow(FlowConfig([Step(t) for t in steps])).run()
    assert trail == expected


def test_nested_flows__testing_nested_flows() -> None:
    """### Testing Nested Flows — test the sub-flow on its own, then the main flow with a
    mock in the sub-flow's place."""
    sub_flow = Flow(
        Node(prep=lambda ctx, shared: shared.get_str("test_input"), post=lambda c, s, p, e: s.set("out", p))
    )
    sub_shared = SharedStore()
    sub_shared.set("test_input", "data")
    sub_flow.run(sub_shared, ctx=Context.background())
    assert sub_shared["out"] == "data"

    mock_sub_flow = Node(exec=lambda ctx, p: "mocked_result")
    trail: list[str] = []
    start_node = visit(trail, "start")
    main_flow = Flow(start_node).connect(start_node, DEFAULT_ACTION, mock_sub_flow)
    ctx, events = observed()
    assert main_flow.run(SharedStore(), ctx=ctx) == DEFAULT_ACTION
    assert trail == ["start"]
    assert exec_results(events, "<lambda>") == ["mocked_result"]


# =======================================================================================
# Error Handling & Retries
# =======================================================================================
@pytest.mark.parametrize(("healthy_after", "calls", "action"), [(None, 3, "degraded"), (2, 2, DEFAULT_ACTION)])
def test_error_handling__basic_retry_configuration(healthy_after: int | None, calls: int, action: str) -> None:
    """### Basic Retry Configuration — up to 3 attempts a second apart; after the last
    failure the fallback is called once and its nil result is handled in post."""
    attempts: list[int] = []
    fallbacks: list[BaseException] = []

    def call_flakey_api() -> Any:
        attempts.append(1)
        if len(attempts) != healthy_after:
            raise NetworkError("upstream down")
        return {"ok": True}

    def fallback(prep_result: Any, err: BaseException) -> Any:
        fallbacks.append(err)
        return None  # return nil to handle in post

    def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("api_result", exec_result)
        return "degraded" if exec_result is None else DEFAULT_ACTION

    node = Node(exec=lambda ctx, p: call_flakey_api(), max_retries=3, wait=SECOND, fallback=fallback, post=post)
    ctx, events = observed()
    shared = SharedStore()
    assert run(node, shared, ctx=ctx) == action
    assert len(attempts) == calls
    if healthy_after is None:
        assert len(fallbacks) == 1 and isinstance(fallbacks[0], NetworkError)
        assert [f.wait for f in failures(events)] == [SECOND, SECOND, 0.0]
        assert sum(isinstance(e, FallbackUsed) for e in events) == 1
        assert shared["api_result"] is None
    else:
        assert fallbacks == []
        assert shared["api_result"] == {"ok": True}


class BackoffNode(Node):
    """The docs' BackoffNode: five attempts, waiting 2^attempt (scaled) seconds."""

    def __init__(self, call_api: Callable[[], Any]) -> None:
        super().__init__()
        self.attempt = 0
        self.call_api = call_api

    def get_max_retries(self) -> int:
        return 5

    def get_wait(self) -> float:
        return (2**self.attempt) * SECOND

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        self.attempt += 1
        try:
            result = self.call_api()
        except Exception as err:
            log.info("Attempt %d failed: %s", self.attempt, err)
            raise
        self.attempt = 0  # reset on success
        return result


def test_error_handling__exponential_backoff() -> None:
    """### Exponential Backoff — ``GetWait`` is read before every retry, so the waits double
    (2, 4, 8 scaled seconds: ``attempt`` was already incremented by the failed exec; the
    snippet's comment says 1s, 2s, ... but its code starts at 2s)."""
    calls: list[int] = []

    def call_api() -> Any:
        calls.append(1)
        if len(calls) <= 3:
            raise NetworkError("busy")
        return "data"

    node = BackoffNode(call_api)
    assert isinstance(node, RetryableNode)
    ctx, events = observed()
    run(node, ctx=ctx)
    assert len(calls) == 4
    assert [f.wait for f in failures(events)] == [2 * SECOND, 4 * SECOND, 8 * SECOND]
    assert exec_results(events, "BackoffNode") == ["data"]
    assert node.attempt == 0


def test_error_handling__exponential_backoff__gives_up_after_five() -> None:
    """### Exponential Backoff — ``GetMaxRetries`` = 5: five attempts, then the run fails."""
    calls: list[int] = []

    def call_api() -> Any:
        calls.append(1)
        raise NetworkError("down")

    ctx, events = observed()
    with pytest.raises(NodeError) as info:
        run(BackoffNode(call_api), ctx=ctx)
    assert len(calls) == 5 and info.value.attempts == 5
    assert [f.wait for f in failures(events)] == [2 * SECOND, 4 * SECOND, 8 * SECOND, 16 * SECOND, 0.0]


class CircuitBreakerNode(Node):
    """The docs' CircuitBreakerNode (Error Handling chapter), with an injectable clock."""

    def __init__(self, call_service: Callable[[], Any], clock: FakeClock) -> None:
        super().__init__()
        self.call_service = call_service
        self.clock = clock
        self.failures = 0
        self.last_failure = 0.0
        self.threshold = 5
        self.timeout = 30.0

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        if self.failures >= self.threshold:
            if self.clock() - self.last_failure < self.timeout:
                raise RuntimeError("circuit breaker open")
            self.failures = 0  # reset after timeout
        try:
            result = self.call_service()
        except Exception:
            self.failures += 1
            self.last_failure = self.clock()
            raise
        self.failures = 0  # reset on success
        return result


def test_error_handling__circuit_breaker_pattern() -> None:
    """### Circuit Breaker Pattern — after 5 failures the circuit opens and the service is
    not called until the 30 s timeout has passed; a success closes it again."""
    clock = FakeClock()
    service = {"calls": 0, "healthy": False}

    def call_service() -> Any:
        service["calls"] += 1
        if not service["healthy"]:
            raise NetworkError("service down")
        return "ok"

    node = CircuitBreakerNode(call_service, clock)
    for _ in range(5):
        with pytest.raises(NodeError) as info:
            run(node)
        assert isinstance(info.value.__cause__, NetworkError)
    assert service["calls"] == 5

    clock.advance(29)
    with pytest.raises(NodeError, match="circuit breaker open"):
        run(node)
    assert service["calls"] == 5  # the open circuit spared the service

    clock.advance(2)
    service["healthy"] = True
    ctx, events = observed()
    run(node, ctx=ctx)
    assert exec_results(events, "CircuitBreakerNode") == ["ok"]
    assert node.failures == 0 and service["calls"] == 6


class CachedAPINode(Node):
    """The docs' CachedAPINode (Error Handling chapter): cache fresh data, serve it on failure."""

    def __init__(self, fetch_from_api: Callable[[str], Any]) -> None:
        super().__init__()
        self.fetch_from_api = fetch_from_api
        self.cache: dict[str, Any] = {}
        self.lock = threading.Lock()

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get_str("key")

    def exec(self, ctx: Context, key: Any) -> Any:
        data = self.fetch_from_api(key)
        with self.lock:
            self.cache[key] = data
        return data

    def exec_fallback(self, key: Any, error: BaseException) -> Any:
        with self.lock:
            if key in self.cache:
                log.info("Returning cached data for %s due to error: %s", key, error)
                return self.cache[key]
        return {"status": "unavailable", "cached": False}

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        shared.set("data", exec_result)
        return None


def test_error_handling__fallback_on_failure() -> None:
    """### Fallback on Failure — fresh data is cached; when the API fails the cached copy is
    returned, and a key never cached gets the ``unavailable`` default."""
    api = {"up": True}

    def fetch_from_api(key: str) -> Any:
        if not api["up"]:
            raise NetworkError("api down")
        return {"key": key, "fresh": True}

    node = CachedAPINode(fetch_from_api)
    shared = SharedStore({"key": "user:1"})
    run(node, shared)
    assert shared["data"] == {"key": "user:1", "fresh": True}

    api["up"] = False
    shared.set("data", None)
    run(node, shared)
    assert shared["data"] == {"key": "user:1", "fresh": True}  # from the cache

    other = SharedStore({"key": "user:2"})
    run(node, other)
    assert other["data"] == {"status": "unavailable", "cached": False}


def test_error_handling__error_aggregation() -> None:
    """### Error Aggregation — a ``BatchError`` carries every item's error and a message of
    the form "2/5 items failed", the same form the engine's BatchNode uses."""

    def process_item(item: int) -> None:
        if item < 0:
            raise ValueError(f"negative value: {item}")

    def process_batch(ctx: Context, items: list[int]) -> None:
        errs: list[BaseException | None] = []
        for i, item in enumerate(items):
            try:
                process_item(item)
            except ValueError as err:
                errs.append(RuntimeError(f"item {i}: {err}"))
        if errs:
            raise BatchError(f"{len(errs)}/{len(items)} items failed", errs, [])

    items = [1, -2, 3, -4, 5]
    with pytest.raises(BatchError) as info:
        process_batch(Context.background(), items)
    assert isinstance(info.value, FlytError)
    assert info.value.message == "2/5 items failed"
    assert [str(e) for e in info.value.errors] == ["item 1: negative value: -2", "item 3: negative value: -4"]

    shared = SharedStore({"items": items})
    with pytest.raises(BatchError) as engine:
        run(BatchNode(lambda ctx, item: process_item(item)), shared)
    assert engine.value.message == info.value.message


def test_error_handling__retry_with_jitter() -> None:
    """### Retry with Jitter — each wait is ``attempt`` seconds plus up to one second of
    random jitter, and the engine waits exactly what ``GetWait`` returned."""
    returned: list[float] = []

    class JitterNode(Node):
        max_retries = 3

        def __init__(self) -> None:
            super().__init__()
            self.attempt = 0
            self.rand = random.Random(7)

        def get_wait(self) -> float:
            base = SECOND * self.attempt
            jitter = self.rand.randrange(1000) * SECOND / 1000
            returned.append(base + jitter)
            return base + jitter

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            self.attempt += 1
            if self.attempt < 3:
                raise NetworkError("thundering herd")
            return "ok"

    ctx, events = observed()
    run(JitterNode(), ctx=ctx)
    waits = [f.wait for f in failures(events)]
    assert waits == returned and len(waits) == 2
    assert SECOND <= waits[0] < 2 * SECOND and 2 * SECOND <= waits[1] < 3 * SECOND


class PermanentError(Exception):
    """A business-logic failure that retrying cannot fix."""


class SelectiveRetryNode(Node):
    """The docs' SelectiveRetryNode: network errors are retried, anything else is permanent."""

    def __init__(self, call_api: Callable[[], Any]) -> None:
        super().__init__()
        self.call_api = call_api
        self.last_error: BaseException | None = None

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        try:
            result = self.call_api()
        except NetworkError as err:
            self.last_error = err
            raise  # will be retried
        except Exception as err:
            self.last_error = PermanentError(f"permanent error: {err}")
            raise self.last_error from err  # don't retry business logic errors
        self.last_error = None
        return result

    def get_max_retries(self) -> int:
        if self.last_error is not None and not isinstance(self.last_error, NetworkError):
            return 0  # don't retry
        return 3


@pytest.mark.parametrize(
    ("errors", "calls", "outcome"),
    [
        ([NetworkError("reset")], 2, "ok"),
        ([NetworkError("reset")] * 3, 3, NetworkError),
        ([ValueError("insufficient funds")], 1, PermanentError),
    ],
)
def test_error_handling__selective_retry(errors: list[Exception], calls: int, outcome: Any) -> None:
    """### Selective Retry — network errors are retried (3 attempts), a business error
    stops retrying at once because ``GetMaxRetries`` is read again before each retry."""
    made: list[int] = []

    def call_api() -> Any:
        made.append(1)
        if len(made) <= len(errors):
            raise errors[len(made) - 1]
        return "ok"

    node = SelectiveRetryNode(call_api)
    ctx, events = observed()
    if outcome == "ok":
        run(node, ctx=ctx)
        assert exec_results(events, "SelectiveRetryNode") == ["ok"]
    else:
        with pytest.raises(NodeError) as info:
            run(node, ctx=ctx)
        assert isinstance(info.value.__cause__, outcome)
        assert info.value.attempts == calls
    assert len(made) == calls


@dataclass
class ErrorContext:
    node: str
    action: str
    input: Any
    error: BaseException
    timestamp: float
    attempts: int


@pytest.mark.parametrize(("fail_times", "action", "runs"), [(5, "error", 3), (1, DEFAULT_ACTION, 2)])
def test_error_handling__error_context(fail_times: int, action: str, runs: int) -> None:
    """### Error Context — a failure is recorded with node, input and attempt count; post
    loops through ``retry`` while attempts remain, then returns ``error``."""

    class DetailedErrorNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.attempts = 0
            self.max_retries_allowed = 3

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("payload")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            self.attempts += 1
            if self.attempts <= fail_times:
                raise RuntimeError(f"attempt {self.attempts} failed")
            return "done"

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            return error

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if isinstance(exec_result, Exception):
                shared.set(
                    "last_error",
                    ErrorContext("DetailedErrorNode", "process", prep_result, exec_result, time.time(), self.attempts),
                )
                if self.attempts < self.max_retries_allowed:
                    return "retry"
                return "error"
            return DEFAULT_ACTION

    node = DetailedErrorNode()
    shared = SharedStore({"payload": {"id": 1}})
    assert Flow(node).connect(node, "retry", node).run(shared) == action
    assert node.attempts == runs
    error_ctx = shared.bind("last_error", ErrorContext)
    assert (error_ctx.node, error_ctx.input) == ("DetailedErrorNode", {"id": 1})
    assert error_ctx.attempts == min(runs, fail_times)
    assert str(error_ctx.error) == f"attempt {error_ctx.attempts} failed"


class TimeoutNode(Node):
    """The docs' TimeoutNode: the operation runs elsewhere; exec gives up at its deadline."""

    def __init__(self, operation: Callable[[], Any], timeout: float) -> None:
        super().__init__()
        self.operation = operation
        self.timeout = timeout

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        ctx, cancel = ctx.with_timeout(self.timeout)
        try:
            outcome: queue.Queue[tuple[str, Any]] = queue.Queue()

            def work() -> None:
                try:
                    outcome.put(("result", self.operation()))
                except Exception as err:
                    outcome.put(("error", err))

            threading.Thread(target=work, daemon=True).start()
            while True:
                try:
                    kind, value = outcome.get(timeout=SECOND)
                except queue.Empty:
                    if ctx.cancelled:
                        raise RuntimeError(f"operation timed out: {ctx.error()}") from ctx.error()
                    continue
                if kind == "error":
                    raise value
                return value
        finally:
            cancel()


def test_error_handling__timeout_handling() -> None:
    """### Timeout Handling — a hanging operation fails the node with "operation timed
    out" (caused by the deadline); a quick one returns its result; its error propagates."""
    release = threading.Event()

    def long_running_operation() -> Any:
        release.wait(1)
        return "late"

    try:
        with pytest.raises(NodeError, match="operation timed out") as info:
            run(TimeoutNode(long_running_operation, 30 * SECOND))
        assert isinstance(info.value.__cause__.__cause__, DeadlineExceeded)
    finally:
        release.set()

    ctx, events = observed()
    run(TimeoutNode(lambda: "quick", 30 * SECOND), ctx=ctx)
    assert exec_results(events, "TimeoutNode") == ["quick"]

    def broken() -> Any:
        raise ValueError("bad request")

    with pytest.raises(NodeError) as failed:
        run(TimeoutNode(broken, 30 * SECOND))
    assert isinstance(failed.value.__cause__, ValueError)


# =======================================================================================
# Fallback on Failure
# =======================================================================================
class DefaultValueNode(Node):
    """The docs' DefaultValueNode: a safe default when the primary source fails."""

    def __init__(self, fetch_from_primary_source: Callable[[], Any]) -> None:
        super().__init__()
        self.fetch = fetch_from_primary_source

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        return self.fetch()  # an exception here triggers the fallback

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        log.info("Primary source failed: %s, returning default", error)
        return {"status": "degraded", "data": "default_value", "error": str(error)}

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        shared.set("result", exec_result)
        return None


def test_fallback_on_failure__fallback_node_interface() -> None:
    """### FallbackNode Interface — a node with ``ExecFallback`` satisfies the interface;
    so does every Node (its default re-raises), and an unrelated object does not."""
    assert isinstance(DefaultValueNode(lambda: 1), FallbackNode)
    assert isinstance(Node(), FallbackNode)
    assert not isinstance(object(), FallbackNode)

    with pytest.raises(NodeError) as info:
        run(Node(exec=lambda ctx, p: 1 / 0))  # the default fallback re-raises the error
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_fallback_on_failure__basic_fallback() -> None:
    """### Basic Fallback — the failure becomes a degraded default result."""

    def fetch_from_primary_source() -> Any:
        raise NetworkError("primary down")

    shared = SharedStore()
    ctx, events = observed()
    assert run(DefaultValueNode(fetch_from_primary_source), shared, ctx=ctx) == DEFAULT_ACTION
    assert shared["result"] == {"status": "degraded", "data": "default_value", "error": "primary down"}
    assert [type(e.error) for e in events if isinstance(e, FallbackUsed)] == [NetworkError]

    healthy = SharedStore()
    run(DefaultValueNode(lambda: {"status": "ok"}), healthy)
    assert healthy["result"] == {"status": "ok"}


def test_fallback_on_failure__cached_fallback() -> None:
    """### Cached Fallback — on failure the cached entry comes back with its age and the
    error; with nothing cached the fallback itself fails ("no fallback available")."""
    clock = FakeClock()
    api = {"up": True}

    @dataclass
    class CacheEntry:
        data: Any
        timestamp: float

    def fetch_from_api(key: str) -> Any:
        if not api["up"]:
            raise NetworkError("api down")
        return f"fresh {key}"

    class CachedAPINode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.cache: dict[str, CacheEntry] = {}
            self.mu = threading.RLock()

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_str("key")

        def exec(self, ctx: Context, key: Any) -> Any:
            data = fetch_from_api(key)
            with self.mu:
                self.cache[key] = CacheEntry(data, clock())
            return data

        def exec_fallback(self, key: Any, error: BaseException) -> Any:
            with self.mu:
                entry = self.cache.get(key)
            if entry is not None:
                age = clock() - entry.timestamp
                return {"data": entry.data, "cached": True, "cache_age": age, "error": str(error)}
            raise RuntimeError(f"no fallback available: {error}") from error

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("result", exec_result)
            return None

    node = CachedAPINode()
    shared = SharedStore({"key": "k1"})
    run(node, shared)
    assert shared["result"] == "fresh k1"

    api["up"] = False
    clock.advance(5)
    run(node, shared)
    assert shared["result"] == {"data": "fresh k1", "cached": True, "cache_age": 5.0, "error": "api down"}

    with pytest.raises(NodeError, match="no fallback available") as info:
        run(node, SharedStore({"key": "k2"}))
    assert info.value.phase == "exec"
    assert isinstance(info.value.__cause__.__cause__, NetworkError)


def test_fallback_on_failure__multi_level_fallback() -> None:
    """### Multi-Level Fallback — primary, then secondary, then the last good data, then a
    minimal default."""
    up = {"primary": True, "secondary": True}

    def fetch_from_url(url: str) -> Any:
        if not up[url]:
            raise NetworkError(f"{url} down")
        return {"source": url}

    class MultiLevelFallbackNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.primary_url, self.secondary_url = "primary", "secondary"
            self.cache: dict[str, Any] = {}

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            data = fetch_from_url(self.primary_url)
            self.cache["last_good"] = data
            return data

        def exec_fallback(self, prep_result: Any, primary_err: BaseException) -> Any:
            try:
                return fetch_from_url(self.secondary_url)  # level 1
            except NetworkError:
                pass
            if "last_good" in self.cache:  # level 2
                return self.cache["last_good"]
            return {"status": "unavailable", "message": "Service temporarily unavailable"}  # level 3

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("result", exec_result)
            return None

    def result_of(node: Node) -> Any:
        shared = SharedStore()
        run(node, shared)
        return shared["result"]

    node = MultiLevelFallbackNode()
    assert result_of(node) == {"source": "primary"}
    up["primary"] = False
    assert result_of(node) == {"source": "secondary"}
    up["secondary"] = False
    assert result_of(node) == {"source": "primary"}  # the last good data
    assert result_of(MultiLevelFallbackNode()) == {
        "status": "unavailable",
        "message": "Service temporarily unavailable",
    }


def test_fallback_on_failure__partial_fallback() -> None:
    """### Partial Fallback — when some items fail the fallback returns the partial results
    with the counts of successes and errors."""

    def process_item(item: int) -> int:
        if item < 0:
            raise ValueError(f"bad item {item}")
        return item * 10

    class BatchProcessorNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.results: list[int] = []
            self.errors: list[BaseException] = []

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, items: Any) -> Any:
            self.results, self.errors = [], []
            for item in items:
                try:
                    self.results.append(process_item(item))
                except ValueError as err:
                    self.errors.append(err)
            if self.errors:
                raise RuntimeError(f"processing failed: {len(self.errors)} errors")
            return self.results

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            return {
                "partial_results": self.results,
                "success_count": len(self.results),
                "error_count": len(self.errors),
                "errors": self.errors,
                "status": "partial_success",
            }

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("outcome", exec_result)
            return None

    shared = SharedStore({"items": [1, -1, 2, -3, 4]})
    run(BatchProcessorNode(), shared)
    outcome = shared["outcome"]
    assert outcome["partial_results"] == [10, 20, 40]
    assert (outcome["success_count"], outcome["error_count"], outcome["status"]) == (3, 2, "partial_success")
    assert [str(e) for e in outcome["errors"]] == ["bad item -1", "bad item -3"]

    clean = SharedStore({"items": [1, 2]})
    run(BatchProcessorNode(), clean)
    assert clean["outcome"] == [10, 20]


def test_fallback_on_failure__circuit_breaker_fallback() -> None:
    """### Circuit Breaker Fallback — below the threshold a failure degrades; once open the
    service is skipped and the fallback reports ``circuit_open`` with ``retry_after``."""
    clock = FakeClock()
    service = {"calls": 0, "healthy": False}

    def call_service(prep_result: Any) -> Any:
        service["calls"] += 1
        if not service["healthy"]:
            raise NetworkError("down")
        return "ok"

    class CircuitBreakerNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.failures, self.last_failure = 0, 0.0
            self.threshold, self.timeout = 2, 10.0
            self.fallback_msg = "Using cached response"

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            if self.is_circuit_open():
                raise RuntimeError("circuit breaker open")
            try:
                result = call_service(prep_result)
            except NetworkError:
                self.record_failure()
                raise
            self.reset()
            return result

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            if self.is_circuit_open():
                return {
                    "status": "circuit_open",
                    "message": self.fallback_msg,
                    "retry_after": self.timeout - (clock() - self.last_failure),
                }
            return {"status": "degraded", "message": "Service temporarily unavailable"}

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("response", exec_result)
            return None

        def is_circuit_open(self) -> bool:
            return self.failures >= self.threshold and clock() - self.last_failure < self.timeout

        def record_failure(self) -> None:
            self.failures += 1
            self.last_failure = clock()

        def reset(self) -> None:
            self.failures = 0

    node = CircuitBreakerNode()

    def respond() -> Any:
        shared = SharedStore()
        run(node, shared)
        return shared["response"]

    assert respond()["status"] == "degraded"
    assert respond()["status"] == "circuit_open"  # the second failure opened it
    clock.advance(4)
    assert respond() == {"status": "circuit_open", "message": "Using cached response", "retry_after": 6.0}
    assert service["calls"] == 2
    clock.advance(7)
    service["healthy"] = True
    assert respond() == "ok"
    assert node.failures == 0 and service["calls"] == 3


def test_fallback_on_failure__fallback_with_metrics() -> None:
    """### Fallback with Metrics — every fallback is counted and the fallback rate logged."""
    outcomes = iter([True, False, False, True, False])

    class MetricsFallbackNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.primary_calls = 0
            self.fallback_calls = 0
            self.last_fallback = 0.0
            self.rates: list[float] = []

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            self.primary_calls += 1
            if not next(outcomes):
                raise NetworkError("primary failed")
            return {"source": "primary"}

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            self.fallback_calls += 1
            self.last_fallback = time.monotonic()
            total = self.primary_calls + self.fallback_calls
            self.rates.append(self.fallback_calls / total * 100)
            log.info("Fallback metrics - Rate: %.2f%%, Total fallbacks: %d", self.rates[-1], self.fallback_calls)
            return {"source": "default"}

    node = MetricsFallbackNode()
    for _ in range(5):
        run(node)
    assert (node.primary_calls, node.fallback_calls) == (5, 3)
    assert [round(r, 2) for r in node.rates] == [round(1 / 3 * 100, 2), 40.0, round(3 / 8 * 100, 2)]


class ErrTimeout(Exception):
    pass


class ErrRateLimit(Exception):
    pass


class ErrNotFound(Exception):
    pass


def wrapped(outer: str, cause: Exception) -> Exception:
    """Go's ``fmt.Errorf("...: %w", err)``: a new error whose cause is ``cause``."""
    error = RuntimeError(f"{outer}: {cause}")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ErrTimeout("slow"), {"cached": "response"}),
        (wrapped("fetch user", ErrTimeout("slow")), {"cached": "response"}),
        (ErrRateLimit("429"), {"error": "rate_limited", "retry_after": 60}),
        (ErrNotFound("404"), {"found": False, "data": None}),
        (ValueError("boom"), {"status": "error", "message": "Service unavailable"}),
    ],
)
def test_fallback_on_failure__conditional_fallback(error: Exception, expected: dict[str, Any]) -> None:
    """### Conditional Fallback — the fallback chosen by error type (``errors.Is`` also
    sees wrapped causes)."""

    class ConditionalFallbackNode(Node):
        def exec(self, ctx: Context, prep_result: Any) -> Any:
            raise error

        def get_cached_response(self) -> Any:
            return {"cached": "response"}

        def exec_fallback(self, prep_result: Any, err: BaseException) -> Any:
            if caused_by(err, ErrTimeout):
                return self.get_cached_response()
            if caused_by(err, ErrRateLimit):
                return {"error": "rate_limited", "retry_after": 60}
            if caused_by(err, ErrNotFound):
                return {"found": False, "data": None}
            return {"status": "error", "message": "Service unavailable"}

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("response", exec_result)
            return None

    shared = SharedStore()
    run(ConditionalFallbackNode(), shared)
    assert shared["response"] == expected


# =======================================================================================
# Utilities
# =======================================================================================
def test_utilities__to_slice() -> None:
    """### ToSlice — slices become lists, a single item a one-item list, nil an empty list."""
    assert to_slice(["a", "b", "c"]) == ["a", "b", "c"]
    assert to_slice([1, 2, 3]) == [1, 2, 3]
    assert to_slice("single item") == ["single item"]
    assert to_slice(None) == []

    data = ("x", "y")
    shared = SharedStore()
    shared.set("items", to_slice(data))
    run(BatchNode(lambda ctx, item: item * 2), shared)
    assert shared["results"] == ["xx", "yy"]


def test_utilities__to_slice__implementation_details() -> None:
    """#### Implementation Details — sequences are copied element by element (a new list);
    anything that is not a sequence, including strings, bytes and maps, is a single item."""
    original = [1, 2]
    copy = to_slice(original)
    assert copy == original and copy is not original
    assert to_slice((1, 2)) == [1, 2]
    assert to_slice(range(3)) == [0, 1, 2]
    assert sorted(to_slice({3, 1})) == [1, 3]
    assert to_slice(b"raw") == [b"raw"]
    assert to_slice({"k": 1}) == [{"k": 1}]
    assert to_slice(42) == [42]


def test_utilities__retry_helper() -> None:
    """#### Retry Helper — retries with a growing backoff and reports the last error after
    ``maxRetries`` attempts; used inside a node's exec."""
    slept: list[float] = []

    def retry_operation(operation: Callable[[], None], max_retries: int, backoff: float) -> None:
        last_err: Exception | None = None
        for i in range(max_retries):
            try:
                operation()
                return
            except Exception as err:
                last_err = err
                if i < max_retries - 1:
                    slept.append(backoff * (i + 1))
                    time.sleep(backoff * (i + 1))
        raise RuntimeError(f"operation failed after {max_retries} retries: {last_err}") from last_err

    calls: list[int] = []

    class MyNode(Node):
        def __init__(self, fail_times: int) -> None:
            super().__init__()
            self.fail_times = fail_times

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            result: list[Any] = []

            def call_api() -> None:
                calls.append(1)
                if len(calls) <= self.fail_times:
                    raise NetworkError("flaky")
                result.append("payload")

            retry_operation(call_api, 3, SECOND)
            return result[0]

    ctx, events = observed()
    run(MyNode(2), ctx=ctx)
    assert exec_results(events, "MyNode") == ["payload"]
    assert slept == [SECOND, 2 * SECOND]

    calls.clear()
    with pytest.raises(NodeError, match="operation failed after 3 retries: flaky"):
        run(MyNode(5))
    assert len(calls) == 3


def test_utilities__parallel_map() -> None:
    """#### Parallel Map — results keep the input order and at most ``workers`` run at once."""
    lock = threading.Lock()
    active = {"now": 0, "max": 0}

    def parallel_map(items: list[Any], fn: Callable[[Any], Any], workers: int) -> list[Any]:
        results: list[Any] = [None] * len(items)
        semaphore = threading.Semaphore(workers)

        def worker(index: int, data: Any) -> None:
            with semaphore:
                results[index] = fn(data)

        threads = [threading.Thread(target=worker, args=(i, item)) for i, item in enumerate(items)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def process_item(x: int) -> int:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(SECOND)
        with lock:
            active["now"] -= 1
        return x * x

    assert parallel_map(list(range(12)), process_item, 3) == [x * x for x in range(12)]
    assert 1 <= active["max"] <= 3


def test_utilities__type_safe_getters() -> None:
    """#### Type-Safe Getters — built-in getters with zero values or custom defaults, and
    ``Bind`` for complex types."""
    shared = SharedStore()
    assert (shared.get_int("user_id"), shared.get_str("name"), shared.get_bool("enabled")) == (0, "", False)
    assert shared.get_int("user_id", -1) == -1
    assert shared.get_str("name", "anonymous") == "anonymous"
    assert shared.get_bool("enabled", True) is True
    shared.set("config", {"timeout": 9})
    assert shared.bind("config", Config) == Config(timeout=9)


def test_utilities__chunk_slice() -> None:
    """#### Chunk Slice — fixed-size chunks, the last one shorter; each chunk processed."""

    def chunk_slice(items: list[Any], chunk_size: int) -> list[list[Any]]:
        return [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]

    processed: list[list[int]] = []
    chunks = chunk_slice(list(range(250)), 100)
    for chunk in chunks:
        processed.append(chunk)
    assert [len(c) for c in processed] == [100, 100, 50]
    assert [x for c in processed for x in c] == list(range(250))
    assert chunk_slice([], 3) == []


def test_utilities__merge_maps() -> None:
    """#### Merge Maps — later maps win, as with ``SharedStore.Merge``."""

    def merge_maps(*maps: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for m in maps:
            for k, v in m.items():
                result[k] = v
        return result

    default_config = {"timeout": 30, "retries": 3, "region": "eu"}
    user_config = {"timeout": 10}
    overrides = {"retries": 5}
    config = merge_maps(default_config, user_config, overrides)
    assert config == {"timeout": 10, "retries": 5, "region": "eu"}

    shared = SharedStore(default_config)
    shared.merge(user_config)
    shared.merge(overrides)
    assert shared.get_all() == config


def test_utilities__filter_slice() -> None:
    """#### Filter Slice — keeps the items the predicate accepts, in order."""

    @dataclass
    class Item:
        name: str
        valid: bool

        def is_valid(self) -> bool:
            return self.valid

    def filter_slice(items: list[Any], predicate: Callable[[Any], bool]) -> list[Any]:
        return [item for item in items if predicate(item)]

    items = [Item("a", True), Item("b", False), Item("c", True)]
    assert [i.name for i in filter_slice(items, lambda item: item.is_valid())] == ["a", "c"]
    assert filter_slice([], bool) == []


def with_timeout(ctx: Context, timeout: float, fn: Callable[[Context], Any]) -> Any:
    """The docs' generic ``WithTimeout``: run ``fn`` under a child context with a deadline
    and give up with the context's error when the deadline passes first."""
    ctx, cancel = ctx.with_timeout(timeout)
    try:
        done: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=1)

        def call() -> None:
            try:
                done.put((fn(ctx), None))
            except BaseException as err:
                done.put((None, err))

        threading.Thread(target=call, daemon=True).start()
        while True:
            try:
                value, err = done.get(timeout=SECOND)
            except queue.Empty:
                ctx.check()  # raises the deadline's error once it has passed
                continue
            if err is not None:
                raise err
            return value
    finally:
        cancel()


def test_utilities__timeout_wrapper() -> None:
    """#### Timeout Wrapper — the value when ``fn`` finishes in time, the context's error
    (``DeadlineExceeded``) when it does not; ``fn`` sees its context cancelled."""
    ctx = Context.background()
    assert with_timeout(ctx, 50 * SECOND, lambda c: "data") == "data"

    seen: list[Context] = []

    def fetch_data(c: Context) -> str:
        seen.append(c)
        c.sleep(1)  # interrupted by the deadline
        return "too late"

    with pytest.raises(DeadlineExceeded):
        with_timeout(ctx, 5 * SECOND, fetch_data)
    assert seen[0].done().wait(1) and isinstance(seen[0].error(), DeadlineExceeded)
    assert not ctx.cancelled  # the parent context is untouched


def test_utilities__pipeline_builder() -> None:
    """#### Pipeline Builder — "  Hello World  " becomes "hello_world"."""

    class Pipeline:
        def __init__(self) -> None:
            self.stages: list[Callable[[Any], Any]] = []

        def add(self, stage: Callable[[Any], Any]) -> Pipeline:
            self.stages.append(stage)
            return self

        def execute(self, value: Any) -> Any:
            result = value
            for stage in self.stages:
                result = stage(result)
            return result

    pipeline = Pipeline().add(str.strip).add(str.lower).add(lambda s: s.replace(" ", "_"))
    assert pipeline.execute("  Hello World  ") == "hello_world"


def test_utilities__error_aggregator() -> None:
    """#### Error Aggregator — nil errors are ignored, one error is returned as is, several
    are summarised with their count; safe to add from many threads."""

    class ErrorAggregator:
        def __init__(self) -> None:
            self.errors: list[Exception] = []
            self.mu = threading.Lock()

        def add(self, err: Exception | None) -> None:
            if err is None:
                return
            with self.mu:
                self.errors.append(err)

        def error(self) -> Exception | None:
            with self.mu:
                if not self.errors:
                    return None
                if len(self.errors) == 1:
                    return self.errors[0]
                return RuntimeError(f"multiple errors ({len(self.errors)}): {[str(e) for e in self.errors]}")

    aggregator = ErrorAggregator()
    aggregator.add(None)
    assert aggregator.error() is None
    single = ValueError("one")
    aggregator.add(single)
    assert aggregator.error() is single

    def process_item(item: int) -> Exception | None:
        return ValueError(f"item {item}") if item % 2 else None

    many = ErrorAggregator()
    threads = [threading.Thread(target=lambda i=i: many.add(process_item(i))) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert str(many.error()).startswith("multiple errors (5): ")


@dataclass(frozen=True)
class ContextKey:
    """Go's ``type ContextKey string``: a key type of its own, so it never collides with a
    plain string key of the same text."""

    name: str


REQUEST_ID_KEY = ContextKey("request_id")
USER_ID_KEY = ContextKey("user_id")


def with_request_id(ctx: Context, request_id: str) -> Context:
    return ctx.with_value(REQUEST_ID_KEY, request_id)


def get_request_id(ctx: Context) -> tuple[str, bool]:
    value = ctx.value(REQUEST_ID_KEY)
    return (value, True) if isinstance(value, str) else ("", False)


def test_utilities__context_values_helper(caplog: pytest.LogCaptureFixture) -> None:
    """#### Context Values Helper — a request id put on the context reaches the nodes'
    exec, through nested flows; without it the lookup reports not found."""

    class LoggingNode(Node):
        def exec(self, ctx: Context, prep_result: Any) -> Any:
            request_id, _ = get_request_id(ctx)
            log.info("[%s] Processing: %s", request_id, prep_result)
            return get_request_id(ctx)

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("seen", exec_result)
            return None

    node = LoggingNode()
    flow = Flow(Flow(node))
    shared = SharedStore()
    ctx = with_request_id(Context.background(), "req-42").with_value("request_id", "plain")
    with caplog.at_level(logging.INFO, logger=log.name):
        flow.run(shared, ctx=ctx)
    assert shared["seen"] == ("req-42", True)
    assert caplog.records[-1].getMessage() == "[req-42] Processing: None"

    flow.run(shared)
    assert shared["seen"] == ("", False)


def test_utilities__debounce_function() -> None:
    """#### Debounce Function — three quick calls, only the last one executes (after the delay)."""
    calls: list[float] = []
    fired = threading.Event()

    def debounce(fn: Callable[[], None], delay: float) -> Callable[[], None]:
        timer: threading.Timer | None = None
        mu = threading.Lock()

        def debounced() -> None:
            nonlocal timer
            with mu:
                if timer is not None:
                    timer.cancel()
                timer = threading.Timer(delay, fn)
                timer.start()

        return debounced

    def save_to_database() -> None:
        calls.append(time.monotonic())
        fired.set()

    save_debounced = debounce(save_to_database, 10 * SECOND)
    save_debounced()
    save_debounced()
    save_debounced()
    assert fired.wait(1)
    time.sleep(20 * SECOND)  # longer than the delay: a cancelled timer would have fired by now
    assert len(calls) == 1


def test_utilities__mock_shared_store() -> None:
    """#### Mock SharedStore — a map-backed stand-in with Get (value, found) and Set, enough
    to call a node's phases directly in a unit test."""

    class MockSharedStore:
        def __init__(self, initial: dict[str, Any]) -> None:
            self.data = initial
            self.mu = threading.RLock()

        def get(self, key: str) -> tuple[Any, bool]:
            with self.mu:
                return self.data.get(key), key in self.data

        def set(self, key: str, value: Any) -> None:
            with self.mu:
                self.data[key] = value

    mock = MockSharedStore({"name": "ada"})
    assert mock.get("name") == ("ada", True)
    assert mock.get("missing") == (None, False)

    node = Node(prep=lambda ctx, s: s.get("name")[0], post=lambda ctx, s, p, e: s.set("greeting", f"hi {p}"))
    ctx = Context.background()
    prep_result = node.prep(ctx, mock)
    node.post(ctx, mock, prep_result, node.exec(ctx, prep_result))
    assert mock.get("greeting") == ("hi ada", True)


def test_utilities__test_node_builder() -> None:
    """#### Test Node Builder — a one-liner node from an exec function, for tests."""

    def make_test_node(exec_fn: Callable[[Context, Any], Any]) -> Node:
        return Node(exec=exec_fn)

    def returns_test_result(ctx: Context, prep_input: Any) -> Any:
        return "test_result"

    node = make_test_node(returns_test_result)
    ctx, events = observed()
    assert run(node, ctx=ctx) == DEFAULT_ACTION
    assert exec_results(events, "returns_test_result") == ["test_result"]


# =======================================================================================
# Conditional Branching
# =======================================================================================
@pytest.mark.parametrize(
    ("data", "route"), [("hello", "process"), ("", "error"), ("x" * 99, "process"), ("x" * 100, "error")]
)
def test_conditional_branching__simple_binary_branching(data: str, route: str) -> None:
    """### Simple Binary Branching — valid when 0 < len(data) < 100."""

    def exec_(ctx: Context, prep_result: Any) -> Any:
        return 0 < len(prep_result) < 100

    trail: list[str] = []
    validation_node = Node(
        prep=lambda ctx, s: s.get_str("data"), exec=exec_, post=lambda c, s, p, e: "valid" if e else "invalid"
    )
    flow = Flow(validation_node)
    flow.connect(validation_node, "valid", visit(trail, "process"))
    flow.connect(validation_node, "invalid", visit(trail, "error"))
    flow.run(SharedStore({"data": data}))
    assert trail == [route]


@pytest.mark.parametrize(
    ("value", "route"), [(9.99, "small"), (10.0, "medium"), (99.5, "medium"), (100.0, "large"), (1000.0, "xlarge")]
)
def test_conditional_branching__multi_way_branching(value: float, route: str) -> None:
    """### Multi-Way Branching — small < 10 ≤ medium < 100 ≤ large < 1000 ≤ xlarge."""

    def exec_(ctx: Context, value: Any) -> Any:
        if value < 10:
            return "small"
        if value < 100:
            return "medium"
        if value < 1000:
            return "large"
        return "xlarge"

    trail: list[str] = []
    category_node = Node(prep=lambda c, s: s.get_float("value"), exec=exec_, post=lambda c, s, p, e: e)
    flow = Flow(category_node)
    for name in ("small", "medium", "large", "xlarge"):
        flow.connect(category_node, name, visit(trail, name))
    flow.run(SharedStore({"value": value}))
    assert trail == [route]


class StateMachine(Node):
    """The docs' StateMachine node; exec reads the next event from the store's queue."""

    TRANSITIONS = {
        "init": {"start": "processing", "cancel": "cancelled"},
        "processing": {"complete": "done", "error": "failed", "pause": "paused"},
        "paused": {"resume": "processing", "cancel": "cancelled"},
    }

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        events = shared.get_list("events")
        shared.set("events", events[1:])
        return events[0]

    def exec(self, ctx: Context, event: Any) -> Any:
        return event

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        state = shared.get_str("state", "init")
        next_state = self.transition(state, exec_result)
        shared.set("state", next_state)
        shared.update("history", lambda h: [*h, next_state], default=[])
        return next_state

    def transition(self, state: str, event: str) -> str:
        return self.TRANSITIONS.get(state, {}).get(event, state)  # no transition: stay


@pytest.mark.parametrize(
    ("events", "history", "final"),
    [
        (["start", "pause", "resume", "complete"], ["processing", "paused", "processing", "done"], "done"),
        (["start", "bogus", "error"], ["processing", "processing", "failed"], "failed"),
        (["cancel"], ["cancelled"], "cancelled"),
    ],
)
def test_conditional_branching__state_machine_pattern(events: list[str], history: list[str], final: str) -> None:
    """### State Machine Pattern — events drive the documented transitions; an event with
    no transition keeps the state; the new state is the action."""
    machine = StateMachine()
    flow = Flow(machine).connect(machine, "processing", machine).connect(machine, "paused", machine)
    shared = SharedStore({"events": events})
    assert flow.run(shared) == final
    assert shared["history"] == history and shared["state"] == final


@pytest.mark.parametrize(("result", "route"), [("ok", "archive"), ("needs_review", "review"), ("other", "fallthrough")])
def test_conditional_branching__dynamic_routing(tmp_path: Any, result: str, route: str) -> None:
    """### Dynamic Routing — routes loaded from a JSON file; unknown results take the
    default action."""
    config_path = tmp_path / "routes.json"
    config_path.write_text(json.dumps({"ok": "archive", "needs_review": "review"}))

    class DynamicRouter(Node):
        def __init__(self, config_path: str) -> None:
            super().__init__()
            with open(config_path) as f:
                self.routes: dict[str, str] = json.load(f)

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if exec_result in self.routes:
                return self.routes[exec_result]
            return DEFAULT_ACTION

    trail: list[str] = []
    router = DynamicRouter(str(config_path))
    flow = Flow(router)
    flow.connect(router, "archive", visit(trail, "archive"))
    flow.connect(router, "review", visit(trail, "review"))
    flow.connect(router, DEFAULT_ACTION, visit(trail, "fallthrough"))
    flow.run()
    assert trail == [route]


def test_conditional_branching__weighted_routing() -> None:
    """### Weighted Routing — weights 3/5/2 send 30%, 50% and 20% of the traffic."""

    class LoadBalancer(Node):
        def __init__(self, weights: dict[str, int]) -> None:
            super().__init__()
            self.weights = weights
            self.counter = 0
            self.mu = threading.Lock()

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            with self.mu:
                self.counter += 1
                total_weight = sum(self.weights.values())
                position = self.counter % total_weight
                current_weight = 0
                for action, weight in self.weights.items():
                    current_weight += weight
                    if position < current_weight:
                        return action
            return DEFAULT_ACTION

    balancer = LoadBalancer({"server1": 3, "server2": 5, "server3": 2})
    hits = {"server1": 0, "server2": 0, "server3": 0}
    flow = Flow(balancer)
    for server in hits:
        flow.connect(
            balancer, server, Node(exec=lambda ctx, p, server=server: hits.__setitem__(server, hits[server] + 1))
        )
    for _ in range(100):
        flow.run()
    assert hits == {"server1": 30, "server2": 50, "server3": 20}


@pytest.mark.parametrize(("succeed_on", "route", "attempts"), [(2, "success", 1), (None, "failed", 3)])
def test_conditional_branching__conditional_loops(succeed_on: int | None, route: str, attempts: int) -> None:
    """### Conditional Loops — the node loops to itself on ``retry`` until success, or gives
    up with ``failed`` after 3 attempts."""
    calls: list[int] = []

    def perform_operation() -> Any:
        calls.append(1)
        if len(calls) != succeed_on:
            raise NetworkError("not yet")
        return "result"

    def exec_(ctx: Context, attempts: Any) -> Any:
        try:
            result = perform_operation()
        except NetworkError as err:
            return {"success": False, "attempts": attempts + 1, "error": str(err)}
        return {"success": True, "result": result}

    def post(ctx: Context, shared: SharedStore, prep_result: Any, result: Any) -> str:
        if result["success"]:
            return "success"
        shared.set("attempts", result["attempts"])
        if result["attempts"] < 3:
            return "retry"
        return "failed"

    trail: list[str] = []
    retry_node = Node(prep=lambda ctx, shared: shared.get_int("attempts"), exec=exec_, post=post)
    flow = Flow(retry_node)
    flow.connect(retry_node, "retry", retry_node)
    flow.connect(retry_node, "success", visit(trail, "success"))
    flow.connect(retry_node, "failed", visit(trail, "failure"))
    shared = SharedStore()
    flow.run(shared)
    assert trail == ["success" if route == "success" else "failure"]
    assert shared.get_int("attempts") == attempts
    assert len(calls) == (succeed_on or 3)


@pytest.mark.parametrize(
    ("validate", "enrich", "expected"),
    [
        (True, True, ["validate", "enrich", "merge"]),
        (True, False, ["validate", "merge"]),
        (False, True, ["enrich", "merge"]),
        (False, False, ["merge"]),
    ],
)
def test_conditional_branching__pipeline_branching(validate: bool, enrich: bool, expected: list[str]) -> None:
    """### Pipeline Branching — the split picks both pipelines, one of them, or none; every
    path ends in the merge node. (Validate and enrich skip the other pipeline by returning
    ``skip_enrich`` / ``skip_validate`` when the request does not need it.)"""

    def split_exec(ctx: Context, data: Any) -> Any:
        needs_validation, needs_enrichment = data["validate"], data["enrich"]
        if needs_validation and needs_enrichment:
            return "both"
        elif needs_validation:
            return "validate_only"
        elif needs_enrichment:
            return "enrich_only"
        return "skip"

    trail: list[str] = []

    def stage(name: str, skip_action: str, needed_key: str) -> Node:
        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
            trail.append(name)
            return DEFAULT_ACTION if shared.get_dict("request")[needed_key] else skip_action

        return Node(post=post, name=name)

    split_node = Node(prep=lambda c, s: s.get_dict("request"), exec=split_exec, post=lambda c, s, p, e: e)
    validate_node = stage("validate", "skip_enrich", "enrich")
    enrich_node = stage("enrich", "skip_validate", "validate")
    merge_node = visit(trail, "merge")
    flow = Flow(split_node)
    flow.connect(split_node, "both", validate_node)
    flow.connect(validate_node, DEFAULT_ACTION, enrich_node)
    flow.connect(enrich_node, DEFAULT_ACTION, merge_node)
    flow.connect(split_node, "validate_only", validate_node)
    flow.connect(validate_node, "skip_enrich", merge_node)
    flow.connect(split_node, "enrich_only", enrich_node)
    flow.connect(enrich_node, "skip_validate", merge_node)
    flow.connect(split_node, "skip", merge_node)
    flow.run(SharedStore({"request": {"validate": validate, "enrich": enrich}}))
    assert trail == expected


@pytest.mark.parametrize(
    ("feature", "route"),
    [("new_algorithm", "new"), ("beta_feature", None), ("experimental", None), ("unknown", None)],
)
def test_conditional_branching__feature_flags(feature: str, route: str | None) -> None:
    """### Feature Flags — an enabled feature returns ``<feature>_enabled``, anything else
    ``<feature>_disabled``."""

    class FeatureFlagNode(Node):
        def __init__(self, flags: dict[str, bool]) -> None:
            super().__init__()
            self.flags = flags

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_str("feature")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return prep_result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, feature: Any) -> str | None:
            if self.flags.get(feature):
                return feature + "_enabled"
            return feature + "_disabled"

    trail: list[str] = []
    flag_node = FeatureFlagNode({"new_algorithm": True, "beta_feature": False, "experimental": True})
    flow = Flow(flag_node)
    flow.connect(flag_node, "new_algorithm_enabled", visit(trail, "new"))
    flow.connect(flag_node, "new_algorithm_disabled", visit(trail, "old"))
    enabled = feature in ("new_algorithm", "experimental")
    action = run(flag_node, SharedStore({"feature": feature}))
    assert action == f"{feature}_{'enabled' if enabled else 'disabled'}"
    flow.run(SharedStore({"feature": feature}))
    assert trail == ([route] if route else [])


def fnv32a(data: bytes) -> int:
    """Go's ``hash/fnv`` New32a."""
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def create_ab_test_node(test_name: str, distribution: dict[str, int]) -> Node:
    def exec_(ctx: Context, user_id: Any) -> Any:
        bucket = fnv32a((user_id + test_name).encode()) % 100
        cumulative = 0
        for variant, percentage in distribution.items():
            cumulative += percentage
            if bucket < cumulative:
                return variant
        return "control"

    def post(ctx: Context, shared: SharedStore, prep_result: Any, variant: Any) -> str:
        shared.set("ab_variant", variant)
        return variant

    return Node(prep=lambda ctx, shared: shared.get_str("user_id"), exec=exec_, post=post)


def test_conditional_branching__a_b_testing() -> None:
    """### A/B Testing — a user always lands in the same variant (hash of user and test),
    the variant is stored and routes the flow, and the split follows the distribution."""
    assert fnv32a(b"a") == 0xE40C292C  # the reference value of FNV-1a/32
    ab_node = create_ab_test_node("checkout_flow", {"variant_a": 33, "variant_b": 33, "control": 34})
    hits = {"variant_a": 0, "variant_b": 0, "control": 0}
    flow = Flow(ab_node)
    for variant in hits:
        flow.connect(ab_node, variant, Node(exec=lambda ctx, p, v=variant: hits.__setitem__(v, hits[v] + 1)))

    assignments = {}
    for i in range(600):
        shared = SharedStore({"user_id": f"user-{i}"})
        before = dict(hits)
        flow.run(shared)
        routed = [v for v in hits if hits[v] != before[v]]
        assert routed == [shared["ab_variant"]]  # the stored variant is the branch taken
        assignments[i] = shared["ab_variant"]
    assert sum(hits.values()) == 600
    assert all(120 <= count <= 280 for count in hits.values()), hits
    again = SharedStore({"user_id": "user-7"})
    flow.run(again)
    assert again["ab_variant"] == assignments[7]


# =======================================================================================
# Configuration via Closures
# =======================================================================================
class FakeHTTPClient:
    """Stands in for ``http.Client``: records requests, answers from a table of URLs."""

    def __init__(self, responses: dict[str, Any] | None = None) -> None:
        self.responses = responses or {}
        self.requests: list[dict[str, Any]] = []

    def do(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Any:
        self.requests.append({"method": method, "url": url, "headers": dict(headers), "body": body})
        if url not in self.responses:
            raise NetworkError(f"no route to {url}")
        return json.loads(json.dumps(self.responses[url]))  # decoded JSON, as from resp.Body


def test_configuration_via_closures__basic_closure_pattern() -> None:
    """### Basic Closure Pattern — the API key and base URL captured by the closure end up
    in the request."""
    client = FakeHTTPClient({"https://api.example.com/data": {"items": [1, 2]}})

    def create_api_node(api_key: str, base_url: str) -> Node:
        def exec_(ctx: Context, prep_result: Any) -> Any:
            url = f"{base_url}/data"
            return client.do("GET", url, {"Authorization": f"Bearer {api_key}"})

        return Node(exec=exec_, post=lambda ctx, shared, p, e: shared.set("data", e))

    api_node = create_api_node("secret-key-123", "https://api.example.com")
    shared = SharedStore()
    run(api_node, shared)
    assert shared["data"] == {"items": [1, 2]}
    assert client.requests == [
        {
            "method": "GET",
            "url": "https://api.example.com/data",
            "headers": {"Authorization": "Bearer secret-key-123"},
            "body": None,
        }
    ]


def test_configuration_via_closures__stateful_nodes() -> None:
    """### Stateful Nodes — the captured counter numbers every execution; each node made by
    the factory counts on its own, also under concurrent runs."""

    def create_counter_node() -> Node:
        count = 0
        mu = threading.Lock()

        def exec_(ctx: Context, prep_result: Any) -> Any:
            nonlocal count
            with mu:
                count += 1
                current = count
            return f"Execution #{current}"

        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.update("seen", lambda seen: [*seen, exec_result], default=[])
            return None

        return Node(exec=exec_, post=post)

    counter, other = create_counter_node(), create_counter_node()
    shared = SharedStore()
    threads = [threading.Thread(target=run, args=(counter, shared)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(shared["seen"]) == sorted(f"Execution #{i}" for i in range(1, 7))
    mine = SharedStore()
    run(other, mine)
    assert mine["seen"] == ["Execution #1"]


def test_configuration_via_closures__configuration_objects() -> None:
    """### Configuration Objects — a config struct builds the connection once; every run
    of the node reuses it (sqlite in memory stands in for MySQL)."""

    @dataclass
    class DatabaseConfig:
        host: str
        port: int
        user: str
        password: str
        database: str
        max_conns: int

    opened: list[str] = []

    def create_database_node(config: DatabaseConfig) -> Node:
        dsn = f"{config.user}:{config.password}@tcp({config.host}:{config.port})/{config.database}"
        opened.append(dsn)
        db = sqlite3.connect(":memory:")
        db.executescript("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3);")

        def exec_(ctx: Context, query: Any) -> Any:
            return [{"v": row[0]} for row in db.execute(query)]

        return Node(prep=lambda c, s: s.get_str("query"), exec=exec_, post=lambda c, s, p, e: s.set("rows", e))

    db_node = create_database_node(DatabaseConfig("localhost", 3306, "app", "secret", "myapp", 10))
    for query, rows in (("SELECT v FROM t WHERE v > 1", [{"v": 2}, {"v": 3}]), ("SELECT max(v) FROM t", [{"v": 3}])):
        shared = SharedStore({"query": query})
        run(db_node, shared)
        assert shared["rows"] == rows
    assert opened == ["app:secret@tcp(localhost:3306)/myapp"]


def test_configuration_via_closures__factory_functions() -> None:
    """### Factory Functions — one factory makes a GET and a POST node; each sends its own
    method and headers, and the body from the store as JSON."""
    client = FakeHTTPClient({"https://svc/users": {"ok": True}})

    def create_http_node(method: str, headers: dict[str, str]) -> Node:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            return {"url": shared.get_str("url"), "body": shared.get_dict("body")}

        def exec_(ctx: Context, data: Any) -> Any:
            body = json.dumps(data["body"]).encode() if data.get("body") is not None else None
            return client.do(method, data["url"], headers, body)

        return Node(prep=prep, exec=exec_, post=lambda ctx, shared, p, e: shared.set("response", e))

    get_node = create_http_node("GET", {"Accept": "application/json"})
    post_node = create_http_node("POST", {"Content-Type": "application/json", "Accept": "application/json"})
    run(get_node, SharedStore({"url": "https://svc/users"}))
    shared = SharedStore({"url": "https://svc/users", "body": {"name": "ada"}})
    run(post_node, shared)
    assert shared["response"] == {"ok": True}
    assert [(r["method"], r["headers"], r["body"]) for r in client.requests] == [
        ("GET", {"Accept": "application/json"}, None),
        ("POST", {"Content-Type": "application/json", "Accept": "application/json"}, b'{"name": "ada"}'),
    ]

    with pytest.raises(NodeError) as info:
        run(get_node, SharedStore({"url": "https://svc/missing"}))
    assert isinstance(info.value.__cause__, NetworkError)


def test_configuration_via_closures__resource_management(tmp_path: Any) -> None:
    """### Resource Management — one pre-allocated buffer serves every run; files are read
    through it (at most ``bufferSize`` bytes) and a missing file fails exec."""
    buffers: list[int] = []

    def process_data(chunk: bytes) -> str:
        return chunk.decode().upper()

    def create_file_processor_node(buffer_size: int) -> Node:
        buffer = bytearray(buffer_size)

        def exec_(ctx: Context, file_path: Any) -> Any:
            with open(file_path, "rb") as file:
                n = file.readinto(buffer)
            buffers.append(id(buffer))
            return process_data(bytes(buffer[:n]))

        return Node(prep=lambda c, s: s.get_str("path"), exec=exec_, post=lambda c, s, p, e: s.set("out", e))

    node = create_file_processor_node(8)
    for name, text, expected in (("a.txt", "hello", "HELLO"), ("b.txt", "longer than eight", "LONGER T")):
        (tmp_path / name).write_text(text)
        shared = SharedStore({"path": str(tmp_path / name)})
        run(node, shared)
        assert shared["out"] == expected
    assert len(set(buffers)) == 1  # the same buffer, reused

    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"path": str(tmp_path / "missing.txt")}))
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_configuration_via_closures__middleware_pattern(caplog: pytest.LogCaptureFixture) -> None:
    """### Middleware Pattern — the wrapper logs around every phase of the wrapped node and
    returns exactly what the node returns."""

    def with_logging(name: str, node: Node) -> Node:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            log.info("[%s] Starting prep", name)
            return node.prep(ctx, shared)

        def exec_(ctx: Context, prep_result: Any) -> Any:
            start = time.monotonic()
            result = node.exec(ctx, prep_result)
            log.info("[%s] Exec took %.3fs", name, time.monotonic() - start)
            return result

        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
            action = node.post(ctx, shared, prep_result, exec_result)
            log.info("[%s] Returning action: %s", name, action)
            return action

        return Node(prep=prep, exec=exec_, post=post, name=name)

    def create_process_node() -> Node:
        return Node(
            prep=lambda c, s: s.get_int("n"),
            exec=lambda c, n: n * 3,
            post=lambda c, s, p, e: s.set("out", e) or "done",
        )

    process_node = with_logging("processor", create_process_node())
    shared = SharedStore({"n": 5})
    with caplog.at_level(logging.INFO, logger=log.name):
        assert run(process_node, shared) == "done"
    assert shared["out"] == 15
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "[processor] Starting prep"
    assert messages[1].startswith("[processor] Exec took ")
    assert messages[2] == "[processor] Returning action: done"


def test_configuration_via_closures__dynamic_configuration(tmp_path: Any) -> None:
    """### Dynamic Configuration — the config file is read at every run, so a change shows
    up at the next run; a missing file fails prep."""
    config_path = tmp_path / "config.json"

    def process_with_config(config: dict[str, Any]) -> str:
        return f"{config['mode']} x{config['factor']}"

    def create_configurable_node(config_path: str) -> Node:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            with open(config_path) as f:
                return json.load(f)

        return Node(prep=prep, exec=lambda c, cfg: process_with_config(cfg), post=lambda c, s, p, e: s.set("out", e))

    node = create_configurable_node(str(config_path))
    config_path.write_text(json.dumps({"mode": "fast", "factor": 2}))
    shared = SharedStore()
    run(node, shared)
    assert shared["out"] == "fast x2"
    config_path.write_text(json.dumps({"mode": "safe", "factor": 1}))
    run(node, shared)
    assert shared["out"] == "safe x1"

    config_path.unlink()
    with pytest.raises(NodeError) as info:
        run(node, shared)
    assert info.value.phase == "prep" and isinstance(info.value.__cause__, FileNotFoundError)


def test_configuration_via_closures__dependency_injection() -> None:
    """### Dependency Injection — the injected cache answers repeat requests; a miss goes to
    the database and fills the cache; metrics and logger see it all."""

    class FakeCache:
        def __init__(self) -> None:
            self.data: dict[str, Any] = {}

        def get(self, key: str) -> Any:
            if key not in self.data:
                raise KeyError(key)
            return self.data[key]

        def set(self, key: str, value: Any, ttl: float) -> None:
            self.data[key] = value

    class FakeMetrics:
        def __init__(self) -> None:
            self.counts: dict[str, int] = {}

        def inc(self, name: str) -> None:
            self.counts[name] = self.counts.get(name, 0) + 1

    @dataclass
    class Dependencies:
        db: Any
        cache: FakeCache
        logger: logging.Logger
        metrics: FakeMetrics

    queries: list[Any] = []

    def query_db(db: Any, request: Any) -> Any:
        queries.append(request)
        return {"answer": request * 2}

    def create_service_node(deps: Dependencies) -> Node:
        def exec_(ctx: Context, prep_result: Any) -> Any:
            deps.logger.info("Processing request")
            try:
                cached = deps.cache.get("key")
            except KeyError:
                pass
            else:
                deps.metrics.inc("cache_hits")
                return cached
            result = query_db(deps.db, prep_result)
            deps.cache.set("key", result, 3600)
            return result

        return Node(prep=lambda c, s: s.get_int("request"), exec=exec_, post=lambda c, s, p, e: s.set("out", e))

    deps = Dependencies(db=object(), cache=FakeCache(), logger=log, metrics=FakeMetrics())
    node = create_service_node(deps)
    outs = []
    for _ in range(3):
        shared = SharedStore({"request": 21})
        run(node, shared)
        outs.append(shared["out"])
    assert outs == [{"answer": 42}] * 3
    assert queries == [21]
    assert deps.metrics.counts == {"cache_hits": 2}


# =======================================================================================
# Custom Node Types
# =======================================================================================
def test_custom_node_types__basic_custom_node() -> None:
    """### Basic Custom Node — config and state live on the node; post stores the state and
    returns ``continue`` until the state is complete."""

    class State:
        def __init__(self) -> None:
            self.inputs: list[str] = []
            self.results: list[str] = []

        def prepare(self, value: str) -> None:
            self.inputs.append(value)

        def update(self, result: str) -> None:
            self.results.append(result)

        def is_complete(self) -> bool:
            return len(self.results) >= 3

    class CustomNode(Node):
        def __init__(self, config: Config) -> None:
            super().__init__()
            self.config = config
            self.state = State()

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            value = shared.get_str("input")
            self.state.prepare(value)
            return value

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            result = self.process_with_config(prep_result, self.config)
            self.state.update(result)
            return result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("state", self.state)
            if self.state.is_complete():
                return "complete"
            return "continue"

        def process_with_config(self, value: str, config: Config) -> str:
            return f"{value}@{config.timeout}"

    node = CustomNode(Config(timeout=5))
    shared = SharedStore({"input": "job"})
    assert Flow(node).connect(node, "continue", node).run(shared) == "complete"
    assert shared["state"] is node.state
    assert node.state.results == ["job@5"] * 3


def test_custom_node_types__stateful_nodes() -> None:
    """### Stateful Nodes — the accumulator returns nil until ``maxSize`` values arrived,
    then the batch (count and data) and starts over."""

    class AccumulatorNode(Node):
        def __init__(self, max_size: int) -> None:
            super().__init__()
            self.mu = threading.Lock()
            self.values: list[Any] = []
            self.max_size = max_size

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("value")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            with self.mu:
                self.values.append(prep_result)
                if len(self.values) >= self.max_size:
                    result = self.process_batch(self.values)
                    self.values = []  # clear buffer
                    return result
                return None

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("batch", exec_result)
            return None

        def process_batch(self, values: list[Any]) -> Any:
            return {"count": len(values), "data": list(values)}

    node = AccumulatorNode(3)
    outputs = []
    for value in range(7):
        shared = SharedStore({"value": value})
        run(node, shared)
        outputs.append(shared["batch"])
    assert outputs == [None, None, {"count": 3, "data": [0, 1, 2]}, None, None, {"count": 3, "data": [3, 4, 5]}, None]
    assert node.values == [6]


def test_custom_node_types__resource_managing_nodes() -> None:
    """### Resource-Managing Nodes — statements are prepared once per SQL text (also under
    concurrent use), queries run with arguments, and Close releases everything."""

    @dataclass
    class QueryRequest:
        sql: str
        args: tuple[Any, ...] = ()

    class Statement:
        def __init__(self, pool: sqlite3.Connection, sql: str) -> None:
            self.pool, self.sql, self.closed = pool, sql, False

        def query(self, ctx: Context, *args: Any) -> list[tuple[Any, ...]]:
            ctx.check()
            return self.pool.execute(self.sql, args).fetchall()

    class DatabaseNode(Node):
        def __init__(self, dsn: str) -> None:
            super().__init__()
            self.pool = sqlite3.connect(dsn, check_same_thread=False)
            self.pool.executescript("CREATE TABLE kv (k TEXT, v INTEGER); INSERT INTO kv VALUES ('a', 1), ('b', 2);")
            self.prepared: dict[str, Statement] = {}
            self.mu = threading.RLock()
            self.prepare_calls = 0

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.bind("query", QueryRequest)

        def exec(self, ctx: Context, query: Any) -> Any:
            stmt = self.get_or_prepare(query.sql)
            with self.mu:  # one sqlite connection: serialise its use
                return stmt.query(ctx, *query.args)

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("rows", exec_result)
            return None

        def get_or_prepare(self, sql: str) -> Statement:
            with self.mu:
                stmt = self.prepared.get(sql)
                if stmt is None:
                    self.prepare_calls += 1
                    stmt = self.prepared[sql] = Statement(self.pool, sql)
                return stmt

        def close(self) -> None:
            with self.mu:
                for stmt in self.prepared.values():
                    stmt.closed = True
                self.pool.close()

    node = DatabaseNode(":memory:")
    results: list[Any] = []
    lock = threading.Lock()

    def query(key: str) -> None:
        shared = SharedStore({"query": {"sql": "SELECT v FROM kv WHERE k = ?", "args": (key,)}})
        run(node, shared)
        with lock:
            results.append((key, shared["rows"]))

    threads = [threading.Thread(target=query, args=(k,)) for k in "abab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [("a", [(1,)]), ("a", [(1,)]), ("b", [(2,)]), ("b", [(2,)])]
    assert node.prepare_calls == 1
    node.close()
    assert all(stmt.closed for stmt in node.prepared.values())
    with pytest.raises(NodeError) as info:
        query("a")
    assert isinstance(info.value.__cause__, sqlite3.ProgrammingError)


class AuthError(Exception):
    pass


class RateLimitError(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after}")
        self.retry_after = retry_after


class SmartRetryNode(Node):
    """The docs' SmartRetryNode: retry count and wait chosen from the last error."""

    def __init__(self, perform_operation: Callable[[], Any]) -> None:
        super().__init__()
        self.attempts = 0
        self.last_error: BaseException | None = None
        self.backoff_factor = 1.5
        self.perform_operation = perform_operation
        self.rand = random.Random(3)

    def get_max_retries(self) -> int:
        if self.last_error is not None:
            if isinstance(self.last_error, NetworkError):
                return 5  # more retries for network issues
            if isinstance(self.last_error, RateLimitError):
                return 3  # fewer retries for rate limits
            if isinstance(self.last_error, AuthError):
                return 0  # no retries for auth errors
            return 2
        return 3

    def get_wait(self) -> float:
        if isinstance(self.last_error, RateLimitError) and self.last_error.retry_after > 0:
            return self.last_error.retry_after
        base = self.backoff_factor**self.attempts
        jitter = self.rand.random() * 0.3 * base  # 30% jitter
        return (base + jitter) * SECOND

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        self.attempts += 1
        try:
            result = self.perform_operation()
        except Exception as err:
            self.last_error = err
            raise
        self.attempts = 0  # reset on success
        self.last_error = None
        return result


@pytest.mark.parametrize(
    ("error", "attempts"),
    [(NetworkError("reset"), 5), (RateLimitError(2 * SECOND), 3), (AuthError("bad token"), 1), (ValueError("?"), 2)],
)
def test_custom_node_types__retryable_node_implementation(error: Exception, attempts: int) -> None:
    """### RetryableNode Implementation — the attempt budget follows the last error (network
    5, rate limit 3, auth none, other 2); rate limits wait ``retry-after``, the rest back
    off exponentially with up to 30% jitter."""
    calls: list[int] = []

    def perform_operation() -> Any:
        calls.append(1)
        raise error

    node = SmartRetryNode(perform_operation)
    ctx, events = observed()
    with pytest.raises(NodeError) as info:
        run(node, ctx=ctx)
    assert len(calls) == attempts == info.value.attempts
    assert info.value.__cause__ is error
    waits = [f.wait for f in failures(events)][:-1]  # the last failure waits for nothing
    assert len(waits) == attempts - 1
    for n, wait in enumerate(waits, start=1):
        if isinstance(error, RateLimitError):
            assert wait == error.retry_after
        else:
            base = 1.5**n * SECOND
            assert base <= wait <= 1.3 * base


def test_custom_node_types__retryable_node_implementation__recovers() -> None:
    """### RetryableNode Implementation — a success resets the attempt count and the last error."""
    outcomes = [NetworkError("blip"), "ok"]

    def perform_operation() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    node = SmartRetryNode(perform_operation)
    ctx, events = observed()
    run(node, ctx=ctx)
    assert exec_results(events, "SmartRetryNode") == ["ok"]
    assert (node.attempts, node.last_error) == (0, None)


def test_custom_node_types__composite_nodes() -> None:
    """### Composite Nodes — stages run in order on the previous result; a failing stage is
    reported by index; a cancelled context stops between stages."""

    class PipelineNode(Node):
        def __init__(self, *stages: Callable[[Context, Any], Any]) -> None:
            super().__init__()
            self.stages = stages

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("input")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            result = prep_result
            for i, stage in enumerate(self.stages):
                ctx.check()
                try:
                    result = stage(ctx, result)
                except Exception as err:
                    raise RuntimeError(f"stage {i} failed: {err}") from err
            return result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("output", exec_result)
            return None

    shared = SharedStore({"input": " Data "})
    run(PipelineNode(lambda c, s: s.strip(), lambda c, s: s.lower(), lambda c, s: s + "!"), shared)
    assert shared["output"] == "data!"

    def reject(ctx: Context, value: Any) -> Any:
        raise ValueError("rejected")

    with pytest.raises(NodeError, match="stage 1 failed: rejected") as info:
        run(PipelineNode(lambda c, s: s, reject), SharedStore({"input": 1}))
    assert isinstance(info.value.__cause__.__cause__, ValueError)

    ctx, cancel = Context.background().with_cancel()
    ran: list[int] = []

    def cancelling(c: Context, value: Any) -> Any:
        ran.append(0)
        cancel()
        return value

    with pytest.raises(Cancelled):
        run(PipelineNode(cancelling, lambda c, v: ran.append(1)), SharedStore(), ctx=ctx)
    assert ran == [0]


def test_custom_node_types__monitoring_nodes() -> None:
    """### Monitoring Nodes — executions, successes, failures, latency and success rate of
    the wrapped node's exec."""

    class Metrics:
        def __init__(self) -> None:
            self.executions = self.successes = self.failures = 0
            self.total_latency = 0.0
            self.lock = threading.Lock()

    class MonitoredNode(Node):
        def __init__(self, name: str, base_node: Node) -> None:
            super().__init__(name=name)
            self.base_node = base_node
            self.metrics = Metrics()

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            start = time.monotonic()
            with self.metrics.lock:
                self.metrics.executions += 1
            try:
                result = self.base_node.exec(ctx, prep_result)
            except Exception as err:
                with self.metrics.lock:
                    self.metrics.failures += 1
                    self.metrics.total_latency += time.monotonic() - start
                log.info("[%s] Execution failed: %s", self.name, err)
                raise
            with self.metrics.lock:
                self.metrics.successes += 1
                self.metrics.total_latency += time.monotonic() - start
            return result

        def get_metrics(self) -> dict[str, Any]:
            m = self.metrics
            return {
                "executions": m.executions,
                "successes": m.successes,
                "failures": m.failures,
                "avg_latency": m.total_latency / m.executions if m.executions else 0.0,
                "success_rate": m.successes / m.executions if m.executions else 0.0,
            }

    outcomes = iter([1, None, 3])

    def base_exec(ctx: Context, prep_result: Any) -> Any:
        value = next(outcomes)
        if value is None:
            raise NetworkError("dropped")
        return value

    node = MonitoredNode("payments", Node(exec=base_exec))
    run(node)
    with pytest.raises(NodeError) as info:
        run(node)
    assert info.value.node_name == "payments"
    run(node)
    metrics = node.get_metrics()
    assert (metrics["executions"], metrics["successes"], metrics["failures"]) == (3, 2, 1)
    assert metrics["success_rate"] == pytest.approx(2 / 3)
    assert metrics["avg_latency"] >= 0


def test_custom_node_types__async_nodes() -> None:
    """### Async Nodes — tasks go to a fixed set of workers and come back in their slots;
    a cancelled context stops the wait with the context's error."""

    @dataclass
    class Task:
        value: Any
        index: int = 0
        results: list[Any] | None = None
        gate: threading.Event | None = None

    class WaitGroup:
        def __init__(self) -> None:
            self.count = 0
            self.cond = threading.Condition()

        def add(self, n: int) -> None:
            with self.cond:
                self.count += n

        def done(self) -> None:
            with self.cond:
                self.count -= 1
                self.cond.notify_all()

        def wait(self) -> None:
            with self.cond:
                self.cond.wait_for(lambda: self.count == 0)

    class AsyncNode(Node):
        def __init__(self, workers: int) -> None:
            super().__init__()
            self.workers = workers
            self.queue: queue.Queue[Task | None] = queue.Queue(maxsize=workers * 2)
            self.wg = WaitGroup()
            self.threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(workers)]
            for thread in self.threads:
                thread.start()

        def worker(self) -> None:
            while (task := self.queue.get()) is not None:
                self.process_task(task)
                self.wg.done()

        def process_task(self, task: Task) -> None:
            if task.gate is not None:
                task.gate.wait(1)
            task.results[task.index] = task.value * 10

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("tasks")

        def exec(self, ctx: Context, tasks: Any) -> Any:
            results: list[Any] = [None] * len(tasks)
            for i, task in enumerate(tasks):
                self.wg.add(1)
                task.index, task.results = i, results
                self.queue.put(task)
            done = threading.Event()
            threading.Thread(target=lambda: (self.wg.wait(), done.set()), daemon=True).start()
            while not done.wait(SECOND):
                ctx.check()
            return results

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("results", exec_result)
            return None

        def close(self) -> None:
            for _ in self.threads:
                self.queue.put(None)
            for thread in self.threads:
                thread.join(1)

    node = AsyncNode(3)
    try:
        shared = SharedStore({"tasks": [Task(v) for v in range(8)]})
        run(node, shared)
        assert shared["results"] == [v * 10 for v in range(8)]

        gate = threading.Event()
        ctx, cancel = Context.background().with_cancel()
        threading.Timer(5 * SECOND, cancel).start()
        try:
            with pytest.raises(Cancelled):
                run(node, SharedStore({"tasks": [Task(1, gate=gate)]}), ctx=ctx)
        finally:
            gate.set()
    finally:
        node.close()
    assert not any(thread.is_alive() for thread in node.threads)


def test_custom_node_types__validation_nodes() -> None:
    """### Validation Nodes — every rule is checked and all violations are reported at once;
    valid data leads to ``valid``. Exec's error fails the run (the default fallback
    re-raises); with a fallback that returns nil, post routes to ``invalid`` as intended."""

    class Rule:
        def __init__(self, name: str, check: Callable[[Any], bool], message: str) -> None:
            self._name, self.check, self.message = name, check, message

        def validate(self, value: Any) -> None:
            if not self.check(value):
                raise ValueError(self.message)

        def name(self) -> str:
            return self._name

    class ValidationNode(Node):
        def __init__(self, *rules: Rule) -> None:
            super().__init__()
            self.rules = rules

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("data")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            errors = []
            for rule in self.rules:
                try:
                    rule.validate(prep_result)
                except ValueError as err:
                    errors.append(f"{rule.name()}: {err}")
            if errors:
                raise ValueError(f"validation failed: {'; '.join(errors)}")
            return prep_result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if exec_result is None:
                return "invalid"
            return "valid"

    rules = (
        Rule("positive", lambda v: v > 0, "must be positive"),
        Rule("even", lambda v: v % 2 == 0, "must be even"),
        Rule("small", lambda v: v < 100, "must be below 100"),
    )
    assert run(ValidationNode(*rules), SharedStore({"data": 42})) == "valid"
    with pytest.raises(NodeError) as info:
        run(ValidationNode(*rules), SharedStore({"data": -3}))
    assert str(info.value.__cause__) == "validation failed: positive: must be positive; even: must be even"

    lenient = ValidationNode(*rules)
    lenient.exec_fallback = lambda prep_result, error: None  # type: ignore[method-assign]
    assert run(lenient, SharedStore({"data": 101})) == "invalid"


# =======================================================================================
# Best Practices
# =======================================================================================
@pytest.mark.parametrize(("valid", "saved"), [(True, [{"id": 1, "name": "ADA"}]), (False, [])])
def test_best_practices__single_responsibility(valid: bool, saved: list[Any]) -> None:
    """#### Single Responsibility — fetch, validate, transform and save as four nodes;
    invalid data stops after validation."""
    database: list[Any] = []

    def create_fetch_node() -> Node:
        return Node(
            exec=lambda c, p: {"id": 1, "name": "ada" if valid else ""}, post=lambda c, s, p, e: s.set("data", e)
        )

    def create_validate_node() -> Node:
        return Node(
            prep=lambda c, s: s.get_dict("data"), post=lambda c, s, data, e: "valid" if data["name"] else "invalid"
        )

    def create_transform_node() -> Node:
        return Node(
            prep=lambda c, s: s.get_dict("data"),
            exec=lambda c, data: {**data, "name": data["name"].upper()},
            post=lambda c, s, p, e: s.set("transformed", e),
        )

    def create_save_node() -> Node:
        return Node(prep=lambda c, s: s.get_dict("transformed"), exec=lambda c, record: database.append(record))

    fetch_node, validate_node = create_fetch_node(), create_validate_node()
    transform_node, save_node = create_transform_node(), create_save_node()
    flow = Flow(fetch_node)
    flow.connect(fetch_node, DEFAULT_ACTION, validate_node)
    flow.connect(validate_node, "valid", transform_node)
    flow.connect(transform_node, DEFAULT_ACTION, save_node)
    flow.run()
    assert database == saved


def test_best_practices__idempotency() -> None:
    """#### Idempotency — an upsert makes the save node safe to retry: a retried (and a
    repeated) save leaves one row (sqlite stands in for the database)."""

    @dataclass
    class Record:
        id: int
        data: str

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, data TEXT)")
    lost_replies = {"left": 1}

    class SaveNode(Node):
        max_retries = 3

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.bind("record", Record)

        def exec(self, ctx: Context, data: Any) -> Any:
            db.execute(
                "INSERT INTO records (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = ?",
                (data.id, data.data, data.data),
            )
            if lost_replies["left"]:
                lost_replies["left"] -= 1
                raise NetworkError("reply lost after the write")  # so the write is retried
            return data.id

    shared = SharedStore({"record": {"id": 7, "data": "v1"}})
    run(SaveNode(), shared)
    shared.set("record", {"id": 7, "data": "v2"})
    run(SaveNode(), shared)
    assert db.execute("SELECT id, data FROM records").fetchall() == [(7, "v2")]


def test_best_practices__error_handling() -> None:
    """#### Error Handling — a descriptive error ("failed to fetch user 42: ...") wrapping
    the cause reaches the caller with the cause intact."""

    def fetch(user_id: int) -> Any:
        raise NetworkError("connection refused")

    def exec_(ctx: Context, user_id: Any) -> Any:
        try:
            return fetch(user_id)
        except NetworkError as err:
            raise RuntimeError(f"failed to fetch user {user_id}: {err}") from err

    node = Node(prep=lambda c, s: s.get_int("user_id"), exec=exec_, name="fetchUser")
    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"user_id": 42}))
    assert "fetchUser" in str(info.value) and "failed to fetch user 42: connection refused" in str(info.value)
    assert isinstance(info.value.__cause__.__cause__, NetworkError)


def test_best_practices__type_safe_shared_store_access() -> None:
    """#### Type-Safe SharedStore Access — the manual lookup fails on a missing key, the
    typed getter returns 0 (or the given default), and Bind reports an invalid config."""

    class BadNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared["count"]  # fails when the key is missing

    class GoodNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return (shared.get_int("count"), shared.get_int("count", -1))

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("counts", prep_result)
            return None

    class ConfigNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            try:
                return shared.bind("config", Config)
            except BindError as err:
                raise ValueError(f"invalid config: {err}") from err

    with pytest.raises(NodeError) as bad:
        run(BadNode(), SharedStore())
    assert bad.value.phase == "prep" and isinstance(bad.value.__cause__, KeyError)

    shared = SharedStore()
    run(GoodNode(), shared)
    assert shared["counts"] == (0, -1)

    with pytest.raises(NodeError, match="invalid config") as info:
        run(ConfigNode(), SharedStore({"config": {"timeout": "soon", "retries": 1}}))
    assert isinstance(info.value.__cause__.__cause__, BindError)


def test_best_practices__modular_flows() -> None:
    """#### Modular Flows — one validation-flow factory reused by two flows, each with its
    own copy."""
    trail: list[str] = []

    def create_validation_flow() -> Flow:
        schema_check, business_rules = visit(trail, "schema", "valid"), visit(trail, "business")
        return Flow(schema_check).connect(schema_check, "valid", business_rules)

    fetch_node, parse_node = visit(trail, "fetch"), visit(trail, "parse")
    main_flow = Flow(fetch_node).connect(fetch_node, DEFAULT_ACTION, create_validation_flow())
    api_flow = Flow(parse_node).connect(parse_node, DEFAULT_ACTION, create_validation_flow())
    main_flow.run()
    api_flow.run()
    assert trail == ["fetch", "schema", "business", "parse", "schema", "business"]
    assert main_flow.successors(fetch_node)["default"] is not api_flow.successors(parse_node)["default"]


@pytest.mark.parametrize("failing", ["start", "process", "save"])
def test_best_practices__error_boundaries(failing: str) -> None:
    """#### Error Boundaries — one loop connects every node's ``error`` action to a single
    handler, which sees where the error happened."""
    handled: list[Any] = []

    def step(name: str) -> Node:
        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
            if name == failing:
                shared.set("failed_at", name)
                return "error"
            return DEFAULT_ACTION

        return Node(post=post, name=name)

    start_node, process_node, save_node = step("start"), step("process"), step("save")

    def create_flow_with_error_handling() -> Flow:
        flow = Flow(start_node)
        flow.connect(start_node, DEFAULT_ACTION, process_node)
        flow.connect(process_node, DEFAULT_ACTION, save_node)
        error_handler = Node(prep=lambda c, s: s.get_str("failed_at"), exec=lambda c, at: handled.append(at))
        for node in (start_node, process_node, save_node):
            flow.connect(node, "error", error_handler)
        return flow

    create_flow_with_error_handling().run()
    assert handled == [failing]


def test_best_practices__respect_cancellation() -> None:
    """#### Respect Cancellation — exec checks the context before each item; cancelling
    mid-way stops the loop and the run raises ``Cancelled`` (no fallback)."""
    processed: list[int] = []
    ctx, cancel = Context.background().with_cancel()
    fallbacks: list[BaseException] = []

    def process_item(ctx: Context, item: int) -> int:
        processed.append(item)
        if item == 2:
            cancel()  # e.g. the user aborts while item 2 is being processed
        return item * 2

    class ProcessNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, items: Any) -> Any:
            results = []
            for item in items:
                ctx.check()  # check context before each iteration
                results.append(process_item(ctx, item))
            return results

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            fallbacks.append(error)
            return []

    with pytest.raises(Cancelled):
        run(ProcessNode(), SharedStore({"items": [1, 2, 3, 4]}), ctx=ctx)
    assert processed == [1, 2]
    assert fallbacks == []

    processed.clear()
    shared = SharedStore({"items": [1, 2, 3]})
    run(ProcessNode(), shared)
    assert processed == [1, 2, 3]


def test_best_practices__timeout_management() -> None:
    """#### Timeout Management — exec gives its API call a deadline of its own. When that
    deadline passes, the call failed: an ordinary exec failure, retried like any other
    (the run itself was not cancelled: Go returns ``context.DeadlineExceeded`` as a plain
    error and retries it)."""
    calls: list[int] = []

    def call_api(ctx: Context, prep_result: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            ctx.sleep(1)  # hangs until the node's own deadline cancels it
        return "response"

    class APINode(Node):
        max_retries = 2

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            ctx, cancel = ctx.with_timeout(30 * SECOND)
            try:
                return call_api(ctx, prep_result)
            finally:
                cancel()

    ctx, events = observed()
    assert run(APINode(), ctx=ctx) == DEFAULT_ACTION
    assert len(calls) == 2
    assert exec_results(events, "APINode") == ["response"]


def test_best_practices__thread_safe_nodes() -> None:
    """#### Thread-Safe Nodes — a mutex keeps the node's counter exact under concurrent runs."""

    class CounterNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.mu = threading.Lock()
            self.count = 0

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            with self.mu:
                self.count += 1
                return self.count

    node = CounterNode()
    run(BatchNode(lambda ctx, item: run(node)), SharedStore({"items": range(50)}))
    threads = [threading.Thread(target=lambda: [run(node) for _ in range(25)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert node.count == 150


def test_best_practices__avoid_shared_node_instances() -> None:
    """#### Avoid Shared Node Instances — a fresh node per goroutine: each instance sees
    exactly one run, all writing safely to the shared store."""
    made: list[Node] = []

    def create_process_node() -> Node:
        def exec_(ctx: Context, prep_result: Any) -> Any:
            node.runs += 1  # type: ignore[attr-defined]
            return node.runs  # type: ignore[attr-defined]

        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.update("total", lambda total: total + exec_result, default=0)
            return None

        node = Node(exec=exec_, post=post)
        node.runs = 0  # type: ignore[attr-defined]
        made.append(node)
        return node

    shared = SharedStore()
    ctx = Context.background()
    threads = [
        threading.Thread(target=run, args=(create_process_node(), shared), kwargs={"ctx": ctx}) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [n.runs for n in made] == [1] * 10  # type: ignore[attr-defined]
    assert shared["total"] == 10


def test_best_practices__clean_up_resources(tmp_path: Any) -> None:
    """#### Clean Up Resources — the file is closed whatever happens in exec (Go's ``defer
    file.Close()``, Python's ``with``); a missing file fails exec."""
    opened: list[Any] = []

    def process_file(file: Any) -> Any:
        text = file.read()
        if "bad" in text:
            raise ValueError("corrupt file")
        return len(text)

    class FileNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_str("path")

        def exec(self, ctx: Context, path: Any) -> Any:
            with open(path) as file:  # always cleaned up
                opened.append(file)
                return process_file(file)

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("size", exec_result)
            return None

    (tmp_path / "good.txt").write_text("hello")
    (tmp_path / "bad.txt").write_text("bad data")
    shared = SharedStore({"path": str(tmp_path / "good.txt")})
    run(FileNode(), shared)
    assert shared["size"] == 5
    with pytest.raises(NodeError):
        run(FileNode(), SharedStore({"path": str(tmp_path / "bad.txt")}))
    assert len(opened) == 2 and all(f.closed for f in opened)
    with pytest.raises(NodeError) as info:
        run(FileNode(), SharedStore({"path": str(tmp_path / "none.txt")}))
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_best_practices__connection_pooling() -> None:
    """#### Connection Pooling — every node the flow factory creates shares one pool."""

    class DatabaseNode(Node):
        def __init__(self, db: sqlite3.Connection) -> None:
            super().__init__()
            self.db = db

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return self.db.execute("SELECT 40 + 2").fetchone()[0]

    class DatabaseFlow:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def create_node(self) -> Node:
            return DatabaseNode(self.db)  # reuse the connection pool

    pool = sqlite3.connect(":memory:")
    factory = DatabaseFlow(pool)
    nodes = [factory.create_node() for _ in range(3)]
    assert len({id(n) for n in nodes}) == 3 and all(n.db is pool for n in nodes)
    ctx, events = observed()
    flow = Flow(nodes[0]).connect(nodes[0], DEFAULT_ACTION, nodes[1]).connect(nodes[1], DEFAULT_ACTION, nodes[2])
    flow.run(ctx=ctx)
    assert exec_results(events, "DatabaseNode") == [42, 42, 42]


def create_process_node() -> Node:
    """The node under test in the docs' ``TestProcessNode``."""

    def exec_(ctx: Context, prep_result: Any) -> Any:
        if prep_result is None:
            raise ValueError("no input")
        return "expected output"

    return Node(exec=exec_)


def test_best_practices__unit_test_nodes() -> None:
    """#### Unit Test Nodes — call a node's exec directly: the success case and the error case."""
    node = create_process_node()
    ctx = Context.background()
    assert node.exec(ctx, "test input") == "expected output"
    with pytest.raises(ValueError):
        node.exec(ctx, None)


@dataclass
class OutputData:
    total: int
    labels: list[str]


def test_best_practices__integration_test_flows() -> None:
    """#### Integration Test Flows — run the whole flow and Bind the output to a struct."""

    def create_main_flow() -> Flow:
        total = Node(
            prep=lambda c, s: s.get_list("input"), exec=lambda c, xs: sum(xs), post=lambda c, s, p, e: s.set("total", e)
        )
        label = Node(
            prep=lambda c, s: s.get_list("input"),
            exec=lambda c, xs: [f"#{x}" for x in xs],
            post=lambda c, s, p, e: s.set("output", {"total": s.get_int("total"), "labels": e}),
        )
        return Flow(total).connect(total, DEFAULT_ACTION, label)

    flow = create_main_flow()
    shared = SharedStore()
    shared.set("input", [1, 2, 3])
    flow.run(shared, ctx=Context.background())
    assert shared.bind("output", OutputData) == OutputData(total=6, labels=["#1", "#2", "#3"])


class UserNotFound(Exception):
    pass


class FetchUserNode(Node):
    """FetchUserNode fetches user data from the API (the docs' documented node, made real).

    Prep: reads "user_id" from the SharedStore
    Exec: fetches the user from the API, retries on network errors
    Post: stores the user data in "user_data"
    Actions: "success" (fetched), "not_found" (no such user), "error" (unrecoverable)
    """

    max_retries = 3

    def __init__(self, api_client: Any) -> None:
        super().__init__()
        self.api_client = api_client

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get_int("user_id")

    def exec(self, ctx: Context, user_id: Any) -> Any:
        try:
            return {"user": self.api_client.get_user(user_id)}
        except UserNotFound:
            return {"user": None}
        # NetworkError propagates: retried

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        return {"error": str(error)}

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        if "error" in exec_result:
            shared.set("error", exec_result["error"])
            return "error"
        if exec_result["user"] is None:
            return "not_found"
        shared.set("user_data", exec_result["user"])
        return "success"


@pytest.mark.parametrize(
    ("user_id", "outages", "action", "calls"),
    [(1, 0, "success", 1), (404, 0, "not_found", 1), (1, 2, "success", 3), (1, 3, "error", 3)],
)
def test_best_practices__document_node_behavior(user_id: int, outages: int, action: str, calls: int) -> None:
    """#### Document Node Behavior — the node does what its comment documents: the three
    actions, the ``user_data`` key and retries on network errors."""

    class APIClient:
        def __init__(self) -> None:
            self.calls = 0

        def get_user(self, user_id: int) -> Any:
            self.calls += 1
            if self.calls <= outages:
                raise NetworkError("timeout")
            if user_id == 404:
                raise UserNotFound(user_id)
            return {"id": user_id, "name": "ada"}

    client = APIClient()
    shared = SharedStore({"user_id": user_id})
    assert run(FetchUserNode(client), shared) == action
    assert client.calls == calls
    assert shared.has("user_data") == (action == "success")


def test_best_practices__batch_operations() -> None:
    """#### Batch Operations — a concurrent batch node instead of a loop over the items."""
    items = [3, 1, 2]
    looped = [item * item for item in items]
    shared = SharedStore()
    shared.set("items", items)
    run(BatchNode(lambda ctx, item: item * item, True), shared)
    assert shared["results"] == looped


@pytest.mark.parametrize(("needs", "loads"), [(True, 1), (False, 0)])
def test_best_practices__lazy_loading(needs: bool, loads: int) -> None:
    """#### Lazy Loading — user data is loaded only when the node needs it."""
    loaded: list[int] = []

    def needs_user_data(shared: SharedStore) -> bool:
        return shared.get_bool("needs_user")

    def load_user_data() -> Any:
        loaded.append(1)
        return {"name": "ada"}

    class ProcessNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            if needs_user_data(shared):
                return load_user_data()
            return None

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("user", prep_result)
            return None

    shared = SharedStore({"needs_user": needs})
    run(ProcessNode(), shared)
    assert len(loaded) == loads
    assert shared["user"] == ({"name": "ada"} if needs else None)


def test_best_practices__add_observability(caplog: pytest.LogCaptureFixture) -> None:
    """#### Add Observability — exec logs its duration always, and either the success with
    the item count or the error."""

    def process(items: Any) -> Any:
        if items is None:
            raise ValueError("nothing to process")
        return [i * 2 for i in items]

    class ProcessNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            start = time.monotonic()
            try:
                try:
                    result = process(prep_result)
                except Exception as err:
                    log.info("ProcessNode error: %s", err)
                    raise
                log.info("ProcessNode success: processed %d items", len(result))
                return result
            finally:
                log.info("ProcessNode took %.4fs", time.monotonic() - start)

    with caplog.at_level(logging.INFO, logger=log.name):
        run(ProcessNode(), SharedStore({"items": [1, 2, 3]}))
        with pytest.raises(NodeError):
            run(ProcessNode(), SharedStore())
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "ProcessNode success: processed 3 items"
    assert messages[1].startswith("ProcessNode took ")
    assert messages[2] == "ProcessNode error: nothing to process"
    assert messages[3].startswith("ProcessNode took ")
