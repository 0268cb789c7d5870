"""Rows ``tui_start``, ``tui_reload``, ``tui_stream`` and ``tui_keypress_p95``: the workbench.

- ``tui_start``: ``flyt-tui sample_flows/etl.py`` on a 160×48 pseudo-terminal with
  ``FLYT_TUI_EXIT_AFTER_PAINT=1``, from just before the process starts to the ``painted
  <time.time()>`` line it writes on stderr after its first screen with the graph.
- ``tui_reload``: ``FlytApp`` in ``run_test(size=(160, 48))`` on a flow file that is
  rewritten (atomically, as editors save) with its first node renamed; from the write to
  the tree showing the new name, polled every 5 ms.
- ``tui_stream``: a 100,000-item sequential batch of ~20 µs items run in the app (every
  event observed and shown) against ``flyt_engine.run`` of the same flow, no observer, no UI.
- ``tui_keypress_p95``: during those runs a cursor key is sent every ~50 ms; the time
  until the tree's cursor moved is one sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .flow_files import calibrate_inner, import_file, write_reload_flow, write_stream_flow
from .harness import Row, absolute, clock, log, measured, median, percentile, unavailable

ROWS = ("tui_start", "tui_start_vs_textual", "tui_reload", "tui_stream", "tui_keypress_p95")
ROOT = Path(__file__).resolve().parent.parent
SIZE = (160, 48)


# ---------------------------------------------------------------------------------------
# What the rows need from the app (kept in one place: the app is young and may move)
# ---------------------------------------------------------------------------------------
def app_missing() -> str | None:
    """Why the app cannot be benchmarked yet, or ``None``."""
    try:
        from flyt_tui.app import FlytApp  # noqa: F401
    except Exception as exc:
        return f"flyt_tui.app is not importable yet: {type(exc).__name__}: {exc}"
    return None


def flow_tree(app: Any) -> Any:
    """The graph tree widget."""
    from textual.widgets import Tree

    return app.query(Tree).first()


def tree_text(app: Any) -> str:
    """Every label of the tree as plain text, one per line."""
    try:
        tree = flow_tree(app)
    except Exception:
        return ""
    lines = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        label = node.label
        lines.append(getattr(label, "plain", str(label)))
        stack.extend(reversed(node.children))
    return "\n".join(lines)


def current_session(app: Any) -> Any:
    """The app's current RunSession (``None`` before the first run)."""
    return app.session


def run_shown_done(app: Any) -> bool:
    """The run ended with ``done`` and the status line says so (the UI took in its events)."""
    from flyt_tui.core.session import RunState

    session = current_session(app)
    if session is None or session.state is not RunState.DONE:
        return False
    status = getattr(app, "status", None)
    return getattr(status, "state", "done") == "done"


def send_key(app: Any, key: str) -> None:
    """Post a key press the way the driver does, without Pilot's wait-for-idle (which,
    while a run keeps the CPU busy, would wait its full second and measure nothing)."""
    from textual import events

    char = key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    app.post_message(event)


async def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(poll)
    return True


# ---------------------------------------------------------------------------------------
# tui_start
# ---------------------------------------------------------------------------------------
def start_command(target: str) -> tuple[list[str], str]:
    script = Path(sys.executable).with_name("flyt-tui")
    if script.exists():
        return [str(script), target], "flyt-tui"
    return [sys.executable, "-m", "flyt_tui", target], "python -m flyt_tui"


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(COLUMNS=str(SIZE[0]), LINES=str(SIZE[1]), TERM="xterm-256color", **extra)
    return env


PAINTED = re.compile(rb"painted (\d+(?:\.\d+)?)")


