"""The inspector: a node's prep result, exec result and action, with values that open.

While the run is paused it shows the node it is paused at; otherwise the node under
the tree cursor (its latest execution), or the store value under the table's cursor.
Values are lines of a tree, as in a debugger's variables view: a dict, list, object or
long string opens (``enter``, ``space`` or a click) into its parts, one level at a time
(``core/outline.py``); what the user opened stays open while the view refreshes.

It is a ``Tree`` (a scroll view drawn line by line) on purpose: a new view changes no
widget's size, so following the tree cursor or a running node never reflows the screen.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from flyt_engine import SharedStore

from ..core.format import error_line, format_duration, type_name, user_error
from ..core.history import UNTIMED, NodeRecord, NodeState
from ..core.outline import Part, can_open, parts_of
from ..core.rendering import PENDING, RENDERER
from ..core.source import PhaseSource

_ERROR_LINES = 60  # lines of a traceback kept (the last ones)
_SOURCE_LINES = 6  # lines of a phase's source shown
_AUTO_OPEN = 12  # a value with at most this many parts opens by itself
_MEMORY = 2048  # opened/closed paths remembered
_LINE_WIDTH = 64  # what every line counts as, for the virtual width (see get_label_width)

ValuePath = tuple[Any, ...]


@dataclass(eq=False)
class ValueSlot:
    """What a line that opens holds: where it is (for remembering), and the value."""

    path: ValuePath
    value: Any
    filled: bool = False


@dataclass
class _Line:
    """One line of a view: text, and the value it opens into (if any)."""

    text: Text
    value: Any = None
    opens: bool = False
    name: str = ""
    whole: bool = False  # the text already shows the whole value: it does not open by itself


class Inspector(Tree[ValueSlot | None]):
    """Shows one node's latest results, a store value, or a message."""

    @dataclass
    class Rendered(Message):
        """A value the inspector showed as pending is rendered: show the view again."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("inspector", id=id)
        self.show_root = False
        self.guide_depth = 2
        self.stable = False
        self.plain = "select a node, or run the flow"  # the view as plain text (tests read it)
        self._signature: tuple[Any, ...] | None = None
        self._open_paths: set[ValuePath] = set()  # paths the user (or the view) opened
        self._shut_paths: set[ValuePath] = set()  # paths the user closed: never opened by themselves
        self._width = 70
        self._budget_until = 0.0  # the time the current view may wait for slow reprs until
        self._last: tuple[list[_Line], tuple[Any, ...]] | None = None  # the view, to cut again on resize

    def on_mount(self) -> None:
        self._show([_Line(Text(self.plain, style="dim"))], ("initial",))

    # -- the views -------------------------------------------------------------------------
    def show_message(
        self, title: str, body: str = "", style: str = "bold red", *, values: Sequence[tuple[str, Any]] = ()
    ) -> None:
        """A message in full (wrapped, the last ``_ERROR_LINES`` lines of a long one), such as a
        load error with its traceback; ``values`` follow as lines that open."""
        self._new_budget()
        width = self._usable_width(2)
        lines = [_Line(Text(title, style=style))]
        body_lines = body.splitlines()
        if len(body_lines) > _ERROR_LINES:
            body_lines = ["…", *body_lines[-_ERROR_LINES:]]
        for line in body_lines:
            for piece in textwrap.wrap(line, width, replace_whitespace=False, drop_whitespace=False) or [""]:
                lines.append(_Line(Text(piece)))
        subject = ("message", title)
        for label, value in values:
            lines.append(self._value_line(subject + (label,), f"{label:<8} ", value, width))
        self._show(lines, (subject, body, tuple(id(value) for _, value in values)))

    def show_value(self, key: str, value: Any, writer: str | None, *, width: int = 70) -> None:
        """A store value: the store row under the table's cursor."""
        self._new_budget()
        self._width = width
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(key, style="bold")
        header.append(f"  {type_name(value)}", style="dim italic")
        if writer:
            header.append(f"  written by {writer}", style="dim")
        line = self._value_line(("value", key), "value ", value, self._usable_width(8))
        self._show([_Line(header), line], ("value", key, id(value)))

    def show_node(
        self,
        name: str,
        kind: str,
        record: NodeRecord | None,
        *,
        paused: str | None = None,
        width: int = 70,
        sources: Sequence[PhaseSource] = (),
    ) -> None:
        """``name``'s latest execution; ``paused`` says where the run stands (``paused before exec``);
        ``sources``, where its phases are written (ctrl+e opens them)."""
        self._new_budget()
        self._width = width
        room = self._usable_width(10)
        header = Text()
        header.append(name, style="bold")
        if kind and kind != "node":
            header.append(f"  {kind.replace('_', ' ')}", style="dim italic")
        if paused:
            header.append(f"  {paused}", style="bold black on yellow")
        elif record is None:
            header.append("  not run yet", style="dim")
        else:
            header.append(f"  {self._state_words(record)}", style="dim")
        lines = [_Line(header)]
        if sources:
            line = Text("source ", style="bold cyan")
            where = " · ".join(f"{src.phase} {Path(src.file).name}:{src.line}" for src in sources)
            line.append(where + "  (ctrl+e)", style="dim")
            lines.append(_Line(line))
            shown = _shown_phase(sources, paused)
            for source_line in textwrap.dedent(shown.text).rstrip().splitlines()[:_SOURCE_LINES]:
                lines.append(_Line(Text("       " + _cut(source_line.rstrip(), room), style="dim")))
        values: list[int] = []
        if record is None:
            hint = "r runs the flow · n steps one phase · N one node · b sets a breakpoint here"
            lines.append(_Line(Text(hint, style="dim")))
        else:
            for phase, label in (("prep", "prep"), ("exec", "exec"), ("post", "action")):
                known, value = record.result_of(phase)
                if not known:
                    text = Text(f"{label:>6} ", style="bold cyan")
                    text.append("—", style="dim")
                    lines.append(_Line(text))
                    continue
                if phase == "post":
                    text = Text(f"{label:>6} ", style="bold cyan")
                    text.append(str(value), style="bold green")
                    if record.state == NodeState.DONE and record.next_node is not None:
                        text.append(f"  → {record.next_node}", style="green")
                    elif record.state == NodeState.DONE:
                        text.append("  → end", style="dim")
                    lines.append(_Line(text))
                    continue
                values.append(id(value))
                if isinstance(value, SharedStore):  # a flow's prep: the store itself
                    value = _StoreView(value)
                lines.append(self._value_line((name, phase), f"{label:>6} ", value, room))
            if record.fallback:
                text = Text("  note ", style="bold magenta")
                text.append("the fallback supplied the exec result", style="magenta")
                lines.append(_Line(text))
            if record.error is not None:
                text = Text(" error ", style="bold red")
                text.append(error_line(user_error(record.error), room * 2), style="red")
                lines.append(_Line(text))
        self._show(lines, (name, tuple(values)))

    # -- building the lines ----------------------------------------------------------------
    def _usable_width(self, indent: int) -> int:
        return max(24, (self._width or self.size.width or 70) - indent - 4)

    def _value_line(self, path: ValuePath, label: str, value: Any, width: int) -> _Line:
        """``label`` and the value's one-line text; it opens when the value has parts."""
        opens = can_open(value, width)
        if opens and label.startswith("  "):  # the ▶ takes two cells: values stay in one column
            label = label[2:]
        elif opens and label.endswith("   "):
            label = label[:-2]
        text = Text(label, style="bold cyan")
        summary = self._summary(path, value, width)
        text.append(summary)
        return _Line(text, value, opens, name=repr(path), whole=_shows_all(summary, value))

    def _summary(self, slot: Any, value: Any, width: int) -> str:
        """One line for ``value``: its repr when it fits, else its type and size; rendered
        off the UI thread when slow (``core/rendering.py``). The lines of one view share
        one budget: 200 parts with slow reprs cost the UI thread that budget, not 200 of it."""
        budget = self._budget_until - time.monotonic()
        text = RENDERER.lines(slot, value, width, 1, self._rendered, wait=budget)[0]
        return text

    def _rendered(self) -> None:
        self._signature = None  # called on the renderer's thread: the next view is built afresh
        self.post_message(self.Rendered())

    def on_resize(self) -> None:
        """Lines are cut to the pane: cut them again at the new width."""
        if self._last is not None:
            self._signature = None
            self._show(*self._last)

    def _new_budget(self) -> None:
        """A new view (or a part opened): slow reprs may hold the UI thread one budget in all."""
        self._budget_until = time.monotonic() + RENDERER.BUDGET

    def _show(self, lines: list[_Line], subject: tuple[Any, ...]) -> None:
        self._last = (lines, subject)
        plain = "\n".join(line.text.plain for line in lines)
        signature = (subject, plain, self._width)
        if signature == self._signature:
            return
        self._signature = signature
        scroll_y = self.scroll_y
        cursor = self.cursor_line
        self.clear()
        for line in lines:
            self._add(self.root, line, ())
        self.plain = self._plain_of(self.root)
        self._pad()
        if self.cursor_line != cursor:
            self.cursor_line = min(cursor, max(0, self.last_line))
        self.scroll_y = scroll_y

    def _line_room(self, depth: int) -> int:
        """Cells a line at ``depth`` has before the scrollbar."""
        width = self.scrollable_content_region.width or max(24, (self._width or 70) - 3)
        if self.size.width:
            width = min(width, self.size.width - 1)
        return max(8, width - depth * self.guide_depth)

    def _pad(self) -> None:
        """Blank lines up to a whole number of pages: views of different lengths then keep
        the same virtual height, and a new one needs no layout (see ``_invalidate``)."""
        page = max(1, self.scrollable_content_region.height)
        shown = self.plain.count("\n") + 1
        for _ in range((-shown) % page):
            self.root.add_leaf("", data=None)

    def _add(self, parent: TreeNode[ValueSlot | None], line: _Line, at: ValuePath) -> None:
        path = (*at, line.name or line.text.plain[:40])
        room = self._line_room(len(at)) - (2 if line.opens else 0)
        text = line.text
        if text.cell_len > room:  # cut where the pane ends, and say so
            text = text.copy()
            text.truncate(room, overflow="ellipsis")
        if not line.opens:
            parent.add_leaf(text, data=None)
            return
        slot = ValueSlot(path, line.value)
        node = parent.add(text, data=slot, allow_expand=True)
        if path in self._open_paths or (
            path not in self._shut_paths and not line.whole and self._opens_by_itself(line.value, at)
        ):
            self._fill(node)
            node.expand()

    def _opens_by_itself(self, value: Any, at: ValuePath) -> bool:
        """A top-level value with few parts opens by itself: what fits is shown at once."""
        if at:
            return False
        parts = parts_of(value, self._usable_width(8))
        return len(parts) <= _AUTO_OPEN

    def _fill(self, node: TreeNode[ValueSlot | None]) -> None:
        slot = node.data
        if slot is None or slot.filled:
            return
        slot.filled = True
        depth = len(slot.path)
        width = self._usable_width(8 + 2 * depth)
        for part in parts_of(slot.value, width):
            self._add(node, self._part_line(slot.path, part, width), slot.path)

    def _part_line(self, path: ValuePath, part: Part, width: int) -> _Line:
        if part.text is not None:
            return _Line(Text(part.text, style="dim" if part.text.startswith("…") else ""), name=part.text)
        text = Text(part.name, style="cyan")
        text.append(": " if not part.name.startswith("[") and part.name != "·" else " ")
        room = max(12, width - len(part.name) - 2)
        text.append(self._summary((*path, part.name, id(part.value)), part.value, room))
        return _Line(text, part.value, can_open(part.value, room), name=part.name)

    def _plain_of(self, node: TreeNode[ValueSlot | None]) -> str:
        lines: list[str] = []

        def walk(current: TreeNode[ValueSlot | None], depth: int) -> None:
            for child in current.children:
                lines.append("  " * depth + str(child.label))
                if child.is_expanded:
                    walk(child, depth + 1)

        walk(node, 0)
        return "\n".join(lines).rstrip("\n")

    # -- opening and closing ---------------------------------------------------------------
    @on(Tree.NodeExpanded)
    def _on_opened(self, message: Tree.NodeExpanded[ValueSlot | None]) -> None:
        message.stop()
        slot = message.node.data
        if slot is None:
            return
        self._remember(self._open_paths, slot.path)
        self._shut_paths.discard(slot.path)
        if not slot.filled:
            self._new_budget()
            self._fill(message.node)
        self.plain = self._plain_of(self.root)

    @on(Tree.NodeCollapsed)
    def _on_closed(self, message: Tree.NodeCollapsed[ValueSlot | None]) -> None:
        message.stop()
        slot = message.node.data
        if slot is None:
            return
        self._open_paths.discard(slot.path)
        self._remember(self._shut_paths, slot.path)
        self.plain = self._plain_of(self.root)

    @on(Tree.NodeHighlighted)
    @on(Tree.NodeSelected)
    def _quiet(self, message: Message) -> None:
        message.stop()  # the app listens to the flow tree's messages, not these

    @staticmethod
    def _remember(paths: set[ValuePath], path: ValuePath) -> None:
        if len(paths) >= _MEMORY:
            paths.clear()
        paths.add(path)

    def _invalidate(self) -> None:
        """As ``Tree._invalidate``, without asking for a new layout: the inspector's size is
        set by the screen, never by its lines, and a layout reflows the whole screen (the cost
        that made a streaming run 1.8 times slower while the cursor moved). Guarded by
        ``test_a_new_view_does_not_reflow_the_screen``."""
        self._clear_line_cache()
        self._updates += 1
        self.root._reset()
        self.refresh()

    def get_label_width(self, node: TreeNode[ValueSlot | None]) -> int:
        """The same width for every line, whatever its text or depth: the virtual width then
        never changes (labels are cut to the pane by the views), so neither does the layout."""
        depth = 0
        parent = node.parent
        while parent is not None and parent is not self.root:
            depth += 1
            parent = parent.parent
        return max(1, _LINE_WIDTH - depth * self.guide_depth)

    def render_label(self, node: TreeNode[ValueSlot | None], base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text

    def _state_words(self, record: NodeRecord) -> str:
        state = record.state
        if state == NodeState.DONE:
            words = "done"
            if not self.stable and record.duration != UNTIMED:
                words += f" in {format_duration(record.duration)}"
            if record.runs > 1:
                words += f", ran {record.runs}×"
            return words
        if state == NodeState.RUNNING:
            return f"running {record.phase}"
        if state == NodeState.RETRYING:
            return f"retrying ({record.attempt}/{record.max_attempts} failed)"
        if state == NodeState.FAILED:
            return f"failed in {record.phase}"
        return str(state)


def _shows_all(summary: str, value: Any) -> bool:
    """Whether a value's one-line summary is its whole repr (not cut, not ``dict · 3 keys``,
    no ``...`` standing for the items a container's repr leaves out)."""
    return (
        not summary.endswith("…")
        and "..." not in summary
        and not summary.startswith(f"{type_name(value)} · ")
        and summary != PENDING
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class _StoreView(dict):
    """A store's snapshot that names itself ``SharedStore`` in the inspector."""

    def __init__(self, store: SharedStore) -> None:
        try:
            super().__init__(store.get_all())
        except Exception:
            super().__init__()


_StoreView.__name__ = "SharedStore"


def _shown_phase(sources: Sequence[PhaseSource], paused: str | None) -> PhaseSource:
    """The phase whose source the inspector shows: the one paused before, else exec."""
    for phase in ("prep", "exec", "post"):
        if paused is not None and paused.endswith(f"before {phase}"):
            match = next((src for src in sources if src.phase == phase), None)
            if match is not None:
                return match
    return next((src for src in sources if src.phase in ("exec", "process")), sources[0])
