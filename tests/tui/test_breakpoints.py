"""Breakpoints that find the bug (issue 9): conditions, store keys, errors, run to cursor,
step out — one decision (core/breakpoints.py) driving real runs in a RunSession."""

from __future__ import annotations

import time

import pytest

from flyt_engine import BatchFlow, BatchNode, Flow, Node
from flyt_engine.events import ExecFailed, NodeFailed, NodeFinished, PhaseStarted, StoreChanged
from flyt_tui.core.breakpoints import BreakOn, BreakpointError, Breakpoints, NodeBreakpoint, Why
from flyt_tui.core.session import RunSession, RunState


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def paused(session: RunSession):
    wait_until(lambda: session.paused_at is not None or session.finished)
    return session.paused_at, session.pause


def counting_loop(limit: int = 5) -> Flow:
    """count → (again) count ... → report; count writes n, report writes total."""

    def count_post(ctx, shared, p, e):
        shared["n"] = shared.get("n", 0) + 1
        return "again" if shared["n"] < limit else "done"

    count = Node(post=count_post, name="count")
    report = Node(prep=lambda ctx, s: s["n"], post=lambda ctx, s, p, e: s.set("total", p), name="report")
    return Flow(count, name="loop").connect(count, "again", count).connect(count, "done", report)


def start(flow, points: Breakpoints, store=None) -> RunSession:
    session = RunSession(flow, store or {}, breakpoints=points)
    session.start("run")
    return session


# -- parsing --------------------------------------------------------------------------------------
def test_breakpoint_text_forms():
    assert NodeBreakpoint.parse("fetch").key == ("fetch", "prep")
    bp = NodeBreakpoint.parse("fetch:exec if prep > 2")
    assert bp.key == ("fetch", "exec") and bp.condition == "prep > 2" and bp.text == "fetch:exec if prep > 2"
    with pytest.raises(BreakpointError, match="not Python"):
        NodeBreakpoint.parse("fetch if shared[")
    with pytest.raises(BreakpointError, match="unknown phase"):
        NodeBreakpoint.parse("fetch:later")


def test_nothing_armed_costs_nothing():
    points = Breakpoints()
    assert not points.armed
    points.watch("k")
    assert points.armed
    points.unwatch("k")
    assert not points.armed


# -- conditions ------------------------------------------------------------------------------------
def test_a_conditional_breakpoint_pauses_only_when_it_holds_and_counts_hits():
    points = Breakpoints()
    bp = points.add("count if shared.get('n', 0) == 3")
    session = start(counting_loop(), points)
    event, pause = paused(session)
    assert isinstance(event, PhaseStarted) and event.node == "count"
    assert session.store["n"] == 3 and pause.why is Why.BREAKPOINT and bp.hits == 1
    session.resume()
    session.wait(5)
    assert session.state is RunState.DONE and bp.hits == 1


def test_a_condition_over_prep_at_the_exec_phase():
    points = Breakpoints()
    points.add("report:exec if prep == 5")
    session = start(counting_loop(), points)
    event, pause = paused(session)
    assert event.node == "report" and event.phase == "exec" and pause.why is Why.BREAKPOINT
    session.stop()


def test_a_condition_that_raises_pauses_and_says_why():
    points = Breakpoints()
    points.add("count if shared['missing'] > 1")
    session = start(counting_loop(), points)
    _, pause = paused(session)
    assert pause.why is Why.CONDITION_FAILED
    assert "KeyError" in pause.words and "missing" in pause.detail
    session.resume()  # it pauses again at the next visit, and never ends the run
    wait_until(lambda: session.pause is not None or session.finished)
    session.stop()
    session.wait(5)
    assert session.finished


# -- data breakpoints ------------------------------------------------------------------------------
def test_a_watch_pauses_at_each_write_with_writer_old_and_new():
    points = Breakpoints()
    points.watch("n")
    session = start(counting_loop(3), points)
    event, pause = paused(session)
    assert isinstance(event, StoreChanged) and event.key == "n" and event.value == 1
    assert pause.why is Why.WATCH and pause.words == "n written by count" and not pause.existed
    session.resume()
    event, pause = paused(session)
    assert event.value == 2 and pause.old == 1 and pause.existed
    assert session.store["n"] == 2  # paused inside the writing phase, after the write
    session.stop()


def test_a_watch_sees_writes_in_batchflow_iterations_and_names_the_iteration():
    points = Breakpoints()
    points.watch("greeting")

    def make():
        greet = Node(post=lambda ctx, s, p, e: s.set("greeting", f"hi {s['user']}"), name="greet")
        return Flow(greet, name="one")

    flow = Flow(BatchFlow(make, lambda ctx, s: [{"user": "ada"}, {"user": "bob"}], name="each"), name="root")
    session = start(flow, points)
    event, pause = paused(session)
    assert event.path == ("root", "each", "#0", "greet") and event.value == "hi ada"
    assert pause.words == "greeting written by each/#0/greet"
    session.stop()


