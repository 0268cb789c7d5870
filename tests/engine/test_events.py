"""Events: the observer contract the workbench is built on (API.md "Events")."""

import threading
import time

import pytest

from flyt_engine import DEFAULT_ACTION, Cancelled, Context, Flow, Node, NodeError, SharedStore, run
from flyt_engine.events import (
    ALL_EVENTS,
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    Event,
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    StoreChanged,
)

pytestmark = pytest.mark.usefixtures("each_wiring", "each_style")


def observed(node, shared=None, ctx=None):
    """Run ``node`` with a list observer; return ``(events, action or exception)``."""
    events: list[Event] = []
    ctx = (ctx or Context.background()).with_observer(events.append)
    try:
        outcome = run(node, shared, ctx=ctx)
    except Exception as exc:
        outcome = exc
    return events, outcome


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def two_node_flow():
    a = Node(name="a")
    b = Node(name="b", post=lambda ctx, shared, p, e: shared.set("k", 1))
    return Flow(a, name="pipe").connect(a, DEFAULT_ACTION, b), a, b


# -- observers ----------------------------------------------------------------------------------
def test_observer_receives_events():
    flow, _, _ = two_node_flow()
    events, action = observed(flow)
    assert action == DEFAULT_ACTION
    assert events
    assert all(isinstance(e, Event) for e in events)


def test_every_observer_sees_the_same_events_in_the_same_order():
    first, second = [], []
    ctx = Context.background().with_observer(first.append).with_observer(second.append)
    flow, _, _ = two_node_flow()
    run(flow, ctx=ctx)
    assert first
    assert [id(e) for e in first] == [id(e) for e in second]


def test_unobserved_context_gets_no_events_from_a_sibling_observer():
    seen = []
    base = Context.background()
    base.with_observer(seen.append)  # the child is discarded
    flow, _, _ = two_node_flow()
    run(flow, ctx=base)
    assert seen == []


def test_observers_are_called_on_the_thread_doing_the_work():
    threads = set()
    worker = {}

    def exec_(ctx, p):
        worker["thread"] = threading.get_ident()

    def body():
        run(
            Node(exec=exec_, name="w"),
            ctx=Context.background().with_observer(lambda e: threads.add(threading.get_ident())),
        )

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(10)
    assert threads == {worker["thread"]}
    assert threading.get_ident() not in threads


# -- the golden stream ----------------------------------------------------------------------------
def test_golden_event_stream_of_a_two_node_flow():
    flow, _, _ = two_node_flow()
    events, _ = observed(flow)
    stream = [(e.kind, e.path, getattr(e, "phase", None)) for e in events]
    pipe, a, b = ("pipe",), ("pipe", "a"), ("pipe", "b")

    def node_steps(path, store_write=False):
        steps = [
            ("node_started", path, None),
            ("phase_started", path, "prep"),
            ("phase_finished", path, "prep"),
            ("phase_started", path, "exec"),
            ("phase_finished", path, "exec"),
            ("phase_started", path, "post"),
        ]
        if store_write:
            steps.append(("store_changed", path, None))
        steps += [("phase_finished", path, "post"), ("node_finished", path, None)]
        return steps

    expected = [
        ("run_started", pipe, None),
        ("node_started", pipe, None),
        ("phase_started", pipe, "prep"),
        ("phase_finished", pipe, "prep"),
        ("phase_started", pipe, "exec"),
        *node_steps(a),
        *node_steps(b, store_write=True),
        ("phase_finished", pipe, "exec"),
        ("phase_started", pipe, "post"),
        ("phase_finished", pipe, "post"),
        ("node_finished", pipe, None),
        ("run_finished", pipe, None),
    ]
    assert stream == expected


def test_event_kinds_match_classes():
    kinds = {cls.kind for cls in ALL_EVENTS}
    assert len(kinds) == len(ALL_EVENTS)
    assert RunStarted.kind == "run_started"
    assert StoreChanged.kind == "store_changed"


# -- RunStarted / RunFinished ---------------------------------------------------------------------
def test_run_started_and_finished_once_per_top_level_run_even_when_nested():
    leaf = Node(name="leaf")
    inner = Flow(leaf, name="inner")
    outer = Flow(inner, name="outer")
    events, _ = observed(outer)
    assert len(of(events, RunStarted)) == 1
    assert len(of(events, RunFinished)) == 1
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunFinished)
    assert events[0].path == ("outer",)


