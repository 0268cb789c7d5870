"""Shared by the ported documentation examples: the imports every chapter uses, the scaled
second, and fakes for external services. Each chapter module star-imports it."""

# ruff: noqa: F401

from __future__ import annotations

import json
import logging
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from flyt_engine import (
    DEFAULT_ACTION,
    BatchError,
    BatchFlow,
    BatchNode,
    BindError,
    Cancelled,
    Context,
    DeadlineExceeded,
    FallbackNode,
    Flow,
    FlytError,
    Node,
    NodeError,
    RetryableNode,
    SharedStore,
    run,
    to_slice,
)
from flyt_engine.events import ExecFailed, FallbackUsed, PhaseFinished
from flyt_engine.graph import describe, to_mermaid

SECOND = 0.001  # one documented second, scaled down so that retries and timeouts stay fast

log = logging.getLogger("flyt.docs")


# ---------------------------------------------------------------------------------------
# Helpers shared by the ports
# ---------------------------------------------------------------------------------------
def visit(trail: list[str], name: str, action: str | None = None) -> Node:
    """The docs' ``createXNode()``: a node that records its name in ``trail`` and returns ``action``."""

    def exec_(ctx: Context, prep_result: Any) -> str:
        trail.append(name)
        return name

    return Node(exec=exec_, post=lambda ctx, shared, p, e: action, name=name)


def observed() -> tuple[Context, list[Any]]:
    """A context whose run reports every event into the returned list."""
    events: list[Any] = []
    return Context.background().with_observer(events.append), events


def failures(events: list[Any]) -> list[ExecFailed]:
    return [e for e in events if isinstance(e, ExecFailed)]


def exec_results(events: list[Any], node: str) -> list[Any]:
    """What ``exec`` of ``node`` returned in an observed run (one entry per run of the node)."""
    return [e.result for e in events if isinstance(e, PhaseFinished) and e.phase == "exec" and e.node == node]


class FakeClock:
    """Stands in for ``time.Now()`` so that circuit breakers and cache ages need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class NetworkError(ConnectionError):
    """A transient failure of a fake remote service."""


def caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    """Go's ``errors.Is``: whether ``kind`` is anywhere in the ``__cause__`` chain."""
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__
    return False


@dataclass
class Config:
    timeout: int = 30
    retries: int = 3
