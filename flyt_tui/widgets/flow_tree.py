"""The flow as a tree: start node first, edges labelled by action, live node states.

Layout (a depth-first walk from the start node): a node's children are its outgoing
edges, each line reading ``action → target`` and expanding into the target; a sub-flow
or a BatchFlow template opens with its own start node (``⤷ name``). A target already
shown elsewhere is a reference leaf (``↺ name``), so loops never recurse, and a ``None``
target is an end (``■ end``). Every line that shows a node carries its live state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from flyt_engine.graph import Graph, GraphNode, kind_of
from flyt_engine.node import Node

from ..core.format import error_line, format_duration, user_error
from ..core.history import UNTIMED, NodeKey, NodeRecord, NodeState, RunHistory

_BADGES = {"flow": "flow", "batch_node": "batch", "batch_flow": "batch flow"}
_ICONS = {
    NodeState.PENDING: ("○", "dim"),
    NodeState.RUNNING: ("▶", "bold yellow"),
    NodeState.RETRYING: ("↻", "bold dark_orange"),
    NodeState.DONE: ("✓", "green"),
    NodeState.FAILED: ("✗", "bold red"),
    NodeState.STOPPED: ("■", "red"),
}
_PAUSED_STYLE = "bold black on yellow"
DETAIL_ROOM = 34  # cells kept beside a line for what a run adds to it
MAX_NESTING = 24  # successor lines nest this deep at most, then continue side by side
_CURRENT_STYLE = "on #4d4300"


@dataclass(eq=False)
class TreeItem:
    """What one tree line shows."""

    kind: str  # "node" (a node's own line), "ref" (↺ a node shown elsewhere), "end", "note"
    name: str
    key: NodeKey | None = None
    graph_kind: str = "node"
    edge: tuple[NodeKey, str] | None = None  # (source node key, action) for edge lines
    inner_start: bool = False  # the start node of a sub-flow or batch template
    ident: tuple[tuple[str, str], ...] = ()  # stable identity across reloads: (edge, name) from the root


@dataclass
class PausePoint:
    """Where the run is paused, as the tree shows it."""

    key: NodeKey
    text: str  # "paused before exec", "paused after post → valid", ...


# (parent line, graph, node or None for an end, edge, inner start?, base path, inside a batch template?)
_Frame = tuple[TreeNode[TreeItem], Graph, GraphNode | None, tuple[NodeKey, str] | None, bool, tuple[str, ...], bool]


class FlowTree(Tree[TreeItem]):
    """The graph of the open flow, with each node's state, breakpoint and the path taken."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("no flow loaded", style="dim"), id=id)
        self.guide_depth = 3
        self.auto_expand = False
        self.history: RunHistory | None = None
        self.breakpoints: set[str] = set()
        self.pause: PausePoint | None = None
        self.stable = False
        self.root_key: NodeKey | None = None
        self._by_key: dict[NodeKey, list[TreeNode[TreeItem]]] = {}
        self._by_src: dict[NodeKey, list[TreeNode[TreeItem]]] = {}
        self._by_name: dict[str, list[TreeNode[TreeItem]]] = {}
        self._by_ident: dict[tuple[tuple[str, str], ...], TreeNode[TreeItem]] = {}
        self._depth: dict[int, int] = {}  # id(line) -> its nesting depth, while a graph is drawn
        self._objects: dict[NodeKey, Node] = {}  # key -> the node object of the graph on show
        self.node_names: set[str] = set()

    # -- building --------------------------------------------------------------------------
    def show_graph(self, flow: Node, graph: Graph) -> None:
        """Show ``flow`` (its ``describe()`` graph), keeping expansion and cursor where names survive."""
        collapsed = {ident for ident, line in self._by_ident.items() if line.allow_expand and not line.is_expanded}
        cursor = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self._by_key.clear()
        self._by_src.clear()
        self._by_name.clear()
        self._by_ident.clear()
        self._objects.clear()
        self.node_names = set()
        self.pause = None

        root_kind = kind_of(flow)
        root_path = (flow.name,)
        self.root_key = (root_path, id(flow))
        self._objects[self.root_key] = flow
        root = self.root
        root.data = TreeItem("node", flow.name, self.root_key, root_kind, ident=(("^", flow.name),))
        self._index(root)
        shown: dict[NodeKey, TreeNode[TreeItem]] = {self.root_key: root}  # node lines drawn so far
        if root_kind in ("flow", "batch_flow") and graph.nodes:
            if root_kind == "flow":
                self._add_graph(root, graph, root_path, False, shown)
            else:
                inner = graph.nodes[0].children
                if inner is not None:
                    self._add_graph(root, inner, root_path, True, shown)
        root.expand_all()
        for ident in collapsed:
            line = self._by_ident.get(ident)
            if line is not None:
                line.collapse()
        self.relabel_all()
        target = None
        if cursor is not None:
            target = self._by_ident.get(cursor.ident)
            if target is None and cursor.key is not None:
                target = next((line for line in self._by_name.get(cursor.name, ()) if _item(line).kind == "node"), None)
        _ = self.last_line  # build the lines now: the cursor goes by line number
        self.move_cursor(target or root, animate=False)

    def render_label(self, node: TreeNode[TreeItem], base_style: Style, style: Style) -> Text:
        """The line's label, cut with … where the pane ends (a Tree would crop it silently)."""
        text = super().render_label(node, base_style, style)
        room = self.scrollable_content_region.width
        if room <= 0:
            return text
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        room -= depth * self.guide_depth
        if room > 1 and text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        return text

    def wanted_width(self) -> int:
        """Cells the graph needs: its widest line without run details, plus room for them
        (``→ default  12ms  ×3``, ``paused before exec``) and the border."""
        widest = 0
        for line in self._by_ident.values():
            depth = 0
            parent = line.parent
            while parent is not None:
                depth += 1
                parent = parent.parent
            label = self.label_for(_item(line)).plain
            widest = max(widest, depth * self.guide_depth + 2 + len(label))
        return widest + DETAIL_ROOM + 4

    def show_message(self, title: str, lines: Iterable[str] = (), style: str = "bold red") -> None:
        """Replace the graph with a message (a load error before any graph was shown)."""
        self.clear()
        for index in (self._by_key, self._by_src, self._by_name, self._by_ident):
            index.clear()
        self.root_key = None
        self.node_names = set()
        self.root.set_label(Text(title, style=style))
        self.root.data = TreeItem("note", title)
        for line in lines:
            self.root.add_leaf(Text(line, style="red"), TreeItem("note", line))
        self.root.expand()

    def _add_graph(
        self,
        parent: TreeNode[TreeItem],
        graph: Graph,
        base: tuple[str, ...],
        in_batch: bool,
        shown: dict[NodeKey, TreeNode[TreeItem]],
    ) -> None:
        """Add ``graph`` under ``parent``: a depth-first walk from its start, then what it never reached.

        Iterative (an explicit stack), so a long chain of nodes cannot exhaust recursion.
        """
        stack: list[_Frame] = []
        stack.extend(reversed(self._graph_frames(parent, graph, base, in_batch)))
        if parent is self.root:
            self._depth = {id(parent): 0}
        while stack:
            line_parent, g, node, edge, inner_start, base, in_batch = stack.pop()
            parent_ident = line_parent.data.ident if line_parent.data is not None else ()
            if node is None:  # an edge to None: the end of the flow
                assert edge is not None
                item = TreeItem("end", "end", None, "end", edge, ident=(*parent_ident, (edge[1], "■")))
                self._index(line_parent.add_leaf(Text("end"), item))
                continue
            key: NodeKey = ((*base, node.name), 0 if in_batch else node.id)
            if edge is None and not inner_start and key in shown:
                continue  # a node the walk from the start already reached
            ident = (*parent_ident, (edge[1] if edge else "^", node.name))
            if key in shown:
                item = TreeItem("ref", node.name, key, node.kind, edge, ident=ident)
                self._index(line_parent.add_leaf(Text(node.name), item))
                continue
            item = TreeItem("node", node.name, key, node.kind, edge, inner_start, ident)
            if node.node is not None:
                self._objects[key] = node.node
            line = line_parent.add(Text(node.name), item)
            shown[key] = line
            self._index(line)
            frames: list[_Frame] = []
            if node.children is not None:
                inner_batch = in_batch or node.kind == "batch_flow"
                frames.extend(self._graph_frames(line, node.children, (*base, node.name), inner_batch))
            # A long chain would nest one line per node; past MAX_NESTING its successors go
            # beside it instead of under it (Textual's tree walks its lines recursively).
            depth = self._depth[id(line)] = self._depth.get(id(line_parent), 0) + 1
            successor_parent = line if depth < MAX_NESTING else line_parent
            for action, target in g.edges_from(node.id):
                target_node = g.node(target) if target is not None else None
                if target is not None and target_node is None:
                    continue
                frames.append((successor_parent, g, target_node, (key, action), False, base, in_batch))
            if not frames:
                line.allow_expand = False
            stack.extend(reversed(frames))

    @staticmethod
    def _graph_frames(parent: TreeNode[TreeItem], graph: Graph, base: tuple[str, ...], in_batch: bool) -> list[_Frame]:
        start = graph.node(graph.start) if graph.start is not None else None
        frames: list[_Frame] = []
        if start is not None:
            frames.append((parent, graph, start, None, True, base, in_batch))
        frames.extend((parent, graph, node, None, False, base, in_batch) for node in graph.nodes if node is not start)
        return frames

    # -- indexes ---------------------------------------------------------------------------
    def _index(self, line: TreeNode[TreeItem]) -> None:
        item = line.data
        if item is None:
            return
        if item.key is not None:
            self._by_key.setdefault(item.key, []).append(line)
            self._by_name.setdefault(item.name, []).append(line)
            self.node_names.add(item.name)
        if item.edge is not None:
            self._by_src.setdefault(item.edge[0], []).append(line)
        self._by_ident.setdefault(item.ident, line)

    def node_line(self, key: NodeKey) -> TreeNode[TreeItem] | None:
        """The node's own line."""
        return next((line for line in self._by_key.get(key, ()) if _item(line).kind == "node"), None)

    def key_for_path(self, template: tuple[str, ...]) -> NodeKey | None:
        """The key of the node line whose template path is ``template`` (the timeline knows
        paths, not node ids)."""
        return next((key for key in self._by_key if key[0] == template), None)

    def find_key(self, name: str) -> NodeKey | None:
        """The key of the first node line named ``name``."""
        line = next((line for line in self._by_name.get(name, ()) if _item(line).kind == "node"), None)
        return _item(line).key if line is not None else None

    # -- state -----------------------------------------------------------------------------
    def relabel(self, keys: Iterable[NodeKey]) -> None:
        """Redraw the lines of the nodes ``keys`` and of the edges leaving them (once each)."""
        lines: dict[int, TreeNode[TreeItem]] = {}
        for key in keys:
            for line in self._by_key.get(key, ()):
                lines[id(line)] = line
            for line in self._by_src.get(key, ()):
                lines[id(line)] = line
        for line in lines.values():
            line.set_label(self.label_for(_item(line)))

    def relabel_names(self, names: Iterable[str]) -> None:
        lines = {id(line): line for name in names for line in self._by_name.get(name, ())}
        for line in lines.values():
            line.set_label(self.label_for(_item(line)))

    def relabel_all(self) -> None:
        for line in self._by_ident.values():
            if line.data is not None and line.data.kind != "note":
                line.set_label(self.label_for(_item(line)))

    def set_pause(self, pause: PausePoint | None) -> None:
        """Highlight the node the run is paused at (and un-highlight the previous one)."""
        previous = self.pause
        if previous == pause:
            return
        self.pause = pause
        keys = [p.key for p in (previous, pause) if p is not None]
        self.relabel(keys)
        if pause is not None:
            line = self.node_line(pause.key)
            if line is not None:
                self.scroll_to_node(line, animate=False)

    def label_for(self, item: TreeItem) -> Text:
        """The label of one line: edge, breakpoint, state icon, name, badge, details."""
        history = self.history
        text = Text(no_wrap=True, overflow="ellipsis")
        edge_count = 0
        if item.edge is not None:
            src_record = history.nodes.get(item.edge[0]) if history is not None else None
            edge_count = src_record.edges.get(item.edge[1], 0) if src_record is not None else 0
            text.append(item.edge[1], style="bold green" if edge_count else "cyan")
            text.append(" → ", style="green" if edge_count else "dim")
        elif item.inner_start:
            text.append("⤷ ", style="dim")
        if item.kind == "end":
            text.append("■ end", style="bold" if edge_count else "dim")
            if edge_count > 1:
                text.append(f"  ×{edge_count}", style="dim")
            return text
        record = history.nodes.get(item.key) if history is not None and item.key is not None else None
        paused = self.pause is not None and self.pause.key == item.key
        if item.kind == "ref":
            text.append("↺ ", style="magenta")
            text.append(item.name, style="bold" if record is not None else "")
            if edge_count > 1:
                text.append(f"  ×{edge_count}", style="dim")
            return text
        if item.name in self.breakpoints:
            text.append("● ", style="bold red")
        state = record.state if record is not None else NodeState.PENDING
        if paused:
            text.append("⏸", style=_PAUSED_STYLE)
        else:
            icon, style = _ICONS.get(state, ("○", "dim"))
            text.append(icon, style=style)
        text.append(" ")
        text.append(item.name, style="bold" if record is not None else "")
        badge = _BADGES.get(item.graph_kind)
        if badge:
            text.append(f"  {badge}", style="dim italic")
        detail = self._detail(record, paused)
        if detail is not None:
            text.append("  ")
            text.append_text(detail)
        if paused:
            text.stylize(_CURRENT_STYLE)
        return text

    def _detail(self, record: NodeRecord | None, paused: bool) -> Text | None:
        if paused and self.pause is not None:
            return Text(self.pause.text, style=_PAUSED_STYLE)
        if record is None:
            return None
        state = record.state
        if state == NodeState.RUNNING:
            return Text(record.phase or "running", style="yellow")
        if state == NodeState.RETRYING:
            out = Text(f"↻{record.attempt}/{record.max_attempts}", style="bold dark_orange")
            if record.error is not None:
                out.append(f" {error_line(user_error(record.error), 48)}", style="dark_orange")
            return out
        if state == NodeState.FAILED:
            return Text(f"failed in {record.phase}: {error_line(user_error(record.error), 60)}", style="red")
        if state == NodeState.STOPPED:
            return Text(f"stopped in {record.phase}", style="red")
        out = Text()
        if record.action is not None:
            out.append(f"→ {record.action}", style="green")
        if record.fallback:
            out.append("  fallback used", style="magenta")
        if not self.stable and record.duration != UNTIMED:
            out.append(f"  {format_duration(record.duration)}", style="dim")
        if record.runs > 1:
            out.append(f"  ×{record.runs}", style="dim")
        return out

    # -- selection -------------------------------------------------------------------------
    def node_object(self, key: NodeKey | None) -> Node | None:
        """The node object drawn at ``key`` (for its source), if the graph has it."""
        return self._objects.get(key) if key is not None else None

    def selected_item(self) -> TreeItem | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def selected_node_name(self) -> str | None:
        """The node under the cursor (the target of an edge line), or ``None`` on an end line."""
        item = self.selected_item()
        if item is None or item.kind in ("end", "note"):
            return None
        return item.name


def _item(line: TreeNode[TreeItem]) -> TreeItem:
    """The item of a line the tree made (every line it indexes carries one)."""
    item = line.data
    assert item is not None
    return item
