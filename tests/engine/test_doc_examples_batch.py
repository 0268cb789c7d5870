"""The batch chapters of the Flyt documentation (Batch Processing, Batch Flows, Worker
Pool), ported from Go to Python and run against flyt_engine.

Each test is one documented section (``test_<chapter>__<section>``); fakes replace the
external services and every documented second is scaled down to ``SECOND``. Where the
Go docs promise more than the Go code did (batch sizes, concurrency limits, count keys,
``batch_results``), the tests hold the engine to the promise, as ``API.md`` requires.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from flyt_engine import (
    DEFAULT_ACTION,
    BatchConfig,
    BatchError,
    BatchFlow,
    BatchNode,
    Cancelled,
    Context,
    DeadlineExceeded,
    Flow,
    Node,
    NodeError,
    SharedStore,
    WorkerPool,
    run,
)
from flyt_engine.events import BatchFinished, BatchItemFinished, BatchStarted

SECOND = 0.001  # one documented second, scaled down

log = logging.getLogger("flyt.docs.batch")


class InFlight:
    """Counts how many calls run at once (and the most seen), for concurrency limits."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.log: list[tuple[str, Any]] = []  # ("start" | "end", item) in the order they happened

    @contextmanager
    def track(self, item: Any) -> Iterator[None]:
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
            self.log.append(("start", item))
        try:
            yield
        finally:
            with self.lock:
                self.now -= 1
                self.log.append(("end", item))


class FakeClock:
    """Stands in for ``time.Now()`` so that circuit breakers need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# =======================================================================================
# Batch Processing
# =======================================================================================
def test_batch_processing__basic_batch_processing() -> None:
    """### Basic Batch Processing — every item processed, results in item order under
    ``results``."""

    def process_func(ctx: Context, item: Any) -> Any:
        return f"processed: {item}"

    batch_node = BatchNode(process_func, True)
    shared = SharedStore()
    shared.set("items", ["item1", "item2", "item3"])
    action = run(batch_node, shared, ctx=Context.background())
    assert action == DEFAULT_ACTION
    assert shared.get_list("results") == ["processed: item1", "processed: item2", "processed: item3"]


def test_batch_processing__sequential_vs_concurrent() -> None:
    """### Sequential vs Concurrent — sequential processes in item order; concurrent items
    may finish in any order (here: last first), yet results stay in item order."""
    order: list[int] = []

    def process_in_order(ctx: Context, item: Any) -> Any:
        order.append(item)
        return item * 10

    shared = SharedStore({"items": [0, 1, 2, 3]})
    run(BatchNode(process_in_order, False), shared)
    assert order == [0, 1, 2, 3] and shared["results"] == [0, 10, 20, 30]

    finished = [threading.Event() for _ in range(4)]
    completion: list[int] = []
    lock = threading.Lock()

    def process_last_first(ctx: Context, item: Any) -> Any:
        if item < 3:
            assert finished[item + 1].wait(2), "items did not run concurrently"
        with lock:
            completion.append(item)
        finished[item].set()
        return item * 10

    shared = SharedStore({"items": [0, 1, 2, 3]})
    run(BatchNode(process_last_first, True), shared)
    assert completion == [3, 2, 1, 0]
    assert shared["results"] == [0, 10, 20, 30]


def test_batch_processing__custom_keys() -> None:
    """### Custom Keys — items read from ``input_data``, results written to ``output_data``."""
    batch_node = BatchNode(lambda ctx, item: item + 1, True, items_key="input_data", results_key="output_data")
    shared = SharedStore()
    shared.set("input_data", [1, 2, 3])
    run(batch_node, shared)
    assert shared["output_data"] == [2, 3, 4]
    assert not shared.has("results")


