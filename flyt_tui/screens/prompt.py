"""A one-line prompt (a conditional breakpoint, an expression to evaluate): a modal Input
that checks what is typed and says why it refuses it, without closing."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class Prompt(ModalScreen[str | None]):
    """Ask for one line; dismisses with the text (``None`` on escape). ``check(text)``
    returns why the text is refused, or ``None`` to accept it."""

    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical { width: 90%; max-width: 110; height: auto; border: round $accent; padding: 0 1; background: $panel; }
    Prompt #prompt-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, value: str = "", *, check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text, style="bold"))
            yield Input(self.value, id="prompt-input")
            yield Static("", id="prompt-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        why = self.check(text) if self.check is not None and text else None
        if why is not None:
            self.query_one("#prompt-error", Static).update(Text(why))
            return
        self.dismiss(text or None)

    def show_error(self, text: str) -> None:
        self.query_one("#prompt-error", Static).update(Text(text))

    def action_cancel(self) -> None:
        self.dismiss(None)
