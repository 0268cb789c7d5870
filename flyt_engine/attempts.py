"""The one retry policy: after a failed exec attempt, stop the run, retry, or fall back.

Nodes (``node._retry``), batch items run here (``_BatchBase._retry_item``) and batch items
run on an executor (``BatchRun._settle``) loop differently, but each asks ``after_failure``
what to do, so they cannot disagree:

- the run's cancellation, and a ``Cancelled`` raised by the attempt that is not a deadline
  the node set for itself, end the run: no retry, no fallback;
- otherwise, while ``attempt < get_max_retries()``: retry after ``get_wait()`` seconds
  (both read again before each decision);
- then the fallback, once.
"""

from __future__ import annotations

import enum
from typing import Any

from .errors import Cancelled, DeadlineExceeded


class Next(enum.Enum):
    """What follows a failed attempt."""

    STOP = "stop"  # the run is cancelled: raise, no fallback
    RETRY = "retry"  # wait, then attempt again
    FALL_BACK = "fall back"  # no attempts left: exec_fallback, once


def stops_run(error: BaseException, signal: Any) -> bool:
    """Whether an attempt's error ends the run instead of counting as a failed attempt.

    ``Cancelled`` passes through unwrapped, except a ``DeadlineExceeded`` from a timeout
    the node set itself while the run goes on: that is an ordinary failure, retried and
    handed to the fallback as in Go (the seed's Timeout Handling pattern).
    """
    if not isinstance(error, Cancelled):
        return False
    return signal.error is not None or not isinstance(error, DeadlineExceeded)


def after_failure(node: Any, attempt: int, error: BaseException, signal: Any) -> tuple[Next, int, float]:
    """After attempt ``attempt`` (1-based) failed with ``error``: ``(what next, max
    attempts to report, seconds to wait before the retry)``."""
    if stops_run(error, signal):
        return Next.STOP, attempt, 0.0
    max_attempts = node.get_max_retries()
    if attempt < max_attempts:
        return Next.RETRY, max_attempts, node.get_wait()
    return Next.FALL_BACK, max(attempt, max_attempts), 0.0
