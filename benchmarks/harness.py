"""What every row group shares: the bars, interleaved repetitions, medians, the table and the JSON.

A row is a value measured against a baseline; ``ratio = value / baseline`` and lower is
better. Absolute rows (seconds, milliseconds, megabytes) take their bar as the baseline,
so for every row ``ratio <= bar ratio`` means it passes.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Bar:
    """The limit a row must meet: ``ratio <= limit``; ``text`` says it in words for the table."""

    limit: float
    text: str
    unit: str
    baseline_label: str


# The rows of the issue, in table order, with their bars (measured on the 2-core machine).
BARS: dict[str, Bar] = {
    "step": Bar(0.25, "≥4× faster than PocketFlow", "µs/step", "PocketFlow"),
    "step_floor": Bar(5.0, "≤5× the plain loop", "µs/step", "plain loop"),
    "step_observed": Bar(1.2, "≤1.2× PocketFlow's bare step", "µs/step", "PocketFlow bare"),
    "step_breakpoints": Bar(1.1, "≤1.1× the observed step (breakpoints that cannot match)", "µs/step", "observed"),
    "step_rshift": Bar(0.25, "≥4× faster than PocketFlow, built with >>", "µs/step", "PocketFlow"),
    "batch_io": Bar(1.15, "≤1.15× the ideal", "s", "ideal"),
    "batch_io_pool": Bar(1.05, "≤1.05× the raw pool", "s", "ThreadPoolExecutor"),
    "batch_seq": Bar(0.5, "≤0.5× PocketFlow", "µs/item", "PocketFlow"),
    "batch_dask": Bar(1.2, "≤1.2× client.map", "s", "client.map"),
    "tui_start": Bar(1.0, "≤0.8 s (information)", "s", "bar"),
    "tui_start_vs_textual": Bar(3.0, "≤3× a bare Textual app", "s", "bare Textual app"),
    "tui_reload": Bar(1.0, "≤0.5 s", "s", "bar"),
    "tui_stream": Bar(1.5, "≤1.5× the headless run", "s", "headless run"),
    "tui_keypress_p95": Bar(1.0, "≤100 ms", "ms", "bar"),
    "tui_memory": Bar(1.0, "≤300 MB", "MB", "bar"),
    "headless_step": Bar(2.0, "≤2× the observed run in Python", "s", "observed in Python"),
    "async_batch_1k": Bar(1.10, "≤1.10× asyncio.gather", "s", "asyncio.gather"),
    "async_batch_1k_pocketflow": Bar(1.0, "not slower than PocketFlow's AsyncParallelBatchNode", "s", "PocketFlow"),
    "async_batch_10k": Bar(1.20, "≤1.20× asyncio.gather", "s", "asyncio.gather"),
    "async_batch_bounded": Bar(1.3, "≤1.3× the ideal", "s", "ideal"),
    "async_step": Bar(1 / 3, "≥3× faster than PocketFlow's AsyncFlow", "µs/step", "PocketFlow AsyncFlow"),
    "tt_overhead": Bar(1.25, "≤1.25× the observed step without the timeline", "µs/step", "observed, no timeline"),
    "tt_step_observed": Bar(1.2, "≤1.2× PocketFlow's bare step, timeline on", "µs/step", "PocketFlow bare"),
    "tt_memory": Bar(1.0, "≤100 B per step (scalar writes)", "B/step", "bar"),
    "tt_memory_list": Bar(1.0, "≤300 B per step (a list appended every step)", "B/step", "bar"),
    "tt_seek": Bar(1.0, "≤1 ms for the store at any step of 1M", "ms", "bar"),
    "tt_scrub": Bar(1.0, "≤16 ms from a timeline key to the moment drawn (p95)", "ms", "bar"),
    "fork_latency": Bar(1.0, "≤50 ms from R to the fork's first event", "ms", "bar"),
    "record_overhead": Bar(1.3, "≤1.3× the observed run without recording", "µs/step", "observed, not recorded"),
    "record_size": Bar(1.0, "≤100 B per node step (scalar writes)", "B/step", "bar"),
    "reopen": Bar(1.0, "≤0.5 s to the first screen of a 1M-step bundle", "s", "bar"),
}

# Absolute rows: the bar itself is the baseline.
ABSOLUTE: dict[str, float] = {
    "tui_start": 0.8,
    "tui_reload": 0.5,
    "tui_keypress_p95": 100.0,
    "tui_memory": 300.0,
    "tt_memory": 100.0,
    "tt_memory_list": 300.0,
    "tt_seek": 1.0,
    "tt_scrub": 16.0,
    "fork_latency": 50.0,
    "record_size": 100.0,
    "reopen": 0.5,
}


@dataclass
class Row:
    """One line of the table. ``value``/``baseline`` are ``None`` when the row could not run."""

    name: str
    value: float | None = None
    baseline: float | None = None
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def bar(self) -> Bar:
        return BARS[self.name]

    @property
    def unit(self) -> str:
        return self.bar.unit

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        ratio = self.ratio
        return None if ratio is None else ratio <= self.bar.limit

    def as_json(self) -> dict[str, Any]:
        """The public JSON shape: exactly value, unit, baseline, ratio."""
        return {"value": self.value, "unit": self.unit, "baseline": self.baseline, "ratio": self.ratio}

    def to_wire(self) -> dict[str, Any]:
        """Everything, for the parent process (row groups run in subprocesses)."""
        return asdict(self)


def measured(name: str, value: float, baseline: float, note: str = "", **samples: list[float]) -> Row:
    return Row(name, value, baseline, note, dict(samples))


def absolute(name: str, value: float, note: str = "", **samples: list[float]) -> Row:
    return Row(name, value, ABSOLUTE[name], note, dict(samples))


def unavailable(name: str, reason: str) -> Row:
    reason = " ".join(reason.split())  # one line, whatever the error said
    return Row(name, None, None, f"n/a ({reason[:300]})")


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------
Contender = Callable[[], float]  # runs once, returns the seconds it measured (setup excluded)


def interleave(contenders: dict[str, Contender], reps: int, *, warmup: int = 1) -> dict[str, list[float]]:
    """Run every contender ``reps`` times, interleaved, the starting contender rotating
    each repetition so none always runs first (or right after the same neighbour).

    ``warmup`` unrecorded rounds come first. A full collection before each run keeps one
    contender's garbage from being charged to the next.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(-warmup, reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            elapsed = contenders[name]()
            if rep >= 0:
                samples[name].append(elapsed)
    return samples


