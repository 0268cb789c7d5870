"""The Flyt docs' chapter "Nodes" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


def test_nodes__prep_phase() -> None:
    """#### 1. Prep Phase — prep reads the store with typed getters and ``bind`` and hands
    exec its data; a config that cannot be bound fails prep, so exec never runs."""
    seen: list[Any] = []

    class MyNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            user_id = shared.get_int("user_id")
            api_key = shared.get_str("api_key")
            config = shared.bind("config", Config)
            return {"userID": user_id, "apiKey": api_key, "config": config}

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            seen.append(prep_result)

    shared = SharedStore({"user_id": 42, "api_key": "k-1", "config": {"timeout": 5, "retries": 2}})
    assert run(MyNode(), shared) == DEFAULT_ACTION
    assert seen == [{"userID": 42, "apiKey": "k-1", "config": Config(timeout=5, retries=2)}]

    seen.clear()
    with pytest.raises(NodeError) as info:
        run(MyNode(), SharedStore({"user_id": 1}))
    assert info.value.phase == "prep"
    assert isinstance(info.value.__cause__, BindError)
    assert seen == []


def test_nodes__exec_phase() -> None:
    """#### 2. Exec Phase — "This phase can be retried on failure": an exception from exec
    triggers a retry when retries are configured, else the run fails in exec."""
    inputs: list[str] = []

    def process_data(value: str) -> str:
        inputs.append(value)
        if len(inputs) == 1:
            raise NetworkError("flaky")
        return value.upper()

    class MyNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return {"input": shared.get_str("input")}

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return process_data(prep_result["input"])  # an exception here triggers a retry

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("output", exec_result)
            return None

    shared = SharedStore({"input": "abc"})
    run(MyNode(max_retries=2), shared)
    assert shared["output"] == "ABC"
    assert inputs == ["abc", "abc"]

    inputs.clear()
    with pytest.raises(NodeError) as info:
        run(MyNode(), SharedStore({"input": "abc"}))
    assert (info.value.phase, info.value.attempts) == ("exec", 1)
    assert isinstance(info.value.__cause__, NetworkError)


@pytest.mark.parametrize(("value", "action"), [("ok", "success"), ("", "failure")])
def test_nodes__post_phase(value: str, action: str) -> None:
    """#### 3. Post Phase — post stores the result and picks the next action from it."""

    def is_valid(result: Any) -> bool:
        return bool(result)

    class MyNode(Node):
        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return value

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("output", exec_result)
            if is_valid(exec_result):
                return "success"
            return "failure"

    shared = SharedStore()
    assert run(MyNode(), shared) == action
    assert shared["output"] == value


@pytest.mark.parametrize(("retry_count", "action"), [(0, DEFAULT_ACTION), (4, "max_retries")])
def test_nodes__using_helper_functions(retry_count: int, action: str) -> None:
    """#### Using Helper Functions — the functional node: prep, exec and post as functions."""

    def process_message(message: str) -> str:
        return f"processed {message}"

    def prep(ctx: Context, shared: SharedStore) -> Any:
        message = shared.get_str("message")
        retry = shared.get_int("retry_count", 0)
        return {"message": message, "retry": retry}

    def exec_(ctx: Context, prep_result: Any) -> Any:
        return process_message(prep_result["message"])

    def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("result", exec_result)
        if shared.get_int("retry_count") > 3:
            return "max_retries"
        return DEFAULT_ACTION

    node = Node(prep=prep, exec=exec_, post=post)
    shared = SharedStore({"message": "hi", "retry_count": retry_count})
    assert run(node, shared) == action
    assert shared["result"] == "processed hi"


def test_nodes__custom_node_types() -> None:
    """#### Custom Node Types — a node with state of its own (a database handle; sqlite
    in memory stands in for the SQL server)."""

    class DatabaseNode(Node):
        def __init__(self, db: sqlite3.Connection) -> None:
            super().__init__()
            self.db = db

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_str("query")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return self.db.execute(prep_result).fetchall()

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("rows", exec_result)
            return None

    db = sqlite3.connect(":memory:")
    db.executescript("CREATE TABLE users (id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'ada'), (2, 'bob');")
    node = DatabaseNode(db)
    shared = SharedStore({"query": "SELECT name FROM users ORDER BY id"})
    run(node, shared)
    assert shared["rows"] == [("ada",), ("bob",)]

    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"query": "SELECT nope FROM missing"}))
    assert info.value.phase == "exec"
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


def test_nodes__node_options() -> None:
    """### Node Options — ``WithMaxRetries(3)`` and ``WithWait(2s)``: three attempts, two
    seconds apart (no wait after the last one)."""
    calls: list[int] = []

    def exec_func(ctx: Context, prep_result: Any) -> Any:
        calls.append(1)
        raise NetworkError("down")

    node = Node(exec=exec_func, max_retries=3, wait=2 * SECOND)
    ctx, events = observed()
    with pytest.raises(NodeError) as info:
        run(node, ctx=ctx)
    assert len(calls) == 3
    assert info.value.attempts == 3
    assert [f.wait for f in failures(events)] == [2 * SECOND, 2 * SECOND, 0.0]
    assert [f.attempt for f in failures(events)] == [1, 2, 3]


def test_nodes__base_node() -> None:
    """### BaseNode — subclass, configure retries and wait, override only exec; prep and
    post keep their defaults (``None`` and the default action)."""
    calls: list[int] = []

    class MyNode(Node):
        def __init__(self) -> None:
            super().__init__(max_retries=5, wait=SECOND)

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            calls.append(prep_result)
            if len(calls) < 5:
                raise NetworkError("not yet")
            return "result"

    node = MyNode()
    assert (node.get_max_retries(), node.get_wait()) == (5, SECOND)
    assert node.name == "MyNode"
    ctx, events = observed()
    assert run(node, ctx=ctx) == DEFAULT_ACTION
    assert calls == [None] * 5
    assert exec_results(events, "MyNode") == ["result"]


def test_nodes__thread_safety() -> None:
    """### Thread Safety — a node with a lock-protected counter, run from many threads at
    once, numbers every execution exactly once."""

    class SafeNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.mu = threading.Lock()
            self.counter = 0

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            with self.mu:
                self.counter += 1
                count = self.counter
            return f"Execution #{count}"

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.update("seen", lambda old: [*old, exec_result], default=[])
            return None

    node = SafeNode()
    shared = SharedStore()
    threads = [threading.Thread(target=lambda: [run(node, shared) for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert node.counter == 40
    assert sorted(shared["seen"]) == sorted(f"Execution #{i}" for i in range(1, 41))