def test_batch_processing__advanced_configuration() -> None:
    """### Advanced Configuration — 10 items at a time, 5 workers, custom keys and a count:
    a chunk starts only when the previous one has finished, and at most 5 items run at once."""
    tracker = InFlight()

    def process_item(item: Any) -> Any:
        return {"id": item, "double": item * 2}

    def process_func(ctx: Context, item: Any) -> Any:
        with tracker.track(item):
            time.sleep(SECOND)  # heavy processing (100 ms in the docs)
            return process_item(item)

    config = BatchConfig(batch_size=10, concurrency=5, items_key="data", results_key="output", count_key="total")
    batch_node = BatchNode(process_func, True, config=config)
    shared = SharedStore({"data": list(range(25))})
    run(batch_node, shared)

    assert shared["output"] == [{"id": i, "double": i * 2} for i in range(25)]
    assert shared["total"] == 25
    assert not shared.has("results") and not shared.has("items")
    assert 1 <= tracker.max <= 5
    position = {event: n for n, event in enumerate(tracker.log)}
    for first, second in ((range(0, 10), range(10, 20)), (range(10, 20), range(20, 25))):
        last_end = max(position[("end", i)] for i in first)
        first_start = min(position[("start", i)] for i in second)
        assert last_end < first_start, "a chunk started before the previous one finished"


def test_batch_processing__error_handling() -> None:
    """### Error Handling — failed items do not stop the others; the run fails with a
    ``BatchError`` whose message counts the failures and whose errors line up with the items."""

    def process_func(ctx: Context, item: Any) -> Any:
        if item < 0:
            raise ValueError(f"negative value: {item}")
        return item * 2

    batch_node = BatchNode(process_func, True)
    shared = SharedStore()
    shared.set("items", [1, -2, 3, -4, 5])
    with pytest.raises(BatchError) as info:
        run(batch_node, shared, ctx=Context.background())
    batch_err = info.value
    assert f"Batch processing failed: {batch_err.message}" == "Batch processing failed: 2/5 items failed"
    failed = {i: str(e) for i, e in enumerate(batch_err.errors) if e is not None}
    assert failed == {1: "negative value: -2", 3: "negative value: -4"}
    assert batch_err.results == [2, None, 6, None, 10]
    assert shared["results"] == [2, None, 6, None, 10]  # the partial results are kept


def test_batch_processing__map_pattern() -> None:
    """#### Map Pattern — each User becomes a UserDTO, in order."""

    @dataclass
    class User:
        id: int
        name: str
        age: int
        password: str

    @dataclass
    class UserDTO:
        id: int
        name: str
        age: int

    def map_func(ctx: Context, user: Any) -> Any:
        return UserDTO(id=user.id, name=user.name, age=user.age)

    users = [User(i, f"user{i}", 20 + i, "secret") for i in range(5)]
    shared = SharedStore({"items": users})
    run(BatchNode(map_func, True), shared)
    assert shared["results"] == [UserDTO(i, f"user{i}", 20 + i) for i in range(5)]


def test_batch_processing__filter_pattern() -> None:
    """#### Filter Pattern — items of 10 or less give nil, which stays at its index."""

    def filter_func(ctx: Context, value: Any) -> Any:
        if value > 10:
            return value
        return None  # skip this item

    shared = SharedStore({"items": [5, 15, 10, 42]})
    run(BatchNode(filter_func, True), shared)
    assert shared["results"] == [None, 15, None, 42]
    assert [v for v in shared["results"] if v is not None] == [15, 42]


def test_batch_processing__reduce_pattern() -> None:
    """#### Reduce Pattern — the SumNode adds every item to its total. Its total lives on
    the node and is never reset, and nodes are never copied: a second run keeps adding."""

    class SumNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.total = 0
            self.mu = threading.Lock()

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, items: Any) -> Any:
            for item in items:
                with self.mu:
                    self.total += item
            return self.total

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("sum", exec_result)
            return None

    node = SumNode()
    shared = SharedStore({"items": [1, 2, 3, 4, 5]})
    run(node, shared)
    assert shared["sum"] == 15
    run(node, shared)
    assert shared["sum"] == 30


def test_batch_processing__chunked_processing() -> None:
    """### Chunked Processing — a plain node that processes its items chunk by chunk."""
    chunks: list[list[Any]] = []

    def process_chunk(chunk: list[Any]) -> list[Any]:
        chunks.append(chunk)
        return [x * x for x in chunk]

    def create_chunked_processor(chunk_size: int) -> Node:
        def exec_(ctx: Context, items: Any) -> Any:
            results: list[Any] = []
            for i in range(0, len(items), chunk_size):
                results.extend(process_chunk(items[i : i + chunk_size]))
            return results

        return Node(
            prep=lambda ctx, shared: shared.get_list("items"),
            exec=exec_,
            post=lambda ctx, shared, p, e: shared.set("results", e),
        )

    shared = SharedStore({"items": list(range(7))})
    run(create_chunked_processor(3), shared)
    assert chunks == [[0, 1, 2], [3, 4, 5], [6]]
    assert shared["results"] == [x * x for x in range(7)]


