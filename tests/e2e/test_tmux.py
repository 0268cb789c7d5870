"""End to end: the real ``flyt-tui`` on the ETL sample in a 160×48 tmux pane, driven by keys:
a run, a fork from a past step, an error pause, recording and reopening."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_flows" / "etl.py"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def _command(target: str = "sample_flows/etl.py", env: str = "", stderr: Path | None = None) -> str:
    exe = shutil.which("flyt-tui", path=os.path.dirname(sys.executable)) or shutil.which("flyt-tui")
    program = [exe] if exe else [sys.executable, "-m", "flyt_tui"]
    args = [*program, "--no-watch", target]
    # COLUMNS/LINES leaking into the pane (tmux sets them from the client) would override its size
    root = shlex.quote(str(ROOT))
    redirect = f" 2>{shlex.quote(str(stderr))}" if stderr is not None else ""
    return f"cd {root} && unset COLUMNS LINES && {env} PYTHONPATH={root} exec {shlex.join(args)}{redirect}"


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)


def _screen(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", session).stdout


def _wait_screen(session: str, predicate, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(session)
        if predicate(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"screen never matched; last screen:\n{screen}")


def _status_line(screen: str) -> str:
    lines = [line for line in screen.splitlines() if line.strip()]
    return lines[-2] if len(lines) >= 2 else ""


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample_flows/etl.py is not there")
def test_run_the_etl_sample_in_tmux():
    session = f"flyt-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    started = _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", _command())
    assert started.returncode == 0, started.stderr
    try:
        screen = _wait_screen(session, lambda s: "extract" in s and "idle" in _status_line(s), 20)
        assert "SharedStore" in screen and "source_csv" in screen
        _tmux("send-keys", "-t", session, "r")
        screen = _wait_screen(session, lambda s: _status_line(s).lstrip().startswith("done"), 30)
        for name in ("extract", "validate", "quarantine", "transform", "load", "notify"):
            assert name in screen, name
        for key in ("raw_rows", "valid_rows", "orders", "loaded", "db_rows"):
            assert key in screen, key
        assert "100%" in screen and "46/46" in screen
        assert "✓ load" in screen
        assert "fallback used" in screen
        assert "Retries (5)" in screen
        # One fork: back to transform's exec, R runs again from there (extract is not run again).
        for key in ("Home", "}", "}", "}", "}", "]"):
            _tmux("send-keys", "-t", session, key)
        screen = _wait_screen(session, lambda s: "viewing step 5/7 (transform · exec)" in _status_line(s), 10)
        _tmux("send-keys", "-t", session, "R")
        screen = _wait_screen(
            session, lambda s: "forked from run 1 at step 5" in s and _status_line(s).lstrip().startswith("done"), 30
        )
        assert "run 2" in screen and "46/46" in screen
        # One error pause: e breaks where notify is about to fail and fall back.
        _tmux("send-keys", "-t", session, "e")
        _tmux("send-keys", "-t", session, "r")
        screen = _wait_screen(session, lambda s: _status_line(s).lstrip().startswith("paused: notify"), 30)
        assert "the fallback comes next" in _status_line(screen)
        assert "Traceback" in screen and "ConnectionError" in screen and 'File "etl.py"' in screen
        _tmux("send-keys", "-t", session, "c")
        screen = _wait_screen(session, lambda s: _status_line(s).lstrip().startswith("done"), 30)
        _tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 5
        while _tmux("has-session", "-t", session).returncode == 0:
            assert time.monotonic() < deadline, "the app did not quit on q"
            time.sleep(0.1)
    finally:
        _tmux("kill-session", "-t", session)


def test_exit_after_paint_reports_the_first_paint(tmp_path):
    """FLYT_TUI_EXIT_AFTER_PAINT=1 (the start-up benchmark's hook): print ``painted <time>`` and exit."""
    session = f"flyt-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stderr = tmp_path / "stderr.txt"
    target = str(ROOT / "tests" / "tui" / "flows" / "basic.py")
    began = time.time()
    command = _command(target, env="FLYT_TUI_EXIT_AFTER_PAINT=1", stderr=stderr)
    started = _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", command)
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 20
        while _tmux("has-session", "-t", session).returncode == 0:
            assert time.monotonic() < deadline, "the app did not exit after its first paint"
            time.sleep(0.1)
        output = stderr.read_text(errors="replace")
        match = re.search(r"painted (\d+\.\d+)", output)
        assert match is not None, output[-500:]
        assert began <= float(match.group(1)) <= time.time()
    finally:
        _tmux("kill-session", "-t", session)


HOSTILE = {
    "stuck_batch": (
        "import time\nfrom flyt_engine import BatchNode, Flow\n"
        "def slow(ctx, item):\n    time.sleep(30)\n    return item\n"
        "flow = Flow(BatchNode(slow, concurrent=True, name='slow'), name='stuck')\n"
        "SHARED = {'items': list(range(8))}\n",
        "r",
    ),
    "never_imports": ("import time\ntime.sleep(10**6)\n", ""),
    "thread_at_import": (
        "import threading, time\nfrom flyt_engine import Flow, Node\n"
        "threading.Thread(target=time.sleep, args=(600,), daemon=False).start()\n"
        "flow = Flow(Node(name='n'), name='f')\n",
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_q_ends_the_workbench_within_three_seconds_whatever_user_code_does(tmp_path, name):
    source, before_quit = HOSTILE[name]
    module = tmp_path / f"{name}.py"
    module.write_text(source)
    session = f"flyt-e2e-quit-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    started = _tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", _command(str(module)))
    assert started.returncode == 0, started.stderr
    try:
        _wait_screen(session, lambda s: " idle " in s or "loading" in s, 20)
        time.sleep(1.0)
        if before_quit:
            _tmux("send-keys", "-t", session, before_quit)
            _wait_screen(session, lambda s: "running" in s, 10)
        _tmux("send-keys", "-t", session, "q")
        quit_at = time.monotonic()
        while _tmux("has-session", "-t", session).returncode == 0:
            assert time.monotonic() - quit_at < 3.0, f"{name}: still running 3 s after q"
            time.sleep(0.05)
    finally:
        _tmux("kill-session", "-t", session)


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample_flows/etl.py is not there")
def test_record_in_tmux_then_reopen_the_recording_and_walk_it(tmp_path):
    bundle = tmp_path / "etl.flyt.jsonl"
    session = f"flyt-e2e-rec-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    command = _command("sample_flows/etl.py").replace(
        " --no-watch ", f" --no-watch --record {shlex.quote(str(bundle))} "
    )
    started = _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", command)
    assert started.returncode == 0, started.stderr
    try:
        _wait_screen(session, lambda s: "extract" in s and "idle" in _status_line(s), 20)
        _tmux("send-keys", "-t", session, "r")
        _wait_screen(session, lambda s: _status_line(s).lstrip().startswith("done"), 30)
        deadline = time.monotonic() + 10
        while b'"end"' not in (bundle.read_bytes() if bundle.exists() else b"") and time.monotonic() < deadline:
            time.sleep(0.1)
        _tmux("send-keys", "-t", session, "q")
    finally:
        _tmux("kill-session", "-t", session)
    assert bundle.exists() and b'"end"' in bundle.read_bytes()
    # reopened at 100x30: the graph, the status and the timeline keys, nothing run
    session = f"flyt-e2e-replay-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    for _ in range(20):  # the server of the session just killed may still be exiting
        started = _tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", _command(str(bundle)))
        if started.returncode == 0 or "server exited" not in started.stderr:
            break
        time.sleep(0.1)
    assert started.returncode == 0, started.stderr
    try:
        screen = _wait_screen(session, lambda s: "done (recorded)" in _status_line(s), 30)
        assert "extract" in screen and "transform" in screen
        _tmux("send-keys", "-t", session, "Home")
        _tmux("send-keys", "-t", session, "}")
        _tmux("send-keys", "-t", session, "}")
        screen = _wait_screen(session, lambda s: "viewing step 3/7" in _status_line(s), 10)
        assert "validate" in _status_line(screen)
        _tmux("send-keys", "-t", session, "r")
        _wait_screen(session, lambda s: "this is a recording" in s, 10)
        _tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 5
        while _tmux("has-session", "-t", session).returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _tmux("has-session", "-t", session).returncode != 0, "q did not close the recording"
    finally:
        _tmux("kill-session", "-t", session)
