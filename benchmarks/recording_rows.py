"""Rows ``record_overhead``, ``record_size`` and ``reopen``: the cost of recording a run, and
of opening a recording (issue 11).

- ``record_overhead``: the observed counting loop of ``engine_rows`` with recording on (values
  kept at each write, each drained batch handed to a ``RecordingWriter``), from the start of
  the run until the bundle is closed, against the same observed loop without it. The note
  says what the run thread itself spent per step beyond the unobserved run.
- ``record_size``: bytes of bundle per node step, for a loop writing one int per step.
- ``reopen``: a 1M-step bundle opened with ``flyt-tui FILE.flyt.jsonl`` on a pty, as
  ``tui_start`` does: time to the first screen (its graph drawn), median of 3; the note
  says how long the same takes for a 7-step bundle, and how long the workbench
  (``run_test``) takes to index the whole run (the status says done; bar 5 s).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .engine_rows import engine_bare, engine_observed, loop_flow
from .harness import Row, absolute, clock, interleave, measured, median

ROWS = ("record_overhead", "record_size", "reopen")


def engine_recorded(steps: int, bundle: Path, *, closed: bool = True) -> float:
    """``engine_observed`` with recording on: seconds from the start of the run until the
    bundle is written (``closed``) or until the run ended."""
    from flyt_tui.core.recording import start_recording
    from flyt_tui.core.session import RunSession, RunState

    flow = loop_flow(steps)
    session = RunSession(flow, {}, keep_values=True)
    writer = start_recording(bundle, flow, {})
    snapshots = session.snapshots
    assert snapshots is not None
    stop = threading.Event()

    def handle(records: list[Any]) -> None:
        writer.feed(records, snapshots.take())

    def drainer() -> None:
        while not stop.wait(1 / 30):
            session.pump(handle)
        session.pump(handle)

    thread = threading.Thread(target=drainer, name="bench-drain", daemon=True)
    thread.start()
    start = clock()
    session.run_blocking()
    ran = clock() - start
    stop.set()
    thread.join()
    assert writer.close(120)
    elapsed = clock() - start
    assert session.state is RunState.DONE, (session.state, session.error)
    assert writer.error is None, writer.error
    return elapsed if closed else ran


def bundle_size(steps: int, folder: Path) -> float:
    bundle = folder / "size.flyt.jsonl"
    engine_recorded(steps, bundle)
    lines = bundle.read_bytes().split(b"\n")
    head = sum(len(line) + 1 for line in lines[:3])
    return (bundle.stat().st_size - head) / (steps + 1)


async def _reopen(bundle: Path) -> tuple[float, float]:
    from flyt_tui.app import FlytApp

    from .tui_rows import SIZE, wait_for

    start = time.perf_counter()
    app = FlytApp(bundle, watch=False)
    first = done = float("nan")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: app.loads >= 1 and app.status.state == "running", 30, poll=0.001)
        await pilot.pause()
        first = time.perf_counter() - start
        if await wait_for(lambda: app.status.state in ("done", "failed", "stopped"), 300, poll=0.01):
            done = time.perf_counter() - start
    return first, done


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    rows: list[Row] = []
    steps = 10_000 if quick else 100_000
    reps = 3 if quick else 7
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        if "record_overhead" in wanted:
            bundle = path / "overhead.flyt.jsonl"
            samples = interleave(
                {
                    "observed": lambda: engine_observed(steps),
                    "recorded": lambda: engine_recorded(steps, bundle),
                    "recorded_run": lambda: engine_recorded(steps, bundle, closed=False),
                    "unobserved": lambda: engine_bare(steps),
                },
                reps,
            )
            us = {name: [t / steps * 1e6 for t in times] for name, times in samples.items()}
            med = {name: median(values) for name, values in us.items()}
            extra = med["recorded_run"] - med["unobserved"]
            note = (
                f"{steps:,} steps to the closed bundle, median of {reps}; the run itself "
                f"{med['recorded_run']:.2f} µs/step, {extra:+.2f} µs/step over unobserved ({med['unobserved']:.2f})"
            )
            rows.append(measured("record_overhead", med["recorded"], med["observed"], note, **us))
        if "record_size" in wanted:
            size = bundle_size(steps, path)
            rows.append(absolute("record_size", size, f"{steps:,} steps, one int written per step"))
        if "reopen" in wanted:
            from .tui_rows import app_missing

            missing = app_missing()
            if missing:
                from .harness import unavailable

                rows.append(unavailable("reopen", missing))
            else:
                from .tui_rows import start_once

                big = 100_000 if quick else 1_000_000
                bundle = path / "big.flyt.jsonl"
                small = path / "small.flyt.jsonl"
                engine_recorded(big, bundle)
                engine_recorded(6, small)
                firsts = [start_once(str(bundle)) for _ in range(3)]
                tiny = median([start_once(str(small)) for _ in range(3)])
                _, done = asyncio.run(_reopen(bundle))
                size_mb = bundle.stat().st_size / 1e6
                note = (
                    f"{big:,}-step bundle ({size_mb:.0f} MB), flyt-tui FILE to its first screen, median of 3 "
                    f"(a 7-step bundle: {tiny:.2f} s); fully indexed in the workbench in {done:.2f} s (bar 5 s)"
                )
                rows.append(absolute("reopen", median(firsts), note, first=firsts, indexed=[done]))
    return rows
