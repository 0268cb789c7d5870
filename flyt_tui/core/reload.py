"""Watch the user's directory for saved Python files (the trigger of hot reload).

A blocking generator meant for a thread worker: it yields the set of ``.py`` files that were
added or modified (editors save atomically, so a save often arrives as *added*), grouped over
a short debounce so one save is one reload, and returns as soon as ``stop`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from watchfiles import Change, DefaultFilter, watch

__all__ = ["PythonSourceFilter", "watch_python_files"]


class PythonSourceFilter(DefaultFilter):
    """``.py`` files that were added or modified, outside ``__pycache__`` and the usual tool directories."""

    def __call__(self, change: Change, path: str) -> bool:
        return change != Change.deleted and path.endswith(".py") and super().__call__(change, path)


def watch_python_files(directory: Path, stop: threading.Event, debounce_ms: int = 50) -> Iterator[set[Path]]:
    """Yield sets of changed ``.py`` paths under ``directory`` until ``stop`` is set.

    ``stop`` is checked every few milliseconds, so the generator ends promptly; changes made
    while the consumer is busy are kept and reported by the next iteration.
    """
    debounce = max(1, int(debounce_ms))
    step = max(1, min(debounce, 25))
    for changes in watch(
        Path(directory),
        watch_filter=PythonSourceFilter(),
        debounce=debounce,
        step=step,
        stop_event=stop,
        rust_timeout=0,
        yield_on_timeout=False,
        raise_interrupt=False,
    ):
        paths = {Path(path) for _change, path in changes}
        if paths:
            yield paths
