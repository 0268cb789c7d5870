"""The Flyt docs' chapter "Shared Store" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


def test_shared_store__creating_a_shared_store() -> None:
    """### Creating a SharedStore — a new store is empty."""
    shared = SharedStore()
    assert len(shared) == 0
    assert shared.keys() == []


def test_shared_store__set_and_get() -> None:
    """#### Set and Get — ``Set`` a value, read it back with a typed getter."""
    shared = SharedStore()
    shared.set("user_id", 123)
    shared.set("config", {"timeout": 30})
    user_id = shared.get_int("user_id")
    assert f"User ID: {user_id}" == "User ID: 123"
    assert shared.get("config") == {"timeout": 30}


def test_shared_store__type_safe_getters() -> None:
    """#### Type-Safe Getters — zero values when missing or of the wrong type, or the
    custom default of the ``...Or`` variants."""
    shared = SharedStore()
    assert shared.get_int("user_id") == 0
    assert shared.get_str("name") == ""
    assert shared.get_float("price") == 0.0
    assert shared.get_bool("enabled") is False
    assert shared.get_list("items") is None
    assert shared.get_dict("config") is None

    assert shared.get_int("user_id", -1) == -1
    assert shared.get_str("name", "anonymous") == "anonymous"
    assert shared.get_float("price", 99.99) == 99.99
    assert shared.get_bool("enabled", True) is True

    shared.merge({"user_id": "123", "name": 7, "price": "9.5", "enabled": 1, "items": "abc", "config": [1]})
    assert shared.get_int("user_id") == 0  # wrong types give the zero value, never an exception
    assert shared.get_str("name") == ""
    assert shared.get_float("price") == 0.0
    assert shared.get_bool("enabled") is False
    assert shared.get_list("items") is None
    assert shared.get_dict("config") is None

    shared.merge({"user_id": 7, "name": "ada", "price": 9.5, "enabled": True, "items": ("a", "b"), "config": {"k": 1}})
    assert (shared.get_int("user_id"), shared.get_str("name"), shared.get_float("price")) == (7, "ada", 9.5)
    assert shared.get_bool("enabled") is True
    assert shared.get_list("items") == ["a", "b"]
    assert shared.get_dict("config") == {"k": 1}


def test_shared_store__type_safe_getters__numeric_conversions() -> None:
    """#### Type-Safe Getters — "GetInt() converts from ... float types", "GetFloat64()
    converts from all numeric types including int"."""
    shared = SharedStore({"f": 3.9, "neg": -3.9, "i": 42})
    assert shared.get_int("f") == 3
    assert shared.get_int("neg") == -3  # truncated toward zero
    value = shared.get_float("i")
    assert value == 42.0 and isinstance(value, float)


@dataclass
class User:
    id: int
    name: str
    email: str
    tags: list[str]


def test_shared_store__bind_method() -> None:
    """#### Bind Method — a stored map binds to a struct; ``MustBind`` on missing data fails
    loudly (in Python ``bind`` raises ``BindError`` naming the key)."""
    shared = SharedStore()
    shared.set("user", {"id": 123, "name": "Alice", "email": "alice@example.com", "tags": ["admin", "developer"]})
    user = shared.bind("user", User)
    assert user == User(id=123, name="Alice", email="alice@example.com", tags=["admin", "developer"])

    with pytest.raises(BindError, match="config"):
        shared.bind("config", Config)


def test_shared_store__utility_methods() -> None:
    """#### Utility Methods — Has, Delete, Keys, Len, Clear."""
    shared = SharedStore({"user_id": 1, "temp_data": "x"})
    assert shared.has("user_id")
    shared.delete("temp_data")
    shared.delete("temp_data")  # deleting a missing key is a no-op
    assert not shared.has("temp_data")
    assert shared.keys() == ["user_id"]
    assert len(shared) == 1
    shared.clear()
    assert len(shared) == 0 and shared.keys() == []


