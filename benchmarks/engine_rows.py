"""Rows ``step``, ``step_floor``, ``step_observed``, ``step_rshift`` and ``step_breakpoints``: one node step.

A self-looping flow whose node reads a counter in prep, increments it in exec, writes it
in post and returns ``"loop"`` until the limit. Four contenders run interleaved: the
engine bare, the engine watched the way the workbench watches it, PocketFlow on a dict,
and the floor (a plain loop calling three functions on a dict).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from flyt_engine import Context, Flow, Node, SharedStore, run

from .harness import Row, clock, interleave, measured, median, unavailable

ROWS = ("step", "step_floor", "step_observed", "step_rshift", "step_breakpoints")


# -- the engine, written the natural way ---------------------------------------------------
class CountNode(Node):
    """Reads ``n``, adds one, writes it back; loops until ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get("n", 0)

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        return prep_result + 1

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str:
        shared.set("n", exec_result)
        return "loop" if exec_result < self.limit else "done"


def loop_flow(limit: int) -> Flow:
    node = CountNode(limit)
    return Flow(node, name="counter").connect(node, "loop", node)


def rshift_flow(limit: int) -> Flow:
    """The same loop built PocketFlow's way: ``node - "loop" >> node``."""
    node = CountNode(limit)
    node - "loop" >> node
    return Flow(node, name="counter")


def engine_rshift(steps: int) -> float:
    return _time_bare(rshift_flow(steps), steps)


def engine_bare(steps: int) -> float:
    return _time_bare(loop_flow(steps), steps)


def _time_bare(flow: Flow, steps: int) -> float:
    """One unobserved run of a counting loop, timed (the store's setup left out)."""
    shared = SharedStore()
    start = clock()
    run(flow, shared)
    elapsed = clock() - start
    assert shared.get("n") == steps
    return elapsed


def engine_observed(steps: int, *, idle_breakpoints: bool = False, timeline: bool = False) -> float:
    """The flow watched as the workbench watches it: a RunSession on this thread, pumped at
    30 Hz by another thread exactly as the app's timer does. ``idle_breakpoints``: with a
    watch on a key never written and a conditional breakpoint on a node that never runs.
    ``timeline``: values kept at each write and every record folded into a ``Timeline``,
    as the workbench does."""
    from flyt_tui.core.breakpoints import Breakpoints
    from flyt_tui.core.session import RunSession, RunState

    points = Breakpoints()
    if idle_breakpoints:
        points.watch("never_written")
        points.add("never_runs if shared['n'] > 1")
    session = RunSession(loop_flow(steps), {}, breakpoints=points, keep_values=timeline)
    stop = threading.Event()
    drained = [0]
    handle = None
    if timeline:
        from flyt_tui.core.timeline import Timeline

        kept = Timeline()
        snapshots = session.snapshots
        assert snapshots is not None

        def handle(records: list[Any]) -> None:
            kept.ingest(records, snapshots.take())

    def drainer() -> None:
        while not stop.wait(1 / 30):
            drained[0] += session.pump(handle)
        drained[0] += session.pump(handle)

    thread = threading.Thread(target=drainer, name="bench-drain", daemon=True)
    thread.start()
    start = clock()
    session.run_blocking()
    elapsed = clock() - start
    stop.set()
    thread.join()
    assert session.state is RunState.DONE, (session.state, session.error)
    assert session.store.get("n") == steps
    assert drained[0] > steps, "the observer saw fewer events than steps"
    return elapsed


# -- PocketFlow, the same logic on a dict ----------------------------------------------------
def pocketflow_bare(steps: int) -> float:
    import pocketflow

    class PFCount(pocketflow.Node):
        def __init__(self, limit: int) -> None:
            super().__init__()
            self.limit = limit

        def prep(self, shared: dict[str, Any]) -> Any:
            return shared.get("n", 0)

        def exec(self, prep_res: Any) -> Any:
            return prep_res + 1

        def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
            shared["n"] = exec_res
            return "loop" if exec_res < self.limit else "done"

    node = PFCount(steps)
    node - "loop" >> node
    flow = pocketflow.Flow(start=node)
    shared: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Flow ends: 'done' not found", once at the end
        start = clock()
        flow.run(shared)
        elapsed = clock() - start
    assert shared["n"] == steps
    return elapsed


