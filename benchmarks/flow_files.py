"""Flow files the workbench rows open: written into a temporary directory, loaded like a user's.

Each writer returns the path of a ``.py`` file with a module-level ``flow`` (and, where it
needs items, an ``initial_store()``), so ``flyt-tui FILE`` opens it directly.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

RELOAD_FLOW = '''\
"""Three nodes in a row; the benchmark renames the first one on every save."""

from flyt_engine import Flow, Node


def passthrough(ctx, value):
    return value


first = Node(exec=passthrough, name={first!r})
middle = Node(exec=passthrough, name="middle")
last = Node(exec=passthrough, name="last")
flow = Flow(first, name="reload_bench").connect(first, "default", middle).connect(middle, "default", last)
'''

STREAM_FLOW = '''\
"""A sequential batch of {count} items, each about 20 µs of pure-Python work."""

from flyt_engine import BatchNode, Flow

INNER = {inner}


def crunch(ctx, item):
    total = 0
    for i in range(INNER):
        total += i ^ item
    return total


crunch_items = BatchNode(crunch, name="crunch_items")
flow = Flow(crunch_items, name="stream_bench")


def initial_store():
    return {{"items": list(range({count}))}}
'''

LOOP_FLOW = '''\
"""One node looping {steps} times: reads a counter, increments it, writes it back."""

from flyt_engine import Flow, Node


class Count(Node):
    def prep(self, ctx, shared):
        return shared.get("n", 0)

    def exec(self, ctx, n):
        return n + 1

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("n", exec_result)
        return "loop" if exec_result < {steps} else "done"


count = Count(name="count")
flow = Flow(count, name="loop_bench").connect(count, "loop", count)
'''


def write_reload_flow(directory: Path, first: str = "alpha_0") -> Path:
    path = directory / "reload_bench.py"
    path.write_text(RELOAD_FLOW.format(first=first), encoding="utf-8")
    return path


def calibrate_inner(target_us: float = 20.0) -> int:
    """How many loop turns make ``crunch`` take about ``target_us`` microseconds here."""
    inner = 200
    for _ in range(3):
        start = time.perf_counter()
        for item in range(2000):
            total = 0
            for i in range(inner):
                total += i ^ item
        per_item_us = (time.perf_counter() - start) / 2000 * 1e6
        inner = max(1, round(inner * target_us / per_item_us))
    return inner


def write_stream_flow(directory: Path, count: int, inner: int) -> Path:
    path = directory / "stream_bench.py"
    path.write_text(STREAM_FLOW.format(count=count, inner=inner), encoding="utf-8")
    return path


def write_loop_flow(directory: Path, steps: int) -> Path:
    path = directory / "loop_bench.py"
    path.write_text(LOOP_FLOW.format(steps=steps), encoding="utf-8")
    return path


def import_file(path: Path, name: str) -> ModuleType:
    """Import a generated flow file as a plain module (for the headless baselines)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
