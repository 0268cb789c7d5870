"""The Flyt docs' chapter "Configuration via Closures" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


class FakeHTTPClient:
    """Stands in for ``http.Client``: records requests, answers from a table of URLs."""

    def __init__(self, responses: dict[str, Any] | None = None) -> None:
        self.responses = responses or {}
        self.requests: list[dict[str, Any]] = []

    def do(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Any:
        self.requests.append({"method": method, "url": url, "headers": dict(headers), "body": body})
        if url not in self.responses:
            raise NetworkError(f"no route to {url}")
        return json.loads(json.dumps(self.responses[url]))  # decoded JSON, as from resp.Body


def test_configuration_via_closures__basic_closure_pattern() -> None:
    """### Basic Closure Pattern — the API key and base URL captured by the closure end up
    in the request."""
    client = FakeHTTPClient({"https://api.example.com/data": {"items": [1, 2]}})

    def create_api_node(api_key: str, base_url: str) -> Node:
        def exec_(ctx: Context, prep_result: Any) -> Any:
            url = f"{base_url}/data"
            return client.do("GET", url, {"Authorization": f"Bearer {api_key}"})

        return Node(exec=exec_, post=lambda ctx, shared, p, e: shared.set("data", e))

    api_node = create_api_node("secret-key-123", "https://api.example.com")
    shared = SharedStore()
    run(api_node, shared)
    assert shared["data"] == {"items": [1, 2]}
    assert client.requests == [
        {
            "method": "GET",
            "url": "https://api.example.com/data",
            "headers": {"Authorization": "Bearer secret-key-123"},
            "body": None,
        }
    ]


def test_configuration_via_closures__stateful_nodes() -> None:
    """### Stateful Nodes — the captured counter numbers every execution; each node made by
    the factory counts on its own, also under concurrent runs."""

    def create_counter_node() -> Node:
        count = 0
        mu = threading.Lock()

        def exec_(ctx: Context, prep_result: Any) -> Any:
            nonlocal count
            with mu:
                count += 1
                current = count
            return f"Execution #{current}"

        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
            shared.update("seen", lambda seen: [*seen, exec_result], default=[])
            return None

        return Node(exec=exec_, post=post)

    counter, other = create_counter_node(), create_counter_node()
    shared = SharedStore()
    threads = [threading.Thread(target=run, args=(counter, shared)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(shared["seen"]) == sorted(f"Execution #{i}" for i in range(1, 7))
    mine = SharedStore()
    run(other, mine)
    assert mine["seen"] == ["Execution #1"]


def test_configuration_via_closures__configuration_objects() -> None:
    """### Configuration Objects — a config struct builds the connection once; every run
    of the node reuses it (sqlite in memory stands in for MySQL)."""

    @dataclass
    class DatabaseConfig:
        host: str
        port: int
        user: str
        password: str
        database: str
        max_conns: int

    opened: list[str] = []

    def create_database_node(config: DatabaseConfig) -> Node:
        dsn = f"{config.user}:{config.password}@tcp({config.host}:{config.port})/{config.database}"
        opened.append(dsn)
        db = sqlite3.connect(":memory:")
        db.executescript("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3);")

        def exec_(ctx: Context, query: Any) -> Any:
            return [{"v": row[0]} for row in db.execute(query)]

        return Node(prep=lambda c, s: s.get_str("query"), exec=exec_, post=lambda c, s, p, e: s.set("rows", e))

    db_node = create_database_node(DatabaseConfig("localhost", 3306, "app", "secret", "myapp", 10))
    for query, rows in (("SELECT v FROM t WHERE v > 1", [{"v": 2}, {"v": 3}]), ("SELECT max(v) FROM t", [{"v": 3}])):
        shared = SharedStore({"query": query})
        run(db_node, shared)
        assert shared["rows"] == rows
    assert opened == ["app:secret@tcp(localhost:3306)/myapp"]


def test_configuration_via_closures__factory_functions() -> None:
    """### Factory Functions — one factory makes a GET and a POST node; each sends its own
    method and headers, and the body from the store as JSON."""
    client = FakeHTTPClient({"https://svc/users": {"ok": True}})

    def create_http_node(method: str, headers: dict[str, str]) -> Node:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            return {"url": shared.get_str("url"), "body": shared.get_dict("body")}

        def exec_(ctx: Context, data: Any) -> Any:
            body = json.dumps(data["body"]).encode() if data.get("body") is not None else None
            return client.do(method, data["url"], headers, body)

        return Node(prep=prep, exec=exec_, post=lambda ctx, shared, p, e: shared.set("response", e))

    get_node = create_http_node("GET", {"Accept": "application/json"})
    post_node = create_http_node("POST", {"Content-Type": "application/json", "Accept": "application/json"})
    run(get_node, SharedStore({"url": "https://svc/users"}))
    shared = SharedStore({"url": "https://svc/users", "body": {"name": "ada"}})
    run(post_node, shared)
    assert shared["response"] == {"ok": True}
    assert [(r["method"], r["headers"], r["body"]) for r in client.requests] == [
        ("GET", {"Accept": "application/json"}, None),
        ("POST", {"Content-Type": "application/json", "Accept": "application/json"}, b'{"name": "ada"}'),
    ]

    with pytest.raises(NodeError) as info:
        run(get_node, SharedStore({"url": "https://svc/missing"}))
    assert isinstance(info.value.__cause__, NetworkError)


def test_configuration_via_closures__resource_management(tmp_path: Any) -> None:
    """### Resource Management — one pre-allocated buffer serves every run; files are read
    through it (at most ``bufferSize`` bytes) and a missing file fails exec."""
    buffers: list[int] = []

    def process_data(chunk: bytes) -> str:
        return chunk.decode().upper()

    def create_file_processor_node(buffer_size: int) -> Node:
        buffer = bytearray(buffer_size)

        def exec_(ctx: Context, file_path: Any) -> Any:
            with open(file_path, "rb") as file:
                n = file.readinto(buffer)
            buffers.append(id(buffer))
            return process_data(bytes(buffer[:n]))

        return Node(prep=lambda c, s: s.get_str("path"), exec=exec_, post=lambda c, s, p, e: s.set("out", e))

    node = create_file_processor_node(8)
    for name, text, expected in (("a.txt", "hello", "HELLO"), ("b.txt", "longer than eight", "LONGER T")):
        (tmp_path / name).write_text(text)
        shared = SharedStore({"path": str(tmp_path / name)})
        run(node, shared)
        assert shared["out"] == expected
    assert len(set(buffers)) == 1  # the same buffer, reused

    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"path": str(tmp_path / "missing.txt")}))
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_configuration_via_closures__middleware_pattern(caplog: pytest.LogCaptureFixture) -> None:
    """### Middleware Pattern — the wrapper logs around every phase of the wrapped node and
    returns exactly what the node returns."""

    def with_logging(name: str, node: Node) -> Node:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            log.info("[%s] Starting prep", name)
            return node.prep(ctx, shared)

        def exec_(ctx: Context, prep_result: Any) -> Any:
            start = time.monotonic()
            result = node.exec(ctx, prep_result)
            log.info("[%s] Exec took %.3fs", name, time.monotonic() - start)
            return result

        def post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
            action = node.post(ctx, shared, prep_result, exec_result)
            log.info("[%s] Returning action: %s", name, action)
            return action

        return Node(prep=prep, exec=exec_, post=post, name=name)

    def create_process_node() -> Node:
        return Node(
            prep=lambda c, s: s.get_int("n"),
            exec=lambda c, n: n * 3,
            post=lambda c, s, p, e: s.set("out", e) or "done",
        )

    process_node = with_logging("processor", create_process_node())
    shared = SharedStore({"n": 5})
    with caplog.at_level(logging.INFO, logger=log.name):
        assert run(process_node, shared) == "done"
    assert shared["out"] == 15
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "[processor] Starting prep"
    assert messages[1].startswith("[processor] Exec took ")
    assert messages[2] == "[processor] Returning action: done"


def test_configuration_via_closures__dynamic_configuration(tmp_path: Any) -> None:
    """### Dynamic Configuration — the config file is read at every run, so a change shows
    up at the next run; a missing file fails prep."""
    config_path = tmp_path / "config.json"

    def process_with_config(config: dict[str, Any]) -> str:
        return f"{config['mode']} x{config['factor']}"

    def create_configurable_node(config_path: str) -> Node:
        def prep(ctx: Context, shared: SharedStore) -> Any:
            with open(config_path) as f:
                return json.load(f)

        return Node(prep=prep, exec=lambda c, cfg: process_with_config(cfg), post=lambda c, s, p, e: s.set("out", e))

    node = create_configurable_node(str(config_path))
    config_path.write_text(json.dumps({"mode": "fast", "factor": 2}))
    shared = SharedStore()
    run(node, shared)
    assert shared["out"] == "fast x2"
    config_path.write_text(json.dumps({"mode": "safe", "factor": 1}))
    run(node, shared)
    assert shared["out"] == "safe x1"

    config_path.unlink()
    with pytest.raises(NodeError) as info:
        run(node, shared)
    assert info.value.phase == "prep" and isinstance(info.value.__cause__, FileNotFoundError)


def test_configuration_via_closures__dependency_injection() -> None:
    """### Dependency Injection — the injected cache answers repeat requests; a miss goes to
    the database and fills the cache; metrics and logger see it all."""

    class FakeCache:
        def __init__(self) -> None:
            self.data: dict[str, Any] = {}

        def get(self, key: str) -> Any:
            if key not in self.data:
                raise KeyError(key)
            return self.data[key]

        def set(self, key: str, value: Any, ttl: float) -> None:
            self.data[key] = value

    class FakeMetrics:
        def __init__(self) -> None:
            self.counts: dict[str, int] = {}

        def inc(self, name: str) -> None:
            self.counts[name] = self.counts.get(name, 0) + 1

    @dataclass
    class Dependencies:
        db: Any
        cache: FakeCache
        logger: logging.Logger
        metrics: FakeMetrics

    queries: list[Any] = []

    def query_db(db: Any, request: Any) -> Any:
        queries.append(request)
        return {"answer": request * 2}

    def create_service_node(deps: Dependencies) -> Node:
        def exec_(ctx: Context, prep_result: Any) -> Any:
            deps.logger.info("Processing request")
            try:
                cached = deps.cache.get("key")
            except KeyError:
                pass
            else:
                deps.metrics.inc("cache_hits")
                return cached
            result = query_db(deps.db, prep_result)
            deps.cache.set("key", result, 3600)
            return result

        return Node(prep=lambda c, s: s.get_int("request"), exec=exec_, post=lambda c, s, p, e: s.set("out", e))

    deps = Dependencies(db=object(), cache=FakeCache(), logger=log, metrics=FakeMetrics())
    node = create_service_node(deps)
    outs = []
    for _ in range(3):
        shared = SharedStore({"request": 21})
        run(node, shared)
        outs.append(shared["out"])
    assert outs == [{"answer": 42}] * 3
    assert queries == [21]
    assert deps.metrics.counts == {"cache_hits": 2}
