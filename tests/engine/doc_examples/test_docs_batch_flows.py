"""The Flyt docs' chapter "Batch Flows" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported_batch import *


def test_batch_flows__basic_batch_flow() -> None:
    """### Basic Batch Flow — one fresh flow per input, each seeing its own ``user_id`` and
    ``email``; the parent gets ``batch_count`` and ``batch_results``, and nothing else."""
    processed: list[dict[str, Any]] = []
    lock = threading.Lock()

    def process_user(data: dict[str, Any]) -> Any:
        with lock:
            processed.append(data)
        return f"processed {data['email']}"

    def flow_factory() -> Flow:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            return {"user_id": shared.get_int("user_id"), "email": shared.get_str("email")}

        validate_node = Node(prep=prep, exec=lambda ctx, data: process_user(data))
        return Flow(validate_node)

    def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        return [
            {"user_id": 1, "email": "user1@example.com"},
            {"user_id": 2, "email": "user2@example.com"},
            {"user_id": 3, "email": "user3@example.com"},
        ]

    batch_flow = BatchFlow(flow_factory, batch_func, True)
    shared = SharedStore()
    run(batch_flow, shared, ctx=Context.background())
    expected = batch_func(Context.background(), shared)
    assert sorted(processed, key=lambda d: d["user_id"]) == expected
    assert shared["batch_count"] == 3
    assert shared["batch_results"] == expected
    assert sorted(shared.keys()) == ["batch_count", "batch_results"]


@pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "concurrent"])
def test_batch_flows__sequential_vs_concurrent_execution(concurrent: bool) -> None:
    """### Sequential vs Concurrent Execution — both give the same per-input results in
    input order; sequential runs the flows one after another, in order."""
    tracker = InFlight()

    def flow_factory() -> Flow:
        def exec_(ctx: Context, n: Any) -> Any:
            with tracker.track(n):
                time.sleep(SECOND)
                return n * n

        return Flow(Node(prep=lambda c, s: s.get_int("n"), exec=exec_, post=lambda c, s, p, e: s.set("square", e)))

    def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        return [{"n": n} for n in range(6)]

    shared = SharedStore()
    run(BatchFlow(flow_factory, batch_func, concurrent), shared)
    assert [r["square"] for r in shared["batch_results"]] == [n * n for n in range(6)]
    if not concurrent:
        assert tracker.max == 1
        assert [item for kind, item in tracker.log if kind == "start"] == list(range(6))


def test_batch_flows__dynamic_input_generation() -> None:
    """### Dynamic Input Generation — the batch size comes from the parent store (a JSON
    float), the users from a (fake) database; a failing fetch fails the batch's prep."""

    @dataclass
    class DBUser:
        id: int
        name: str

    database = {"up": True}

    def fetch_users(limit: int) -> list[DBUser]:
        if not database["up"]:
            raise ConnectionError("database unavailable")
        return [DBUser(i, f"user{i}") for i in range(1, limit + 1)]

    def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        config = shared.get_dict("batch_config")
        batch_size = int(config["size"])
        users = fetch_users(batch_size)
        return [{"user_id": u.id, "user_name": u.name, "user_data": u} for u in users]

    def flow_factory() -> Flow:
        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            user = shared.get("user_data")
            shared.set("greeting", f"hello {shared.get_str('user_name')} (#{user.id})")
            return None

        return Flow(Node(post=post))

    shared = SharedStore({"batch_config": {"size": 3.0}})
    run(BatchFlow(flow_factory, batch_func), shared)
    assert [r["greeting"] for r in shared["batch_results"]] == [
        "hello user1 (#1)",
        "hello user2 (#2)",
        "hello user3 (#3)",
    ]

    database["up"] = False
    with pytest.raises(NodeError) as info:
        run(BatchFlow(flow_factory, batch_func), SharedStore({"batch_config": {"size": 2.0}}))
    assert info.value.phase == "prep" and isinstance(info.value.__cause__, ConnectionError)


