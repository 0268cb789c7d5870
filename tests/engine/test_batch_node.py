"""BatchNode: every rule of API.md "Batches" for BatchNode, in every way a batch can run.

Most rules are checked in five modes: sequential unobserved (the hot loop), sequential
observed, concurrent on threads (unobserved and observed) and on a caller's executor.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from async_style import BLOCKING, NESTED, skip_when_async

from flyt_engine import (
    BatchConfig,
    BatchError,
    BatchFlow,
    BatchNode,
    Cancelled,
    Context,
    DeadlineExceeded,
    Flow,
    FlytError,
    Node,
    NodeError,
    SharedStore,
    WorkerLost,
    run,
)

pytestmark = pytest.mark.usefixtures("each_style")


# -- modes --------------------------------------------------------------------------------------
@dataclass
class Mode:
    name: str
    concurrent: bool
    observed: bool
    executor: Executor | None = None

    def node(self, process=None, **kwargs) -> BatchNode:
        if self.executor is not None:
            kwargs.setdefault("executor", self.executor)
        return BatchNode(process, self.concurrent, **kwargs)

    def context(self, ctx: Context | None = None) -> Context:
        ctx = ctx or Context.background()
        return ctx.with_observer(lambda event: None) if self.observed else ctx

    def run(self, node, shared, ctx: Context | None = None) -> str:
        return run(node, shared, ctx=self.context(ctx))


@pytest.fixture(scope="module")
def thread_executor():
    with ThreadPoolExecutor(4, thread_name_prefix="test-executor") as pool:
        yield pool


@pytest.fixture(params=["sequential", "sequential-observed", "threads", "threads-observed", "executor"])
def mode(request, thread_executor) -> Mode:
    name = request.param
    return Mode(
        name,
        concurrent=not name.startswith("sequential"),
        observed=name.endswith("observed"),
        executor=thread_executor if name == "executor" else None,
    )


def double(ctx, item):
    return item * 2


def fail_on(*bad):
    def process(ctx, item):
        if item in bad:
            raise ValueError(f"bad item {item}")
        return item * 10

    return process


# -- basics ---------------------------------------------------------------------------------------
def test_results_in_item_order(mode):
    shared = SharedStore({"items": [1, 2, 3, 4, 5]})
    assert mode.run(mode.node(double), shared) == "default"
    assert shared.get("results") == [2, 4, 6, 8, 10]
    assert shared.get("items") == [1, 2, 3, 4, 5]


def test_results_keep_item_order_whatever_the_finishing_order(mode):
    items = list(range(12))

    def slow_first(ctx, item):
        time.sleep((12 - item) * 0.002)  # the first items finish last
        return f"r{item}"

    shared = SharedStore({"items": items})
    mode.run(mode.node(slow_first, concurrency=6), shared)
    assert shared.get("results") == [f"r{i}" for i in items]


def test_results_are_a_plain_list(mode):
    shared = SharedStore({"items": [1, 2]})
    mode.run(mode.node(double), shared)
    assert type(shared.get("results")) is list


def test_empty_items_give_empty_results(mode):
    calls = []
    shared = SharedStore({"items": []})
    mode.run(mode.node(lambda ctx, item: calls.append(item), count_key="n"), shared)
    assert shared.get("results") == []
    assert shared.get("n") == 0
    assert calls == []


def test_none_results_stay_at_their_index(mode):
    def keep_big(ctx, item):  # the seed's filter pattern
        return item if item > 10 else None

    shared = SharedStore({"items": [5, 15, 8, 20, 3]})
    mode.run(mode.node(keep_big), shared)
    assert shared.get("results") == [None, 15, None, 20, None]


def test_each_item_is_processed_once(mode):
    seen = []
    lock = threading.Lock()

    def record(ctx, item):
        with lock:
            seen.append(item)
        return item

    shared = SharedStore({"items": list(range(50))})
    mode.run(mode.node(record), shared)
    assert sorted(seen) == list(range(50))


def test_process_receives_the_runs_context(mode):
    ctx = Context.background().with_value("tenant", "acme")
    shared = SharedStore({"items": [1, 2]})
    mode.run(mode.node(lambda c, item: f"{c.value('tenant')}-{item}"), shared, ctx=ctx)
    assert shared.get("results") == ["acme-1", "acme-2"]


def test_sequential_mode_processes_in_order():
    order = []
    shared = SharedStore({"items": list(range(20))})
    run(BatchNode(lambda ctx, item: order.append(item)), shared)
    assert order == list(range(20))


# -- items: to_slice ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, 2, 3), [1, 2, 3]),
        (range(3), [0, 1, 2]),
        ({"only": "mapping"}, [{"only": "mapping"}]),
        ("one string", ["one string"]),
        (b"bytes", [b"bytes"]),
        (42, [42]),
        (None, []),
    ],
)
def test_items_go_through_to_slice(value, expected):
    shared = SharedStore({"items": value})
    run(BatchNode(lambda ctx, item: item), shared)
    assert shared.get("results") == expected


def test_items_from_a_generator_and_a_set():
    shared = SharedStore({"items": (i * i for i in range(4))})
    run(BatchNode(lambda ctx, item: item + 1), shared)
    assert shared.get("results") == [1, 2, 5, 10]
    shared = SharedStore({"items": {7}})
    run(BatchNode(lambda ctx, item: item), shared)
    assert shared.get("results") == [7]


def test_missing_items_key_is_a_prep_error_naming_the_key():
    node = BatchNode(double, items_key="orders", name="pricing")
    calls = []
    node.process = lambda ctx, item: calls.append(item)
    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"items": [1]}))
    assert info.value.phase == "prep"
    assert info.value.node is node
    assert "orders" in str(info.value)
    assert "pricing" in str(info.value)
    assert calls == []


# -- keys and configuration ---------------------------------------------------------------------
def test_custom_items_and_results_keys():
    shared = SharedStore({"input_data": [1, 2]})
    run(BatchNode(double, True, items_key="input_data", results_key="output_data"), shared)
    assert shared.get("output_data") == [2, 4]
    assert "results" not in shared


def test_config_keys_and_count_key():
    config = BatchConfig(batch_size=2, concurrency=5, items_key="data", results_key="output", count_key="total")
    shared = SharedStore({"data": [1, 2, 3]})
    run(BatchNode(double, True, config=config), shared)
    assert shared.get("output") == [2, 4, 6]
    assert shared.get("total") == 3


def test_count_key_is_not_written_by_default():
    shared = SharedStore({"items": [1, 2]})
    run(BatchNode(double), shared)
    assert sorted(shared.keys()) == ["items", "results"]


def test_count_key_counts_failed_items_too(mode):
    shared = SharedStore({"items": [1, 2, 3]})
    with pytest.raises(BatchError):
        mode.run(mode.node(fail_on(2), count_key="finished"), shared)
    assert shared.get("finished") == 3


def test_keyword_arguments_win_over_config():
    config = BatchConfig(items_key="a", results_key="b", concurrency=3)
    node = BatchNode(double, config=config, items_key="x", concurrency=7)
    assert node.items_key == "x"
    assert node.results_key == "b"
    assert node.config.concurrency == 7
    assert config.items_key == "a"  # the caller's config is not modified
    shared = SharedStore({"x": [1]})
    run(node, shared)
    assert shared.get("b") == [2]


def test_batch_config_defaults():
    config = BatchConfig()
    assert (config.batch_size, config.concurrency, config.fail_fast) == (0, 8, False)
    assert config.items_key is None and config.results_key is None and config.count_key is None
    assert config.executor is None


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 1.5}, {"concurrency": "4"}, {"concurrency": True}, {"executor": object()}, {"items_key": 3}],
)
def test_batch_config_rejects_wrong_types(kwargs):
    with pytest.raises(TypeError):
        BatchConfig(**kwargs)


def test_constructor_checks():
    with pytest.raises(TypeError, match="callable"):
        BatchNode("not callable")
    with pytest.raises(TypeError, match="process"):
        BatchNode()
    with pytest.raises(TypeError, match="unexpected"):
        BatchNode(double, prep=lambda ctx, shared: None)
    with pytest.raises(TypeError, match="BatchConfig"):
        BatchNode(double, config={"concurrency": 2})


def test_names():
    def resize(ctx, item):
        return item

    class Thumbnails(BatchNode):
        def process(self, ctx, item):
            return item

    assert BatchNode(resize).name == "resize"
    assert BatchNode(resize, name="thumbs").name == "thumbs"
    assert Thumbnails().name == "Thumbnails"
    # the workbench renames defaulted names after their variable, never chosen ones
    assert BatchNode(resize)._auto_name is True
    assert BatchNode(resize, name="thumbs")._auto_name is False
    assert BatchFlow(lambda: Flow(Node()), lambda c, s: [])._auto_name is True
    assert BatchFlow(lambda: Flow(Node()), lambda c, s: [], name="b")._auto_name is False


# -- subclass style -----------------------------------------------------------------------------
def test_subclass_overrides_process_fallback_and_retry_policy(mode):
    class Lookup(BatchNode):
        def __init__(self):
            super().__init__(concurrent=mode.concurrent, executor=mode.executor)
            self.calls: dict[int, int] = {}
            self.lock = threading.Lock()

        def get_max_retries(self):
            return 2

        def process(self, ctx, item):
            with self.lock:
                self.calls[item] = self.calls.get(item, 0) + 1
            if item < 0:
                raise LookupError(item)
            return item + 100

        def exec_fallback(self, item, error):
            return f"missing {item}: {type(error).__name__}"

    node = Lookup()
    shared = SharedStore({"items": [1, -1, 2]})
    mode.run(node, shared)
    assert shared.get("results") == [101, "missing -1: LookupError", 102]
    assert node.calls == {1: 1, -1: 2, 2: 1}


def test_post_function_sees_written_results_and_picks_the_action():
    seen = {}

    def route(ctx, shared, items, results):
        seen["store"] = shared.get("results")
        seen["results"] = list(results)
        return "all_even" if all(r % 2 == 0 for r in results) else "mixed"

    shared = SharedStore({"items": [1, 2]})
    assert run(BatchNode(double, post=route), shared) == "all_even"
    assert seen == {"store": [2, 4], "results": [2, 4]}


# -- retries, wait and fallback per item --------------------------------------------------------
def flaky(failures: dict[int, int]):
    """Item i fails failures[i] times, then returns i; attempts are counted per item."""
    attempts: dict[int, int] = {}
    lock = threading.Lock()

    def process(ctx, item):
        with lock:
            attempts[item] = attempts.get(item, 0) + 1
            count = attempts[item]
        if count <= failures.get(item, 0):
            raise ConnectionError(f"item {item} attempt {count}")
        return item

    process.attempts = attempts
    return process


def test_retries_apply_per_item(mode):
    process = flaky({1: 2, 3: 1})
    shared = SharedStore({"items": [0, 1, 2, 3]})
    mode.run(mode.node(process, max_retries=3, wait=0.001), shared)
    assert shared.get("results") == [0, 1, 2, 3]
    assert process.attempts == {0: 1, 1: 3, 2: 1, 3: 2}


def test_an_item_failing_every_attempt_fails_alone(mode):
    process = flaky({2: 99})
    shared = SharedStore({"items": [0, 1, 2, 3]})
    with pytest.raises(BatchError) as info:
        mode.run(mode.node(process, max_retries=3), shared)
    assert process.attempts[2] == 3
    assert process.attempts[0] == process.attempts[1] == process.attempts[3] == 1
    assert isinstance(info.value.errors[2], ConnectionError)
    assert "attempt 3" in str(info.value.errors[2])  # the item's last exception
    assert shared.get("results") == [0, 1, None, 3]


def test_wait_is_spent_between_attempts_of_an_item(mode, monkeypatch):
    waits = []
    original_sleep = Context.sleep

    def spy(self, seconds):
        waits.append(seconds)
        return original_sleep(self, seconds)

    original_asleep = Context.asleep

    async def aspy(self, seconds):  # the same wait, awaited (async phases)
        waits.append(seconds)
        return await original_asleep(self, seconds)

    monkeypatch.setattr(Context, "sleep", spy)
    monkeypatch.setattr(Context, "asleep", aspy)
    process = flaky({0: 2})
    mode.run(mode.node(process, max_retries=3, wait=0.002), SharedStore({"items": [0]}))
    assert process.attempts == {0: 3}
    if mode.executor is None:  # on an executor the driving loop keeps the retry schedule itself
        assert waits == [0.002, 0.002]


def test_retries_on_an_executor_wait_before_resubmitting(thread_executor):
    times = []

    def process(ctx, item):
        times.append(time.monotonic())
        if len(times) < 3:
            raise ConnectionError("again")
        return item

    shared = SharedStore({"items": ["x"]})
    run(BatchNode(process, executor=thread_executor, max_retries=3, wait=0.03), shared)
    assert shared.get("results") == ["x"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2 and all(gap >= 0.025 for gap in gaps)


def test_fallback_gets_the_item_and_its_last_error(mode):
    calls = []

    def fallback(item, error):
        calls.append((item, str(error)))
        return f"default-{item}"

    process = flaky({1: 5})
    shared = SharedStore({"items": [0, 1, 2]})
    mode.run(mode.node(process, max_retries=2, fallback=fallback), shared)
    assert shared.get("results") == [0, "default-1", 2]
    assert calls == [(1, "item 1 attempt 2")]


def test_a_failing_fallback_fails_the_item_with_the_fallbacks_error(mode):
    def fallback(item, error):
        raise RuntimeError(f"no default for {item}")

    shared = SharedStore({"items": [0, 1]})
    with pytest.raises(BatchError) as info:
        mode.run(mode.node(fail_on(1), fallback=fallback), shared)
    assert isinstance(info.value.errors[1], RuntimeError)
    assert str(info.value.errors[1]) == "no default for 1"


def test_max_retries_zero_attempts_nothing(mode):
    calls = []
    shared = SharedStore({"items": [1, 2]})
    mode.run(mode.node(lambda ctx, item: calls.append(item), max_retries=0, count_key="n"), shared)
    assert calls == []
    assert shared.get("results") == [None, None]
    assert shared.get("n") == 0


def test_dynamic_retry_policy_is_read_per_decision(mode):
    class Selective(BatchNode):
        max_retries = 5

        def __init__(self):
            super().__init__(concurrent=mode.concurrent, executor=mode.executor)
            self.attempts = 0
            self.lock = threading.Lock()

        def get_max_retries(self):
            return 1 if getattr(self, "permanent", False) else self.max_retries

        def process(self, ctx, item):
            with self.lock:
                self.attempts += 1
                if self.attempts == 2:
                    self.permanent = True  # a permanent error: stop retrying
            raise PermissionError("denied")

    node = Selective()
    with pytest.raises(BatchError):
        mode.run(node, SharedStore({"items": ["x"]}))
    assert node.attempts == 2


# -- failures: BatchError -------------------------------------------------------------------------
def test_failures_raise_batch_error_after_writing_partial_results(mode):
    node = mode.node(fail_on(-2, -4), name="doubler")
    shared = SharedStore({"items": [1, -2, 3, -4, 5]})
    with pytest.raises(BatchError) as info:
        mode.run(node, shared)
    err = info.value
    assert type(err) is BatchError  # not wrapped in NodeError
    assert err.message == "2/5 items failed"
    assert err.results == [10, None, 30, None, 50]
    assert [type(e).__name__ if e else None for e in err.errors] == [None, "ValueError", None, "ValueError", None]
    assert shared.get("results") == [10, None, 30, None, 50]
    text = str(err)
    assert "doubler" in text and "#1" in text and "bad item -2" in text


def test_batch_error_passes_through_an_enclosing_flow_unwrapped():
    batch = BatchNode(fail_on(2), name="inner_batch")
    after = Node(exec=lambda ctx, p: None, name="after")
    flow = Flow(batch).connect(batch, "default", after)
    with pytest.raises(BatchError) as info:
        run(flow, SharedStore({"items": [1, 2]}))
    assert info.value.node_name == "inner_batch"


def test_an_item_raising_a_node_error_is_just_a_failed_item(mode, each_style):
    skip_when_async(each_style, NESTED)

    def process(ctx, item):
        return run(Node(exec=lambda c, p: 1 / item, name="divide"))

    shared = SharedStore({"items": [1, 0]})
    with pytest.raises(BatchError) as info:
        mode.run(mode.node(process), shared)
    assert isinstance(info.value.errors[1], NodeError)


def test_an_item_timing_out_on_its_own_context_is_a_failed_item_not_a_cancelled_batch(mode):
    def process(ctx, item):
        child, cancel = ctx.with_timeout(0 if item == 1 else 10)
        try:
            child.check()
            return item
        finally:
            cancel()

    shared = SharedStore({"items": [0, 1, 2]})
    with pytest.raises(BatchError) as info:
        mode.run(mode.node(process), shared)
    assert isinstance(info.value.errors[1], DeadlineExceeded)
    assert shared.get("results") == [0, None, 2]


# -- fail_fast ----------------------------------------------------------------------------------------
def test_fail_fast_sequential_stops_after_the_first_failure():
    calls = []

    def process(ctx, item):
        calls.append(item)
        if item == 2:
            raise ValueError("boom")
        return item

    shared = SharedStore({"items": [0, 1, 2, 3, 4]})
    with pytest.raises(BatchError) as info:
        run(BatchNode(process, fail_fast=True), shared)
    assert calls == [0, 1, 2]
    err = info.value
    assert err.results == [0, 1, None, None, None]
    assert isinstance(err.errors[2], ValueError)
    assert all(isinstance(e, Cancelled) for e in err.errors[3:])
    assert err.message.startswith("1/5 items failed")
    assert "2 not run" in err.message


@pytest.mark.parametrize("where", ["threads", "executor"])
def test_fail_fast_concurrent_schedules_nothing_new_after_a_failure(where, thread_executor):
    started = []
    lock = threading.Lock()

    def process(ctx, item):
        with lock:
            started.append(item)
        if item == 1:
            raise ValueError("boom")
        time.sleep(0.01)
        return item

    executor = thread_executor if where == "executor" else None
    node = BatchNode(process, True, fail_fast=True, concurrency=2, executor=executor)
    shared = SharedStore({"items": list(range(20))})
    with pytest.raises(BatchError) as info:
        run(node, shared)
    err = info.value
    assert len(started) < 20
    for index in range(20):
        if index not in started:
            assert isinstance(err.errors[index], Cancelled)
            assert shared.get("results")[index] is None
    finished_ok = [i for i in started if i != 1]
    assert all(shared.get("results")[i] == i for i in finished_ok)  # in-flight items were not dropped


# -- cancellation -------------------------------------------------------------------------------------
def test_cancellation_stops_scheduling_and_writes_finished_results(mode):
    ctx, cancel = Context.background().with_cancel()
    calls = []
    lock = threading.Lock()

    def process(ctx_, item):
        with lock:
            calls.append(item)
        if item == 3:
            cancel()
        return item * 10

    node = mode.node(process, concurrency=2, count_key="done")
    shared = SharedStore({"items": list(range(30))})
    with pytest.raises(Cancelled) as info:
        mode.run(node, shared, ctx=ctx)
    assert not isinstance(info.value, BatchError)
    results = shared.get("results")
    assert len(results) == 30
    assert len(calls) < 30
    for index, value in enumerate(results):
        assert value in (None, index * 10)
    assert results[3] == 30  # the item that cancelled still finished
    errors = info.value.errors
    not_started = [i for i in range(30) if i not in calls]
    assert not_started
    for index in not_started:
        assert isinstance(errors[index], Cancelled)
        assert f"#{index}" in str(errors[index])
        assert "cancelled" in str(errors[index])
    assert shared.get("done") == sum(1 for value in results if value is not None)
    assert info.value.results == results


def test_cancellation_interrupts_a_retry_wait_and_skips_the_fallback(mode):
    ctx, cancel = Context.background().with_cancel()
    fallbacks = []

    def process(ctx_, item):
        threading.Timer(0.02, cancel).start()
        raise ConnectionError("down")

    node = mode.node(process, max_retries=3, wait=30, fallback=lambda item, e: fallbacks.append(item))
    started = time.monotonic()
    with pytest.raises(Cancelled):
        mode.run(node, SharedStore({"items": [1]}), ctx=ctx)
    assert time.monotonic() - started < 10
    assert fallbacks == []


def test_a_cancelled_context_processes_nothing(mode):
    ctx, cancel = Context.background().with_cancel()
    cancel()
    calls = []
    with pytest.raises(Cancelled):
        mode.run(mode.node(lambda c, item: calls.append(item)), SharedStore({"items": [1, 2]}), ctx=ctx)
    assert calls == []


def test_cancellation_marks_interrupted_items_as_cancelled_while_running():
    ctx, cancel = Context.background().with_cancel()
    entered = threading.Event()

    def process(ctx_, item):
        if item == 0:
            entered.set()
            ctx_.sleep(30)  # interrupted by the cancellation
        return item

    threading.Thread(target=lambda: (entered.wait(5), cancel())).start()
    with pytest.raises(Cancelled) as info:
        run(BatchNode(process), SharedStore({"items": [0, 1]}), ctx=ctx)
    assert "while running" in str(info.value.errors[0])
    assert "before it started" in str(info.value.errors[1])


# -- concurrency and chunks -----------------------------------------------------------------------------
class InFlight:
    """Counts simultaneous items; remembers the peak and which items overlapped."""

    def __init__(self, sleep: float = 0.003) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.sleep = sleep
        self.running: set[int] = set()
        self.overlaps: list[tuple[int, frozenset[int]]] = []

    def __call__(self, ctx, item):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.overlaps.append((item, frozenset(self.running)))
            self.running.add(item)
        time.sleep(self.sleep)
        with self.lock:
            self.now -= 1
            self.running.discard(item)
        return item


@pytest.mark.parametrize("where", ["threads", "executor"])
def test_concurrency_bound_holds(where, each_style):
    skip_when_async(each_style, BLOCKING)
    probe = InFlight()
    executor = ThreadPoolExecutor(16) if where == "executor" else None
    try:
        shared = SharedStore({"items": list(range(40))})
        run(BatchNode(probe, True, concurrency=3, executor=executor), shared)
    finally:
        if executor is not None:
            executor.shutdown()
    assert probe.peak <= 3
    assert probe.peak >= 2  # it did run concurrently
    assert shared.get("results") == list(range(40))


@pytest.mark.parametrize("where", ["threads", "executor"])
def test_batch_size_runs_chunk_after_chunk(where):
    probe = InFlight()
    executor = ThreadPoolExecutor(16) if where == "executor" else None
    try:
        shared = SharedStore({"items": list(range(11))})
        run(BatchNode(probe, True, batch_size=3, concurrency=8, executor=executor), shared)
    finally:
        if executor is not None:
            executor.shutdown()
    assert probe.peak <= 3
    for item, others in probe.overlaps:
        assert all(other // 3 == item // 3 for other in others), f"item {item} overlapped {sorted(others)}"
    assert shared.get("results") == list(range(11))


def test_concurrency_below_batch_size_bounds_in_flight():
    probe = InFlight()
    shared = SharedStore({"items": list(range(12))})
    run(BatchNode(probe, True, batch_size=6, concurrency=2), shared)
    assert probe.peak <= 2


def test_non_positive_concurrency_means_one_at_a_time():
    probe = InFlight()
    run(BatchNode(probe, True, concurrency=0), SharedStore({"items": list(range(5))}))
    assert probe.peak == 1


def test_concurrent_mode_actually_overlaps_items(each_style):
    skip_when_async(each_style, BLOCKING)
    barrier = threading.Barrier(4, timeout=5)

    def process(ctx, item):
        barrier.wait()  # deadlocks (and times out) unless 4 items run at once
        return item

    shared = SharedStore({"items": [0, 1, 2, 3]})
    run(BatchNode(process, True, concurrency=4), shared)
    assert shared.get("results") == [0, 1, 2, 3]


# -- executors -------------------------------------------------------------------------------------------
class ShutExecutor(Executor):
    def submit(self, fn, /, *args, **kwargs):
        raise RuntimeError("cannot schedule new futures after shutdown")


class DroppingExecutor(Executor):
    """Cancels every future it is given (as a cluster that lost the task would)."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        future.cancel()
        return future


