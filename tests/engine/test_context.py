"""Context: cancellation, deadlines, values and parent/child propagation (API.md "Context")."""

import math
import threading
import time

import pytest

from flyt_engine import Cancelled, Context, DeadlineExceeded, FlytError


def cancel_later(cancel, delay: float = 0.05) -> threading.Thread:
    """Call ``cancel`` from another thread after ``delay`` seconds."""
    thread = threading.Timer(delay, cancel)
    thread.start()
    return thread


# -- background ---------------------------------------------------------------------------
def test_background_is_never_cancelled_and_has_no_values():
    ctx = Context.background()
    assert ctx.cancelled is False
    assert ctx.error() is None
    ctx.check()  # does not raise
    assert ctx.value("anything") is None
    assert ctx.value("anything", 7) == 7


def test_background_returns_a_context():
    assert isinstance(Context.background(), Context)


# -- with_cancel ----------------------------------------------------------------------------
def test_with_cancel_returns_child_and_cancel_function():
    ctx, cancel = Context.background().with_cancel()
    assert isinstance(ctx, Context)
    assert callable(cancel)
    assert not ctx.cancelled
    cancel()
    assert ctx.cancelled
    assert isinstance(ctx.error(), Cancelled)
    assert not isinstance(ctx.error(), DeadlineExceeded)


def test_check_raises_cancelled_after_cancel():
    ctx, cancel = Context.background().with_cancel()
    ctx.check()
    cancel()
    with pytest.raises(Cancelled):
        ctx.check()


def test_cancel_twice_is_harmless_and_keeps_first_error():
    ctx, cancel = Context.background().with_cancel()
    cancel()
    first = ctx.error()
    cancel()
    assert ctx.error() is first


def test_cancelling_does_not_touch_the_parent():
    parent, _ = Context.background().with_cancel()
    child, cancel_child = parent.with_cancel()
    cancel_child()
    assert child.cancelled
    assert not parent.cancelled
    assert parent.error() is None


def test_child_is_cancelled_when_parent_is():
    parent, cancel_parent = Context.background().with_cancel()
    child, _ = parent.with_cancel()
    grandchild = child.with_value("k", 1)
    great, _ = grandchild.with_cancel()
    cancel_parent()
    for ctx in (child, grandchild, great):
        assert ctx.cancelled
        with pytest.raises(Cancelled):
            ctx.check()


def test_child_of_cancelled_parent_starts_cancelled():
    parent, cancel = Context.background().with_cancel()
    cancel()
    child, _ = parent.with_cancel()
    assert child.cancelled
    timed, _ = parent.with_timeout(100)
    assert timed.cancelled


def test_sibling_not_cancelled_by_sibling():
    parent, _ = Context.background().with_cancel()
    a, cancel_a = parent.with_cancel()
    b, _ = parent.with_cancel()
    cancel_a()
    assert a.cancelled and not b.cancelled


# -- with_timeout ---------------------------------------------------------------------------
def test_timeout_fires_deadline_exceeded():
    ctx, cancel = Context.background().with_timeout(0.05)
    try:
        done = ctx.done()
        assert done is not None
        assert done.wait(5), "the deadline never fired"
        assert ctx.cancelled
        err = ctx.error()
        assert isinstance(err, DeadlineExceeded)
        with pytest.raises(DeadlineExceeded):
            ctx.check()
    finally:
        cancel()


def test_deadline_exceeded_is_cancelled_timeout_and_flyt_error():
    assert issubclass(DeadlineExceeded, Cancelled)
    assert issubclass(DeadlineExceeded, TimeoutError)
    assert issubclass(Cancelled, FlytError)
    assert issubclass(FlytError, Exception)
    ctx, _ = Context.background().with_timeout(0)
    with pytest.raises(TimeoutError):
        ctx.check()
    with pytest.raises(Cancelled):
        ctx.check()


def test_zero_or_negative_timeout_is_cancelled_at_once():
    for seconds in (0, -1, 0.0):
        ctx, _ = Context.background().with_timeout(seconds)
        assert ctx.cancelled
        assert isinstance(ctx.error(), DeadlineExceeded)


def test_cancel_before_timeout_gives_plain_cancelled():
    ctx, cancel = Context.background().with_timeout(100)
    assert not ctx.cancelled
    cancel()
    assert ctx.cancelled
    assert isinstance(ctx.error(), Cancelled)
    assert not isinstance(ctx.error(), DeadlineExceeded)


def test_parent_timeout_reaches_child():
    parent, cancel = Context.background().with_timeout(0.05)
    try:
        child = parent.with_value("k", "v")
        grandchild, _ = child.with_cancel()
        done = grandchild.done()
        assert done is not None and done.wait(5)
        assert isinstance(grandchild.error(), DeadlineExceeded)
    finally:
        cancel()


def test_with_timeout_rejects_non_numbers():
    with pytest.raises(TypeError):
        Context.background().with_timeout("1")  # type: ignore[arg-type]


# -- values ---------------------------------------------------------------------------------
def test_with_value_and_value_with_default():
    base = Context.background()
    ctx = base.with_value("user", "ann")
    assert ctx.value("user") == "ann"
    assert ctx.value("missing") is None
    assert ctx.value("missing", "dflt") == "dflt"
    assert base.value("user") is None  # the parent is unchanged


