"""Batch events: progress (BatchStarted, BatchItemFinished, BatchFinished), per-item retries,
and each BatchFlow iteration's events under (..., batch, "#i", node) — what the workbench
draws one progress bar per batch from, and drills into an item with."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from flyt_engine import BatchError, BatchFlow, BatchNode, Cancelled, Context, Flow, Node, SharedStore, run
from flyt_engine.events import (
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    RunFinished,
    RunStarted,
    StoreChanged,
    materialize,
)


class Recorder:
    """A thread-safe observer."""

    def __init__(self) -> None:
        self.events: list = []
        self.lock = threading.Lock()

    def __call__(self, event) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind) -> list:
        return [event for event in self.events if isinstance(event, kind)]

    def context(self) -> Context:
        return Context.background().with_observer(self)


@pytest.fixture(params=["sequential", "threads", "executor"])
def where(request):
    if request.param == "executor":
        with ThreadPoolExecutor(3) as pool:
            yield {"concurrent": True, "executor": pool}
    else:
        yield {"concurrent": request.param == "threads"}


def fail_on(bad):
    def process(ctx, item):
        if item == bad:
            raise ValueError(f"bad {item}")
        return item

    return process


# -- progress events ---------------------------------------------------------------------------------------
def test_batch_node_progress_events(where):
    rec = Recorder()
    node = BatchNode(fail_on(2), name="resize", **where)
    with pytest.raises(BatchError):
        run(node, SharedStore({"items": [0, 1, 2, 3, 4]}), ctx=rec.context())
    (started,) = rec.of(BatchStarted)
    (finished,) = rec.of(BatchFinished)
    items = rec.of(BatchItemFinished)
    assert started.total == 5
    assert (finished.done, finished.failed) == (5, 1)
    assert sorted(event.index for event in items) == [0, 1, 2, 3, 4]
    for event in items:
        assert event.path == ("resize",)
        assert event.node == "resize" and event.node_id == id(node)
        assert event.ok is (event.index != 2)
        assert event.duration >= 0
        assert event.run_id == started.run_id
    (bad,) = [event for event in items if not event.ok]
    assert isinstance(bad.error, ValueError)
    order = rec.events
    assert order.index(started) < min(order.index(e) for e in items)
    assert order.index(finished) > max(order.index(e) for e in items)


def test_item_finished_events_count_up_to_total_one_per_item():
    rec = Recorder()
    run(BatchNode(lambda c, item: item, True, concurrency=4), SharedStore({"items": range(40)}), ctx=rec.context())
    assert sorted(event.index for event in rec.of(BatchItemFinished)) == list(range(40))
    assert rec.of(BatchFinished)[0].done == 40


def test_batch_events_carry_the_path_of_the_batch_inside_a_flow():
    rec = Recorder()
    load = Node(post=lambda c, s, p, e: s.set("items", [1, 2]), name="load")
    batch = BatchNode(lambda c, item: item, name="transform")
    flow = Flow(load, name="etl").connect(load, "default", batch)
    run(flow, SharedStore(), ctx=rec.context())
    assert rec.of(BatchStarted)[0].path == ("etl", "transform")
    assert {event.path for event in rec.of(BatchItemFinished)} == {("etl", "transform")}


def test_item_retries_and_fallbacks_are_reported_under_the_item(where):
    rec = Recorder()
    attempts = {}
    lock = threading.Lock()

    def process(ctx, item):
        with lock:
            attempts[item] = attempts.get(item, 0) + 1
        raise ConnectionError(f"{item} down")

    node = BatchNode(process, max_retries=2, wait=0.001, fallback=lambda item, error: "cached", name="fetch", **where)
    shared = SharedStore({"items": ["a", "b"]})
    run(node, shared, ctx=rec.context())
    assert shared.get("results") == ["cached", "cached"]
    failed = rec.of(ExecFailed)
    assert sorted((e.path, e.attempt, e.max_attempts, e.wait) for e in failed) == [
        (("fetch", "#0"), 1, 2, 0.001),
        (("fetch", "#0"), 2, 2, 0.0),
        (("fetch", "#1"), 1, 2, 0.001),
        (("fetch", "#1"), 2, 2, 0.0),
    ]
    assert all(isinstance(e.error, ConnectionError) and e.node == "fetch" for e in failed)
    assert sorted(e.path for e in rec.of(FallbackUsed)) == [("fetch", "#0"), ("fetch", "#1")]
    assert all(e.ok for e in rec.of(BatchItemFinished))


def test_unobserved_and_observed_runs_give_the_same_results():
    items = list(range(30))
    for concurrent in (False, True):
        plain, observed = SharedStore({"items": items}), SharedStore({"items": items})
        node = BatchNode(lambda c, item: item * 3 if item % 7 else None, concurrent)
        run(node, plain)
        run(node, observed, ctx=Recorder().context())
        assert plain.get_all() == observed.get_all()


# -- batch flows: the iterations' events ------------------------------------------------------------------
def users_factory():
    validate = Node(
        post=lambda c, s, p, e: s.set("valid", "@" in s.get_str("email")) or ("ok" if "@" in s.get("email") else "bad"),
        name="validate",
    )
    save = Node(post=lambda c, s, p, e: s.set("saved", True), name="save")
    return Flow(validate).connect(validate, "ok", save)


def user_inputs(ctx, shared):
    return [{"email": "a@x"}, {"email": "nope"}, {"email": "c@x"}, {"email": "d@x"}]


def test_iteration_events_sit_under_the_batch_and_the_item_index(where):
    rec = Recorder()
    batch = BatchFlow(users_factory, user_inputs, name="batch_users", **where)
    run(Flow(batch, name="main"), SharedStore(), ctx=rec.context())
    started_paths = {e.path for e in rec.of(NodeStarted)}
    assert ("main", "batch_users", "#3", "validate") in started_paths
    assert ("main", "batch_users", "#3", "save") in started_paths
    assert ("main", "batch_users", "#1", "validate") in started_paths
    assert ("main", "batch_users", "#1", "save") not in started_paths  # invalid email: no save
    inner = [e for e in rec.of(NodeFinished) if len(e.path) == 4]
    assert {e.path[2] for e in inner} == {"#0", "#1", "#2", "#3"}
    progress = rec.of(BatchItemFinished)
    assert {e.path for e in progress} == {("main", "batch_users")}
    assert sorted(e.index for e in progress) == [0, 1, 2, 3]
    assert rec.of(BatchStarted)[0].total == 4


def test_an_iterations_events_come_before_its_item_finished_event():
    rec = Recorder()
    run(BatchFlow(users_factory, user_inputs, name="b"), SharedStore(), ctx=rec.context())
    events = rec.events
    for index in range(4):
        done_at = next(i for i, e in enumerate(events) if isinstance(e, BatchItemFinished) and e.index == index)
        inner = [i for i, e in enumerate(events) if isinstance(e, NodeFinished) and e.path[1:2] == (f"#{index}",)]
        assert inner and max(inner) < done_at


def test_iteration_node_ids_are_the_iteration_nodes():
    rec = Recorder()
    made = []

    def factory():
        node = Node(name="step")
        made.append(node)
        return Flow(node)

    run(BatchFlow(factory, lambda c, s: [{}, {}], name="b"), SharedStore(), ctx=rec.context())
    ids = {e.path: e.node_id for e in rec.of(NodeStarted)}
    assert ids[("b", "#0", "step")] == id(made[0])
    assert ids[("b", "#1", "step")] == id(made[1])


def test_iteration_store_writes_are_reported_with_the_iteration_path():
    rec = Recorder()
    parent = SharedStore()
    run(BatchFlow(users_factory, user_inputs, name="b"), parent, ctx=rec.context())
    writes = {(e.path, e.key) for e in rec.of(StoreChanged)}
    assert (("b", "#0", "validate"), "valid") in writes
    assert (("b", "#2", "save"), "saved") in writes
    assert (("b",), "batch_results") in writes
    assert "valid" not in parent


def test_a_failing_iteration_reports_node_failed_inside_and_a_failed_item():
    rec = Recorder()

    def factory():
        return Flow(Node(exec=lambda c, p: 1 / 0, name="divide"))

    with pytest.raises(BatchError):
        run(BatchFlow(factory, lambda c, s: [{}, {}], name="b"), SharedStore(), ctx=rec.context())
    assert {e.path for e in rec.of(NodeFailed) if e.node == "divide"} == {("b", "#0", "divide"), ("b", "#1", "divide")}
    assert [e.ok for e in rec.of(BatchItemFinished)] == [False, False]
    assert rec.of(BatchFinished)[0].failed == 2


def test_nested_batch_flow_paths():
    rec = Recorder()

    def inner_factory():
        return Flow(Node(name="leaf"))

    def outer_factory():
        return Flow(BatchFlow(inner_factory, lambda c, s: [{}, {}], name="inner"))

    run(BatchFlow(outer_factory, lambda c, s: [{}, {}], name="outer"), SharedStore(), ctx=rec.context())
    leaves = sorted(e.path for e in rec.of(NodeStarted) if e.node == "leaf")
    assert leaves == [
        ("outer", "#0", "inner", "#0", "leaf"),
        ("outer", "#0", "inner", "#1", "leaf"),
        ("outer", "#1", "inner", "#0", "leaf"),
        ("outer", "#1", "inner", "#1", "leaf"),
    ]
    starts = sorted(e.path for e in rec.of(BatchStarted))
    assert starts == [("outer",), ("outer", "#0", "inner"), ("outer", "#1", "inner")]


def test_one_run_started_and_finished_per_top_level_run():
    rec = Recorder()
    run(BatchFlow(users_factory, user_inputs, True), SharedStore(), ctx=rec.context())
    assert len(rec.of(RunStarted)) == 1
    assert len(rec.of(RunFinished)) == 1
    assert len({e.run_id for e in rec.events}) == 1


def test_a_factory_returning_a_node_reports_it_under_the_iteration():
    rec = Recorder()
    run(BatchFlow(lambda: Node(name="single"), lambda c, s: [{}], name="b"), SharedStore(), ctx=rec.context())
    assert ("b", "#0", "single") in {e.path for e in rec.of(NodeStarted)}


# -- cancellation --------------------------------------------------------------------------------------------
def test_cancelled_batch_reports_only_finished_items(where):
    rec = Recorder()
    ctx, cancel = rec.context().with_cancel()

    def process(c, item):
        if item == 2:
            cancel()
        return item

    with pytest.raises(Cancelled):
        run(BatchNode(process, concurrency=1, **where), SharedStore({"items": range(10)}), ctx=ctx)
    items = rec.of(BatchItemFinished)
    (finished,) = rec.of(BatchFinished)
    assert finished.done == len(items) < 10
    assert all(e.ok for e in items)


# -- the gate ------------------------------------------------------------------------------------------------
class CountingGate:
    armed = True

    def __init__(self) -> None:
        self.seen: list = []

    def __call__(self, event) -> None:
        self.seen.append(event)


def test_item_retries_consult_the_gate():
    rec = Recorder()
    gate = CountingGate()
    ctx = rec.context().with_gate(gate)

    def process(c, item):
        raise ConnectionError("down")

    with pytest.raises(BatchError):
        run(BatchNode(process, max_retries=2, name="b"), SharedStore({"items": [0]}), ctx=ctx)
    gated = [materialize(record) for record in gate.seen if record[0] is ExecFailed]  # gates get records
    assert [(e.path, e.attempt) for e in gated] == [(("b", "#0"), 1), (("b", "#0"), 2)]