def test_batch_processing__progress_tracking(caplog: pytest.LogCaptureFixture) -> None:
    """### Progress Tracking — progress is logged every 10 items and at the end."""

    def process_item(data: Any) -> tuple[Any, Exception | None]:
        return data + 1, None

    class ProgressBatchNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.processed = 0
            self.total = 0
            self.lock = threading.Lock()

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, items: Any) -> Any:
            return self.process_with_progress(ctx, items)

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("results", exec_result)
            return None

        def process_with_progress(self, ctx: Context, items: list[Any]) -> list[Any]:
            self.total = len(items)
            results: list[Any] = [None] * len(items)

            def work(idx: int, data: Any) -> None:
                result, _ = process_item(data)
                results[idx] = result
                with self.lock:
                    self.processed += 1
                    current = self.processed
                progress = current / self.total * 100
                if current % 10 == 0 or current == self.total:
                    log.info("Progress: %.1f%% (%d/%d)", progress, current, self.total)

            threads = [threading.Thread(target=work, args=(i, item)) for i, item in enumerate(items)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return results

    shared = SharedStore({"items": list(range(25))})
    with caplog.at_level(logging.INFO, logger=log.name):
        run(ProgressBatchNode(), shared)
    assert shared["results"] == list(range(1, 26))
    assert sorted(r.getMessage() for r in caplog.records) == [
        "Progress: 100.0% (25/25)",
        "Progress: 40.0% (10/25)",
        "Progress: 80.0% (20/25)",
    ]


def test_batch_processing__best_practices__monitor_progress() -> None:
    """### Best Practices — "Monitor Progress": an observer sees the batch start with its
    total, every item finish (ok or not) and the final tally."""

    def process(ctx: Context, item: Any) -> Any:
        if item == 3:
            raise ValueError("three")
        return item

    events: list[Any] = []
    ctx = Context.background().with_observer(events.append)
    with pytest.raises(BatchError):
        run(BatchNode(process, True, config=BatchConfig(concurrency=2)), SharedStore({"items": range(6)}), ctx=ctx)
    assert [e.total for e in events if isinstance(e, BatchStarted)] == [6]
    finished = sorted((e.index, e.ok) for e in events if isinstance(e, BatchItemFinished))
    assert finished == [(0, True), (1, True), (2, True), (3, False), (4, True), (5, True)]
    assert [(e.done, e.failed) for e in events if isinstance(e, BatchFinished)] == [(6, 1)]


class Limiter:
    """A token bucket like ``rate.NewLimiter(rps, 1)``: one token every ``1/rps`` seconds.

    ``wait`` reserves the next slot and sleeps until it, interruptibly (Go's
    ``limiter.Wait(ctx)`` returns the context's error when cancelled).
    """

    def __init__(self, rps: float) -> None:
        self.interval = 1 / rps
        self.next_slot = 0.0
        self.granted: list[float] = []
        self.lock = threading.Lock()

    def wait(self, ctx: Context) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
            self.granted.append(slot)
        ctx.sleep(slot - time.monotonic())


def test_batch_processing__rate_limited_batch_processing() -> None:
    """### Rate-Limited Batch Processing — every item waits for the limiter first (slots one
    interval apart); a context that ends while an item waits stops the batch with the
    context's error, keeping the results of the items already done."""
    calls: list[Any] = []

    def call_api(item: Any) -> Any:
        calls.append(item)
        return item.upper()

    def create_rate_limited_batch_node(rps: float) -> tuple[Node, Limiter]:
        limiter = Limiter(rps)

        def process_func(ctx: Context, item: Any) -> Any:
            limiter.wait(ctx)
            return call_api(item)

        return BatchNode(process_func, True), limiter

    node, limiter = create_rate_limited_batch_node(2000)
    shared = SharedStore({"items": ["a", "b", "c", "d"]})
    run(node, shared)
    assert shared["results"] == ["A", "B", "C", "D"]
    gaps = [b - a for a, b in zip(limiter.granted, limiter.granted[1:], strict=False)]
    assert len(limiter.granted) == 4 and all(gap >= limiter.interval * 0.999 for gap in gaps)

    slow = Limiter(20)  # one item every 50 ms: the second item outlives a 20 ms deadline

    def limited(ctx: Context, item: Any) -> Any:
        slow.wait(ctx)
        return item.upper()

    ctx, cancel = Context.background().with_timeout(20 * SECOND)
    try:
        shared = SharedStore({"items": ["x", "y", "z"]})
        with pytest.raises(DeadlineExceeded):
            run(BatchNode(limited, False), shared, ctx=ctx)
    finally:
        cancel()
    assert shared["results"] == ["X", None, None]


def test_batch_processing__batch_with_timeout() -> None:
    """### Batch with Timeout — an item that outlives its own timeout fails with "processing
    timeout for item: ..."; the other items are unaffected."""
    release = threading.Event()

    def process_item(item: Any) -> Any:
        if item == "slow":
            release.wait(1)
        return item.upper()

    def create_timeout_batch_node(timeout: float) -> Node:
        def process_func(ctx: Context, item: Any) -> Any:
            item_ctx, cancel = ctx.with_timeout(timeout)
            try:
                outcome: queue.Queue[Any] = queue.Queue()
                threading.Thread(target=lambda: outcome.put(process_item(item)), daemon=True).start()
                while True:
                    try:
                        return outcome.get(timeout=SECOND)
                    except queue.Empty:
                        if item_ctx.cancelled:
                            raise TimeoutError(f"processing timeout for item: {item}") from None
            finally:
                cancel()

        return BatchNode(process_func, True)

    shared = SharedStore({"items": ["a", "slow", "b"]})
    try:
        with pytest.raises(BatchError) as info:
            run(create_timeout_batch_node(20 * SECOND), shared)
    finally:
        release.set()
    assert [str(e) if e else None for e in info.value.errors] == [None, "processing timeout for item: slow", None]
    assert shared["results"] == ["A", None, "B"]


@pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "concurrent"])
def test_batch_processing__batch_with_timeout__item_deadline_is_an_item_failure(concurrent: bool) -> None:
    """### Batch with Timeout — the same per-item timeout, letting the item context's own
    ``DeadlineExceeded`` escape from ``process`` (``return nil, itemCtx.Err()`` in Go). The
    batch's context was not cancelled, so this is one failed item like any other: the other
    items still run, and the run ends in a ``BatchError`` naming the item's error."""

    def process_func(ctx: Context, item: Any) -> Any:
        item_ctx, cancel = ctx.with_timeout(10 * SECOND)
        try:
            if item == "slow":
                item_ctx.sleep(1)  # interrupted at the item's deadline
            return item.upper()
        finally:
            cancel()

    shared = SharedStore({"items": ["a", "slow", "b"]})
    with pytest.raises(BatchError) as info:
        run(BatchNode(process_func, concurrent), shared)
    assert isinstance(info.value.errors[1], DeadlineExceeded)
    assert info.value.errors[0] is None and info.value.errors[2] is None
    assert shared["results"] == ["A", None, "B"]


