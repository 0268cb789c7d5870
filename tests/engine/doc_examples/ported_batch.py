"""Shared by the ported documentation examples: the imports every chapter uses, the scaled
second, and fakes for external services. Each chapter module star-imports it."""

# ruff: noqa: F401

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from flyt_engine import (
    DEFAULT_ACTION,
    BatchConfig,
    BatchError,
    BatchFlow,
    BatchNode,
    Cancelled,
    Context,
    DeadlineExceeded,
    Flow,
    Node,
    NodeError,
    SharedStore,
    WorkerPool,
    run,
)
from flyt_engine.events import BatchFinished, BatchItemFinished, BatchStarted

SECOND = 0.001  # one documented second, scaled down

log = logging.getLogger("flyt.docs.batch")


class InFlight:
    """Counts how many calls run at once (and the most seen), for concurrency limits."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.log: list[tuple[str, Any]] = []  # ("start" | "end", item) in the order they happened

    @contextmanager
    def track(self, item: Any) -> Iterator[None]:
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
            self.log.append(("start", item))
        try:
            yield
        finally:
            with self.lock:
                self.now -= 1
                self.log.append(("end", item))


class FakeClock:
    """Stands in for ``time.Now()`` so that circuit breakers need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Limiter:
    """A token bucket like ``rate.NewLimiter(rps, 1)``: one token every ``1/rps`` seconds.

    ``wait`` reserves the next slot and sleeps until it, interruptibly (Go's
    ``limiter.Wait(ctx)`` returns the context's error when cancelled).
    """

    def __init__(self, rps: float) -> None:
        self.interval = 1 / rps
        self.next_slot = 0.0
        self.granted: list[float] = []
        self.lock = threading.Lock()

    def wait(self, ctx: Context) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
            self.granted.append(slot)
        ctx.sleep(slot - time.monotonic())
