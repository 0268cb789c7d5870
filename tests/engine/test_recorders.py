"""with_recorder: the same events as with_observer, handed over as records
``(EventClass, (run_id, path, node, node_id), time, *fields)``."""

from __future__ import annotations

from flyt_engine import Context, Flow, Node, SharedStore, run
from flyt_engine.events import Event, PhaseStarted, RunStarted, StoreChanged, materialize, record_of


def small_flow() -> Flow:
    a = Node(exec=lambda ctx, p: 1, post=lambda ctx, s, p, e: s.set("a", e), name="a")
    b = Node(exec=lambda ctx, p: 2, post=lambda ctx, s, p, e: s.set("b", e), name="b")
    return Flow(a, name="pair").connect(a, "default", b)


def test_records_are_plain_tuples_of_class_and_fields():
    records: list[tuple] = []
    run(small_flow(), SharedStore(), ctx=Context.background().with_recorder(records.append))
    assert records and all(type(r) is tuple for r in records)
    assert records[0][0] is RunStarted
    started = next(r for r in records if r[0] is PhaseStarted)
    event = materialize(started)
    assert isinstance(event, PhaseStarted) and event.phase == "prep" and event.path == ("pair",)
    _cls, header, when, *fields = started
    assert header == (event.run_id, event.path, event.node, event.node_id) and when == event.time
    assert fields == ["prep"]
    same_step = [r for r in records if r[1][1] == ("pair", "a")]
    assert all(r[1] is same_step[0][1] for r in same_step)  # one header shared per node step


def test_recorder_and_observer_see_the_same_stream():
    records: list[tuple] = []
    events: list[Event] = []
    ctx = Context.background().with_recorder(records.append).with_observer(events.append)
    run(small_flow(), SharedStore(), ctx=ctx)
    materialized = [materialize(r) for r in records]
    assert len(materialized) == len(events)
    for mine, theirs in zip(materialized, events, strict=True):
        assert type(mine) is type(theirs)
        assert mine.path == theirs.path and mine.node_id == theirs.node_id
    assert any(type(e) is StoreChanged and e.key == "b" for e in materialized)


def test_a_recorder_alone_builds_no_event_objects():
    records: list[tuple] = []
    run(small_flow(), SharedStore(), ctx=Context.background().with_recorder(records.append))
    assert not any(isinstance(r, Event) for r in records)


def test_recorder_must_be_callable():
    import pytest

    with pytest.raises(TypeError):
        Context.background().with_recorder("not callable")  # type: ignore[arg-type]


def test_record_of_is_the_inverse_of_materialize():
    records: list[tuple] = []
    run(small_flow(), SharedStore(), ctx=Context.background().with_recorder(records.append))
    for record in records:
        assert record_of(materialize(record)) == record
