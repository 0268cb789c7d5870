"""RunView, without a terminal: records in, coalesced ticks out when they are due."""

from __future__ import annotations

from flyt_engine import Context, Flow, Node, SharedStore, run
from flyt_tui.view import RunView


def recorded(steps: int) -> list:
    records: list = []
    count = Node(post=lambda ctx, s, p, e: "again" if s.update("n", lambda v: v + 1, 0) < steps else None, name="c")
    flow = Flow(count, name="loop").connect(count, "again", count)
    run(flow, SharedStore(), ctx=Context.background().with_recorder(records.append))
    return records


def test_changes_are_coalesced_until_due_and_at_once_when_urgent():
    records = recorded(50)
    view = RunView(apply_every=0.1)
    view.ingest(records[:20])
    first = view.take_due(10.0, urgent=False)
    assert first is not None and first.count == 20
    view.ingest(records[20:40])
    view.ingest(records[40:])
    assert view.take_due(10.05, urgent=False) is None  # not yet: 50 ms since the last
    due = view.take_due(10.06, urgent=True)  # paused or finished: now
    assert due is not None and due.count == len(records) - 20
    assert due.store["n"].value == 50
    assert view.history.steps == 51  # 50 loop steps and the flow's own
    assert view.take_due(11.0, urgent=True) is None  # nothing left


def test_events_wait_for_the_events_tab_and_reset_clears_them():
    view = RunView()
    view.ingest(recorded(3))
    assert view.take_due(5.0, urgent=True) is not None
    events = view.take_events()
    assert events and all(event is not None for event, _ in events)
    assert view.take_events() == []
    view.ingest(recorded(3))
    view.take_due(6.0, urgent=True)
    history = view.reset()
    assert history is view.history and history.steps == 0
    assert view.take_events() == []


def test_a_run_that_outpaces_the_screen_is_shown_less_often():
    """While the run waits for the UI (``behind``), a frame costs the run what folding
    records does: the changes are shown every APPLY_BEHIND_SECONDS instead."""
    from flyt_tui.view import APPLY_BEHIND_SECONDS

    records = recorded(30)
    view = RunView(apply_every=0.1)
    view.ingest(records[:10])
    assert view.take_due(10.0, urgent=False, behind=True) is not None
    view.ingest(records[10:20])
    assert view.take_due(10.2, urgent=False, behind=True) is None
    assert view.take_due(10.2, urgent=False) is not None  # caught up: the usual rate again
    view.ingest(records[20:])
    assert view.take_due(10.2 + APPLY_BEHIND_SECONDS / 2, urgent=False, behind=True) is None
    assert view.take_due(10.2 + APPLY_BEHIND_SECONDS, urgent=False, behind=True) is not None