def test_batch_flows__complex_flow_factory() -> None:
    """### Complex Flow Factory — every iteration gets its own fetch → validate → process →
    save flow with error routes; each input ends saved or in the error node."""
    factory_calls: list[int] = []

    def flow_factory() -> Flow:
        factory_calls.append(1)
        fetch_node = Node(
            prep=lambda c, s: s.get_int("id"),
            exec=lambda c, record_id: {"id": record_id, "amount": record_id * 10},
            post=lambda c, s, p, record: s.set("record", record),
        )
        validate_node = Node(post=lambda c, s, p, e: "valid" if s.get_bool("valid") else "invalid")

        def process_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
            if shared.get_bool("explode"):
                shared.set("error", "process failed")
                return "error"
            shared.set("processed", shared.get_dict("record")["amount"] + 1)
            return DEFAULT_ACTION

        process_node = Node(post=process_post)
        save_node = Node(post=lambda c, s, p, e: s.set("saved", True))
        error_node = Node(post=lambda c, s, p, e: s.set("error", s.get_str("error", "invalid")))

        flow = Flow(fetch_node)
        flow.connect(fetch_node, DEFAULT_ACTION, validate_node)
        flow.connect(validate_node, "valid", process_node)
        flow.connect(validate_node, "invalid", error_node)
        flow.connect(process_node, DEFAULT_ACTION, save_node)
        flow.connect(process_node, "error", error_node)
        return flow

    inputs = [{"id": 1, "valid": True}, {"id": 2, "valid": False}, {"id": 3, "valid": True, "explode": True}]
    shared = SharedStore()
    run(BatchFlow(flow_factory, lambda ctx, shared: inputs), shared)
    results = shared["batch_results"]
    assert (results[0].get("saved"), results[0].get("processed"), results[0].get("error")) == (True, 11, None)
    assert (results[1].get("saved"), results[1]["error"]) == (None, "invalid")
    assert (results[2].get("saved"), results[2]["error"]) == (None, "process failed")
    assert len(factory_calls) == 3


def test_batch_flows__batch_flow_with_configuration() -> None:
    """### Batch Flow with Configuration — one configuration captured by every flow, one
    iteration per item of the parent's ``items``."""

    @dataclass
    class Config:
        prefix: str
        factor: int

    def process_with_config(item: Any, config: Config) -> Any:
        return f"{config.prefix}{item * config.factor}"

    def create_configured_batch_flow(config: Config) -> BatchFlow:
        def flow_factory() -> Flow:
            node = Node(
                prep=lambda ctx, shared: shared.get("item"),
                exec=lambda ctx, item: process_with_config(item, config),
                post=lambda ctx, shared, p, e: shared.set("result", e),
            )
            return Flow(node)

        def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
            items = shared.get_list("items")
            return [{"item": item, "config": config} for item in items]

        return BatchFlow(flow_factory, batch_func, True)

    config = Config("#", 3)
    shared = SharedStore({"items": [1, 2, 3]})
    run(create_configured_batch_flow(config), shared)
    assert [r["result"] for r in shared["batch_results"]] == ["#3", "#6", "#9"]
    assert all(r["config"] is config for r in shared["batch_results"])


def test_batch_flows__result_aggregation() -> None:
    """### Result Aggregation — a collector shared by all flows gathers results and errors;
    failed iterations also fail the batch (``BatchError`` with the flows' errors)."""

    class ResultCollector:
        def __init__(self) -> None:
            self.mu = threading.Lock()
            self.results: list[Any] = []
            self.errors: list[BaseException] = []

    def process(value: Any) -> Any:
        if value % 2:
            raise ValueError(f"odd value {value}")
        return value // 2

    def create_aggregating_batch_flow(collector: ResultCollector) -> BatchFlow:
        def flow_factory() -> Flow:
            def exec_(ctx: Context, value: Any) -> Any:
                try:
                    result = process(value)
                except ValueError as err:
                    with collector.mu:
                        collector.errors.append(err)
                    raise
                with collector.mu:
                    collector.results.append(result)
                return result

            return Flow(
                Node(prep=lambda c, s: s.get_int("value"), exec=exec_, post=lambda c, s, p, e: s.set("half", e))
            )

        return BatchFlow(flow_factory, lambda ctx, shared: [{"value": v} for v in range(5)], True)

    collector = ResultCollector()
    shared = SharedStore()
    with pytest.raises(BatchError) as info:
        run(create_aggregating_batch_flow(collector), shared)
    assert sorted(collector.results) == [0, 1, 2]
    assert sorted(str(e) for e in collector.errors) == ["odd value 1", "odd value 3"]
    assert info.value.message == "2/5 items failed"
    assert [type(e).__name__ if e else None for e in info.value.errors] == [None, "NodeError", None, "NodeError", None]
    assert [r["half"] if r else None for r in shared["batch_results"]] == [0, None, 1, None, 2]
    assert shared["batch_count"] == 5


