"""The timeline as a unit (issue 10): every checkpoint kept, the store at any of them true
to what it was (aliasing), keyframes, diffs, provenance, fork points, a 100k-step run."""

from __future__ import annotations

import copy
import random
import threading

import pytest

from flyt_engine import Flow, Node, SharedStore
from flyt_tui.core import timeline as timeline_module
from flyt_tui.core.session import RunSession
from flyt_tui.core.snapshots import Live, Prefix, ValueSnapshots, WriteFlag, thaw
from flyt_tui.core.timeline import MISSING, Mark, Timeline
from flyt_tui.core.travel import DELETED, Move, Result, Travel


def timeline_of(flow: Node, initial: dict | None = None) -> Timeline:
    """Run ``flow`` as the workbench does (values kept) and fold it into a timeline."""
    session = RunSession(flow, dict(initial or {}), keep_values=True)
    session.run_blocking()
    timeline = Timeline(dict(initial or {}))
    assert session.snapshots is not None
    timeline.ingest(session.drain_records(), session.snapshots.take())
    return timeline


class Appender(Node):
    """Appends to one list in place and sets it again, every turn: the aliasing trap."""

    def __init__(self, turns: int) -> None:
        super().__init__(name="append")
        self.turns = turns

    def post(self, ctx, shared, prep_result, exec_result):
        items = shared.get("items") or []
        items.append(len(items))
        shared["items"] = items
        meta = shared.get("meta") or {}
        meta["turn"] = len(items)
        shared["meta"] = meta
        shared["n"] = len(items)
        return "again" if len(items) < self.turns else "done"


def looping(turns: int) -> Flow:
    node = Appender(turns)
    node - "again" >> node
    return Flow(start=node, name="loop")


def test_a_list_appended_in_place_shows_its_old_contents_at_old_steps():
    timeline = timeline_of(looping(5))
    writes = timeline.provenance("items")
    assert [write.value for write in writes] == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4]]
    assert timeline.store_at(writes[1].checkpoint)["items"] == [0, 1]
    # set again as the same object: marked as changed in place (the first set is not)
    assert [bool(write.flags & WriteFlag.MUTATED) for write in writes] == [False, True, True, True, True]


def test_a_dict_changed_in_place_is_copied_at_each_write():
    timeline = timeline_of(looping(3))
    assert [write.value for write in timeline.provenance("meta")] == [{"turn": 1}, {"turn": 2}, {"turn": 3}]


def test_appended_versions_share_one_shadow_list():
    snapshots = ValueSnapshots()
    items: list[int] = []
    for i in range(100):
        items.append(i)
        snapshots(None, "items", items, False)
    kept = [entry[2] for entry in snapshots.take()]
    assert all(isinstance(value, Prefix) for value in kept)
    assert len({id(value.items) for value in kept}) == 1  # one shadow: an append costs its tail
    assert thaw(kept[9]) == list(range(10))


def test_a_list_changed_other_than_by_appending_gets_a_fresh_copy():
    snapshots = ValueSnapshots()
    items = [1, 2, 3]
    snapshots(None, "items", items, False)
    items[0] = 99
    snapshots(None, "items", items, False)
    first, second = (entry[2] for entry in snapshots.take())
    assert thaw(first) == [1, 2, 3]
    assert thaw(second) == [99, 2, 3]


def test_a_value_that_cannot_be_copied_is_kept_live_and_marked():
    class Unpicklable:
        def __reduce__(self):
            raise TypeError("no")

    snapshots = ValueSnapshots()
    value = Unpicklable()
    snapshots(None, "thing", value, False)
    (entry,) = snapshots.take()
    assert isinstance(entry[2], Live) and thaw(entry[2]) is value
    assert entry[3] & WriteFlag.LIVE


def test_other_objects_are_pickled_at_the_write():
    snapshots = ValueSnapshots()
    value = {1, 2}
    box = [value]
    snapshots(None, "box", box, False)
    snapshots(None, "f", frozenset({3}), False)
    box.append(5)
    (entry, frozen) = snapshots.take()
    assert thaw(entry[2]) == [{1, 2}]
    assert frozen[2] == frozenset({3})


