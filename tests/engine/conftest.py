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


WIRINGS = ["connect", "rshift"]


@pytest.fixture(params=WIRINGS)
def each_wiring(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Build the flows of a test with ``flow.connect(src, action, dst)`` or, rewired, with
    PocketFlow's ``src - action >> dst``: every flow rule holds for both spellings.
    (``dst=None`` ends a flow, which ``>>`` cannot say: it stays a ``connect``.)"""
    from flyt_engine import Flow, Node

    if request.param == "rshift":
        original = Flow.connect

        def connect_by_rshift(self: Flow, src: Any, action: Any, dst: Any) -> Flow:
            if not isinstance(src, Node) or not isinstance(dst, Node) or not isinstance(action, str):
                return original(self, src, action, dst)  # None ends, and the argument errors
            if self._transitions.get(id(src), {}).get(action or "default", dst) is not dst:
                return original(self, src, action, dst)  # rewiring in this flow: its own connect wins
            if action in ("", "default"):
                src >> dst
            else:
                src - action >> dst
            self._sources[id(src)] = src  # members() lists connected nodes the start cannot reach
            return self

        monkeypatch.setattr(Flow, "connect", connect_by_rshift)
    yield request.param


STYLES = ["sync", "async"]
_USER_PHASES = ("prep", "exec", "post", "exec_fallback", "process", "batch_func")


def _as_coroutine_function(fn: Any) -> Any:
    async def phase(*args: Any) -> Any:
        return fn(*args)

    phase.__wrapped__ = fn  # type: ignore[attr-defined]
    return phase


def asyncify(node: Any) -> None:
    """Make every plain phase the user wrote for ``node`` an ``async def`` doing the same."""
    from flyt_engine.phases import async_phases, is_async

    config = getattr(node, "config", None)
    if config is not None and config.executor is not None:
        return  # an executor runs plain functions: async process there is refused (test_async.py)
    for phase in _USER_PHASES:
        fn = getattr(node, phase, None)
        if fn is None or is_async(fn):
            continue
        owner = getattr(fn, "__func__", fn)
        if getattr(owner, "__module__", "").startswith("flyt_engine"):
            continue  # the engine's own phase (a flow's, a batch's, the defaults)
        if getattr(owner, "_writes_results", False):
            continue  # a batch subclass's post, already wrapped by the engine
        setattr(node, phase, _as_coroutine_function(fn))
    found = async_phases(node, tuple(p for p in _USER_PHASES if hasattr(node, p)))
    if "batch_func" in found:
        found |= {"prep"}
    node._async = frozenset(found)


@pytest.fixture(params=STYLES)
def each_style(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test's nodes as written, or with every phase the test wrote turned into an
    ``async def`` (the run then goes through the async drivers): every rule of API.md
    holds for async phases as for sync ones."""
    if request.param == "async":
        from flyt_engine import BatchFlow, BatchNode, Node
        from flyt_engine.batch import _BatchBase

        def patched(cls: type, batch: bool) -> None:
            original = cls.__init__  # type: ignore[misc]

            def init(self: Any, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                if batch or not isinstance(self, _BatchBase):  # a batch: once it is configured
                    asyncify(self)

            monkeypatch.setattr(cls, "__init__", init)

        patched(Node, batch=False)
        patched(BatchNode, batch=True)
        patched(BatchFlow, batch=True)
    yield request.param
