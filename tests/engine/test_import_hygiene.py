"""The engine stays free of UI imports and third-party packages; the API's names exist and are documented."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import flyt_engine

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(statement: str) -> dict:
    """Run ``statement`` in a fresh interpreter; report the modules it added to ``sys.modules``."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "added = sorted(set(sys.modules) - before)\n"
        "print(json.dumps({'added': added, 'stdlib': sorted(sys.stdlib_module_names)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "statement",
    ["import flyt_engine", "import flyt_engine.events, flyt_engine.graph, flyt_engine.pool, flyt_engine.store"],
)
def test_engine_imports_no_ui_and_only_the_standard_library(statement):
    report = _loaded_after(statement)
    added = report["added"]
    assert "textual" not in added
    assert "rich" not in added
    stdlib = set(report["stdlib"])
    foreign = sorted({name.split(".")[0] for name in added} - stdlib - {"flyt_engine"})
    assert foreign == [], f"flyt_engine imported non-stdlib modules: {foreign}"


def test_py_typed_is_shipped():
    assert (Path(flyt_engine.__file__).parent / "py.typed").is_file()


# -- every public name of API.md (batches aside) is importable and documented ----------------------------
PUBLIC = [
    "Context",
    "Cancelled",
    "DeadlineExceeded",
    "Node",
    "RetryableNode",
    "FallbackNode",
    "run",
    "NodeError",
    "FlytError",
    "Flow",
    "SharedStore",
    "BindError",
    "to_slice",
    "WorkerPool",
]

METHODS = {
    "Context": [
        "background",
        "with_cancel",
        "with_timeout",
        "with_value",
        "value",
        "cancelled",
        "error",
        "check",
        "sleep",
        "with_observer",
    ],
    "Node": ["prep", "exec", "post", "exec_fallback", "get_max_retries", "get_wait", "run"],
    "Flow": ["connect", "run", "successors"],
    "SharedStore": [
        "get",
        "set",
        "has",
        "delete",
        "keys",
        "clear",
        "get_all",
        "merge",
        "get_str",
        "get_int",
        "get_float",
        "get_bool",
        "get_list",
        "get_dict",
        "bind",
        "update",
    ],
    "WorkerPool": ["submit", "wait", "close"],
}


def test_default_action_constant():
    assert flyt_engine.DEFAULT_ACTION == "default"
    assert "DEFAULT_ACTION" in flyt_engine.__all__


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_importable_and_documented(name):
    assert name in flyt_engine.__all__
    obj = getattr(flyt_engine, name)
    assert inspect.getdoc(obj), f"{name} has no docstring"


@pytest.mark.parametrize(("owner", "method"), [(o, m) for o, ms in METHODS.items() for m in ms])
def test_public_methods_documented(owner, method):
    cls = getattr(flyt_engine, owner)
    attr = inspect.getattr_static(cls, method)
    if isinstance(attr, (classmethod, staticmethod)):
        attr = attr.__func__
    elif isinstance(attr, property):
        attr = attr.fget
    assert callable(attr), f"{owner}.{method} missing"
    assert inspect.getdoc(attr), f"{owner}.{method} has no docstring"


def test_event_and_graph_modules_documented():
    from flyt_engine import events, graph

    for obj in (events, graph, events.Event, graph.describe, graph.to_mermaid, graph.Graph, graph.GraphNode):
        assert inspect.getdoc(obj), obj
    for cls in events.ALL_EVENTS:
        assert cls.__doc__, cls.__name__


def test_flow_attributes():
    flow = flyt_engine.Flow()
    assert flow.start is None
    assert isinstance(flow, flyt_engine.Node)


def test_workbench_core_never_imports_textual():
    """flyt_tui/core is what is not drawing: every module of it imports without textual."""
    core = ROOT / "flyt_tui" / "core"
    modules = sorted(f"flyt_tui.core.{p.stem}" for p in core.glob("*.py") if p.stem != "__init__")
    assert {"flyt_tui.core.loading", "flyt_tui.core.session", "flyt_tui.core.format"} <= set(modules)
    report = _loaded_after("import " + ", ".join(modules))
    assert not [name for name in report["added"] if name.split(".")[0] == "textual"]
