"""Nodes: both styles, names, class attributes, argument checks and actions (API.md "Nodes", "Actions")."""

import functools

import pytest

from flyt_engine import (
    DEFAULT_ACTION,
    Context,
    FallbackNode,
    Node,
    NodeError,
    RetryableNode,
    SharedStore,
    run,
)

# Every test here runs unobserved, with a recorder, with an observer and with a disarmed gate.
pytestmark = pytest.mark.usefixtures("each_driver", "each_style")


def double(ctx, prep_result):
    return prep_result * 2


# -- actions ----------------------------------------------------------------------------------
def test_default_action_value():
    assert DEFAULT_ACTION == "default"


@pytest.mark.parametrize("returned", [None, ""])
def test_post_none_or_empty_means_default(returned):
    node = Node(post=lambda ctx, shared, p, e: returned)
    assert run(node) == DEFAULT_ACTION


def test_node_without_phases_returns_default():
    assert run(Node()) == "default"


def test_post_string_is_the_action():
    assert run(Node(post=lambda ctx, shared, p, e: "go")) == "go"


def test_post_str_subclass_is_a_plain_str_action():
    class Action(str):
        pass

    action = run(Node(post=lambda ctx, shared, p, e: Action("left")))
    assert action == "left"
    assert type(action) is str


@pytest.mark.parametrize("returned", [42, b"bytes", ["x"], True])
def test_post_returning_a_non_str_is_node_error_in_post(returned):
    node = Node(post=lambda ctx, shared, p, e: returned, name="bad-post")
    with pytest.raises(NodeError) as info:
        run(node)
    err = info.value
    assert err.phase == "post"
    assert err.node is node
    assert type(returned).__name__ in str(err)
    assert isinstance(err.__cause__, TypeError)
    assert "action" in str(err.__cause__)


# -- the functional style ----------------------------------------------------------------------
def test_functional_node_phases_receive_the_documented_arguments():
    calls = []
    store = SharedStore({"x": 21})
    ctx = Context.background().with_value("k", "v")

    def prep(c, shared):
        calls.append(("prep", c.value("k"), shared))
        return shared.get("x")

    def exec_(c, prep_result):
        calls.append(("exec", c.value("k"), prep_result))
        return prep_result * 2

    def post(c, shared, prep_result, exec_result):
        calls.append(("post", c.value("k"), shared, prep_result, exec_result))
        shared.set("y", exec_result)
        return "done"

    assert run(Node(prep=prep, exec=exec_, post=post), store, ctx=ctx) == "done"
    assert calls == [("prep", "v", store), ("exec", "v", 21), ("post", "v", store, 21, 42)]
    assert store.get("y") == 42


def test_functional_options_set_retries_and_wait():
    node = Node(exec=double, max_retries=3, wait=1.5)
    assert node.max_retries == 3
    assert node.wait == 1.5
    assert node.get_max_retries() == 3
    assert node.get_wait() == 1.5


def test_functional_fallback_supplies_exec_fallback():
    def failing(ctx, prep_result):
        raise ValueError("x")

    seen = []

    def fallback(prep_result, error):
        seen.append((prep_result, error))
        return "fb"

    node = Node(prep=lambda ctx, shared: "P", exec=failing, fallback=fallback, post=lambda c, s, p, e: e)
    assert run(node) == "fb"
    assert seen[0][0] == "P" and isinstance(seen[0][1], ValueError)


def test_defaults_of_plain_node():
    node = Node()
    assert node.max_retries == 1
    assert node.wait == 0.0
    assert node.prep(Context.background(), SharedStore()) is None
    assert node.exec(Context.background(), None) is None
    assert node.post(Context.background(), SharedStore(), None, None) is None
    err = ValueError("e")
    with pytest.raises(ValueError) as info:
        node.exec_fallback(None, err)
    assert info.value is err


# -- the subclassing style ----------------------------------------------------------------------
class Greeter(Node):
    max_retries = 4
    wait = 0.25

    def prep(self, ctx, shared):
        return shared.get_str("who")

    def exec(self, ctx, prep_result):
        return f"hello {prep_result}"

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("greeting", exec_result)
        return "greeted"


def test_subclass_style_runs_overridden_methods():
    store = SharedStore({"who": "ann"})
    assert run(Greeter(), store) == "greeted"
    assert store.get("greeting") == "hello ann"


def test_none_kwargs_keep_class_attributes():
    node = Greeter(max_retries=None, wait=None, name=None)
    assert node.max_retries == 4
    assert node.wait == 0.25
    assert node.name == "Greeter"


