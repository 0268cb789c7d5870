"""Where a node's phases are written: file, line and text, for the inspector and ``ctrl+e``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from flyt_engine import Node

PHASE_NAMES = ("prep", "exec", "post", "exec_fallback", "process")


@dataclass(frozen=True)
class PhaseSource:
    phase: str
    file: str
    line: int
    text: str  # the source of the function, as written


def _function_of(node: Node, phase: str) -> Any:
    """The user's function behind ``node.phase``, or ``None`` for the engine's defaults."""
    fn = node.__dict__.get(phase)  # functional style: Node(exec=fn)
    if fn is None:
        fn = getattr(type(node), phase, None)
    if fn is None:
        return None
    fn = inspect.unwrap(getattr(fn, "__func__", fn))
    module = getattr(fn, "__module__", "") or ""
    if module.startswith("flyt_engine"):
        return None  # the engine's default phase: nothing the user wrote
    return fn


def phase_source(node: Node, phase: str) -> PhaseSource | None:
    """The source of one phase the user wrote, or ``None`` (a default, a builtin, no file)."""
    fn = _function_of(node, phase)
    if fn is None:
        return None
    try:
        file = inspect.getsourcefile(fn) or inspect.getfile(fn)
        lines, line = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    return PhaseSource(phase, file, max(1, line), "".join(lines))


def node_sources(node: Node) -> list[PhaseSource]:
    """Every phase of ``node`` the user wrote, in phase order."""
    found = [phase_source(node, phase) for phase in PHASE_NAMES]
    return [source for source in found if source is not None]