def test_the_store_at_every_checkpoint_matches_what_it_was_with_keyframes(monkeypatch):
    monkeypatch.setattr(timeline_module, "KEYFRAME_EVERY", 16)
    seen: list[dict] = []

    class Writer(Node):
        def post(self, ctx, shared, p, e):
            turn = shared.get("turn", 0) + 1
            shared["turn"] = turn
            if turn % 3 == 0:
                shared.delete("odd")
            else:
                shared[f"k{turn % 5}"] = [turn]
                shared["odd"] = turn
            return "again" if turn < 200 else "done"

    node = Writer(name="writer")
    node - "again" >> node
    flow = Flow(start=node, name="w")
    session = RunSession(flow, {"start": 1}, keep_values=True)

    def deep_copy_of_store(store, key, value, deleted):
        seen.append(copy.deepcopy(store._data))

    session.store.watch(deep_copy_of_store)
    session.run_blocking()
    timeline = Timeline({"start": 1})
    timeline.ingest(session.drain_records(), session.snapshots.take())
    assert len(timeline.keyframes) > 5
    write_checkpoints = list(timeline.write_cp)
    assert len(write_checkpoints) == len(seen)
    for index in random.Random(7).sample(range(len(seen)), 80) + [0, len(seen) - 1]:
        assert timeline.store_at(write_checkpoints[index]) == seen[index]
    assert timeline.store_at(0) == {"start": 1}


def test_every_visit_and_every_attempt_is_a_checkpoint():
    class Flaky(Node):
        max_retries = 3

        def __init__(self):
            super().__init__(name="flaky")
            self.calls = 0

        def exec(self, ctx, prep_result):
            self.calls += 1
            if self.calls < 3:
                raise ValueError(f"attempt {self.calls}")
            return "ok"

        def post(self, ctx, shared, p, e):
            shared["result"] = e

    timeline = timeline_of(Flow(start=Flaky(), name="f"))
    moments = [timeline.moment(i) for i in range(len(timeline))]
    failed = [m for m in moments if m.mark is Mark.ATTEMPT_FAILED]
    assert [m.detail[0] for m in failed] == [1, 2]
    assert failed[0].words == "flaky · attempt 1/3 failed"
    assert timeline.failures == [m.index for m in failed]
    assert [m.words for m in moments if m.node == "flaky"][:3] == [
        "flaky · prep",
        "flaky · exec",
        "flaky · attempt 1/3 failed",
    ]
    assert timeline.steps == 2  # the flow and the node


def test_changed_keys_show_their_previous_value():
    timeline = timeline_of(looping(3), {"n": 0})
    second_post = [i for i in range(len(timeline)) if timeline.moment(i).mark is Mark.POST][1]
    done = next(i for i in range(second_post, len(timeline)) if timeline.moment(i).mark is Mark.DONE)
    changed = timeline.changed_at(done)
    assert changed == {"items": [0], "meta": {"turn": 1}, "n": 1}
    first_write = timeline.write_cp[0]
    assert timeline.changed_at(first_write) == {"items": MISSING}


def test_provenance_names_the_writer_and_the_step():
    class A(Node):
        def post(self, ctx, shared, p, e):
            shared["x"] = 1

    class B(Node):
        def post(self, ctx, shared, p, e):
            shared["x"] = 2

    a, b = A(name="a"), B(name="b")
    a >> b
    timeline = timeline_of(Flow(start=a, name="ab"))
    writes = timeline.provenance("x")
    assert [(write.writer, write.value, write.step) for write in writes] == [(("ab", "a"), 1, 1), (("ab", "b"), 2, 2)]
    assert timeline.writer_at(writes[0].checkpoint) == {"x": ("ab", "a")}
    assert timeline.provenance("never") == []


def test_fork_points_keep_the_recorded_results():
    class Work(Node):
        def prep(self, ctx, shared):
            return {"p": 1}

        def exec(self, ctx, prep_result):
            return prep_result["p"] + 1

        def post(self, ctx, shared, p, e):
            shared["out"] = e

    timeline = timeline_of(Flow(start=Work(name="work"), name="f"))
    marks = {timeline.moment(i).mark: i for i in range(len(timeline)) if timeline.moment(i).node == "work"}
    assert timeline.fork_point(marks[Mark.EXEC]) == (("f", "work"), "exec", {"p": 1}, 2)
    assert timeline.fork_point(marks[Mark.POST])[1:] == ("post", {"p": 1}, 2)
    assert timeline.fork_point(marks[Mark.WRITE])[1] == "post"  # a write in post: the flow's post comes next
    with pytest.raises(LookupError):
        timeline.fork_point(len(timeline) - 1)


class Phased(Node):
    """Writes in prep and post; exec fails once, then works."""

    def __init__(self) -> None:
        super().__init__(name="work", max_retries=2)
        self.calls = 0

    def prep(self, ctx, shared):
        shared["seen"] = True
        return {"p": 1}

    def exec(self, ctx, prep_result):
        self.calls += 1
        if self.calls == 1:
            raise ValueError("first attempt")
        return prep_result["p"] + 1

    def post(self, ctx, shared, p, e):
        shared["out"] = e


def test_results_known_says_which_results_existed_at_each_checkpoint():
    timeline = timeline_of(Flow(start=Phased(), name="f"))
    known = {
        timeline.moment(i).words: timeline.results_known(i)
        for i in range(len(timeline))
        if timeline.moment(i).node == "work"
    }
    assert known == {
        "work · prep": (False, False),
        "work · write seen": (False, False),  # written in prep: prep has not returned yet
        "work · exec": (True, False),
        "work · attempt 1/2 failed": (True, False),
        "work · post": (True, True),
        "work · write out": (True, True),
        "work · done": (True, True),
    }


