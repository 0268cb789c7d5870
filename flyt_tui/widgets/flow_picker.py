"""The flow picker: a modal list of the flows a module offers (at start, and to switch)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class FlowPicker(ModalScreen[str | None]):
    """Pick one of ``choices`` (name, description); dismisses with the name, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]

    def __init__(self, choices: list[tuple[str, str]], current: str | None = None) -> None:
        super().__init__()
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(Text("Which flow?", style="bold"), id="picker-title")
            options = []
            for name, description in self.choices:
                prompt = Text(no_wrap=True)
                prompt.append(name, style="bold")
                if description:
                    prompt.append(f"  {description}", style="dim")
                if name == self.current:
                    prompt.append("  (open)", style="green")
                options.append(Option(prompt, id=name))
            yield OptionList(*options, id="picker-list")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        names = [name for name, _ in self.choices]
        if self.current in names:
            option_list.highlighted = names.index(self.current)
        else:
            option_list.highlighted = 0
        option_list.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