def test_value_shadowing_and_inheritance():
    outer = Context.background().with_value("k", 1).with_value("other", "x")
    inner = outer.with_value("k", 2)
    assert inner.value("k") == 2
    assert inner.value("other") == "x"
    assert outer.value("k") == 1


def test_values_survive_cancel_and_timeout_derivation():
    ctx = Context.background().with_value("k", "v")
    cancellable, cancel = ctx.with_cancel()
    timed, cancel_timed = ctx.with_timeout(100)
    try:
        assert cancellable.value("k") == "v"
        assert timed.value("k") == "v"
    finally:
        cancel()
        cancel_timed()


def test_value_of_none_is_returned_not_the_default():
    ctx = Context.background().with_value("k", None)
    assert ctx.value("k", "dflt") is None


def test_value_keys_may_be_any_hashable():
    key = object()
    ctx = Context.background().with_value(key, 3)
    assert ctx.value(key) == 3
    assert ctx.value(object()) is None


def test_value_child_of_cancellable_shares_cancellation():
    parent, cancel = Context.background().with_cancel()
    child = parent.with_value("k", 1)
    cancel()
    assert child.cancelled


# -- sleep ----------------------------------------------------------------------------------
def test_sleep_sleeps_when_not_cancelled():
    ctx, cancel = Context.background().with_cancel()
    start = time.monotonic()
    ctx.sleep(0.02)
    assert time.monotonic() - start >= 0.015
    cancel()


def test_sleep_zero_and_negative_return_at_once():
    Context.background().sleep(0)
    Context.background().sleep(-1)


def test_sleep_raises_immediately_on_cancelled_context():
    ctx, cancel = Context.background().with_cancel()
    cancel()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        ctx.sleep(10)
    assert time.monotonic() - start < 5


def test_sleep_is_cut_short_by_cancel_from_another_thread():
    ctx, cancel = Context.background().with_cancel()
    timer = cancel_later(cancel)
    start = time.monotonic()
    with pytest.raises(Cancelled):
        ctx.sleep(10)
    assert time.monotonic() - start < 5
    timer.join()


def test_sleep_is_cut_short_by_parent_cancel():
    parent, cancel = Context.background().with_cancel()
    child = parent.with_value("k", 1)
    timer = cancel_later(cancel)
    start = time.monotonic()
    with pytest.raises(Cancelled):
        child.sleep(10)
    assert time.monotonic() - start < 5
    timer.join()


def test_sleep_is_cut_short_by_deadline():
    ctx, cancel = Context.background().with_timeout(0.05)
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        ctx.sleep(10)
    assert time.monotonic() - start < 5
    cancel()


# -- observers ------------------------------------------------------------------------------
def test_with_observer_requires_a_callable_and_keeps_parent_clean():
    base = Context.background()
    with pytest.raises(TypeError):
        base.with_observer(42)  # type: ignore[arg-type]
    seen = []
    child = base.with_observer(seen.append)
    assert child is not base
    assert seen.append in child.observers
    assert base.observers == ()
    # derived contexts keep the observers
    assert seen.append in child.with_value("k", 1).observers


# -- extreme durations ----------------------------------------------------------------------------
def test_infinite_timeout_never_fires_and_raises_nothing_in_a_thread(monkeypatch):
    """``with_timeout(math.inf)`` means "no deadline": no timer-thread crash, never cancelled."""
    crashes = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    for seconds in (math.inf, 1e12):
        ctx, cancel = Context.background().with_timeout(seconds)
        time.sleep(0.05)
        assert not ctx.cancelled
        cancel()
        assert ctx.cancelled
    assert crashes == []


def test_nan_timeout_is_value_error():
    with pytest.raises(ValueError):
        Context.background().with_timeout(math.nan)


def test_infinite_sleep_waits_until_cancelled():
    ctx, cancel = Context.background().with_cancel()
    timer = cancel_later(cancel)
    start = time.monotonic()
    with pytest.raises(Cancelled):
        ctx.sleep(math.inf)
    assert time.monotonic() - start < 5
    timer.join()


def test_huge_sleep_on_a_cancellable_context_is_not_an_overflow():
    ctx, cancel = Context.background().with_cancel()
    timer = cancel_later(cancel)
    with pytest.raises(Cancelled):
        ctx.sleep(1e15)
    timer.join()


def test_pending_deadlines_share_one_timer_thread():
    import threading

    before = threading.active_count()
    contexts = [Context.background().with_timeout(60 + i / 1000) for i in range(5000)]
    assert threading.active_count() <= before + 1  # the one deadline thread, at most
    for _, cancel in contexts:
        cancel()
    assert all(ctx.cancelled for ctx, _ in contexts)


def test_the_earliest_deadline_fires_even_when_scheduled_after_later_ones():
    late, _ = Context.background().with_timeout(30)
    early, _ = Context.background().with_timeout(0.05)
    with pytest.raises(DeadlineExceeded):
        early.sleep(5)
    assert not late.cancelled
