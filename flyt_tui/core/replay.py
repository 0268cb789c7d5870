"""A recorded run played into the workbench: a ``RunSession`` whose records come from a
bundle instead of the engine, so the screen, the history and the timeline fold them
exactly as they fold a live run. The file is read on a thread of its own, as fast as the
UI drains it (bounded), so the first screen shows at once and a big bundle indexes in the
background. Nothing is run: the flow is made of stand-ins (``recording_reader.py``).
"""

from __future__ import annotations

import threading
import time

from flyt_engine import Cancelled, SharedStore

from .recording_reader import RecordingHead, RunReader, stand_in_flow
from .session import GARBAGE, RunSession, RunState
from .snapshots import ValueSnapshots

# Records read ahead of the UI before the reader waits for a drain (about 11,000 steps:
# folded in one tick without holding the screen long).
READ_AHEAD = 100_000


class RecordingEnded(Exception):
    """The recording stops here: the run did not end (it was cut off, or is still going)."""


class ReplaySession(RunSession):
    """The run of a recording (see the module docstring). ``reader.state`` says how far
    reading got, what was skipped and whether the run's end was recorded."""

    def __init__(self, head: RecordingHead) -> None:
        flow, ids = stand_in_flow(head)
        super().__init__(flow, head.store)
        self.head = head
        self.reader = RunReader(head, ids)
        self.snapshots = ValueSnapshots()  # the kept values come from the file
        self.gate.points.go("run")

    def start(self, mode: str = "run", *, target: str | None = None) -> None:
        if self._thread is not None:
            raise RuntimeError("a recording is played once")
        self.state = RunState.RUNNING
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._play, name="flyt-replay", daemon=True)
        self._thread.start()

    def _play(self) -> None:
        events = self.events
        kept = self.snapshots.kept if self.snapshots is not None else []
        cancelled = self.ctx.done()
        assert cancelled is not None  # a cancellable context
        GARBAGE.pause()  # as for a live run: the UI collects between drains, not mid-fold
        try:
            for records, values in self.reader.batches():
                while len(events) > READ_AHEAD and not cancelled.is_set():
                    time.sleep(0.005)
                if cancelled.is_set():
                    raise Cancelled("the recording was closed")
                kept.extend(values)  # before the records: a drain pairs each write with its value
                events.extend(records)
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
