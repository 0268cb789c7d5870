"""A recorded run opened in the workbench: a ``RunSession`` that runs nothing. Its flow is
made of stand-ins (``recording_reader.py``), and its run is read on a thread of its own
straight into a timeline and the records the history needs (``recording_index.py``);
the workbench takes them over when reading ends (``RunView.adopt``), and shows how far
reading got meanwhile. The first screen never waits for the run to be read.
"""

from __future__ import annotations

import threading
import time

from flyt_engine import Cancelled, SharedStore

from .recording_index import IndexedRun, RunIndexer
from .recording_reader import RecordingHead, stand_in_flow
from .session import GARBAGE, RunSession, RunState


class RecordingEnded(Exception):
    """The recording stops here: the run did not end (it was cut off, or is still going)."""


class ReplaySession(RunSession):
    """The run of a recording (see the module docstring). ``reader.state`` says how far
    reading got, what was skipped and whether the run's end was recorded."""

    def __init__(self, head: RecordingHead) -> None:
        flow, ids = stand_in_flow(head)
        super().__init__(flow, head.store)
        self.head = head
        self.reader = RunIndexer(head, ids)
        self.indexed: IndexedRun | None = None  # what reading found, once it ended
        self.gate.points.go("run")

    def start(self, mode: str = "run", *, target: str | None = None) -> None:
        if self._thread is not None:
            raise RuntimeError("a recording is played once")
        self.state = RunState.RUNNING
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._play, name="flyt-replay", daemon=True)
        self._thread.start()

    def _play(self) -> None:
        cancelled = self.ctx.done()
        assert cancelled is not None  # a cancellable context
        GARBAGE.pause()  # as for a live run: no collection in the middle of a fold
        try:
            self.indexed = self.reader.index(cancelled.is_set)
            if cancelled.is_set():
                raise Cancelled("the recording was closed")
            state = self.reader.state
            self.store = SharedStore(state.store)
            if not state.ended:
                self.error = RecordingEnded(
                    "the recording ends here: the run did not end (it was cut off, or was still running)"
                )
                self.state = RunState.STOPPED
            elif state.error is not None:
                self.error = state.error
                self.state = RunState.STOPPED if type(state.error).__name__ == "Cancelled" else RunState.FAILED
            else:
                self.action = state.action
                self.state = RunState.DONE
        except Cancelled as exc:
            self.error = exc
            self.state = RunState.STOPPED
        except BaseException as exc:  # an unreadable file part-way: what was read stays on screen
            self.error = exc
            self.state = RunState.FAILED
        finally:
            GARBAGE.resume()
            self.finished_at = time.monotonic()
            self._finished.set()

    @property
    def progress(self) -> float:
        """How much of the file has been read, 0 to 1."""
        try:
            size = self.head.path.stat().st_size
        except OSError:
            return 0.0
        return min(1.0, self.reader.state.bytes_read / size) if size else 1.0
