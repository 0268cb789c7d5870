"""A DeadlineExceeded from a timeout the node set itself is an ordinary failure (retried, then
the fallback), as in Go; the run's own cancellation stops the run unwrapped."""

from __future__ import annotations

import pytest

from flyt_engine import Cancelled, Context, DeadlineExceeded, Node, NodeError, run


def exec_with_own_timeout(calls: list[int]):
    def exec_(ctx: Context, prep):
        calls.append(1)
        inner, cancel = ctx.with_timeout(0.01)
        try:
            inner.sleep(5)
        finally:
            cancel()

    return exec_


def test_own_deadline_is_retried_then_wrapped():
    calls: list[int] = []
    node = Node(exec=exec_with_own_timeout(calls), max_retries=3, name="slow_call")
    with pytest.raises(NodeError) as info:
        run(node)
    assert len(calls) == 3
    assert info.value.phase == "exec" and info.value.attempts == 3
    assert isinstance(info.value.__cause__, DeadlineExceeded)


def test_own_deadline_reaches_the_fallback():
    calls: list[int] = []
    node = Node(
        exec=exec_with_own_timeout(calls),
        fallback=lambda prep, error: f"fallback after {type(error).__name__}",
        post=lambda ctx, shared, p, e: shared.set("result", e),
    )
    from flyt_engine import SharedStore

    store = SharedStore()
    run(node, store)
    assert store["result"] == "fallback after DeadlineExceeded"


def test_cancelled_run_is_never_retried_nor_wrapped():
    ctx, cancel = Context.background().with_cancel()
    fallbacks: list[BaseException] = []

    def exec_(c: Context, prep):
        cancel()
        c.sleep(5)

    node = Node(exec=exec_, max_retries=5, fallback=lambda p, e: fallbacks.append(e))
    with pytest.raises(Cancelled) as info:
        run(node, ctx=ctx)
    assert not isinstance(info.value, NodeError)
    assert fallbacks == []
