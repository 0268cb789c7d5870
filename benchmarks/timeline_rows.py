"""Rows ``tt_overhead``, ``tt_step_observed``, ``tt_memory``, ``tt_memory_list``, ``tt_seek``
and ``fork_latency``: the cost of keeping every checkpoint (issue 10).

- ``tt_overhead``: the observed counting loop of ``engine_rows`` with the timeline on (values
  kept at each write, every record folded into a ``Timeline`` by the 30 Hz drainer) against
  the same observed loop without it; ``tt_step_observed`` the same against PocketFlow's
  bare step (the ``step_observed`` bar, timeline on).
- ``tt_memory`` / ``tt_memory_list``: bytes the timeline holds per node step (``tracemalloc``,
  the timeline alive minus dropped) for a scalar write per step, and for a list appended in
  place and set again every step.
- ``tt_seek``: the store at random checkpoints of a 1M-step run (median).
- ``fork_latency``: in the app on the ETL sample, from ``R`` to the fork's first record.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

from flyt_engine import Flow, Node

from .engine_rows import engine_observed, pocketflow_bare, pocketflow_missing
from .harness import Row, absolute, clock, interleave, measured, median, unavailable

ROWS = ("tt_overhead", "tt_step_observed", "tt_memory", "tt_memory_list", "tt_seek", "fork_latency")
ROOT = Path(__file__).resolve().parent.parent


class _Writes(Node):
    """A loop writing ``n`` each step (and, with ``append``, one list appended in place)."""

    def __init__(self, limit: int, append: bool) -> None:
        super().__init__(name="writes")
        self.limit = limit
        self.append = append

    def post(self, ctx: Any, shared: Any, prep_result: Any, exec_result: Any) -> str:
        n = shared.get("n", 0) + 1
        if self.append:
            items = shared.get("items") or []
            items.append(n)
            shared.set("items", items)
        shared.set("n", n)
        return "loop" if n < self.limit else "done"


def _timeline_of(steps: int, append: bool) -> Any:
    from flyt_tui.core.session import RunSession
    from flyt_tui.core.timeline import Timeline

    node = _Writes(steps, append)
    node - "loop" >> node
    session = RunSession(Flow(start=node, name="w"), {}, keep_values=True)
    timeline = Timeline()
    snapshots = session.snapshots
    assert snapshots is not None
    session.start()
    while not session.wait(1 / 30):
        timeline.ingest(session.drain_records(), snapshots.take())
    timeline.ingest(session.drain_records(), snapshots.take())
    return timeline


def bytes_per_step(steps: int, append: bool) -> float:
    gc.collect()
    tracemalloc.start()
    timeline = _timeline_of(steps, append)
    gc.collect()
    with_it = tracemalloc.get_traced_memory()[0]
    count = timeline.steps
    del timeline
    gc.collect()
    without = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (with_it - without) / count


def seek_ms(steps: int, probes: int) -> list[float]:
    timeline = _timeline_of(steps, append=False)
    rng = random.Random(3)
    times = []
    for _ in range(probes):
        index = rng.randrange(len(timeline))
        start = clock()
        timeline.store_at(index)
        times.append((clock() - start) * 1e3)
    return times


async def _fork_once() -> float:
    from flyt_tui.app import FlytApp

    from .tui_rows import SIZE, send_key, wait_for

    app = FlytApp(ROOT / "sample_flows" / "etl.py", watch=False, overrides={"pace": 0})
    result: list[float] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: app.loads >= 1, 10)
            await pilot.pause(0.2)
            send_key(app, "r")
            await wait_for(lambda: app.session is not None and app.session.finished, 30)
            await pilot.pause(0.2)
            for key in ("home", "right_curly_bracket", "right_curly_bracket"):
                send_key(app, key)
            await pilot.pause(0.1)
            first = app.session
            start = time.perf_counter()
            send_key(app, "R")
            forked = await wait_for(
                lambda: app.session is not first and bool(app.session.events or app.history.steps), 5, poll=0.0005
            )
            if forked:
                result.append((time.perf_counter() - start) * 1e3)
            if app.session is not None:
                app.session.stop()
    except Exception:
        if not result:  # a teardown hiccup after the measurement does not void it
            raise
    if not result:
        raise RuntimeError("the fork never started")
    return result[0]


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    rows: list[Row] = []
    steps = 10_000 if quick else 100_000
    reps = 3 if quick else 7
    if wanted & {"tt_overhead", "tt_step_observed"}:
        missing = pocketflow_missing()
        contenders = {
            "observed": lambda: engine_observed(steps),
            "timeline": lambda: engine_observed(steps, timeline=True),
        }
        if not missing:
            contenders["pocketflow"] = lambda: pocketflow_bare(steps)
        samples = interleave(contenders, reps)
        us = {name: [t / steps * 1e6 for t in times] for name, times in samples.items()}
        med = {name: median(values) for name, values in us.items()}
        note = f"{steps:,} steps, median of {reps}"
        if "tt_overhead" in wanted:
            rows.append(measured("tt_overhead", med["timeline"], med["observed"], note, **us))
        if "tt_step_observed" in wanted:
            if missing:
                rows.append(unavailable("tt_step_observed", missing))
            else:
                rows.append(measured("tt_step_observed", med["timeline"], med["pocketflow"], note, **us))
    if "tt_memory" in wanted:
        rows.append(absolute("tt_memory", bytes_per_step(steps, False), f"{steps:,} steps, one int written per step"))
    if "tt_memory_list" in wanted:
        note = f"{steps:,} steps, a list appended in place and set again every step (and an int)"
        rows.append(absolute("tt_memory_list", bytes_per_step(steps, True), note))
    if "tt_seek" in wanted:
        seek_steps = 100_000 if quick else 1_000_000
        times = seek_ms(seek_steps, 200)
        note = f"store_at at 200 random checkpoints of a {seek_steps:,}-step run; p95 {sorted(times)[189]:.2f} ms"
        rows.append(absolute("tt_seek", median(times), note, seek=times))
    if "fork_latency" in wanted:
        from .tui_rows import app_missing

        missing_app = app_missing()
        if missing_app:
            rows.append(unavailable("fork_latency", missing_app))
        else:
            times = [asyncio.run(_fork_once()) for _ in range(3 if quick else 7)]
            rows.append(
                absolute(
                    "fork_latency", median(times), "ETL sample, R at step 3 to the fork's first record", fork=times
                )
            )
    return rows
