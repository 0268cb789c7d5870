"""``run(..., start_at=...)``: starting a run part-way (API.md), observed and unobserved, with
plain and with async phases (``each_style``)."""

from __future__ import annotations

import pytest

from flyt_engine import BatchFlow, Context, Flow, FlytError, Node, SharedStore, StartAt, run
from flyt_engine.events import NodeStarted, PhaseStarted, RunFinished, RunStarted

pytestmark = pytest.mark.usefixtures("each_driver", "each_wiring", "each_style")


def step(name: str, log: list[str], action: str | None = None) -> Node:
    def exec_(ctx, prep):
        log.append(f"{name}.exec({prep!r})")
        return f"{name}-result"

    def prep(ctx, shared):
        log.append(f"{name}.prep")
        return f"{name}-prep"

    def post(ctx, shared, prep_result, exec_result):
        log.append(f"{name}.post({prep_result!r}, {exec_result!r})")
        shared[name] = exec_result
        return action

    return Node(prep=prep, exec=exec_, post=post, name=name)


def pipeline(log: list[str]) -> Flow:
    extract, transform, load = step("extract", log), step("transform", log), step("load", log)
    extract >> transform >> load
    return Flow(extract, name="etl")


def test_a_path_of_names_starts_at_that_node_and_routes_on():
    log: list[str] = []
    shared = SharedStore()
    assert run(pipeline(log), shared, start_at=("etl", "transform")) == "default"
    assert [entry.split(".")[0] for entry in log] == ["transform"] * 3 + ["load"] * 3
    assert "extract" not in shared and shared["load"] == "load-result"


def test_at_exec_with_a_given_prep_result_prep_does_not_run():
    log: list[str] = []
    run(pipeline(log), start_at=StartAt(("etl", "transform"), phase="exec", prep_result="edited"))
    assert log[:2] == ["transform.exec('edited')", "transform.post('edited', 'transform-result')"]


def test_at_post_with_given_results_prep_and_exec_do_not_run():
    log: list[str] = []
    shared = SharedStore()
    run(pipeline(log), shared, start_at=StartAt(("etl", "load"), phase="post", prep_result="p", exec_result="e"))
    assert log == ["load.post('p', 'e')"]
    assert shared["load"] == "e"


def test_nested_flows_consume_the_path_and_route_out_through_the_enclosing_flows():
    log: list[str] = []
    a, b = step("a", log), step("b", log)
    a >> b
    inner = Flow(a, name="inner")
    after = step("after", log)
    inner >> after
    outer = Flow(step("first", log), name="outer")
    outer.start >> inner
    run(outer, start_at=("outer", "inner", "b"))
    assert [entry.split(".")[0] for entry in log] == ["b"] * 3 + ["after"] * 3


def test_a_path_through_an_iteration_runs_only_that_iteration_on_shared():
    seen: list[str] = []

    def make():
        greet = Node(post=lambda ctx, s, p, e: (seen.append(s["user"]), s.set("greeting", f"hi {s['user']}"))[1])
        return Flow(greet, name="one")

    batch = BatchFlow(make, lambda ctx, s: [{"user": "ada"}, {"user": "bob"}], name="each")
    root = Flow(batch, name="root")
    shared = SharedStore({"user": "bob"})
    run(root, shared, start_at=("root", "each", "#1"))
    assert seen == ["bob"] and shared["greeting"] == "hi bob"
    assert "batch_results" not in shared  # the enclosing flows do not go on


def test_a_path_ending_at_a_batch_flow_runs_the_whole_batch():
    def make():
        return Flow(Node(post=lambda ctx, s, p, e: s.set("done", True)), name="one")

    batch = BatchFlow(make, lambda ctx, s: [{}, {}, {}], name="each")
    shared = SharedStore()
    run(Flow(batch, name="root"), shared, start_at=("root", "each"))
    assert shared["batch_count"] == 3


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("wrong_root", "transform"), "starts with 'wrong_root'"),
        (("etl", "nowhere"), "no node named 'nowhere'"),
        (("etl", "transform", "deeper"), "not a flow"),
        (("etl", "#0"), "not a BatchFlow"),
    ],
)
def test_paths_that_do_not_exist_are_flyt_errors_naming_flow_and_name(path, message):
    with pytest.raises(FlytError, match=message):
        run(pipeline([]), start_at=path)


def test_an_ambiguous_name_is_a_flyt_error():
    log: list[str] = []
    first, twin_a, twin_b = step("first", log), step("twin", log), step("twin", log)
    flow = Flow(first, name="f").connect(first, "a", twin_a).connect(first, "b", twin_b)
    with pytest.raises(FlytError, match="2 nodes named 'twin'"):
        run(flow, start_at=("f", "twin"))


def test_the_events_are_those_of_a_run_from_that_point():
    events: list = []
    ctx = Context.background().with_observer(events.append)
    run(pipeline([]), ctx=ctx, start_at=StartAt(("etl", "transform"), phase="exec", prep_result="x"))
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    started = [e.node for e in events if isinstance(e, NodeStarted)]
    assert started == ["load"]  # transform starts at exec: no NodeStarted, no prep; extract never ran
    phases = [(e.node, e.phase) for e in events if isinstance(e, PhaseStarted)]
    assert phases[:2] == [("transform", "exec"), ("transform", "post")]
    assert all(e.path[0] == "etl" for e in events)


def test_a_bad_phase_is_refused():
    with pytest.raises(ValueError, match="phase"):
        StartAt(("etl", "load"), phase="later")
