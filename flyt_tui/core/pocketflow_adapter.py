"""PocketFlow modules in the workbench: a ``pocketflow.Flow`` turned into a Flyt flow.

Duck-typed (``pocketflow`` is the user's dependency, never ours): an object is one of
PocketFlow's when a class of its MRO is defined in a module named ``pocketflow``. Each
PocketFlow node becomes a Flyt node that calls the original's methods, so the user's code
runs unmodified, on our ``SharedStore`` (a dict-like store: ``shared["k"]``, ``get``,
``in``, ``setdefault`` … and every write is seen by the workbench):

- ``Node``: ``prep(shared)``, ``exec(prep_res)``, ``post(shared, prep_res, exec_res)``;
  ``max_retries`` attempts ``wait`` seconds apart, then ``exec_fallback(prep_res, exc)``
  (PocketFlow's semantics, which are ours); ``cur_retry`` is set before each attempt.
- ``BatchNode``: its ``prep`` returns the items, ``exec`` runs per item with the retries
  and fallback per item, ``post`` gets the items and the results (no ``results`` key is
  written: PocketFlow does not write one).
- ``Flow``: its successors (``>>``, ``- "action" >>``) become our connections; a flow
  nested in a flow is a sub-flow; its own ``prep``/``post`` run around the orchestration.
- ``BatchFlow``: its ``prep`` returns the params of each iteration; the inner flow runs
  once per entry with those ``params`` set on its nodes, on the one shared store, as
  PocketFlow does (the workbench shows the inner nodes' visits, not a batch bar).
- ``params`` are carried as PocketFlow carries them (from a flow to its nodes).
- The async classes map the same way onto ``async def`` phases: ``AsyncNode``
  (``prep_async``, ``exec_async``, ``exec_fallback_async``, ``post_async``),
  ``AsyncBatchNode`` (items one after another), ``AsyncParallelBatchNode`` (every item
  at once, as ``asyncio.gather``), ``AsyncFlow`` and ``AsyncBatchFlow``.
  ``AsyncParallelBatchFlow`` runs its iterations one after another: PocketFlow copies the
  nodes of each iteration to give each its params, and the workbench runs the user's own
  node objects.

Not mapped: PocketFlow's copying of each node before it runs (the same node object runs
every visit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyt_engine import BatchNode, Context, Flow, Node, SharedStore


class PocketFlowError(Exception):
    """A PocketFlow object the workbench cannot open (said in words)."""


def _classes(value: Any) -> set[str]:
    """Names of the PocketFlow classes ``value`` is an instance of (empty: not PocketFlow's)."""
    try:
        mro = type(value).__mro__
    except Exception:
        return set()
    return {cls.__name__ for cls in mro if (getattr(cls, "__module__", "") or "").split(".")[0] == "pocketflow"}


def is_pocketflow_node(value: Any) -> bool:
    return "BaseNode" in _classes(value)


def is_pocketflow_flow(value: Any) -> bool:
    return "Flow" in _classes(value)


def convert(root: Any, names: Mapping[int, str] | None = None) -> Node:
    """Our node for PocketFlow's ``root`` (and everything it reaches); ``names`` maps
    ``id()`` of PocketFlow objects to the module variables that hold them."""
    return _Converter(dict(names or {})).node(root)


class _Converter:
    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.done: dict[int, Node] = {}
        self.used: set[str] = set()

    def name_of(self, pf: Any) -> str:
        base = self.names.get(id(pf)) or type(pf).__name__
        name, counter = base, 1
        while name in self.used:
            counter += 1
            name = f"{base}_{counter}"
        self.used.add(name)
        return name

    def node(self, pf: Any) -> Node:
        known = self.done.get(id(pf))
        if known is not None:
            return known
        kinds = _classes(pf)
        name = self.name_of(pf)
        made: Node
        if "AsyncBatchFlow" in kinds or "AsyncParallelBatchFlow" in kinds:
            made = PocketAsyncBatchFlow(pf, name)
        elif "AsyncFlow" in kinds:
            made = PocketAsyncFlow(pf, name)
        elif "BatchFlow" in kinds:
            made = PocketBatchFlow(pf, name)
        elif "Flow" in kinds:
            made = PocketFlow(pf, name)
        elif "AsyncParallelBatchNode" in kinds or "AsyncBatchNode" in kinds:
            made = PocketAsyncBatchNode(pf, name, concurrent="AsyncParallelBatchNode" in kinds)
        elif "AsyncNode" in kinds:
            made = PocketAsyncNode(pf, name)
        elif "BatchNode" in kinds:
            made = PocketBatchNode(pf, name)
        elif "BaseNode" in kinds:
            made = PocketNode(pf, name)
        else:
            raise PocketFlowError(f"{name} is {type(pf).__name__}, not a PocketFlow node")
        self.done[id(pf)] = made
        if isinstance(made, PocketFlow):
            self.connect(made, pf)
        return made

    def connect(self, flow: PocketFlow, pf_flow: Any) -> None:
        """The PocketFlow successors reachable from the flow's start, as our connections."""
        start = getattr(pf_flow, "start_node", None)
        if start is None:
            return
        flow.start = self.node(start)
        pending, seen = [start], set()
        while pending:
            current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            successors = getattr(current, "successors", None) or {}
            for action, target in list(successors.items()):
                flow.connect(self.node(current), str(action), self.node(target))
                pending.append(target)


def _tries(pf: Any) -> tuple[int, float]:
    try:
        return max(1, int(getattr(pf, "max_retries", 1))), max(0.0, float(getattr(pf, "wait", 0) or 0))
    except (TypeError, ValueError):
        return 1, 0.0


class PocketNode(Node):
    """A PocketFlow ``Node`` run by the engine: its methods, our retries and events."""

    def __init__(self, pf: Any, name: str) -> None:
        attempts, wait = _tries(pf)
        super().__init__(name=name, max_retries=attempts, wait=wait)
        self.pf = pf
        self.params: dict[str, Any] = dict(getattr(pf, "params", None) or {})
        self._attempt = 0

    def _with_params(self) -> Any:
        pf = self.pf
        pf.params = self.params
        return pf

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self._attempt = 0
        return self._with_params().prep(shared)

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        pf = self._with_params()
        pf.cur_retry, self._attempt = self._attempt, self._attempt + 1
        return pf.exec(prep_result)

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        return self._with_params().exec_fallback(prep_result, error)

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
        return self._with_params().post(shared, prep_result, exec_result)


class PocketBatchNode(BatchNode):
    """A PocketFlow ``BatchNode``: ``prep`` gives the items, ``exec`` runs per item."""

    def __init__(self, pf: Any, name: str) -> None:
        attempts, wait = _tries(pf)
        super().__init__(name=name, max_retries=attempts, wait=wait)
        self.pf = pf
        self.params: dict[str, Any] = dict(getattr(pf, "params", None) or {})

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self.pf.params = self.params
        return list(self.pf.prep(shared) or [])

    def process(self, ctx: Context, item: Any) -> Any:
        return self.pf.exec(item)

    def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        return self.pf.exec_fallback(prep_result, error)

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
        return self.pf.post(shared, prep_result, list(exec_result))

    def _write(self, shared: SharedStore, results: Any, count: int | None = None) -> None:
        """PocketFlow writes no results key: ``post`` gets the results and decides."""


class PocketFlow(Flow):
    """A PocketFlow ``Flow``: its nodes connected as its successors say."""

    def __init__(self, pf: Any, name: str) -> None:
        super().__init__(name=name)
        self.pf = pf
        self.params: dict[str, Any] = dict(getattr(pf, "params", None) or {})
        self._prep_result: Any = None

    def set_params(self, params: dict[str, Any]) -> None:
        """PocketFlow's ``set_params``: the params reach this flow's nodes (and sub-flows')."""
        self.params = params
        for member in self.members():
            if isinstance(member, PocketFlow):
                member.set_params(params)
            elif isinstance(member, (PocketNode, PocketBatchNode)):  # their async kinds too
                member.params = params

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self.pf.params = self.params
        self.set_params(self.params)
        self._prep_result = self.pf.prep(shared)
        return shared

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
        return self.pf.post(shared, self._prep_result, exec_result)


class PocketBatchFlow(PocketFlow):
    """A PocketFlow ``BatchFlow``: the inner flow once per params entry its ``prep`` returns."""

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self.pf.params = self.params
        self._prep_result = list(self.pf.prep(shared) or [])
        return shared

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        base = dict(self.params)
        for entry in self._prep_result:
            self.set_params({**base, **dict(entry)})
            self._orchestrate(ctx, prep_result)
        self.params = base
        return None

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:
        return self.pf.post(shared, self._prep_result, None)


# -- the async classes ------------------------------------------------------------------------
class PocketAsyncNode(PocketNode):
    """A PocketFlow ``AsyncNode``: its ``*_async`` methods as our ``async def`` phases."""

    async def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self._attempt = 0
        return await self._with_params().prep_async(shared)

    async def exec(self, ctx: Context, prep_result: Any) -> Any:
        pf = self._with_params()
        pf.cur_retry, self._attempt = self._attempt, self._attempt + 1
        return await pf.exec_async(prep_result)

    async def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        return await self._with_params().exec_fallback_async(prep_result, error)

    async def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:  # type: ignore[override]
        return await self._with_params().post_async(shared, prep_result, exec_result)


class PocketAsyncBatchNode(PocketBatchNode):
    """``AsyncBatchNode`` (items in order) and ``AsyncParallelBatchNode`` (all at once)."""

    def __init__(self, pf: Any, name: str, *, concurrent: bool) -> None:
        super().__init__(pf, name)
        self.concurrent = concurrent
        self.config.concurrency = 0  # PocketFlow gathers every item: no bound

    async def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self.pf.params = self.params
        return list(await self.pf.prep_async(shared) or [])

    async def process(self, ctx: Context, item: Any) -> Any:
        return await self.pf.exec_async(item)

    async def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        return await self.pf.exec_fallback_async(prep_result, error)

    async def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:  # type: ignore[override]
        return await self.pf.post_async(shared, prep_result, list(exec_result))


class PocketAsyncFlow(PocketFlow):
    """A PocketFlow ``AsyncFlow``: ``prep_async`` and ``post_async`` around its nodes."""

    async def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self.pf.params = self.params
        self.set_params(self.params)
        self._prep_result = await self.pf.prep_async(shared)
        return shared

    async def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:  # type: ignore[override]
        return await self.pf.post_async(shared, self._prep_result, exec_result)


class PocketAsyncBatchFlow(PocketAsyncFlow):
    """``AsyncBatchFlow`` (and ``AsyncParallelBatchFlow``, one iteration after another)."""

    async def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self.pf.params = self.params
        self._prep_result = list(await self.pf.prep_async(shared) or [])
        return shared

    async def exec(self, ctx: Context, prep_result: Any) -> Any:
        base = dict(self.params)
        for entry in self._prep_result:
            self.set_params({**base, **dict(entry)})
            await self._aexec(ctx, prep_result)
        self.params = base
        return None

    async def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> Any:  # type: ignore[override]
        return await self.pf.post_async(shared, self._prep_result, None)
