"""Edit a value as JSON (a store value while the run is paused, or a past value or phase
result for a fork): invalid JSON is refused with the parse error and nothing is written; a
value JSON cannot say is shown read-only."""

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
    """``value`` as indented JSON when JSON says it exactly (round-trips, tuples as arrays:
    ``shaped_like`` makes them tuples again), else ``None``."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
        if shaped_like(json.loads(text), value) != value:
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return text


def shaped_like(new: Any, old: Any) -> Any:
    """``new`` (parsed JSON) with its arrays made tuples where ``old`` had a tuple at the same
    place: a prep result ``(question, notes)`` edited as ``["...", {...}]`` stays a tuple."""
    if isinstance(old, tuple) and type(new) is list:
        if len(new) == len(old):
            return tuple(shaped_like(item, was) for item, was in zip(new, old, strict=True))
        return tuple(new)
    if type(old) is list and type(new) is list and len(new) == len(old):
        return [shaped_like(item, was) for item, was in zip(new, old, strict=True)]
    if isinstance(old, dict) and type(new) is dict:
        return {key: shaped_like(item, old[key]) if key in old else item for key, item in new.items()}
    return new


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

    def __init__(self, key: str, value: Any, *, writes: str = "writes it while the run is held") -> None:
        super().__init__()
        self.key = key
        self.value = value
        self.text = as_json(value)
        self.writes = writes  # what ctrl+s does with the value, in the title

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.text is None:
                yield Label(
                    Text(f"{self.key} ({type_name(self.value)}) is not JSON-representable: read-only", style="bold")
                )
                yield TextArea(safe_repr(self.value, 4000), read_only=True, id="editor-area")
                yield Static(Text("escape closes", style="dim"))
            else:
                yield Label(Text(f"{self.key} = (JSON)   ctrl+s {self.writes} · escape cancels", style="bold"))
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
            value = shaped_like(json.loads(source), self.value)
        except json.JSONDecodeError as exc:
            self.query_one("#editor-error", Static).update(
                Text(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); nothing was written")
            )
            return
        self.dismiss((value,))

    def action_cancel(self) -> None:
        self.dismiss(None)