def test_batch_processing__best_practices__fail_fast() -> None:
    """### Best Practices — "Decide whether to fail fast or collect all errors": by default
    every item runs; with ``fail_fast`` nothing new starts after the first failure and the
    skipped items are reported as cancelled."""
    seen: list[int] = []

    def process(ctx: Context, item: Any) -> Any:
        seen.append(item)
        if item == 1:
            raise ValueError("bad item")
        return item

    with pytest.raises(BatchError) as collect:
        run(BatchNode(process), SharedStore({"items": [0, 1, 2, 3]}))
    assert seen == [0, 1, 2, 3] and collect.value.message == "1/4 items failed"

    seen.clear()
    shared = SharedStore({"items": [0, 1, 2, 3]})
    with pytest.raises(BatchError) as fast:
        run(BatchNode(process, config=BatchConfig(fail_fast=True)), shared)
    assert seen == [0, 1]
    assert isinstance(fast.value.errors[1], ValueError)
    assert all(isinstance(e, Cancelled) for e in fast.value.errors[2:])
    assert shared["results"] == [0, None, None, None]


# =======================================================================================
# Batch Flows
# =======================================================================================
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


# =======================================================================================
# Worker Pool
# =======================================================================================
def test_worker_pool__basic_worker_pool() -> None:
    """### Basic Worker Pool — 100 tasks on 10 workers; ``Wait`` returns when all are done."""
    completed: list[int] = []
    lock = threading.Lock()
    threads: set[int] = set()

    def process_task(task_id: int) -> int:
        return task_id * 2

    pool = WorkerPool(10)
    for i in range(100):

        def task(task_id: int = i) -> None:
            result = process_task(task_id)
            with lock:
                completed.append(result)
                threads.add(threading.get_ident())

        pool.submit(task)
    pool.wait()
    assert sorted(completed) == [i * 2 for i in range(100)]
    assert 1 <= len(threads) <= 10
    pool.close()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_worker_pool__worker_pool_with_results() -> None:
    """### Worker Pool with Results — each task writes its result into its own slot."""

    @dataclass
    class Item:
        value: int

    def process_item(item: Item) -> int:
        return item.value**2

    def process_with_worker_pool(items: list[Item]) -> list[int]:
        pool = WorkerPool(5)
        mu = threading.Lock()
        results: list[int] = [0] * len(items)
        for index, data in enumerate(items):

            def task(index: int = index, data: Item = data) -> None:
                result = process_item(data)
                with mu:
                    results[index] = result

            pool.submit(task)
        pool.wait()
        pool.close()
        return results

    assert process_with_worker_pool([Item(v) for v in range(20)]) == [v * v for v in range(20)]


