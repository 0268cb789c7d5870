"""The flyt-tui command: headless runs, exit codes, error messages, and what reaches the app."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from flyt_engine import __version__
from flyt_tui.cli import main

REPO = Path(__file__).resolve().parents[2]
ETL = REPO / "sample_flows" / "etl.py"


@pytest.fixture(autouse=True)
def _isolated_imports(tmp_path):
    path_before = sys.path[:]
    yield
    sys.path[:] = path_before
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def fake_app(monkeypatch):
    """A stand-in for flyt_tui.app.FlytApp that records how it was built and run."""
    created: list[dict] = []

    class FlytApp:
        return_code = None

        def __init__(self, path, **options):
            created.append({"path": path, **options})

        def run(self):
            created[-1]["ran"] = True

    module = types.ModuleType("flyt_tui.app")
    module.FlytApp = FlytApp
    monkeypatch.setitem(sys.modules, "flyt_tui.app", module)
    return created


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


FAILING = """
    from flyt_engine import Flow, Node

    class Boom(Node):
        max_retries = 2

        def exec(self, ctx, prep_result):
            raise RuntimeError("disk full")

    def mark(ctx, shared, p, e):
        shared.set("started", True)

    start = Node(post=mark)
    boom = Boom()
    flow = Flow(start, name="failing").connect(start, "default", boom)
