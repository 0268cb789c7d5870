"""run(): defaults, cancellation checkpoints, phase errors, retries, waits and fallback (API.md "run")."""

import inspect
import itertools
import threading
import time

import pytest
from async_style import NESTED, skip_when_async

from flyt_engine import (
    BatchError,
    BindError,
    Cancelled,
    Context,
    DeadlineExceeded,
    FlytError,
    Node,
    NodeError,
    SharedStore,
    run,
)
from flyt_engine.events import ExecFailed

# Every test here runs unobserved, with a recorder, with an observer and with a disarmed gate.
pytestmark = pytest.mark.usefixtures("each_driver", "each_style")


class Boom(Exception):
    """A failure raised on purpose by test nodes."""


class Recorder(Node):
    """Records every phase call; exec fails ``fail_times`` times, then returns "ok"."""

    def __init__(self, fail_times=0, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[str] = []
        self.fail_times = fail_times
        self.exec_calls = 0
        self.fallback_args = []
        self.post_args = None

    def prep(self, ctx, shared):
        self.calls.append("prep")
        return "P"

    def exec(self, ctx, prep_result):
        self.calls.append("exec")
        self.exec_calls += 1
        if self.exec_calls <= self.fail_times:
            raise Boom(f"attempt {self.exec_calls}")
        return "ok"

    def exec_fallback(self, prep_result, error):
        self.calls.append("fallback")
        self.fallback_args.append((prep_result, error))
        return "FB"

    def post(self, ctx, shared, prep_result, exec_result):
        self.calls.append("post")
        self.post_args = (prep_result, exec_result)
        return "done"


# -- defaults ---------------------------------------------------------------------------------
def test_run_defaults_to_new_store_and_background_context():
    seen = {}

    def prep(ctx, shared):
        seen["shared"] = shared
        seen["ctx"] = ctx
        shared.set("k", 1)

    run(Node(prep=prep))
    first = seen["shared"]
    assert isinstance(first, SharedStore)
    assert isinstance(seen["ctx"], Context)
    assert not seen["ctx"].cancelled
    run(Node(prep=prep))
    assert seen["shared"] is not first  # a new store per run


def test_run_uses_the_given_store_object():
    store = SharedStore()
    run(Node(prep=lambda ctx, shared: shared.set("k", id(shared))), store)
    assert store.get("k") == id(store)


# -- cancellation checkpoints -----------------------------------------------------------------
def test_cancelled_before_prep():
    ctx, cancel = Context.background().with_cancel()
    cancel()
    node = Recorder()
    with pytest.raises(Cancelled) as info:
        run(node, ctx=ctx)
    assert type(info.value) is Cancelled
    assert node.calls == []


def test_deadline_before_prep_raises_deadline_exceeded():
    ctx, _ = Context.background().with_timeout(0)
    node = Recorder()
    with pytest.raises(DeadlineExceeded):
        run(node, ctx=ctx)
    assert node.calls == []


def test_cancel_checked_before_first_exec_attempt():
    ctx, cancel = Context.background().with_cancel()
    node = Recorder()
    node.prep = lambda c, shared: cancel()
    with pytest.raises(Cancelled):
        run(node, ctx=ctx)
    assert node.calls == []  # exec, fallback and post never ran


def test_cancel_checked_before_each_retry_and_no_fallback():
    ctx, cancel = Context.background().with_cancel()
    node = Recorder(fail_times=5, max_retries=5)

    def exec_(c, prep_result):
        node.exec_calls += 1
        cancel()
        raise Boom("fails after cancelling")

    node.exec = exec_
    with pytest.raises(Cancelled) as info:
        run(node, ctx=ctx)
    assert not isinstance(info.value, NodeError)
    assert node.exec_calls == 1
    assert node.fallback_args == []
    assert "post" not in node.calls


def test_cancel_on_last_attempt_does_not_fall_back():
    ctx, cancel = Context.background().with_cancel()
    node = Recorder(max_retries=1)

    def exec_(c, prep_result):
        cancel()
        raise Boom("last")

    node.exec = exec_
    with pytest.raises(Cancelled):
        run(node, ctx=ctx)
    assert node.fallback_args == []


def test_cancel_during_wait_cuts_it_short():
    ctx, cancel = Context.background().with_cancel()
    node = Recorder(fail_times=5, max_retries=3, wait=10)
    timer = threading.Timer(0.05, cancel)
    timer.start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        run(node, ctx=ctx)
    assert time.monotonic() - start < 5
    assert node.exec_calls == 1
    assert node.fallback_args == []
    timer.join()


def test_deadline_during_wait_raises_deadline_exceeded():
    ctx, cancel = Context.background().with_timeout(0.05)
    node = Recorder(fail_times=5, max_retries=3, wait=10)
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run(node, ctx=ctx)
    assert time.monotonic() - start < 5
    cancel()


def test_cancel_checked_before_post():
    ctx, cancel = Context.background().with_cancel()
    node = Recorder()

    def exec_(c, prep_result):
        cancel()
        return "ok"

    node.exec = exec_
    with pytest.raises(Cancelled):
        run(node, ctx=ctx)
    assert "post" not in node.calls


def test_cancelled_raised_by_a_phase_passes_unwrapped():
    for phase in ("prep", "exec", "post"):

        def raiser(*args):
            raise Cancelled("from a phase")

        node = Node(**{phase: raiser})
        with pytest.raises(Cancelled) as info:
            run(node)
        assert type(info.value) is Cancelled, phase


# -- prep / post errors -------------------------------------------------------------------------
def test_prep_error_is_node_error_and_skips_exec_and_post():
    node = Recorder()
    error = Boom("prep broke")

    def prep(ctx, shared):
        raise error

    node.prep = prep
    with pytest.raises(NodeError) as info:
        run(node)
    err = info.value
    assert err.phase == "prep"
    assert err.__cause__ is error
    assert err.attempts == 0
    assert node.calls == []


def test_post_error_is_node_error_in_post():
    node = Recorder()
    error = Boom("post broke")

    def post(ctx, shared, p, e):
        raise error

    node.post = post
    with pytest.raises(NodeError) as info:
        run(node)
    assert info.value.phase == "post"
    assert info.value.__cause__ is error
    assert info.value.attempts == 1


# -- retries ----------------------------------------------------------------------------------
def test_exec_attempted_max_retries_times_then_fallback():
    node = Recorder(fail_times=10, max_retries=3)
    assert run(node) == "done"
    assert node.exec_calls == 3
    assert node.calls == ["prep", "exec", "exec", "exec", "fallback", "post"]
    (prep_result, error), *rest = node.fallback_args
    assert rest == []
    assert prep_result == "P"
    assert isinstance(error, Boom) and str(error) == "attempt 3"  # the last error
    assert node.post_args == ("P", "FB")


def test_retry_success_skips_fallback():
    node = Recorder(fail_times=2, max_retries=3)
    run(node)
    assert node.exec_calls == 3
    assert node.fallback_args == []
    assert node.post_args == ("P", "ok")


def test_single_attempt_by_default():
    node = Recorder(fail_times=10)
    run(node)
    assert node.exec_calls == 1
    assert len(node.fallback_args) == 1


@pytest.mark.parametrize("retries", [0, -1, -100])
def test_max_retries_zero_or_less_skips_exec(retries):
    node = Recorder(max_retries=retries)
    assert run(node) == "done"
    assert node.calls == ["prep", "post"]
    assert node.post_args == ("P", None)


def test_get_max_retries_zero_skips_exec():
    class Never(Recorder):
        def get_max_retries(self):
            return 0

    node = Never()
    run(node)
    assert node.exec_calls == 0
    assert node.post_args == ("P", None)


def test_get_max_retries_overrides_attribute():
    class Five(Recorder):
        def get_max_retries(self):
            return 5

    node = Five(fail_times=10, max_retries=1)
    run(node)
    assert node.exec_calls == 5


def test_waits_only_between_attempts():
    """get_wait returns 10 s whenever a wait would be illegal (before the first attempt or after
    the last), 0.05 s otherwise: a correct run finishes quickly, a wrong one takes 10 s."""

    class Guarded(Recorder):
        max_retries = 3

        def __init__(self):
            super().__init__(fail_times=10)
            self.wait_reads = []

        def get_wait(self):
            legal = 1 <= self.exec_calls < self.max_retries
            self.wait_reads.append(self.exec_calls)
            return 0.05 if legal else 10.0

    node = Guarded()
    stamps = []
    original = node.exec

    def timed_exec(ctx, prep_result):
        stamps.append(time.monotonic())
        return original(ctx, prep_result)

    async def timed_async_exec(ctx, prep_result):  # the async style: exec is an async def
        stamps.append(time.monotonic())
        return await original(ctx, prep_result)

    node.exec = timed_async_exec if inspect.iscoroutinefunction(original) else timed_exec
    start = time.monotonic()
    run(node)
    elapsed = time.monotonic() - start
    assert node.exec_calls == 3
    assert elapsed < 5, "waited before the first or after the last attempt"
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(stamps)), "no wait between attempts"
    assert node.wait_reads == [1, 2]