def start_once(target: str, command: list[str] | None = None) -> float:
    """Seconds from just before Popen to the app's ``painted <time>`` line.

    The app runs on a 160×48 pseudo-terminal (stdin, stdout and stderr: Textual draws on
    stderr, where the ``painted`` line goes too), which is read continuously so the app
    never blocks on a full terminal buffer.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    cmd = command if command is not None else start_command(target)[0]
    output = bytearray()

    def read_terminal() -> None:
        with contextlib.suppress(OSError):  # EIO once the app has exited
            while chunk := os.read(master, 65536):
                output.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    began = time.time()
    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=child_env(FLYT_TUI_EXIT_AFTER_PAINT="1"),
        start_new_session=True,
    )
    os.close(slave)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError("flyt-tui did not exit within 60 s with FLYT_TUI_EXIT_AFTER_PAINT=1") from None
    finally:
        reader.join(5)
        os.close(master)
    found = PAINTED.search(bytes(output))
    if found is None:
        tail = bytes(output[-300:]).decode(errors="replace")
        raise RuntimeError(f"no 'painted <time>' on the terminal (exit {proc.returncode}): {tail!r}")
    return float(found.group(1)) - began


def measure_start(quick: bool) -> list[Row]:
    """``tui_start`` (absolute, for information) and ``tui_start_vs_textual`` (the ratio
    against a bare Textual app started the same way, interleaved in the same run)."""
    target = "sample_flows/etl.py"
    if not (ROOT / target).exists():
        return [unavailable("tui_start", f"{target} does not exist")]
    reps = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="flyt-bench-start-") as tmp:
        bare = Path(tmp) / "bare_app.py"
        bare.write_text(BARE_APP, encoding="utf-8")
        bare_cmd = [sys.executable, str(bare)]
        start_once(target)  # warm-up: bytecode caches, page cache
        start_once(target, bare_cmd)
        ours: list[float] = []
        theirs: list[float] = []
        for rep in range(reps):
            pair = ((ours, None), (theirs, bare_cmd))
            for samples, command in pair if rep % 2 == 0 else pair[::-1]:
                samples.append(start_once(target, command))
    how = start_command(target)[1]
    return [
        absolute("tui_start", median(ours), f"`{how} {target}` to first paint, median of {reps}", start=ours),
        measured(
            "tui_start_vs_textual",
            median(ours),
            median(theirs),
            f"the workbench vs a bare Textual app (Tree + DataTable), same pty, interleaved, median of {reps}",
            workbench=ours,
            bare=theirs,
        ),
    ]


BARE_APP = """
import os, sys, time
from textual.app import App
from textual.widgets import DataTable, Tree


class Bare(App):
    def compose(self):
        yield Tree("root")
        yield DataTable()

    def on_mount(self):
        self.call_after_refresh(self.painted)

    def painted(self):
        os.write(2, f"painted {time.time()}\\n".encode())
        self.exit()


Bare().run()
"""


# ---------------------------------------------------------------------------------------
# tui_reload
# ---------------------------------------------------------------------------------------
def save_atomically(path: Path, text: str) -> None:
    """Write as editors do: a sibling temporary file renamed over the original."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def reload_samples(path: Path, saves: int) -> list[float]:
    from flyt_tui.app import FlytApp

    from .flow_files import RELOAD_FLOW

    app = FlytApp(path, watch=True)
    samples: list[float] = []
    async with app.run_test(size=SIZE):
        if not await wait_for(lambda: "alpha_0" in tree_text(app), 10):
            raise RuntimeError(f"the tree never showed the flow: {tree_text(app)!r}")
        await asyncio.sleep(0.5)  # the watcher thread is up
        for save in range(1, saves + 1):
            name = f"alpha_{save}"
            began = clock()
            save_atomically(path, RELOAD_FLOW.format(first=name))
            if not await wait_for(lambda name=name: name in tree_text(app), 5):
                raise RuntimeError(f"save {save}: the tree never showed {name!r}")
            samples.append(clock() - began)
            await asyncio.sleep(0.3)  # let the watcher's debounce window close
    return samples


def measure_reload(quick: bool) -> Row:
    saves = 5 if quick else 10
    with tempfile.TemporaryDirectory(prefix="flyt-bench-reload-") as tmp:
        path = write_reload_flow(Path(tmp))
        samples = asyncio.run(reload_samples(path, saves))
    return absolute("tui_reload", median(samples), f"save → tree shows the new name, median of {saves}", reload=samples)


# ---------------------------------------------------------------------------------------
# tui_stream and tui_keypress_p95
# ---------------------------------------------------------------------------------------
def headless_stream(path: Path) -> float:
    """The baseline: the same flow through ``flyt_engine.run``, no observer, no UI."""
    from flyt_engine import SharedStore, run

    module = import_file(path, "stream_bench_headless")
    shared = SharedStore(module.initial_store())
    start = clock()
    run(module.flow, shared)
    elapsed = clock() - start
    assert len(shared.get("results")) == len(module.initial_store()["items"])
    return elapsed


