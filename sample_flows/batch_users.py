"""Batch users: onboard a dozen sign-ups with a concurrent BatchNode and a BatchFlow.

What it shows:
- load_users reads sample_flows/data/users.json (12 sign-ups, no network);
- normalize_users is a concurrent BatchNode (4 at a time, ~60 ms each): it tidies names and
  emails and parses the signup date; one record has an impossible date (2024-13-45), so its
  item fails and the per-item fallback keeps the record with the problem noted;
- onboard_users is a concurrent BatchFlow (3 at a time): every user runs a fresh
  validate → enrich → welcome flow on a store of its own, and an invalid email routes to
  quarantine instead. enrich's regional service for Brazil times out on the first attempt,
  so one user's enrich retries (max_retries=3, wait=0.1 s) before it succeeds;
- report sums up from batch_results, which holds each iteration's final store in input order.
In the workbench each batch gets a progress bar, and a user's sub-flow shows up under
onboard_users / #i / validate ... so you can drill into one item.

Run it:
    flyt-tui sample_flows/batch_users.py                  # the workbench
    flyt-tui --headless sample_flows/batch_users.py       # progress on stderr, final store on stdout
    python sample_flows/batch_users.py                    # plain run: progress, then the report
    python sample_flows/batch_users.py --dask             # the same batches on a local Dask cluster
    python sample_flows/batch_users.py --dask tcp://scheduler:8786    # ... or on your own scheduler
(--dask needs the [dask] extra; on a remote cluster the workers need flyt-python installed,
this file's code travels with each item.) Store keys you can override with --set:
users_file (relative to this file), pace (multiplies the onboarding delays; 0 is full speed).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from concurrent.futures import Executor
from datetime import date
from pathlib import Path
from typing import Any

from flyt_engine import BatchFlow, BatchNode, Context, Flow, Node, SharedStore

HERE = Path(__file__).resolve().parent
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PLANS = {"free": "Free", "pro": "Pro", "team": "Team", "enterprise": "Enterprise"}
REGIONS = {  # what the (pretend) regional service answers, per country
    "AT": {"region": "EU", "timezone": "Europe/Vienna", "currency": "EUR"},
    "BR": {"region": "LATAM", "timezone": "America/Sao_Paulo", "currency": "BRL"},
    "DE": {"region": "EU", "timezone": "Europe/Berlin", "currency": "EUR"},
    "FR": {"region": "EU", "timezone": "Europe/Paris", "currency": "EUR"},
    "GB": {"region": "EU", "timezone": "Europe/London", "currency": "GBP"},
    "IN": {"region": "APAC", "timezone": "Asia/Kolkata", "currency": "INR"},
    "JP": {"region": "APAC", "timezone": "Asia/Tokyo", "currency": "JPY"},
    "US": {"region": "NA", "timezone": "America/New_York", "currency": "USD"},
}
SLOW_REGIONS = {"LATAM"}  # their service times out on the first call


def initial_store() -> dict[str, Any]:
    """Where the sign-ups are, and how slowly to onboard them (so progress is visible)."""
    return {"users_file": "data/users.json", "pace": 1.0}


# -- load ---------------------------------------------------------------------------------------
def read_users(ctx: Context, path: str) -> list[dict[str, Any]]:
    file = Path(path)
    return json.loads((file if file.is_absolute() else HERE / file).read_text(encoding="utf-8"))


load_users = Node(
    prep=lambda ctx, shared: shared.get_str("users_file", "data/users.json"),
    exec=read_users,
    post=lambda ctx, shared, path, users: shared.set("users", users),
    name="load_users",
)


# -- normalize: a concurrent BatchNode ----------------------------------------------------------------
def normalize(ctx: Context, user: dict[str, Any]) -> dict[str, Any]:
    """One sign-up, tidied: names in title case, emails lower case, the signup date parsed."""
    ctx.sleep(0.06)
    record = {
        "id": user["id"],
        "name": _capitalized(user["name"]),
        "email": user["email"].strip().lower(),
        "country": user["country"].upper(),
        "plan": user["plan"].lower(),
        "issues": [],
    }
    record["signup"] = date.fromisoformat(user["signup"]).isoformat()  # raises on a bad date
    return record


def _capitalized(name: str) -> str:
    return " ".join(part[:1].upper() + part[1:] for part in name.split())


def keep_with_issue(user: dict[str, Any], error: BaseException) -> dict[str, Any]:
    """The fallback of one item: keep the user, note what could not be normalized."""
    return {
        "id": user["id"],
        "name": _capitalized(user["name"]),
        "email": user["email"].strip().lower(),
        "country": user["country"].upper(),
        "plan": user["plan"].lower(),
        "signup": None,
        "issues": [f"signup date {user['signup']!r} is not a date ({error})"],
    }


# -- onboard: a BatchFlow, one fresh flow per user ---------------------------------------------------------
class Validate(Node):
    """Routes "valid" or "invalid"; the problems go to the iteration's store."""

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        return shared.get_dict("user"), shared.get_float("pace", 1.0)

    def exec(self, ctx: Context, prep_result: Any) -> list[str]:
        user, pace = prep_result
        ctx.sleep(0.05 * pace)
        problems = []
        if not EMAIL.match(user["email"]):
            problems.append(f"invalid email {user['email']!r}")
        if user["plan"] not in PLANS:
            problems.append(f"unknown plan {user['plan']!r}")
        if user["country"] not in REGIONS:
            problems.append(f"unsupported country {user['country']!r}")
        return problems

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, problems: list[str]) -> str:
        shared.set("problems", problems)
        return "invalid" if problems else "valid"


