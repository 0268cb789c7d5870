"""Row ``batch_dask``: the batch_io workload on a 2-worker Dask LocalCluster.

The engine's concurrent BatchNode with ``flyt_engine.dask.executor(...)`` against
``client.map`` + ``gather`` of the same function, on one shared, warmed-up cluster. Each
worker gets 32 threads so the cluster holds the 64 items in flight that concurrency 64 asks
for (with one thread per core, both contenders would just measure 1000 × 10 ms / 2).
"""

from __future__ import annotations

import logging
from typing import Any

from flyt_engine import BatchConfig, BatchNode, SharedStore, run

from .batch_rows import CONCURRENCY, SLEEP
from .batch_rows import io_item as sleep_item
from .batch_rows import io_process as sleep_process
from .harness import Row, clock, interleave, measured, median, unavailable

ROWS = ("batch_dask",)

WORKERS = 2


def make_executor(client: Any) -> Any:
    """``flyt_engine.dask.executor`` on the shared cluster's client (it does not own it)."""
    from flyt_engine.dask import executor

    return executor(client=client)


def engine_dask(executor: Any, items: list[int]) -> float:
    node = BatchNode(sleep_process, concurrent=True, config=BatchConfig(executor=executor, concurrency=CONCURRENCY))
    shared = SharedStore({"items": items})
    start = clock()
    run(node, shared)
    elapsed = clock() - start
    assert shared.get("results") == items
    return elapsed


def client_map(client: Any, items: list[int]) -> float:
    start = clock()
    futures = client.map(sleep_item, items, pure=False)
    results = client.gather(futures)
    elapsed = clock() - start
    assert results == items
    return elapsed


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    if "batch_dask" not in wanted:
        return []
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return [unavailable("batch_dask", "dask[distributed] is not installed: pip install -e '.[bench]'")]
    try:
        import flyt_engine.dask  # noqa: F401
    except ImportError as exc:
        return [unavailable("batch_dask", f"flyt_engine.dask is not importable: {exc}")]

    logging.getLogger("distributed").setLevel(logging.ERROR)
    count = 200 if quick else 1000
    reps = 3 if quick else 7
    items = list(range(count))
    threads = CONCURRENCY // WORKERS
    with (
        LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        executor = make_executor(client)
        # Warm up: workers import this module, connections open, both paths run once.
        client.gather(client.map(sleep_item, range(CONCURRENCY * 2), pure=False))
        samples = interleave(
            {"engine": lambda: engine_dask(executor, items), "client.map": lambda: client_map(client, items)},
            reps,
        )
        shutdown = getattr(executor, "shutdown", None)
        if shutdown is not None:
            try:
                shutdown(wait=True)
            except Exception:
                pass
    note = f"{count:,} items × {SLEEP * 1000:.0f} ms, {WORKERS} workers × {threads} threads, median of {reps}"
    return [
        measured(
            "batch_dask",
            median(samples["engine"]),
            median(samples["client.map"]),
            note,
            engine=samples["engine"],
            client_map=samples["client.map"],
        )
    ]
