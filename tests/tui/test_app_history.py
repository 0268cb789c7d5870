"""RunHistory: folding recorded runs into node, batch and store summaries, bounded."""

from __future__ import annotations

import sys

from flyt_engine import BatchFlow, BatchNode, Context, Flow, Node, SharedStore, run
from flyt_engine.events import NodeFailed, PhaseFinished, StoreChanged
from flyt_tui.core.history import RECENT_EVENTS, NodeState, RunHistory, template_path


def record_run(flow, store=None):
    records: list = []
    ctx = Context.background().with_recorder(records.append)
    error = None
    try:
        run(flow, SharedStore(store or {}), ctx=ctx)
    except Exception as exc:
        error = exc
    return records, error


def looping_flow(steps: int) -> Flow:
    class Count(Node):
        def prep(self, ctx, shared):
            return shared.get("i", 0)

        def exec(self, ctx, i):
            return i + 1

        def post(self, ctx, shared, p, e):
            shared.set("i", e)
            return "again" if e < steps else "done"

    count = Count(name="count")
    return Flow(count, name="loop").connect(count, "again", count)


def test_template_path_drops_iteration_markers():
    assert template_path(("a", "b")) == (("a", "b"), False)
    assert template_path(("a", "batch", "#12", "inner")) == (("a", "batch", "inner"), True)
    assert template_path(("a", "#tag")) == (("a", "#tag"), False)  # not an iteration marker


def test_loop_counts_edges_and_keeps_the_last_results_in_any_batch_split():
    flow = looping_flow(500)
    records, _ = record_run(flow)
    for chunk in (1, 7, 100, len(records)):
        history = RunHistory()
        for start in range(0, len(records), chunk):
            history.ingest(records[start : start + chunk])
        key = (("loop", "count"), id(flow.start))
        record = history.nodes[key]
        assert record.edges == {"again": 499, "done": 1}
        assert record.runs == 500 and record.state == NodeState.DONE and record.action == "done"
        assert record.result_of("prep") == (True, 499)
        assert record.result_of("exec") == (True, 500)
        assert history.writers == {"i": "count"}
        assert history.steps == 501  # the loop node 500 times, the flow once


def test_store_changes_coalesce_to_the_last_write_per_key():
    records, _ = record_run(looping_flow(50))
    tick = RunHistory().ingest(records)
    assert list(tick.store) == ["i"]
    assert isinstance(tick.store["i"], StoreChanged) and tick.store["i"].value == 50
    assert tick.count == len(records)
    assert len(tick.tail) == 40 and tick.tail_skipped == len(records) - 40


def test_records_of_another_run_are_dropped():
    first, _ = record_run(looping_flow(3))
    second, _ = record_run(looping_flow(5))
    history = RunHistory()
    history.ingest(first)
    tick = history.ingest(second)  # a late batch of a different run
    assert tick.count == 0 and not tick.store
    mixed = history.ingest(second[:4] + first[-3:])
    assert mixed.count == 3


def test_failure_is_reported_once_with_the_innermost_node():
    def boom(ctx, prep):
        raise ValueError("boom")

    inner_node = Node(exec=boom, name="inner_node")
    inner = Flow(inner_node, name="inner")
    outer = Flow(inner, name="outer")
    records, error = record_run(outer)
    assert error is not None
    history = RunHistory()
    tick = history.ingest(records)
    assert [type(event) for event in tick.errors] == [NodeFailed]
    assert tick.errors[0].node == "inner_node"
    assert history.failed_key == (("outer", "inner", "inner_node"), id(inner_node))
    assert history.nodes[history.failed_key].state == NodeState.FAILED
    assert history.nodes[(("outer", "inner"), id(inner))].state == NodeState.FAILED


def test_batches_are_counted_per_template_path():
    def make_flow():
        square = BatchNode(lambda ctx, item: item * item, name="square")
        return Flow(square, name="per_group")

    def groups(ctx, shared):
        return [{"items": list(range(n))} for n in (2, 3, 4)]

    batch = BatchFlow(make_flow, groups, name="groups")
    flow = Flow(batch, name="top")
    records, error = record_run(flow)
    assert error is None
    history = RunHistory()
    for start in range(0, len(records), 5):
        history.ingest(records[start : start + 5])
    outer = history.batches[("top", "groups")]
    assert (outer.total, outer.done, outer.failed, outer.finished) == (3, 3, 0, True)
    inner = history.batches[("top", "groups", "square")]  # three instances, one bar
    assert (inner.total, inner.done, inner.instances, inner.finished) == (9, 9, 3, True)
    template_node = history.nodes[(("top", "groups", "square"), 0)]
    assert template_node.runs == 3 and template_node.state == NodeState.DONE