def test_shared_store__get_all() -> None:
    """#### GetAll — a copy of all stored data: changing the copy leaves the store alone."""
    shared = SharedStore({"a": 1, "b": "two"})
    all_data = shared.get_all()
    assert all_data == {"a": 1, "b": "two"}
    all_data["a"] = 99
    all_data["c"] = 3
    assert shared.get_all() == {"a": 1, "b": "two"}


def test_shared_store__merge() -> None:
    """#### Merge — several values at once; merged keys overwrite, others stay."""
    shared = SharedStore({"status": "inactive", "owner": "ops"})
    shared.merge({"status": "active", "timestamp": 1700000000, "metadata": {"version": "1.0", "env": "production"}})
    assert shared.get_all() == {
        "status": "active",
        "owner": "ops",
        "timestamp": 1700000000,
        "metadata": {"version": "1.0", "env": "production"},
    }


def test_shared_store__thread_safety() -> None:
    """### Thread Safety — ten goroutines (threads) set their own keys safely."""
    shared = SharedStore()

    def worker(worker_id: int) -> None:
        shared.set(f"worker_{worker_id}", "done")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared.get_all() == {f"worker_{i}": "done" for i in range(10)}


@dataclass
class APIConfig:
    base_url: str
    api_key: str
    timeout: str


def test_shared_store__configuration_storage() -> None:
    """#### Configuration Storage — configuration stored once and read by any node, with
    ``Bind`` (a stored struct comes back as is) or with ``GetMap`` (a stored map)."""
    seen: list[Any] = []

    class APINode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.bind("api_config", APIConfig)

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            seen.append(prep_result)

    config = APIConfig(base_url="https://api.example.com", api_key="test-key", timeout="30s")
    shared = SharedStore()
    shared.set("api_config", config)
    run(APINode(), shared)
    assert seen == [config] and seen[0] is config

    map_node = Node(prep=lambda ctx, shared: shared.get_dict("api_config"), exec=lambda ctx, p: seen.append(p))
    run(map_node, SharedStore({"api_config": {"base_url": "https://api.example.com"}}))
    assert seen[-1] == {"base_url": "https://api.example.com"}


def test_shared_store__accumulating_results() -> None:
    """#### Accumulating Results — each node appends its result to the ``results`` list,
    starting it when ``GetSlice`` finds nothing."""

    def append_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        results = shared.get_list("results")
        if results is None:
            results = []
        results.append(exec_result)
        shared.set("results", results)
        return DEFAULT_ACTION

    node1 = Node(exec=lambda ctx, p: "one", post=append_post)
    node2 = Node(exec=lambda ctx, p: "two", post=append_post)
    shared = SharedStore()
    Flow(node1).connect(node1, DEFAULT_ACTION, node2).run(shared)
    assert shared.get_list("results") == ["one", "two"]


def test_shared_store__state_management() -> None:
    """#### State Management — a retry counter incremented through the store, and a state
    read with a default."""

    def increment_retry(shared: SharedStore) -> int:
        count = shared.get_int("retry_count")
        count += 1
        shared.set("retry_count", count)
        shared.set("last_retry", time.time())
        return count

    def check_state(shared: SharedStore) -> str:
        return shared.get_str("workflow_state", "unknown")

    shared = SharedStore()
    assert check_state(shared) == "unknown"
    shared.set("workflow_state", "initialized")
    shared.set("retry_count", 0)
    assert [increment_retry(shared) for _ in range(3)] == [1, 2, 3]
    assert shared.has("last_retry")
    assert check_state(shared) == "initialized"


