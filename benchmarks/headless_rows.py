"""Row ``headless_step``: ``flyt-tui --headless --json`` on a 200,000-step loop, the whole
process, against the same flow run observed in Python (a ``RunSession`` drained the way
headless drains it), interleaved in one run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .flow_files import LOOP_FLOW, import_file
from .harness import Row, clock, measured, median, unavailable

ROWS = ("headless_step",)
ROOT = Path(__file__).resolve().parent.parent


def whole_process(path: Path, steps: int) -> float:
    began = clock()
    out = subprocess.run(
        [sys.executable, "-m", "flyt_tui", "--headless", "--json", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    elapsed = clock() - began
    if out.returncode != 0:
        raise RuntimeError(f"flyt-tui exited {out.returncode}: {out.stderr[-300:]}")
    assert json.loads(out.stdout)["store"]["n"] == steps
    return elapsed


def observed_in_python(path: Path, steps: int, name: str) -> float:
    from flyt_tui.core.session import RunSession

    module = import_file(path, name)
    session = RunSession(module.flow, {})
    began = clock()
    session.start("run")
    while not session.wait(0.1):
        session.pump()
    session.pump()
    elapsed = clock() - began
    assert session.store.get("n") == steps, session.error
    return elapsed


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    if "headless_step" not in wanted:
        return []
    steps = 20_000 if quick else 200_000
    reps = 3 if quick else 5
    try:
        with tempfile.TemporaryDirectory(prefix="flyt-bench-headless-") as tmp:
            path = Path(tmp) / "loop_flow.py"
            path.write_text(LOOP_FLOW.format(steps=steps), encoding="utf-8")
            whole_process(path, steps)  # warm-up: bytecode and page caches
            ours: list[float] = []
            python: list[float] = []
            for rep in range(reps):
                pair = ((ours, lambda: whole_process(path, steps)), (python, None))
                for samples, measure in pair if rep % 2 == 0 else pair[::-1]:
                    if measure is None:
                        samples.append(observed_in_python(path, steps, f"loop_flow_{rep}"))
                    else:
                        samples.append(measure())
                time.sleep(0.1)
    except Exception as exc:
        return [unavailable("headless_step", f"{type(exc).__name__}: {str(exc)[:200]}")]
    note = (
        f"{steps:,}-step loop: the whole `flyt-tui --headless --json` process vs the flow observed in Python, "
        f"median of {reps} interleaved"
    )
    return [measured("headless_step", median(ours), median(python), note, process=ours, python=python)]
