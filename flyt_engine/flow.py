"""Flow: nodes connected by actions; itself a node, so flows nest."""

from __future__ import annotations

from typing import Any

from . import node as _node_module
from .context import Context
from .errors import FlytError
from .node import DEFAULT_ACTION, Node, drive, drive_observed
from .store import SharedStore


class Flow(Node):
    """Runs its start node, follows the returned action to the next node, and repeats
    until an action has no transition or leads to ``None``.

    Transitions live on the flow, keyed by node identity, so one node object may sit in
    several flows. As a node, a flow's ``prep`` returns the shared store, ``exec``
    orchestrates on that same store and ``post`` returns the last node's action, which
    routes the enclosing flow. ``max_retries`` on a flow re-runs the whole flow.
    """

    _composite = True

    def __init__(
        self,
        start: Node | None = None,
        *,
        name: str | None = None,
        max_retries: int | None = None,
        wait: float | None = None,
    ) -> None:
        super().__init__(name=name, max_retries=max_retries, wait=wait)
        self.start = start
        # id(src) -> {action: dst}; _sources keeps the src objects (and their ids) alive.
        self._transitions: dict[int, dict[str, Node | None]] = {}
        self._sources: dict[int, Node] = {}
        # See _route_table: (fast table, keyed by id?, id-keyed table, successor version).
        self._routes: tuple[dict[Any, dict[str, Node | None]], bool, dict[int, dict[str, Node | None]], int] | None = (
            None
        )

    @property
    def start(self) -> Node | None:
        """The node the flow runs first (``None`` until set; running then raises ``FlytError``)."""
        return self._start

    @start.setter
    def start(self, node: Node | None) -> None:
        if node is not None and not isinstance(node, Node):
            raise TypeError(f"Flow start must be a Node, not {type(node).__name__}")
        self._start = node
        self._routes = None
        _node_module._successors_changed()  # enclosing flows ask again whether they hold async nodes

    def connect(self, src: Node, action: str, dst: Node | None) -> Flow:
        """Route ``action`` returned by ``src`` to ``dst`` (``None`` ends the flow). Chainable.

        Connecting the same ``(src, action)`` again replaces the target.
        """
        if not isinstance(src, Node):
            raise TypeError(f"connect: src must be a Node, not {type(src).__name__}")
        if dst is not None and not isinstance(dst, Node):
            raise TypeError(f"connect: dst must be a Node or None, not {type(dst).__name__}")
        if not isinstance(action, str):
            raise TypeError(f"connect: action must be a str, not {type(action).__name__}")
        self._sources[id(src)] = src
        self._routes = None
        _node_module._successors_changed()
        self._transitions.setdefault(id(src), {})[action or DEFAULT_ACTION] = dst
        return self

    def successors(self, node: Node) -> dict[str, Node | None]:
        """``node``'s transitions in this flow (a copy): action → next node (or ``None``).

        The node's own successors (``a >> b``) are included; this flow's ``connect`` for
        the same action wins.
        """
        merged = dict(node._successors or ())
        merged.update(self._transitions.get(id(node), ()))
        return merged

    def members(self) -> list[Node]:
        """Every node of this flow, once, in a stable order: those reachable from ``start``
        (depth first, in connection order), then connected nodes it cannot reach.
        Sub-flows are members; their own nodes are not."""
        seen: dict[int, Node] = {}
        order: list[Node] = []

        def visit(first: Node) -> None:
            stack = [first]
            while stack:
                node = stack.pop()
                if id(node) in seen:
                    continue
                seen[id(node)] = node
                order.append(node)
                targets = [t for t in self.successors(node).values() if t is not None]
                stack.extend(reversed(targets))

        if self.start is not None:
            visit(self.start)
        for source in list(self._sources.values()):
            visit(source)
        return order

    _async_known: tuple[int, bool] | None = None  # (successor version, has async nodes)

    def _has_async(self) -> bool:
        """Whether a node of this flow, or of a flow in it, has ``async def`` phases (then
        ``run`` runs the flow on an event loop). Asked once per graph change."""
        version = _node_module.successor_version[0]
        known = self._async_known
        if known is not None and known[0] == version:
            return known[1]
        self._async_known = (version, False)  # a flow that contains itself: no loop forever
        answer = any(_node_module.needs_loop(member) for member in self.members() if member is not self)
        self._async_known = (version, answer)
        return answer

    def nodes(self) -> list[Node]:
        """Every node reachable from ``start`` in this flow (not descending into sub-flows)."""
        seen: dict[int, Node] = {}
        stack = [self.start] if self.start is not None else []
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen[id(node)] = node
            targets = self.successors(node).values()
            stack.extend(t for t in reversed(list(targets)) if t is not None)
        return list(seen.values())

    # -- the node interface ---------------------------------------------------------------
    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        """A flow prepares nothing: its nodes read the store themselves."""
        return shared

    def exec(self, ctx: Context, prep_result: Any) -> Any:
        """Orchestrate the flow on the store ``prep`` returned; return the last action."""
        return self._orchestrate(ctx, prep_result)

    exec._engine_exec = True  # type: ignore[attr-defined]  # aio.py: orchestrated by _aexec

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> str | None:
        """The action of the last node that ran routes the enclosing flow."""
        return exec_result

    # -- orchestration --------------------------------------------------------------------
    def _route_table(self) -> tuple[dict[Any, dict[str, Node | None]], bool, dict[int, dict[str, Node | None]], int]:
        """The transitions as the drivers read them fastest, own successors (``>>``) merged
        in: keyed by the node objects when every source compares by identity (else by
        ``id()``), plus the ``id()``-keyed table of observed runs. Rebuilt after ``connect``
        or any ``>>``."""
        version = _node_module.successor_version[0]
        by_id_table: dict[int, dict[str, Node | None]] = {}
        sources: dict[int, Node] = {}
        pending = list(self._sources.values())
        if self.start is not None:
            pending.append(self.start)
        while pending:
            node = pending.pop()
            if id(node) in sources:
                continue
            sources[id(node)] = node
            routes = self.successors(node)
            if routes:
                by_id_table[id(node)] = routes
                pending.extend(t for t in routes.values() if t is not None)
        if all(type(src).__eq__ is object.__eq__ and type(src).__hash__ is object.__hash__ for src in sources.values()):
            fast: dict[Any, dict[str, Node | None]] = {sources[key]: succ for key, succ in by_id_table.items()}
            table = (fast, False, by_id_table, version)
        else:
            table = (dict(by_id_table), True, by_id_table, version)
        self._routes = table
        return table

    def _orchestrate(self, ctx: Context, shared: SharedStore) -> str:
        start = self.start
        if start is None:
            raise FlytError(f"flow {self.name!r} has no start node")
        routes = self._routes
        if routes is None or routes[3] != _node_module.successor_version[0]:
            routes = self._route_table()
        if ctx._emit is None:
            return drive(start, ctx, shared, routes[0], routes[1])
        return drive_observed(start, ctx, shared, routes[2], ctx._path)

    async def _aexec(self, ctx: Context, shared: SharedStore) -> str:
        """``exec`` in a run on an event loop: the same orchestration, awaited (aio.py)."""
        from .aio import adrive, adrive_observed

        start = self.start
        if start is None:
            raise FlytError(f"flow {self.name!r} has no start node")
        routes = self._routes
        if routes is None or routes[3] != _node_module.successor_version[0]:
            routes = self._route_table()
        if ctx._emit is None:
            return await adrive(start, ctx, shared, routes[0], routes[1])
        return await adrive_observed(start, ctx, shared, routes[2], ctx._path)
