"""The loader: discovery rules, node naming, initial store, fresh imports, reload and every LoadError."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from flyt_engine import BatchNode, Flow, SharedStore
from flyt_tui.core.loading import (
    LoadError,
    entry_by_name,
    load_module,
    parse_set_option,
    parse_target,
    read_store_file,
    reload_module,
)


@pytest.fixture(autouse=True)
def _isolated_imports(tmp_path):
    """Leave sys.path and sys.modules as they were: each test imports its own tmp files."""
    path_before = sys.path[:]
    yield
    sys.path[:] = path_before
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# parse_target / parse_set_option / read_store_file
# ---------------------------------------------------------------------------------------
def test_parse_target_splits_attribute():
    assert parse_target("flows/etl.py:pipeline") == (Path("flows/etl.py"), "pipeline")
    assert parse_target("flows/etl.py") == (Path("flows/etl.py"), None)


def test_parse_target_keeps_colons_that_are_part_of_the_path():
    assert parse_target(r"C:\flows\etl.py") == (Path(r"C:\flows\etl.py"), None)


def test_parse_target_rejects_an_invalid_attribute():
    with pytest.raises(LoadError, match="invalid flow name '1x'"):
        parse_target("etl.py:1x")


def test_parse_set_option_reads_json_values():
    assert parse_set_option("retries=3") == ("retries", 3)
    assert parse_set_option('name="ada"') == ("name", "ada")
    assert parse_set_option('cfg={"a": [1, 2]}') == ("cfg", {"a": [1, 2]})
    assert parse_set_option('expr="a=b"') == ("expr", "a=b")
    assert parse_set_option(" flag =true") == ("flag", True)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("retries", "expected KEY=JSON"), ("=3", "expected KEY=JSON"), ("name=ada", "not valid JSON")],
)
def test_parse_set_option_errors_are_clear(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_set_option(text)


def test_parse_set_option_names_the_key_and_hints_at_quotes():
    with pytest.raises(ValueError) as info:
        parse_set_option("name=ada")
    assert "--set name" in str(info.value)
    assert "quotes" in str(info.value)


def test_read_store_file_errors(tmp_path):
    with pytest.raises(LoadError, match="file not found"):
        read_store_file(tmp_path / "missing.json")
    bad = write(tmp_path, "bad.json", '{"a": 1,')
    with pytest.raises(LoadError, match=r"invalid JSON at line 1"):
        read_store_file(bad)
    array = write(tmp_path, "array.json", "[1, 2]")
    with pytest.raises(LoadError, match="expected a JSON object, got an array"):
        read_store_file(array)
    assert read_store_file(write(tmp_path, "ok.json", '{"a": 1}')) == {"a": 1}


# ---------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------
FLOWS_AND_NODES = """
    from flyt_engine import Flow, Node

    a = Node(exec=lambda ctx, p: 1)
    b = Node(exec=lambda ctx, p: 2)
    first = Flow(a)
    second = Flow(b)
    CALLS = []

    def create_third():
        CALLS.append("create_third")
        return Flow(Node())
