"""Rows ``async_batch_1k``, ``async_batch_1k_pocketflow``, ``async_batch_10k``,
``async_batch_bounded`` and ``async_step``: async phases.

Batches: items that each ``await asyncio.sleep(0.01)``, run by an async BatchNode, by a
plain ``asyncio.gather`` of the same coroutines (the floor) and by PocketFlow's
``AsyncParallelBatchNode``, interleaved, each on a fresh event loop. The step: the
counting loop of ``engine_rows`` with ``async def`` phases, against PocketFlow's
``AsyncFlow`` on the same loop.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from flyt_engine import BatchNode, Context, Flow, Node, SharedStore, arun

from .engine_rows import pocketflow_missing
from .harness import Row, clock, interleave, measured, median, unavailable

ROWS = ("async_batch_1k", "async_batch_1k_pocketflow", "async_batch_10k", "async_batch_bounded", "async_step")
ITEM_SLEEP = 0.01


async def _sleeper(item: Any) -> Any:
    await asyncio.sleep(ITEM_SLEEP)
    return item


def gather_floor(count: int) -> float:
    async def main() -> float:
        start = clock()
        results = await asyncio.gather(*(_sleeper(i) for i in range(count)))
        elapsed = clock() - start
        assert len(results) == count
        return elapsed

    return asyncio.run(main())


async def _process(ctx: Context, item: Any) -> Any:
    await asyncio.sleep(ITEM_SLEEP)
    return item


def engine_batch(count: int, concurrency: int = 0) -> float:
    batch = BatchNode(_process, concurrent=True, concurrency=concurrency)

    async def main() -> float:
        shared = SharedStore({"items": list(range(count))})
        start = clock()
        await arun(batch, shared)
        elapsed = clock() - start
        assert shared.get("results") == list(range(count))
        return elapsed

    return asyncio.run(main())


def pocketflow_batch(count: int) -> float:
    import pocketflow

    class Sleepers(pocketflow.AsyncParallelBatchNode):  # type: ignore[misc]
        async def prep_async(self, shared: dict[str, Any]) -> Any:
            return shared["items"]

        async def exec_async(self, item: Any) -> Any:
            await asyncio.sleep(ITEM_SLEEP)
            return item

        async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
            shared["results"] = exec_res

    node = Sleepers()

    async def main() -> float:
        shared: dict[str, Any] = {"items": list(range(count))}
        start = clock()
        await node.run_async(shared)
        elapsed = clock() - start
        assert shared["results"] == list(range(count))
        return elapsed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return asyncio.run(main())


class AsyncCount(Node):
    """``engine_rows.CountNode`` with ``async def`` phases."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    async def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get("n", 0)

    async def exec(self, ctx: Context, prep_result: Any) -> Any:
        return prep_result + 1

    async def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("n", exec_result)
        return "loop" if exec_result < self.limit else "done"


def engine_step(steps: int) -> float:
    node = AsyncCount(steps)
    flow = Flow(node, name="counter").connect(node, "loop", node)
    shared = SharedStore()

    async def main() -> float:
        start = clock()
        await arun(flow, shared)
        return clock() - start

    elapsed = asyncio.run(main())
    assert shared.get("n") == steps
    return elapsed


def pocketflow_step(steps: int) -> float:
    import pocketflow

    class PFCount(pocketflow.AsyncNode):  # type: ignore[misc]
        def __init__(self, limit: int) -> None:
            super().__init__()
            self.limit = limit

        async def prep_async(self, shared: dict[str, Any]) -> Any:
            return shared.get("n", 0)

        async def exec_async(self, prep_res: Any) -> Any:
            return prep_res + 1

        async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
            shared["n"] = exec_res
            return "loop" if exec_res < self.limit else "done"

    node = PFCount(steps)
    node - "loop" >> node
    flow = pocketflow.AsyncFlow(start=node)
    shared: dict[str, Any] = {}

    async def main() -> float:
        start = clock()
        await flow.run_async(shared)
        return clock() - start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elapsed = asyncio.run(main())
    assert shared["n"] == steps
    return elapsed


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    reps = 3 if quick else 9
    missing_pf = pocketflow_missing()
    rows: list[Row] = []
    if wanted & {"async_batch_1k", "async_batch_1k_pocketflow"}:
        contenders = {"engine": lambda: engine_batch(1000), "gather": lambda: gather_floor(1000)}
        if not missing_pf:
            contenders["pocketflow"] = lambda: pocketflow_batch(1000)
        samples = interleave(contenders, reps)
        med = {name: median(times) for name, times in samples.items()}
        note = f"1,000 items × {ITEM_SLEEP * 1000:.0f} ms, unbounded, median of {reps}"
        if "async_batch_1k" in wanted:
            rows.append(
                measured(
                    "async_batch_1k",
                    med["engine"],
                    med["gather"],
                    note,
                    engine=samples["engine"],
                    gather=samples["gather"],
                )
            )
        if "async_batch_1k_pocketflow" in wanted:
            if missing_pf:
                rows.append(unavailable("async_batch_1k_pocketflow", missing_pf))
            else:
                rows.append(
                    measured(
                        "async_batch_1k_pocketflow",
                        med["engine"],
                        med["pocketflow"],
                        note,
                        engine=samples["engine"],
                        pocketflow=samples["pocketflow"],
                    )
                )
    if "async_batch_10k" in wanted:
        samples = interleave({"engine": lambda: engine_batch(10_000), "gather": lambda: gather_floor(10_000)}, reps)
        rows.append(
            measured(
                "async_batch_10k",
                median(samples["engine"]),
                median(samples["gather"]),
                f"10,000 items × {ITEM_SLEEP * 1000:.0f} ms, unbounded, median of {reps}",
                **samples,
            )
        )
    if "async_batch_bounded" in wanted:
        samples = interleave({"engine": lambda: engine_batch(1000, concurrency=100)}, reps)
        ideal = 1000 * ITEM_SLEEP / 100
        rows.append(
            measured(
                "async_batch_bounded",
                median(samples["engine"]),
                ideal,
                f"1,000 items × {ITEM_SLEEP * 1000:.0f} ms at concurrency=100 (ideal {ideal:.1f} s), median of {reps}",
                **samples,
            )
        )
    if "async_step" in wanted:
        if missing_pf:
            rows.append(unavailable("async_step", missing_pf))
        else:
            steps = 10_000 if quick else 100_000
            samples = interleave(
                {"engine": lambda: engine_step(steps), "pocketflow": lambda: pocketflow_step(steps)}, reps
            )
            us = {name: [t / steps * 1e6 for t in times] for name, times in samples.items()}
            rows.append(
                measured(
                    "async_step",
                    median(us["engine"]),
                    median(us["pocketflow"]),
                    f"{steps:,} steps of async def phases, median of {reps}",
                    **us,
                )
            )
    return rows
