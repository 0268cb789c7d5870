"""The Flyt docs' chapter "Custom Node Types" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


def test_custom_node_types__basic_custom_node() -> None:
    """### Basic Custom Node — config and state live on the node; post stores the state and
    returns ``continue`` until the state is complete."""

    class State:
        def __init__(self) -> None:
            self.inputs: list[str] = []
            self.results: list[str] = []

        def prepare(self, value: str) -> None:
            self.inputs.append(value)

        def update(self, result: str) -> None:
            self.results.append(result)

        def is_complete(self) -> bool:
            return len(self.results) >= 3

    class CustomNode(Node):
        def __init__(self, config: Config) -> None:
            super().__init__()
            self.config = config
            self.state = State()

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            value = shared.get_str("input")
            self.state.prepare(value)
            return value

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            result = self.process_with_config(prep_result, self.config)
            self.state.update(result)
            return result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("state", self.state)
            if self.state.is_complete():
                return "complete"
            return "continue"

        def process_with_config(self, value: str, config: Config) -> str:
            return f"{value}@{config.timeout}"

    node = CustomNode(Config(timeout=5))
    shared = SharedStore({"input": "job"})
    assert Flow(node).connect(node, "continue", node).run(shared) == "complete"
    assert shared["state"] is node.state
    assert node.state.results == ["job@5"] * 3


def test_custom_node_types__stateful_nodes() -> None:
    """### Stateful Nodes — the accumulator returns nil until ``maxSize`` values arrived,
    then the batch (count and data) and starts over."""

    class AccumulatorNode(Node):
        def __init__(self, max_size: int) -> None:
            super().__init__()
            self.mu = threading.Lock()
            self.values: list[Any] = []
            self.max_size = max_size

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("value")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            with self.mu:
                self.values.append(prep_result)
                if len(self.values) >= self.max_size:
                    result = self.process_batch(self.values)
                    self.values = []  # clear buffer
                    return result
                return None

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("batch", exec_result)
            return None

        def process_batch(self, values: list[Any]) -> Any:
            return {"count": len(values), "data": list(values)}

    node = AccumulatorNode(3)
    outputs = []
    for value in range(7):
        shared = SharedStore({"value": value})
        run(node, shared)
        outputs.append(shared["batch"])
    assert outputs == [None, None, {"count": 3, "data": [0, 1, 2]}, None, None, {"count": 3, "data": [3, 4, 5]}, None]
    assert node.values == [6]


def test_custom_node_types__resource_managing_nodes() -> None:
    """### Resource-Managing Nodes — statements are prepared once per SQL text (also under
    concurrent use), queries run with arguments, and Close releases everything."""

    @dataclass
    class QueryRequest:
        sql: str
        args: tuple[Any, ...] = ()

    class Statement:
        def __init__(self, pool: sqlite3.Connection, sql: str) -> None:
            self.pool, self.sql, self.closed = pool, sql, False

        def query(self, ctx: Context, *args: Any) -> list[tuple[Any, ...]]:
            ctx.check()
            return self.pool.execute(self.sql, args).fetchall()

    class DatabaseNode(Node):
        def __init__(self, dsn: str) -> None:
            super().__init__()
            self.pool = sqlite3.connect(dsn, check_same_thread=False)
            self.pool.executescript("CREATE TABLE kv (k TEXT, v INTEGER); INSERT INTO kv VALUES ('a', 1), ('b', 2);")
            self.prepared: dict[str, Statement] = {}
            self.mu = threading.RLock()
            self.prepare_calls = 0

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.bind("query", QueryRequest)

        def exec(self, ctx: Context, query: Any) -> Any:
            stmt = self.get_or_prepare(query.sql)
            with self.mu:  # one sqlite connection: serialise its use
                return stmt.query(ctx, *query.args)

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("rows", exec_result)
            return None

        def get_or_prepare(self, sql: str) -> Statement:
            with self.mu:
                stmt = self.prepared.get(sql)
                if stmt is None:
                    self.prepare_calls += 1
                    stmt = self.prepared[sql] = Statement(self.pool, sql)
                return stmt

        def close(self) -> None:
            with self.mu:
                for stmt in self.prepared.values():
                    stmt.closed = True
                self.pool.close()

    node = DatabaseNode(":memory:")
    results: list[Any] = []
    lock = threading.Lock()

    def query(key: str) -> None:
        shared = SharedStore({"query": {"sql": "SELECT v FROM kv WHERE k = ?", "args": (key,)}})
        run(node, shared)
        with lock:
            results.append((key, shared["rows"]))

    threads = [threading.Thread(target=query, args=(k,)) for k in "abab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [("a", [(1,)]), ("a", [(1,)]), ("b", [(2,)]), ("b", [(2,)])]
    assert node.prepare_calls == 1
    node.close()
    assert all(stmt.closed for stmt in node.prepared.values())
    with pytest.raises(NodeError) as info:
        query("a")
    assert isinstance(info.value.__cause__, sqlite3.ProgrammingError)


class AuthError(Exception):
    pass


class RateLimitError(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after}")
        self.retry_after = retry_after


class SmartRetryNode(Node):
    """The docs' SmartRetryNode: retry count and wait chosen from the last error."""

    def __init__(self, perform_operation: Callable[[], Any]) -> None:
        super().__init__()
        self.attempts = 0
        self.last_error: BaseException | None = None
        self.backoff_factor = 1.5
        self.perform_operation = perform_operation
        self.rand = random.Random(3)

    def get_max_retries(self) -> int:
        if self.last_error is not None:
            if isinstance(self.last_error, NetworkError):
                return 5  # more retries for network issues
            if isinstance(self.last_error, RateLimitError):
                return 3  # fewer retries for rate limits
            if isinstance(self.last_error, AuthError):
                return 0  # no retries for auth errors
            return 2
        return 3

    def get_wait(self) -> float:
        if isinstance(self.last_error, RateLimitError) and self.last_error.retry_after > 0:
            return self.last_error.retry_after
        base = self.backoff_factor**self.attempts
        jitter = self.rand.random() * 0.3 * base  # 30% jitter
        return (base + jitter) * SECOND

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        self.attempts += 1
        try:
            result = self.perform_operation()
        except Exception as err:
            self.last_error = err
            raise
        self.attempts = 0  # reset on success
        self.last_error = None
        return result


