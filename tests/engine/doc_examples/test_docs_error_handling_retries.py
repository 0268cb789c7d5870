"""The Flyt docs' chapter "Error Handling & Retries" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


@pytest.mark.parametrize(("healthy_after", "calls", "action"), [(None, 3, "degraded"), (2, 2, DEFAULT_ACTION)])
def test_error_handling__basic_retry_configuration(healthy_after: int | None, calls: int, action: str) -> None:
    """### Basic Retry Configuration — up to 3 attempts a second apart; after the last
    failure the fallback is called once and its nil result is handled in post."""
    attempts: list[int] = []
    fallbacks: list[BaseException] = []

    def call_flakey_api() -> Any:
        attempts.append(1)
        if len(attempts) != healthy_after:
            raise NetworkError("upstream down")
        return {"ok": True}

    def fallback(prep_result: Any, err: BaseException) -> Any:
        fallbacks.append(err)
        return None  # return nil to handle in post

    def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("api_result", exec_result)
        return "degraded" if exec_result is None else DEFAULT_ACTION

    node = Node(exec=lambda ctx, p: call_flakey_api(), max_retries=3, wait=SECOND, fallback=fallback, post=post)
    ctx, events = observed()
    shared = SharedStore()
    assert run(node, shared, ctx=ctx) == action
    assert len(attempts) == calls
    if healthy_after is None:
        assert len(fallbacks) == 1 and isinstance(fallbacks[0], NetworkError)
        assert [f.wait for f in failures(events)] == [SECOND, SECOND, 0.0]
        assert sum(isinstance(e, FallbackUsed) for e in events) == 1
        assert shared["api_result"] is None
    else:
        assert fallbacks == []
        assert shared["api_result"] == {"ok": True}


class BackoffNode(Node):
    """The docs' BackoffNode: five attempts, waiting 2^attempt (scaled) seconds."""

    def __init__(self, call_api: Callable[[], Any]) -> None:
        super().__init__()
        self.attempt = 0
        self.call_api = call_api

    def get_max_retries(self) -> int:
        return 5

    def get_wait(self) -> float:
        return (2**self.attempt) * SECOND

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        self.attempt += 1
        try:
            result = self.call_api()
        except Exception as err:
            log.info("Attempt %d failed: %s", self.attempt, err)
            raise
        self.attempt = 0  # reset on success
        return result


def test_error_handling__exponential_backoff() -> None:
    """### Exponential Backoff — ``GetWait`` is read before every retry, so the waits double
    (2, 4, 8 scaled seconds: ``attempt`` was already incremented by the failed exec; the
    snippet's comment says 1s, 2s, ... but its code starts at 2s)."""
    calls: list[int] = []

    def call_api() -> Any:
        calls.append(1)
        if len(calls) <= 3:
            raise NetworkError("busy")
        return "data"

    node = BackoffNode(call_api)
    assert isinstance(node, RetryableNode)
    ctx, events = observed()
    run(node, ctx=ctx)
    assert len(calls) == 4
    assert [f.wait for f in failures(events)] == [2 * SECOND, 4 * SECOND, 8 * SECOND]
    assert exec_results(events, "BackoffNode") == ["data"]
    assert node.attempt == 0


def test_error_handling__exponential_backoff__gives_up_after_five() -> None:
    """### Exponential Backoff — ``GetMaxRetries`` = 5: five attempts, then the run fails."""
    calls: list[int] = []

    def call_api() -> Any:
        calls.append(1)
        raise NetworkError("down")

    ctx, events = observed()
    with pytest.raises(NodeError) as info:
        run(BackoffNode(call_api), ctx=ctx)
    assert len(calls) == 5 and info.value.attempts == 5
    assert [f.wait for f in failures(events)] == [2 * SECOND, 4 * SECOND, 8 * SECOND, 16 * SECOND, 0.0]


class CircuitBreakerNode(Node):
    """The docs' CircuitBreakerNode (Error Handling chapter), with an injectable clock."""

    def __init__(self, call_service: Callable[[], Any], clock: FakeClock) -> None:
        super().__init__()
        self.call_service = call_service
        self.clock = clock
        self.failures = 0
        self.last_failure = 0.0
        self.threshold = 5
        self.timeout = 30.0

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        if self.failures >= self.threshold:
            if self.clock() - self.last_failure < self.timeout:
                raise RuntimeError("circuit breaker open")
            self.failures = 0  # reset after timeout
        try:
            result = self.call_service()
        except Exception:
            self.failures += 1
            self.last_failure = self.clock()
            raise
        self.failures = 0  # reset on success
        return result


