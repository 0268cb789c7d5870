"""Phase signatures, checked once: when a node class is defined or a node is built.

A phase written the PocketFlow way (``def prep(self, shared)``, without ``ctx``) would
otherwise fail in the middle of a run with "takes 2 positional arguments but 3 were
given". Checking at definition names the node, the phase and the parameters expected.
Whether a phase is ``async def`` is found out here too, once (``async_phases``): the
drivers then await those phases and call the others, with no test per step.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

# The parameters every phase is called with (after ``self`` for methods).
EXPECTED: dict[str, tuple[str, ...]] = {
    "prep": ("ctx", "shared"),
    "exec": ("ctx", "prep_result"),
    "post": ("ctx", "shared", "prep_result", "exec_result"),
    "exec_fallback": ("prep_result", "error"),
    "process": ("ctx", "item"),
    "batch_func": ("ctx", "shared"),
}


def is_async(fn: Any) -> bool:
    """``async def`` functions, including ``functools.partial`` and callable objects."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return True
    call = type(fn).__dict__.get("__call__") or getattr(type(fn), "__call__", None)  # noqa: B004
    return not inspect.isfunction(fn) and not inspect.ismethod(fn) and inspect.iscoroutinefunction(call)


def check_phase(owner: str, phase: str, fn: Callable[..., Any], *, method: bool) -> None:
    """Raise ``TypeError`` naming ``owner`` and ``phase`` unless ``fn`` can be called with the
    phase's arguments (plus ``self`` when ``method``); ``async def`` or plain."""
    expected = EXPECTED[phase]
    spelled = f"({'self, ' if method else ''}{', '.join(expected)})"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and C callables: nothing to read
        return
    count = len(expected) + (1 if method else 0)
    try:
        signature.bind(*([None] * count))
    except TypeError:
        raise TypeError(
            f"{owner}: {phase} must take {spelled}, but is defined as {phase}{signature}"
            + (
                " (the engine passes a Context first: add ctx)"
                if "ctx" in expected and "ctx" not in signature.parameters
                else ""
            )
        ) from None


def check_class(cls: type, phases: tuple[str, ...]) -> None:
    """Check the phases a class defines itself (inherited ones were checked with their class)."""
    for phase in phases:
        fn = cls.__dict__.get(phase)
        if fn is None:
            continue
        if isinstance(fn, staticmethod):
            check_phase(f"node class {cls.__name__}", phase, fn.__func__, method=False)
        elif isinstance(fn, classmethod):
            continue  # bound to the class: unusual for a phase; leave it to the run
        elif callable(fn):
            check_phase(f"node class {cls.__name__}", phase, fn, method=True)


def async_phases(node: Any, phases: tuple[str, ...]) -> frozenset[str]:
    """The phases of ``node`` (a node or a node class) that are ``async def``."""
    return frozenset(phase for phase in phases if is_async(getattr(node, phase, None)))


class AwaitableReturned(TypeError):
    """A plain ``def`` phase returned an awaitable: a ``TypeError`` the drivers pass on as
    it is (it is not a failed attempt to retry)."""


def awaitable_returned(owner: str, phase: str, value: Any) -> AwaitableReturned:
    """The error for a plain ``def`` phase that returned an awaitable (it would never be
    awaited); a coroutine is closed so that Python does not warn about it as well."""
    close = getattr(value, "close", None)
    if inspect.iscoroutine(value) and callable(close):
        close()
    return AwaitableReturned(
        f"{owner}: {phase} is a plain def but returned {type(value).__name__}, an awaitable; "
        f"write it as async def {phase}(...) so the engine awaits it"
    )
