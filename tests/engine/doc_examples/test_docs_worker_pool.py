"""The Flyt docs' chapter "Worker Pool" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported_batch import *


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
