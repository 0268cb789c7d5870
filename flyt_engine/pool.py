"""WorkerPool and to_slice: the utilities of the Flyt documentation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any


def to_slice(value: Any) -> list[Any]:
    """``value`` as a list: ``None`` → ``[]``; any non-string, non-bytes, non-mapping
    iterable → ``list(value)``; anything else → ``[value]``."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    if isinstance(value, (str, bytes, bytearray, Mapping)):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


class WorkerPool:
    """A fixed number of worker threads running submitted tasks.

    A task's exception stays on its ``Future``; it never kills the pool. ``close()``
    waits for every task, then shuts the threads down.
    """

    def __init__(self, workers: int) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool):
            raise TypeError(f"WorkerPool takes a number of workers, not {type(workers).__name__}")
        self.workers = max(1, workers)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="flyt-pool")
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a worker; raises ``RuntimeError`` after ``close()``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a closed WorkerPool")
            future = self._executor.submit(fn, *args, **kwargs)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self) -> None:
        """Block until every task submitted so far has finished."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            wait_futures(pending)

    def close(self) -> None:
        """Wait for every task, then shut the workers down. Safe to call twice."""
        with self._lock:
            self._closed = True
        self.wait()
        self._executor.shutdown(wait=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
