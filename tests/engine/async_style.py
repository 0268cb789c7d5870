"""What the ``each_style`` fixture (conftest.py) skips under async phases, and why."""

from __future__ import annotations

import pytest

# Rules of sync runs that async phases do not share, by design (API.md "Async phases"):
BLOCKING = "plain phases that block (a barrier, time.sleep) run inline on the loop, so they cannot overlap"
NESTED = "a plain def calling run() on a graph with async phases from inside a running loop is a TypeError"


def skip_when_async(style: str, why: str) -> None:
    """Skip a sync-only rule under the async style, saying why."""
    if style == "async":
        pytest.skip(why)