def test_run_finished_carries_action_or_error():
    events, action = observed(Node(post=lambda c, s, p, e: "went", name="n"))
    finished = of(events, RunFinished)[0]
    assert (finished.action, finished.error) == ("went", None)
    assert action == "went"

    events, error = observed(Node(exec=lambda c, p: 1 / 0, name="bad"))
    finished = of(events, RunFinished)[0]
    assert isinstance(error, NodeError)
    assert finished.action is None
    assert finished.error is error


def test_nested_run_call_is_part_of_the_enclosing_run():
    inner = Node(name="inner")

    def exec_(ctx, p):
        return run(inner, ctx=ctx)

    events, _ = observed(Node(exec=exec_, name="outer"))
    assert len(of(events, RunStarted)) == 1
    assert len({e.run_id for e in events}) == 1
    assert any(e.node == "inner" for e in events)


def test_run_id_new_per_top_level_run_and_shared_within():
    flow, _, _ = two_node_flow()
    events: list[Event] = []
    ctx = Context.background().with_observer(events.append)
    run(flow, ctx=ctx)
    first_ids = {e.run_id for e in events}
    events.clear()
    run(flow, ctx=ctx)
    second_ids = {e.run_id for e in events}
    assert len(first_ids) == 1
    assert len(second_ids) == 1
    assert first_ids != second_ids


# -- paths, ids, time -------------------------------------------------------------------------------
def test_path_semantics_for_nested_flows():
    leaf = Node(name="leaf")
    inner = Flow(leaf, name="inner")
    outer = Flow(inner, name="outer")
    events, _ = observed(outer)
    by_name = {}
    for e in events:
        if not isinstance(e, (RunStarted, RunFinished)):
            by_name.setdefault(e.node, set()).add(e.path)
    assert by_name == {"outer": {("outer",)}, "inner": {("outer", "inner")}, "leaf": {("outer", "inner", "leaf")}}


def test_event_node_is_the_last_path_element():
    leaf = Node(name="leaf")
    events, _ = observed(Flow(Flow(leaf, name="inner"), name="outer"))
    for e in events:
        assert isinstance(e.node, str)
        assert e.node == e.path[-1]


def test_node_id_is_id_of_the_node_object():
    leaf = Node(name="leaf")
    inner = Flow(leaf, name="inner")
    outer = Flow(inner, name="outer")
    objects = {"outer": outer, "inner": inner, "leaf": leaf}
    events, _ = observed(outer)
    checked = [e for e in events if not isinstance(e, StoreChanged)]
    assert checked
    for e in checked:
        assert e.node_id == id(objects[e.node]), e


def test_store_changed_node_id_is_the_writing_node():
    writer = Node(post=lambda c, s, p, e: s.set("k", 1), name="writer")
    flow = Flow(writer, name="pipe")
    events, _ = observed(flow)
    (change,) = of(events, StoreChanged)
    assert change.path == ("pipe", "writer")
    assert change.node == "writer"
    assert change.node_id == id(writer)


def test_same_name_nodes_are_told_apart_by_node_id():
    first = Node(name="same")
    second = Node(name="same")
    flow = Flow(first, name="f").connect(first, DEFAULT_ACTION, second)
    events, _ = observed(flow)
    ids = [e.node_id for e in of(events, NodeStarted) if e.node == "same"]
    assert ids == [id(first), id(second)]


def test_time_is_monotonic_and_non_decreasing():
    flow, _, _ = two_node_flow()
    before = time.monotonic()
    events, _ = observed(flow)
    after = time.monotonic()
    times = [e.time for e in events]
    assert times == sorted(times)
    assert before <= times[0] and times[-1] <= after


# -- node lifecycle events --------------------------------------------------------------------------
def test_phase_finished_results_and_durations():
    node = Node(
        prep=lambda c, s: "P",
        exec=lambda c, p: p + "E",
        post=lambda c, s, p, e: "act",
        name="n",
    )
    events, _ = observed(node)
    finished = {e.phase: e for e in of(events, PhaseFinished)}
    assert finished["prep"].result == "P"
    assert finished["exec"].result == "PE"
    assert finished["post"].result == "act"
    assert all(e.duration >= 0 for e in finished.values())


def test_node_finished_action_and_next_node():
    a = Node(post=lambda c, s, p, e: "go", name="a")
    b = Node(post=lambda c, s, p, e: "stop", name="b")
    flow = Flow(a, name="f").connect(a, "go", b).connect(b, "stop", None)
    events, _ = observed(flow)
    finished = {e.node: (e.action, e.next_node) for e in of(events, NodeFinished)}
    assert finished == {"a": ("go", "b"), "b": ("stop", None), "f": ("stop", None)}