def test_error_handling__circuit_breaker_pattern() -> None:
    """### Circuit Breaker Pattern — after 5 failures the circuit opens and the service is
    not called until the 30 s timeout has passed; a success closes it again."""
    clock = FakeClock()
    service = {"calls": 0, "healthy": False}

    def call_service() -> Any:
        service["calls"] += 1
        if not service["healthy"]:
            raise NetworkError("service down")
        return "ok"

    node = CircuitBreakerNode(call_service, clock)
    for _ in range(5):
        with pytest.raises(NodeError) as info:
            run(node)
        assert isinstance(info.value.__cause__, NetworkError)
    assert service["calls"] == 5

    clock.advance(29)
    with pytest.raises(NodeError, match="circuit breaker open"):
        run(node)
    assert service["calls"] == 5  # the open circuit spared the service

    clock.advance(2)
    service["healthy"] = True
    ctx, events = observed()
    run(node, ctx=ctx)
    assert exec_results(events, "CircuitBreakerNode") == ["ok"]
    assert node.failures == 0 and service["calls"] == 6


class CachedAPINode(Node):
    """The docs' CachedAPINode (Error Handling chapter): cache fresh data, serve it on failure."""

    def __init__(self, fetch_from_api: Callable[[str], Any]) -> None:
        super().__init__()
        self.fetch_from_api = fetch_from_api
        self.cache: dict[str, Any] = {}
        self.lock = threading.Lock()

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get_str("key")

    def exec(self, ctx: Context, key: Any) -> Any:
        data = self.fetch_from_api(key)
        with self.lock:
            self.cache[key] = data
        return data

    def exec_fallback(self, key: Any, error: BaseException) -> Any:
        with self.lock:
            if key in self.cache:
                log.info("Returning cached data for %s due to error: %s", key, error)
                return self.cache[key]
        return {"status": "unavailable", "cached": False}

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        shared.set("data", exec_result)
        return None


def test_error_handling__fallback_on_failure() -> None:
    """### Fallback on Failure — fresh data is cached; when the API fails the cached copy is
    returned, and a key never cached gets the ``unavailable`` default."""
    api = {"up": True}

    def fetch_from_api(key: str) -> Any:
        if not api["up"]:
            raise NetworkError("api down")
        return {"key": key, "fresh": True}

    node = CachedAPINode(fetch_from_api)
    shared = SharedStore({"key": "user:1"})
    run(node, shared)
    assert shared["data"] == {"key": "user:1", "fresh": True}

    api["up"] = False
    shared.set("data", None)
    run(node, shared)
    assert shared["data"] == {"key": "user:1", "fresh": True}  # from the cache

    other = SharedStore({"key": "user:2"})
    run(node, other)
    assert other["data"] == {"status": "unavailable", "cached": False}


def test_error_handling__error_aggregation() -> None:
    """### Error Aggregation — a ``BatchError`` carries every item's error and a message of
    the form "2/5 items failed", the same form the engine's BatchNode uses."""

    def process_item(item: int) -> None:
        if item < 0:
            raise ValueError(f"negative value: {item}")

    def process_batch(ctx: Context, items: list[int]) -> None:
        errs: list[BaseException | None] = []
        for i, item in enumerate(items):
            try:
                process_item(item)
            except ValueError as err:
                errs.append(RuntimeError(f"item {i}: {err}"))
        if errs:
            raise BatchError(f"{len(errs)}/{len(items)} items failed", errs, [])

    items = [1, -2, 3, -4, 5]
    with pytest.raises(BatchError) as info:
        process_batch(Context.background(), items)
    assert isinstance(info.value, FlytError)
    assert info.value.message == "2/5 items failed"
    assert [str(e) for e in info.value.errors] == ["item 1: negative value: -2", "item 3: negative value: -4"]

    shared = SharedStore({"items": items})
    with pytest.raises(BatchError) as engine:
        run(BatchNode(lambda ctx, item: process_item(item)), shared)
    assert engine.value.message == info.value.message


def test_error_handling__retry_with_jitter() -> None:
    """### Retry with Jitter — each wait is ``attempt`` seconds plus up to one second of
    random jitter, and the engine waits exactly what ``GetWait`` returned."""
    returned: list[float] = []

    class JitterNode(Node):
        max_retries = 3

        def __init__(self) -> None:
            super().__init__()
            self.attempt = 0
            self.rand = random.Random(7)

        def get_wait(self) -> float:
            base = SECOND * self.attempt
            jitter = self.rand.randrange(1000) * SECOND / 1000
            returned.append(base + jitter)
            return base + jitter

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            self.attempt += 1
            if self.attempt < 3:
                raise NetworkError("thundering herd")
            return "ok"

    ctx, events = observed()
    run(JitterNode(), ctx=ctx)
    waits = [f.wait for f in failures(events)]
    assert waits == returned and len(waits) == 2
    assert SECOND <= waits[0] < 2 * SECOND and 2 * SECOND <= waits[1] < 3 * SECOND


class PermanentError(Exception):
    """A business-logic failure that retrying cannot fix."""


