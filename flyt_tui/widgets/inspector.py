"""The inspector: a node's prep result, exec result and action, pretty-printed and bounded.

While the run is paused it shows the node it is paused at; otherwise the node under
the tree cursor (its latest execution). It can also show a load error in full.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from flyt_engine import SharedStore

from ..core.format import error_line, format_duration, type_name, user_error
from ..core.history import NodeRecord, NodeState
from ..core.rendering import RENDERER
from ..core.source import PhaseSource

_MAX_LINES = 10
_ERROR_LINES = 60


class Inspector(VerticalScroll):
    """Shows one node's latest results, or a message."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static(Text("select a node, or run the flow", style="dim"), classes="inspector-body")
        self.stable = False
        self.plain = "select a node, or run the flow"  # the content as plain text (tests read it)
        self._spans: list[Any] = []
        self._lines = 1

    def compose(self) -> ComposeResult:
        yield self._body

    def _set(self, text: Text, *, layout: bool = True) -> None:
        plain = text.plain
        if plain == self.plain and text.spans == self._spans:
            return
        self.plain = plain
        self._spans = text.spans
        self._body.update(text, layout=layout)

    def show_message(self, title: str, body: str = "", style: str = "bold red") -> None:
        """A message in full, such as a load error with its traceback."""
        text = Text()
        text.append(title, style=style)
        if body:
            lines = body.splitlines()
            if len(lines) > _ERROR_LINES:
                lines = ["…", *lines[-_ERROR_LINES:]]
            text.append("\n")
            text.append("\n".join(lines), style="")
        self._lines = -1  # wrapped: the height is unknown
        self._set(text)

    def show_value(self, key: str, value: Any, writer: str | None, *, width: int = 70) -> None:
        """A store value in full (as far as the bounds allow): the store row under the cursor."""
        width = max(24, width - 4)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(key, style="bold")
        text.append(f"  {type_name(value)}", style="dim italic")
        if writer:
            text.append(f"  written by {writer}", style="dim")
        text.append("\n")
        for line in self._lines_of(("value", key), value, width, _MAX_LINES * 3):
            text.append("  " + line + "\n")
        self._set_node_view(text)

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
        width = max(24, width - 10)
        text = Text(no_wrap=True, overflow="ellipsis")  # one row per line: the height is the line count
        text.append(name, style="bold")
        if kind and kind != "node":
            text.append(f"  {kind.replace('_', ' ')}", style="dim italic")
        if paused:
            text.append(f"  {paused}", style="bold black on yellow")
        elif record is None:
            text.append("  not run yet", style="dim")
        else:
            text.append(f"  {self._state_words(record)}", style="dim")
        text.append("\n")
        if sources:
            text.append("source ", style="bold cyan")
            text.append(
                " · ".join(f"{src.phase} {Path(src.file).name}:{src.line}" for src in sources) + "  (ctrl+e)\n",
                style="dim",
            )
            shown = _shown_phase(sources, paused)
            for line in textwrap.dedent(shown.text).rstrip().splitlines()[:_SOURCE_LINES]:
                line = line.rstrip()
                if len(line) > width:
                    line = line[: width - 1] + "…"
                text.append("       " + line + "\n", style="dim")
        if record is None:
            text.append("r runs the flow · n steps one phase · N one node · b sets a breakpoint here", style="dim")
            self._set_node_view(text)
            return
        for phase, label in (("prep", "prep"), ("exec", "exec"), ("post", "action")):
            known, value = record.result_of(phase)
            text.append(f"{label:>6} ", style="bold cyan")
            if not known:
                text.append("—\n", style="dim")
                continue
            if phase == "post":
                text.append(str(value), style="bold green")
                if record.state == NodeState.DONE and record.next_node is not None:
                    text.append(f"  → {record.next_node}", style="green")
                elif record.state == NodeState.DONE:
                    text.append("  → end", style="dim")
                text.append("\n")
                continue
            slot = (name, phase, id(value))
            if isinstance(value, SharedStore):  # a flow's prep: the store itself
                value = _StoreView(value)
            lines = self._lines_of(slot, value, width, _MAX_LINES)
            text.append(lines[0] + "\n")
            for line in lines[1:]:
                text.append("       " + line + "\n")
        if record.fallback:
            text.append("  note ", style="bold magenta")
            text.append("the fallback supplied the exec result\n", style="magenta")
        if record.error is not None:
            text.append(" error ", style="bold red")
            text.append(error_line(user_error(record.error), width * 2) + "\n", style="red")
        self._set_node_view(text)

    @dataclass
    class Rendered(Message):
        """A value the inspector showed as pending is rendered: show the view again."""

    def _lines_of(self, slot: Any, value: Any, width: int, max_lines: int) -> list[str]:
        """A value's lines, rendered off the UI thread when slow (``core/rendering.py``)."""
        return RENDERER.lines(slot, value, width, max_lines, lambda: self.post_message(self.Rendered()))

    def _set_node_view(self, text: Text) -> None:
        # A new layout costs a full reflow of the screen: moving the tree cursor must not
        # pay it. Lines never wrap, and short views are padded to the pane's height, so the
        # height of the content only changes for views taller than the pane.
        text.rstrip()
        lines = text.plain.count("\n") + 1
        rows = max(lines, self.scrollable_content_region.height)
        if rows > lines:
            text.append("\n" * (rows - lines))
        layout = rows != self._lines
        self._lines = rows
        self._set(text, layout=layout)

    def on_resize(self) -> None:
        self._lines = -1  # the next view lays out again

    def _state_words(self, record: NodeRecord) -> str:
        state = record.state
        if state == NodeState.DONE:
            words = "done"
            if not self.stable:
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


class _StoreView(dict):
    """A store's snapshot that names itself ``SharedStore`` in the inspector."""

    def __init__(self, store: SharedStore) -> None:
        try:
            super().__init__(store.get_all())
        except Exception:
            super().__init__()


_StoreView.__name__ = "SharedStore"


_SOURCE_LINES = 6  # lines of a phase's source the inspector shows


def _shown_phase(sources: Sequence[PhaseSource], paused: str | None) -> PhaseSource:
    """The phase whose source the inspector shows: the one paused before, else exec."""
    for phase in ("prep", "exec", "post"):
        if paused is not None and paused.endswith(f"before {phase}"):
            match = next((src for src in sources if src.phase == phase), None)
            if match is not None:
                return match
    return next((src for src in sources if src.phase in ("exec", "process")), sources[0])
