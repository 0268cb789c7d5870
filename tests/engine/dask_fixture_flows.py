"""Flows for test_dask.py. The test loads this file by path under a name no worker can
import (as the workbench loads a user's flow file), so it only works on Dask if the
executor ships this module's code by value."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from pathlib import Path
from typing import Any

from flyt_engine import BatchNode, Context, Flow, Node, SharedStore


class InvalidUser(ValueError):
    """A user-defined exception: it must come back from the worker as this very class."""


class Profile:
    """A user-defined result type: it must come back as this very class too."""

    def __init__(self, name: str, email: str) -> None:
        self.name = name
        self.email = email

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and (self.name, self.email) == (other.name, other.email)

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, {self.email!r})"


def normalize(ctx: Context, user: dict[str, Any]) -> Profile:
    email = user["email"].strip().lower()
    if "@" not in email:
        raise InvalidUser(f"{user['name']}: invalid email {user['email']!r}")
    return Profile(user["name"].title(), email)


def worker_pid(ctx: Context, item: Any) -> int:
    return os.getpid()


def token(ctx: Context, item: Any) -> str:
    """Non-deterministic: identical items must still run once each."""
    return uuid.uuid4().hex


def fail_first_attempt(ctx: Context, item: tuple[str, str]) -> str:
    """Fails until a marker file exists (attempts may land on different processes)."""
    folder, name = item
    marker = Path(folder) / name
    if not marker.exists():
        marker.write_text("tried")
        raise ConnectionError(f"{name}: first attempt fails")
    return f"{name} ok"


def sleep_then_echo(ctx: Context, item: tuple[str, float]) -> float:
    """Sleeps ``seconds``, or less once the file ``folder/stop`` exists (Dask cannot stop a
    running task's thread, so the test releases its sleepers this way)."""
    folder, seconds = item
    stop = Path(folder) / "stop"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.exists():
        time.sleep(0.02)
    return seconds


_runs = itertools.count(1)


def runs_of_this_copy(ctx: Context, item: Any) -> tuple[int, int]:
    """The worker's pid, and how many items this copy of the module's code has run."""
    return os.getpid(), next(_runs)


def die_on_request(ctx: Context, item: str) -> str:
    if item == "die":
        os._exit(13)  # the worker process dies mid-batch
    return item.upper()


def unit_label(ctx: Context, item: int) -> str:
    return f"{item} {ctx.value('unit')}"


class Scorer(BatchNode):
    """A subclass-style batch node: its class travels by value, its executor stays home."""

    def process(self, ctx: Context, item: int) -> int:
        return item * item + 1


def user_flow() -> Flow:
    """validate → greet, or validate → reject for an invalid email."""

    def validate(ctx: Context, shared: SharedStore, prep: Any, result: Any) -> str:
        valid = "@" in shared.get_str("email")
        shared.set("valid", valid)
        return "ok" if valid else "invalid"

    def greet(ctx: Context, shared: SharedStore, prep: Any, result: Any) -> None:
        shared.set("greeting", f"hello {shared.get('name')} (pid {os.getpid()})")

    def reject(ctx: Context, name: Any) -> None:
        raise InvalidUser(f"{name} rejected")

    check = Node(post=validate, name="validate")
    hello = Node(post=greet, name="greet")
    refuse = Node(prep=lambda ctx, shared: shared.get("name"), exec=reject, name="reject")
    return Flow(check).connect(check, "ok", hello).connect(check, "invalid", refuse)


def user_inputs(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
    return [{"name": user["name"], "email": user["email"]} for user in shared.get("users")]
