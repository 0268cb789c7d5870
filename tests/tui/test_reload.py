"""The file watcher behind hot reload: which changes it reports, and that it stops when told."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from flyt_tui.core.reload import watch_python_files

LIVENESS = 10.0  # generous bound for "eventually" (not a timing assertion)


class Watcher:
    """Runs the generator in a thread, as the app does, and collects what it yields."""

    def __init__(self, directory: Path) -> None:
        self.stop = threading.Event()
        self.changes: queue.Queue[set[Path]] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(directory,), daemon=True)
        self.thread.start()

    def _run(self, directory: Path) -> None:
        for paths in watch_python_files(directory, self.stop, debounce_ms=50):
            self.changes.put(paths)

    def wait_for(self, path: Path, write) -> list[set[Path]]:
        """Write (again and again, until the watcher is surely running) until ``path`` is reported."""
        seen: list[set[Path]] = []
        deadline = time.monotonic() + LIVENESS
        while time.monotonic() < deadline:
            write()
            try:
                while True:
                    batch = self.changes.get(timeout=0.3)
                    seen.append(batch)
                    if path in batch:
                        return seen
            except queue.Empty:
                continue
        raise AssertionError(f"{path} was never reported; saw {seen}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(LIVENESS)


def test_a_saved_python_file_is_reported(tmp_path):
    directory = tmp_path.resolve()
    target = directory / "flow.py"
    watcher = Watcher(directory)
    try:
        seen = watcher.wait_for(target, lambda: target.write_text(f"X = {time.monotonic()}\n"))
    finally:
        watcher.close()
    assert all(isinstance(path, Path) for batch in seen for path in batch)


def test_an_atomic_save_counts(tmp_path):
    directory = tmp_path.resolve()
    target = directory / "flow.py"

    def atomic_save() -> None:
        temporary = directory / "flow.py.tmp"
        temporary.write_text(f"X = {time.monotonic()}\n")
        temporary.replace(target)

    watcher = Watcher(directory)
    try:
        watcher.wait_for(target, atomic_save)
    finally:
        watcher.close()


def test_other_files_and_pycache_are_not_reported(tmp_path):
    directory = tmp_path.resolve()
    (directory / "__pycache__").mkdir()
    noise = [directory / "data.csv", directory / "notes.txt", directory / "__pycache__" / "cached.py"]
    sentinel = directory / "sentinel.py"

    def write_noise_then_sentinel() -> None:
        for path in noise:
            path.write_text(str(time.monotonic()))
        sentinel.write_text(f"X = {time.monotonic()}\n")

    watcher = Watcher(directory)
    try:
        seen = watcher.wait_for(sentinel, write_noise_then_sentinel)
    finally:
        watcher.close()
    reported = set().union(*seen)
    assert reported == {sentinel}


def test_the_generator_stops_when_stop_is_set(tmp_path):
    stop = threading.Event()
    finished = threading.Event()

    def consume() -> None:
        for _paths in watch_python_files(tmp_path, stop):
            pass
        finished.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.2)
    assert not finished.is_set()  # it blocks while nothing changes
    stop.set()
    thread.join(LIVENESS)
    assert finished.is_set()
    assert not thread.is_alive()