class Enrich(Node):
    """Looks the user's region up; the LATAM service times out on its first call."""

    max_retries = 3
    wait = 0.1

    def prep(self, ctx: Context, shared: SharedStore) -> Any:
        self.attempts = 0  # a fresh flow per user: this count belongs to one user
        return shared.get_dict("user"), shared.get_float("pace", 1.0)

    def exec(self, ctx: Context, prep_result: Any) -> dict[str, str]:
        user, pace = prep_result
        self.attempts += 1
        ctx.sleep(0.08 * pace)
        info = REGIONS[user["country"]]
        if info["region"] in SLOW_REGIONS and self.attempts == 1:
            raise TimeoutError(f"{info['region']} region service timed out for user {user['id']}")
        return info

    def post(self, ctx: Context, shared: SharedStore, prep_result: Any, info: dict[str, str]) -> None:
        shared.set("region", info)
        shared.set("enrich_attempts", self.attempts)


def compose_welcome(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> None:
    user, region = shared.get_dict("user"), shared.get_dict("region")
    note = " We could not read your signup date; support will be in touch." if user["issues"] else ""
    shared.set(
        "welcome",
        f"Welcome aboard, {user['name']}! Your {PLANS[user['plan']]} plan is ready "
        f"({region['timezone']}, prices in {region['currency']}).{note}",
    )


def quarantine(ctx: Context, shared: SharedStore, prep_result: Any, exec_result: Any) -> None:
    shared.set("quarantined", shared.get_list("problems"))


def onboarding_flow() -> Flow:
    """The flow each user runs: validate → enrich → welcome, or validate → quarantine."""
    validate = Validate(name="validate")
    enrich = Enrich(name="enrich")
    welcome = Node(exec=lambda ctx, p: ctx.sleep(0.04), post=compose_welcome, name="welcome")
    hold = Node(post=quarantine, name="quarantine")
    return (
        Flow(validate, name="onboard_user")
        .connect(validate, "valid", enrich)
        .connect(validate, "invalid", hold)
        .connect(enrich, "default", welcome)
    )


def users_to_onboard(ctx: Context, shared: SharedStore) -> list[dict[str, Any]]:
    """One FlowInputs per normalized user; the parent's other keys come along (pace, ...)."""
    return [{"user": user, "user_id": user["id"]} for user in shared.get_list("normalized", [])]


# -- report ----------------------------------------------------------------------------------------------
def summarize(ctx: Context, runs: list[dict[str, Any]]) -> dict[str, Any]:
    welcomed = [run for run in runs if run and "welcome" in run]
    held = [run for run in runs if run and "quarantined" in run]
    return {
        "users": len(runs),
        "welcomed": len(welcomed),
        "quarantined": {run["user_id"]: run["quarantined"] for run in held},
        "retried": {run["user_id"]: run["enrich_attempts"] for run in welcomed if run["enrich_attempts"] > 1},
        "with_issues": {run["user_id"]: run["user"]["issues"] for run in runs if run and run["user"]["issues"]},
        "welcomes": [run["welcome"] for run in welcomed],
    }


report = Node(
    prep=lambda ctx, shared: shared.get_list("batch_results", []),
    exec=summarize,
    post=lambda ctx, shared, runs, summary: shared.set("report", summary),
    name="report",
)


def build_flow(executor: Executor | None = None) -> Flow:
    """The whole pipeline; with ``executor`` both batches run their items there (e.g. Dask)."""
    normalize_users = BatchNode(
        normalize,
        True,
        items_key="users",
        results_key="normalized",
        count_key="normalized_count",
        concurrency=4,
        fallback=keep_with_issue,
        executor=executor,
        name="normalize_users",
    )
    onboard_users = BatchFlow(
        onboarding_flow, users_to_onboard, True, concurrency=3, executor=executor, name="onboard_users"
    )
    return (
        Flow(load_users, name="batch_users")
        .connect(load_users, "default", normalize_users)
        .connect(normalize_users, "default", onboard_users)
        .connect(onboard_users, "default", report)
    )


flow = build_flow()


# -- headless ----------------------------------------------------------------------------------------------
class Progress:
    """Prints one line per batch with a mark per finished item, and every retry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self.lock:
            if event.kind == "batch_started":
                print(f"{event.node}: {event.total} items ", end="", flush=True)
            elif event.kind == "batch_item_finished":
                print("." if event.ok else "x", end="", flush=True)
            elif event.kind == "batch_finished":
                print(f" {event.done} done, {event.failed} failed")
            elif event.kind == "exec_failed" and event.wait:
                where = "/".join(event.path[1:])
                print(f"\n  retry {where}: {type(event.error).__name__}: {event.error} ", end="", flush=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Onboard the sample users (see the module docstring).")
    parser.add_argument(
        "--dask",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run both batches on Dask: a local cluster, or the scheduler at ADDRESS (tcp://host:8786)",
    )
    args = parser.parse_args(argv)
    shared = SharedStore(initial_store())
    ctx = Context.background().with_observer(Progress())
    if args.dask is None:
        flow.run(shared, ctx=ctx)
    else:
        from flyt_engine.dask import executor

        with executor(args.dask or None) as dask_executor:
            where = args.dask or "a local cluster"
            print(f"running the batches on Dask ({where}, dashboard: {dask_executor.client.dashboard_link})")
            build_flow(dask_executor).run(shared, ctx=ctx)
    summary = shared.get("report")
    print(f"\n{summary['welcomed']} of {summary['users']} users welcomed")
    for user_id, problems in summary["quarantined"].items():
        print(f"  quarantined {user_id}: {'; '.join(problems)}")
    for user_id, attempts in summary["retried"].items():
        print(f"  user {user_id}: enrich needed {attempts} attempts")
    for user_id, issues in summary["with_issues"].items():
        print(f"  user {user_id}: {'; '.join(issues)}")
    print()
    for line in summary["welcomes"]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
