"""Rows ``tui_memory`` and ``tt_scrub``: the workbench after a 1,000,000-step loop flow.

Measured in a fresh interpreter (``python -m benchmarks.memory_rows FILE``) that opens the
flow in ``FlytApp`` under ``run_test``, presses ``r``, waits for ``done`` and prints its
peak resident set size (``getrusage().ru_maxrss``), so no other row's memory counts.

``tt_scrub`` (issue 10: "a scrub key press renders in ≤ 16 ms"): then, on that run's
timeline, timeline keys are pressed one at a time (``[`` and ``{`` back from the end,
``home``, ``}`` and ``]`` forward); each is timed from the key until the status shows the
new moment and the next frame is drawn (Textual draws at most 60 a second, so the wait for
the frame tick counts). The p95 is the row; the note gives the UI thread's CPU time over
the same spans: the work without that wait.

During the run, a probe on the app's event loop times how late a 10 ms sleep wakes: how
long a key would wait while the UI folds a run that outpaces it (in ``tui_memory``'s note).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .flow_files import write_loop_flow
from .harness import Row, absolute, median, percentile, unavailable

ROWS = ("tui_memory", "tt_scrub")
SCRUB_KEYS = (
    ["left_square_bracket"] * 10
    + ["left_curly_bracket"] * 10
    + ["home"]
    + ["right_curly_bracket"] * 10
    + ["right_square_bracket"] * 10
)
ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def loop_lag(lags: list[float], every: float = 0.01) -> None:
    """How late the app's event loop wakes a 10 ms sleep, in ms, until cancelled: how long
    a key pressed at that moment would have waited."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(every)
        lags.append(max(0.0, time.perf_counter() - asked - every) * 1000)


async def run_in_app(path: Path, timeout: float) -> dict[str, Any]:
    from flyt_tui.app import FlytApp

    from .tui_rows import SIZE, current_session, run_shown_done, send_key, tree_text, wait_for

    app = FlytApp(path, watch=False)
    async with app.run_test(size=SIZE):
        if not await wait_for(lambda: "count" in tree_text(app), 10):
            raise RuntimeError(f"the tree never showed the flow: {tree_text(app)!r}")
        before = peak_rss_mb()
        began = time.perf_counter()
        send_key(app, "r")
        lags: list[float] = []
        probe = asyncio.create_task(loop_lag(lags))
        try:
            if not await wait_for(lambda: run_shown_done(app), timeout, poll=0.05):
                raise RuntimeError(f"the run did not finish within {timeout:.0f} s")
        finally:
            probe.cancel()
        elapsed = time.perf_counter() - began
        session = current_session(app)
        steps = session.store.get("n")
        peak = peak_rss_mb()
        walls, cpus = await scrub_ms(app)
    figures = {"peak_mb": peak, "before_run_mb": before, "seconds": elapsed, "steps": steps, "lag_ms": lags}
    return {**figures, "scrub_ms": walls, "scrub_cpu_ms": cpus}


async def scrub_ms(app: Any) -> tuple[list[float], list[float]]:
    """Each timeline key, from the key to the frame that shows its moment (milliseconds):
    the wall time, and the UI thread's CPU time over the same span (the work, without the
    wait for the frame tick: Textual draws at most 60 frames a second)."""
    from .tui_rows import send_key, wait_for

    frames: list[float] = []
    display = app._display

    def counted(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            frames.append(time.perf_counter())
        display(screen, renderable)

    app._display = counted
    walls, cpus = [], []
    try:
        for key in SCRUB_KEYS:
            before = app.status.state_text
            sent, cpu = time.perf_counter(), time.thread_time()
            send_key(app, key)
            if not await wait_for(lambda before=before: app.status.state_text != before, 5, poll=0.001):
                continue
            shown = time.perf_counter()
            if await wait_for(lambda shown=shown: bool(frames) and frames[-1] > shown, 5, poll=0.001):
                walls.append((frames[-1] - sent) * 1e3)
                cpus.append((time.thread_time() - cpu) * 1e3)
    finally:
        app._display = display
    return walls, cpus


def probe(path: Path) -> None:
    """The child: run the flow in the app, print the figures as JSON on the last line."""
    figures = asyncio.run(run_in_app(path, timeout=600))
    print(json.dumps(figures))


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    if not wanted & set(ROWS):
        return []
    from .tui_rows import app_missing

    missing = app_missing()
    if missing:
        return [unavailable(name, missing) for name in ROWS if name in wanted]
    steps = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="flyt-bench-memory-") as tmp:
        path = write_loop_flow(Path(tmp), steps)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory_rows", str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [unavailable(name, f"probe failed: {last[:200]}") for name in ROWS if name in wanted]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    if figures["steps"] != steps:
        why = f"the run stopped at {figures['steps']} of {steps} steps"
        return [unavailable(name, why) for name in ROWS if name in wanted]
    rows = []
    if "tui_memory" in wanted:
        lags = figures["lag_ms"] or [0.0]
        note = (
            f"{steps:,}-step loop in the app ({figures['seconds']:.1f} s); {figures['before_run_mb']:.0f} MB before "
            f"the run; the app's event loop answered late by {percentile(lags, 95):.0f} ms p95, "
            f"{max(lags):.0f} ms at most"
        )
        rows.append(absolute("tui_memory", figures["peak_mb"], note))
    if "tt_scrub" in wanted:
        scrub = figures["scrub_ms"]
        if not scrub:
            rows.append(unavailable("tt_scrub", "no timeline key was drawn"))
        else:
            cpu = figures["scrub_cpu_ms"]
            note = (
                f"{len(scrub)} timeline keys on the {steps:,}-step run, key to the frame that shows the moment: "
                f"median {median(scrub):.1f} ms; the UI thread's CPU over it median {median(cpu):.1f} ms, "
                f"p95 {percentile(cpu, 95):.1f} ms"
            )
            rows.append(absolute("tt_scrub", percentile(scrub, 95), note, scrub=scrub))
    return rows


if __name__ == "__main__":
    probe(Path(sys.argv[1]))
