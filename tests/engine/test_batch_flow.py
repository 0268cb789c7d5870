"""BatchFlow: every rule of API.md "Batches" for BatchFlow, sequential, concurrent and on an executor."""

from __future__ import annotations

import importlib.util
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from async_style import BLOCKING, skip_when_async

from flyt_engine import (
    BatchConfig,
    BatchError,
    BatchFlow,
    BatchNode,
    Cancelled,
    Context,
    Flow,
    FlytError,
    Node,
    NodeError,
    SharedStore,
    run,
)
from flyt_engine.batch import run_detached_iteration

pytestmark = pytest.mark.usefixtures("each_wiring", "each_style")


@pytest.fixture(scope="module")
def thread_executor():
    with ThreadPoolExecutor(4) as pool:
        yield pool


@pytest.fixture(params=["sequential", "concurrent", "observed", "executor"])
def how(request, thread_executor):
    """Keyword arguments for BatchFlow, plus the context to run it with."""
    name = request.param
    kwargs = {"concurrent": name != "sequential"}
    if name == "executor":
        kwargs["executor"] = thread_executor
    ctx = Context.background().with_observer(lambda event: None) if name == "observed" else Context.background()
    return kwargs, ctx


def greeting_flow() -> Flow:
    """validate → greet; each step writes its own key."""

    def validate(ctx, shared):
        email = shared.get_str("email")
        shared.set("valid", "@" in email)
        return "ok" if "@" in email else "invalid"

    validate_node = Node(post=lambda ctx, shared, p, e: validate(ctx, shared), name="validate")
    greet = Node(
        prep=lambda ctx, shared: shared.get("user_id"),
        exec=lambda ctx, user_id: f"hello user {user_id}",
        post=lambda ctx, shared, p, e: shared.set("greeting", e),
        name="greet",
    )
    return Flow(validate_node).connect(validate_node, "ok", greet)


def users(ctx, shared):
    return [
        {"user_id": 1, "email": "user1@example.com"},
        {"user_id": 2, "email": "user2@example.com"},
        {"user_id": 3, "email": "user3@example.com"},
    ]


# -- the basic contract ----------------------------------------------------------------------------------
def test_runs_the_flow_once_per_input_and_collects_final_stores_in_order(how):
    kwargs, ctx = how
    parent = SharedStore({"tenant": "acme"})
    assert run(BatchFlow(greeting_flow, users, **kwargs), parent, ctx=ctx) == "default"
    assert parent.get("batch_count") == 3
    results = parent.get("batch_results")
    assert [r["greeting"] for r in results] == ["hello user 1", "hello user 2", "hello user 3"]
    assert all(r["tenant"] == "acme" and r["valid"] is True for r in results)
    assert results[1] == {
        "tenant": "acme",
        "user_id": 2,
        "email": "user2@example.com",
        "valid": True,
        "greeting": "hello user 2",
    }


def test_results_in_input_order_whatever_the_finishing_order(how):
    kwargs, ctx = how

    def factory():
        def work(ctx, n):
            time.sleep((8 - n) * 0.002)
            return n

        return Flow(Node(prep=lambda c, s: s.get("n"), exec=work, post=lambda c, s, p, e: s.set("out", e)))

    parent = SharedStore()
    run(BatchFlow(factory, lambda c, s: [{"n": n} for n in range(8)], **kwargs), parent, ctx=ctx)
    assert [r["out"] for r in parent.get("batch_results")] == list(range(8))


def test_a_fresh_flow_from_the_factory_per_iteration(how):
    kwargs, ctx = how
    made = []
    lock = threading.Lock()

    def factory():
        node = Node(exec=lambda c, p: None)
        flow = Flow(node)
        with lock:
            made.append((flow, node))
        return flow

    run(BatchFlow(factory, lambda c, s: [{}, {}, {}], **kwargs), SharedStore(), ctx=ctx)
    assert len(made) == 3
    assert len({id(flow) for flow, _ in made}) == 3
    assert len({id(node) for _, node in made}) == 3