# -- the floor ---------------------------------------------------------------------------------
def floor(steps: int) -> float:
    limit = steps

    def prep(shared: dict[str, Any]) -> Any:
        return shared.get("n", 0)

    def exec_(prep_res: Any) -> Any:
        return prep_res + 1

    def post(shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["n"] = exec_res
        return "loop" if exec_res < limit else "done"

    shared: dict[str, Any] = {}
    start = clock()
    while True:
        p = prep(shared)
        e = exec_(p)
        if post(shared, p, e) != "loop":
            break
    elapsed = clock() - start
    assert shared["n"] == steps
    return elapsed


def pocketflow_missing() -> str | None:
    try:
        import pocketflow  # noqa: F401
    except ImportError:
        return "pocketflow is not installed: pip install -e '.[bench]'"
    return None


def run_rows(wanted: set[str], quick: bool) -> list[Row]:
    steps = 10_000 if quick else 100_000
    reps = 3 if quick else 9
    missing_pf = pocketflow_missing()
    contenders = {}
    if wanted & {"step", "step_floor"}:
        contenders["engine"] = lambda: engine_bare(steps)
    if wanted & {"step_observed", "step_breakpoints"}:
        contenders["observed"] = lambda: engine_observed(steps)
    if "step_breakpoints" in wanted:
        contenders["breakpoints"] = lambda: engine_observed(steps, idle_breakpoints=True)
    if wanted & {"step", "step_observed"} and not missing_pf:
        contenders["pocketflow"] = lambda: pocketflow_bare(steps)
    if "step_floor" in wanted:
        contenders["floor"] = lambda: floor(steps)
    if "step_rshift" in wanted and not missing_pf:
        contenders["rshift"] = lambda: engine_rshift(steps)
        contenders.setdefault("pocketflow", lambda: pocketflow_bare(steps))
    samples = interleave(contenders, reps)
    us = {name: [t / steps * 1e6 for t in times] for name, times in samples.items()}
    med = {name: median(values) for name, values in us.items()}
    note = f"{steps:,} steps, median of {reps}"
    rows = []
    if "step" in wanted:
        if missing_pf:
            rows.append(unavailable("step", missing_pf))
        else:
            rows.append(
                measured(
                    "step", med["engine"], med["pocketflow"], note, engine=us["engine"], pocketflow=us["pocketflow"]
                )
            )
    if "step_floor" in wanted:
        rows.append(measured("step_floor", med["engine"], med["floor"], note, engine=us["engine"], floor=us["floor"]))
    if "step_observed" in wanted:
        if missing_pf:
            rows.append(unavailable("step_observed", missing_pf))
        else:
            how = "RunSession.pump() at 30 Hz, as the app's timer"
            rows.append(
                measured(
                    "step_observed",
                    med["observed"],
                    med["pocketflow"],
                    f"{note}; {how}",
                    observed=us["observed"],
                    pocketflow=us["pocketflow"],
                )
            )
    if "step_rshift" in wanted:
        if missing_pf:
            rows.append(unavailable("step_rshift", missing_pf))
        else:
            rows.append(
                measured(
                    "step_rshift",
                    med["rshift"],
                    med["pocketflow"],
                    f'{note}; the loop built with `node - "loop" >> node`',
                    rshift=us["rshift"],
                    pocketflow=us["pocketflow"],
                )
            )
    if "step_breakpoints" in wanted:
        versus = ""
        if not missing_pf and "pocketflow" in med:
            versus = (
                f"; {med['breakpoints'] / med['pocketflow']:.2f}× PocketFlow's bare step (step_observed's bar: ≤1.2×)"
            )
        rows.append(
            measured(
                "step_breakpoints",
                med["breakpoints"],
                med["observed"],
                f"{note}; a watch on a key never written, a breakpoint 'never_runs if …'{versus}",
                breakpoints=us["breakpoints"],
                observed=us["observed"],
            )
        )
    return rows
