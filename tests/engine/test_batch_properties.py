"""Properties of batches under threads: results always in item order, the concurrency bound
(and the chunk bound) always hold, and errors always line up with the items that failed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flyt_engine import BatchError, BatchFlow, BatchNode, Flow, Node, SharedStore, run

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Probe:
    """process(ctx, item): sleeps the item's delay, counts simultaneous items, fails on demand."""

    def __init__(self, delays: list[float], failing: set[int]) -> None:
        self.delays = delays
        self.failing = failing
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.running: set[int] = set()
        self.overlaps: list[tuple[int, frozenset[int]]] = []

    def __call__(self, ctx, index: int):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.overlaps.append((index, frozenset(self.running)))
            self.running.add(index)
        try:
            time.sleep(self.delays[index])
            if index in self.failing:
                raise ValueError(f"item {index}")
            return ("result", index)
        finally:
            with self.lock:
                self.now -= 1
                self.running.discard(index)


@st.composite
def batches(draw):
    size = draw(st.integers(min_value=0, max_value=24))
    delays = draw(st.lists(st.sampled_from([0.0, 0.0005, 0.001, 0.003]), min_size=size, max_size=size))
    failing = draw(st.sets(st.integers(min_value=0, max_value=max(size - 1, 0)), max_size=3)) if size else set()
    concurrency = draw(st.integers(min_value=1, max_value=9))
    batch_size = draw(st.integers(min_value=0, max_value=7))
    return delays, failing, concurrency, batch_size


def check(probe: Probe, shared: SharedStore, failing: set[int], size: int, bound: int, batch_size: int, error):
    expected = [None if i in failing else ("result", i) for i in range(size)]
    assert shared.get("results") == expected
    assert probe.peak <= bound
    if batch_size > 0:
        for index, others in probe.overlaps:
            assert all(other // batch_size == index // batch_size for other in others)
    if failing:
        assert error is not None
        assert [i for i, e in enumerate(error.errors) if e is not None] == sorted(failing)
        assert error.results == expected
        assert error.message == f"{len(failing)}/{size} items failed"
    else:
        assert error is None


@SETTINGS
@given(batch=batches())
def test_concurrent_results_in_item_order_and_concurrency_bound(batch):
    delays, failing, concurrency, batch_size = batch
    size = len(delays)
    probe = Probe(delays, failing)
    shared = SharedStore({"items": list(range(size))})
    error = None
    try:
        run(BatchNode(probe, True, concurrency=concurrency, batch_size=batch_size), shared)
    except BatchError as exc:
        error = exc
    bound = min(concurrency, batch_size) if batch_size > 0 else concurrency
    check(probe, shared, failing, size, bound, batch_size, error)


@pytest.fixture(scope="module")
def wide_pool():
    with ThreadPoolExecutor(16) as pool:
        yield pool


@SETTINGS
@given(batch=batches())
def test_executor_results_in_item_order_and_concurrency_bound(batch, wide_pool):
    delays, failing, concurrency, batch_size = batch
    size = len(delays)
    probe = Probe(delays, failing)
    shared = SharedStore({"items": list(range(size))})
    error = None
    try:
        run(BatchNode(probe, True, concurrency=concurrency, batch_size=batch_size, executor=wide_pool), shared)
    except BatchError as exc:
        error = exc
    bound = min(concurrency, batch_size) if batch_size > 0 else concurrency
    check(probe, shared, failing, size, bound, batch_size, error)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(st.integers(min_value=-50, max_value=50), max_size=60),
    observed=st.booleans(),
)
def test_sequential_matches_a_plain_loop(items, observed):
    """The hot loop and the observed loop agree with the obvious implementation."""
    from flyt_engine import Context

    def process(ctx, item):
        if item % 11 == 0 and item:
            raise ValueError(item)
        return item * 2 if item % 3 else None

    expected = []
    errors = []
    for item in items:
        try:
            expected.append(process(None, item))
            errors.append(False)
        except ValueError:
            expected.append(None)
            errors.append(True)
    shared = SharedStore({"items": items})
    ctx = Context.background().with_observer(lambda event: None) if observed else None
    try:
        run(BatchNode(process), shared, ctx=ctx)
        assert not any(errors)
    except BatchError as exc:
        assert [e is not None for e in exc.errors] == errors
    assert shared.get("results") == expected


@settings(max_examples=25, deadline=None)
@given(
    delays=st.lists(st.sampled_from([0.0, 0.0005, 0.002]), min_size=0, max_size=12),
    concurrency=st.integers(min_value=1, max_value=6),
)
def test_batch_flow_results_in_input_order_and_bound(delays, concurrency):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def factory():
        def exec_(ctx, index):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(delays[index])
            with lock:
                state["now"] -= 1
            return index

        return Flow(Node(prep=lambda c, s: s.get("i"), exec=exec_, post=lambda c, s, p, e: s.set("out", e)))

    parent = SharedStore()
    batch = BatchFlow(factory, lambda c, s: [{"i": i} for i in range(len(delays))], True, concurrency=concurrency)
    run(batch, parent)
    assert [r["out"] for r in parent.get("batch_results")] == list(range(len(delays)))
    assert state["peak"] <= concurrency
