"""The Flyt docs' chapter "Batch Processing" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported_batch import *


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
