"""Batches on Dask: a 2-worker LocalCluster of processes runs a BatchNode and a BatchFlow
defined in a module loaded from a file path (as the workbench loads a flow file).

One cluster serves the whole module (it starts in well under a second here). The worker
death test runs last: it kills a worker, which the nanny then restarts.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="dask[distributed] is not installed: pip install -e '.[dask]'")
pytest.importorskip("cloudpickle", reason="cloudpickle is not installed: pip install -e '.[dask]'")

import cloudpickle

import flyt_engine
from flyt_engine import (
    BatchError,
    BatchFlow,
    BatchNode,
    Cancelled,
    Context,
    NodeError,
    SharedStore,
    WorkerLost,
    run,
)
from flyt_engine import dask as flyt_dask
from flyt_engine.events import BatchItemFinished, ExecFailed, FallbackUsed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODULE_NAME = "flyt_test_flows_loaded_by_path"  # no worker can import this name


def load_by_path() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(MODULE_NAME, HERE / "dask_fixture_flows.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def flows():
    module = load_by_path()
    yield module
    sys.modules.pop(MODULE_NAME, None)


@pytest.fixture(scope="module")
def executor():
    ex = flyt_dask.executor(
        n_workers=2,
        processes=True,
        threads_per_worker=2,
        silence_logs=logging.CRITICAL,
        scheduler_kwargs={"allowed_failures": 0},  # a worker death fails its task at once
    )
    yield ex
    ex.shutdown()


# -- the helper -------------------------------------------------------------------------------------------
def test_the_local_cluster_has_two_worker_processes_and_no_fixed_port(executor):
    info = executor.client.scheduler_info()
    assert len(info["workers"]) == 2
    pids = executor.client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    dashboard = executor.cluster.scheduler.http_server
    assert dashboard.port != 8787  # no fixed port taken
    assert dashboard.address == "127.0.0.1"


def scheduler_task_count(executor) -> int:
    return executor.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_futures_behave_like_concurrent_futures(executor, flows, tmp_path):
    ok = executor.submit(flows.normalize, None, {"name": "ann", "email": "A@X.ORG"})
    seen = threading.Event()
    ok.add_done_callback(lambda future: seen.set())
    assert ok.result(timeout=30) == flows.Profile("Ann", "a@x.org")
    assert seen.wait(5)
    bad = executor.submit(flows.normalize, None, {"name": "bob", "email": "nope"})
    error = bad.exception(timeout=30)
    assert type(error) is flows.InvalidUser  # the very class, round-tripped by value
    assert any("raised on Dask worker" in note for note in error.__notes__)
    slow = executor.submit(flows.sleep_then_echo, None, (str(tmp_path), 60))
    try:
        assert slow.cancel()
        assert slow.cancelled()
        assert wait_until(lambda: scheduler_task_count(executor) == 0)  # the Dask task was cancelled too
    finally:
        (tmp_path / "stop").touch()


def test_submits_are_not_pure(executor, flows):
    """With Dask's default pure=True identical submits would share one result."""
    shared = SharedStore({"items": ["same"] * 6})
    run(BatchNode(flows.token, True, executor=executor), shared)
    assert len(set(shared.get("results"))) == 6


def test_waiting_for_tasks_puts_nothing_per_task_on_the_client_loop(executor, flows, tmp_path):
    """A local cluster's scheduler runs on the client's event loop: waiting for a batch
    must not add a coroutine per task there (``as_completed`` did, and slowed the cluster)."""

    async def task_count() -> int:
        return len(asyncio.all_tasks())

    def loop_tasks() -> int:
        return asyncio.run_coroutine_threadsafe(task_count(), executor.client.loop.asyncio_loop).result(10)

    before = loop_tasks()
    calls = [(flows.sleep_then_echo, (None, (str(tmp_path), 60))) for _ in range(40)]
    futures = executor.submit_batch(calls)
    try:
        assert wait_until(lambda: scheduler_task_count(executor) >= 40)
        assert loop_tasks() - before < 10
    finally:
        (tmp_path / "stop").touch()
    assert [future.result(timeout=30) for future in futures] == [60] * 40


def test_a_big_batch_goes_to_the_scheduler_in_a_few_graphs(executor, flows, monkeypatch):
    """The first graph is small, so the workers start while the rest is pickled; the rest
    goes in few graphs, since each costs the scheduler."""
    sizes: list[int] = []
    real_map = executor.client.map

    def counting_map(fn, *iterables, **kwargs):
        sizes.append(len(iterables[0]))
        return real_map(fn, *iterables, **kwargs)

    monkeypatch.setattr(executor.client, "map", counting_map)
    futures = executor.submit_batch([(flows.token, (None, index)) for index in range(700)])
    assert len({future.result(timeout=60) for future in futures}) == 700
    assert sum(sizes) == 700
    assert sizes[0] <= 128 and len(sizes) <= 3


