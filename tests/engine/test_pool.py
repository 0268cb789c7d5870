"""WorkerPool and to_slice (API.md "Utilities")."""

import threading
from collections import OrderedDict, deque
from concurrent.futures import Future

import pytest

from flyt_engine import WorkerPool, to_slice


# -- to_slice -----------------------------------------------------------------------------------
def test_none_is_empty_list():
    assert to_slice(None) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1, 2], [1, 2]),
        ((1, 2), [1, 2]),
        (range(3), [0, 1, 2]),
        (deque([1, 2]), [1, 2]),
        ((x * 2 for x in range(3)), [0, 2, 4]),
        ({}.keys(), []),
    ],
)
def test_iterables_become_lists(value, expected):
    result = to_slice(value)
    assert result == expected
    assert type(result) is list


@pytest.mark.parametrize("value", [{1, 2}, frozenset({1, 2})])
def test_sets_become_lists(value):
    result = to_slice(value)
    assert type(result) is list
    assert sorted(result) == [1, 2]


def test_list_result_is_a_new_list():
    original = [1]
    result = to_slice(original)
    result.append(2)
    assert original == [1]


@pytest.mark.parametrize(
    "value",
    ["abc", "", b"abc", bytearray(b"ab"), {"a": 1}, OrderedDict(a=1), 5, 2.5, True, object()],
)
def test_scalars_strings_bytes_and_mappings_are_wrapped(value):
    assert to_slice(value) == [value]


# -- WorkerPool -----------------------------------------------------------------------------------
def test_submit_returns_future_with_result():
    with WorkerPool(2) as pool:
        future = pool.submit(lambda a, b: a + b, 2, 3)
        assert isinstance(future, Future)
        assert future.result(timeout=10) == 5


def test_wait_blocks_until_all_tasks_finished():
    done = []
    lock = threading.Lock()
    gate = threading.Event()

    def task(i):
        gate.wait(10)
        with lock:
            done.append(i)

    pool = WorkerPool(3)
    futures = [pool.submit(task, i) for i in range(10)]
    threading.Timer(0.05, gate.set).start()
    pool.wait()
    assert sorted(done) == list(range(10))
    assert all(f.done() for f in futures)
    pool.close()


def test_wait_with_nothing_submitted_returns():
    with WorkerPool(1) as pool:
        pool.wait()


def test_close_then_submit_raises_runtime_error():
    pool = WorkerPool(2)
    future = pool.submit(lambda: 1)
    pool.close()
    assert future.result(timeout=1) == 1
    with pytest.raises(RuntimeError):
        pool.submit(lambda: 2)
    pool.close()  # twice is fine


def test_close_waits_for_running_tasks():
    finished = threading.Event()
    started = threading.Event()

    def slow():
        started.set()
        threading.Event().wait(0.05)
        finished.set()

    pool = WorkerPool(1)
    pool.submit(slow)
    started.wait(10)
    pool.close()
    assert finished.is_set()


def test_context_manager_closes_on_exit():
    results = []
    with WorkerPool(2) as pool:
        for i in range(5):
            pool.submit(results.append, i)
    assert sorted(results) == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        pool.submit(results.append, 99)


def test_context_manager_returns_the_pool():
    pool = WorkerPool(1)
    with pool as entered:
        assert entered is pool


@pytest.mark.parametrize("workers", [0, -3])
def test_zero_or_negative_workers_means_one(workers):
    running = []
    peak = []
    lock = threading.Lock()

    def task():
        with lock:
            running.append(1)
            peak.append(len(running))
        threading.Event().wait(0.01)
        with lock:
            running.pop()

    with WorkerPool(workers) as pool:
        assert pool.workers == 1
        for _ in range(4):
            pool.submit(task)
    assert max(peak) == 1


def test_concurrency_bounded_by_workers():
    lock = threading.Lock()
    running = [0]
    peak = [0]
    release = threading.Event()

    def task():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1

    with WorkerPool(2) as pool:
        for _ in range(6):
            pool.submit(task)
        threading.Timer(0.05, release.set).start()
    assert peak[0] <= 2


def test_task_exception_is_kept_on_future_and_pool_keeps_working():
    def boom():
        raise ValueError("task failed")

    with WorkerPool(1) as pool:
        bad = pool.submit(boom)
        good = pool.submit(lambda: "still working")
        pool.wait()  # does not raise
        assert isinstance(bad.exception(timeout=10), ValueError)
        with pytest.raises(ValueError, match="task failed"):
            bad.result()
        assert good.result(timeout=10) == "still working"
        assert pool.submit(lambda: 3).result(timeout=10) == 3


def test_tasks_submitted_from_tasks_are_waited_for():
    results = []

    with WorkerPool(2) as pool:

        def parent():
            pool.submit(results.append, "child")
            results.append("parent")

        pool.submit(parent)
        pool.wait()
        assert sorted(results) == ["child", "parent"]


def test_kwargs_are_passed():
    with WorkerPool(1) as pool:
        assert pool.submit(lambda a, b=0: a - b, 5, b=2).result(timeout=10) == 3