def test_an_executor_refusing_work_fails_each_item_naming_batch_and_index():
    shared = SharedStore({"items": [1, 2]})
    with pytest.raises(BatchError) as info:
        run(BatchNode(double, True, executor=ShutExecutor(), name="resize"), shared)
    errors = info.value.errors
    assert all(isinstance(e, FlytError) for e in errors)
    assert "resize" in str(errors[1]) and "#1" in str(errors[1]) and "shutdown" in str(errors[1])
    assert shared.get("results") == [None, None]


def test_an_executor_dropping_an_item_is_worker_lost():
    with pytest.raises(BatchError) as info:
        run(BatchNode(double, executor=DroppingExecutor(), name="resize"), SharedStore({"items": [1]}))
    error = info.value.errors[0]
    assert isinstance(error, WorkerLost)
    assert "resize" in str(error) and "#0" in str(error)


def die_on_two(ctx, item):
    if item == 2:
        os._exit(3)  # the worker process dies
    return item * 10


def test_a_process_pool_worker_dying_loses_no_finished_result():
    with ProcessPoolExecutor(1) as pool:
        pool.submit(int).result()  # the worker is up before the batch starts
        shared = SharedStore({"items": [0, 1, 2, 3]})
        with pytest.raises(BatchError) as info:
            run(BatchNode(die_on_two, executor=pool, name="crunch"), shared)
    errors = info.value.errors
    assert shared.get("results")[:2] == [0, 10]
    assert isinstance(errors[2], WorkerLost)
    assert "crunch" in str(errors[2]) and "#2" in str(errors[2])
    assert errors[0] is None and errors[1] is None


