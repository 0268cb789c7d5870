"""Recorded runs: every sample recorded and read back gives the same timeline (steps,
checkpoints, the store at every checkpoint, errors), and bad bundles are refused or read
as far as they go, with a clear word."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import flow_path

from flyt_engine import Flow, Node
from flyt_tui.app import fresh_store
from flyt_tui.core.format import error_line
from flyt_tui.core.loading import load_module
from flyt_tui.core.recording import VERSION, start_recording
from flyt_tui.core.recording_reader import RecordingError, RunReader, read_head, stand_in_flow
from flyt_tui.core.session import RunSession
from flyt_tui.core.tagged import encode
from flyt_tui.core.timeline import Timeline

SAMPLES = Path(__file__).resolve().parents[2] / "sample_flows"
SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.py"))
TEST_FLOWS = [
    "basic",
    "batches",
    "failing",
    "nested",
    "nested_values",
    "retries",
    "weird",
    "flaky_batch",
    "async_steps",
    "pocketflow_style",
    "pocketflow_async",
]


@pytest.fixture(autouse=True)
def _keep_cwd_and_path():
    cwd, path = os.getcwd(), sys.path[:]
    yield
    os.chdir(cwd)
    sys.path[:] = path


def record(path: Path, bundle: Path) -> Timeline:
    """Run the module's flow as the workbench does, feeding a live timeline and a writer
    from the same drains; return the live timeline once the bundle is closed."""
    loaded = load_module(path)
    entry = loaded.entries[0]
    initial = loaded.initial_store
    session = RunSession(entry.flow, keep_values=True, prepare=lambda: fresh_store(initial))  # as the app runs it
    live = Timeline(loaded.initial_store)
    writer = start_recording(bundle, entry.flow, loaded.initial_store, module=path, entry=entry.name)
    snapshots = session.snapshots
    assert snapshots is not None

    def handle(records: list) -> None:
        kept = snapshots.take()
        live.ingest(records, kept)
        writer.feed(records, kept)

    session.start("run")
    while not session.wait(0.02):
        session.pump(handle)
    session.pump(handle)
    assert writer.close()
    assert writer.error is None
    return live


def read_back(bundle: Path) -> tuple[Timeline, RunReader]:
    head = read_head(bundle)
    _flow, ids = stand_in_flow(head)
    reader = RunReader(head, ids)
    replay = Timeline(head.store)
    for records, kept in reader.batches(lines_per_batch=7):  # small batches: steps cut across them
        replay.ingest(records, kept)
    return replay, reader


def same_timeline(live: Timeline, replay: Timeline) -> None:
    assert len(replay) == len(live) > 0
    assert list(replay.marks) == list(live.marks)
    assert [replay.paths[i] for i in replay.step_path] == [live.paths[i] for i in live.step_path]
    for index in range(len(live)):
        assert encode(replay.store_at(index)) == encode(live.store_at(index)), f"store at checkpoint {index}"
        assert replay.moment(index).words == live.moment(index).words
        detail = live.details.get(index)
        if isinstance(detail, tuple) and detail and isinstance(detail[-1], BaseException):
            assert error_line(replay.details[index][-1]) == error_line(detail[-1])
    # prep and exec results are kept live on screen but recorded as they were when written:
    # compared where they cannot have changed since
    for step in range(live.steps):
        for live_result, replayed in (
            (live.step_prep[step], replay.step_prep[step]),
            (live.step_exec[step], replay.step_exec[step]),
        ):
            if type(live_result) in (int, float, str, bool, type(None)):
                assert replayed == live_result


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_every_sample_round_trips(path: Path, tmp_path: Path) -> None:
    bundle = tmp_path / f"{path.stem}.flyt.jsonl"
    live = record(path, bundle)
    replay, reader = read_back(bundle)
    same_timeline(live, replay)
    assert reader.state.ended and reader.state.garbage == 0 and not reader.state.cut


@pytest.mark.parametrize("name", TEST_FLOWS)
def test_test_flows_round_trip(name: str, tmp_path: Path) -> None:
    bundle = tmp_path / f"{name}.flyt.jsonl"
    live = record(flow_path(name), bundle)
    replay, reader = read_back(bundle)
    same_timeline(live, replay)
    assert reader.state.ended


def test_a_failed_run_is_read_as_failed(tmp_path: Path) -> None:
    bundle = tmp_path / "failing.flyt.jsonl"
    record(flow_path("failing"), bundle)
    _, reader = read_back(bundle)
    assert reader.state.ended
    assert reader.state.error is not None
    assert "boom" in error_line(reader.state.error) or error_line(reader.state.error)


class _Grow(Node):
    def post(self, ctx, shared, prep, exec_result):
        items = shared.get("items") or []
        items.append(len(items))
        shared.set("items", items)  # the same list, appended in place
        return "again" if len(items) < 300 else "done"


def test_a_list_appended_in_place_is_kept_as_it_was_and_small(tmp_path: Path) -> None:
    node = _Grow(name="grow")
    node.then("again", node)
    flow = Flow(node, name="grow_flow")
    module = tmp_path / "grow.py"
    module.write_text(
        "from test_recording import _Grow\nfrom flyt_engine import Flow\n"
        "node = _Grow(name='grow')\nnode.then('again', node)\nflow = Flow(node, name='grow_flow')\n"
    )
    del flow
    bundle = tmp_path / "grow.flyt.jsonl"
    live = record(module, bundle)
    replay, _ = read_back(bundle)
    same_timeline(live, replay)
    first_write = next(i for i in range(len(replay)) if replay.moment(i).words.endswith("write items"))
    assert replay.store_at(first_write)["items"] == [0]
    assert replay.store_at(len(replay) - 1)["items"] == list(range(300))
    # each write records only what was appended, not the whole list again
    assert bundle.stat().st_size < 300 * 120


def test_the_module_is_not_imported_when_reading(tmp_path: Path) -> None:
    module = tmp_path / "sentinel_flow.py"
    module.write_text(
        "from flyt_engine import Flow, Node\n"
        "class Step(Node):\n    def exec(self, ctx, prep):\n        return 1\n"
        "flow = Flow(Step(name='step'), name='sentinel')\n"
    )
    bundle = tmp_path / "sentinel.flyt.jsonl"
    record(module, bundle)
    module.write_text("raise SystemExit('this module must never be imported by a reader')\n")
    for name in [n for n in sys.modules if "sentinel_flow" in n]:
        del sys.modules[name]
    replay, reader = read_back(bundle)
    assert reader.state.ended and replay.steps == 2
    assert not any("sentinel_flow" in name for name in sys.modules)


# -- bad bundles ------------------------------------------------------------------------------------
def test_not_a_bundle_is_refused_with_the_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.flyt.jsonl"
    text.write_text("hello world\n")
    with pytest.raises(RecordingError, match="not a flyt recording"):
        read_head(text)
    other = tmp_path / "other.flyt.jsonl"
    other.write_text(json.dumps({"format": "something-else"}) + "\n")
    with pytest.raises(RecordingError, match="not a flyt recording"):
        read_head(other)
    empty = tmp_path / "empty.flyt.jsonl"
    empty.write_text("")
    with pytest.raises(RecordingError, match="empty"):
        read_head(empty)
    with pytest.raises(RecordingError, match="cannot open"):
        read_head(tmp_path / "missing.flyt.jsonl")


def test_a_newer_major_version_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "etl.flyt.jsonl"
    record(flow_path("basic"), bundle)
    lines = bundle.read_text().splitlines()
    head = json.loads(lines[0])
    head["version"] = f"{int(VERSION.split('.')[0]) + 1}.0"
    bundle.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    with pytest.raises(RecordingError, match="newer than this flyt-tui reads"):
        read_head(bundle)
    head["version"] = VERSION.split(".")[0] + ".99"  # a newer minor is read
    bundle.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    read_head(bundle)


def test_a_bundle_cut_in_the_middle_reads_up_to_the_cut(tmp_path: Path) -> None:
    bundle = tmp_path / "retries.flyt.jsonl"
    live = record(flow_path("retries"), bundle)
    data = bundle.read_bytes()
    cut = tmp_path / "cut.flyt.jsonl"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    replay, reader = read_back(cut)
    assert not reader.state.ended
    assert 0 < len(replay) < len(live)
    assert list(replay.marks) == list(live.marks)[: len(replay)]


def test_a_line_of_garbage_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    bundle = tmp_path / "basic.flyt.jsonl"
    live = record(flow_path("nested"), bundle)
    lines = bundle.read_text().splitlines()
    middle = len(lines) // 2
    spoiled = tmp_path / "spoiled.flyt.jsonl"
    spoiled.write_text("\n".join([*lines[:middle], "{{{ not json", '["x", "y"]', *lines[middle:]]) + "\n")
    replay, reader = read_back(spoiled)
    assert reader.state.garbage == 2
    assert reader.state.ended
    assert len(replay) == len(live)


def test_hostile_values_are_recorded_as_text(tmp_path: Path) -> None:
    bundle = tmp_path / "weird.flyt.jsonl"
    record(flow_path("weird"), bundle)
    replay, _ = read_back(bundle)
    store = replay.store_at(len(replay) - 1)
    assert "no repr" in repr(store["unprintable"]) or "repr raised" in repr(store["unprintable"])
    assert isinstance(store["huge_list"], list) and len(store["huge_list"]) <= 1001
    assert bundle.stat().st_size < 5_000_000  # the 5 MB blob and the million items were capped


def test_a_line_too_long_to_keep_is_skipped_without_holding_it(tmp_path: Path, monkeypatch) -> None:
    import flyt_tui.core.recording_reader as reader_module

    bundle = tmp_path / "nested.flyt.jsonl"
    live = record(flow_path("nested"), bundle)
    lines = bundle.read_text().splitlines()
    monkeypatch.setattr(reader_module, "MAX_LINE", 4096)
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", 1024)
    middle = len(lines) // 2
    spoiled = tmp_path / "long.flyt.jsonl"
    spoiled.write_text("\n".join([*lines[:middle], "x" * 50_000, *lines[middle:]]) + "\n")
    replay, reader = read_back(spoiled)
    assert reader.state.garbage == 1
    assert reader.state.ended and len(replay) == len(live)


class _SlowRepr:
    calls = 0

    def __repr__(self) -> str:
        import time

        type(self).calls += 1
        time.sleep(0.06)
        return "slow"


def test_a_type_whose_repr_is_slow_is_asked_once() -> None:
    from flyt_tui.core import tagged

    first = encode(_SlowRepr())
    second = encode([_SlowRepr(), _SlowRepr()])
    assert first["v"] == "slow"
    assert _SlowRepr.calls == 1
    assert all("repr too slow" in item["v"] for item in second)
    tagged._slow_types.discard(_SlowRepr)


# -- the fast way in: indexing straight into the timeline ------------------------------------------
def fold_fully(bundle: Path):
    from flyt_tui.core.history import RunHistory

    head = read_head(bundle)
    _flow, ids = stand_in_flow(head)
    reader = RunReader(head, ids)
    timeline, history = Timeline(head.store), RunHistory()
    for records, kept in reader.batches():
        timeline.ingest(records, kept)
        history.ingest(records)
    return timeline, history


def fold_indexed(bundle: Path):
    from flyt_tui.core.history import RunHistory
    from flyt_tui.core.recording_index import RunIndexer

    head = read_head(bundle)
    _flow, ids = stand_in_flow(head)
    indexer = RunIndexer(head, ids)
    run = indexer.index()
    history = RunHistory()
    history.ingest(run.records)
    history.adopt_counts(run.counts)
    return run.timeline, history, indexer


def same_history(full, indexed) -> None:
    assert indexed.steps == full.steps
    # (the two folds drew their own stand-in graphs: nodes are compared by path)
    # (a batch's items are keyed with id 0 beside their batch node: kept apart)
    by_path = {(key[0], key[1] == 0): node for key, node in indexed.nodes.items()}
    assert by_path.keys() == {(key[0], key[1] == 0) for key in full.nodes}
    for key, node in full.nodes.items():
        other = by_path[(key[0], key[1] == 0)]
        assert (other.state, other.runs, other.action, other.next_node, other.edges) == (
            node.state,
            node.runs,
            node.action,
            node.next_node,
            node.edges,
        ), key
        assert abs(other.duration - node.duration) < 1e-5, key
        assert encode(other.result_of("prep")) == encode(node.result_of("prep")), key
    assert indexed.writers == full.writers
    assert {path: (b.total, b.done, b.failed) for path, b in indexed.batches.items()} == {
        path: (b.total, b.done, b.failed) for path, b in full.batches.items()
    }
    assert (indexed.finished is None) == (full.finished is None)


@pytest.mark.parametrize("path", [*SAMPLE_FILES, *(flow_path(name) for name in TEST_FLOWS)], ids=lambda p: p.stem)
def test_indexing_a_bundle_gives_the_timeline_and_history_of_folding_it(path: Path, tmp_path: Path) -> None:
    bundle = tmp_path / f"{path.stem}.flyt.jsonl"
    record(path, bundle)
    full_timeline, full_history = fold_fully(bundle)
    timeline, history, indexer = fold_indexed(bundle)
    same_timeline(full_timeline, timeline)
    assert [timeline.action_of(s) for s in range(timeline.steps)] == [
        full_timeline.action_of(s) for s in range(full_timeline.steps)
    ]
    assert timeline.failures == full_timeline.failures
    assert timeline.item_batch == full_timeline.item_batch
    same_history(full_history, history)
    assert indexer.state.ended and indexer.state.garbage == 0


def test_values_read_back_are_named_by_the_type_they_had() -> None:
    import dataclasses

    from flyt_tui.core.format import type_name
    from flyt_tui.core.tagged import decode

    @dataclasses.dataclass
    class Point:
        x: int

    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert type_name(decode(encode(Point(1)))) == "Point"
    assert type_name(decode(encode(Opaque()))) == "Opaque"
    assert type_name(decode(encode(b"x" * 5000))) == "bytes"
    assert type_name(decode(encode((1, 2)))) == "tuple"


def test_feeding_waits_for_a_writer_that_falls_behind(tmp_path: Path, monkeypatch) -> None:
    import time

    import flyt_tui.core.recording as recording
    from flyt_engine.events import NodeStarted

    monkeypatch.setattr(recording, "MAX_PENDING", 10)
    writer = recording.RecordingWriter(tmp_path / "slow.flyt.jsonl", recording.header(module=None, flow="f"), None, {})
    write = writer._write

    def slow_write(lines):  # a disk that takes its time
        time.sleep(0.05)
        write(lines)

    writer._write = slow_write  # type: ignore[method-assign]
    header = (1, ("f", "n"), "n", 0)
    seen = []
    for _ in range(6):
        writer.feed([(NodeStarted, header, 0.0)] * 20)
        seen.append(writer._pending)
    assert writer.close()
    assert max(seen) <= 10 + 20  # never more than the bound plus the batch just queued


def test_runs_after_the_first_are_numbered_beside_it() -> None:
    from flyt_tui.core.run_outputs import numbered

    assert numbered("/tmp/etl.flyt.jsonl", 1, ".flyt.jsonl") == "/tmp/etl.flyt.jsonl"
    assert numbered("/tmp/etl.flyt.jsonl", 3, ".flyt.jsonl") == "/tmp/etl.3.flyt.jsonl"
    assert numbered("spans.jsonl", 2, ".jsonl") == "spans.2.jsonl"