def test_exec_failed_attempts_are_one_based_and_last_wait_is_zero():
    def failing(ctx, p):
        raise ValueError("nope")

    node = Node(exec=failing, fallback=lambda p, e: "fb", max_retries=3, wait=0.01, name="flaky")
    events, action = observed(node)
    assert action == DEFAULT_ACTION
    failed = of(events, ExecFailed)
    assert [e.attempt for e in failed] == [1, 2, 3]
    assert [e.max_attempts for e in failed] == [3, 3, 3]
    assert [e.wait for e in failed] == [0.01, 0.01, 0]
    assert all(isinstance(e.error, ValueError) for e in failed)
    assert len({id(e.error) for e in failed}) == 3  # each attempt's own error


def test_single_failed_attempt_reports_wait_zero():
    node = Node(exec=lambda c, p: 1 / 0, fallback=lambda p, e: None, wait=5, name="once")
    events, _ = observed(node)
    (failed,) = of(events, ExecFailed)
    assert (failed.attempt, failed.max_attempts, failed.wait) == (1, 1, 0)


def test_fallback_used_after_last_failure():
    errors = []

    def failing(ctx, p):
        errors.append(RuntimeError(f"e{len(errors)}"))
        raise errors[-1]

    node = Node(exec=failing, fallback=lambda p, e: "rescued", max_retries=2, name="n")
    events, _ = observed(node)
    kinds = [e.kind for e in events if e.path == ("n",)]
    assert kinds.index("fallback_used") > max(i for i, k in enumerate(kinds) if k == "exec_failed")
    (used,) = of(events, FallbackUsed)
    assert used.error is errors[-1]
    exec_done = next(e for e in of(events, PhaseFinished) if e.phase == "exec")
    assert exec_done.result == "rescued"


def test_no_fallback_used_event_when_exec_succeeds():
    events, _ = observed(Node(exec=lambda c, p: 1, name="ok"))
    assert of(events, FallbackUsed) == []
    assert of(events, ExecFailed) == []
    assert of(events, NodeFailed) == []


@pytest.mark.parametrize("phase", ["prep", "exec", "post"])
def test_node_failed_names_phase_and_error(phase):
    def boom(*args):
        raise KeyError("broken")

    leaf = Node(**{phase: boom}, name="leaf")
    flow = Flow(leaf, name="f")
    events, error = observed(flow)
    assert isinstance(error, NodeError)
    failed = {e.node: e for e in of(events, NodeFailed)}
    assert failed["leaf"].phase == phase
    assert failed["leaf"].error is error
    assert failed["leaf"].path == ("f", "leaf")
    assert "f" in failed  # the enclosing flow reports its own failure too
    assert of(events, RunFinished)[0].error is error
    assert not any(e.node == "leaf" for e in of(events, NodeFinished))


def test_node_failed_on_cancel():
    ctx, cancel = Context.background().with_cancel()
    node = Node(exec=lambda c, p: cancel(), name="self_cancel")
    events, error = observed(node, ctx=ctx)
    assert isinstance(error, Cancelled)
    (failed,) = of(events, NodeFailed)
    assert isinstance(failed.error, Cancelled)
    assert failed.phase == "post"


# -- StoreChanged -------------------------------------------------------------------------------------
def test_store_changed_for_set_merge_delete_clear_update():
    def post(ctx, shared, p, e):
        shared.set("a", 1)
        shared["b"] = 2
        shared.merge({"c": 3, "d": 4})
        shared.update("a", lambda old: old + 10)
        shared.delete("b")
        shared.delete("never-there")
        shared.clear()

    store = SharedStore({"pre": 0})
    node = Node(post=post, name="writer")
    events, _ = observed(Flow(node, name="root"), store)
    changes = [(e.key, e.value, e.deleted) for e in of(events, StoreChanged)]
    assert changes[:6] == [
        ("a", 1, False),
        ("b", 2, False),
        ("c", 3, False),
        ("d", 4, False),
        ("a", 11, False),
        ("b", None, True),
    ]
    cleared = changes[6:]
    assert sorted(key for key, _, _ in cleared) == ["a", "c", "d", "pre"]
    assert all(deleted for _, _, deleted in cleared)
    assert {e.path for e in of(events, StoreChanged)} == {("root", "writer")}


def test_store_changed_path_of_the_writing_node_in_nested_flows():
    first = Node(post=lambda c, s, p, e: s.set("x", 1), name="first")
    second = Node(post=lambda c, s, p, e: s.set("y", 2), name="second")
    inner = Flow(second, name="inner")
    outer = Flow(first, name="outer").connect(first, DEFAULT_ACTION, inner)
    events, _ = observed(outer)
    paths = {e.key: e.path for e in of(events, StoreChanged)}
    assert paths == {"x": ("outer", "first"), "y": ("outer", "inner", "second")}