async def app_stream(path: Path, key_every: float, timeout: float) -> tuple[float, list[float]]:
    """One run in the app: seconds from pressing ``r`` to ``done`` shown; key latencies (s).

    Two coroutines share the app's loop: one polls every 5 ms for the status line to say
    ``done``; the other sends a cursor key every ``key_every`` seconds while the run lasts
    and times how long the tree takes to move its cursor.
    """
    from flyt_tui.app import FlytApp

    app = FlytApp(path, watch=False)
    latencies: list[float] = []
    async with app.run_test(size=SIZE):
        if not await wait_for(lambda: "crunch_items" in tree_text(app), 10):
            raise RuntimeError(f"the tree never showed the flow: {tree_text(app)!r}")
        tree = flow_tree(app)
        tree.focus()
        await asyncio.sleep(0.2)
        finished = asyncio.Event()

        async def press_keys() -> None:
            while not finished.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(finished.wait(), key_every)
                if finished.is_set():
                    return
                before = tree.cursor_line
                key = "down" if before < tree.last_line else "up"
                sent = clock()
                send_key(app, key)
                moved = await wait_for(lambda before=before: tree.cursor_line != before or finished.is_set(), 5, 0.001)
                if moved and tree.cursor_line != before:
                    latencies.append(clock() - sent)

        began = clock()
        send_key(app, "r")
        presser = asyncio.create_task(press_keys())
        done = await wait_for(lambda: run_shown_done(app), timeout)
        elapsed = clock() - began
        finished.set()
        await presser
        if not done:
            raise RuntimeError(f"the run did not finish within {timeout:.0f} s")
        session = current_session(app)
        assert session is not None and len(session.store.get("results")) == len(session.store.get("items"))
    return elapsed, latencies


def measure_stream(quick: bool) -> list[Row]:
    count = 10_000 if quick else 100_000
    reps = 2 if quick else 7
    inner = calibrate_inner(20.0)
    app_times: list[float] = []
    base_times: list[float] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="flyt-bench-stream-") as tmp:
        path = write_stream_flow(Path(tmp), count, inner)
        headless_stream(path)  # warm-up
        for rep in range(reps):
            order = ("app", "base") if rep % 2 == 0 else ("base", "app")
            for which in order:
                if which == "base":
                    base_times.append(headless_stream(path))
                else:
                    elapsed, keys = asyncio.run(app_stream(path, 0.05, timeout=count * 1e-3 + 60))
                    app_times.append(elapsed)
                    latencies.extend(keys)
            log(f"  tui_stream rep {rep + 1}/{reps}: app {app_times[-1]:.2f} s, headless {base_times[-1]:.2f} s")
    spread = f"app {min(app_times):.2f}–{max(app_times):.2f} s, headless {min(base_times):.2f}–{max(base_times):.2f} s"
    note = f"{count:,} items × ~20 µs (loop of {inner}), median of {reps} interleaved runs ({spread})"
    rows = [measured("tui_stream", median(app_times), median(base_times), note, app=app_times, headless=base_times)]
    if latencies:
        ms = [value * 1000 for value in latencies]
        rows.append(
            absolute(
                "tui_keypress_p95",
                percentile(ms, 95),
                f"{len(ms)} key presses during the runs, median {median(ms):.1f} ms, max {max(ms):.1f} ms",
                keypress=ms,
            )
        )
    else:
        rows.append(unavailable("tui_keypress_p95", "no key press landed during the runs"))
    return rows


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    rows: list[Row] = []
    missing = app_missing()
    starts = wanted & {"tui_start", "tui_start_vs_textual"}
    if starts:
        if missing:
            rows.extend(unavailable(name, missing) for name in sorted(starts))
        else:
            try:
                rows.extend(row for row in measure_start(quick) if row.name in wanted)
            except Exception as exc:
                rows.extend(unavailable(name, f"{type(exc).__name__}: {str(exc)[:200]}") for name in sorted(starts))
    for name, measure in (("tui_reload", lambda: [measure_reload(quick)]),):
        if name in wanted:
            rows.append(unavailable(name, missing) if missing else guarded(name, measure))
    stream_rows = wanted & {"tui_stream", "tui_keypress_p95"}
    if stream_rows:
        if missing:
            rows.extend(unavailable(name, missing) for name in ("tui_stream", "tui_keypress_p95") if name in wanted)
        else:
            try:
                rows.extend(row for row in measure_stream(quick) if row.name in wanted)
            except Exception as exc:
                rows.extend(unavailable(name, f"{type(exc).__name__}: {exc}") for name in sorted(stream_rows))
    return rows


def guarded(name: str, measure: Callable[[], list[Row]]) -> Row:
    """A row that cannot be measured says why instead of ending the whole run."""
    try:
        return measure()[0]
    except Exception as exc:
        return unavailable(name, f"{type(exc).__name__}: {str(exc)[:200]}")