def test_inputs_win_over_parent_keys_and_children_never_write_to_the_parent(how):
    kwargs, ctx = how

    def factory():
        def post(ctx, shared, p, e):
            shared.set("seen_mode", shared.get("mode"))
            shared.set("mode", "changed by child")
            shared.set(f"child_{shared.get('i')}", True)
            shared.delete("keep")

        return Flow(Node(post=post))

    parent = SharedStore({"mode": "parent", "keep": 1})
    run(BatchFlow(factory, lambda c, s: [{"i": 0, "mode": "input"}, {"i": 1}], **kwargs), parent, ctx=ctx)
    assert parent.get("mode") == "parent"
    assert parent.get("keep") == 1
    assert sorted(parent.keys()) == ["batch_count", "batch_results", "keep", "mode"]
    first, second = parent.get("batch_results")
    assert first["seen_mode"] == "input"
    assert second["seen_mode"] == "parent"
    assert "child_1" not in first and "child_0" not in second  # siblings do not see each other


def test_the_child_store_is_a_shallow_copy_of_the_parent():
    shared_list = [1]

    def factory():
        return Flow(Node(post=lambda c, s, p, e: s.get("config").append(2)))

    parent = SharedStore({"config": shared_list})
    run(BatchFlow(factory, lambda c, s: [{}]), parent)
    assert shared_list == [1, 2]  # shallow: the same list object, as Go's map copy


def test_siblings_run_on_separate_stores_at_the_same_time(each_style):
    skip_when_async(each_style, BLOCKING)
    barrier = threading.Barrier(3, timeout=5)

    def factory():
        def exec_(ctx, prep):
            barrier.wait()
            return prep

        return Flow(Node(prep=lambda c, s: s.get("i"), exec=exec_, post=lambda c, s, p, e: s.set("echo", e)))

    parent = SharedStore()
    run(BatchFlow(factory, lambda c, s: [{"i": i} for i in range(3)], True, concurrency=3), parent)
    assert [r["echo"] for r in parent.get("batch_results")] == [0, 1, 2]


def test_batch_func_reads_the_parent_store():
    seen = []

    def batch_func(ctx, shared):
        seen.append(shared.get("ids"))
        return [{"id": i} for i in shared.get("ids")]

    parent = SharedStore({"ids": [5, 6]})
    run(BatchFlow(lambda: Flow(Node()), batch_func), parent)
    assert seen == [[5, 6]]
    assert [r["id"] for r in parent.get("batch_results")] == [5, 6]


def test_no_inputs_means_no_iterations():
    calls = []
    for empty in ([], (), None):
        parent = SharedStore()
        run(BatchFlow(lambda: calls.append(1) or Flow(Node()), lambda c, s, e=empty: e), parent)
        assert parent.get("batch_count") == 0
        assert parent.get("batch_results") == []
    assert calls == []


def test_custom_keys_through_config():
    parent = SharedStore()
    config = BatchConfig(results_key="runs", count_key="how_many")
    run(BatchFlow(lambda: Flow(Node()), lambda c, s: [{"a": 1}], config=config), parent)
    assert parent.get("how_many") == 1
    assert parent.get("runs") == [{"a": 1}]
    assert "batch_results" not in parent


def test_a_factory_may_return_a_single_node():
    def factory():
        return Node(prep=lambda c, s: s.get("x"), post=lambda c, s, p, e: s.set("y", p * 2), name="double")

    parent = SharedStore()
    run(BatchFlow(factory, lambda c, s: [{"x": 1}, {"x": 2}]), parent)
    assert [r["y"] for r in parent.get("batch_results")] == [2, 4]


def test_names_and_constructor_checks():
    assert BatchFlow(greeting_flow, users).name == "BatchFlow"
    assert BatchFlow(greeting_flow, users, name="batch_users").name == "batch_users"
    with pytest.raises(TypeError, match="flow_factory"):
        BatchFlow("no", users)
    with pytest.raises(TypeError, match="batch_func"):
        BatchFlow(greeting_flow, [{"a": 1}])