"""


def test_module_level_flow_is_opened_directly(tmp_path):
    path = write(
        tmp_path,
        "main_flow.py",
        """
        from flyt_engine import Flow, Node
        step = Node()
        other = Flow(Node())
        flow = Flow(step)
        """,
    )
    loaded = load_module(path)
    assert [(e.name, e.origin) for e in loaded.entries] == [("flow", "flow")]
    assert loaded.entries[0].flow is loaded.module.flow


def test_module_level_flows_in_discovery_order_before_factories(tmp_path):
    path = write(tmp_path, "two_flows.py", FLOWS_AND_NODES)
    loaded = load_module(path)
    assert [(e.name, e.origin) for e in loaded.entries] == [("first", "module"), ("second", "module")]
    assert loaded.entries[0].flow is loaded.module.first
    assert loaded.module.CALLS == []  # factories are only tried when no flow object exists


def test_the_same_flow_under_two_names_is_one_entry(tmp_path):
    path = write(
        tmp_path,
        "alias.py",
        """
        from flyt_engine import Flow, Node
        pipeline = Flow(Node())
        alias = pipeline
        """,
    )
    loaded = load_module(path)
    assert [e.name for e in loaded.entries] == ["pipeline"]


def test_factories_are_called_when_there_is_no_flow_object(tmp_path):
    write(
        tmp_path,
        "helpers_mod.py",
        """
        CALLED = []
        def create_engine():
            CALLED.append(1)
            raise AssertionError("an imported create_* function must not be called")
        """,
    )
    path = write(
        tmp_path,
        "factories.py",
        """
        from flyt_engine import Flow, Node
        from helpers_mod import create_engine

        def build_pipeline():
            return Flow(Node(), name="built")

        def create_flow(size=3):
            return Flow(Node(), name=f"created{size}")

        def create_with_args(x):
            raise AssertionError("needs an argument: not a factory")

        def create_nothing():
            return 42

        def helper():
            raise AssertionError("not a factory name")
        """,
    )
    loaded = load_module(path)
    assert [(e.name, e.origin, e.flow.name) for e in loaded.entries] == [
        ("build_pipeline", "factory", "built"),
        ("create_flow", "factory", "created3"),
    ]


def test_free_nodes_are_the_last_resort(tmp_path):
    path = write(
        tmp_path,
        "nodes_only.py",
        """
        from flyt_engine import BatchNode, Node
        def double(ctx, x):
            return 2 * x
        fetch = Node()
        batch = BatchNode(double)
        """,
    )
    loaded = load_module(path)
    assert [(e.name, e.origin) for e in loaded.entries] == [("fetch", "node"), ("batch", "node")]
    assert isinstance(loaded.entries[1].flow, BatchNode)


def test_no_flow_found_lists_what_was_looked_for(tmp_path):
    path = write(tmp_path, "empty_mod.py", "X = 1\n")
    with pytest.raises(LoadError) as info:
        load_module(path)
    message = info.value.message
    assert "no flow found in empty_mod.py" in message
    for wanted in ("`flow`", "Flow/BatchFlow", "create_*/build_*", "Node"):
        assert wanted in message
    assert info.value.path == path.resolve()


def test_named_attribute_wins_over_discovery(tmp_path):
    path = write(tmp_path, "named.py", FLOWS_AND_NODES)
    loaded = load_module(path, attr="second")
    assert [(e.name, e.origin) for e in loaded.entries] == [("second", "attribute")]
    assert loaded.entries[0].flow is loaded.module.second


def test_flow_option_names_an_attribute_or_a_factory(tmp_path):
    path = write(tmp_path, "named2.py", FLOWS_AND_NODES)
    by_attribute = load_module(path, flow_name="b")
    assert by_attribute.entries[0].flow is by_attribute.module.b
    assert by_attribute.entries[0].origin == "attribute"
    loaded = load_module(path, flow_name="create_third")
    assert loaded.entries[0].origin == "factory"
    assert isinstance(loaded.entries[0].flow, Flow)
    assert loaded.module.CALLS == ["create_third"]


def test_attribute_that_is_not_a_flow(tmp_path):
    path = write(tmp_path, "etl.py", textwrap.dedent(FLOWS_AND_NODES) + "\nfoo = 42\ntext = 'x'\n")
    with pytest.raises(LoadError, match=r"^etl\.py:foo is an int, not a flow$"):
        load_module(path, attr="foo")
    with pytest.raises(LoadError, match=r"^etl\.py:text is a str, not a flow$"):
        load_module(path, attr="text")
    with pytest.raises(LoadError, match=r"etl\.py:Flow is a type, not a flow"):
        load_module(path, attr="Flow")


def test_missing_attribute_lists_the_flows_found(tmp_path):
    path = write(tmp_path, "missing_attr.py", FLOWS_AND_NODES)
    with pytest.raises(LoadError) as info:
        load_module(path, attr="nope")
    assert "has no flow named 'nope'" in info.value.message
    assert "first" in info.value.message and "second" in info.value.message


def test_attr_and_flow_option_must_agree(tmp_path):
    path = write(tmp_path, "both.py", FLOWS_AND_NODES)
    assert load_module(path, attr="first", flow_name="first").entries[0].name == "first"
    with pytest.raises(LoadError, match="named twice"):
        load_module(path, attr="first", flow_name="second")


def test_entry_by_name(tmp_path):
    loaded = load_module(write(tmp_path, "by_name.py", FLOWS_AND_NODES))
    assert entry_by_name(loaded, "second") is loaded.entries[1]
    assert entry_by_name(loaded, "third") is None


def test_factory_raising_is_a_load_error_with_traceback(tmp_path):
    path = write(
        tmp_path,
        "bad_factory.py",
        """
        def create_flow():
            raise RuntimeError("factory exploded")
        """,
    )
    with pytest.raises(LoadError) as info:
        load_module(path)
    assert "create_flow() raised RuntimeError: factory exploded" in info.value.message
    assert "Traceback" in info.value.details
    assert "bad_factory.py" in info.value.details


# ---------------------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------------------
def test_unnamed_nodes_take_their_variable_names(tmp_path):
    path = write(
        tmp_path,
        "naming.py",
        """
        from flyt_engine import BatchNode, Flow, Node

        class Fetch(Node):
            pass

        class Custom(Node):
            name = "custom-by-class"

        def parse_fn(ctx, p):
            return p

        fetch = Fetch()
        parse = Node(exec=parse_fn)
        explicit = Node(exec=parse_fn, name="kept")
        custom = Custom()
        items = BatchNode(lambda ctx, x: x)
        pipeline = Flow(fetch)
        pipeline.connect(fetch, "default", parse).connect(parse, "default", explicit)
        pipeline.connect(explicit, "default", custom).connect(custom, "default", items)
        named_flow = Flow(Node(), name="my flow")
        """,
    )
    module = load_module(path, attr="pipeline").module
    assert module.fetch.name == "fetch"
    assert module.parse.name == "parse"
    assert module.items.name == "items"
    assert module.pipeline.name == "pipeline"
    assert module.explicit.name == "kept"
    assert module.custom.name == "custom-by-class"
    assert module.named_flow.name == "my flow"
    assert module.fetch._auto_name is False


def test_first_variable_holding_a_node_names_it(tmp_path):
    path = write(
        tmp_path,
        "two_vars.py",
        """
        from flyt_engine import Flow, Node
        original = Node()
        alias = original
        flow = Flow(original)
        """,
    )
    assert load_module(path).module.alias.name == "original"


def test_sibling_module_nodes_are_named_too(tmp_path):
    write(tmp_path, "steps_mod.py", "from flyt_engine import Node\nclass Step(Node):\n    pass\nshout = Step()\n")
    path = write(
        tmp_path, "uses_steps.py", "import steps_mod\nfrom flyt_engine import Flow\nflow = Flow(steps_mod.shout)\n"
    )
    assert load_module(path).module.flow.start.name == "shout"


# ---------------------------------------------------------------------------------------
# Initial store
# ---------------------------------------------------------------------------------------
def test_initial_store_precedence(tmp_path):
    path = write(
        tmp_path,
        "stored.py",
        """
        from flyt_engine import Flow, Node
        SHARED = {"a": "shared", "b": "shared", "c": "shared", "d": "shared", "nested": [1]}
        def initial_store():
            return {"b": "function", "c": "function", "d": "function"}
        flow = Flow(Node())
        """,
    )
    store_file = write(tmp_path, "store.json", json.dumps({"c": "file", "d": "file", "e": "file"}))
    loaded = load_module(path, store_file=store_file, overrides={"d": "set", "f": "set"})
    assert loaded.initial_store == {
        "a": "shared",
        "b": "function",
        "c": "file",
        "d": "set",
        "e": "file",
        "f": "set",
        "nested": [1],
    }
    loaded.initial_store["nested"].append(2)
    assert loaded.module.SHARED["nested"] == [1]  # the store is a copy, not the module's dict


def test_initial_store_errors(tmp_path):
    raising = write(
        tmp_path,
        "store_raises.py",
        """
        from flyt_engine import Flow, Node
        flow = Flow(Node())
        def initial_store():
            raise KeyError("db_url")
        """,
    )
    with pytest.raises(LoadError) as info:
        load_module(raising)
    assert "initial_store() in store_raises.py raised KeyError" in info.value.message
    assert "Traceback" in info.value.details
    wrong = write(
        tmp_path, "store_list.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\ninitial_store = list\n"
    )
    with pytest.raises(LoadError, match="must return a dict, not list"):
        load_module(wrong)


def test_bad_store_file_is_a_load_error(tmp_path):
    path = write(tmp_path, "plain.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    with pytest.raises(LoadError, match=r"--store .*invalid JSON"):
        load_module(path, store_file=write(tmp_path, "bad.json", "{nope}"))
    with pytest.raises(LoadError, match=r"--store .*file not found"):
        load_module(path, store_file=tmp_path / "absent.json")


# ---------------------------------------------------------------------------------------
# Import mechanics
# ---------------------------------------------------------------------------------------
def test_every_load_is_a_fresh_import(tmp_path):
    path = write(tmp_path, "fresh.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    first = load_module(path)
    second = load_module(path)
    assert first.module is not second.module
    assert first.entries[0].flow is not second.entries[0].flow
    assert sys.modules[second.module.__name__] is second.module
    assert second.watch_dir == path.resolve().parent
    assert second.path == path.resolve()


def test_sibling_import_and_no_bytecode_written(tmp_path):
    write(tmp_path, "helper_mod.py", "FACTOR = 2\n")
    path = write(
        tmp_path,
        "with_sibling.py",
        """
        import helper_mod
        from flyt_engine import Flow, Node
        flow = Flow(Node(exec=lambda ctx, p: helper_mod.FACTOR))
        """,
    )
    loaded = load_module(path)
    assert loaded.module.helper_mod.FACTOR == 2
    assert set(loaded.user_modules) == {loaded.module.__name__, "helper_mod"}
    assert not (tmp_path / "__pycache__").exists()


def test_reload_picks_up_a_sibling_edit(tmp_path):
    sibling = write(tmp_path, "settings_mod.py", "LIMIT = 1\n")
    path = write(
        tmp_path,
        "reloads.py",
        """
        from settings_mod import LIMIT
        from flyt_engine import Flow, Node
        flow = Flow(Node(exec=lambda ctx, p: LIMIT))
        """,
    )
    loaded = load_module(path, overrides={"k": 1})
    assert loaded.module.LIMIT == 1
    sibling.write_text("LIMIT = 2  # edited\n", encoding="utf-8")
    again = reload_module(loaded)
    assert again.module.LIMIT == 2
    assert again.module is not loaded.module
    assert again.initial_store == {"k": 1}  # same options as before
    assert sys.modules["settings_mod"] is again.user_modules["settings_mod"]


def test_reload_finds_a_sibling_created_after_the_first_load(tmp_path):
    path = write(tmp_path, "grows.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    loaded = load_module(path)
    write(tmp_path, "late_mod.py", "VALUE = 'late'\n")
    path.write_text("from late_mod import VALUE\nfrom flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    assert reload_module(loaded).module.VALUE == "late"


def test_reload_keeps_the_named_flow(tmp_path):
    path = write(tmp_path, "keep_attr.py", FLOWS_AND_NODES)
    loaded = load_module(path, attr="second")
    again = reload_module(loaded)
    assert [e.name for e in again.entries] == ["second"]
    assert again.entries[0].flow is again.module.second


def test_failed_reload_restores_the_old_modules(tmp_path):
    sibling = write(tmp_path, "part_mod.py", "VALUE = 1\n")
    path = write(tmp_path, "fragile.py", "import part_mod\nfrom flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    loaded = load_module(path)
    name = loaded.module.__name__
    sibling.write_text("VALUE = 2\n")
    path.write_text("import part_mod\nraise ValueError('broken on purpose')\n")
    with pytest.raises(LoadError) as info:
        reload_module(loaded)
    assert info.value.message == "ValueError in fragile.py line 2: broken on purpose"
    assert "Traceback (most recent call last)" in info.value.details
    assert 'fragile.py", line 2' in info.value.details
    assert "importlib" not in info.value.details  # user frames only
    assert sys.modules[name] is loaded.module
    assert sys.modules["part_mod"] is loaded.user_modules["part_mod"]
    assert sys.modules["part_mod"].VALUE == 1


def test_reload_that_finds_no_flow_restores_the_old_modules(tmp_path):
    path = write(tmp_path, "vanishes.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    loaded = load_module(path)
    path.write_text("X = 1\n")
    with pytest.raises(LoadError, match="no flow found"):
        reload_module(loaded)
    assert sys.modules[loaded.module.__name__] is loaded.module


def test_failed_first_load_leaves_no_module_behind(tmp_path):
    write(tmp_path, "ok_sibling.py", "A = 1\n")
    path = write(tmp_path, "half.py", "import ok_sibling\nraise RuntimeError('no')\n")
    before = set(sys.modules)
    with pytest.raises(LoadError):
        load_module(path)
    assert set(sys.modules) - before == set()


def test_a_file_named_like_a_stdlib_module_does_not_shadow_it(tmp_path):
    import string

    path = write(tmp_path, "string.py", "from flyt_engine import Flow, Node\nflow = Flow(Node())\n")
    loaded = load_module(path)
    assert loaded.module.__name__ != "string"
    assert sys.modules["string"] is string


def test_the_loaded_flow_runs(tmp_path):
    path = write(
        tmp_path,
        "runs.py",
        """
        from flyt_engine import Flow, Node
        def post(ctx, shared, p, e):
            shared.set("out", shared.get("x") * 2)
        flow = Flow(Node(post=post))
        SHARED = {"x": 1}
        """,
    )
    loaded = load_module(path, overrides={"x": 21})
    store = SharedStore(loaded.initial_store)
    loaded.entries[0].flow.run(store)
    assert store.get("out") == 42


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(LoadError, match="file not found") as info:
        load_module(tmp_path / "nope.py")
    assert info.value.path == tmp_path / "nope.py"


def test_not_a_python_file(tmp_path):
    with pytest.raises(LoadError, match="not a Python file"):
        load_module(write(tmp_path, "flow.txt", "x"))
    with pytest.raises(LoadError, match="is a directory"):
        load_module(tmp_path)


def test_syntax_error(tmp_path):
    path = write(tmp_path, "broken.py", "from flyt_engine import Flow\n\ndef oops(:\n    pass\n")
    with pytest.raises(LoadError) as info:
        load_module(path)
    assert info.value.message.startswith("SyntaxError in broken.py line 3: ")
    assert "def oops(:" in info.value.details
    assert "broken" not in sys.modules


def test_import_error(tmp_path):
    path = write(tmp_path, "needs_missing.py", "import not_a_real_module_xyz\n")
    with pytest.raises(LoadError) as info:
        load_module(path)
    assert info.value.message == (
        "ModuleNotFoundError in needs_missing.py line 1: No module named 'not_a_real_module_xyz'"
    )
    assert "Traceback" in info.value.details


def test_exception_in_a_sibling_at_import_names_the_sibling(tmp_path):
    write(tmp_path, "bad_sibling.py", "X = 1\nY = 1 / 0\n")
    path = write(tmp_path, "imports_bad.py", "import bad_sibling\n")
    with pytest.raises(LoadError) as info:
        load_module(path)
    assert info.value.message == "ZeroDivisionError in bad_sibling.py line 2: division by zero"
    assert 'imports_bad.py", line 1' in info.value.details
    assert 'bad_sibling.py", line 2' in info.value.details


def test_exit_at_import_is_a_load_error(tmp_path):
    path = write(tmp_path, "exits.py", "import sys\nsys.exit(3)\n")
    with pytest.raises(LoadError, match=r"SystemExit in exits.py line 2: the module called exit\(3\)"):
        load_module(path)


def test_unexpected_errors_while_inspecting_the_module_are_load_errors(tmp_path):
    path = write(
        tmp_path,
        "odd_node.py",
        """
        from flyt_engine import Flow, Node

        class Frozen(Node):
            def __setattr__(self, key, value):
                if key == "name":
                    raise AttributeError("name is read-only")
                super().__setattr__(key, value)

        frozen = Frozen()
        flow = Flow(frozen)
        """,
    )
    with pytest.raises(LoadError, match=r"AttributeError while loading odd_node\.py") as info:
        load_module(path)
    assert "Traceback" in info.value.details
    assert not any(getattr(m, "__file__", None) == str(path.resolve()) for m in list(sys.modules.values()))


def test_load_error_is_an_exception_with_message_details_and_path(tmp_path):
    error = LoadError("one line", "long\ntext", tmp_path / "x.py")
    assert str(error) == "one line"
    assert (error.message, error.details, error.path) == ("one line", "long\ntext", tmp_path / "x.py")
    assert LoadError("only").details == "only"


def test_a_factory_root_without_a_chosen_name_is_named_after_the_factory(tmp_path):
    path = tmp_path / "factories.py"
    path.write_text(
        "from flyt_engine import BatchFlow, Flow, Node\n"
        "def create_pipeline():\n    return Flow(Node(name='a'))\n"
        "def build_fanout():\n    return BatchFlow(lambda: Flow(Node(name='b')), lambda ctx, shared: [])\n"
        "def create_named():\n    return Flow(Node(name='c'), name='kept')\n"
    )
    loaded = load_module(path)
    names = {entry.name: entry.flow.name for entry in loaded.entries}
    assert names == {"create_pipeline": "pipeline", "build_fanout": "fanout", "create_named": "kept"}