def median(values: Iterable[float]) -> float:
    return statistics.median(values)


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of at least one value."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def clock() -> float:
    return time.perf_counter()


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    """Where the numbers came from: cores, CPU model, Python, OS."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    return {
        "cpus": nproc,
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    """Columns: row, value, unit, baseline, ratio, bar, pass/FAIL, then the note."""
    header = ["row", "value", "unit", "baseline", "ratio", "bar", "result", "note"]
    lines = []
    for row in rows:
        ratio = row.ratio
        if row.name in ABSOLUTE:
            baseline = "-"
            ratio_text = "-"
        else:
            baseline = f"{_fmt(row.baseline)} ({row.bar.baseline_label})" if row.baseline is not None else "-"
            ratio_text = f"{ratio:.2f}×" if ratio is not None else "-"
        verdict = {True: "pass", False: "FAIL", None: "n/a"}[row.passed]
        lines.append([row.name, _fmt(row.value), row.unit, baseline, ratio_text, row.bar.text, verdict, row.note])
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]
    right = {1, 4}

    def render(cells: list[str]) -> str:
        parts = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(cells) for cells in lines)])


def markdown_table(rows: list[Row]) -> str:
    """The table as the README shows it: row, value, unit, baseline, ratio, bar, result."""
    lines = ["| row | value | unit | baseline | ratio | bar | result |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if row.name in ABSOLUTE:
            baseline, ratio = "-", "-"
        else:
            baseline = f"{_fmt(row.baseline)} ({row.bar.baseline_label})" if row.baseline is not None else "-"
            ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "-"
        verdict = {True: "pass", False: "fail", None: "n/a"}[row.passed]
        lines.append(
            f"| `{row.name}` | {_fmt(row.value)} | {row.unit} | {baseline} | {ratio} | {row.bar.text} | {verdict} |"
        )
    return "\n".join(lines)


def describe_machine(info: dict[str, str]) -> str:
    return f"{info['cpus']} CPUs, {info['cpu']}, {info['python']}, {info['os']}"


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays the table (or the JSON)."""
    print(message, file=sys.stderr, flush=True)
