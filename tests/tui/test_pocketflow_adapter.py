"""PocketFlow modules open unmodified: the adapter runs them as PocketFlow does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from conftest import SIZE, flow_path, tree_text, wait_loaded, wait_state

pocketflow = pytest.importorskip("pocketflow")

from flyt_engine import SharedStore, run  # noqa: E402
from flyt_engine.graph import describe  # noqa: E402
from flyt_tui.app import FlytApp  # noqa: E402
from flyt_tui.core.loading import load_module  # noqa: E402
from flyt_tui.core.pocketflow_adapter import convert  # noqa: E402


def pocketflow_module(name: str = "pocketflow_style"):
    path = flow_path(name)
    spec = importlib.util.spec_from_file_location(f"pf_native_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_adapted_flow_leaves_the_store_pocketflow_leaves():
    native = pocketflow_module()
    expected: dict = {}
    native.Answer.calls = 0
    native.create_qa_flow().run(expected)
    native.Answer.calls = 0
    shared = SharedStore()
    run(convert(native.create_qa_flow()), shared)
    assert shared.get_all() == expected
    assert expected["tries"] == 2  # the retry happened (cur_retry is set before each attempt)
    assert expected["topics"] == ["flows", "nodes"]  # BatchFlow params reach the inner node
    assert expected["scores"] == [len(word) for word in expected["words"]]


def test_the_graph_shows_pocketflow_successors_and_nesting():
    native = pocketflow_module()
    graph = describe(convert(native.create_qa_flow()))
    names = [node.name for node in graph.nodes]
    assert names[:2] == ["GetQuestion", "Answer"]
    actions = {action for _, action, _ in graph.edges}
    assert {"default", "long", "short"} <= actions
    inner = next(node for node in graph.nodes if node.kind == "flow")
    assert [node.name for node in inner.children.nodes] == ["Split", "Count"]


def test_retries_and_the_fallback_follow_pocketflow():
    class Flaky(pocketflow.Node):
        def exec(self, prep_res):
            raise ValueError("always")

        def exec_fallback(self, prep_res, exc):
            return f"fell back after {self.cur_retry + 1}"

        def post(self, shared, prep_res, exec_res):
            shared["result"] = exec_res

    flaky = Flaky(max_retries=3)
    shared = SharedStore()
    run(convert(pocketflow.Flow(start=flaky)), shared)
    assert shared.get("result") == "fell back after 3"


def test_an_async_pocketflow_module_leaves_the_store_pocketflow_leaves():
    import asyncio

    native = pocketflow_module("pocketflow_async")
    expected: dict = {}
    native.Ask.calls = 0
    asyncio.run(native.create_flow().run_async(expected))
    native.Ask.calls = 0
    shared = SharedStore()
    run(convert(native.create_flow()), shared)
    assert shared.get_all() == expected
    assert expected["tries"] == 2  # the retry happened
    assert expected["lengths"] == [len(word) for word in expected["words"]]  # in item order
    assert expected["tags"] == ["short", "async"]  # AsyncBatchFlow params reach its node


def test_an_async_parallel_batch_node_runs_its_items_at_once():
    import asyncio

    running = [0, 0]

    class Slow(pocketflow.AsyncParallelBatchNode):
        async def prep_async(self, shared):
            return list(range(10))

        async def exec_async(self, item):
            running[0] += 1
            running[1] = max(running)
            await asyncio.sleep(0.01)
            running[0] -= 1
            return item

        async def post_async(self, shared, prep_res, exec_res):
            shared["out"] = exec_res

    shared = SharedStore()
    run(convert(pocketflow.AsyncFlow(start=Slow())), shared)
    assert shared.get("out") == list(range(10))
    assert running[1] == 10


def test_a_pocketflow_module_loads_as_it_is(tmp_path):
    loaded = load_module(flow_path("pocketflow_style"))
    assert [entry.name for entry in loaded.entries] == ["create_qa_flow"]
    assert [entry.name for entry in load_module(flow_path("pocketflow_async")).entries] == ["create_flow"]


async def test_the_workbench_runs_a_pocketflow_module():
    app = FlytApp(Path(flow_path("pocketflow_style")), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        text = tree_text(app)
        for name in ("GetQuestion", "Answer", "long → ", "Split", "ScoreAll", "PerTopic"):
            assert name in text, name
        await pilot.press("r")
        await wait_state(pilot, "done", timeout=20)
        keys = app.store_table.store_keys()
        assert {"asked", "answer", "words", "count", "scores", "topics", "done"} <= set(keys)
        assert app.history.writers["answer"] == "Answer"
        assert "results" not in keys  # PocketFlow writes no results key
        assert "Answer" in app.retry_log.visible_text()  # the failed first attempt