def test_get_max_retries_read_again_after_each_error():
    """SelectiveRetryNode: a permanent error makes get_max_retries say stop."""

    class Permanent(Exception):
        pass

    class Selective(Node):
        def __init__(self):
            super().__init__()
            self.last_error = None
            self.attempts = 0
            self.fallback_error = None

        def get_max_retries(self):
            return 1 if isinstance(self.last_error, Permanent) else 10

        def exec(self, ctx, prep_result):
            self.attempts += 1
            self.last_error = Boom("transient") if self.attempts < 3 else Permanent("permanent")
            raise self.last_error

        def exec_fallback(self, prep_result, error):
            self.fallback_error = error
            return None

    node = Selective()
    run(node)
    assert node.attempts == 3
    assert isinstance(node.fallback_error, Permanent)


def test_get_max_retries_lowered_after_error_raises_node_error_with_attempts():
    class StopEarly(Node):
        def __init__(self):
            super().__init__()
            self.attempts = 0

        def get_max_retries(self):
            return 2 if self.attempts >= 2 else 5

        def exec(self, ctx, prep_result):
            self.attempts += 1
            raise Boom(f"n{self.attempts}")

    node = StopEarly()
    with pytest.raises(NodeError) as info:
        run(node)
    assert node.attempts == 2
    assert info.value.attempts == 2
    assert str(info.value.__cause__) == "n2"