@pytest.mark.parametrize(
    ("error", "attempts"),
    [(NetworkError("reset"), 5), (RateLimitError(2 * SECOND), 3), (AuthError("bad token"), 1), (ValueError("?"), 2)],
)
def test_custom_node_types__retryable_node_implementation(error: Exception, attempts: int) -> None:
    """### RetryableNode Implementation — the attempt budget follows the last error (network
    5, rate limit 3, auth none, other 2); rate limits wait ``retry-after``, the rest back
    off exponentially with up to 30% jitter."""
    calls: list[int] = []

    def perform_operation() -> Any:
        calls.append(1)
        raise error

    node = SmartRetryNode(perform_operation)
    ctx, events = observed()
    with pytest.raises(NodeError) as info:
        run(node, ctx=ctx)
    assert len(calls) == attempts == info.value.attempts
    assert info.value.__cause__ is error
    waits = [f.wait for f in failures(events)][:-1]  # the last failure waits for nothing
    assert len(waits) == attempts - 1
    for n, wait in enumerate(waits, start=1):
        if isinstance(error, RateLimitError):
            assert wait == error.retry_after
        else:
            base = 1.5**n * SECOND
            assert base <= wait <= 1.3 * base


def test_custom_node_types__retryable_node_implementation__recovers() -> None:
    """### RetryableNode Implementation — a success resets the attempt count and the last error."""
    outcomes = [NetworkError("blip"), "ok"]

    def perform_operation() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    node = SmartRetryNode(perform_operation)
    ctx, events = observed()
    run(node, ctx=ctx)
    assert exec_results(events, "SmartRetryNode") == ["ok"]
    assert (node.attempts, node.last_error) == (0, None)


