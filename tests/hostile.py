"""Hostile values and errors, shared by the engine, headless and workbench tests (issue 15)."""

from __future__ import annotations

import time


class UnprintableError(RuntimeError):
    """An exception whose ``__str__`` and ``__repr__`` raise."""

    def __str__(self) -> str:
        raise ValueError("no text for you")

    def __repr__(self) -> str:
        raise ValueError("no repr either")


class UnprintableBaseException(BaseException):
    """A BaseException (not an Exception) whose text cannot be made."""

    def __str__(self) -> str:
        raise ValueError("no text")


class BadRepr:
    """A value whose ``repr`` raises."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")


class SlowRepr:
    """A value whose ``repr`` takes ``seconds``."""

    def __init__(self, seconds: float = 5.0) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        time.sleep(self.seconds)
        return "<slow>"


def self_containing_list() -> list[object]:
    value: list[object] = [1, 2]
    value.append(value)
    return value


def deeply_nested(depth: int = 5000) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


HUGE_INT = 10**5000  # 5,001 digits: beyond sys.get_int_max_str_digits()
TEN_MB = "x" * (10 * 1024 * 1024)
