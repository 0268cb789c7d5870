"""The Flyt docs' chapter "Fallback on Failure" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


class DefaultValueNode(Node):
    """The docs' DefaultValueNode: a safe default when the primary source fails."""

    def __init__(self, fetch_from_primary_source: Callable[[], Any]) -> None:
        super().__init__()
        self.fetch = fetch_from_primary_source

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        return self.fetch()  # an exception here triggers the fallback

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        log.info("Primary source failed: %s, returning default", error)
        return {"status": "degraded", "data": "default_value", "error": str(error)}

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        shared.set("result", exec_result)
        return None


def test_fallback_on_failure__fallback_node_interface() -> None:
    """### FallbackNode Interface — a node with ``ExecFallback`` satisfies the interface;
    so does every Node (its default re-raises), and an unrelated object does not."""
    assert isinstance(DefaultValueNode(lambda: 1), FallbackNode)
    assert isinstance(Node(), FallbackNode)
    assert not isinstance(object(), FallbackNode)

    with pytest.raises(NodeError) as info:
        run(Node(exec=lambda ctx, p: 1 / 0))  # the default fallback re-raises the error
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_fallback_on_failure__basic_fallback() -> None:
    """### Basic Fallback — the failure becomes a degraded default result."""

    def fetch_from_primary_source() -> Any:
        raise NetworkError("primary down")

    shared = SharedStore()
    ctx, events = observed()
    assert run(DefaultValueNode(fetch_from_primary_source), shared, ctx=ctx) == DEFAULT_ACTION
    assert shared["result"] == {"status": "degraded", "data": "default_value", "error": "primary down"}
    assert [type(e.error) for e in events if isinstance(e, FallbackUsed)] == [NetworkError]

    healthy = SharedStore()
    run(DefaultValueNode(lambda: {"status": "ok"}), healthy)
    assert healthy["result"] == {"status": "ok"}


def test_fallback_on_failure__cached_fallback() -> None:
    """### Cached Fallback — on failure the cached entry comes back with its age and the
    error; with nothing cached the fallback itself fails ("no fallback available")."""
    clock = FakeClock()
    api = {"up": True}

    @dataclass
    class CacheEntry:
        data: Any
        timestamp: float

    def fetch_from_api(key: str) -> Any:
        if not api["up"]:
            raise NetworkError("api down")
        return f"fresh {key}"

    class CachedAPINode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.cache: dict[str, CacheEntry] = {}
            self.mu = threading.RLock()

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_str("key")

        def exec(self, ctx: Context, key: Any) -> Any:
            data = fetch_from_api(key)
            with self.mu:
                self.cache[key] = CacheEntry(data, clock())
            return data

        def exec_fallback(self, key: Any, error: BaseException) -> Any:
            with self.mu:
                entry = self.cache.get(key)
            if entry is not None:
                age = clock() - entry.timestamp
                return {"data": entry.data, "cached": True, "cache_age": age, "error": str(error)}
            raise RuntimeError(f"no fallback available: {error}") from error

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("result", exec_result)
            return None

    node = CachedAPINode()
    shared = SharedStore({"key": "k1"})
    run(node, shared)
    assert shared["result"] == "fresh k1"

    api["up"] = False
    clock.advance(5)
    run(node, shared)
    assert shared["result"] == {"data": "fresh k1", "cached": True, "cache_age": 5.0, "error": "api down"}

    with pytest.raises(NodeError, match="no fallback available") as info:
        run(node, SharedStore({"key": "k2"}))
    assert info.value.phase == "exec"
    assert isinstance(info.value.__cause__.__cause__, NetworkError)


def test_fallback_on_failure__multi_level_fallback() -> None:
    """### Multi-Level Fallback — primary, then secondary, then the last good data, then a
    minimal default."""
    up = {"primary": True, "secondary": True}

    def fetch_from_url(url: str) -> Any:
        if not up[url]:
            raise NetworkError(f"{url} down")
        return {"source": url}

    class MultiLevelFallbackNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.primary_url, self.secondary_url = "primary", "secondary"
            self.cache: dict[str, Any] = {}

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            data = fetch_from_url(self.primary_url)
            self.cache["last_good"] = data
            return data

        def exec_fallback(self, prep_result: Any, primary_err: BaseException) -> Any:
            try:
                return fetch_from_url(self.secondary_url)  # level 1
            except NetworkError:
                pass
            if "last_good" in self.cache:  # level 2
                return self.cache["last_good"]
            return {"status": "unavailable", "message": "Service temporarily unavailable"}  # level 3

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("result", exec_result)
            return None

    def result_of(node: Node) -> Any:
        shared = SharedStore()
        run(node, shared)
        return shared["result"]

    node = MultiLevelFallbackNode()
    assert result_of(node) == {"source": "primary"}
    up["primary"] = False
    assert result_of(node) == {"source": "secondary"}
    up["secondary"] = False
    assert result_of(node) == {"source": "primary"}  # the last good data
    assert result_of(MultiLevelFallbackNode()) == {
        "status": "unavailable",
        "message": "Service temporarily unavailable",
    }