def test_custom_node_types__composite_nodes() -> None:
    """### Composite Nodes — stages run in order on the previous result; a failing stage is
    reported by index; a cancelled context stops between stages."""

    class PipelineNode(Node):
        def __init__(self, *stages: Callable[[Context, Any], Any]) -> None:
            super().__init__()
            self.stages = stages

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("input")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            result = prep_result
            for i, stage in enumerate(self.stages):
                ctx.check()
                try:
                    result = stage(ctx, result)
                except Exception as err:
                    raise RuntimeError(f"stage {i} failed: {err}") from err
            return result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("output", exec_result)
            return None

    shared = SharedStore({"input": " Data "})
    run(PipelineNode(lambda c, s: s.strip(), lambda c, s: s.lower(), lambda c, s: s + "!"), shared)
    assert shared["output"] == "data!"

    def reject(ctx: Context, value: Any) -> Any:
        raise ValueError("rejected")

    with pytest.raises(NodeError, match="stage 1 failed: rejected") as info:
        run(PipelineNode(lambda c, s: s, reject), SharedStore({"input": 1}))
    assert isinstance(info.value.__cause__.__cause__, ValueError)

    ctx, cancel = Context.background().with_cancel()
    ran: list[int] = []

    def cancelling(c: Context, value: Any) -> Any:
        ran.append(0)
        cancel()
        return value

    with pytest.raises(Cancelled):
        run(PipelineNode(cancelling, lambda c, v: ran.append(1)), SharedStore(), ctx=ctx)
    assert ran == [0]


def test_custom_node_types__monitoring_nodes() -> None:
    """### Monitoring Nodes — executions, successes, failures, latency and success rate of
    the wrapped node's exec."""

    class Metrics:
        def __init__(self) -> None:
            self.executions = self.successes = self.failures = 0
            self.total_latency = 0.0
            self.lock = threading.Lock()

    class MonitoredNode(Node):
        def __init__(self, name: str, base_node: Node) -> None:
            super().__init__(name=name)
            self.base_node = base_node
            self.metrics = Metrics()

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            start = time.monotonic()
            with self.metrics.lock:
                self.metrics.executions += 1
            try:
                result = self.base_node.exec(ctx, prep_result)
            except Exception as err:
                with self.metrics.lock:
                    self.metrics.failures += 1
                    self.metrics.total_latency += time.monotonic() - start
                log.info("[%s] Execution failed: %s", self.name, err)
                raise
            with self.metrics.lock:
                self.metrics.successes += 1
                self.metrics.total_latency += time.monotonic() - start
            return result

        def get_metrics(self) -> dict[str, Any]:
            m = self.metrics
            return {
                "executions": m.executions,
                "successes": m.successes,
                "failures": m.failures,
                "avg_latency": m.total_latency / m.executions if m.executions else 0.0,
                "success_rate": m.successes / m.executions if m.executions else 0.0,
            }

    outcomes = iter([1, None, 3])

    def base_exec(ctx: Context, prep_result: Any) -> Any:
        value = next(outcomes)
        if value is None:
            raise NetworkError("dropped")
        return value

    node = MonitoredNode("payments", Node(exec=base_exec))
    run(node)
    with pytest.raises(NodeError) as info:
        run(node)
    assert info.value.node_name == "payments"
    run(node)
    metrics = node.get_metrics()
    assert (metrics["executions"], metrics["successes"], metrics["failures"]) == (3, 2, 1)
    assert metrics["success_rate"] == pytest.approx(2 / 3)
    assert metrics["avg_latency"] >= 0