# -- failures ---------------------------------------------------------------------------------------------
def failing_on(bad: int):
    def factory():
        def exec_(ctx, n):
            if n == bad:
                raise ValueError(f"cannot handle {n}")
            return n * 10

        return Flow(
            Node(prep=lambda c, s: s.get("n"), exec=exec_, post=lambda c, s, p, e: s.set("out", e), name="work")
        )

    return factory


def test_failures_are_aggregated_with_partial_results_written(how):
    kwargs, ctx = how
    parent = SharedStore()
    batch = BatchFlow(failing_on(2), lambda c, s: [{"n": n} for n in range(4)], name="jobs", **kwargs)
    with pytest.raises(BatchError) as info:
        run(batch, parent, ctx=ctx)
    err = info.value
    assert err.message == "1/4 items failed"
    assert isinstance(err.errors[2], NodeError)  # the exception the iteration's flow raised
    assert err.errors[2].node_name == "work"
    assert isinstance(err.errors[2].__cause__, ValueError)
    assert [e is None for e in err.errors] == [True, True, False, True]
    results = parent.get("batch_results")
    assert results[2] is None
    assert [r["out"] for i, r in enumerate(results) if i != 2] == [0, 10, 30]
    assert parent.get("batch_count") == 4
    assert "jobs" in str(err) and "#2" in str(err)


def test_batch_func_raising_is_a_prep_error_of_the_batch():
    def batch_func(ctx, shared):
        raise ConnectionError("inventory service down")

    batch = BatchFlow(greeting_flow, batch_func, name="sync")
    with pytest.raises(NodeError) as info:
        run(batch, SharedStore())
    assert info.value.phase == "prep"
    assert info.value.node is batch
    assert isinstance(info.value.__cause__, ConnectionError)


@pytest.mark.parametrize("returned", [{"user_id": 1}, "user", 42, (x for x in [{"a": 1}])])
def test_batch_func_must_return_a_list_of_mappings(returned):
    batch = BatchFlow(greeting_flow, lambda c, s: returned, name="sync")
    with pytest.raises(NodeError) as info:
        run(batch, SharedStore())
    assert info.value.phase == "prep"
    assert "sync" in str(info.value) and "list of mappings" in str(info.value)


def test_batch_func_entry_that_is_not_a_mapping_is_named_by_index():
    batch = BatchFlow(greeting_flow, lambda c, s: [{"a": 1}, {"a": 2}, ["not", "a", "mapping"]], name="sync")
    with pytest.raises(NodeError) as info:
        run(batch, SharedStore())
    assert "index 2" in str(info.value) and "sync" in str(info.value) and "list" in str(info.value)


def test_a_factory_that_raises_fails_that_item_naming_batch_and_index(how):
    kwargs, ctx = how
    calls = []
    lock = threading.Lock()

    def factory():
        with lock:
            calls.append(1)
            count = len(calls)
        if count == 2:
            raise RuntimeError("template missing")
        return Flow(Node())

    parent = SharedStore()
    with pytest.raises(BatchError) as info:
        run(BatchFlow(factory, lambda c, s: [{}, {}, {}], name="reports", **kwargs), parent, ctx=ctx)
    errors = info.value.errors
    failed = [i for i, e in enumerate(errors) if e is not None]
    assert len(failed) == 1
    error = errors[failed[0]]
    assert isinstance(error, FlytError)
    assert "reports" in str(error) and f"#{failed[0]}" in str(error) and "template missing" in str(error)
    assert isinstance(error.__cause__, RuntimeError)
    assert sum(r is not None for r in parent.get("batch_results")) == 2


def test_a_factory_returning_a_non_flow_fails_each_item_clearly():
    with pytest.raises(BatchError) as info:
        run(BatchFlow(lambda: "not a flow", lambda c, s: [{}, {}], name="reports"), SharedStore())
    for index, error in enumerate(info.value.errors):
        assert isinstance(error, FlytError)
        assert "reports" in str(error) and f"#{index}" in str(error) and "str" in str(error)