def test_worker_pool__dynamic_worker_scaling() -> None:
    """### Dynamic Worker Scaling — when the load passes twice the worker count the pool is
    replaced by a bigger one (up to the maximum); the old pool finishes its tasks first."""
    gate = threading.Event()
    done: list[int] = []
    lock = threading.Lock()

    class DynamicWorkerPool:
        def __init__(self, min_workers: int, max_workers: int) -> None:
            self.min_workers, self.max_workers = min_workers, max_workers
            self.workers = min_workers
            self.pool = WorkerPool(min_workers)
            self.retired: list[WorkerPool] = []
            self.load = 0
            self.mu = threading.RLock()
            self.scale_downs = 0

        def get_current_workers(self) -> int:
            with self.mu:
                return self.workers

        def submit(self, task: Callable[[], None]) -> None:
            with self.mu:
                self.load += 1
                current_load = self.load
            if current_load > self.get_current_workers() * 2:
                self.scale_up()

            def wrapped() -> None:
                task()
                with self.mu:
                    self.load -= 1
                    new_load = self.load
                if new_load < self.get_current_workers() // 2:
                    self.scale_down()

            with self.mu:
                self.pool.submit(wrapped)

        def scale_up(self) -> None:
            with self.mu:
                current = self.get_current_workers()
                if current >= self.max_workers:
                    return
                old = self.pool
                self.workers = min(current * 2, self.max_workers)
                self.pool = WorkerPool(self.workers)
                self.retired.append(old)
            # Close outside the lock: the old tasks take it when they finish (the Go snippet
            # closes while holding its write lock, which would deadlock the same way).
            old.close()  # waits for the old pool's tasks

        def scale_down(self) -> None:
            # Not shown in the docs; closing a pool from one of its own tasks would wait on
            # itself, so this port only counts the requests.
            with self.mu:
                self.scale_downs += 1

    pool = DynamicWorkerPool(1, 2)
    for i in range(6):

        def task(i: int = i) -> None:
            gate.wait(50 * SECOND)
            with lock:
                done.append(i)

        pool.submit(task)
    gate.set()
    pool.pool.wait()
    pool.pool.close()
    assert sorted(done) == list(range(6))
    assert pool.get_current_workers() == 2
    assert len(pool.retired) == 1
    with pytest.raises(RuntimeError):
        pool.retired[0].submit(lambda: None)