def test_batch_flows__batch_flow_with_progress() -> None:
    """### Batch Flow with Progress — the tracker learns the total from the batch function;
    every flow reports completed or failed, and progress reaches 100%."""

    class ProgressTracker:
        def __init__(self) -> None:
            self.total = 0
            self.completed = 0
            self.failed = 0
            self.lock = threading.Lock()
            self.reports: list[float] = []

    def generate_inputs() -> list[dict[str, Any]]:
        return [{"value": 1}, {"value": None}, {"value": 3}, {"value": 4}]

    def create_progress_batch_flow(tracker: ProgressTracker) -> BatchFlow:
        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
            with tracker.lock:
                if exec_result is not None:
                    tracker.completed += 1
                else:
                    tracker.failed += 1
                progress = tracker.completed + tracker.failed
                percentage = progress / tracker.total * 100
                tracker.reports.append(percentage)
            log.info("Batch progress: %.1f%% (%d/%d)", percentage, progress, tracker.total)
            return DEFAULT_ACTION

        def flow_factory() -> Flow:
            return Flow(Node(prep=lambda c, s: s.get("value"), exec=lambda c, v: v, post=post))

        def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
            inputs = generate_inputs()
            tracker.total = len(inputs)
            return inputs

        return BatchFlow(flow_factory, batch_func, True)

    tracker = ProgressTracker()
    run(create_progress_batch_flow(tracker), SharedStore())
    assert (tracker.total, tracker.completed, tracker.failed) == (4, 3, 1)
    assert sorted(tracker.reports) == [25.0, 50.0, 75.0, 100.0]


@pytest.mark.parametrize(("mode", "ids"), [("all", [1, 2, 4]), ("pending", [2]), ("failed", [4])])
def test_batch_flows__conditional_batch_processing(mode: str, ids: list[int]) -> None:
    """### Conditional Batch Processing — the mode picks the inputs, ``shouldProcess``
    filters them; an unknown mode fails the batch's prep."""
    everything = [
        {"id": 1, "status": "done", "enabled": True},
        {"id": 2, "status": "pending", "enabled": True},
        {"id": 3, "status": "pending", "enabled": False},
        {"id": 4, "status": "failed", "enabled": True},
    ]

    def should_process(entry: dict[str, Any]) -> bool:
        return entry["enabled"]

    def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        mode = shared.get_str("processing_mode")
        if mode == "all":
            inputs = everything
        elif mode == "pending":
            inputs = [e for e in everything if e["status"] == "pending"]
        elif mode == "failed":
            inputs = [e for e in everything if e["status"] == "failed"]
        else:
            raise ValueError(f"unknown mode: {mode}")
        return [entry for entry in inputs if should_process(entry)]

    def flow_factory() -> Flow:
        return Flow(Node(post=lambda c, s, p, e: s.set("handled", s.get_int("id"))))

    shared = SharedStore({"processing_mode": mode})
    run(BatchFlow(flow_factory, batch_func), shared)
    assert [r["handled"] for r in shared["batch_results"]] == ids
    assert shared["batch_count"] == len(ids)

    with pytest.raises(NodeError, match="unknown mode: bogus") as info:
        run(BatchFlow(flow_factory, batch_func), SharedStore({"processing_mode": "bogus"}))
    assert info.value.phase == "prep"


def test_batch_flows__nested_batch_flows() -> None:
    """### Nested Batch Flows — each outer iteration fetches its group, runs an inner
    concurrent batch flow over the members, and aggregates the inner results."""

    def inner_flow_factory() -> Flow:
        return Flow(
            Node(
                prep=lambda c, s: s.get_int("member"),
                exec=lambda c, m: m * m,
                post=lambda c, s, p, e: s.set("square", e),
            )
        )

    def inner_batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        return [{"member": m} for m in shared.get_list("members")]

    aggregate_node = Node(
        prep=lambda c, s: [r["square"] for r in s.get_list("batch_results")],
        exec=lambda c, squares: sum(squares),
        post=lambda c, s, p, total: s.set("sum", total),
    )

    def outer_flow_factory() -> Flow:
        inner_batch_flow = BatchFlow(inner_flow_factory, inner_batch_func, True)
        fetch_node = Node(
            prep=lambda c, s: s.get_str("group"),
            exec=lambda c, group: {"g1": [1, 2], "g2": [3], "g3": []}[group],
            post=lambda c, s, p, members: s.set("members", members),
        )
        flow = Flow(fetch_node)
        flow.connect(fetch_node, DEFAULT_ACTION, inner_batch_flow)
        flow.connect(inner_batch_flow, DEFAULT_ACTION, aggregate_node)
        return flow

    def outer_batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        return [{"group": g} for g in ("g1", "g2", "g3")]

    outer_batch_flow = BatchFlow(outer_flow_factory, outer_batch_func, False)
    shared = SharedStore()
    run(outer_batch_flow, shared)
    outer = shared["batch_results"]
    assert [r["sum"] for r in outer] == [5, 9, 0]
    assert [r["batch_count"] for r in outer] == [2, 1, 0]
    assert shared["batch_count"] == 3 and not shared.has("sum")