def test_kwargs_override_class_attributes_on_the_instance_only():
    node = Greeter(max_retries=2, wait=0.0, name="custom")
    assert (node.max_retries, node.wait, node.name) == (2, 0.0, "custom")
    other = Greeter()
    assert (other.max_retries, other.wait, other.name) == (4, 0.25, "Greeter")


def test_subclass_without_super_init_still_runs():
    class Bare(Node):
        def __init__(self, value):
            self.value = value

        def exec(self, ctx, prep_result):
            return self.value

        def post(self, ctx, shared, prep_result, exec_result):
            shared.set("v", exec_result)

    store = SharedStore()
    node = Bare(7)
    assert node.name == "Bare"
    assert run(node, store) == "default"
    assert store.get("v") == 7
    seen = []
    assert run(node, store, ctx=Context.background().with_observer(seen.append)) == "default"
    assert seen and all(e.node == "Bare" for e in seen if e.path == ("Bare",))


def test_functional_kwargs_on_a_subclass_override_methods():
    node = Greeter(exec=lambda ctx, p: f"hi {p}")
    store = SharedStore({"who": "bo"})
    run(node, store)
    assert store.get("greeting") == "hi bo"


def test_state_on_a_node_persists_across_runs():
    class Counter(Node):
        def __init__(self):
            super().__init__()
            self.count = 0

        def exec(self, ctx, prep_result):
            self.count += 1
            return self.count

    node = Counter()
    run(node)
    run(node)
    assert node.count == 2


# -- names --------------------------------------------------------------------------------------
def test_name_defaults_to_class_name_for_subclasses():
    assert Greeter().name == "Greeter"

    class Sub(Greeter):
        pass

    assert Sub().name == "Sub"


def test_name_defaults_to_exec_function_name():
    assert Node(exec=double).name == "double"


def test_name_is_node_without_exec():
    assert Node().name == "node"
    assert Node(prep=lambda ctx, shared: 1).name == "node"


def test_name_is_node_for_exec_callables_without_a_name():
    class Callable_:
        def __call__(self, ctx, prep_result):
            return prep_result

    assert Node(exec=functools.partial(double)).name == "node"
    assert Node(exec=Callable_()).name == "node"


def test_class_attribute_name_is_kept():
    class Named(Node):
        name = "fixed"

    assert Named().name == "fixed"
    assert Named(name=None).name == "fixed"
    assert Named(name="other").name == "other"


def test_explicit_name_wins():
    assert Node(exec=double, name="twice").name == "twice"
    assert Greeter(name="g").name == "g"


def test_flow_name_defaults_to_flow():
    from flyt_engine import Flow

    assert Flow().name == "Flow"
    assert Flow(name="pipeline").name == "pipeline"


def test_name_may_be_changed_later():
    node = Node(exec=double)
    node.name = "renamed"
    assert node.name == "renamed"
    assert Node(exec=double).name == "double"


# -- argument checks ----------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["prep", "exec", "post", "fallback"])
def test_non_callable_phase_is_type_error(phase):
    with pytest.raises(TypeError) as info:
        Node(**{phase: 42})
    assert phase in str(info.value)


@pytest.mark.parametrize("bad", ["3", 2.5, True, [1]])
def test_bad_max_retries_type_is_type_error(bad):
    with pytest.raises(TypeError):
        Node(max_retries=bad)


@pytest.mark.parametrize("bad", ["1", True, [1]])
def test_bad_wait_type_is_type_error(bad):
    with pytest.raises(TypeError):
        Node(wait=bad)


def test_bad_name_type_is_type_error():
    with pytest.raises(TypeError):
        Node(name=42)  # type: ignore[arg-type]


def test_wait_accepts_int_seconds():
    assert Node(wait=2).wait == 2


# -- protocols ----------------------------------------------------------------------------------
def test_protocols_name_the_methods():
    assert isinstance(Node(), RetryableNode)
    assert isinstance(Node(), FallbackNode)

    class OnlyWait:
        def get_wait(self):
            return 0.0

    assert not isinstance(OnlyWait(), RetryableNode)

    class Fallbacker:
        def exec_fallback(self, prep_result, error):
            return None

    assert isinstance(Fallbacker(), FallbackNode)
    assert not isinstance(Fallbacker(), RetryableNode)


def test_node_run_method_is_run():
    store = SharedStore({"who": "x"})
    assert Greeter().run(store) == "greeted"
    assert store.get("greeting") == "hello x"


def test_each_driver_really_changes_how_runs_are_driven(each_driver):
    ctx = Context.background()
    assert (ctx._emit is None) == (each_driver == "background")
    seen = []
    run(Node(exec=lambda c, p: seen.append(c._emit is not None)))
    assert seen == [each_driver != "background"]