def test_retries_run_a_fresh_flow_on_a_fresh_store(how):
    kwargs, ctx = how
    attempts = {}
    lock = threading.Lock()

    def factory():
        def exec_(ctx, prep):
            n, dirty = prep
            assert dirty is None  # a retry never sees the failed attempt's writes
            with lock:
                attempts[n] = attempts.get(n, 0) + 1
                count = attempts[n]
            if n == 1 and count < 3:
                raise ConnectionError("flaky")
            return n

        def prep(ctx, shared):
            value = (shared.get("n"), shared.get("dirty"))
            shared.set("dirty", True)
            return value

        return Flow(Node(prep=prep, exec=exec_, post=lambda c, s, p, e: s.set("out", e)))

    parent = SharedStore()
    run(BatchFlow(factory, lambda c, s: [{"n": 0}, {"n": 1}], max_retries=3, **kwargs), parent, ctx=ctx)
    assert attempts == {0: 1, 1: 3}
    assert [r["out"] for r in parent.get("batch_results")] == [0, 1]


def test_fallback_per_iteration_gets_the_inputs():
    def fallback(inputs, error):
        return {"n": inputs["n"], "fallback": type(error).__name__}

    parent = SharedStore()
    run(BatchFlow(failing_on(1), lambda c, s: [{"n": 0}, {"n": 1}], fallback=fallback), parent)
    assert parent.get("batch_results")[1] == {"n": 1, "fallback": "NodeError"}


def test_cancellation_stops_new_iterations_and_writes_finished_ones(how, each_style):
    kwargs, ctx = how
    if "executor" in kwargs:
        skip_when_async(each_style, "timing: on an executor each async iteration starts an event loop of its own")
    ctx, cancel = ctx.with_cancel()

    def factory():
        def post(c, s, p, e):
            s.set("done", True)
            if s.get("n") == 1:
                cancel()

        return Flow(Node(post=post))

    parent = SharedStore()
    batch = BatchFlow(factory, lambda c, s: [{"n": n} for n in range(20)], concurrency=2, **kwargs)
    with pytest.raises(Cancelled) as info:
        run(batch, parent, ctx=ctx)
    results = parent.get("batch_results")
    assert len(results) == 20
    assert results[0] == {"n": 0, "done": True}
    assert any(r is None for r in results)
    for index, result in enumerate(results):
        if result is None:
            assert isinstance(info.value.errors[index], Cancelled)


def test_fail_fast_stops_new_iterations():
    calls = []

    def factory():
        def exec_(ctx, n):
            calls.append(n)
            if n == 1:
                raise ValueError("boom")

        return Flow(Node(prep=lambda c, s: s.get("n"), exec=exec_))

    with pytest.raises(BatchError) as info:
        run(BatchFlow(factory, lambda c, s: [{"n": n} for n in range(5)], fail_fast=True), SharedStore())
    assert calls == [0, 1]
    assert all(isinstance(e, Cancelled) for e in info.value.errors[2:])


# -- composition ----------------------------------------------------------------------------------------------
def test_a_batch_flow_is_a_node_in_a_flow():
    load = Node(post=lambda c, s, p, e: s.set("users", ["ann", "bob"]), name="load")
    batch = BatchFlow(
        lambda: Flow(Node(post=lambda c, s, p, e: s.set("hi", f"hi {s.get('user')}"))),
        lambda c, s: [{"user": u} for u in s.get("users")],
        name="greet_all",
    )
    report = Node(
        prep=lambda c, s: [r["hi"] for r in s.get("batch_results")],
        post=lambda c, s, p, e: s.set("report", ", ".join(p)),
        name="report",
    )
    flow = Flow(load).connect(load, "default", batch).connect(batch, "default", report)
    shared = SharedStore()
    assert run(flow, shared) == "default"
    assert shared.get("report") == "hi ann, hi bob"