@pytest.mark.parametrize("fails", [False, True])
def test_shared_store__error_context(fails: bool) -> None:
    """#### Error Context — an error result is stored under ``last_error`` with the node,
    the input and the message, and the node returns ``error``."""

    class ErrorHandler(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get("input")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            if fails:
                raise ValueError("bad input")
            return "ok"

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            return error  # hand the error to post, as the Go snippet expects

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            if isinstance(exec_result, Exception):
                shared.set(
                    "last_error",
                    {"error": str(exec_result), "node": "ProcessNode", "timestamp": time.time(), "input": prep_result},
                )
                return "error"
            return DEFAULT_ACTION

    shared = SharedStore({"input": {"id": 7}})
    assert run(ErrorHandler(), shared) == ("error" if fails else DEFAULT_ACTION)
    if fails:
        last_error = shared.get_dict("last_error")
        assert (last_error["error"], last_error["node"], last_error["input"]) == ("bad input", "ProcessNode", {"id": 7})
    else:
        assert not shared.has("last_error")


def test_shared_store__batch_processing() -> None:
    """### Batch Processing — items go in under ``items``, results come out under
    ``results``; nothing is written under ``errors`` when every item succeeded."""
    shared = SharedStore()
    shared.set("items", ["item1", "item2", "item3"])
    shared.set("batch_config", {"batch_size": 10, "concurrent": True, "timeout": 60})
    run(BatchNode(lambda ctx, item: item.upper(), True), shared)
    assert shared.get_list("results") == ["ITEM1", "ITEM2", "ITEM3"]
    assert shared.get_list("errors") is None


def test_shared_store__isolation_in_batch_flows() -> None:
    """### Isolation in Batch Flows — "Each flow in a batch has its own SharedStore": a
    child sees the parent's data plus its inputs, and its writes stay its own."""

    def batch_func(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
        base_config = shared.get_dict("base_config")
        return [{"id": 1, "config": base_config}, {"id": 2, "config": base_config}]

    def child_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        shared.set("owner", shared.get_int("id"))
        shared.set("touched", True)
        return None

    def flow_factory() -> Flow:
        return Flow(Node(post=child_post))

    parent = SharedStore({"base_config": {"region": "eu"}, "owner": "parent"})
    run(BatchFlow(flow_factory, batch_func, True), parent)
    children = parent.get_list("batch_results")
    assert [c["owner"] for c in children] == [1, 2]
    assert all(c["config"] == {"region": "eu"} and c["touched"] for c in children)
    assert parent["owner"] == "parent" and not parent.has("touched") and not parent.has("id")


def test_shared_store__best_practices__type_safety() -> None:
    """#### 1. Type Safety — ``GetInt`` and ``GetIntOr`` for counts, ``Bind`` for complex types."""

    @dataclass
    class UserData:
        name: str
        age: int

    shared = SharedStore({"user_data": {"name": "ada", "age": 36}})
    assert shared.get_int("count") == 0
    assert shared.get_int("count", -1) == -1
    assert shared.bind("user_data", UserData) == UserData("ada", 36)
    shared.set("user_data", {"name": "ada"})
    with pytest.raises(BindError, match="user_data"):
        shared.bind("user_data", UserData)


def test_shared_store__best_practices__data_structure() -> None:
    """#### 3. Data Structure — a struct stored as one value comes back intact."""

    @dataclass
    class WorkflowContext:
        request_id: str
        user_id: int
        start_time: float
        metadata: dict[str, str] = field(default_factory=dict)

    context = WorkflowContext("req-123", 456, time.time(), {"source": "api"})
    shared = SharedStore()
    shared.set("context", context)
    assert shared.bind("context", WorkflowContext) is context


def test_shared_store__best_practices__cleanup() -> None:
    """#### 4. Cleanup — sensitive values are overwritten with nil when the work is done."""
    shared = SharedStore({"auth_token": "secret", "api_key": "key"})

    def work() -> None:
        try:
            assert shared.get_str("auth_token") == "secret"
        finally:
            shared.set("auth_token", None)
            shared.set("api_key", None)

    work()
    assert shared.get_str("auth_token") == "" and shared.get("api_key") is None


def test_shared_store__debugging(capsys: pytest.CaptureFixture[str]) -> None:
    """### Debugging — ``GetAll`` lists every key with its type and value."""

    def debug_shared_store(shared: SharedStore) -> None:
        data = shared.get_all()
        print("=== SharedStore Contents ===")
        for k, v in data.items():
            print(f"{k}: {type(v).__name__} = {v}")
        print("===========================")

    debug_shared_store(SharedStore({"user_id": 123, "name": "ada"}))
    out = capsys.readouterr().out.splitlines()
    assert out == ["=== SharedStore Contents ===", "user_id: int = 123", "name: str = ada", "=" * 27]
