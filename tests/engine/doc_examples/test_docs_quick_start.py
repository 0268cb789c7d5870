"""The Flyt docs' chapter "Quick Start" (``seed/flyt-docs.md``): its Go examples, ported.

Each test is one documented section (``test_<chapter>__<section>``), the Go code ported as
literally as Python allows; every documented second is ``SECOND``."""

from __future__ import annotations

from ported import *


def test_quick_start__your_first_node(capsys: pytest.CaptureFixture[str]) -> None:
    """### Your First Node — a node with just an exec function completes with the default action."""

    def exec_(ctx: Context, prep_result: Any) -> Any:
        print("Processing data...")
        return "Hello, Flyt!"

    node = Node(exec=exec_)
    shared = SharedStore()
    ctx, events = observed()
    action = run(node, shared, ctx=ctx)
    print(f"Completed with action: {action}")
    assert capsys.readouterr().out.splitlines() == ["Processing data...", "Completed with action: default"]
    assert exec_results(events, "exec_") == ["Hello, Flyt!"]


def test_quick_start__building_a_flow(capsys: pytest.CaptureFixture[str]) -> None:
    """### Building a Flow — fetch stores its data; process reads it with ``GetMap``."""

    def fetch_exec(ctx: Context, prep_result: Any) -> Any:
        print("Fetching data...")
        return {"data": "important info"}

    def fetch_post(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("fetched_data", exec_result)
        return DEFAULT_ACTION

    def process_exec(ctx: Context, prep_result: Any) -> Any:
        print(f"Processing: {prep_result['data']}")
        return "processed: " + str(prep_result["data"])

    fetch_node = Node(exec=fetch_exec, post=fetch_post)
    process_node = Node(prep=lambda ctx, shared: shared.get_dict("fetched_data"), exec=process_exec)
    flow = Flow(fetch_node)
    flow.connect(fetch_node, DEFAULT_ACTION, process_node)
    shared = SharedStore()
    ctx, events = observed()
    flow.run(shared, ctx=ctx)
    print("Flow completed successfully!")
    out = capsys.readouterr().out.splitlines()
    assert out == ["Fetching data...", "Processing: important info", "Flow completed successfully!"]
    assert exec_results(events, "process_exec") == ["processed: important info"]


def test_quick_start__adding_error_handling(capsys: pytest.CaptureFixture[str]) -> None:
    """### Adding Error Handling — the flaky operation fails once and succeeds on attempt 2
    of 3, one (scaled) second later."""

    def create_robust_node() -> Node:
        attempts = 0

        def exec_(ctx: Context, prep_result: Any) -> Any:
            nonlocal attempts
            attempts += 1
            print(f"Attempt {attempts}...")
            if attempts < 2:
                raise RuntimeError("temporary failure")
            return "Success!"

        return Node(exec=exec_, max_retries=3, wait=SECOND)

    ctx, events = observed()
    assert run(create_robust_node(), ctx=ctx) == DEFAULT_ACTION
    assert capsys.readouterr().out.splitlines() == ["Attempt 1...", "Attempt 2..."]
    assert exec_results(events, "exec_") == ["Success!"]
    assert [(f.attempt, f.max_attempts, f.wait) for f in failures(events)] == [(1, 3, SECOND)]


def test_quick_start__using_shared_store(capsys: pytest.CaptureFixture[str]) -> None:
    """### Using Shared Store — the node reads the config set before the run."""
    shared = SharedStore()
    shared.set("config", {"timeout": 30, "retries": 3})

    def exec_(ctx: Context, prep_result: Any) -> Any:
        print(f"Using config: {prep_result}")
        return "configured"

    node = Node(prep=lambda ctx, shared: shared.get_dict("config"), exec=exec_)
    run(node, shared, ctx=Context.background())
    assert capsys.readouterr().out == "Using config: {'timeout': 30, 'retries': 3}\n"