def test_process_pool_runs_items_with_a_detached_context():
    events = []
    observer = lambda event: events.append(event)  # noqa: E731 - a lambda cannot be pickled: it must stay here
    ctx = Context.background().with_value("unit", "cm").with_observer(observer)
    shared = SharedStore({"items": [1, 2, 3]})
    with ProcessPoolExecutor(2) as pool:
        run(BatchNode(describe_item, True, executor=pool), shared, ctx=ctx)
    assert shared.get("results") == ["1 cm", "2 cm", "3 cm"]
    assert sum(1 for event in events if event.kind == "batch_item_finished") == 3


def describe_item(ctx, item):
    assert not ctx.observers  # observers stay in the driving process
    return f"{item} {ctx.value('unit')}"


class Squares(BatchNode):
    def process(self, ctx, item):
        return item * item


def test_a_subclass_node_pickles_without_its_executor():
    with ProcessPoolExecutor(1) as pool:
        node = Squares(concurrent=True, executor=pool)
        shared = SharedStore({"items": [2, 3]})
        run(node, shared)
        assert shared.get("results") == [4, 9]
        assert node.config.executor is pool  # the node itself keeps it


# -- batch node inside other things ------------------------------------------------------------------------
def test_batch_node_inside_a_flow_and_a_batch_flow():
    def factory():
        batch = BatchNode(double, True, items_key="numbers", results_key="doubled")
        total = Node(prep=lambda ctx, s: s.get("doubled"), post=lambda ctx, s, p, e: s.set("sum", sum(p)))
        return Flow(batch).connect(batch, "default", total)

    parent = SharedStore()
    batch_flow = BatchFlow(factory, lambda ctx, s: [{"numbers": [1, 2]}, {"numbers": [3]}])
    run(batch_flow, parent)
    assert [r["sum"] for r in parent.get("batch_results")] == [6, 6]


