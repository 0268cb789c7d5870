"""RunSession and StepGate: pausing, stepping, stopping, on a real worker thread."""

from __future__ import annotations

import threading
import time

import pytest

from flyt_engine import Cancelled, Flow, Node, NodeError
from flyt_engine.events import NodeFailed, NodeFinished, PhaseStarted, RunFinished, RunStarted
from flyt_tui.core.session import RunSession, RunState


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def two_step_flow(log: list[str] | None = None) -> Flow:
    log = log if log is not None else []

    def first(ctx, prep):
        log.append("first")
        return 1

    def second(ctx, prep):
        log.append("second")
        return 2

    a = Node(exec=first, post=lambda ctx, s, p, e: s.set("a", e), name="first")
    b = Node(exec=second, post=lambda ctx, s, p, e: s.set("b", e), name="second")
    return Flow(a, name="pair").connect(a, "default", b)


def paused_where(session: RunSession) -> tuple[str, str]:
    event = session.paused_at
    assert event is not None
    return event.node, getattr(event, "phase", type(event).__name__)


def test_free_run_finishes_and_reports_every_event():
    session = RunSession(two_step_flow(), {"seed": 1})
    session.start()
    assert session.wait(5)
    assert session.state is RunState.DONE
    assert session.action == "default"
    assert session.store.get_all() == {"seed": 1, "a": 1, "b": 2}
    events = session.drain()
    assert type(events[0]) is RunStarted and type(events[-1]) is RunFinished
    assert session.run_id == events[0].run_id
    assert all(e.run_id == session.run_id for e in events)
    assert session.drain() == []  # drained means gone


def test_breakpoint_pauses_before_prep_of_that_node():
    log: list[str] = []
    session = RunSession(two_step_flow(log), {}, breakpoints=["second"])
    session.start()
    wait_until(lambda: session.state is RunState.PAUSED)
    assert paused_where(session) == ("second", "prep")
    assert log == ["first"]  # the breakpoint node has not run
    session.resume()
    assert session.wait(5)
    assert log == ["first", "second"] and session.state is RunState.DONE


def test_step_phase_visits_every_checkpoint_in_order():
    session = RunSession(two_step_flow(), {})
    session.start("step")
    seen = []
    while not session.wait(0):
        if session.state is RunState.PAUSED and session.paused_at is not None:
            event = session.paused_at
            seen.append((event.node, getattr(event, "phase", "edge")))
            session.step_phase()
            wait_until(lambda ev=event: session.paused_at is not ev or session.finished)
        time.sleep(0.002)
    assert seen == [
        ("pair", "prep"),
        ("pair", "exec"),
        ("first", "prep"),
        ("first", "exec"),
        ("first", "post"),
        ("first", "edge"),
        ("second", "prep"),
        ("second", "exec"),
        ("second", "post"),
        ("second", "edge"),
        ("pair", "post"),
        ("pair", "edge"),
    ]


def test_step_node_pauses_before_each_node():
    session = RunSession(two_step_flow(), {})
    session.start("node")
    names = []
    while not session.wait(0):
        if session.state is RunState.PAUSED and session.paused_at is not None:
            event = session.paused_at
            assert isinstance(event, PhaseStarted) and event.phase == "prep"
            names.append(event.node)
            session.step_node()
            wait_until(lambda ev=event: session.paused_at is not ev or session.finished)
        time.sleep(0.002)
    assert names == ["pair", "first", "second"]


def test_breakpoints_can_be_set_while_running():
    release = threading.Event()
    slow = Node(exec=lambda ctx, p: release.wait(5), name="slow")
    after = Node(name="after")
    session = RunSession(Flow(slow, name="f").connect(slow, "default", after), {})
    session.start()
    session.set_breakpoints(["after"])
    release.set()
    wait_until(lambda: session.state is RunState.PAUSED)
    assert paused_where(session) == ("after", "prep")
    session.resume()
    assert session.wait(5) and session.state is RunState.DONE


def test_stop_while_paused_ends_at_once():
    session = RunSession(two_step_flow(), {}, breakpoints=["first"])
    session.start()
    wait_until(lambda: session.state is RunState.PAUSED)
    began = time.monotonic()
    session.stop()
    assert session.wait(2)
    assert time.monotonic() - began < 1.5
    assert session.state is RunState.STOPPED
    assert isinstance(session.error, Cancelled)


def test_stop_during_a_retry_wait_ends_the_wait():
    def always_fails(ctx, prep):
        raise ConnectionError("down")

    node = Node(exec=always_fails, max_retries=3, wait=30.0, name="flaky")
    session = RunSession(Flow(node, name="f"), {})
    session.start()
    wait_until(lambda: any(record[0].kind == "exec_failed" for record in list(session.events)))
    began = time.monotonic()
    session.stop()
    assert session.wait(3)
    assert time.monotonic() - began < 2.0
    assert session.state is RunState.STOPPED


