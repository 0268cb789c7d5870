"""The sample flows: each runs to completion and leaves the store (and database) it promises."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sqlite3
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flyt_engine import Context, NodeError, SharedStore
from flyt_engine.events import BatchStarted, ExecFailed, FallbackUsed, NodeFinished, NodeStarted
from flyt_tui.core.loading import load_module
from flyt_tui.headless import run_headless

SAMPLES = Path(__file__).resolve().parents[1] / "sample_flows"
ORDERS = SAMPLES / "data" / "orders.csv"
INVALID_LINES = {8, 15, 23, 32, 40, 47}  # the rows of orders.csv that are broken on purpose


@pytest.fixture(autouse=True)
def _restore_sys_path():
    before = sys.path[:]
    yield
    sys.path[:] = before


def import_sample(name: str) -> ModuleType:
    """A fresh copy of the sample module (fresh node objects, no state from other tests)."""
    spec = importlib.util.spec_from_file_location(f"_sample_{name}", SAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def run_sample(module: ModuleType, **overrides: Any) -> tuple[str, SharedStore, list]:
    """Run ``module.flow`` on its initial store plus ``overrides``; return action, store, events."""
    events: list = []
    store = SharedStore({**module.initial_store(), **overrides})
    action = module.flow.run(store, ctx=Context.background().with_observer(events.append))
    return action, store, events


def csv_order_ids(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["order_id"] for row in csv.DictReader(handle)]


# ---------------------------------------------------------------------------------------
# etl
# ---------------------------------------------------------------------------------------
def test_etl_loads_the_valid_rows_into_sqlite(tmp_path):
    etl = import_sample("etl")
    db = tmp_path / "orders.db"
    action, store, events = run_sample(etl, db_path=str(db), pace=0)
    assert action == "default"

    rejected = store.get("rejected")
    assert {r["line"] for r in rejected} == INVALID_LINES
    assert len(store.get("quarantine_report")) == len(INVALID_LINES)
    all_ids = csv_order_ids(ORDERS)
    valid_count = len(all_ids) - len(INVALID_LINES)
    assert store.get("extracted") == len(all_ids)
    assert store.get("loaded") == store.get("db_rows") == valid_count

    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT order_id, customer, email, country, quantity, total FROM orders").fetchall()
    assert len(rows) == valid_count
    loaded_ids = {row[0] for row in rows}
    rejected_ids = {r["order_id"] for r in rejected if not r["reason"].startswith("duplicate")}
    assert loaded_ids == set(all_ids) - rejected_ids
    by_id = {row[0]: row for row in rows}
    assert by_id["ORD-1004"][1] == "Grace Hopper"  # whitespace and case normalised by transform
    assert by_id["ORD-1010"][2] == "linus.torvalds@example.com"
    assert by_id["ORD-1018"][3] == "SE"
    assert by_id["ORD-1003"][4:] == (4, 356.0)

    # the run went through quarantine, retried load twice and fell back on notify
    edges = [(e.node, e.action, e.next_node) for e in events if type(e) is NodeFinished and len(e.path) == 2]
    assert ("Validate", "invalid", "Quarantine") in edges  # class names: the loader is not involved here
    assert ("Quarantine", "default", "Transform") in edges
    retries = [(e.node, e.attempt) for e in events if type(e) is ExecFailed]
    assert retries == [("Load", 1), ("Load", 2), ("Notify", 1), ("Notify", 2)]
    assert store.get("load_attempts") == 3
    assert [e.node for e in events if type(e) is FallbackUsed] == ["Notify"]
    assert store.get("notification") == "notification queued"
    assert [e.total for e in events if type(e) is BatchStarted] == [valid_count]


def test_etl_nodes_are_named_after_their_variables_in_the_workbench():
    loaded = load_module(SAMPLES / "etl.py")
    flow = loaded.entries[0].flow
    assert flow.name == "etl"
    names = {node.name for node in flow.nodes()}
    assert names == {"extract", "validate", "quarantine", "transform", "load", "notify"}
    assert set(flow.successors(loaded.module.validate)) == {"valid", "invalid"}


def test_etl_upsert_is_idempotent_and_updates_changed_rows(tmp_path):
    etl = import_sample("etl")
    db = tmp_path / "orders.db"
    run_sample(etl, db_path=str(db), pace=0, load_failures=0)
    source = tmp_path / "orders.csv"
    text = ORDERS.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("ORD-1001,"))
    assert ",1,24.99," in line
    source.write_text(text.replace(line, line.replace(",1,24.99,", ",3,24.99,")), encoding="utf-8")
    _, store, _ = run_sample(etl, db_path=str(db), source_csv=str(source), pace=0, load_failures=0)
    assert store.get("db_rows") == store.get("loaded")  # no duplicates after a second load
    with sqlite3.connect(db) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM orders").fetchone()
        quantity, total = connection.execute("SELECT quantity, total FROM orders WHERE order_id='ORD-1001'").fetchone()
    assert count == store.get("loaded")
    assert (quantity, total) == (3, 74.97)


def test_etl_takes_the_valid_branch_when_every_row_is_good(tmp_path):
    etl = import_sample("etl")
    source = tmp_path / "clean.csv"
    with ORDERS.open(newline="", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    source.write_text("\n".join(lines[:1] + lines[1:6]) + "\n", encoding="utf-8")
    _, store, events = run_sample(etl, db_path=str(tmp_path / "x.db"), source_csv=str(source), pace=0)
    edges = [(e.node, e.action, e.next_node) for e in events if type(e) is NodeFinished and len(e.path) == 2]
    assert ("Validate", "valid", "Transform") in edges
    assert not any(type(e) is NodeStarted and e.node == "Quarantine" for e in events)
    assert store.get("rejected") == []
    assert store.get("loaded") == 5


def test_etl_fails_when_load_keeps_failing(tmp_path):
    etl = import_sample("etl")
    store = SharedStore({**etl.initial_store(), "db_path": str(tmp_path / "x.db"), "pace": 0, "load_failures": 3})
    with pytest.raises(NodeError) as info:
        etl.flow.run(store)
    assert (info.value.node_name, info.value.phase, info.value.attempts) == ("Load", "exec", 3)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert not (tmp_path / "x.db").exists()


# ---------------------------------------------------------------------------------------
# retry_fallback
# ---------------------------------------------------------------------------------------
def test_retry_fallback_sample():
    sample = import_sample("retry_fallback")
    action, store, events = run_sample(sample)
    assert action == "default"
    assert store.get("attempts") == {"fetch_rates": 3, "sync_inventory": 4, "charge_card": 2}
    assert store.get("rates")["USD"] == 1.09
    assert store.get("backoff_waits") == [0.05, 0.1, 0.2]
    assert [e.wait for e in events if type(e) is ExecFailed and e.node == "SyncInventory"] == [0.05, 0.1, 0.2]
    # selective retry: the permanent error cut the attempts from 4 to 2
    charge = [(e.attempt, e.max_attempts) for e in events if type(e) is ExecFailed and e.node == "ChargeCard"]
    assert charge == [(1, 4), (2, 2)]
    assert store.get("payment") == {
        "status": "payment_pending",
        "reason": "card declined for 129.90 EUR (insufficient funds)",
    }
    assert store.get("receipt") == "receipt for ORD-2024-0042 queued for later (ConnectionError)"
    assert sorted(e.node for e in events if type(e) is FallbackUsed) == ["ChargeCard", "send_email"]


# ---------------------------------------------------------------------------------------
# nested
# ---------------------------------------------------------------------------------------
def test_nested_routes_on_the_sub_flows_last_action():
    nested = import_sample("nested")
    action, store, events = run_sample(nested, pace=0)
    assert action == "done"
    assert store.get("length") == "long"
    assert store.get("route") == "summarize"
    assert store.get("published") == {
        "summary": "The workbench now shows nested flows as a tree.",
        "words": store.get("word_count"),
        "via": "summarize",
    }
    deepest = max((e.path for e in events if type(e) is NodeStarted), key=len)
    assert len(deepest) == 4  # nested / analyze / cleanup / strip_markup
    assert deepest[0] == "nested"


def test_nested_short_document_takes_the_other_branch():
    nested = import_sample("nested")
    _, store, _ = run_sample(nested, pace=0, document="<p>Short   <i>note</i>.</p>")
    assert store.get("length") == "short"
    assert store.get("route") == "keep_short"
    assert store.get("published")["summary"] == "Short note ."
    assert store.get("word_count") == 2


# ---------------------------------------------------------------------------------------
# agent_loop
# ---------------------------------------------------------------------------------------
def test_agent_loop_answers_after_a_few_turns():
    agent = import_sample("agent_loop")
    action, store, events = run_sample(agent, pace=0)
    assert action == "answer"
    assert store.get("turns") == 4
    assert sum(1 for e in events if type(e) is NodeStarted and e.node == "Decide") == 4
    assert store.get("notes") == {"population": 387_758, "area": 103_000, "density": 3.76}
    assert store.get("answer").startswith("Iceland has about 3.76 inhabitants per km²")
    assert store.get("trace")[-1] == "decide → answer"


def test_agent_loop_gives_up_at_max_turns_and_on_unknown_subjects():
    agent = import_sample("agent_loop")
    _, store, _ = run_sample(agent, pace=0, max_turns=2)
    assert store.get("turns") == 3
    assert store.get("answer") == "I could not work out the population density of Iceland."
    _, store, _ = run_sample(agent, pace=0, question="What is the population density of Atlantis?")
    assert store.get("answer") == "I could not work out the population density of Atlantis."


# ---------------------------------------------------------------------------------------
# Every sample, headless, as `flyt-tui --headless --json` runs it
# ---------------------------------------------------------------------------------------
EXPECTED_KEYS = {
    "etl": {"loaded": 46, "notification": "notification queued"},
    "retry_fallback": {"attempts": {"fetch_rates": 3, "sync_inventory": 4, "charge_card": 2}},
    "nested": {"route": "summarize"},
    "agent_loop": {"turns": 4},
    "checkout_bug": {"total": 66.99, "discount": 6.2},
}
ALL_SAMPLES = sorted(p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_the_documented_samples_exist():
    assert set(EXPECTED_KEYS) <= set(ALL_SAMPLES)


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_runs_headless_to_completion(tmp_path, name):
    overrides = {"pace": 0, "db_path": str(tmp_path / "out.db")}
    loaded = load_module(SAMPLES / f"{name}.py", overrides=overrides)
    assert len(loaded.entries) == 1
    out, err = io.StringIO(), io.StringIO()
    code = run_headless(loaded.entries[0].flow, loaded.initial_store, as_json=True, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    payload = json.loads(out.getvalue())
    assert payload["error"] is None
    for key, value in EXPECTED_KEYS.get(name, {}).items():
        assert payload["store"][key] == value
    if name in EXPECTED_KEYS:  # our samples say what they are and how to run them
        doc = loaded.module.__doc__ or ""
        assert f"flyt-tui sample_flows/{name}.py" in doc
        assert callable(loaded.module.initial_store)


# ---------------------------------------------------------------------------------------
# async_agent
# ---------------------------------------------------------------------------------------
def test_async_agent_calls_its_tools_concurrently_retries_and_falls_back(monkeypatch):
    sample = import_sample("async_agent")
    monkeypatch.setattr(sample, "LLM_LATENCY", 0.01)
    monkeypatch.setattr(sample, "TOOL_LATENCY", 0.3)
    started = time.monotonic()
    action, store, events = run_sample(sample)
    elapsed = time.monotonic() - started
    assert action == "answer"
    assert store.get("turn") == 2
    assert store.get("tool_results") == [
        "Oslo: sun, 12°C",
        "Bergen: rain, 12°C",
        "ACME: 41.20 (cached quote: TimeoutError)",
    ]
    assert sorted(e.path[-1] for e in events if type(e) is ExecFailed) == ["#1", "#2", "#2"]  # stock: both attempts
    assert [type(e).__name__ for e in events if type(e) is FallbackUsed] == ["FallbackUsed"]
    assert elapsed < 1.1  # at once: 0.3 + a retry (0.1 + 0.3); one after another it would take 1.3 s


def test_async_agent_stops_at_once_while_the_model_thinks():
    import threading

    from flyt_engine import Cancelled

    sample = import_sample("async_agent")
    ctx, cancel = Context.background().with_cancel()
    threading.Timer(0.1, cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        sample.flow.run(SharedStore(sample.initial_store()), ctx=ctx)
    assert time.monotonic() - started < sample.LLM_LATENCY