def test_store_changed_from_a_foreign_thread_has_the_root_path():
    def exec_(ctx, shared):
        thread = threading.Thread(target=shared.set, args=("from_thread", 1))
        thread.start()
        thread.join()

    node = Node(prep=lambda c, s: s, exec=exec_, name="spawner")
    events, _ = observed(Flow(node, name="root"))
    (change,) = of(events, StoreChanged)
    assert change.key == "from_thread"
    assert change.path == ("root",)


def test_no_store_changed_outside_a_run():
    store = SharedStore()
    events, _ = observed(Node(name="n"), store)
    count = len(events)
    store.set("after", 1)
    store.clear()
    assert len(events) == count
    assert of(events, StoreChanged) == []


def test_writes_before_the_run_are_not_reported():
    store = SharedStore()
    store.set("before", 1)
    events, _ = observed(Node(prep=lambda c, s: s.set("during", 2), name="n"), store)
    assert [e.key for e in of(events, StoreChanged)] == ["during"]


def test_store_changed_in_unobserved_run_needs_no_observer():
    store = SharedStore()
    run(Node(prep=lambda c, s: s.set("k", 1), name="n"), store)
    assert store.get("k") == 1


# -- a blocking observer pauses the run -------------------------------------------------------------
def test_blocking_observer_pauses_the_run():
    reached = threading.Event()
    release = threading.Event()
    exec_ran = threading.Event()

    def observer(event):
        if isinstance(event, PhaseStarted) and event.phase == "exec" and event.node == "work":
            reached.set()
            release.wait(10)

    work = Node(exec=lambda c, p: exec_ran.set(), name="work")
    flow = Flow(work, name="pipe")
    errors = []

    def body():
        try:
            run(flow, ctx=Context.background().with_observer(observer))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    try:
        assert reached.wait(10), "the observer never saw PhaseStarted(exec)"
        time.sleep(0.05)  # a non-blocking engine would run exec now
        assert not exec_ran.is_set()
        assert thread.is_alive()
    finally:
        release.set()
        thread.join(10)
    assert exec_ran.is_set()
    assert errors == []


# -- event objects -------------------------------------------------------------------------------------
BASE_FIELDS = ("run_id", "path", "node", "node_id", "time")
API_FIELDS = {
    Event: (),
    RunStarted: (),
    RunFinished: ("action", "error"),
    NodeStarted: (),
    PhaseStarted: ("phase",),
    PhaseFinished: ("phase", "result", "duration"),
    ExecFailed: ("attempt", "max_attempts", "error", "wait"),
    FallbackUsed: ("error",),
    NodeFinished: ("action", "next_node"),
    NodeFailed: ("phase", "error"),
    BatchStarted: ("total",),
    BatchItemFinished: ("index", "ok", "error", "duration"),
    BatchFinished: ("done", "failed"),
    StoreChanged: ("key", "value", "deleted"),
}


def _build(cls):
    """An event built by keyword with the API's field names, each set to a distinct value."""
    names = BASE_FIELDS + API_FIELDS[cls]
    return cls(**{name: f"<{name}>" for name in names}), names


@pytest.mark.parametrize("cls", [Event, *ALL_EVENTS])
def test_events_are_slotted(cls):
    event, _ = _build(cls)
    assert not hasattr(event, "__dict__")
    with pytest.raises(AttributeError):
        event.unexpected_attribute = 1


def test_all_events_subclass_event():
    assert all(issubclass(cls, Event) for cls in ALL_EVENTS)
    names = {cls.__name__ for cls in ALL_EVENTS}
    expected = {
        "RunStarted",
        "RunFinished",
        "NodeStarted",
        "PhaseStarted",
        "PhaseFinished",
        "ExecFailed",
        "FallbackUsed",
        "NodeFinished",
        "NodeFailed",
        "BatchStarted",
        "BatchItemFinished",
        "BatchFinished",
        "StoreChanged",
    }
    assert expected <= names


def test_every_kind_is_covered_by_the_api_field_table():
    assert set(ALL_EVENTS) <= set(API_FIELDS)


@pytest.mark.parametrize("cls", [Event, *ALL_EVENTS])
def test_event_fields_from_the_api(cls):
    event, names = _build(cls)
    for name in names:
        assert getattr(event, name) == f"<{name}>", (cls.__name__, name)