def test_custom_node_types__async_nodes() -> None:
    """### Async Nodes — tasks go to a fixed set of workers and come back in their slots;
    a cancelled context stops the wait with the context's error."""

    @dataclass
    class Task:
        value: Any
        index: int = 0
        results: list[Any] | None = None
        gate: threading.Event | None = None

    class WaitGroup:
        def __init__(self) -> None:
            self.count = 0
            self.cond = threading.Condition()

        def add(self, n: int) -> None:
            with self.cond:
                self.count += n

        def done(self) -> None:
            with self.cond:
                self.count -= 1
                self.cond.notify_all()

        def wait(self) -> None:
            with self.cond:
                self.cond.wait_for(lambda: self.count == 0)

    class AsyncNode(Node):
        def __init__(self, workers: int) -> None:
            super().__init__()
            self.workers = workers
            self.queue: queue.Queue[Task | None] = queue.Queue(maxsize=workers * 2)
            self.wg = WaitGroup()
            self.threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(workers)]
            for thread in self.threads:
                thread.start()

        def worker(self) -> None:
            while (task := self.queue.get()) is not None:
                self.process_task(task)
                self.wg.done()

        def process_task(self, task: Task) -> None:
            if task.gate is not None:
                task.gate.wait(1)
            task.results[task.index] = task.value * 10

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("tasks")

        def exec(self, ctx: Context, tasks: Any) -> Any:
            results: list[Any] = [None] * len(tasks)
            for i, task in enumerate(tasks):
                self.wg.add(1)
                task.index, task.results = i, results
                self.queue.put(task)
            done = threading.Event()
            threading.Thread(target=lambda: (self.wg.wait(), done.set()), daemon=True).start()
            while not done.wait(SECOND):
                ctx.check()
            return results

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("results", exec_result)
            return None

        def close(self) -> None:
            for _ in self.threads:
                self.queue.put(None)
            for thread in self.threads:
                thread.join(1)

    node = AsyncNode(3)
    try:
        shared = SharedStore({"tasks": [Task(v) for v in range(8)]})
        run(node, shared)
        assert shared["results"] == [v * 10 for v in range(8)]

        gate = threading.Event()
        ctx, cancel = Context.background().with_cancel()
        threading.Timer(5 * SECOND, cancel).start()
        try:
            with pytest.raises(Cancelled):
                run(node, SharedStore({"tasks": [Task(1, gate=gate)]}), ctx=ctx)
        finally:
            gate.set()
    finally:
        node.close()
    assert not any(thread.is_alive() for thread in node.threads)


def test_custom_node_types__validation_nodes() -> None:
    """### Validation Nodes — every rule is checked and all violations are reported at once;
    valid data leads to ``valid``. Exec's error fails the run (the default fallback
    re-raises); with a fallback that returns nil, post routes to ``invalid`` as intended."""

    class Rule:
        def __init__(self, name: str, check: Callable[[Any], bool], message: str) -> None:
            self._name, self.check, self.message = name, check, message

        def validate(self, value: Any) -> None:
            if not self.check(value):
                raise ValueError(self.message)

        def name(self) -> str:
            return self._name

    class ValidationNode(Node):
        def __init__(self, *rules: Rule) -> None:
            super().__init__()
            self.rules = rules

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("data")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            errors = []
            for rule in self.rules:
                try:
                    rule.validate(prep_result)
                except ValueError as err:
                    errors.append(f"{rule.name()}: {err}")
            if errors:
                raise ValueError(f"validation failed: {'; '.join(errors)}")
            return prep_result

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if exec_result is None:
                return "invalid"
            return "valid"

    rules = (
        Rule("positive", lambda v: v > 0, "must be positive"),
        Rule("even", lambda v: v % 2 == 0, "must be even"),
        Rule("small", lambda v: v < 100, "must be below 100"),
    )
    assert run(ValidationNode(*rules), SharedStore({"data": 42})) == "valid"
    with pytest.raises(NodeError) as info:
        run(ValidationNode(*rules), SharedStore({"data": -3}))
    assert str(info.value.__cause__) == "validation failed: positive: must be positive; even: must be even"

    lenient = ValidationNode(*rules)
    lenient.exec_fallback = lambda prep_result, error: None  # type: ignore[method-assign]
    assert run(lenient, SharedStore({"data": 101})) == "invalid"
