"""Edit a store value as JSON while the run is paused: invalid JSON is refused with the
parse error and nothing is written; a value JSON cannot say is shown read-only."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TextArea

from ..core.format import safe_repr, type_name


def as_json(value: Any) -> str | None:
    """``value`` as indented JSON when JSON says it exactly (round-trips), else ``None``."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
        if json.loads(text) != value:
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return text


class ValueEditor(ModalScreen[tuple[Any] | None]):
    """Dismisses with ``(new_value,)`` on ``ctrl+s``, ``None`` on escape."""

    DEFAULT_CSS = """
    ValueEditor { align: center middle; }
    ValueEditor > Vertical { width: 90%; max-width: 120; height: 80%; border: round $accent; background: $panel; padding: 0 1; }
    ValueEditor TextArea { height: 1fr; }
    ValueEditor #editor-error { color: $error; height: auto; }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Write", id="editor.save"),
        Binding("escape", "cancel", "Cancel", id="editor.cancel"),
    ]

    def __init__(self, key: str, value: Any) -> None:
        super().__init__()
        self.key = key
        self.value = value
        self.text = as_json(value)

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.text is None:
                yield Label(
                    Text(f"{self.key} ({type_name(self.value)}) is not JSON-representable: read-only", style="bold")
                )
                yield TextArea(safe_repr(self.value, 4000), read_only=True, id="editor-area")
                yield Static(Text("escape closes", style="dim"))
            else:
                yield Label(
                    Text(f"{self.key} = (JSON)   ctrl+s writes it while the run is held · escape cancels", style="bold")
                )
                yield TextArea(self.text, language="json", id="editor-area")
                yield Static("", id="editor-error")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        if self.text is None:
            self.dismiss(None)
            return
        source = self.query_one(TextArea).text
        try:
            value = json.loads(source)
        except json.JSONDecodeError as exc:
            self.query_one("#editor-error", Static).update(
                Text(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); nothing was written")
            )
            return
        self.dismiss((value,))

    def action_cancel(self) -> None:
        self.dismiss(None)
