"""The Flyt docs' chapter "Conditional Branching" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


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