def test_the_items_of_a_batch_share_one_copy_of_the_code_per_worker(executor, flows):
    """Unpickling code shipped by value rebuilds it, module globals included: once per
    worker, not once per item (at most one extra copy per worker thread that raced)."""
    shared = SharedStore({"items": list(range(24))})
    run(BatchNode(flows.runs_of_this_copy, True, executor=executor), shared)
    runs = shared.get("results")
    assert os.getpid() not in {pid for pid, _ in runs}
    first_items = [count for _, count in runs if count == 1]
    assert len(first_items) <= 4  # 2 workers × 2 threads
    assert max(count for _, count in runs) >= 24 // 4


# -- BatchNode ----------------------------------------------------------------------------------------------
def test_batch_node_from_a_path_loaded_module(executor, flows):
    users = [
        {"name": "ann", "email": "Ann@Example.org"},
        {"name": "bob", "email": "bob-at-example.org"},
        {"name": "cy", "email": " CY@example.org "},
    ]
    shared = SharedStore({"items": users})
    node = BatchNode(flows.normalize, True, executor=executor, name="normalize_users", count_key="n")
    with pytest.raises(BatchError) as info:
        run(node, shared)
    err = info.value
    assert err.message == "1/3 items failed"
    assert type(err.errors[1]) is flows.InvalidUser
    assert "bob" in str(err.errors[1])
    assert shared.get("results") == [
        flows.Profile("Ann", "ann@example.org"),
        None,
        flows.Profile("Cy", "cy@example.org"),
    ]
    assert shared.get("n") == 3
    assert "normalize_users" in str(err) and "#1" in str(err)


def test_items_run_in_the_worker_processes(executor, flows):
    shared = SharedStore({"items": list(range(8))})
    run(BatchNode(flows.worker_pid, True, executor=executor), shared)
    pids = set(shared.get("results"))
    assert pids and os.getpid() not in pids
    assert pids <= set(executor.client.run(os.getpid).values())


def test_a_subclass_node_and_the_context_values_travel(executor, flows):
    shared = SharedStore({"items": [1, 2, 3]})
    node = flows.Scorer(concurrent=True, executor=executor)
    run(node, shared)
    assert shared.get("results") == [2, 5, 10]
    assert node.config.executor is executor
    ctx = Context.background().with_value("unit", "kg").with_observer(lambda event: None)
    shared = SharedStore({"items": [4, 5]})
    run(BatchNode(flows.unit_label, True, executor=executor), shared, ctx=ctx)
    assert shared.get("results") == ["4 kg", "5 kg"]


def test_retries_and_events_stay_in_the_driving_process(executor, flows, tmp_path):
    events = []
    driver_thread = threading.get_ident()
    threads = set()

    def observer(event):
        threads.add(threading.get_ident())
        events.append(event)

    items = [(str(tmp_path), "a"), (str(tmp_path), "b")]
    shared = SharedStore({"items": items})
    node = BatchNode(flows.fail_first_attempt, True, executor=executor, max_retries=2, wait=0.01, name="sync")
    run(node, shared, ctx=Context.background().with_observer(observer))
    assert shared.get("results") == ["a ok", "b ok"]
    assert threads == {driver_thread}
    failed = sorted((e.path, e.attempt, e.max_attempts) for e in events if isinstance(e, ExecFailed))
    assert failed == [(("sync", "#0"), 1, 2), (("sync", "#1"), 1, 2)]
    assert sorted(e.index for e in events if isinstance(e, BatchItemFinished)) == [0, 1]


def test_held_errors_do_not_hold_dask_tasks(executor, flows, tmp_path):
    """An item's error travels without its traceback: Dask's tblib would rebuild it from the
    frames live on the driver, which hold the Dask future (and its result on a worker) for
    as long as anyone keeps the error."""
    items = [(str(tmp_path), "a"), (str(tmp_path), "b")]
    events = []
    gc.disable()  # a plain reference must not hold the tasks, whatever the collector does later
    try:
        with pytest.raises(BatchError) as info:
            run(BatchNode(flows.fail_first_attempt, True, executor=executor), SharedStore({"items": items}))
        run(
            BatchNode(flows.fail_first_attempt, True, executor=executor, max_retries=2),
            SharedStore({"items": [(str(tmp_path), "c"), (str(tmp_path), "d")]}),
            ctx=Context.background().with_observer(events.append),
        )
        assert wait_until(lambda: scheduler_task_count(executor) == 0, timeout=5)
    finally:
        gc.enable()
    assert all(isinstance(error, ConnectionError) for error in info.value.errors)
    assert sum(isinstance(event, ExecFailed) for event in events) == 2