# -- the optional executor protocol: submit_batch and slots ---------------------------------------------
class BatchingPool(ThreadPoolExecutor):
    """A pool that runs at most ``slots`` calls at once and says so, and takes calls in batches."""

    def __init__(self, slots: int, *, broken_batches: bool = False) -> None:
        super().__init__(slots)
        self._slots = slots
        self.broken_batches = broken_batches
        self.batches: list[int] = []

    def slots(self) -> int:
        return self._slots

    def submit_batch(self, calls):
        self.batches.append(len(calls))
        if self.broken_batches:
            raise TypeError("no batches today")
        return [self.submit(fn, *args) for fn, args in calls]


def test_an_executor_running_at_most_concurrency_calls_gets_every_item_at_once():
    probe = InFlight(sleep=0.001)
    with BatchingPool(4) as pool:
        shared = SharedStore({"items": list(range(20))})
        run(BatchNode(probe, True, concurrency=8, executor=pool), shared)
    assert pool.batches == [20]
    assert probe.peak <= 4
    assert shared.get("results") == list(range(20))


def test_an_executor_with_more_slots_than_concurrency_gets_a_window():
    probe = InFlight(sleep=0.002)
    with BatchingPool(16) as pool:
        shared = SharedStore({"items": list(range(20))})
        run(BatchNode(probe, True, concurrency=3, executor=pool), shared)
    assert pool.batches and max(pool.batches) <= 3
    assert probe.peak <= 3
    assert shared.get("results") == list(range(20))


def test_fail_fast_keeps_the_window_even_when_the_executor_could_take_everything():
    with BatchingPool(2) as pool:
        shared = SharedStore({"items": list(range(20))})
        with pytest.raises(BatchError):
            run(BatchNode(fail_on(0), True, concurrency=8, fail_fast=True, executor=pool), shared)
    assert max(pool.batches) <= 8


def test_a_failing_submit_batch_falls_back_to_submit():
    with BatchingPool(2, broken_batches=True) as pool:
        shared = SharedStore({"items": list(range(6))})
        run(BatchNode(double, True, concurrency=8, executor=pool), shared)
    assert pool.batches == [6]
    assert shared.get("results") == [0, 2, 4, 6, 8, 10]
