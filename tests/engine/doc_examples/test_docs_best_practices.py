"""The Flyt docs' chapter "Best Practices" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


@pytest.mark.parametrize(("valid", "saved"), [(True, [{"id": 1, "name": "ADA"}]), (False, [])])
def test_best_practices__single_responsibility(valid: bool, saved: list[Any]) -> None:
    """#### Single Responsibility — fetch, validate, transform and save as four nodes;
    invalid data stops after validation."""
    database: list[Any] = []

    def create_fetch_node() -> Node:
        return Node(
            exec=lambda c, p: {"id": 1, "name": "ada" if valid else ""}, post=lambda c, s, p, e: s.set("data", e)
        )

    def create_validate_node() -> Node:
        return Node(
            prep=lambda c, s: s.get_dict("data"), post=lambda c, s, data, e: "valid" if data["name"] else "invalid"
        )

    def create_transform_node() -> Node:
        return Node(
            prep=lambda c, s: s.get_dict("data"),
            exec=lambda c, data: {**data, "name": data["name"].upper()},
            post=lambda c, s, p, e: s.set("transformed", e),
        )

    def create_save_node() -> Node:
        return Node(prep=lambda c, s: s.get_dict("transformed"), exec=lambda c, record: database.append(record))

    fetch_node, validate_node = create_fetch_node(), create_validate_node()
    transform_node, save_node = create_transform_node(), create_save_node()
    flow = Flow(fetch_node)
    flow.connect(fetch_node, DEFAULT_ACTION, validate_node)
    flow.connect(validate_node, "valid", transform_node)
    flow.connect(transform_node, DEFAULT_ACTION, save_node)
    flow.run()
    assert database == saved


def test_best_practices__idempotency() -> None:
    """#### Idempotency — an upsert makes the save node safe to retry: a retried (and a
    repeated) save leaves one row (sqlite stands in for the database)."""

    @dataclass
    class Record:
        id: int
        data: str

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, data TEXT)")
    lost_replies = {"left": 1}

    class SaveNode(Node):
        max_retries = 3

        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.bind("record", Record)

        def exec(self, ctx: Context, data: Any) -> Any:
            db.execute(
                "INSERT INTO records (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = ?",
                (data.id, data.data, data.data),
            )
            if lost_replies["left"]:
                lost_replies["left"] -= 1
                raise NetworkError("reply lost after the write")  # so the write is retried
            return data.id

    shared = SharedStore({"record": {"id": 7, "data": "v1"}})
    run(SaveNode(), shared)
    shared.set("record", {"id": 7, "data": "v2"})
    run(SaveNode(), shared)
    assert db.execute("SELECT id, data FROM records").fetchall() == [(7, "v2")]


def test_best_practices__error_handling() -> None:
    """#### Error Handling — a descriptive error ("failed to fetch user 42: ...") wrapping
    the cause reaches the caller with the cause intact."""

    def fetch(user_id: int) -> Any:
        raise NetworkError("connection refused")

    def exec_(ctx: Context, user_id: Any) -> Any:
        try:
            return fetch(user_id)
        except NetworkError as err:
            raise RuntimeError(f"failed to fetch user {user_id}: {err}") from err

    node = Node(prep=lambda c, s: s.get_int("user_id"), exec=exec_, name="fetchUser")
    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"user_id": 42}))
    assert "fetchUser" in str(info.value) and "failed to fetch user 42: connection refused" in str(info.value)
    assert isinstance(info.value.__cause__.__cause__, NetworkError)


def test_best_practices__type_safe_shared_store_access() -> None:
    """#### Type-Safe SharedStore Access — the manual lookup fails on a missing key, the
    typed getter returns 0 (or the given default), and Bind reports an invalid config."""

    class BadNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared["count"]  # fails when the key is missing

    class GoodNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return (shared.get_int("count"), shared.get_int("count", -1))

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("counts", prep_result)
            return None

    class ConfigNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            try:
                return shared.bind("config", Config)
            except BindError as err:
                raise ValueError(f"invalid config: {err}") from err

    with pytest.raises(NodeError) as bad:
        run(BadNode(), SharedStore())
    assert bad.value.phase == "prep" and isinstance(bad.value.__cause__, KeyError)

    shared = SharedStore()
    run(GoodNode(), shared)
    assert shared["counts"] == (0, -1)

    with pytest.raises(NodeError, match="invalid config") as info:
        run(ConfigNode(), SharedStore({"config": {"timeout": "soon", "retries": 1}}))
    assert isinstance(info.value.__cause__.__cause__, BindError)


def test_best_practices__modular_flows() -> None:
    """#### Modular Flows — one validation-flow factory reused by two flows, each with its
    own copy."""
    trail: list[str] = []

    def create_validation_flow() -> Flow:
        schema_check, business_rules = visit(trail, "schema", "valid"), visit(trail, "business")
        return Flow(schema_check).connect(schema_check, "valid", business_rules)

    fetch_node, parse_node = visit(trail, "fetch"), visit(trail, "parse")
    main_flow = Flow(fetch_node).connect(fetch_node, DEFAULT_ACTION, create_validation_flow())
    api_flow = Flow(parse_node).connect(parse_node, DEFAULT_ACTION, create_validation_flow())
    main_flow.run()
    api_flow.run()
    assert trail == ["fetch", "schema", "business", "parse", "schema", "business"]
    assert main_flow.successors(fetch_node)["default"] is not api_flow.successors(parse_node)["default"]


@pytest.mark.parametrize("failing", ["start", "process", "save"])
def test_best_practices__error_boundaries(failing: str) -> None:
    """#### Error Boundaries — one loop connects every node's ``error`` action to a single
    handler, which sees where the error happened."""
    handled: list[Any] = []

    def step(name: str) -> Node:
        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
            if name == failing:
                shared.set("failed_at", name)
                return "error"
            return DEFAULT_ACTION

        return Node(post=post, name=name)

    start_node, process_node, save_node = step("start"), step("process"), step("save")

    def create_flow_with_error_handling() -> Flow:
        flow = Flow(start_node)
        flow.connect(start_node, DEFAULT_ACTION, process_node)
        flow.connect(process_node, DEFAULT_ACTION, save_node)
        error_handler = Node(prep=lambda c, s: s.get_str("failed_at"), exec=lambda c, at: handled.append(at))
        for node in (start_node, process_node, save_node):
            flow.connect(node, "error", error_handler)
        return flow

    create_flow_with_error_handling().run()
    assert handled == [failing]


def test_best_practices__respect_cancellation() -> None:
    """#### Respect Cancellation — exec checks the context before each item; cancelling
    mid-way stops the loop and the run raises ``Cancelled`` (no fallback)."""
    processed: list[int] = []
    ctx, cancel = Context.background().with_cancel()
    fallbacks: list[BaseException] = []

    def process_item(ctx: Context, item: int) -> int:
        processed.append(item)
        if item == 2:
            cancel()  # e.g. the user aborts while item 2 is being processed
        return item * 2

    class ProcessNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, items: Any) -> Any:
            results = []
            for item in items:
                ctx.check()  # check context before each iteration
                results.append(process_item(ctx, item))
            return results

        def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
            fallbacks.append(error)
            return []

    with pytest.raises(Cancelled):
        run(ProcessNode(), SharedStore({"items": [1, 2, 3, 4]}), ctx=ctx)
    assert processed == [1, 2]
    assert fallbacks == []

    processed.clear()
    shared = SharedStore({"items": [1, 2, 3]})
    run(ProcessNode(), shared)
    assert processed == [1, 2, 3]


def test_best_practices__timeout_management() -> None:
    """#### Timeout Management — exec gives its API call a deadline of its own. When that
    deadline passes, the call failed: an ordinary exec failure, retried like any other
    (the run itself was not cancelled: Go returns ``context.DeadlineExceeded`` as a plain
    error and retries it)."""
    calls: list[int] = []

    def call_api(ctx: Context, prep_result: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            ctx.sleep(1)  # hangs until the node's own deadline cancels it
        return "response"

    class APINode(Node):
        max_retries = 2

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            ctx, cancel = ctx.with_timeout(30 * SECOND)
            try:
                return call_api(ctx, prep_result)
            finally:
                cancel()

    ctx, events = observed()
    assert run(APINode(), ctx=ctx) == DEFAULT_ACTION
    assert len(calls) == 2
    assert exec_results(events, "APINode") == ["response"]


def test_best_practices__thread_safe_nodes() -> None:
    """#### Thread-Safe Nodes — a mutex keeps the node's counter exact under concurrent runs."""

    class CounterNode(Node):
        def __init__(self) -> None:
            super().__init__()
            self.mu = threading.Lock()
            self.count = 0

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            with self.mu:
                self.count += 1
                return self.count

    node = CounterNode()
    run(BatchNode(lambda ctx, item: run(node)), SharedStore({"items": range(50)}))
    threads = [threading.Thread(target=lambda: [run(node) for _ in range(25)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert node.count == 150


def test_best_practices__avoid_shared_node_instances() -> None:
    """#### Avoid Shared Node Instances — a fresh node per goroutine: each instance sees
    exactly one run, all writing safely to the shared store."""
    made: list[Node] = []

    def create_process_node() -> Node:
        def exec_(ctx: Context, prep_result: Any) -> Any:
            node.runs += 1  # type: ignore[attr-defined]
            return node.runs  # type: ignore[attr-defined]

        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.update("total", lambda total: total + exec_result, default=0)
            return None

        node = Node(exec=exec_, post=post)
        node.runs = 0  # type: ignore[attr-defined]
        made.append(node)
        return node

    shared = SharedStore()
    ctx = Context.background()
    threads = [
        threading.Thread(target=run, args=(create_process_node(), shared), kwargs={"ctx": ctx}) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [n.runs for n in made] == [1] * 10  # type: ignore[attr-defined]
    assert shared["total"] == 10


def test_best_practices__clean_up_resources(tmp_path: Any) -> None:
    """#### Clean Up Resources — the file is closed whatever happens in exec (Go's ``defer
    file.Close()``, Python's ``with``); a missing file fails exec."""
    opened: list[Any] = []

    def process_file(file: Any) -> Any:
        text = file.read()
        if "bad" in text:
            raise ValueError("corrupt file")
        return len(text)

    class FileNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_str("path")

        def exec(self, ctx: Context, path: Any) -> Any:
            with open(path) as file:  # always cleaned up
                opened.append(file)
                return process_file(file)

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("size", exec_result)
            return None

    (tmp_path / "good.txt").write_text("hello")
    (tmp_path / "bad.txt").write_text("bad data")
    shared = SharedStore({"path": str(tmp_path / "good.txt")})
    run(FileNode(), shared)
    assert shared["size"] == 5
    with pytest.raises(NodeError):
        run(FileNode(), SharedStore({"path": str(tmp_path / "bad.txt")}))
    assert len(opened) == 2 and all(f.closed for f in opened)
    with pytest.raises(NodeError) as info:
        run(FileNode(), SharedStore({"path": str(tmp_path / "none.txt")}))
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_best_practices__connection_pooling() -> None:
    """#### Connection Pooling — every node the flow factory creates shares one pool."""

    class DatabaseNode(Node):
        def __init__(self, db: sqlite3.Connection) -> None:
            super().__init__()
            self.db = db

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            return self.db.execute("SELECT 40 + 2").fetchone()[0]

    class DatabaseFlow:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def create_node(self) -> Node:
            return DatabaseNode(self.db)  # reuse the connection pool

    pool = sqlite3.connect(":memory:")
    factory = DatabaseFlow(pool)
    nodes = [factory.create_node() for _ in range(3)]
    assert len({id(n) for n in nodes}) == 3 and all(n.db is pool for n in nodes)
    ctx, events = observed()
    flow = Flow(nodes[0]).connect(nodes[0], DEFAULT_ACTION, nodes[1]).connect(nodes[1], DEFAULT_ACTION, nodes[2])
    flow.run(ctx=ctx)
    assert exec_results(events, "DatabaseNode") == [42, 42, 42]


def create_process_node() -> Node:
    """The node under test in the docs' ``TestProcessNode``."""

    def exec_(ctx: Context, prep_result: Any) -> Any:
        if prep_result is None:
            raise ValueError("no input")
        return "expected output"

    return Node(exec=exec_)


def test_best_practices__unit_test_nodes() -> None:
    """#### Unit Test Nodes — call a node's exec directly: the success case and the error case."""
    node = create_process_node()
    ctx = Context.background()
    assert node.exec(ctx, "test input") == "expected output"
    with pytest.raises(ValueError):
        node.exec(ctx, None)


@dataclass
class OutputData:
    total: int
    labels: list[str]


def test_best_practices__integration_test_flows() -> None:
    """#### Integration Test Flows — run the whole flow and Bind the output to a struct."""

    def create_main_flow() -> Flow:
        total = Node(
            prep=lambda c, s: s.get_list("input"), exec=lambda c, xs: sum(xs), post=lambda c, s, p, e: s.set("total", e)
        )
        label = Node(
            prep=lambda c, s: s.get_list("input"),
            exec=lambda c, xs: [f"#{x}" for x in xs],
            post=lambda c, s, p, e: s.set("output", {"total": s.get_int("total"), "labels": e}),
        )
        return Flow(total).connect(total, DEFAULT_ACTION, label)

    flow = create_main_flow()
    shared = SharedStore()
    shared.set("input", [1, 2, 3])
    flow.run(shared, ctx=Context.background())
    assert shared.bind("output", OutputData) == OutputData(total=6, labels=["#1", "#2", "#3"])


class UserNotFound(Exception):
    pass


class FetchUserNode(Node):
    """FetchUserNode fetches user data from the API (the docs' documented node, made real).

    Prep: reads "user_id" from the SharedStore
    Exec: fetches the user from the API, retries on network errors
    Post: stores the user data in "user_data"
    Actions: "success" (fetched), "not_found" (no such user), "error" (unrecoverable)
    """

    max_retries = 3

    def __init__(self, api_client: Any) -> None:
        super().__init__()
        self.api_client = api_client

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get_int("user_id")

    def exec(self, ctx: Context, user_id: Any) -> Any:
        try:
            return {"user": self.api_client.get_user(user_id)}
        except UserNotFound:
            return {"user": None}
        # NetworkError propagates: retried

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        return {"error": str(error)}

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        if "error" in exec_result:
            shared.set("error", exec_result["error"])
            return "error"
        if exec_result["user"] is None:
            return "not_found"
        shared.set("user_data", exec_result["user"])
        return "success"


@pytest.mark.parametrize(
    ("user_id", "outages", "action", "calls"),
    [(1, 0, "success", 1), (404, 0, "not_found", 1), (1, 2, "success", 3), (1, 3, "error", 3)],
)
def test_best_practices__document_node_behavior(user_id: int, outages: int, action: str, calls: int) -> None:
    """#### Document Node Behavior — the node does what its comment documents: the three
    actions, the ``user_data`` key and retries on network errors."""

    class APIClient:
        def __init__(self) -> None:
            self.calls = 0

        def get_user(self, user_id: int) -> Any:
            self.calls += 1
            if self.calls <= outages:
                raise NetworkError("timeout")
            if user_id == 404:
                raise UserNotFound(user_id)
            return {"id": user_id, "name": "ada"}

    client = APIClient()
    shared = SharedStore({"user_id": user_id})
    assert run(FetchUserNode(client), shared) == action
    assert client.calls == calls
    assert shared.has("user_data") == (action == "success")


def test_best_practices__batch_operations() -> None:
    """#### Batch Operations — a concurrent batch node instead of a loop over the items."""
    items = [3, 1, 2]
    looped = [item * item for item in items]
    shared = SharedStore()
    shared.set("items", items)
    run(BatchNode(lambda ctx, item: item * item, True), shared)
    assert shared["results"] == looped


@pytest.mark.parametrize(("needs", "loads"), [(True, 1), (False, 0)])
def test_best_practices__lazy_loading(needs: bool, loads: int) -> None:
    """#### Lazy Loading — user data is loaded only when the node needs it."""
    loaded: list[int] = []

    def needs_user_data(shared: SharedStore) -> bool:
        return shared.get_bool("needs_user")

    def load_user_data() -> Any:
        loaded.append(1)
        return {"name": "ada"}

    class ProcessNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            if needs_user_data(shared):
                return load_user_data()
            return None

        def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.set("user", prep_result)
            return None

    shared = SharedStore({"needs_user": needs})
    run(ProcessNode(), shared)
    assert len(loaded) == loads
    assert shared["user"] == ({"name": "ada"} if needs else None)


def test_best_practices__add_observability(caplog: pytest.LogCaptureFixture) -> None:
    """#### Add Observability — exec logs its duration always, and either the success with
    the item count or the error."""

    def process(items: Any) -> Any:
        if items is None:
            raise ValueError("nothing to process")
        return [i * 2 for i in items]

    class ProcessNode(Node):
        def prep(self, ctx: Context, shared: SharedStore) -> Any:
            return shared.get_list("items")

        def exec(self, ctx: Context, prep_result: Any) -> Any:
            start = time.monotonic()
            try:
                try:
                    result = process(prep_result)
                except Exception as err:
                    log.info("ProcessNode error: %s", err)
                    raise
                log.info("ProcessNode success: processed %d items", len(result))
                return result
            finally:
                log.info("ProcessNode took %.4fs", time.monotonic() - start)

    with caplog.at_level(logging.INFO, logger=log.name):
        run(ProcessNode(), SharedStore({"items": [1, 2, 3]}))
        with pytest.raises(NodeError):
            run(ProcessNode(), SharedStore())
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "ProcessNode success: processed 3 items"
    assert messages[1].startswith("ProcessNode took ")
    assert messages[2] == "ProcessNode error: nothing to process"
    assert messages[3].startswith("ProcessNode took ")
