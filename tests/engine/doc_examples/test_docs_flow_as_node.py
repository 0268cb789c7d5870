"""The Flyt docs' chapter "Flow as Node" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


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
