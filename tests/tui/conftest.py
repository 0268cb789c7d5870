"""Helpers for the workbench's Pilot tests: the test flows, and waiting on conditions."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

FLOWS = Path(__file__).parent / "flows"
SIZE = (160, 48)

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


def flow_path(name: str) -> Path:
    """A test flow module in tests/tui/flows/."""
    return FLOWS / f"{name}.py"


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


async def wait_loaded(pilot, loads: int = 1) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.loads >= loads or app.load_error is not None, what="the module to load")
    await pilot.pause()


async def wait_state(pilot, *states: str, timeout: float = 10.0) -> None:
    """Wait until the status line's state is one of ``states``."""
    app = pilot.app
    await wait_for(pilot, lambda: app.status.state in states, timeout, f"status in {states} (is {app.status.state})")


def tree_text(app) -> str:
    """Every line of the flow tree as plain text, indented by depth."""
    lines = []

    def walk(node, depth):
        lines.append("  " * depth + node.label.plain)
        for child in node.children:
            walk(child, depth + 1)

    walk(app.flow_tree.root, 0)
    return "\n".join(lines)


def select_node(app, name: str) -> None:
    """Move the tree cursor to the node line called ``name``."""
    key = app.flow_tree.find_key(name)
    assert key is not None, f"no node {name!r} in the tree"
    line = app.flow_tree.node_line(key)
    app.flow_tree.move_cursor(line, animate=False)


@pytest.fixture
def flow_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a test flow into tmp_path (for tests that edit it)."""

    def copy(name: str) -> Path:
        target = tmp_path / f"{name}.py"
        shutil.copy(flow_path(name), target)
        return target

    return copy
