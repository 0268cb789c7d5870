"""Row ``tui_memory``: peak RSS of the workbench after a 1,000,000-step loop flow.

Measured in a fresh interpreter (``python -m benchmarks.memory_rows FILE``) that opens the
flow in ``FlytApp`` under ``run_test``, presses ``r``, waits for ``done`` and prints its
peak resident set size (``getrusage().ru_maxrss``), so no other row's memory counts.
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

from .flow_files import write_loop_flow
from .harness import Row, absolute, unavailable

ROWS = ("tui_memory",)
ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run_in_app(path: Path, timeout: float) -> dict[str, float]:
    from flyt_tui.app import FlytApp

    from .tui_rows import SIZE, current_session, run_shown_done, send_key, tree_text, wait_for

    app = FlytApp(path, watch=False)
    async with app.run_test(size=SIZE):
        if not await wait_for(lambda: "count" in tree_text(app), 10):
            raise RuntimeError(f"the tree never showed the flow: {tree_text(app)!r}")
        before = peak_rss_mb()
        began = time.perf_counter()
        send_key(app, "r")
        if not await wait_for(lambda: run_shown_done(app), timeout, poll=0.05):
            raise RuntimeError(f"the run did not finish within {timeout:.0f} s")
        elapsed = time.perf_counter() - began
        session = current_session(app)
        steps = session.store.get("n")
    return {"peak_mb": peak_rss_mb(), "before_run_mb": before, "seconds": elapsed, "steps": steps}


def probe(path: Path) -> None:
    """The child: run the flow in the app, print the figures as JSON on the last line."""
    figures = asyncio.run(run_in_app(path, timeout=600))
    print(json.dumps(figures))


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    if "tui_memory" not in wanted:
        return []
    from .tui_rows import app_missing

    missing = app_missing()
    if missing:
        return [unavailable("tui_memory", missing)]
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
        return [unavailable("tui_memory", f"probe failed: {last[:200]}")]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    if figures["steps"] != steps:
        return [unavailable("tui_memory", f"the run stopped at {figures['steps']} of {steps} steps")]
    note = (
        f"{steps:,}-step loop in the app ({figures['seconds']:.1f} s); {figures['before_run_mb']:.0f} MB before the run"
    )
    return [absolute("tui_memory", figures["peak_mb"], note)]


if __name__ == "__main__":
    probe(Path(sys.argv[1]))
