"""Smoke test of ``python -m benchmarks``: the JSON it prints has the promised shape.

Only the shape is checked (row names, keys, ``ratio == value / baseline``), never a timing.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_quick_json_has_the_promised_shape() -> None:
    proc = run_benchmarks("--quick", "--only", "step,step_floor,batch_seq", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)

    assert list(data) == ["step", "step_floor", "batch_seq"]  # exactly the rows asked for, in table order
    for name, row in data.items():
        assert set(row) == {"value", "unit", "baseline", "ratio"}, name
        assert isinstance(row["unit"], str) and row["unit"], name
    assert data["step"]["unit"] == data["step_floor"]["unit"] == "µs/step"
    assert data["batch_seq"]["unit"] == "µs/item"

    # The floor needs nothing but Python, so it always measures; the PocketFlow rows measure
    # exactly when pocketflow (the [bench] extra) is installed, and say n/a (nulls) otherwise.
    has_pocketflow = importlib.util.find_spec("pocketflow") is not None
    measured = {"step_floor"} | ({"step", "batch_seq"} if has_pocketflow else set())
    for name, row in data.items():
        if name in measured:
            assert row["value"] > 0 and row["baseline"] > 0, (name, row)
            assert math.isclose(row["ratio"], row["value"] / row["baseline"], rel_tol=1e-12), (name, row)
        else:
            assert row["value"] is None and row["baseline"] is None and row["ratio"] is None, (name, row)
            assert "pocketflow" in proc.stderr, proc.stderr
    # step and step_floor measure the same engine run against two baselines.
    assert data["step_floor"]["value"] == data["step"]["value"] or not has_pocketflow


def test_unknown_row_is_a_usage_error() -> None:
    proc = run_benchmarks("--only", "no_such_row", "--json")
    assert proc.returncode == 2
    assert "unknown row" in proc.stderr and "no_such_row" in proc.stderr
    assert proc.stdout == ""


def test_the_recording_rows_run() -> None:
    proc = run_benchmarks("--quick", "--only", "record_size", "--json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)["record_size"]
    assert row["unit"] == "B/step" and row["value"] > 0  # a bundle was written and measured