def test_worker_pool__rate_limited_worker_pool() -> None:
    """### Rate-Limited Worker Pool — every submission waits for the limiter; a cancelled
    context refuses the task with the context's error."""

    class RateLimitedPool:
        def __init__(self, pool: WorkerPool, limiter: Limiter) -> None:
            self.pool, self.limiter = pool, limiter

        def submit(self, ctx: Context, task: Callable[[], None]) -> None:
            self.limiter.wait(ctx)  # raises the context's error when it is cancelled
            self.pool.submit(task)

    def create_rate_limited_pool(workers: int, rps: float) -> RateLimitedPool:
        return RateLimitedPool(WorkerPool(workers), Limiter(rps))

    pool = create_rate_limited_pool(3, 2000)
    ran: list[int] = []
    ctx = Context.background()
    for i in range(5):
        pool.submit(ctx, lambda i=i: ran.append(i))
    pool.pool.wait()
    assert sorted(ran) == list(range(5)) and len(pool.limiter.granted) == 5

    cancelled, cancel = Context.background().with_cancel()
    cancel()
    with pytest.raises(Cancelled):
        pool.submit(cancelled, lambda: ran.append(99))
    pool.pool.close()
    assert 99 not in ran


def test_worker_pool__priority_queue_worker_pool() -> None:
    """### Priority Queue Worker Pool — a dispatcher feeds the pool from a priority queue,
    highest priority first."""

    @dataclass(order=True)
    class PriorityTask:
        sort_key: int
        id: str
        task: Callable[[], None]

    class PriorityQueue:
        def __init__(self) -> None:
            self.heap: list[tuple[int, int, PriorityTask]] = []
            self.cond = threading.Condition()
            self.seq = 0
            self.closed = False

        def push(self, item: PriorityTask) -> None:
            with self.cond:
                self.seq += 1
                heapq.heappush(self.heap, (item.sort_key, self.seq, item))
                self.cond.notify()

        def pop(self) -> PriorityTask | None:
            """Blocks until a task is available (``None`` once closed)."""
            with self.cond:
                self.cond.wait_for(lambda: self.heap or self.closed)
                return heapq.heappop(self.heap)[2] if self.heap else None

        @contextmanager
        def batch(self) -> Iterator[None]:
            """Push several tasks at once: the dispatcher sees them all together."""
            with self.cond:
                yield

        def close(self) -> None:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    class PriorityWorkerPool:
        def __init__(self, workers: int) -> None:
            self.queue = PriorityQueue()
            self.pool = WorkerPool(workers)
            self.running = True
            self.ids = 0
            self.dispatcher = threading.Thread(target=self.dispatch, daemon=True)
            self.dispatcher.start()

        def submit(self, priority: int, task: Callable[[], None]) -> None:
            self.ids += 1
            self.queue.push(PriorityTask(-priority, f"task-{self.ids}", task))  # highest first

        def dispatch(self) -> None:
            while self.running:
                task = self.queue.pop()
                if task is not None:
                    self.pool.submit(task.task)

        def close(self) -> None:
            self.running = False
            self.queue.close()
            self.dispatcher.join(1)
            self.pool.close()

    order: list[str] = []
    pool = PriorityWorkerPool(1)
    with pool.queue.batch():
        for name, priority in (("low", 1), ("urgent", 9), ("normal", 5), ("high", 7), ("lowest", 0)):
            pool.submit(priority, lambda name=name: order.append(name))
    deadline = time.monotonic() + 2
    while len(order) < 5 and time.monotonic() < deadline:
        time.sleep(SECOND)
    pool.close()
    assert order == ["urgent", "high", "normal", "low", "lowest"]


