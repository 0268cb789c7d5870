"""The rules only async phases have (API.md "Async phases"); the rules they share with sync
phases run in every other engine test under ``each_style``."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from flyt_engine import (
    BatchFlow,
    BatchNode,
    Cancelled,
    Context,
    Flow,
    FlytError,
    Node,
    NodeError,
    SharedStore,
    StartAt,
    arun,
    run,
)
from flyt_engine.events import StoreChanged


async def _one(ctx, prep_result):
    await asyncio.sleep(0)
    return 1


def _cancel_after(cancel, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, cancel)
    timer.start()
    return timer


# -- run and arun ---------------------------------------------------------------------------
def test_run_drives_async_phases_on_a_loop_of_its_own():
    seen = {}

    async def post(ctx, shared, p, e):
        seen["loop"] = asyncio.get_running_loop()
        shared.set("got", e)

    shared = SharedStore()
    assert run(Node(exec=_one, post=post), shared) == "default"
    assert shared.get("got") == 1
    assert seen["loop"].is_closed()  # the run's loop ended with the run


def test_arun_runs_on_the_callers_loop():
    async def main():
        loop = asyncio.get_running_loop()
        seen = []

        async def exec_(ctx, p):
            seen.append(asyncio.get_running_loop() is loop)
            return "x"

        shared = SharedStore()
        action = await arun(Node(exec=exec_, post=lambda c, s, p, e: s.set("x", e)), shared)
        return action, seen, shared.get("x")

    assert asyncio.run(main()) == ("default", [True], "x")


def test_run_on_a_running_loop_says_to_await_arun():
    async def main():
        with pytest.raises(TypeError, match="await arun"):
            run(Node(exec=_one, name="talker"))

    asyncio.run(main())


def test_a_sync_graph_runs_with_run_on_a_running_loop():
    async def main():
        return run(Node(exec=lambda c, p: 1))

    assert asyncio.run(main()) == "default"


def test_arun_checks_its_arguments():
    with pytest.raises(TypeError, match="Node"):
        asyncio.run(arun("node"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SharedStore"):
        asyncio.run(arun(Node(), {}))  # type: ignore[arg-type]


def test_start_at_runs_an_async_graph_part_way():
    shared = SharedStore()
    node = Node(exec=_one, post=lambda ctx, s, p, e: s.set("got", e), name="a")
    assert run(node, shared, start_at=("a",)) == "default"
    assert shared["got"] == 1
    with pytest.raises(FlytError, match="starts with 'b'"):
        run(node, start_at=("b",))


# -- a plain def that returns an awaitable --------------------------------------------------
@pytest.mark.parametrize("phase", ["prep", "exec", "post"])
def test_a_plain_phase_returning_a_coroutine_is_a_type_error_naming_it(phase):
    async def later():
        return 1

    async def awaited_prep(ctx, shared):
        return None

    phases = {"prep": awaited_prep, "exec": _one}  # async phases elsewhere put the node on a loop
    phases[phase] = {  # type: ignore[assignment]
        "prep": lambda c, s: later(),
        "exec": lambda c, p: later(),
        "post": lambda c, s, p, e: later(),
    }[phase]
    node = Node(name="talker", **phases)
    with pytest.raises(TypeError, match=rf"'talker': {phase} is a plain def but returned coroutine"):
        run(node)


def test_an_observed_sync_run_checks_prep_and_exec_results_too():
    async def later():
        return 1

    ctx = Context().with_recorder([].append)
    with pytest.raises(TypeError, match="exec is a plain def"):
        run(Node(exec=lambda c, p: later(), name="n"), ctx=ctx)
    with pytest.raises(TypeError, match="post is a plain def"):
        run(Node(post=lambda c, s, p, e: later(), name="n"))  # post: in every run


# -- cancellation ---------------------------------------------------------------------------
def test_cancelling_reaches_the_awaiting_phase_at_once():
    ctx, cancel = Context.background().with_cancel()
    seen = []

    async def exec_(ctx, p):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled at the await")
            raise

    _cancel_after(cancel, 0.1)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        run(Node(exec=exec_), ctx=ctx)
    assert time.monotonic() - started < 5
    assert seen == ["cancelled at the await"]


def test_asleep_ends_with_cancelled_when_the_context_is():
    ctx, cancel = Context.background().with_cancel()
    raised = []

    async def exec_(ctx, p):
        try:
            await ctx.asleep(60)
        except Cancelled as exc:
            raised.append(exc)
            raise

    _cancel_after(cancel, 0.1)
    with pytest.raises(Cancelled):
        run(Node(exec=exec_), ctx=ctx)
    assert len(raised) == 1


def test_asleep_of_a_background_context_just_sleeps():
    async def main():
        started = time.monotonic()
        await Context.background().asleep(0.05)
        await Context.background().asleep(0)
        await Context.background().asleep(-1)
        return time.monotonic() - started

    assert 0.04 < asyncio.run(main()) < 5


def test_a_phase_that_never_awaits_is_stopped_once_it_yields():
    ctx, cancel = Context.background().with_cancel()

    async def exec_(ctx, p):
        time.sleep(0.3)  # blocks the loop
        await asyncio.sleep(60)

    _cancel_after(cancel, 0.05)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        run(Node(exec=exec_), ctx=ctx)
    assert 0.25 < time.monotonic() - started < 5


def test_a_deadline_cancels_an_awaiting_phase():
    ctx, _ = Context.background().with_timeout(0.1)

    async def exec_(ctx, p):
        await asyncio.sleep(60)

    with pytest.raises(Cancelled):
        run(Node(exec=exec_), ctx=ctx)


# -- errors ---------------------------------------------------------------------------------
def test_an_exception_inside_a_task_group_is_a_failed_attempt():
    attempts = []

    async def exec_(ctx, p):
        attempts.append(1)

        async def boom():
            raise ValueError("inside the group")

        async with asyncio.TaskGroup() as group:
            group.create_task(boom())
            group.create_task(asyncio.sleep(0.01))

    with pytest.raises(NodeError) as info:
        run(Node(exec=exec_, max_retries=2, name="grouped"))
    assert len(attempts) == 2
    assert isinstance(info.value.__cause__, ExceptionGroup)


def test_an_async_fallback_is_awaited():
    async def failing(ctx, p):
        raise ValueError("no")

    async def fallback(prep_result, error):
        await asyncio.sleep(0)
        return f"fell back after {type(error).__name__}"

    shared = SharedStore()
    run(Node(exec=failing, fallback=fallback, post=lambda c, s, p, e: s.set("r", e)), shared)
    assert shared.get("r") == "fell back after ValueError"


def test_retries_wait_without_blocking_the_loop():
    ticks = []

    async def ticker():
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main():
        task = asyncio.get_running_loop().create_task(ticker())
        calls = []

        async def flaky(ctx, p):
            calls.append(1)
            if len(calls) < 3:
                raise ValueError("again")
            return "ok"

        await arun(Node(exec=flaky, max_retries=3, wait=0.1))
        task.cancel()
        return calls

    assert len(asyncio.run(main())) == 3
    assert len(ticks) >= 10  # the loop went on during the 0.2 s of waits


# -- offload ----------------------------------------------------------------------------------
def test_offload_runs_plain_phases_in_a_worker_thread():
    threads = []

    def blocking(ctx, p):
        threads.append(threading.current_thread())
        time.sleep(0.05)
        return 1

    async def main():
        return await arun(Node(exec=blocking, offload=True)), await arun(Node(exec=blocking))

    asyncio.run(main())
    assert threads[0] is not threading.main_thread()
    assert threads[1] is threading.main_thread()  # inline by default


def test_offload_as_a_class_attribute():
    class Blocking(Node):
        offload = True

        def exec(self, ctx, p):
            return threading.current_thread() is threading.main_thread()

        async def post(self, ctx, shared, p, e):
            shared.set("on_main", e)

    shared = SharedStore()
    run(Blocking(), shared)
    assert shared.get("on_main") is False


# -- async batches ------------------------------------------------------------------------------
class InFlight:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.running: set[int] = set()

    async def process(self, ctx, item):
        self.now += 1
        self.running.add(item)
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.01)
            if item == "boom":
                raise ValueError("boom")
            return item
        finally:
            self.now -= 1
            self.running.discard(item)


def test_an_async_batch_runs_items_at_most_concurrency_at_once_in_order():
    tracker = InFlight()
    shared = SharedStore({"items": list(range(40))})
    run(BatchNode(tracker.process, concurrent=True, concurrency=5), shared)
    assert shared.get("results") == list(range(40))
    assert tracker.peak == 5


def test_concurrency_zero_is_unbounded():
    tracker = InFlight()
    shared = SharedStore({"items": list(range(200))})
    started = time.monotonic()
    run(BatchNode(tracker.process, concurrent=True, concurrency=0), shared)
    assert tracker.peak == 200
    assert time.monotonic() - started < 2


def test_a_sequential_async_batch_runs_one_at_a_time():
    tracker = InFlight()
    shared = SharedStore({"items": list(range(5))})
    run(BatchNode(tracker.process), shared)
    assert tracker.peak == 1 and shared.get("results") == list(range(5))


def test_fail_fast_leaves_no_task_running():
    tracker = InFlight()

    async def main():
        shared = SharedStore({"items": ["boom", *range(20)]})
        with pytest.raises(Exception, match="fail_fast"):
            await arun(BatchNode(tracker.process, concurrent=True, concurrency=0, fail_fast=True), shared)
        return len(asyncio.all_tasks())

    assert asyncio.run(main()) == 1  # only main itself
    assert tracker.running == set()


def test_cancellation_leaves_no_task_running_and_keeps_finished_results():
    tracker = InFlight()
    ctx, cancel = Context.background().with_cancel()

    async def slow(ctx, item):
        if item < 3:
            return item
        await tracker.process(ctx, item)
        await asyncio.sleep(60)

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, cancel)
        shared = SharedStore({"items": list(range(10))})
        with pytest.raises(Cancelled) as info:
            await arun(BatchNode(slow, concurrent=True, concurrency=0), shared, ctx=ctx)
        return len(asyncio.all_tasks()), shared.get("results"), info.value

    tasks, results, error = asyncio.run(main())
    assert tasks == 1
    assert results[:3] == [0, 1, 2] and results[3:] == [None] * 7
    assert all(isinstance(e, Cancelled) for e in error.errors[3:])


def test_async_items_are_retried_and_fall_back():
    attempts: dict[int, int] = {}

    async def flaky(ctx, item):
        attempts[item] = attempts.get(item, 0) + 1
        if item == 1 or (item == 2 and attempts[item] < 2):
            raise ValueError(f"item {item}")
        return item

    async def fallback(item, error):
        return -item

    shared = SharedStore({"items": [0, 1, 2]})
    run(BatchNode(flaky, concurrent=True, max_retries=2, wait=0.01, fallback=fallback), shared)
    assert shared.get("results") == [0, -1, 2]
    assert attempts == {0: 1, 1: 2, 2: 2}


def test_an_async_post_function_of_a_batch_is_awaited():
    async def after(ctx, shared, items, results):
        await asyncio.sleep(0)
        return "summed" if sum(results) == 6 else "wrong"

    shared = SharedStore({"items": [1, 2, 3]})
    assert run(BatchNode(_identity, post=after), shared) == "summed"


async def _identity(ctx, item):
    return item


def test_an_async_process_on_an_executor_is_refused_when_built():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool, pytest.raises(TypeError, match="executor"):
        BatchNode(_identity, concurrent=True, executor=pool, name="remote")


def test_an_async_batch_flow_runs_iterations_as_tasks_each_on_its_own_store():
    peak = [0, 0]

    def factory():
        async def exec_(ctx, n):
            peak[0] += 1
            peak[1] = max(peak[1], peak[0])
            await asyncio.sleep(0.02)
            peak[0] -= 1
            return n * 10

        return Node(prep=lambda c, s: s.get("n"), exec=exec_, post=lambda c, s, p, e: s.set("out", e))

    async def inputs(ctx, shared):
        return [{"n": n} for n in range(6)]

    parent = SharedStore()
    run(BatchFlow(factory, inputs, concurrent=True, concurrency=3), parent)
    assert [r["out"] for r in parent.get("batch_results")] == [0, 10, 20, 30, 40, 50]
    assert peak[1] == 3
    assert "out" not in parent


def test_a_sync_batch_flow_runs_async_iteration_flows():
    def factory():
        return Node(exec=_one, post=lambda c, s, p, e: s.set("out", e))

    parent = SharedStore()
    run(BatchFlow(factory, lambda c, s: [{"n": 1}, {"n": 2}]), parent)
    assert [r["out"] for r in parent.get("batch_results")] == [1, 1]


# -- store attribution per task -------------------------------------------------------------------
def test_concurrent_iterations_attribute_their_writes_to_their_own_nodes():
    def factory():
        async def first(ctx, shared):
            await asyncio.sleep(0.01 * shared.get("n"))
            shared.set("a", shared.get("n"))

        async def second(ctx, shared):
            await asyncio.sleep(0.01 * (3 - shared.get("n")))
            shared.set("b", shared.get("n"))

        a, b = Node(prep=first, name="A"), Node(prep=second, name="B")
        a >> b
        return Flow(a, name="pair")

    records: list = []
    ctx = Context().with_recorder(records.append)
    run(
        BatchFlow(factory, lambda c, s: [{"n": n} for n in range(3)], concurrent=True, name="fan"),
        SharedStore(),
        ctx=ctx,
    )
    writes = [(r[1][2], r[3], r[1][1]) for r in records if r[0] is StoreChanged and r[3] in ("a", "b")]
    assert len(writes) == 6
    for node, key, path in writes:
        assert node == key.upper()
        assert any(part.startswith("#") for part in path)


def test_writes_of_concurrent_async_items_are_the_batchs():
    async def process(ctx, item):
        await asyncio.sleep(0.001 * (5 - item))
        return item

    def writer(ctx, shared):
        shared.set("before", 1)
        return None

    records: list = []
    ctx = Context().with_recorder(records.append)
    first = Node(prep=writer, name="first")
    batch = BatchNode(process, concurrent=True, name="batch")
    first >> batch
    run(Flow(first, name="f"), SharedStore({"items": list(range(5))}), ctx=ctx)
    writers = {r[3]: r[1][2] for r in records if r[0] is StoreChanged}
    assert writers == {"before": "first", "results": "batch"}


# -- gates --------------------------------------------------------------------------------------
def test_a_gate_that_blocks_pauses_the_whole_async_run():
    from flyt_engine.events import PhaseStarted

    class Gate:
        armed = True
        nodes = None
        armed_writes = False
        keys = None

        def __init__(self) -> None:
            self.release = threading.Event()
            self.paused = threading.Event()
            self.seen: list[str] = []

        def __call__(self, record):
            if record[0] is PhaseStarted and record[3] == "exec" and not self.seen:
                self.seen.append(record[1][2])
                self.paused.set()
                self.release.wait(5)

    gate = Gate()
    ticks: list[float] = []

    async def exec_(ctx, p):
        return 1

    async def main():
        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.get_running_loop().create_task(ticker())
        await asyncio.sleep(0.02)
        ctx = Context().with_recorder([].append).with_gate(gate)
        await arun(Node(exec=exec_, name="held"), ctx=ctx)
        await asyncio.sleep(0.03)
        task.cancel()

    threading.Timer(0.2, gate.release.set).start()
    asyncio.run(main())
    assert gate.seen == ["held"]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) >= 0.15  # the loop itself stood still while the gate held the run


def test_a_failed_items_retry_starts_while_the_other_items_still_run():
    """The unbounded unobserved batch runs each item's coroutine as its task: a failure's
    retries start from its callback at once, not after the batch (the others wait for it)."""
    retried = asyncio.Event()
    attempts: dict[int, int] = {}

    async def item(ctx, n):
        attempts[n] = attempts.get(n, 0) + 1
        if n == 0:
            if attempts[n] == 1:
                raise ValueError("first try")
            retried.set()
            return n
        await asyncio.wait_for(retried.wait(), 5)  # times out if the retry waited for us
        return n

    shared = SharedStore({"items": list(range(5))})
    run(BatchNode(item, concurrent=True, max_retries=2), shared)
    assert shared.get("results") == [0, 1, 2, 3, 4]
    assert attempts == {0: 2, 1: 1, 2: 1, 3: 1, 4: 1}


def test_a_base_exception_from_an_item_leaves_the_batch_with_no_task_left():
    class Escape(BaseException):
        pass

    async def item(ctx, n):
        if n == 2:
            raise Escape()
        await asyncio.sleep(0.01 * n)
        return n

    async def main():
        with pytest.raises(Escape):
            await arun(BatchNode(item, concurrent=True), SharedStore({"items": list(range(6))}))
        return len(asyncio.all_tasks())

    assert asyncio.run(main()) == 1


def test_an_item_out_of_attempts_fails_the_unbounded_batch_and_leaves_no_task():
    tracker = InFlight()

    async def main():
        shared = SharedStore({"items": ["boom", *range(10)]})
        with pytest.raises(Exception, match="boom"):
            await arun(BatchNode(tracker.process, concurrent=True, concurrency=0), shared)
        return len(asyncio.all_tasks())

    assert asyncio.run(main()) == 1
    assert tracker.running == set()


def test_arun_starts_part_way_on_the_callers_loop_with_the_results_given():
    seen: list[str] = []

    class Step(Node):
        async def prep(self, ctx, shared):
            seen.append(f"{self.name}.prep")
            return self.name

        async def exec(self, ctx, prep_result):
            await asyncio.sleep(0)
            seen.append(f"{self.name}.exec({prep_result})")
            return prep_result.upper()

        async def post(self, ctx, shared, prep_result, exec_result):
            shared[self.name] = exec_result

    first, second = Step(name="first"), Step(name="second")
    first >> second

    async def main():
        shared = SharedStore()
        start = StartAt(("f", "first"), phase="exec", prep_result="given")
        action = await arun(Flow(first, name="f"), shared, start_at=start)
        return action, shared.get_all()

    action, store = asyncio.run(main())
    assert action == "default"
    assert seen == ["first.exec(given)", "second.prep", "second.exec(second)"]
    assert store == {"first": "GIVEN", "second": "SECOND"}


def test_cancelling_a_run_started_part_way_cancels_the_awaiting_phase():
    ctx, cancel = Context.background().with_cancel()

    class Slow(Node):
        async def exec(self, ctx, prep_result):
            await asyncio.sleep(60)

    async def main():
        asyncio.get_running_loop().call_later(0.05, cancel)
        with pytest.raises(Cancelled):
            await arun(Flow(Slow(name="slow"), name="f"), ctx=ctx, start_at=("f", "slow"))
        return len(asyncio.all_tasks())

    assert asyncio.run(main()) == 1