"""


# ---------------------------------------------------------------------------------------
# Headless runs
# ---------------------------------------------------------------------------------------
def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output
    assert "flyt-tui" in result.output


def test_headless_json_runs_the_etl_sample(tmp_path):
    db = tmp_path / "etl.db"
    result = invoke("--headless", "--json", "-v", ETL, "--set", f"db_path={json.dumps(str(db))}", "--set", "pace=0")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["action"] == "default"
    assert payload["error"] is None
    assert payload["store"]["loaded"] == 46
    assert payload["store"]["load_attempts"] == 3
    assert payload["store"]["notification"] == "notification queued"
    assert db.exists()
    # with -v, the progress log on stderr: node lines, retries, fallback, batch summary, final line
    assert "✓ validate (invalid) → quarantine" in result.stderr
    assert "load: attempt 1/3 failed: OperationalError" in result.stderr
    assert "notify: fallback used" in result.stderr
    assert "transform: 46 items" in result.stderr
    assert "etl finished with action 'default'" in result.stderr


def test_json_implies_headless(tmp_path, fake_app):
    path = write(tmp_path, "tiny.py", "from flyt_engine import Flow, Node\nflow = Flow(Node(), name='tiny')\n")
    result = invoke("--json", path)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"action": "default", "store": {}, "error": None}
    assert fake_app == []


def test_headless_without_json_prints_the_store(tmp_path):
    path = write(
        tmp_path,
        "prints.py",
        """
        from flyt_engine import Flow, Node
        flow = Flow(Node(post=lambda ctx, shared, p, e: shared.set("answer", 42)))
        SHARED = {"question": "six times seven"}
        """,
    )
    result = invoke("--headless", path)
    assert result.exit_code == 0
    assert "answer   = 42" in result.stdout
    assert "question = 'six times seven'" in result.stdout


def test_failing_flow_exits_1_with_a_clear_error(tmp_path):
    path = write(tmp_path, "failing.py", FAILING)
    result = invoke("--headless", "--json", path)
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["action"] is None
    assert payload["store"] == {"started": True}
    assert payload["error"] == "node 'boom' failed in exec after 2 exec attempts: RuntimeError: disk full"
    first_error_line = next(line for line in result.stderr.splitlines() if line.startswith("✗ failing failed"))
    assert "node 'boom' failed in exec" in first_error_line
    assert "node: boom   phase: exec   attempts: 2" in result.stderr
    assert "RuntimeError: disk full" in result.stderr
    assert 'failing.py", line' in result.stderr  # the user's frame in the traceback


def test_set_and_store_reach_the_initial_store(tmp_path):
    path = write(
        tmp_path,
        "echo.py",
        """
        from flyt_engine import Flow, Node
        flow = Flow(Node(post=lambda ctx, shared, p, e: shared.set("seen", sorted(shared.keys()))))
        def initial_store():
            return {"a": "module", "b": "module"}
        """,
    )
    store_file = write(tmp_path, "store.json", '{"b": "file", "c": "file"}')
    result = invoke("--json", path, "--store", store_file, "--set", 'c="set"', "--set", "d=[1, 2]")
    store = json.loads(result.stdout)["store"]
    assert {k: store[k] for k in "abcd"} == {"a": "module", "b": "file", "c": "set", "d": [1, 2]}


def test_values_json_cannot_hold_become_repr(tmp_path):
    path = write(
        tmp_path,
        "odd_values.py",
        """
        from flyt_engine import Flow, Node

        class Thing:
            def __repr__(self):
                return "<Thing>"

        def post(ctx, shared, p, e):
            shared.set("tags", {"b"})
            shared.set("thing", Thing())
            shared.set("nan", float("nan"))
            shared.set("pairs", {(1, 2): "tuple key", 3: "int key"})
            shared.set("nested", [Thing(), (1, 2)])

        flow = Flow(Node(post=post))
        """,
    )
    store = json.loads(invoke("--json", path).stdout)["store"]
    assert store["tags"] == "{'b'}"
    assert store["thing"] == "<Thing>"
    assert store["nan"] == "nan"
    assert store["pairs"] == {"$tuple:(1, 2)": "tuple key", "$int:3": "int key"}  # never collide with str keys
    assert store["nested"] == ["<Thing>", [1, 2]]


def test_break_in_headless_mode_prints_the_pause_and_goes_on(tmp_path):
    path = write(
        tmp_path,
        "plain.py",
        "from flyt_engine import Flow, Node\n"
        "extract = Node(post=lambda ctx, s, p, e: s.set('rows', [1, 2]), name='extract')\n"
        "flow = Flow(extract)\n",
    )
    result = invoke("--headless", path, "--break", "extract", "--watch", "rows")
    assert result.exit_code == 0
    assert "⏸ paused: extract (prep) · breakpoint" in result.stderr
    assert "⏸ paused: rows written by extract" in result.stderr
    assert "new     [1, 2]" in result.stderr


def test_break_on_error_in_headless_mode_stops_at_the_first_error_with_its_context(tmp_path):
    path = write(
        tmp_path,
        "failing.py",
        "from flyt_engine import Flow, Node\n"
        "def broken(ctx, p):\n    raise ValueError('the bug')\n"
        "after = Node(post=lambda ctx, s, p, e: s.set('after_ran', True), name='after')\n"
        "first = Node(exec=broken, prep=lambda ctx, s: 'the input', name='first', fallback=lambda p, e: 1)\n"
        "flow = Flow(first).connect(first, 'default', after)\n",
    )
    # with a fallback the run would go on: --break-on fallback reports it, --break-on error does not fire
    goes_on = invoke("--headless", "--json", path, "--break-on", "fallback")
    assert goes_on.exit_code == 0 and "the fallback comes next" in goes_on.stderr
    assert json.loads(goes_on.stdout)["store"]["after_ran"] is True
    no_fallback = write(
        tmp_path, "failing2.py", (tmp_path / "failing.py").read_text().replace(", fallback=lambda p, e: 1", "")
    )
    stops = invoke("--headless", "--json", no_fallback, "--break-on", "error")
    assert stops.exit_code == 1
    assert "⏸ paused: first failed in exec" in stops.stderr and "ValueError: the bug" in stops.stderr
    assert "after_ran" not in json.loads(stops.stdout)["store"]


def test_a_breakpoint_condition_that_is_not_python_is_a_usage_error(tmp_path):
    path = write(tmp_path, "plain.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    result = invoke("--headless", path, "--break", "x if shared[")
    assert result.exit_code == 2
    assert "not Python" in result.stderr


def test_attr_and_flow_option_pick_the_flow(tmp_path):
    path = write(
        tmp_path,
        "two.py",
        """
        from flyt_engine import Flow, Node
        one = Flow(Node(post=lambda ctx, shared, p, e: "one"))
        two = Flow(Node(post=lambda ctx, shared, p, e: "two"))
        """,
    )
    assert json.loads(invoke("--json", f"{path}:two").stdout)["action"] == "two"
    assert json.loads(invoke("--json", path, "--flow", "one").stdout)["action"] == "one"


# ---------------------------------------------------------------------------------------
# Bad input: exit 2 with a clear message
# ---------------------------------------------------------------------------------------
BAD_INPUTS = {
    "syntax": ("broken.py", "def f(:\n", [], "SyntaxError in broken.py line 1"),
    "import": ("imports.py", "import not_a_module_xyz\n", [], "No module named 'not_a_module_xyz'"),
    "no_flow": ("nothing.py", "X = 1\n", [], "no flow found in nothing.py"),
    "bad_attr": ("attr.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\nfoo = 1\n", [":foo"], None),
    "several": ("many.py", "from flyt_engine import Flow, Node\na = Flow(Node())\nb = Flow(Node())\n", [], None),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_module_exits_2(tmp_path, case):
    name, source, suffix, expected = BAD_INPUTS[case]
    path = write(tmp_path, name, source)
    target = f"{path}{suffix[0]}" if suffix else str(path)
    result = invoke("--headless", target)
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("flyt-tui: error: ")
    expected = (
        expected
        or {
            "bad_attr": "attr.py:foo is an int, not a flow",
            "several": "many.py holds several flows (a, b); pick one with many.py:NAME or --flow NAME",
        }[case]
    )
    assert expected in first
    assert result.stdout == ""


def test_syntax_error_shows_the_offending_line(tmp_path):
    path = write(tmp_path, "broken2.py", "x = 1\ny = (\n")
    result = invoke("--headless", path)
    assert result.exit_code == 2
    assert "broken2.py" in result.stderr
    assert "y = (" in result.stderr


@pytest.mark.parametrize("headless", [True, False])
def test_usage_errors_exit_2_before_the_app_starts(tmp_path, fake_app, headless):
    good = write(tmp_path, "good.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    bad_json = write(tmp_path, "bad.json", "{not json")
    cases = [
        ([tmp_path / "missing.py"], "file not found"),
        ([write(tmp_path, "notes.txt", "x")], "not a Python file"),
        ([good, "--set", "name=ada"], "--set name: value 'ada' is not valid JSON"),
        ([good, "--set", "novalue"], "expected KEY=JSON"),
        ([good, "--store", tmp_path / "absent.json"], "file not found"),
        ([good, "--store", bad_json], "invalid JSON"),
        ([good, "--store", tmp_path], "is a directory"),
    ]
    for args, message in cases:
        result = invoke(*(["--headless"] if headless else []), *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    assert fake_app == []


# ---------------------------------------------------------------------------------------
# Interactive mode hands over to the app
# ---------------------------------------------------------------------------------------
def test_interactive_mode_builds_the_app_with_the_options(tmp_path, fake_app):
    path = write(tmp_path, "flows.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    store = write(tmp_path, "s.json", "{}")
    result = invoke(f"{path}:flow", "--flow", "flow", "--set", "n=1", "--store", store, "--break", "a", "--break", "b")
    assert result.exit_code == 0, result.output
    assert fake_app == [
        {
            "path": path,
            "attr": "flow",
            "flow_name": "flow",
            "store_file": store,
            "overrides": {"n": 1},
            "breakpoints": ("a", "b"),
            "watches": (),
            "break_on": (),
            "watch": True,
            "record": None,
            "otel": None,
            "ran": True,
        }
    ]
    invoke(path, "--no-watch")
    assert fake_app[-1]["watch"] is False


def test_interactive_mode_leaves_syntax_errors_to_the_app(tmp_path, fake_app):
    path = write(tmp_path, "broken.py", "def f(:\n")
    result = invoke(path)
    assert result.exit_code == 0
    assert fake_app[0]["path"] == path


# ---------------------------------------------------------------------------------------
# The real command, in a subprocess
# ---------------------------------------------------------------------------------------
def run_module(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, **kwargs
    )


def test_python_m_flyt_tui_headless_json(tmp_path):
    db = tmp_path / "etl.db"
    proc = run_module(
        "-m", "flyt_tui", "--headless", "--json", "sample_flows/etl.py", "--set", f"db_path={json.dumps(str(db))}"
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["error"] is None
    assert payload["store"]["db_rows"] == 46
    assert len(payload["store"]["orders"]) == 46
    assert "etl finished" in proc.stderr


def test_python_m_flyt_tui_bad_input_and_version(tmp_path):
    proc = run_module("-m", "flyt_tui", "--headless", str(tmp_path / "missing.py"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"flyt-tui: error: {tmp_path / 'missing.py'}: file not found"
    version = run_module("-m", "flyt_tui", "--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"flyt-tui, version {__version__}"


def test_ctrl_c_cancels_a_headless_run(tmp_path):
    path = write(
        tmp_path,
        "slow.py",
        """
        from flyt_engine import Flow, Node
        def wait(ctx, p):
            print("waiting", flush=True)
            ctx.sleep(60)
        flow = Flow(Node(exec=wait), name="slow")
        """,
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flyt_tui", "--headless", str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "waiting"  # the node is inside its sleep
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "✗ slow failed: cancelled" in stderr


def test_headless_runs_never_import_textual(tmp_path):
    path = write(tmp_path, "quiet.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    script = textwrap.dedent(
        f"""
        import sys
        from flyt_tui.cli import main
        try:
            main(["--headless", {str(path)!r}])
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        print("textual" in sys.modules)
        """
    )
    proc = run_module("-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_mermaid_prints_the_graph_and_exits_0(tmp_path):
    path = write(
        tmp_path,
        "graph.py",
        "from flyt_engine import Flow, Node\nprint('noise at import')\n"
        "a, b = Node(name='fetch'), Node(name='parse')\na - 'ok' >> b\nflow = Flow(a, name='crawl')\n",
    )
    result = invoke("--mermaid", path)
    assert result.exit_code == 0
    assert result.stdout.startswith("flowchart TD")
    assert '"fetch"' in result.stdout and '"parse"' in result.stdout and '|"ok"|' in result.stdout
    assert "noise at import" not in result.stdout


def test_headless_runs_an_async_flow_and_breaks_on_its_error():
    from pathlib import Path

    path = Path(__file__).resolve().parent / "flows" / "async_steps.py"
    result = invoke("--headless", "--json", path)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["store"]["doubled"] == [0, 2, 4]
    stops = invoke("--headless", "--json", path, "--set", "fail=true", "--break-on", "error")
    assert stops.exit_code == 1
    assert "⏸ paused: check failed in post" in stops.stderr and "ValueError: the async bug" in stops.stderr


# ---------------------------------------------------------------------------------------
# Recorded runs: --record, and a FILE.flyt.jsonl target
# ---------------------------------------------------------------------------------------
COUNTER = """
    from flyt_engine import Flow, Node

    class Count(Node):
        def post(self, ctx, shared, prep_result, exec_result):
            shared["n"] = shared.get("n", 0) + 1
            return "again" if shared["n"] < 5 else "done"

    count = Count(name="count")
    count.then("again", count)
    flow = Flow(count, name="counter")