def test_worker_pool__worker_pool_with_timeout() -> None:
    """### Worker Pool with Timeout — ``Submit`` waits for the task and returns its error,
    or a timeout error when the task takes too long."""
    release = threading.Event()

    class TimeoutPool:
        def __init__(self, workers: int, timeout: float) -> None:
            self.pool = WorkerPool(workers)
            self.timeout = timeout

        def submit(self, task: Callable[[], Exception | None]) -> Exception | None:
            err_chan: queue.Queue[Exception | None] = queue.Queue(maxsize=1)

            def run_with_timeout() -> None:
                done: queue.Queue[Exception | None] = queue.Queue(maxsize=1)
                threading.Thread(target=lambda: done.put(task()), daemon=True).start()
                try:
                    err_chan.put(done.get(timeout=self.timeout))
                except queue.Empty:
                    err_chan.put(TimeoutError(f"task timeout after {self.timeout}"))

            self.pool.submit(run_with_timeout)
            return err_chan.get()

    def create_timeout_pool(workers: int, timeout: float) -> TimeoutPool:
        return TimeoutPool(workers, timeout)

    pool = create_timeout_pool(2, 20 * SECOND)
    try:
        assert pool.submit(lambda: None) is None
        failure = ValueError("task failed")
        assert pool.submit(lambda: failure) is failure
        late = pool.submit(lambda: release.wait(1) and None)
        assert isinstance(late, TimeoutError) and str(late) == f"task timeout after {20 * SECOND}"
    finally:
        release.set()
        pool.pool.close()


class ParallelProcessingNode(Node):
    """The docs' ParallelProcessingNode: items processed on the node's own worker pool."""

    def __init__(self, workers: int, process_item: Callable[[Any], Any]) -> None:
        super().__init__()
        self.pool = WorkerPool(workers)
        self.process_item = process_item

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get_list("items")

    def exec(self, ctx: Context, items: Any) -> Any:
        results: list[Any] = [None] * len(items)
        errors: list[Exception | None] = [None] * len(items)
        remaining = {"n": len(items)}
        all_done = threading.Event()
        lock = threading.Lock()
        if not items:
            all_done.set()
        for index, data in enumerate(items):

            def task(index: int = index, data: Any = data) -> None:
                try:
                    results[index] = self.process_item(data)
                except Exception as err:
                    errors[index] = err
                finally:
                    with lock:
                        remaining["n"] -= 1
                        if remaining["n"] == 0:
                            all_done.set()

            self.pool.submit(task)
        while not all_done.wait(SECOND):  # wait with context
            ctx.check()
        for err in errors:
            if err is not None:
                raise RuntimeError(f"processing failed: {err}") from err
        return results

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        shared.set("results", exec_result)
        return None

    def close(self) -> None:
        self.pool.close()


def test_worker_pool__worker_pool_in_nodes() -> None:
    """### Worker Pool in Nodes — a node fans its items out to its pool; an item error fails
    the node, and a cancelled context stops the wait."""
    gate = threading.Event()

    def process_item(data: Any) -> Any:
        if data == "block":
            gate.wait(1)
        if data == "bad":
            raise ValueError("bad data")
        return str(data).upper()

    node = ParallelProcessingNode(3, process_item)
    try:
        shared = SharedStore({"items": ["a", "b", "c", "d"]})
        run(node, shared)
        assert shared["results"] == ["A", "B", "C", "D"]

        with pytest.raises(NodeError, match="processing failed: bad data"):
            run(node, SharedStore({"items": ["a", "bad"]}))

        ctx, cancel = Context.background().with_timeout(10 * SECOND)
        try:
            with pytest.raises(DeadlineExceeded):
                run(node, SharedStore({"items": ["block"]}), ctx=ctx)
        finally:
            cancel()
            gate.set()
    finally:
        node.close()


def test_worker_pool__batch_processing_with_worker_pool() -> None:
    """### Batch Processing with Worker Pool — batches of ``batchSize`` run as pool tasks
    and their results land at the right offsets."""
    batches: list[list[int]] = []
    lock = threading.Lock()

    def process_batch(batch: list[int]) -> list[int]:
        with lock:
            batches.append(batch)
        return [x + 100 for x in batch]

    def process_batches_with_pool(items: list[int], batch_size: int, workers: int) -> list[int]:
        pool = WorkerPool(workers)
        results = [0] * len(items)
        for i in range(0, len(items), batch_size):
            batch, batch_start = items[i : min(i + batch_size, len(items))], i

            def task(batch: list[int] = batch, batch_start: int = batch_start) -> None:
                for j, result in enumerate(process_batch(batch)):
                    results[batch_start + j] = result

            pool.submit(task)
        pool.wait()
        pool.close()
        return results

    assert process_batches_with_pool(list(range(10)), 3, 2) == [x + 100 for x in range(10)]
    assert sorted(len(b) for b in batches) == [1, 3, 3, 3]


