"""An error of a batch itself (not of an item) is final: never retried with the per-item
settings, never handed to the per-item fallback."""

from __future__ import annotations

import pytest

from flyt_engine import BatchNode, Context, NodeError, SharedStore, run


def test_observer_failure_inside_a_batch_is_not_retried_per_item():
    fallbacks: list[object] = []
    starts: list[int] = []

    def observer(event):
        if event.kind == "batch_started":
            starts.append(1)
        if event.kind == "batch_item_finished":
            raise RuntimeError("observer broke")

    node = BatchNode(
        lambda ctx, item: item,
        concurrent=False,
        max_retries=3,
        fallback=lambda item, error: fallbacks.append(item),
        name="items",
    )
    with pytest.raises(NodeError) as info:
        run(node, SharedStore({"items": [1, 2]}), ctx=Context.background().with_observer(observer))
    assert info.value.phase == "exec" and info.value.node_name == "items"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert starts == [1]  # the batch ran once
    assert fallbacks == []  # the per-item fallback never saw the item list
