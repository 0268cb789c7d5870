"""The Flyt docs' chapter "Utilities" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


def test_utilities__to_slice() -> None:
    """### ToSlice — slices become lists, a single item a one-item list, nil an empty list."""
    assert to_slice(["a", "b", "c"]) == ["a", "b", "c"]
    assert to_slice([1, 2, 3]) == [1, 2, 3]
    assert to_slice("single item") == ["single item"]
    assert to_slice(None) == []

    data = ("x", "y")
    shared = SharedStore()
    shared.set("items", to_slice(data))
    run(BatchNode(lambda ctx, item: item * 2), shared)
    assert shared["results"] == ["xx", "yy"]


def test_utilities__to_slice__implementation_details() -> None:
    """#### Implementation Details — sequences are copied element by element (a new list);
    anything that is not a sequence, including strings, bytes and maps, is a single item."""
    original = [1, 2]
    copy = to_slice(original)
    assert copy == original and copy is not original
    assert to_slice((1, 2)) == [1, 2]
    assert to_slice(range(3)) == [0, 1, 2]
    assert sorted(to_slice({3, 1})) == [1, 3]
    assert to_slice(b"raw") == [b"raw"]
    assert to_slice({"k": 1}) == [{"k": 1}]
    assert to_slice(42) == [42]


def test_utilities__retry_helper() -> None:
    """#### Retry Helper — retries with a growing backoff and reports the last error after
    ``maxRetries`` attempts; used inside a node's exec."""
    slept: list[float] = []

    def retry_operation(operation: Callable[[], None], max_retries: int, backoff: float) -> None:
        last_err: Exception | None = None
        for i in range(max_retries):
            try:
                operation()
                return
            except Exception as err:
                last_err = err
                if i < max_retries - 1:
                    slept.append(backoff * (i + 1))
                    time.sleep(backoff * (i + 1))
        raise RuntimeError(f"operation failed after {max_retries} retries: {last_err}") from last_err

    calls: list[int] = []

    class MyNode(Node):
        def __init__(self, fail_times: int) -> None:
            super().__init__()
            self.fail_times = fail_times

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            result: list[Any] = []

            def call_api() -> None:
                calls.append(1)
                if len(calls) <= self.fail_times:
                    raise NetworkError("flaky")
                result.append("payload")

            retry_operation(call_api, 3, SECOND)
            return result[0]

    ctx, events = observed()
    run(MyNode(2), ctx=ctx)
    assert exec_results(events, "MyNode") == ["payload"]
    assert slept == [SECOND, 2 * SECOND]

    calls.clear()
    with pytest.raises(NodeError, match="operation failed after 3 retries: flaky"):
        run(MyNode(5))
    assert len(calls) == 3


