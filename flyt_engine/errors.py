"""The engine's exceptions: one base class, and one subclass per way a run can fail."""

from __future__ import annotations

from typing import Any


def error_text(error: BaseException | None, limit: int = 2000) -> str:
    """``"Type: message"`` for any exception, never raising: an exception whose ``__str__``
    raises (or returns a non-string) shows as ``<unprintable Type>``; long text is capped."""
    if error is None:
        return "failed"
    name = _type_name(error)
    try:
        text = str(error)
        if not isinstance(text, str):
            raise TypeError("__str__ returned a non-string")
    except BaseException:
        return f"<unprintable {name}>"
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{name}: {text}" if text else name


def _type_name(error: BaseException) -> str:
    try:
        return type(error).__name__
    except BaseException:  # pragma: no cover - a metaclass that refuses its own name
        return "exception"


class FlytError(Exception):
    """Base of every error the engine raises."""


class Cancelled(FlytError):
    """The run's context was cancelled (Go's ``context.Canceled``)."""


class DeadlineExceeded(Cancelled, TimeoutError):
    """The run's context passed its deadline (Go's ``context.DeadlineExceeded``)."""


class NodeError(FlytError):
    """A node failed in one phase; the original exception is ``__cause__``.

    ``node`` is the node object, ``node_name`` its name, ``phase`` one of ``"prep"``,
    ``"exec"`` or ``"post"``, ``attempts`` the number of exec attempts made.
    """

    def __init__(self, node: Any, phase: str, attempts: int, error: BaseException | None) -> None:
        self.node = node
        self.node_name: str = node if isinstance(node, str) else getattr(node, "name", type(node).__name__)
        self.phase = phase
        self.attempts = attempts
        self.error = error
        detail = error_text(error)
        super().__init__(
            f"node {self.node_name!r} failed in {phase} after {attempts} exec "
            f"attempt{'s' if attempts != 1 else ''}: {detail}"
        )

    def __reduce__(self):  # keep NodeError picklable (process pools, Dask)
        return (type(self), (self.node_name, self.phase, self.attempts, self.error))


class BatchError(FlytError):
    """Some items of a batch failed; the finished items' results are not lost.

    ``errors`` is index-aligned with the items (``None`` where the item succeeded),
    ``results`` holds the partial results, ``message`` says e.g. ``"2/5 items failed"``.
    """

    def __init__(
        self, message: str, errors: list[BaseException | None], results: list[Any], node_name: str = ""
    ) -> None:
        self.message = message
        self.errors = errors
        self.results = results
        self.node_name = node_name
        first = next(((i, e) for i, e in enumerate(errors) if e is not None), None)
        detail = f" (first: item #{first[0]}: {error_text(first[1])})" if first else ""
        where = f"batch {node_name!r}: " if node_name else ""
        super().__init__(f"{where}{message}{detail}")

    def __reduce__(self):
        return (type(self), (self.message, self.errors, self.results, self.node_name))


class BindError(FlytError):
    """``SharedStore.bind`` could not produce the requested type; the message says why."""


class WorkerLost(FlytError):
    """The executor lost an item: the worker running it died, or the executor dropped it.

    Raised per item (it lands in ``BatchError.errors``); the message names the batch and
    the item. Executors report it to the batch by failing the item's future with it (or
    with ``concurrent.futures.BrokenExecutor``); the batch then names batch and index.
    """
