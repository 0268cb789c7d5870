"""API.md "Version 2": phase signatures, the store as a Mapping, BatchNode subclasses,
one failure one entry, nothing after cancellation, and ``>>`` flows."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import pytest

from flyt_engine import (
    BatchError,
    BatchNode,
    BindError,
    Cancelled,
    Context,
    Flow,
    Node,
    NodeError,
    SharedStore,
    run,
)
from flyt_engine.events import ExecFailed, NodeFailed, NodeStarted, StoreChanged
from flyt_engine.graph import describe, to_mermaid


def observed(node, shared=None, ctx=None):
    events = []
    ctx = (ctx or Context.background()).with_observer(events.append)
    try:
        outcome = run(node, shared, ctx=ctx)
    except Exception as exc:
        outcome = exc
    return events, outcome


# -- phase signatures ---------------------------------------------------------------------
def test_pocketflow_style_prep_is_a_type_error_at_class_definition():
    with pytest.raises(TypeError) as info:

        class Summarize(Node):
            def prep(self, shared):
                return shared["text"]

    text = str(info.value)
    assert "Summarize" in text and "prep" in text and "(self, ctx, shared)" in text


@pytest.mark.parametrize(
    ("phase", "fn"),
    [
        ("prep", lambda shared: None),
        ("exec", lambda: None),
        ("post", lambda ctx, shared, prep_result: None),
        ("fallback", lambda error: None),
    ],
)
def test_functional_phase_with_wrong_parameters_is_a_type_error_when_built(phase, fn):
    with pytest.raises(TypeError, match="'checked'"):
        Node(name="checked", **{phase: fn})


def test_phases_with_defaults_and_star_args_are_accepted():
    class Flexible(Node):
        def exec(self, ctx, prep_result=None, *rest):
            return 1

        def post(self, *args):
            return None

    assert run(Flexible()) == "default"
    assert run(Node(exec=lambda *args: 1)) == "default"


def test_batch_process_signature_is_checked():
    with pytest.raises(TypeError, match="process"):
        BatchNode(lambda item: item)


async def _async_exec(ctx, prep_result):
    return 1


class _AsyncCallable:
    async def __call__(self, ctx, prep_result):
        return 1


@pytest.mark.parametrize(
    "fn", [_async_exec, functools.partial(_async_exec), _AsyncCallable()], ids=["def", "partial", "callable"]
)
def test_an_async_phase_is_found_when_the_node_is_built_and_awaited(fn):
    node = Node(exec=fn, name="talker", post=lambda ctx, shared, p, e: shared.set("got", e))
    assert node._async == {"exec"}
    shared = SharedStore()
    run(node, shared)
    assert shared.get("got") == 1


def test_an_async_method_is_found_when_the_class_is_defined():
    class Fetch(Node):
        async def prep(self, ctx, shared):
            return 2

    assert Fetch._async == {"prep"}
    assert Node._async == frozenset()


# -- BatchNode subclasses (PocketFlow's habit) ----------------------------------------------
class Doubler(BatchNode):
    def prep(self, ctx, shared):
        return shared["numbers"]

    def process(self, ctx, item):
        if item < 0:
            raise ValueError(f"negative {item}")
        return item * 2

    def post(self, ctx, shared, prep_result, exec_result):
        shared["seen_by_post"] = (list(prep_result), list(exec_result))
        return "summed"


def test_batch_subclass_prep_builds_the_items_and_post_sees_items_and_results():
    shared = SharedStore({"numbers": [1, 2, 3]})
    assert run(Doubler(), shared) == "summed"
    assert shared["results"] == [2, 4, 6]
    assert shared["seen_by_post"] == ([1, 2, 3], [2, 4, 6])


def test_batch_subclass_with_its_own_post_does_not_swallow_item_failures():
    shared = SharedStore({"numbers": [1, -2, 3]})
    with pytest.raises(BatchError) as info:
        run(Doubler(), shared)
    assert info.value.message == "1/3 items failed"
    assert shared["results"] == [2, None, 6]  # the partial results are written first
    assert "seen_by_post" not in shared  # post does not run when items failed


def test_batch_subclass_prep_returning_none_is_no_items():
    class Nothing(Doubler):
        def prep(self, ctx, shared):
            return None

    shared = SharedStore()
    run(Nothing(), shared)
    assert shared["results"] == []


def test_batch_subclass_post_calling_super_writes_once():
    writes = []

    class Chained(Doubler):
        def post(self, ctx, shared, prep_result, exec_result):
            super().post(ctx, shared, prep_result, exec_result)
            return "chained"

    ctx = Context.background().with_observer(
        lambda e: writes.append(e.key) if isinstance(e, StoreChanged) and e.key == "results" else None
    )
    assert run(Chained(), SharedStore({"numbers": [1]}), ctx=ctx) == "chained"
    assert writes == ["results"]


# -- one failure, one entry -------------------------------------------------------------------
def _nested(depth: int, leaf: Node) -> Flow:
    inner: Node = leaf
    for level in range(depth):
        inner = Flow(inner, name=f"level{level}")
    return inner  # type: ignore[return-value]


def test_a_failure_deep_in_nested_flows_is_reported_once():
    leaf = Node(exec=lambda ctx, p: 1 / 0, name="leaf")
    events, outcome = observed(_nested(5, leaf))
    assert isinstance(outcome, NodeError) and outcome.node is leaf
    failed = [e for e in events if isinstance(e, ExecFailed)]
    assert [e.node for e in failed] == ["leaf"]


def test_a_retried_flow_reports_only_its_nodes_failures():
    calls = []

    def flaky(ctx, p):
        calls.append(1)
        raise RuntimeError("boom")

    leaf = Node(exec=flaky, name="leaf")
    outer = Flow(leaf, name="outer", max_retries=3)
    events, outcome = observed(outer)
    assert isinstance(outcome, NodeError)
    assert len(calls) == 3  # the flow re-ran three times
    assert [e.node for e in events if isinstance(e, ExecFailed)] == ["leaf"] * 3


# -- nothing starts after cancellation --------------------------------------------------------
def test_no_node_starts_after_the_context_is_cancelled():
    ctx, cancel = Context.background().with_cancel()

    def stop(ctx, shared, p, e):
        cancel()
        return None

    first = Node(post=stop, name="first")
    second = Node(name="second")
    flow = Flow(first, name="f").connect(first, "default", second)
    events, outcome = observed(flow, ctx=ctx)
    assert isinstance(outcome, Cancelled)
    assert "second" not in [e.node for e in events if isinstance(e, NodeStarted)]
    assert "second" not in [e.node for e in events if isinstance(e, NodeFailed)]


# -- the store as a Mapping ------------------------------------------------------------------
def test_store_is_a_mapping_that_dict_code_accepts():
    store = SharedStore({"a": 1, "b": 2})
    assert isinstance(store, Mapping)
    assert dict(store) == {"a": 1, "b": 2}
    assert {**store} == {"a": 1, "b": 2}
    assert sorted(store.items()) == [("a", 1), ("b", 2)]
    assert sorted(store.values()) == [1, 2]
    assert store == {"a": 1, "b": 2}
    assert store != {"a": 1}
    assert SharedStore(store) == store


def test_pop_and_setdefault_are_writes_reported_to_the_run():
    store = SharedStore({"a": 1})
    assert store.pop("a") == 1
    assert store.pop("a", "gone") == "gone"
    with pytest.raises(KeyError):
        store.pop("a")
    assert store.setdefault("b", []) == []
    store.setdefault("b", ["other"]).append(1)
    assert store["b"] == [1]

    def body(ctx, shared, p, e):
        shared.setdefault("x", 1)
        shared.setdefault("x", 2)  # present: no write
        shared.pop("x")

    events, _ = observed(Node(post=body, name="w"), SharedStore())
    writes = [(e.key, e.value, e.deleted) for e in events if isinstance(e, StoreChanged)]
    assert writes == [("x", 1, False), ("x", None, True)]


def test_a_subclass_overriding_get_gets_its_override_called():
    class Defaulting(SharedStore):
        def get(self, key, default=None):
            return super().get(key, "fallback")

    assert Defaulting().get("missing") == "fallback"


def test_bind_rejects_bool_for_int_and_float():
    store = SharedStore({"flag": True, "n": 3})
    with pytest.raises(BindError, match="flag"):
        store.bind("flag", int)
    with pytest.raises(BindError, match="flag"):
        store.bind("flag", float)
    assert store.bind("n", int) == 3
    assert store.bind("flag", bool) is True


# -- >> flows ----------------------------------------------------------------------------------
def _counter(name: str, log: list[str]) -> Node:
    return Node(exec=lambda ctx, p: log.append(name), name=name)


def test_rshift_chains_and_routes():
    log: list[str] = []
    a, b, c = (_counter(n, log) for n in "abc")
    assert (a >> b >> c) is c
    assert run(Flow(a)) == "default"
    assert log == ["a", "b", "c"]


def test_minus_action_rshift_routes_on_that_action():
    log: list[str] = []
    check = Node(post=lambda ctx, s, p, e: "bad" if s.get("bad") else "good", name="check")
    good, bad = _counter("good", log), _counter("bad", log)
    check - "good" >> good
    check - "bad" >> bad
    run(Flow(check), SharedStore({"bad": True}))
    assert log == ["bad"]
    assert Flow(check).successors(check) == {"good": good, "bad": bad}


def test_a_flows_connect_wins_over_the_nodes_own_successor():
    log: list[str] = []
    a, b, c = (_counter(n, log) for n in "abc")
    a >> b
    run(Flow(a).connect(a, "default", c))
    assert log == ["a", "c"]


def test_rshift_after_the_flow_ran_takes_effect():
    log: list[str] = []
    a, b = _counter("a", log), _counter("b", log)
    flow = Flow(a)
    run(flow)
    a >> b
    run(flow)
    assert log == ["a", "a", "b"]


def test_rshift_flows_are_observed_like_connected_ones():
    log: list[str] = []
    a, b = _counter("a", log), _counter("b", log)
    a >> b
    events, outcome = observed(Flow(a, name="f"))
    assert outcome == "default"
    assert [e.node for e in events if isinstance(e, NodeStarted)] == ["f", "a", "b"]


def test_rshift_flows_are_described_and_drawn():
    a, b = Node(name="a"), Node(name="b")
    a - "next" >> b
    graph = describe(Flow(a, name="f"))
    assert [n.name for n in graph.nodes] == ["a", "b"]
    assert graph.edges == [(id(a), "next", id(b))]
    assert '"next"' in to_mermaid(graph)


def test_minus_with_a_non_string_is_a_type_error():
    with pytest.raises(TypeError):
        Node() - 3  # type: ignore[operator]


def test_rshift_loop_runs_until_post_ends_it():
    counter = Node(
        post=lambda ctx, s, p, e: "again" if s.update("n", lambda v: v + 1, 0) < 5 else "stop",
        name="counter",
    )
    counter - "again" >> counter
    shared = SharedStore()
    assert run(Flow(counter), shared) == "stop"
    assert shared["n"] == 5


def test_name_chosen_and_adopt_name():
    assert Node(name="x").name_chosen
    unnamed = Node()
    assert not unnamed.name_chosen
    unnamed.adopt_name("fetch")
    assert unnamed.name == "fetch" and unnamed.name_chosen

    class Plain(Node):
        pass

    class Named(Node):
        name = "given"

    assert not Plain().name_chosen
    assert Named().name_chosen


# -- one retry policy (attempts.py) for nodes and batch items ----------------------------------
def _cancels_own_child(ctx, value):
    child, cancel = ctx.with_cancel()
    cancel()
    child.check()  # raises Cancelled: not the run's cancellation, not a deadline


def _own_deadline(ctx, value):
    child, _ = ctx.with_timeout(0)
    child.check()  # raises DeadlineExceeded from a timeout the phase set itself


def _node_outcome(fn):
    calls, fallbacks = [], []

    def exec_(ctx, p):
        calls.append(1)
        return fn(ctx, p)

    node = Node(exec=exec_, max_retries=3, fallback=lambda p, e: fallbacks.append(e) or "fb", name="n")
    try:
        outcome = run(node)
    except BaseException as exc:
        outcome = exc
    return type(outcome), len(calls), len(fallbacks)


def _batch_outcome(fn, mode):
    from concurrent.futures import ThreadPoolExecutor

    calls, fallbacks = [], []

    def process(ctx, item):
        calls.append(item)
        return fn(ctx, item)

    kwargs = {"concurrent": mode != "sequential"}
    executor = ThreadPoolExecutor(2) if mode == "executor" else None
    node = BatchNode(
        process, max_retries=3, fallback=lambda item, e: fallbacks.append(e) or "fb", executor=executor, **kwargs
    )
    try:
        run(node, SharedStore({"items": [1]}))
        outcome = None
    except BaseException as exc:
        outcome = exc
    finally:
        if executor is not None:
            executor.shutdown()
    return type(outcome), len(calls), len(fallbacks)


@pytest.mark.parametrize("mode", ["sequential", "threads", "executor"])
def test_a_cancelled_child_context_ends_the_run_for_nodes_and_batch_items_alike(mode):
    node_kind, node_calls, node_fallbacks = _node_outcome(_cancels_own_child)
    batch_kind, batch_calls, batch_fallbacks = _batch_outcome(_cancels_own_child, mode)
    assert node_kind is Cancelled and batch_kind is Cancelled
    assert node_calls == batch_calls == 1  # not retried
    assert node_fallbacks == batch_fallbacks == 0  # no fallback


@pytest.mark.parametrize("mode", ["sequential", "threads", "executor"])
def test_an_own_deadline_is_retried_then_falls_back_for_nodes_and_batch_items_alike(mode):
    assert _node_outcome(_own_deadline) == (str, 3, 1)
    assert _batch_outcome(_own_deadline, mode) == (type(None), 3, 1)