def test_fallback_runs_in_the_driving_process(executor, flows):
    pid = os.getpid()
    shared = SharedStore({"items": [{"name": "x", "email": "bad"}]})
    node = BatchNode(
        flows.normalize, executor=executor, fallback=lambda item, error: (os.getpid(), type(error).__name__)
    )
    events = []
    run(node, shared, ctx=Context.background().with_observer(events.append))
    assert shared.get("results") == [(pid, "InvalidUser")]
    assert any(isinstance(e, FallbackUsed) for e in events)


# -- BatchFlow ------------------------------------------------------------------------------------------------
def test_batch_flow_from_a_path_loaded_module(executor, flows):
    parent = SharedStore(
        {
            "site": "example.org",
            "users": [
                {"name": "ann", "email": "ann@x"},
                {"name": "bob", "email": "nope"},
                {"name": "cy", "email": "c@x"},
            ],
        }
    )
    batch = BatchFlow(flows.user_flow, flows.user_inputs, True, executor=executor, name="batch_users")
    with pytest.raises(BatchError) as info:
        run(batch, parent)
    results = parent.get("batch_results")
    assert parent.get("batch_count") == 3
    assert results[1] is None
    for index, name in ((0, "ann"), (2, "cy")):
        final = results[index]
        assert final["site"] == "example.org" and final["name"] == name and final["valid"] is True
        assert final["greeting"].startswith(f"hello {name} (pid ")
        assert f"(pid {os.getpid()})" not in final["greeting"]  # it ran on a worker
    error = info.value.errors[1]
    assert isinstance(error, NodeError) and error.node_name == "reject"
    assert "greeting" not in parent and "valid" not in parent


# -- cancellation ----------------------------------------------------------------------------------------------
def test_cancellation_keeps_finished_results_and_cancels_the_rest(executor, flows, tmp_path):
    ctx, cancel = Context.background().with_cancel()
    finished = threading.Event()

    def observer(event):
        if isinstance(event, BatchItemFinished):
            finished.set()

    threading.Thread(target=lambda: (finished.wait(30), cancel()), daemon=True).start()
    folder = str(tmp_path)
    shared = SharedStore({"items": [(folder, 0.0)] + [(folder, 60.0)] * 5})
    node = BatchNode(flows.sleep_then_echo, True, concurrency=2, executor=executor)
    try:
        with pytest.raises(Cancelled) as info:
            run(node, shared, ctx=ctx.with_observer(observer))
        results = shared.get("results")
        assert results[0] == 0.0
        assert results[1:] == [None] * 5
        assert all(isinstance(e, Cancelled) for e in info.value.errors[1:])
        assert wait_until(lambda: scheduler_task_count(executor) == 0)  # in-flight Dask tasks were cancelled
    finally:
        (tmp_path / "stop").touch()


# -- what travels by value ---------------------------------------------------------------------------------------
def test_ships_by_value_picks_user_code_only(flows):
    assert flyt_dask.ships_by_value(flows)  # loaded by path
    assert flyt_dask.ships_by_value(sys.modules[__name__])  # imported from the project, not installed
    assert not flyt_dask.ships_by_value(flyt_engine)
    assert not flyt_dask.ships_by_value(sys.modules["flyt_engine.batch"])
    assert not flyt_dask.ships_by_value(json)  # standard library
    assert not flyt_dask.ships_by_value(sys.modules["distributed"])  # site-packages
    assert not flyt_dask.ships_by_value(sys)  # built-in
    assert not flyt_dask.ships_by_value(types.ModuleType("made_in_memory"))
    assert not flyt_dask.ships_by_value(sys.modules["__main__"])


def test_by_value_registration_lasts_one_call(flows):
    payload = flyt_dask.dumps((flows.normalize, ({"name": "a", "email": "a@b"},)))
    assert MODULE_NAME not in cloudpickle.list_registry_pickle_by_value()
    assert MODULE_NAME.encode() in payload  # the function's module name travels, not an import of it
    fn, args = cloudpickle.loads(payload)
    assert fn is not flows.normalize  # rebuilt from the shipped code ...
    assert type(fn(None, *args)) is flows.Profile  # ... while classes map back to the originals


