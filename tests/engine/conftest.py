"""Engine test fixtures: ``each_driver`` runs a test under every way of driving a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import flyt_engine.node as node_module
from flyt_engine import Context


class DisarmedGate:
    """A gate that never pauses: the workbench's gate between breakpoints."""

    armed = False

    def __call__(self, record: Any) -> None:  # pragma: no cover - never called while disarmed
        raise AssertionError("a disarmed gate was called")


DRIVERS = ["background", "recorder", "observer", "disarmed_gate"]


@pytest.fixture(params=DRIVERS)
def each_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Make ``Context.background()`` (and ``run``'s default context) an unobserved context,
    a recorder's, an observer's, or one with a disarmed gate: the same behaviour tests then
    cover the unobserved and the observed drivers alike."""
    kind = request.param
    if kind != "background":
        sink: list[Any] = []
        base = Context()
        if kind == "recorder":
            ctx = base.with_recorder(sink.append)
        elif kind == "observer":
            ctx = base.with_observer(sink.append)
        else:
            ctx = base.with_recorder(sink.append).with_gate(DisarmedGate())
        monkeypatch.setattr(node_module, "_BACKGROUND", ctx)
        monkeypatch.setattr(Context, "background", classmethod(lambda cls: ctx))
    yield kind
