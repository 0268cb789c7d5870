"""The Flyt docs' chapter "Nested Flows" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


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
