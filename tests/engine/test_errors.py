"""Error hierarchy and error hygiene: bad inputs give clear TypeErrors, never a bare AttributeError."""

import pickle

import pytest

from flyt_engine import (
    BindError,
    Cancelled,
    Context,
    DeadlineExceeded,
    Flow,
    FlytError,
    Node,
    NodeError,
    SharedStore,
    WorkerPool,
    run,
)
from flyt_engine.graph import describe

pytestmark = pytest.mark.usefixtures("each_wiring", "each_style")


# -- hierarchy ---------------------------------------------------------------------------------------
def test_hierarchy():
    assert issubclass(FlytError, Exception)
    for cls in (Cancelled, NodeError, BindError):
        assert issubclass(cls, FlytError)
    assert issubclass(DeadlineExceeded, Cancelled)
    assert issubclass(DeadlineExceeded, TimeoutError)
    assert not issubclass(Cancelled, TimeoutError)
    assert not issubclass(NodeError, Cancelled)


def test_node_error_pickles_with_its_fields():
    node = Node(exec=lambda c, p: 1 / 0, name="divider", max_retries=2)
    with pytest.raises(NodeError) as info:
        run(node)
    clone = pickle.loads(pickle.dumps(info.value))
    assert isinstance(clone, NodeError)
    assert clone.node_name == "divider"
    assert clone.phase == "exec"
    assert clone.attempts == 2
    assert str(clone) == str(info.value)


@pytest.mark.parametrize("cls", [Cancelled, DeadlineExceeded, BindError, FlytError])
def test_simple_errors_pickle(cls):
    clone = pickle.loads(pickle.dumps(cls("why")))
    assert type(clone) is cls and str(clone) == "why"


def test_context_errors_are_raised_as_their_kind():
    ctx, cancel = Context.background().with_cancel()
    cancel()
    with pytest.raises(Cancelled) as info:
        ctx.check()
    assert isinstance(info.value, FlytError)


# -- bad inputs: a clear TypeError at the API boundary -----------------------------------------------
BAD_INPUTS = [
    ("run(non-node)", lambda: run(object())),
    ("run(dict store)", lambda: run(Node(), {"a": 1})),
    ("run(bad ctx)", lambda: run(Node(), None, ctx={"deadline": 1})),
    ("Flow.run(dict)", lambda: Flow(Node()).run({"a": 1})),
    ("Node.run(dict)", lambda: Node().run({"a": 1})),
    ("connect(src=str)", lambda: Flow().connect("a", "x", Node())),
    ("connect(dst=str)", lambda: Flow().connect(Node(), "x", "b")),
    ("connect(action=int)", lambda: Flow().connect(Node(), 3, None)),
    ("Flow(start=str)", lambda: Flow("start")),
    ("Node(exec=int)", lambda: Node(exec=3)),
    ("Node(max_retries=str)", lambda: Node(max_retries="3")),
    ("SharedStore(list)", lambda: SharedStore([1, 2])),
    ("merge(list)", lambda: SharedStore().merge([("a", 1)])),
    ("with_observer(int)", lambda: Context.background().with_observer(3)),
    ("with_timeout(str)", lambda: Context.background().with_timeout("1")),
    ("describe(str)", lambda: describe("flow")),
    ("WorkerPool(str)", lambda: WorkerPool("2")),
]


@pytest.mark.parametrize(("label", "call"), BAD_INPUTS, ids=[label for label, _ in BAD_INPUTS])
def test_bad_input_is_type_error_not_attribute_error(label, call):
    with pytest.raises(TypeError) as info:
        call()
    assert not isinstance(info.value, AttributeError)
    assert str(info.value), f"{label}: empty message"


def test_type_error_messages_name_the_wrong_type():
    with pytest.raises(TypeError, match="dict"):
        run(Node(), {"a": 1})
    with pytest.raises(TypeError, match="str"):
        run("node")


def test_phase_with_wrong_signature_is_type_error_when_built():
    with pytest.raises(TypeError, match=r"'arity'.*exec must take \(ctx, prep_result\)"):
        Node(exec=lambda only_one: None, name="arity")


def test_bind_to_a_non_type_is_bind_error():
    with pytest.raises(BindError):
        SharedStore({"k": {"a": 1}}).bind("k", 42)  # type: ignore[arg-type]


def test_typed_getters_never_raise_on_odd_values():
    class Weird:
        def __int__(self):
            raise RuntimeError("never call me")

        def __float__(self):
            raise RuntimeError("never call me")

        def __iter__(self):
            raise RuntimeError("never call me")

    store = SharedStore({"w": Weird()})
    assert store.get_int("w") == 0
    assert store.get_float("w") == 0.0
    assert store.get_str("w") == ""
    assert store.get_bool("w") is False
    assert store.get_list("w") is None
    assert store.get_dict("w") is None


# -- errors whose text cannot be made (issue 15) -------------------------------------------------
@pytest.mark.parametrize("phase", ["prep", "exec", "post", "fallback"])
def test_unprintable_error_is_blamed_on_its_node_and_phase(phase):
    from flyt_engine import Flow
    from tests.hostile import UnprintableError

    def boom(*args):
        raise UnprintableError()

    kwargs = {phase: boom}
    if phase == "fallback":
        kwargs["exec"] = boom
    leaf = Node(name="leaf", **kwargs)
    with pytest.raises(NodeError) as info:
        run(Flow(Flow(leaf, name="inner"), name="outer"))
    error = info.value
    assert error.node is leaf
    assert error.phase == ("exec" if phase == "fallback" else phase)
    assert isinstance(error.__cause__, UnprintableError)
    assert "<unprintable UnprintableError>" in str(error)


def test_unprintable_batch_item_error_keeps_the_batch_error():
    from flyt_engine import BatchError, BatchNode
    from tests.hostile import UnprintableError

    def process(ctx, item):
        if item == 2:
            raise UnprintableError()
        return item

    with pytest.raises(BatchError) as info:
        run(BatchNode(process, name="b"), SharedStore({"items": [1, 2, 3]}))
    assert "<unprintable UnprintableError>" in str(info.value)
    assert isinstance(info.value.errors[1], UnprintableError)
