"""The live SharedStore: key, type, value and the node that wrote it last.

Updates arrive coalesced (the last write per key per tick) and touch only the cells of
the rows that changed; the table is rebuilt only when a run starts (back to the initial
store). Changed rows are highlighted for a moment. Columns have fixed widths; the value
column takes what the others leave.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from flyt_engine.events import StoreChanged

from ..core.format import type_name
from ..core.rendering import RENDERER

HIGHLIGHT_SECONDS = 1.0
_HIGHLIGHT = "bold on #1e4620"
_KEY_WIDTH = 16
_TYPE_WIDTH = 8
_WRITER_WIDTH = 12
_VALUE_MIN = 24
_REPR_LIMIT = 240
MAX_ROWS = 2000  # rows shown at most; a bigger store says how many keys are not shown


class StoreTable(DataTable[Text]):
    """The store of the current run (or the initial store before a run)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self._cells: dict[str, tuple[str, str, str]] = {}  # key -> (type, value, writer) as shown
        self._lit: dict[str, float] = {}  # key -> when it was highlighted
        # a past moment on show (show_moment): what identifies its store, and its lit keys
        self._moment: Hashable | None = None
        self._moment_lit: set[str] = set()
        self._hidden: set[str] = set()  # keys past MAX_ROWS
        self._watched: set[str] = set()  # keys with a data breakpoint
        self._versions: dict[str, int] = {}  # key -> its latest change (a late rendering of an older one is dropped)
        self.highlight = True
        self._widths = (_KEY_WIDTH, 40)  # (key, value) column widths; the others are fixed

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        key_width, value_width = self._widths
        self.add_column(Text("key"), width=key_width, key="key")
        self.add_column(Text("type"), width=_TYPE_WIDTH, key="type")
        self.add_column(Text("value"), width=value_width, key="value")
        self.add_column(Text("written by"), width=_WRITER_WIDTH, key="writer")

    def on_resize(self) -> None:
        # cell padding is 1 on each side of each of the 4 columns; leave room for a scrollbar.
        # A narrow pane (100 columns) gets a narrower key column, so "written by" still shows.
        total = self.size.width
        narrow = total < _KEY_WIDTH + _TYPE_WIDTH + _WRITER_WIDTH + _VALUE_MIN + 10
        key_width = 10 if narrow else _KEY_WIDTH
        value_width = max(8 if narrow else _VALUE_MIN, total - key_width - _TYPE_WIDTH - _WRITER_WIDTH - 8 - 2)
        if (key_width, value_width) != self._widths and ColumnKey("value") in self.columns:
            self._widths = (key_width, value_width)
            self._rebuild()

    def _rebuild(self) -> None:
        """Columns anew at the current widths, the rows as they were (a resize: rare)."""
        cursor = self.cursor_row
        rows = list(self._cells.items())
        self.clear(columns=True)
        self._add_columns()
        for key, cells in rows:
            self.add_row(*(Text(text, no_wrap=True, overflow="ellipsis") for text in (key, *cells)), key=key)
        for key, cells in rows:
            if key in self._lit or key in self._watched:
                self._paint(key, cells, lit=key in self._lit)
        if rows:
            self.move_cursor(row=min(cursor, len(rows) - 1))

    # -- content ---------------------------------------------------------------------------
    def reset(self, values: Mapping[str, Any], writer: str = "initial") -> None:
        """Show ``values`` (the initial store of a run); the only full rebuild."""
        self._moment = None
        self._moment_lit = set()
        self.clear()
        self._cells.clear()
        self._lit.clear()
        self._hidden.clear()
        self.border_subtitle = ""
        try:
            items = list(values.items())
        except Exception:
            items = []
        for key, value in items:
            self._add(str(key), value, writer, lit=False)

    def show_moment(
        self, moment: Hashable | None, rows: Callable[[], list[tuple[str, Any, str]]], lit: set[str]
    ) -> None:
        """A past moment's store: ``rows()`` as ``show_rows``, with the keys in ``lit``
        highlighted. ``moment`` names the store shown (``None``: no name, always rebuilt): a
        moment with the same store as the one on show keeps its rows, and only the rows
        whose highlight changes are painted again (a scrub through phases repaints little)."""
        if moment is None or moment != self._moment:
            self.show_rows(rows())
            for key in lit:
                if key in self._cells:
                    self._paint(key, self._cells[key], lit=True)
        else:
            for key in self._moment_lit ^ lit:
                if key in self._cells:
                    self._paint(key, self._cells[key], lit=key in lit)
        self._moment = moment
        self._moment_lit = set(lit)

    def show_rows(self, rows: list[tuple[str, Any, str]]) -> None:
        """Show exactly ``rows`` of ``(key, value, writer)``: another store than the live one
        (a BatchFlow iteration's while paused in it), or the live one again afterwards."""
        self._moment = None
        self._moment_lit = set()
        self.clear()
        self._cells.clear()
        self._lit.clear()
        self._hidden.clear()
        self.border_subtitle = ""
        for key, value, writer in rows:
            self._add(str(key), value, writer, lit=False)

    def apply(self, changes: Mapping[str, StoreChanged], now: float | None = None) -> None:
        """Apply one tick's store writes: update, add or remove the rows that changed."""
        self._moment = None
        self._moment_lit = set()
        now = time.monotonic() if now is None else now
        for key, event in changes.items():
            key = str(key)
            if event.deleted:
                self._hidden.discard(key)
                if key in self._cells:
                    self.remove_row(key)
                    del self._cells[key]
                    self._lit.pop(key, None)
                continue
            if key in self._cells:
                self._update(key, event.value, event.node, now)
            elif key not in self._hidden:
                self._add(key, event.value, event.node, lit=self.highlight, now=now)

    def fade(self, now: float | None = None) -> bool:
        """Un-highlight rows changed more than a moment ago; True while some stay lit."""
        if not self._lit:
            return False
        now = time.monotonic() if now is None else now
        for key, when in list(self._lit.items()):
            if now - when >= HIGHLIGHT_SECONDS:
                del self._lit[key]
                if key in self._cells:
                    self._paint(key, self._cells[key], lit=False)
        return bool(self._lit)

    def value_text(self, key: str) -> str | None:
        """The value as shown (for tests and the inspector)."""
        cells = self._cells.get(key)
        return cells[1] if cells is not None else None

    def writer_of(self, key: str) -> str | None:
        cells = self._cells.get(key)
        return cells[2] if cells is not None else None

    def key_at_cursor(self) -> str | None:
        """The store key of the row under the cursor."""
        if not self._cells or self.cursor_row < 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return str(row_key.value) if row_key.value is not None else None

    def mark_watched(self, keys: set[str]) -> None:
        """Keys with a data breakpoint show ``◉`` before their name."""
        changed = self._watched ^ keys
        self._watched = set(keys)
        for key in changed:
            if key in self._cells:
                self._paint(key, self._cells[key], lit=key in self._lit)

    def store_keys(self) -> list[str]:
        return list(self._cells)

    def is_lit(self, key: str) -> bool:
        return key in self._lit or key in self._moment_lit

    # -- cells -----------------------------------------------------------------------------
    @dataclass
    class ValueRendered(Message):
        """A value rendered off the UI thread is ready for its cell."""

        key: str
        version: int
        text: str

    def _value_text(self, key: str, value: Any) -> str:
        """The value's text, or ``PENDING`` while the renderer thread makes it (a slow repr
        never runs on the UI thread; each change is rendered once)."""
        version = self._versions[key] = self._versions.get(key, 0) + 1

        def ready(text: str) -> None:
            self.post_message(self.ValueRendered(key, version, text))

        return RENDERER.text(value, _REPR_LIMIT, ready)

    def on_store_table_value_rendered(self, message: ValueRendered) -> None:
        if self._versions.get(message.key) != message.version or message.key not in self._cells:
            return  # the key changed again (or left) meanwhile
        kind, _, writer = self._cells[message.key]
        self._cells[message.key] = (kind, message.text, writer)
        self._paint(message.key, self._cells[message.key], lit=message.key in self._lit)

    def _add(self, key: str, value: Any, writer: str, *, lit: bool, now: float = 0.0) -> None:
        if len(self._cells) >= MAX_ROWS:  # a huge store: the first rows, and a count of the rest
            self._hidden.add(key)
            self.border_subtitle = f"{len(self._hidden)} more keys not shown"
            return
        cells = (type_name(value), self._value_text(key, value), writer)
        self._cells[key] = cells
        style = _HIGHLIGHT if lit else ""
        self.add_row(
            Text("◉ " + key if key in self._watched else key, style=style, no_wrap=True, overflow="ellipsis"),
            Text(cells[0], style=style, no_wrap=True, overflow="ellipsis"),
            Text(cells[1], style=style, no_wrap=True, overflow="ellipsis"),
            Text(cells[2], style=style, no_wrap=True, overflow="ellipsis"),
            key=key,
        )
        if lit:
            self._lit[key] = now

    def _update(self, key: str, value: Any, writer: str, now: float) -> None:
        cells = (type_name(value), self._value_text(key, value), writer)
        self._cells[key] = cells
        if self.highlight:
            self._lit[key] = now
        self._paint(key, cells, lit=self.highlight)

    def _paint(self, key: str, cells: tuple[str, str, str], *, lit: bool) -> None:
        style = _HIGHLIGHT if lit else ""
        row = RowKey(key)
        label = Text("◉ " + key if key in self._watched else key, style=style, no_wrap=True, overflow="ellipsis")
        self.update_cell(row, "key", label)
        self.update_cell(row, "type", Text(cells[0], style=style, no_wrap=True, overflow="ellipsis"))
        self.update_cell(row, "value", Text(cells[1], style=style, no_wrap=True, overflow="ellipsis"))
        self.update_cell(row, "writer", Text(cells[2], style=style, no_wrap=True, overflow="ellipsis"))