def test_exponential_backoff_reads_get_wait_before_each_wait():
    """BackoffNode: get_wait depends on the attempt counter that exec increments."""

    class Backoff(Node):
        max_retries = 4

        def __init__(self):
            super().__init__()
            self.attempt = 0
            self.waits = []

        def get_wait(self):
            wait = 0.001 * 2**self.attempt
            self.waits.append(wait)
            return wait

        def exec(self, ctx, prep_result):
            self.attempt += 1
            if self.attempt < 4:
                raise Boom("try again")
            return "finally"

        def post(self, ctx, shared, prep_result, exec_result):
            shared.set("result", exec_result)

    node = Backoff()
    events = []
    store = SharedStore()
    run(node, store, ctx=Context.background().with_observer(events.append))
    assert store.get("result") == "finally"
    assert node.waits == [0.002, 0.004, 0.008]
    assert [e.wait for e in events if isinstance(e, ExecFailed)] == [0.002, 0.004, 0.008]


def test_max_retries_changed_on_the_instance_between_runs():
    node = Recorder(fail_times=100, max_retries=2)
    run(node)
    assert node.exec_calls == 2
    node.max_retries = 4
    run(node)
    assert node.exec_calls == 6


# -- fallback -----------------------------------------------------------------------------------
def test_fallback_raising_is_node_error_exec_with_fallback_cause():
    fb_error = RuntimeError("fallback broke")

    def failing(ctx, p):
        raise Boom("exec broke")

    def fallback(prep_result, error):
        raise fb_error

    node = Node(exec=failing, fallback=fallback, max_retries=2)
    with pytest.raises(NodeError) as info:
        run(node)
    assert info.value.phase == "exec"
    assert info.value.__cause__ is fb_error
    assert info.value.attempts == 2


def test_default_fallback_reraises_last_exec_error_as_node_error():
    errors = [Boom("first"), Boom("second")]

    def failing(ctx, p):
        raise errors.pop(0)

    node = Node(exec=failing, max_retries=2, name="flaky")
    with pytest.raises(NodeError) as info:
        run(node)
    err = info.value
    assert err.phase == "exec"
    assert str(err.__cause__) == "second"
    assert err.attempts == 2


def test_fallback_not_called_on_success():
    called = []
    node = Node(exec=lambda c, p: 1, fallback=lambda p, e: called.append(e))
    run(node)
    assert called == []


# -- NodeError ----------------------------------------------------------------------------------
def test_node_error_attributes_and_message():
    cause = Boom("the disk is full")

    def failing(ctx, p):
        raise cause

    node = Node(exec=failing, max_retries=3, name="writer")
    with pytest.raises(NodeError) as info:
        run(node)
    err = info.value
    assert err.node is node
    assert err.node_name == "writer"
    assert err.phase == "exec"
    assert err.attempts == 3
    assert err.__cause__ is cause
    message = str(err)
    for fragment in ("writer", "exec", "3", "the disk is full"):
        assert fragment in message


def test_node_error_message_for_prep():
    def prep(ctx, shared):
        raise KeyError("missing_input")

    with pytest.raises(NodeError) as info:
        run(Node(prep=prep, name="reader"))
    message = str(info.value)
    assert "reader" in message and "prep" in message and "0" in message and "missing_input" in message


def test_flyt_error_is_the_base_of_every_engine_error():
    for cls in (NodeError, Cancelled, DeadlineExceeded, BindError, BatchError):
        assert issubclass(cls, FlytError)
    assert issubclass(FlytError, Exception)


def test_node_error_is_not_double_wrapped_by_run_inside_exec(each_style):
    skip_when_async(each_style, NESTED)
    inner = Node(exec=lambda c, p: 1 / 0, name="inner")

    def exec_(ctx, p):
        return run(inner, ctx=ctx)

    outer = Node(exec=exec_, name="outer")
    with pytest.raises(NodeError) as info:
        run(outer)
    assert info.value.node is inner
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# -- argument checks ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [object(), "node", None, Node])
def test_run_with_a_non_node_is_type_error(bad):
    with pytest.raises(TypeError):
        run(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [{"a": 1}, [1], "store"])
def test_run_with_a_non_store_is_type_error(bad):
    with pytest.raises(TypeError):
        run(Node(), bad)  # type: ignore[arg-type]


def test_run_with_a_non_context_is_type_error():
    with pytest.raises(TypeError):
        run(Node(), ctx="ctx")  # type: ignore[arg-type]