def test_nested_batch_flows():
    def inner_factory():
        return Flow(Node(post=lambda c, s, p, e: s.set("cell", f"{s.get('row')}{s.get('col')}")))

    def outer_factory():
        fetch = Node(post=lambda c, s, p, e: s.set("cols", ["a", "b"]), name="fetch")
        inner = BatchFlow(inner_factory, lambda c, s: [{"col": col} for col in s.get("cols")], True, name="inner")
        aggregate = Node(
            prep=lambda c, s: [r["cell"] for r in s.get("batch_results")],
            post=lambda c, s, p, e: s.set("row_cells", p),
            name="aggregate",
        )
        return Flow(fetch).connect(fetch, "default", inner).connect(inner, "default", aggregate)

    parent = SharedStore()
    run(BatchFlow(outer_factory, lambda c, s: [{"row": 1}, {"row": 2}], name="outer"), parent)
    assert [r["row_cells"] for r in parent.get("batch_results")] == [["1a", "1b"], ["2a", "2b"]]
    assert parent.get("batch_count") == 2
    assert "cols" not in parent


def test_a_factory_returning_a_batch_flow():
    def factory():
        return BatchFlow(lambda: Flow(Node()), lambda c, s: [{"leaf": s.get("branch") * 10 + i} for i in range(2)])

    parent = SharedStore()
    run(BatchFlow(factory, lambda c, s: [{"branch": 1}, {"branch": 2}]), parent)
    inner = [[leaf["leaf"] for leaf in r["batch_results"]] for r in parent.get("batch_results")]
    assert inner == [[10, 11], [20, 21]]


def test_a_batch_node_inside_each_iteration():
    def factory():
        return Flow(BatchNode(lambda c, item: item.upper(), True, items_key="words"))

    parent = SharedStore()
    run(BatchFlow(factory, lambda c, s: [{"words": ["a", "b"]}, {"words": ["c"]}]), parent)
    assert [r["results"] for r in parent.get("batch_results")] == [["A", "B"], ["C"]]


# -- away from this process -------------------------------------------------------------------------------
def module_factory() -> Flow:
    return Flow(
        Node(
            prep=lambda c, s: (s.get("n"), c.value("unit")),
            post=lambda c, s, p, e: s.set("label", f"{p[0]} {p[1]}"),
            name="label",
        )
    )


def module_inputs(ctx, shared):
    return [{"n": n} for n in shared.get("ns")]


def test_run_detached_iteration_runs_one_iteration_from_plain_data():
    ctx = Context.background().with_value("unit", "kg")
    final = run_detached_iteration(module_factory, {"n": 3, "base": True}, ctx, "weigh", 0)
    assert final == {"n": 3, "base": True, "label": "3 kg"}
    with pytest.raises(FlytError, match="'weigh' item #4"):
        run_detached_iteration(lambda: None, {}, ctx, "weigh", 4)


def test_a_batch_flow_on_a_process_pool():
    parent = SharedStore({"ns": [1, 2, 3]})
    ctx = Context.background().with_value("unit", "kg")
    with ProcessPoolExecutor(2) as pool:
        run(BatchFlow(module_factory, module_inputs, True, executor=pool), parent, ctx=ctx)
    assert [r["label"] for r in parent.get("batch_results")] == ["1 kg", "2 kg", "3 kg"]
    assert parent.get("batch_count") == 3


# -- the sample ---------------------------------------------------------------------------------------------
def load_sample():
    path = Path(__file__).resolve().parents[2] / "sample_flows" / "batch_users.py"
    spec = importlib.util.spec_from_file_location("flyt_sample_batch_users", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_batch_users_sample(capsys, monkeypatch):
    sample = load_sample()
    events = []
    shared = SharedStore({**sample.initial_store(), "pace": 0})
    assert sample.flow.run(shared, ctx=Context.background().with_observer(events.append)) == "default"
    report = shared.get("report")
    assert (report["users"], report["welcomed"]) == (12, 11)
    assert list(report["quarantined"]) == [105]
    assert report["retried"] == {107: 2}
    assert list(report["with_issues"]) == [109]
    retries = [e.path for e in events if e.kind == "exec_failed"]
    assert ("batch_users", "onboard_users", "#6", "enrich") in retries
    assert {e.node for e in events if e.kind == "batch_started"} == {"normalize_users", "onboard_users"}
    monkeypatch.setattr(sample, "initial_store", lambda: {"users_file": "data/users.json", "pace": 0})
    assert sample.main([]) == 0
    out = capsys.readouterr().out
    assert "11 of 12 users welcomed" in out and "quarantined 105" in out
