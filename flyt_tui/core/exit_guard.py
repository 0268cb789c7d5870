"""Quitting never waits for user code: a watchdog that ends the process in a bounded time.

Textual runs thread workers on asyncio's default executor, and ``asyncio.run`` waits for
those threads when the app ends; Python waits for non-daemon threads at exit. A module
whose import never returns, batch items stuck in ``time.sleep``, or a thread the user's
module started would each keep the workbench on screen long after ``q``. ``arm()`` starts a
daemon thread that, if the process is still alive after ``seconds``, puts the terminal
back as it was (``remember_terminal()`` saved it at start) and leaves with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

QUIT_SECONDS = 2.0  # after q, how long the app may take to close on its own

# Leave the alternate screen, show the cursor, stop mouse reporting, bracketed paste and
# the kitty keyboard protocol: what Textual's driver switches on.
_RESET = "\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l\x1b[<u"

_saved: tuple[int, Any] | None = None
_armed = threading.Event()


def remember_terminal() -> None:
    """Save the terminal's mode before the app changes it (no-op without a terminal)."""
    global _saved
    try:
        import termios

        fd = sys.stdin.fileno()
        if os.isatty(fd):
            _saved = (fd, termios.tcgetattr(fd))
    except Exception:
        _saved = None


def restore_terminal() -> None:
    """Put the terminal back as ``remember_terminal`` found it; never raises."""
    with contextlib.suppress(Exception):
        if _saved is not None:
            import termios

            fd, attrs = _saved
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            os.write(sys.__stdout__.fileno() if sys.__stdout__ else 1, _RESET.encode())


def arm(seconds: float = QUIT_SECONDS, code: int = 0) -> None:
    """Make sure the process ends within ``seconds`` from now (once; later calls do nothing)."""
    if _armed.is_set():
        return
    _armed.set()

    def watchdog() -> None:
        threading.Event().wait(seconds)
        restore_terminal()
        with contextlib.suppress(Exception):
            sys.stderr.write("flyt-tui: user code did not let go; left it behind to quit\n")
            sys.stderr.flush()
        os._exit(code)

    threading.Thread(target=watchdog, name="flyt-exit-guard", daemon=True).start()
