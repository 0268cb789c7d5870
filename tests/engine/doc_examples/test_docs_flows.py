"""The Flyt docs' chapter "Flows" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


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