def test_a_failed_step_knows_the_results_of_the_phases_before_its_failure():
    class Broken(Node):
        def exec(self, ctx, prep_result):
            raise RuntimeError("no")

    timeline = timeline_of(Flow(start=Broken(name="broken"), name="f"))
    failed = next(i for i in range(len(timeline)) if timeline.moment(i).mark is Mark.FAILED)
    assert timeline.moment(failed).node == "broken"
    assert timeline.results_known(failed) == (True, False)


def test_travel_gives_a_fork_the_results_the_user_edited_and_forgets_them_on_a_move():
    timeline = timeline_of(Flow(start=Phased(), name="f"))
    travel = Travel(timeline)
    marks = {timeline.moment(i).words: i for i in range(len(timeline))}
    travel.jump(marks["work · post"])
    point = travel.fork_point()
    assert (point.phase, point.prep_result, point.exec_result, point.results) == (
        "post",
        {"p": 1},
        2,
        (Result.PREP, Result.EXEC),
    )
    assert point.edited == frozenset()
    travel.result_edits[Result.EXEC] = 40
    point = travel.fork_point()
    assert (point.prep_result, point.exec_result, point.edited) == ({"p": 1}, 40, frozenset({Result.EXEC}))
    assert travel.edit_count == 1
    travel.move(Move.BACK)  # the failed attempt
    assert travel.result_edits == {}
    travel.result_edits[Result.EXEC] = 40
    travel.jump(marks["work · exec"])  # before exec: a fork there takes the prep result only
    assert travel.result_edits == {}
    travel.result_edits[Result.EXEC] = 40  # not one this fork uses: ignored
    point = travel.fork_point()
    assert (point.phase, point.results, point.exec_result, point.edited) == ("exec", (Result.PREP,), 2, frozenset())


def test_travel_moves_by_checkpoint_and_by_step_and_keeps_edits_for_a_fork():
    timeline = timeline_of(looping(4))
    travel = Travel(timeline)
    assert travel.live
    travel.move(Move.FIRST)
    assert travel.cursor == 0
    travel.move(Move.STEP_FORWARD)
    assert timeline.moment(travel.cursor).words == "append · prep"
    travel.move(Move.STEP_FORWARD)
    assert travel.position_words() == "viewing step 3/5 (append · prep)"
    travel.move(Move.FORWARD)
    assert timeline.moment(travel.cursor).mark is Mark.EXEC
    travel.move(Move.STEP_BACK)
    assert timeline.moment(travel.cursor).mark is Mark.PREP
    travel.edits["n"] = 100
    travel.edits["items"] = DELETED
    store = travel.store()
    assert store["n"] == 100 and "items" not in store
    travel.move(Move.BACK)
    assert travel.edits == {}  # edits belong to the moment they were made at
    travel.move(Move.LAST)
    assert travel.live


def test_records_of_another_run_are_ignored_and_a_write_without_its_kept_value_is_live():
    timeline = Timeline()
    flow = looping(2)
    session = RunSession(flow, {}, keep_values=True)
    session.run_blocking()
    records = session.drain_records()
    timeline.ingest(records)  # no kept values: each value as it is now, marked live
    assert all(flags & WriteFlag.LIVE for flags in timeline.write_flags)
    other = RunSession(looping(2), {}, keep_values=False)
    other.run_blocking()
    before = len(timeline)
    timeline.ingest(other.drain_records())
    assert len(timeline) == before


def test_a_hundred_thousand_steps_fit_and_seek():
    turns = 100_000
    timeline = timeline_of(looping_scalar(turns))
    assert timeline.steps == turns + 1
    middle = timeline.step_start(turns // 2)
    assert timeline.store_at(middle)["n"] == turns // 2 - 1
    assert timeline.store_at(len(timeline) - 1)["n"] == turns


def looping_scalar(turns: int) -> Flow:
    class Count(Node):
        def post(self, ctx, shared, p, e):
            n = shared.get("n", 0) + 1
            shared["n"] = n
            return "again" if n < turns else "done"

    node = Count(name="count")
    node - "again" >> node
    return Flow(start=node, name="count")


def test_store_watch_sees_writes_in_order_under_threads():
    store = SharedStore()
    seen: list[tuple[str, int]] = []
    store.watch(lambda s, key, value, deleted: seen.append((key, value)))

    def writer(name: str) -> None:
        for i in range(500):
            store.set(name, i)

    threads = [threading.Thread(target=writer, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 2000
    for name in ("t0", "t1", "t2", "t3"):
        assert [value for key, value in seen if key == name] == list(range(500))
