"""Headless and --json under hostile flows (issue 15): always one valid JSON document,
bounded output, one Ctrl-C ends a stuck run, lingering threads do not keep it alive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def write_flow(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hostile_flow.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(body))
    return path


def flyt(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flyt_tui", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_json_is_valid_for_every_hostile_value(tmp_path):
    path = write_flow(
        tmp_path,
        """
        from flyt_engine import Flow, Node
        from tests.hostile import BadRepr, HUGE_INT, TEN_MB, deeply_nested, self_containing_list

        def post(ctx, shared, p, e):
            shared["bad_repr"] = BadRepr()
            shared["huge_int"] = HUGE_INT
            shared["deep"] = deeply_nested(5000)
            shared["ten_mb"] = TEN_MB
            shared["loop"] = self_containing_list()
            shared.merge({1: "int one", "1": "str one", (1, 2): "tuple", "$x": "dollar"})

        flow = Flow(Node(post=post, name="hostile"), name="hostile_flow")
        """,
    )
    result = flyt("--json", str(path))
    assert result.returncode == 0, result.stderr[-2000:]
    store = json.loads(result.stdout)["store"]
    assert "unreprable" in store["bad_repr"] or "repr raised" in store["bad_repr"]
    assert "int of" in store["huge_int"]
    assert store["ten_mb"].endswith(f"({10 * 1024 * 1024} chars)")
    assert len(store["ten_mb"]) < 200_000
    assert store["1"] == "str one" and store["$int:1"] == "int one"
    assert store["$tuple:(1, 2)"] == "tuple" and store["$str:$x"] == "dollar"
    assert store["loop"][:2] == [1, 2]


def test_an_unprintable_base_exception_still_gives_json(tmp_path):
    path = write_flow(
        tmp_path,
        """
        from flyt_engine import Flow, Node
        from tests.hostile import UnprintableBaseException

        def exec_(ctx, p):
            raise UnprintableBaseException()

        flow = Flow(Node(exec=exec_, name="explodes"), name="f")
        """,
    )
    result = flyt("--json", str(path))
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert "unprintable UnprintableBaseException" in payload["error"]


def test_a_module_and_flow_that_print_do_not_corrupt_the_json(tmp_path):
    path = write_flow(
        tmp_path,
        """
        import os
        from flyt_engine import Flow, Node
        print("hello from import")
        os.write(1, b"raw fd write\\n")

        def exec_(ctx, p):
            print("hello from exec")
            return 1

        flow = Flow(Node(exec=exec_, name="chatty"), name="f")
        """,
    )
    result = flyt("--json", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "default"
    assert "hello from import" in result.stderr and "hello from exec" in result.stderr
    assert "raw fd write" in result.stderr


def test_headless_output_is_a_bounded_summary(tmp_path):
    path = write_flow(
        tmp_path,
        """
        from flyt_engine import Flow, Node

        def post(ctx, shared, p, e):
            n = shared.update("n", lambda v: v + 1, 0)
            if n % 1000 == 0:
                raise_here = n  # noqa
            return "again" if n < 20000 else "stop"

        step = Node(post=post, name="step")
        flow = Flow(step, name="loop").connect(step, "again", step)
        """,
    )
    result = flyt("--headless", str(path))
    assert result.returncode == 0, result.stderr
    assert len(result.stderr.splitlines()) < 10
    assert "20000 steps" in result.stderr
    verbose = flyt("--headless", "-v", str(path))
    assert len(verbose.stderr.splitlines()) > 20000


def test_failures_are_summed_up_first_and_last(tmp_path):
    path = write_flow(
        tmp_path,
        """
        from flyt_engine import BatchNode, Flow

        def process(ctx, item):
            if item % 2:
                raise ValueError(f"odd {item}")
            return item

        flow = Flow(BatchNode(process, name="odds"), name="f")
        SHARED = {"items": list(range(40))}
        """,
    )
    result = flyt("--headless", str(path))
    assert result.returncode == 1
    assert "odd 1" in result.stderr and "odd 39" in result.stderr
    assert "more failures" in result.stderr
    assert "odd 19:" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_one_ctrl_c_ends_a_run_stuck_in_sleep(tmp_path):
    path = write_flow(
        tmp_path,
        """
        import time
        from flyt_engine import Flow, Node

        flow = Flow(Node(exec=lambda ctx, p: time.sleep(30), name="stuck"), name="f")
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "flyt_tui", "--headless", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)  # well before the 30 s sleep ends
    assert proc.returncode == 1
    assert "interrupted" in err


def test_a_non_daemon_thread_left_by_the_module_does_not_keep_headless_alive(tmp_path):
    path = write_flow(
        tmp_path,
        """
        import threading, time
        from flyt_engine import Flow, Node
        threading.Thread(target=time.sleep, args=(120,), daemon=False).start()
        flow = Flow(Node(name="quick"), name="f")
        """,
    )
    result = flyt("--json", str(path), timeout=30)
    assert result.returncode == 0
    assert json.loads(result.stdout)["action"] == "default"


def test_paths_on_the_command_line_survive_a_module_that_changes_directory(tmp_path):
    (tmp_path / "store.json").write_text('{"from_file": 7}')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_flow(
        tmp_path,
        f"""
        import os
        from flyt_engine import Flow, Node
        os.chdir({str(elsewhere)!r})
        flow = Flow(Node(name="n"), name="f")
        """,
    )
    result = subprocess.run(
        [sys.executable, "-m", "flyt_tui", "--json", "hostile_flow.py", "--store", "store.json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["store"]["from_file"] == 7