def test_fallback_on_failure__partial_fallback() -> None:
    """### Partial Fallback — when some items fail the fallback returns the partial results
    with the counts of successes and errors."""

    def process_item(item: int) -> int:
        if item < 0:
            raise ValueError(f"bad item {item}")
        return item * 10

    class BatchProcessorNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.results: list[int] = []
            self.errors: list[BaseException] = []

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, items: Any) -> Any:
            self.results, self.errors = [], []
            for item in items:
                try:
                    self.results.append(process_item(item))
                except ValueError as err:
                    self.errors.append(err)
            if self.errors:
                raise RuntimeError(f"processing failed: {len(self.errors)} errors")
            return self.results

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            return {
                "partial_results": self.results,
                "success_count": len(self.results),
                "error_count": len(self.errors),
                "errors": self.errors,
                "status": "partial_success",
            }

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("outcome", exec_result)
            return None

    shared = SharedStore({"items": [1, -1, 2, -3, 4]})
    run(BatchProcessorNode(), shared)
    outcome = shared["outcome"]
    assert outcome["partial_results"] == [10, 20, 40]
    assert (outcome["success_count"], outcome["error_count"], outcome["status"]) == (3, 2, "partial_success")
    assert [str(e) for e in outcome["errors"]] == ["bad item -1", "bad item -3"]

    clean = SharedStore({"items": [1, 2]})
    run(BatchProcessorNode(), clean)
    assert clean["outcome"] == [10, 20]


def test_fallback_on_failure__circuit_breaker_fallback() -> None:
    """### Circuit Breaker Fallback — below the threshold a failure degrades; once open the
    service is skipped and the fallback reports ``circuit_open`` with ``retry_after``."""
    clock = FakeClock()
    service = {"calls": 0, "healthy": False}

    def call_service(prep_result: Any) -> Any:
        service["calls"] += 1
        if not service["healthy"]:
            raise NetworkError("down")
        return "ok"

    class CircuitBreakerNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.failures, self.last_failure = 0, 0.0
            self.threshold, self.timeout = 2, 10.0
            self.fallback_msg = "Using cached response"

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            if self.is_circuit_open():
                raise RuntimeError("circuit breaker open")
            try:
                result = call_service(prep_result)
            except NetworkError:
                self.record_failure()
                raise
            self.reset()
            return result

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            if self.is_circuit_open():
                return {
                    "status": "circuit_open",
                    "message": self.fallback_msg,
                    "retry_after": self.timeout - (clock() - self.last_failure),
                }
            return {"status": "degraded", "message": "Service temporarily unavailable"}

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("response", exec_result)
            return None

        def is_circuit_open(self) -> bool:
            return self.failures >= self.threshold and clock() - self.last_failure < self.timeout

        def record_failure(self) -> None:
            self.failures += 1
            self.last_failure = clock()

        def reset(self) -> None:
            self.failures = 0

    node = CircuitBreakerNode()

    def respond() -> Any:
        shared = SharedStore()
        run(node, shared)
        return shared["response"]

    assert respond()["status"] == "degraded"
    assert respond()["status"] == "circuit_open"  # the second failure opened it
    clock.advance(4)
    assert respond() == {"status": "circuit_open", "message": "Using cached response", "retry_after": 6.0}
    assert service["calls"] == 2
    clock.advance(7)
    service["healthy"] = True
    assert respond() == "ok"
    assert node.failures == 0 and service["calls"] == 3


def test_fallback_on_failure__fallback_with_metrics() -> None:
    """### Fallback with Metrics — every fallback is counted and the fallback rate logged."""
    outcomes = iter([True, False, False, True, False])

    class MetricsFallbackNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.primary_calls = 0
            self.fallback_calls = 0
            self.last_fallback = 0.0
            self.rates: list[float] = []

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            self.primary_calls += 1
            if not next(outcomes):
                raise NetworkError("primary failed")
            return {"source": "primary"}

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            self.fallback_calls += 1
            self.last_fallback = time.monotonic()
            total = self.primary_calls + self.fallback_calls
            self.rates.append(self.fallback_calls / total * 100)
            log.info("Fallback metrics - Rate: %.2f%%, Total fallbacks: %d", self.rates[-1], self.fallback_calls)
            return {"source": "default"}

    node = MetricsFallbackNode()
    for _ in range(5):
        run(node)
    assert (node.primary_calls, node.fallback_calls) == (5, 3)
    assert [round(r, 2) for r in node.rates] == [round(1 / 3 * 100, 2), 40.0, round(3 / 8 * 100, 2)]


class ErrTimeout(Exception):
    pass


class ErrRateLimit(Exception):
    pass


class ErrNotFound(Exception):
    pass


def wrapped(outer: str, cause: Exception) -> Exception:
    """Go's ``fmt.Errorf("...: %w", err)``: a new error whose cause is ``cause``."""
    error = RuntimeError(f"{outer}: {cause}")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ErrTimeout("slow"), {"cached": "response"}),
        (wrapped("fetch user", ErrTimeout("slow")), {"cached": "response"}),
        (ErrRateLimit("429"), {"error": "rate_limited", "retry_after": 60}),
        (ErrNotFound("404"), {"found": False, "data": None}),
        (ValueError("boom"), {"status": "error", "message": "Service unavailable"}),
    ],
)
def test_fallback_on_failure__conditional_fallback(error: Exception, expected: dict[str, Any]) -> None:
    """### Conditional Fallback — the fallback chosen by error type (``errors.Is`` also
    sees wrapped causes)."""

    class ConditionalFallbackNode(Node):
        def exec(self, ctx: Context, prep_result: Any) -> Any:
            raise error

        def get_cached_response(self) -> Any:
            return {"cached": "response"}

        def exec_fallback(self, prep_result: Any, err: BaseException) -> Any:
            if caused_by(err, ErrTimeout):
                return self.get_cached_response()
            if caused_by(err, ErrRateLimit):
                return {"error": "rate_limited", "retry_after": 60}
            if caused_by(err, ErrNotFound):
                return {"found": False, "data": None}
            return {"status": "error", "message": "Service unavailable"}

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("response", exec_result)
            return None

    shared = SharedStore()
    run(ConditionalFallbackNode(), shared)
    assert shared["response"] == expected