def test_failing_flow_is_reported_not_raised():
    def boom(ctx, prep):
        raise ValueError("bad row")

    session = RunSession(Flow(Node(exec=boom, name="boom"), name="f"), {})
    session.run_blocking()
    assert session.state is RunState.FAILED
    assert isinstance(session.error, NodeError) and session.error.node_name == "boom"
    kinds = [type(e) for e in session.drain()]
    assert NodeFailed in kinds and kinds[-1] is RunFinished


def test_break_on_error_pauses_once_at_the_failing_node():
    def boom(ctx, prep):
        raise ValueError("bad row")

    inner = Flow(Node(exec=boom, name="boom"), name="inner")
    session = RunSession(Flow(inner, name="outer"), {}, break_on_error=True)
    session.start()
    wait_until(lambda: session.state is RunState.PAUSED)
    assert isinstance(session.paused_at, NodeFailed) and session.paused_at.node == "boom"
    session.resume()
    assert session.wait(5) and session.state is RunState.FAILED


def test_stuck_flow_is_abandoned_after_stop():
    stuck = threading.Event()

    def ignores_cancellation(ctx, prep):
        stuck.wait(30)  # never looks at ctx

    session = RunSession(Flow(Node(exec=ignores_cancellation, name="stuck"), name="f"), {})
    worker = threading.Thread(target=session.run_blocking)
    worker.start()
    wait_until(lambda: session.state is RunState.RUNNING and session._thread is not None)
    time.sleep(0.05)
    session.stop()
    worker.join(3)
    assert not worker.is_alive()
    assert session.state is RunState.STOPPED
    stuck.set()


def test_a_session_runs_once():
    session = RunSession(two_step_flow(), {})
    session.start()
    with pytest.raises(RuntimeError):
        session.start()
    session.wait(5)


def test_gate_is_disarmed_for_a_free_run_without_breakpoints():
    session = RunSession(two_step_flow(), {})
    assert session.gate.armed is False
    session.set_breakpoints(["first"])
    assert session.gate.armed is True
    session.set_breakpoints([])
    assert session.gate.armed is False


def test_node_finished_carries_the_next_node_for_the_tree():
    session = RunSession(two_step_flow(), {})
    session.run_blocking()
    edges = [(e.node, e.next_node) for e in session.drain() if type(e) is NodeFinished]
    assert edges == [("first", "second"), ("second", None), ("pair", None)]


def test_a_run_that_outpaces_the_ui_is_held_back():

    count = Node(
        prep=lambda ctx, s: s.get("n", 0),
        exec=lambda ctx, n: n + 1,
        post=lambda ctx, s, p, n: (s.set("n", n), "loop" if n < 20_000 else "done")[1],
        name="count",
    )
    session = RunSession(Flow(count, name="loop").connect(count, "loop", count), {})
    session.gate.watch_backlog(session.events.__len__, 1_000)
    session.gate.throttle(True)
    session.start()
    time.sleep(0.3)
    assert not session.finished
    assert len(session.events) <= 1_000 + 20  # at most one checkpoint's worth past the limit
    session.gate.throttle(False)
    while not session.wait(0.01):
        session.pump()
    assert session.state is RunState.DONE and session.store["n"] == 20_000


def test_pump_throttles_only_when_a_tick_brings_too_much():
    session = RunSession(two_step_flow(), {})
    session.run_blocking()
    session.pump()
    assert session.gate.throttled is False and session.gate.armed is False


def test_the_ui_collects_old_garbage_by_time_not_by_drain(monkeypatch):
    """A run that outpaces the UI makes it drain many times a second; the older
    generations (each collection walks every record that survived into them) are still
    collected at most every MIDDLE_EVERY / FULL_EVERY seconds."""
    import gc

    from flyt_tui.core import session as session_module

    collected: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collected.append(generation) or 0)
    clock = [1000.0]
    garbage = session_module._GarbageCollection(clock=lambda: clock[0])
    garbage.pause()
    try:
        for _ in range(200):  # 200 drains within half a second
            garbage.after_drain()
            clock[0] += 0.0025
        assert collected == [0] * 200
        clock[0] += garbage.MIDDLE_EVERY
        garbage.after_drain()
        assert collected[-1] == 1
        clock[0] += garbage.FULL_EVERY
        garbage.after_drain()
        assert collected[-1] == 2
    finally:
        garbage.resume()