"""


def test_record_headless_then_reopen_headless_and_as_mermaid(tmp_path, fake_app):
    path = write(tmp_path, "counter.py", COUNTER)
    bundle = tmp_path / "run.flyt.jsonl"
    result = invoke("--headless", path, "--record", bundle)
    assert result.exit_code == 0, result.output
    assert "recorded" in result.stderr and str(bundle) in result.stderr
    again = invoke("--json", bundle)
    assert again.exit_code == 0, again.output
    payload = json.loads(again.stdout)
    assert payload["action"] == "done" and payload["store"] == {"n": 5} and payload["steps"] == 6
    mermaid = invoke("--mermaid", bundle)
    assert mermaid.exit_code == 0
    assert mermaid.stdout.startswith("flowchart TD") and '"count"' in mermaid.stdout and '"again"' in mermaid.stdout
    assert mermaid.stdout == invoke("--mermaid", path).stdout  # the recording draws the module's graph
    assert fake_app == []  # nothing opened the workbench
    invoke(bundle)
    assert fake_app[0]["path"] == bundle and fake_app[0]["watch"] is False


def test_record_names_and_bad_bundles_are_usage_errors(tmp_path, fake_app):
    path = write(tmp_path, "counter.py", COUNTER)
    wrong = invoke("--headless", path, "--record", tmp_path / "run.json")
    assert wrong.exit_code == 2 and "FILE.flyt.jsonl" in wrong.stderr
    nowhere = invoke("--headless", path, "--record", tmp_path / "absent" / "run.flyt.jsonl")
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.stderr
    junk = write(tmp_path, "junk.flyt.jsonl", "not json at all\n")
    for args in ([junk], ["--headless", junk], ["--mermaid", junk]):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert "not a flyt recording" in result.stderr
    assert fake_app == []


def test_a_failed_run_recorded_reopens_as_failed(tmp_path):
    path = write(tmp_path, "failing.py", FAILING)
    bundle = tmp_path / "fail.flyt.jsonl"
    assert invoke("--headless", path, "--record", bundle).exit_code == 1
    result = invoke("--headless", bundle)
    assert result.exit_code == 1
    assert "failed" in result.stderr


def test_options_that_run_something_are_refused_for_a_recording(tmp_path, fake_app):
    path = write(tmp_path, "counter.py", COUNTER)
    bundle = tmp_path / "run.flyt.jsonl"
    assert invoke("--headless", path, "--record", bundle).exit_code == 0
    for args in (["--set", "n=1"], ["--break", "count"], ["--watch", "n"], ["--record", tmp_path / "b.flyt.jsonl"]):
        result = invoke(bundle, *args)
        assert result.exit_code == 2, args
        assert "a recording runs nothing" in result.stderr and args[0] in result.stderr
    assert fake_app == []