def test_worker_pool__monitoring_worker_pool() -> None:
    """### Monitoring Worker Pool — submitted, completed, failed, average time and pending."""

    class MonitoredPool:
        def __init__(self, pool: WorkerPool) -> None:
            self.pool = pool
            self.lock = threading.Lock()
            self.submitted = self.completed = self.failed = 0
            self.total_time = 0.0

        def submit(self, task: Callable[[], Exception | None]) -> None:
            with self.lock:
                self.submitted += 1

            def measured() -> None:
                start = time.monotonic()
                err = task()
                duration = time.monotonic() - start
                with self.lock:
                    self.total_time += duration
                    if err is not None:
                        self.failed += 1
                    else:
                        self.completed += 1

            self.pool.submit(measured)

        def get_stats(self) -> dict[str, float]:
            with self.lock:
                finished = self.completed + self.failed
                return {
                    "submitted": self.submitted,
                    "completed": self.completed,
                    "failed": self.failed,
                    "avg_time_ms": self.total_time / finished * 1000 if finished else 0,
                    "pending": self.submitted - finished,
                }

    pool = MonitoredPool(WorkerPool(4))
    for i in range(10):
        pool.submit(lambda i=i: ValueError(i) if i % 3 == 0 else None)
    pool.pool.wait()
    stats = pool.get_stats()
    pool.pool.close()
    assert {k: stats[k] for k in ("submitted", "completed", "failed", "pending")} == {
        "submitted": 10,
        "completed": 6,
        "failed": 4,
        "pending": 0,
    }
    assert stats["avg_time_ms"] >= 0


def test_worker_pool__circuit_breaker_pool() -> None:
    """### Circuit Breaker Pool — after ``threshold`` failures submissions are refused until
    ``resetTime`` has passed; a success resets the count."""
    clock = FakeClock()

    class CircuitBreakerPool:
        def __init__(self, pool: WorkerPool, threshold: int, reset_time: float) -> None:
            self.pool, self.threshold, self.reset_time = pool, threshold, reset_time
            self.failures = 0
            self.last_failure = 0.0
            self.mu = threading.RLock()

        def submit(self, task: Callable[[], Exception | None]) -> None:
            if self.is_open():
                raise RuntimeError("circuit breaker open")

            def guarded() -> None:
                err = task()
                with self.mu:
                    if err is not None:
                        self.failures += 1
                        if self.failures >= self.threshold:
                            self.last_failure = clock()
                    else:
                        self.failures = 0  # reset on success

            self.pool.submit(guarded)

        def is_open(self) -> bool:
            with self.mu:
                if self.failures >= self.threshold:
                    if clock() - self.last_failure < self.reset_time:
                        return True
                    self.failures = 0  # reset after timeout
                return False

    ran: list[str] = []
    pool = CircuitBreakerPool(WorkerPool(2), threshold=3, reset_time=30)

    def failing() -> Exception:
        ran.append("fail")
        return RuntimeError("downstream error")

    def healthy() -> None:
        ran.append("ok")

    for task in (failing, failing, healthy, failing, failing, failing):
        pool.submit(task)
        pool.pool.wait()
    with pytest.raises(RuntimeError, match="circuit breaker open"):
        pool.submit(healthy)
    clock.advance(31)
    pool.submit(healthy)
    pool.pool.wait()
    pool.pool.close()
    assert ran == ["fail", "fail", "ok", "fail", "fail", "fail", "ok"]
    assert pool.failures == 0


def test_worker_pool__best_practices__handle_panics_and_clean_up() -> None:
    """### Best Practices — "Handle Panics" and "Clean Up": a task's exception stays on its
    future and the workers keep going; closing waits for the tasks and refuses new ones."""
    finished: list[int] = []

    def explode() -> None:
        raise ValueError("task blew up")

    with WorkerPool(2) as pool:
        bad = pool.submit(explode)
        good = [pool.submit(lambda i=i: finished.append(i) or i) for i in range(5)]
        pool.wait()
        assert isinstance(bad.exception(), ValueError)
        assert [f.result() for f in good] == list(range(5))
    assert sorted(finished) == list(range(5))
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
    pool.close()  # closing twice is harmless