def test_a_watch_on_a_key_that_is_never_written_never_pauses():
    points = Breakpoints()
    points.watch("nobody_writes_this")
    session = start(counting_loop(), points)
    session.wait(5)
    assert session.state is RunState.DONE and points.watches["nobody_writes_this"].hits == 0


# -- errors -----------------------------------------------------------------------------------------
def flaky_flow(failures: int, attempts: int = 3, fallback: bool = True) -> Flow:
    calls = []

    def exec_(ctx, p):
        calls.append(1)
        if len(calls) <= failures:
            raise RuntimeError(f"flaky {len(calls)}")
        return "ok"

    kwargs = {"fallback": lambda p, e: "fb"} if fallback else {}
    node = Node(exec=exec_, max_retries=attempts, name="flaky", **kwargs)
    return Flow(node, name="f")


def test_break_on_error_pauses_before_the_failure_propagates():
    points = Breakpoints()
    points.set_break_on({BreakOn.ERROR})
    session = start(flaky_flow(9, attempts=2, fallback=False), points)
    event, pause = paused(session)
    assert isinstance(event, NodeFailed) and event.node == "flaky" and pause.why is Why.ERROR
    assert "flaky 2" in pause.detail
    assert session.state is RunState.PAUSED  # the failure has not ended the run yet
    session.resume()
    session.wait(5)
    assert session.state is RunState.FAILED


def test_break_on_retry_and_fallback():
    points = Breakpoints()
    points.set_break_on({"retry", "fallback"})
    session = start(flaky_flow(9, attempts=2), points)
    event, pause = paused(session)
    assert isinstance(event, ExecFailed) and event.attempt == 1 and pause.why is Why.RETRY
    session.resume()
    event, pause = paused(session)
    assert event.attempt == 2 and pause.why is Why.FALLBACK
    session.resume()
    session.wait(5)
    assert session.state is RunState.DONE


def test_break_on_error_with_no_error_runs_to_the_end():
    points = Breakpoints()
    points.set_break_on({"error"})
    session = start(counting_loop(), points)
    session.wait(5)
    assert session.state is RunState.DONE


def test_a_failing_batch_item_is_a_retry_pause_with_its_iteration_path():
    points = Breakpoints()
    points.set_break_on({"retry"})

    def process(ctx, item):
        if item == 2:
            raise ValueError("bad item")
        return item

    flow = Flow(BatchNode(process, max_retries=2, name="items"), name="b")
    session = start(flow, points, {"items": [1, 2, 3]})
    event, pause = paused(session)
    assert event.path == ("b", "items", "#1") and pause.why is Why.RETRY
    session.stop()


# -- run to cursor, step out -----------------------------------------------------------------------
def test_run_to_cursor_from_idle_and_while_paused():
    points = Breakpoints()
    session = RunSession(counting_loop(), {}, breakpoints=points)
    session.start("cursor", target="report")
    event, pause = paused(session)
    assert event.node == "report" and event.phase == "prep" and pause.why is Why.CURSOR
    session.stop()


def test_step_out_runs_until_the_enclosing_flow_finished():
    inner_a = Node(name="inner_a")
    inner_b = Node(name="inner_b")
    inner = Flow(inner_a, name="inner").connect(inner_a, "default", inner_b)
    after = Node(name="after")
    outer = Flow(inner, name="outer").connect(inner, "default", after)
    points = Breakpoints()
    points.add("inner_a")
    session = start(outer, points)
    event, _ = paused(session)
    assert event.node == "inner_a"
    session.step_out()
    event, pause = paused(session)
    assert isinstance(event, NodeFinished) and event.node == "inner" and pause.why is Why.OUT
    session.resume()
    session.wait(5)
    assert session.state is RunState.DONE


def test_orphaned_breakpoints_are_kept_and_revive():
    points = Breakpoints()
    points.add("gone")
    points.add("kept if shared")
    orphans = points.keep_only({"kept"})
    assert [bp.node for bp in orphans] == ["gone"]
    assert "gone" not in points.names and len(points.listing()) == 2
    points.keep_only({"kept", "gone"})
    assert "gone" in points.names


def test_the_gate_is_called_only_where_a_breakpoint_could_match():
    """A watch arms the store writes of its key only; a node breakpoint the checkpoints of
    its node only; break-on and stepping arm every checkpoint (the step_breakpoints row)."""
    from flyt_tui.core.breakpoints import BreakOn
    from flyt_tui.core.session import StepGate

    points = Breakpoints()
    gate = StepGate(points)
    assert (gate.armed, gate.armed_writes) == (False, False)
    points.watch("total")
    assert (gate.armed, gate.armed_writes, gate.keys) == (False, True, frozenset({"total"}))
    points.add("coupon if shared['x'] > 1")
    assert (gate.armed, gate.nodes) == (True, frozenset({"coupon"}))
    points.set_break_on({BreakOn.ERROR})
    assert gate.armed and gate.nodes is None
    points.set_break_on(set())
    points.go("phase")
    assert gate.armed and gate.nodes is None