def test_importing_the_engine_never_imports_dask():
    code = (
        "import sys, json, flyt_engine\n"
        "from flyt_engine import BatchNode, SharedStore, run\n"
        "run(BatchNode(lambda c, i: i, True), SharedStore({'items': [1, 2]}))\n"
        "print(json.dumps(sorted(m for m in ('dask', 'distributed', 'cloudpickle') if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


# -- the executor's own life ----------------------------------------------------------------------------------------
def test_argument_checks():
    with pytest.raises(TypeError, match="local cluster"):
        flyt_dask.executor("tcp://127.0.0.1:1", n_workers=3)
    with pytest.raises(TypeError):
        flyt_dask.executor(42)


def test_an_executor_on_a_given_client_leaves_it_open_and_refuses_work_after_shutdown(executor, flows):
    borrowed = flyt_dask.executor(client=executor.client)
    with borrowed:
        assert borrowed.submit(flows.token, None, 1).result(timeout=30)
    assert executor.client.status == "running"
    with pytest.raises(RuntimeError, match="shutdown"):
        borrowed.submit(flows.token, None, 1)
    shared = SharedStore({"items": [1, 2]})
    with pytest.raises(BatchError) as info:
        run(BatchNode(flows.token, True, executor=borrowed, name="late"), shared)
    assert all("'late' item #" in str(error) for error in info.value.errors)


def test_the_batch_users_sample_on_dask(executor):
    """The sample, loaded by path as the workbench does, runs both its batches on the cluster."""
    spec = importlib.util.spec_from_file_location(
        "flyt_sample_batch_users_on_dask", ROOT / "sample_flows" / "batch_users.py"
    )
    sample = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sample
    try:
        spec.loader.exec_module(sample)
        shared = SharedStore({**sample.initial_store(), "pace": 0})
        sample.build_flow(executor).run(shared)
    finally:
        sys.modules.pop(spec.name, None)
    report = shared.get("report")
    assert (report["users"], report["welcomed"]) == (12, 11)
    assert report["retried"] == {107: 2}
    assert list(report["with_issues"]) == [109]


def test_a_worker_dying_mid_batch_names_batch_and_item_and_loses_no_result(executor, flows):
    """Runs last: the dead worker's nanny restarts it afterwards."""
    shared = SharedStore({"items": ["a", "b", "die", "c"]})
    node = BatchNode(flows.die_on_request, executor=executor, name="shout")  # one item in flight at a time
    with pytest.raises(BatchError) as info:
        run(node, shared)
    assert shared.get("results") == ["A", "B", None, "C"]
    error = info.value.errors[2]
    assert isinstance(error, WorkerLost)
    assert "'shout' item #2" in str(error)
    assert "KilledWorker" in str(error)
    assert info.value.errors[:2] == [None, None] and info.value.errors[3] is None


def _listening_ips() -> set[str]:
    """The IPs this process and its children listen on (TCP), read from /proc/net."""
    import socket

    ips: set[str] = set()
    inodes: set[str] = set()
    pids = [os.getpid()]
    try:
        children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
        pids += [int(pid) for pid in children]
    except OSError:
        pass
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ips.add(socket.inet_ntop(family, words))
    return ips


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net")
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_local_cluster_listens_on_loopback_only(processes):
    ex = flyt_dask.executor(processes=processes, n_workers=1)
    try:
        ips = _listening_ips()
    finally:
        ex.shutdown()
    assert ips, "the cluster should listen somewhere"
    assert ips <= {"127.0.0.1", "::1"}, ips


class _NoFdStderr:
    """What a terminal UI puts in sys.stderr: writes captured, no file descriptor."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return -1


def _shout(ctx, item):
    import sys as worker_sys

    worker_sys.stderr.write(f"item {item} says hello\n")
    worker_sys.stderr.flush()
    return item * 2


def test_worker_processes_start_when_stderr_has_no_descriptor_and_their_output_is_relayed(monkeypatch):
    fake = _NoFdStderr()
    monkeypatch.setattr(sys, "stderr", fake)
    ex = flyt_dask.executor(n_workers=1)
    try:
        assert sys.stderr is fake  # put back once the workers started
        shared = SharedStore({"items": [1, 2]})
        run(BatchNode(_shout, executor=ex, name="shout"), shared)
        assert shared["results"] == [2, 4]
    finally:
        ex.shutdown()
    deadline = time.monotonic() + 10
    while not any("says hello" in line for line in fake.lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("item 1 says hello" in line for line in fake.lines)
