"""describe() and to_mermaid(): a flow's structure as data, and as a Mermaid diagram."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .batch import BatchFlow, BatchNode
from .flow import Flow
from .node import Node


@dataclass
class GraphNode:
    """One node of a graph: ``id`` is ``id()`` of the node object (as in events' ``node_id``)."""

    id: int
    name: str
    kind: str  # "node", "flow", "batch_node" or "batch_flow"
    children: Graph | None = None  # a flow's (or a BatchFlow template's) own graph
    node: Any = field(default=None, repr=False, compare=False)  # the object (keeps ids valid)


@dataclass
class Graph:
    """A flow's graph: its start node's id, its nodes and its action-labelled edges."""

    start: int | None
    nodes: list[GraphNode]
    edges: list[tuple[int, str, int | None]]

    def node(self, node_id: int) -> GraphNode | None:
        """The node with this id in this graph (not in sub-graphs), else ``None``."""
        return next((n for n in self.nodes if n.id == node_id), None)

    def edges_from(self, node_id: int) -> list[tuple[str, int | None]]:
        """``(action, target id)`` of every edge leaving ``node_id``, in connection order."""
        return [(action, dst) for src, action, dst in self.edges if src == node_id]


def kind_of(node: Node) -> str:
    """The graph kind of a node object."""
    if isinstance(node, BatchFlow):
        return "batch_flow"
    if isinstance(node, BatchNode):
        return "batch_node"
    if isinstance(node, Flow):
        return "flow"
    return "node"


def describe(flow_or_node: Node) -> Graph:
    """The graph of a flow (its start, nodes and edges; sub-flows nested as ``children``),
    or a one-node graph for a single node. Cycles appear once; a flow that contains
    itself shows the inner reference with ``children=None``. A BatchFlow's factory is
    called once to draw its template. Raises ``TypeError`` for a non-node.
    """
    if not isinstance(flow_or_node, Node):
        raise TypeError(f"describe() takes a Node or Flow, not {type(flow_or_node).__name__}")
    if isinstance(flow_or_node, Flow):
        return _describe_flow(flow_or_node, (id(flow_or_node),))
    return Graph(id(flow_or_node), [_graph_node(flow_or_node, ())], [])


def _describe_flow(flow: Flow, stack: tuple[int, ...]) -> Graph:
    order = flow.members()
    edges = [
        (id(node), action, None if target is None else id(target))
        for node in order
        for action, target in flow.successors(node).items()
    ]
    start = id(flow.start) if flow.start is not None else None
    return Graph(start, [_graph_node(node, stack) for node in order], edges)


def _graph_node(node: Node, stack: tuple[int, ...]) -> GraphNode:
    kind = kind_of(node)
    children: Graph | None = None
    if isinstance(node, Flow) and id(node) not in stack:
        children = _describe_flow(node, stack + (id(node),))
    elif isinstance(node, BatchFlow):
        template = node.make_flow()
        if isinstance(template, Flow):
            children = _describe_flow(template, stack + (id(node),))
        else:
            children = Graph(id(template), [_graph_node(template, stack)], [])
    return GraphNode(id(node), node.name, kind, children, node)


def to_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart`` of ``graph``: names as labels, actions on the edges,
    sub-flows as subgraphs, ``None`` targets as end markers. Nodes are numbered ``n1``,
    ``n2``… in the order they are drawn, so the same flow gives the same text every time."""
    lines = ["flowchart TD"]
    ends = 0
    numbers: dict[int, str] = {}

    def ident(node_id: int | None) -> str:
        found = numbers.get(node_id)  # type: ignore[arg-type]
        if found is None:
            found = numbers[node_id] = f"n{len(numbers) + 1}"  # type: ignore[index]
        return found

    def label(text: str) -> str:
        return text.replace('"', "#quot;")

    def emit(g: Graph, indent: str) -> None:
        nonlocal ends
        for n in g.nodes:
            if n.children is not None:
                lines.append(f'{indent}subgraph {ident(n.id)}["{label(n.name)} ({n.kind})"]')
                emit(n.children, indent + "    ")
                lines.append(f"{indent}end")
            else:
                shape = ("[[", "]]") if n.kind == "batch_node" else ("[", "]")
                lines.append(f'{indent}{ident(n.id)}{shape[0]}"{label(n.name)}"{shape[1]}')
        for src, action, dst in g.edges:
            if dst is None:
                ends += 1
                lines.append(f"{indent}end{ends}(((end)))")
                target = f"end{ends}"
            else:
                target = ident(dst)
            lines.append(f'{indent}{ident(src)} -->|"{label(action)}"| {target}')

    emit(graph, "    ")
    if graph.start is not None:
        lines.append(f"    style {ident(graph.start)} stroke-width:3px")
    return "\n".join(lines) + "\n"
