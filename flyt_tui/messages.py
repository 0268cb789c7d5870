"""Messages the workers post to the app (dataclasses; workers never touch widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from .core.loading import LoadedModule, LoadError
    from .core.recording_reader import RecordingHead
    from .core.session import RunSession


@dataclass
class RunEnded(Message):
    """A run's worker returned: the session holds its final state."""

    session: RunSession


@dataclass
class FilesChanged(Message):
    """The watcher saw Python files saved in the flow's directory."""

    paths: set[Path]


@dataclass
class ModuleLoaded(Message):
    """A (re)load succeeded."""

    loaded: LoadedModule
    reloaded: bool


@dataclass
class LoadFailed(Message):
    """A (re)load failed; the last good graph stays."""

    error: LoadError
    reloaded: bool


@dataclass
class RecordingOpened(Message):
    """A recording's head was read: its run is played next."""

    head: RecordingHead