class SelectiveRetryNode(Node):
    """The docs' SelectiveRetryNode: network errors are retried, anything else is permanent."""

    def __init__(self, call_api: Callable[[], Any]) -> None:
        super().__init__()
        self.call_api = call_api
        self.last_error: BaseException | None = None

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        try:
            result = self.call_api()
        except NetworkError as err:
            self.last_error = err
            raise  # will be retried
        except Exception as err:
            self.last_error = PermanentError(f"permanent error: {err}")
            raise self.last_error from err  # don't retry business logic errors
        self.last_error = None
        return result

    def get_max_retries(self) -> int:
        if self.last_error is not None and not isinstance(self.last_error, NetworkError):
            return 0  # don't retry
        return 3


@pytest.mark.parametrize(
    ("errors", "calls", "outcome"),
    [
        ([NetworkError("reset")], 2, "ok"),
        ([NetworkError("reset")] * 3, 3, NetworkError),
        ([ValueError("insufficient funds")], 1, PermanentError),
    ],
)
def test_error_handling__selective_retry(errors: list[Exception], calls: int, outcome: Any) -> None:
    """### Selective Retry — network errors are retried (3 attempts), a business error
    stops retrying at once because ``GetMaxRetries`` is read again before each retry."""
    made: list[int] = []

    def call_api() -> Any:
        made.append(1)
        if len(made) <= len(errors):
            raise errors[len(made) - 1]
        return "ok"

    node = SelectiveRetryNode(call_api)
    ctx, events = observed()
    if outcome == "ok":
        run(node, ctx=ctx)
        assert exec_results(events, "SelectiveRetryNode") == ["ok"]
    else:
        with pytest.raises(NodeError) as info:
            run(node, ctx=ctx)
        assert isinstance(info.value.__cause__, outcome)
        assert info.value.attempts == calls
    assert len(made) == calls


@dataclass
class ErrorContext:
    node: str
    action: str
    input: Any
    error: BaseException
    timestamp: float
    attempts: int


@pytest.mark.parametrize(("fail_times", "action", "runs"), [(5, "error", 3), (1, DEFAULT_ACTION, 2)])
def test_error_handling__error_context(fail_times: int, action: str, runs: int) -> None:
    """### Error Context — a failure is recorded with node, input and attempt count; post
    loops through ``retry`` while attempts remain, then returns ``error``."""

    class DetailedErrorNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.attempts = 0
            self.max_retries_allowed = 3

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("payload")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            self.attempts += 1
            if self.attempts <= fail_times:
                raise RuntimeError(f"attempt {self.attempts} failed")
            return "done"

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            return error

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if isinstance(exec_result, Exception):
                shared.set(
                    "last_error",
                    ErrorContext("DetailedErrorNode", "process", prep_result, exec_result, time.time(), self.attempts),
                )
                if self.attempts < self.max_retries_allowed:
                    return "retry"
                return "error"
            return DEFAULT_ACTION

    node = DetailedErrorNode()
    shared = SharedStore({"payload": {"id": 1}})
    assert Flow(node).connect(node, "retry", node).run(shared) == action
    assert node.attempts == runs
    error_ctx = shared.bind("last_error", ErrorContext)
    assert (error_ctx.node, error_ctx.input) == ("DetailedErrorNode", {"id": 1})
    assert error_ctx.attempts == min(runs, fail_times)
    assert str(error_ctx.error) == f"attempt {error_ctx.attempts} failed"


class TimeoutNode(Node):
    """The docs' TimeoutNode: the operation runs elsewhere; exec gives up at its deadline."""

    def __init__(self, operation: Callable[[], Any], timeout: float) -> None:
        super().__init__()
        self.operation = operation
        self.timeout = timeout

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        ctx, cancel = ctx.with_timeout(self.timeout)
        try:
            outcome: queue.Queue[tuple[str, Any]] = queue.Queue()

            def work() -> None:
                try:
                    outcome.put(("result", self.operation()))
                except Exception as err:
                    outcome.put(("error", err))

            threading.Thread(target=work, daemon=True).start()
            while True:
                try:
                    kind, value = outcome.get(timeout=SECOND)
                except queue.Empty:
                    if ctx.cancelled:
                        raise RuntimeError(f"operation timed out: {ctx.error()}") from ctx.error()
                    continue
                if kind == "error":
                    raise value
                return value
        finally:
            cancel()


def test_error_handling__timeout_handling() -> None:
    """### Timeout Handling — a hanging operation fails the node with "operation timed
    out" (caused by the deadline); a quick one returns its result; its error propagates."""
    release = threading.Event()

    def long_running_operation() -> Any:
        release.wait(1)
        return "late"

    try:
        with pytest.raises(NodeError, match="operation timed out") as info:
            run(TimeoutNode(long_running_operation, 30 * SECOND))
        assert isinstance(info.value.__cause__.__cause__, DeadlineExceeded)
    finally:
        release.set()

    ctx, events = observed()
    run(TimeoutNode(lambda: "quick", 30 * SECOND), ctx=ctx)
    assert exec_results(events, "TimeoutNode") == ["quick"]

    def broken() -> Any:
        raise ValueError("bad request")

    with pytest.raises(NodeError) as failed:
        run(TimeoutNode(broken, 30 * SECOND))
    assert isinstance(failed.value.__cause__, ValueError)