def test_batch_flows__error_recovery() -> None:
    """### Error Recovery — a failing operation becomes a ``failed`` result and a stored
    error record, so the batch as a whole succeeds."""
    stored_errors: list[dict[str, Any]] = []
    lock = threading.Lock()

    def risky_operation(value: Any) -> Any:
        if value < 0:
            raise ValueError(f"cannot handle {value}")
        return {"status": "ok", "value": value}

    def store_error(error_data: dict[str, Any]) -> None:
        with lock:
            stored_errors.append(error_data)

    def flow_factory() -> Flow:
        def exec_(ctx: Context, prep_result: Any) -> Any:
            try:
                return risky_operation(prep_result)
            except ValueError as err:
                store_error({"input": prep_result, "error": str(err), "time": time.time()})
                return {"status": "failed", "error": str(err)}  # don't fail the entire batch

        return Flow(Node(prep=lambda c, s: s.get("input"), exec=exec_, post=lambda c, s, p, e: s.set("outcome", e)))

    shared = SharedStore()
    run(BatchFlow(flow_factory, lambda c, s: [{"input": v} for v in (1, -2, 3)], True), shared)
    assert [r["outcome"]["status"] for r in shared["batch_results"]] == ["ok", "failed", "ok"]
    assert [(e["input"], e["error"]) for e in stored_errors] == [(-2, "cannot handle -2")]


def test_batch_flows__best_practices__isolate_flows() -> None:
    """### Best Practices — "Isolate Flows": every iteration runs on a flow of its own and a
    store of its own; writes in one iteration are invisible to the others."""
    nodes: list[int] = []
    lock = threading.Lock()

    def flow_factory() -> Flow:
        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            with lock:
                nodes.append(id(node))
            shared.set("seen_before", shared.get_list("written", []))
            shared.set("written", [shared.get_int("i")])
            return None

        node = Node(post=post)
        return Flow(node)

    shared = SharedStore({"written": []})
    run(BatchFlow(flow_factory, lambda c, s: [{"i": i} for i in range(4)], True), shared)
    assert len(set(nodes)) == 4
    assert [r["seen_before"] for r in shared["batch_results"]] == [[]] * 4
    assert shared["written"] == []


def test_batch_flows__best_practices__limit_concurrency() -> None:
    """### Best Practices — "Limit Concurrency": at most ``concurrency`` flows at once."""
    tracker = InFlight()

    def flow_factory() -> Flow:
        def exec_(ctx: Context, i: Any) -> Any:
            with tracker.track(i):
                time.sleep(2 * SECOND)

        return Flow(Node(prep=lambda c, s: s.get_int("i"), exec=exec_))

    batch = BatchFlow(flow_factory, lambda c, s: [{"i": i} for i in range(8)], True, config=BatchConfig(concurrency=2))
    shared = SharedStore()
    run(batch, shared)
    assert 1 <= tracker.max <= 2
    assert shared["batch_count"] == 8


def test_batch_flows__best_practices__handle_failures() -> None:
    """### Best Practices — "Handle Failures: decide whether one failure should stop the
    batch": by default the others finish; with ``fail_fast`` the rest are skipped."""
    ran: list[int] = []

    def flow_factory() -> Flow:
        def exec_(ctx: Context, i: Any) -> Any:
            ran.append(i)
            if i == 1:
                raise RuntimeError("iteration 1 broke")
            return i

        return Flow(Node(prep=lambda c, s: s.get_int("i"), exec=exec_, post=lambda c, s, p, e: s.set("out", e)))

    def inputs(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        return [{"i": i} for i in range(4)]

    shared = SharedStore()
    with pytest.raises(BatchError) as info:
        run(BatchFlow(flow_factory, inputs), shared)
    assert ran == [0, 1, 2, 3]
    assert isinstance(info.value.errors[1], NodeError)
    assert [r["out"] if r else None for r in shared["batch_results"]] == [0, None, 2, 3]

    ran.clear()
    with pytest.raises(BatchError) as fast:
        run(BatchFlow(flow_factory, inputs, config=BatchConfig(fail_fast=True)), SharedStore())
    assert ran == [0, 1]
    assert all(isinstance(e, Cancelled) for e in fast.value.errors[2:])
