"""A batch's items, opened one by one: input, result or error, failed attempts, duration.

The table lists the items the history keeps (every failed one, the latest that
succeeded); the inspector beside it shows the highlighted item, its values opening as
in the main inspector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from ..core.format import error_line, format_duration, safe_repr, traceback_text, user_error
from ..core.history import BatchRecord, ItemOutcome
from ..widgets.inspector import Inspector

_NOT_KEPT = object()
_INPUT_WIDTH = 24  # the table's columns fit its 72 cells: each cell's text is cut with …


@dataclass(frozen=True)
class BatchItemsView:
    """What the screen shows: the batch, its items' inputs and results when known."""

    batch: BatchRecord
    inputs: Sequence[Any] | None
    results: Sequence[Any] | None
    base: str | None = None  # the user's directory, for short traceback paths


class BatchItems(ModalScreen[None]):
    """``up``/``down`` picks an item, ``tab`` goes to its values, ``escape`` closes."""

    DEFAULT_CSS = """
    BatchItems { align: center middle; }
    BatchItems > Vertical { width: 95%; height: 85%; border: round $accent; padding: 0 1; background: $panel; }
    BatchItems Horizontal { height: 1fr; }
    BatchItems Label { width: 100%; }
    BatchItems DataTable { width: 72; height: 1fr; }
    BatchItems Inspector { width: 1fr; height: 1fr; overflow-y: scroll; overflow-x: hidden; }
    """
    BINDINGS = [Binding("escape", "close", "Close", id="batch_items.close")]

    def __init__(self, view: BatchItemsView) -> None:
        super().__init__()
        self.view = view
        self._order: list[int] = []

    def compose(self) -> ComposeResult:
        batch = self.view.batch
        with Vertical():
            title = Text(f"{batch.name}: items", style="bold", no_wrap=True, overflow="ellipsis")
            title.append(f"  {batch.done:,}/{batch.total:,} done · {batch.failed:,} failed", style="dim")
            title.append("  (failed ones and the latest kept · tab: the item's values · esc: close)", style="dim")
            yield Label(title)
            with Horizontal():
                yield DataTable(id="batch-items", cursor_type="row", zebra_stripes=True)
                yield Inspector(id="batch-item")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("item", width=6)
        table.add_column("outcome", width=18)
        table.add_column("tries", width=5)
        table.add_column("took", width=7)
        table.add_column("input", width=_INPUT_WIDTH)
        batch = self.view.batch
        outcomes = sorted(batch.outcomes.values(), key=lambda outcome: (outcome.ok, outcome.index))
        self._order = [outcome.index for outcome in outcomes]
        for outcome in outcomes:
            table.add_row(*self._cells(outcome), key=str(outcome.index))
        inspector = self.query_one(Inspector)
        inspector.border_title = "item"
        if not outcomes:
            inspector.show_message("no item has finished yet", "", "dim")
        else:
            self._show(outcomes[0].index)
        table.focus()

    def _cells(self, outcome: ItemOutcome) -> tuple[Text, Text, str, str, str]:
        if outcome.ok:
            state = Text("ok", style="green")
        else:
            state = Text(error_line(user_error(outcome.error), 18), style="red")
        tries = _tries(self.view.batch, outcome)
        return (
            Text(f"#{outcome.index}", style="bold"),
            state,
            str(tries),
            format_duration(outcome.duration),
            safe_repr(self._input(outcome.index), _INPUT_WIDTH),
        )

    def _input(self, index: int) -> Any:
        inputs = self.view.inputs
        return inputs[index] if inputs is not None and 0 <= index < len(inputs) else _NOT_KEPT

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        if message.row_key.value is not None:
            self._show(int(message.row_key.value))

    def _show(self, index: int) -> None:
        outcome = self.view.batch.outcomes.get(index)
        if outcome is None:
            return
        inspector = self.query_one(Inspector)
        words = [f"took     {format_duration(outcome.duration)}", f"attempts {_tries(self.view.batch, outcome)}"]
        values: list[tuple[str, Any]] = []
        item = self._input(index)
        if item is _NOT_KEPT:
            words.append("input    (not known: the batch's prep result was not seen)")
        else:
            values.append(("input", item))
        if outcome.ok:
            results = self.view.results
            if results is not None and 0 <= index < len(results):
                values.append(("result", results[index]))
            else:
                words.append("result   (known once the batch's exec has finished)")
            title, style = f"item #{index}  ok", "bold green"
        else:
            title, style = f"item #{index}  failed", "bold red"
            if outcome.error is not None:
                words.append(traceback_text(user_error(outcome.error) or outcome.error, base=self.view.base))
        inspector.show_message(title, "\n".join(words), style, values=values)

    def action_close(self) -> None:
        self.dismiss(None)


def _tries(batch: BatchRecord, outcome: ItemOutcome) -> int:
    """Attempts an item took: its failed ones, and the one that succeeded."""
    failed = batch.attempts.get(outcome.index, 0)
    return failed + 1 if outcome.ok else max(1, failed)