def test_failed_batch_items_are_counted_and_listed():
    def process(ctx, item):
        if item % 3 == 0:
            raise KeyError(item)
        return item

    batch = BatchNode(process, name="items_node")
    records, error = record_run(Flow(batch, name="top"), {"items": list(range(9))})
    assert error is not None
    history = RunHistory()
    tick = history.ingest(records)
    summary = history.batches[("top", "items_node")]
    assert (summary.done, summary.failed) == (9, 3)
    assert [event.index for event in tick.errors if event.kind == "batch_item_finished"] == [0, 3, 6]


def test_memory_stays_bounded_over_many_batches():
    records, _ = record_run(looping_flow(20_000))
    history = RunHistory()
    for start in range(0, len(records), 1000):
        history.ingest(records[start : start + 1000])
    assert len(history.recent) == RECENT_EVENTS
    assert len(history.nodes) == 2 and len(history.writers) == 1
    assert sys.getsizeof(history._resolved) < 10_000


def test_phase_results_belong_to_the_latest_execution():
    records, _ = record_run(looping_flow(3))
    history = RunHistory()
    # stop right after the third NodeStarted of "count": prep of that run is not known yet
    starts = [i for i, r in enumerate(records) if r[0].__name__ == "NodeStarted" and r[1][2] == "count"]
    history.ingest(records[: starts[2] + 1])
    record = next(r for key, r in history.nodes.items() if key[0] == ("loop", "count"))
    assert record.state == NodeState.RUNNING and record.phase == "prep"
    assert record.result_of("prep") == (False, None)
    assert isinstance(record.prep, PhaseFinished)  # the previous run's, kept but not shown


def test_ticks_merge_into_one_update_bounded():
    records, _ = record_run(looping_flow(300))
    history = RunHistory()
    ticks = [history.ingest(records[start : start + 50]) for start in range(0, len(records), 50)]
    merged = ticks[0]
    for tick in ticks[1:]:
        merged.merge(tick)
    assert merged.count == len(records)
    assert merged.store["i"].value == 300
    assert len(merged.tail) == 40 and merged.tail_skipped == len(records) - 40
    assert merged.tail[-1].kind == "run_finished"
    assert merged.started is not None and merged.finished is not None
    assert any(key[0] == ("loop", "count") for key in merged.nodes)


def test_batch_items_kept_to_open_are_bounded_failures_first():
    """Every failed item up to FAILED_ITEMS and the latest RECENT_ITEMS that succeeded; the
    rest only counted, however the records are drained."""
    from flyt_tui.core.history import FAILED_ITEMS, RECENT_ITEMS

    def check(ctx, item):
        if item % 7 == 0:
            raise ValueError(f"bad {item}")
        return item

    batch = BatchNode(check, items_key="items", name="checks")
    flow = Flow(batch, name="many")
    records, error = record_run(flow, {"items": list(range(20_000))})
    assert error is not None  # failed items make a BatchError
    for chunked in (False, True):
        history = RunHistory()
        if chunked:
            for start in range(0, len(records), 997):
                history.ingest(records[start : start + 997])
        else:
            history.ingest(records)
        summary = history.batches[("many", "checks")]
        failed = [outcome for outcome in summary.outcomes.values() if not outcome.ok]
        ok = [outcome for outcome in summary.outcomes.values() if outcome.ok]
        assert len(failed) == FAILED_ITEMS and all(outcome.index % 7 == 0 for outcome in failed)
        assert str(failed[0].error) == "bad 0"
        assert 0 < len(ok) <= RECENT_ITEMS and max(outcome.index for outcome in ok) == 19_998  # 19,999 failed
        assert min(outcome.index for outcome in ok) >= 20_000 - 10 * RECENT_ITEMS  # among the latest
        assert summary.done == 20_000 and summary.failed == len(range(0, 20_000, 7))
