"""Rows ``batch_io``, ``batch_io_pool`` and ``batch_seq``: what a batch costs around its items.

``batch_io``: 1,000 items that each sleep 10 ms at concurrency 64, against the ideal
(1000 × 10 ms / 64) and against a raw ``ThreadPoolExecutor(64)`` doing the same.
``batch_seq``: a sequential batch of 100,000 trivial items against PocketFlow's BatchNode.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flyt_engine import BatchConfig, BatchNode, Context, SharedStore, run

from .engine_rows import pocketflow_missing
from .harness import Row, clock, interleave, measured, median, unavailable

ROWS = ("batch_io", "batch_io_pool", "batch_seq")

SLEEP = 0.01
CONCURRENCY = 64


def io_item(item: int) -> int:
    time.sleep(SLEEP)
    return item


def io_process(ctx: Context, item: int) -> int:
    return io_item(item)


def engine_io(items: list[int]) -> float:
    node = BatchNode(io_process, concurrent=True, config=BatchConfig(concurrency=CONCURRENCY))
    shared = SharedStore({"items": items})
    start = clock()
    run(node, shared)
    elapsed = clock() - start
    assert shared.get("results") == items
    return elapsed


def raw_pool_io(items: list[int]) -> float:
    start = clock()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(io_item, items))
    elapsed = clock() - start
    assert results == items
    return elapsed


def trivial(ctx: Context, item: int) -> int:
    return item + 1


def engine_seq(items: list[int]) -> float:
    node = BatchNode(trivial)
    shared = SharedStore({"items": items})
    start = clock()
    run(node, shared)
    elapsed = clock() - start
    results = shared.get("results")
    assert len(results) == len(items) and results[-1] == items[-1] + 1
    return elapsed


def pocketflow_seq(items: list[int]) -> float:
    import pocketflow

    class PFBatch(pocketflow.BatchNode):
        def prep(self, shared: dict[str, Any]) -> Any:
            return shared["items"]

        def exec(self, item: Any) -> Any:
            return item + 1

        def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
            shared["results"] = exec_res

    node = PFBatch()
    shared: dict[str, Any] = {"items": items}
    start = clock()
    node.run(shared)
    elapsed = clock() - start
    results = shared["results"]
    assert len(results) == len(items) and results[-1] == items[-1] + 1
    return elapsed


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    rows: list[Row] = []
    if wanted & {"batch_io", "batch_io_pool"}:
        count = 256 if quick else 1000
        reps = 3 if quick else 9
        items = list(range(count))
        ideal = count * SLEEP / CONCURRENCY
        samples = interleave({"engine": lambda: engine_io(items), "pool": lambda: raw_pool_io(items)}, reps)
        ours, pool = median(samples["engine"]), median(samples["pool"])
        note = f"{count:,} items × {SLEEP * 1000:.0f} ms at concurrency {CONCURRENCY}, median of {reps}"
        if "batch_io" in wanted:
            rows.append(measured("batch_io", ours, ideal, note, engine=samples["engine"]))
        if "batch_io_pool" in wanted:
            rows.append(measured("batch_io_pool", ours, pool, note, engine=samples["engine"], pool=samples["pool"]))
    if "batch_seq" in wanted:
        missing = pocketflow_missing()
        if missing:
            rows.append(unavailable("batch_seq", missing))
        else:
            count = 10_000 if quick else 100_000
            reps = 3 if quick else 9
            items = list(range(count))
            samples = interleave(
                {"engine": lambda: engine_seq(items), "pocketflow": lambda: pocketflow_seq(items)}, reps
            )
            us = {name: [t / count * 1e6 for t in times] for name, times in samples.items()}
            rows.append(
                measured(
                    "batch_seq",
                    median(us["engine"]),
                    median(us["pocketflow"]),
                    f"{count:,} items, median of {reps}",
                    engine=us["engine"],
                    pocketflow=us["pocketflow"],
                )
            )
    return rows