def test_utilities__parallel_map() -> None:
    """#### Parallel Map — results keep the input order and at most ``workers`` run at once."""
    lock = threading.Lock()
    active = {"now": 0, "max": 0}

    def parallel_map(items: list[Any], fn: Callable[[Any], Any], workers: int) -> list[Any]:
        results: list[Any] = [None] * len(items)
        semaphore = threading.Semaphore(workers)

        def worker(index: int, data: Any) -> None:
            with semaphore:
                results[index] = fn(data)

        threads = [threading.Thread(target=worker, args=(i, item)) for i, item in enumerate(items)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def process_item(x: int) -> int:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(SECOND)
        with lock:
            active["now"] -= 1
        return x * x

    assert parallel_map(list(range(12)), process_item, 3) == [x * x for x in range(12)]
    assert 1 <= active["max"] <= 3


def test_utilities__type_safe_getters() -> None:
    """#### Type-Safe Getters — built-in getters with zero values or custom defaults, and
    ``Bind`` for complex types."""
    shared = SharedStore()
    assert (shared.get_int("user_id"), shared.get_str("name"), shared.get_bool("enabled")) == (0, "", False)
    assert shared.get_int("user_id", -1) == -1
    assert shared.get_str("name", "anonymous") == "anonymous"
    assert shared.get_bool("enabled", True) is True
    shared.set("config", {"timeout": 9})
    assert shared.bind("config", Config) == Config(timeout=9)


def test_utilities__chunk_slice() -> None:
    """#### Chunk Slice — fixed-size chunks, the last one shorter; each chunk processed."""

    def chunk_slice(items: list[Any], chunk_size: int) -> list[list[Any]]:
        return [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]

    processed: list[list[int]] = []
    chunks = chunk_slice(list(range(250)), 100)
    for chunk in chunks:
        processed.append(chunk)
    assert [len(c) for c in processed] == [100, 100, 50]
    assert [x for c in processed for x in c] == list(range(250))
    assert chunk_slice([], 3) == []


def test_utilities__merge_maps() -> None:
    """#### Merge Maps — later maps win, as with ``SharedStore.Merge``."""

    def merge_maps(*maps: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for m in maps:
            for k, v in m.items():
                result[k] = v
        return result

    default_config = {"timeout": 30, "retries": 3, "region": "eu"}
    user_config = {"timeout": 10}
    overrides = {"retries": 5}
    config = merge_maps(default_config, user_config, overrides)
    assert config == {"timeout": 10, "retries": 5, "region": "eu"}

    shared = SharedStore(default_config)
    shared.merge(user_config)
    shared.merge(overrides)
    assert shared.get_all() == config


def test_utilities__filter_slice() -> None:
    """#### Filter Slice — keeps the items the predicate accepts, in order."""

    @dataclass
    class Item:
        name: str
        valid: bool

        def is_valid(self) -> bool:
            return self.valid

    def filter_slice(items: list[Any], predicate: Callable[[Any], bool]) -> list[Any]:
        return [item for item in items if predicate(item)]

    items = [Item("a", True), Item("b", False), Item("c", True)]
    assert [i.name for i in filter_slice(items, lambda item: item.is_valid())] == ["a", "c"]
    assert filter_slice([], bool) == []


def with_timeout(ctx: Context, timeout: float, fn: Callable[[Context], Any]) -> Any:
    """The docs' generic ``WithTimeout``: run ``fn`` under a child context with a deadline
    and give up with the context's error when the deadline passes first."""
    ctx, cancel = ctx.with_timeout(timeout)
    try:
        done: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=1)

        def call() -> None:
            try:
                done.put((fn(ctx), None))
            except BaseException as err:
                done.put((None, err))

        threading.Thread(target=call, daemon=True).start()
        while True:
            try:
                value, err = done.get(timeout=SECOND)
            except queue.Empty:
                ctx.check()  # raises the deadline's error once it has passed
                continue
            if err is not None:
                raise err
            return value
    finally:
        cancel()


def test_utilities__timeout_wrapper() -> None:
    """#### Timeout Wrapper — the value when ``fn`` finishes in time, the context's error
    (``DeadlineExceeded``) when it does not; ``fn`` sees its context cancelled."""
    ctx = Context.background()
    assert with_timeout(ctx, 50 * SECOND, lambda c: "data") == "data"

    seen: list[Context] = []

    def fetch_data(c: Context) -> str:
        seen.append(c)
        c.sleep(1)  # interrupted by the deadline
        return "too late"

    with pytest.raises(DeadlineExceeded):
        with_timeout(ctx, 5 * SECOND, fetch_data)
    assert seen[0].done().wait(1) and isinstance(seen[0].error(), DeadlineExceeded)
    assert not ctx.cancelled  # the parent context is untouched


def test_utilities__pipeline_builder() -> None:
    """#### Pipeline Builder — "  Hello World  " becomes "hello_world"."""

    class Pipeline:
        def __init__(self) -> None:
            self.stages: list[Callable[[Any], Any]] = []

        def add(self, stage: Callable[[Any], Any]) -> Pipeline:
            self.stages.append(stage)
            return self

        def execute(self, value: Any) -> Any:
            result = value
            for stage in self.stages:
                result = stage(result)
            return result

    pipeline = Pipeline().add(str.strip).add(str.lower).add(lambda s: s.replace(" ", "_"))
    assert pipeline.execute("  Hello World  ") == "hello_world"


def test_utilities__error_aggregator() -> None:
    """#### Error Aggregator — nil errors are ignored, one error is returned as is, several
    are summarised with their count; safe to add from many threads."""

    class ErrorAggregator:
        def __init__(self) -> None:
            self.errors: list[Exception] = []
            self.mu = threading.Lock()

        def add(self, err: Exception | None) -> None:
            if err is None:
                return
            with self.mu:
                self.errors.append(err)

        def error(self) -> Exception | None:
            with self.mu:
                if not self.errors:
                    return None
                if len(self.errors) == 1:
                    return self.errors[0]
                return RuntimeError(f"multiple errors ({len(self.errors)}): {[str(e) for e in self.errors]}")

    aggregator = ErrorAggregator()
    aggregator.add(None)
    assert aggregator.error() is None
    single = ValueError("one")
    aggregator.add(single)
    assert aggregator.error() is single

    def process_item(item: int) -> Exception | None:
        return ValueError(f"item {item}") if item % 2 else None

    many = ErrorAggregator()
    threads = [threading.Thread(target=lambda i=i: many.add(process_item(i))) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert str(many.error()).startswith("multiple errors (5): ")


@dataclass(frozen=True)
class ContextKey:
    """Go's ``type ContextKey string``: a key type of its own, so it never collides with a
    plain string key of the same text."""

    name: str


REQUEST_ID_KEY = ContextKey("request_id")
USER_ID_KEY = ContextKey("user_id")


def with_request_id(ctx: Context, request_id: str) -> Context:
    return ctx.with_value(REQUEST_ID_KEY, request_id)


def get_request_id(ctx: Context) -> tuple[str, bool]:
    value = ctx.value(REQUEST_ID_KEY)
    return (value, True) if isinstance(value, str) else ("", False)


def test_utilities__context_values_helper(caplog: pytest.LogCaptureFixture) -> None:
    """#### Context Values Helper — a request id put on the context reaches the nodes'
    exec, through nested flows; without it the lookup reports not found."""

    class LoggingNode(Node):
        def exec(self, ctx: Context, prep_result: Any) -> Any:
            request_id, _ = get_request_id(ctx)
            log.info("[%s] Processing: %s", request_id, prep_result)
            return get_request_id(ctx)

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("seen", exec_result)
            return None

    node = LoggingNode()
    flow = Flow(Flow(node))
    shared = SharedStore()
    ctx = with_request_id(Context.background(), "req-42").with_value("request_id", "plain")
    with caplog.at_level(logging.INFO, logger=log.name):
        flow.run(shared, ctx=ctx)
    assert shared["seen"] == ("req-42", True)
    assert caplog.records[-1].getMessage() == "[req-42] Processing: None"

    flow.run(shared)
    assert shared["seen"] == ("", False)


def test_utilities__debounce_function() -> None:
    """#### Debounce Function — three quick calls, only the last one executes (after the delay)."""
    calls: list[float] = []
    fired = threading.Event()

    def debounce(fn: Callable[[], None], delay: float) -> Callable[[], None]:
        timer: threading.Timer | None = None
        mu = threading.Lock()

        def debounced() -> None:
            nonlocal timer
            with mu:
                if timer is not None:
                    timer.cancel()
                timer = threading.Timer(delay, fn)
                timer.start()

        return debounced

    def save_to_database() -> None:
        calls.append(time.monotonic())
        fired.set()

    save_debounced = debounce(save_to_database, 10 * SECOND)
    save_debounced()
    save_debounced()
    save_debounced()
    assert fired.wait(1)
    time.sleep(20 * SECOND)  # longer than the delay: a cancelled timer would have fired by now
    assert len(calls) == 1


def test_utilities__mock_shared_store() -> None:
    """#### Mock SharedStore — a map-backed stand-in with Get (value, found) and Set, enough
    to call a node's phases directly in a unit test."""

    class MockSharedStore:
        def __init__(self, initial: dict[str, Any]) -> None:
            self.data = initial
            self.mu = threading.RLock()

        def get(self, key: str) -> tuple[Any, bool]:
            with self.mu:
                return self.data.get(key), key in self.data

        def set(self, key: str, value: Any) -> None:
            with self.mu:
                self.data[key] = value

    mock = MockSharedStore({"name": "ada"})
    assert mock.get("name") == ("ada", True)
    assert mock.get("missing") == (None, False)

    node = Node(prep=lambda ctx, s: s.get("name")[0], post=lambda ctx, s, p, e: s.set("greeting", f"hi {p}"))
    ctx = Context.background()
    prep_result = node.prep(ctx, mock)
    node.post(ctx, mock, prep_result, node.exec(ctx, prep_result))
    assert mock.get("greeting") == ("hi ada", True)


def test_utilities__test_node_builder() -> None:
    """#### Test Node Builder — a one-liner node from an exec function, for tests."""

    def make_test_node(exec_fn: Callable[[Context, Any], Any]) -> Node:
        return Node(exec=exec_fn)

    def returns_test_result(ctx: Context, prep_input: Any) -> Any:
        return "test_result"

    node = make_test_node(returns_test_result)
    ctx, events = observed()
    assert run(node, ctx=ctx) == DEFAULT_ACTION
    assert exec_results(events, "returns_test_result") == ["test_result"]
