"""ETL: orders from a CSV file into a SQLite database, the headline sample of the workbench.

What it shows:
- a linear pipeline extract → validate → transform → load → notify, with a branch: validate
  returns "invalid" when some rows are bad, and quarantine records them before the valid rows
  go on to transform ("valid" goes straight there);
- transform is a concurrent BatchNode (4 workers, ~30-60 ms per row) whose progress bar moves;
- load writes into a real SQLite file (sample_flows/out/etl.db) with an idempotent upsert
  (INSERT ... ON CONFLICT DO UPDATE: run it twice, the table keeps one row per order) and
  fails its first attempts on purpose ("database is locked"), then succeeds on retry;
- notify always fails (no network here) and its fallback queues the notification instead.

Run it:
    flyt-tui sample_flows/etl.py                     # the workbench
    flyt-tui --headless sample_flows/etl.py          # progress on stderr, final store on stdout
    python sample_flows/etl.py                       # plain engine run
Store keys you can override with --set: source_csv, db_path (relative paths are relative to
this file), pace (multiplies every delay; 0 runs at full speed), load_failures (attempts of
load that fail before one succeeds; 3 or more makes the flow fail).
"""

from __future__ import annotations

import csv
import re
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flyt_engine import BatchNode, Flow, Node

HERE = Path(__file__).resolve().parent
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def initial_store() -> dict[str, Any]:
    """Where to read, where to write, and how slow and flaky the run should be."""
    return {"source_csv": "data/orders.csv", "db_path": "out/etl.db", "pace": 1.0, "load_failures": 2}


def _resolve(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else HERE / path


class Extract(Node):
    """Read every row of the CSV file as a dict (with its line number, for error reports)."""

    def prep(self, ctx, shared):
        return _resolve(shared.get("source_csv", "data/orders.csv")), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        source, pace = prep_result
        ctx.sleep(0.3 * pace)  # a slow network share
        with source.open(newline="", encoding="utf-8") as handle:
            return [dict(row, line=line) for line, row in enumerate(csv.DictReader(handle), start=2)]

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("raw_rows", exec_result)
        shared.set("extracted", len(exec_result))


def check_row(row: dict[str, Any], seen: set[str]) -> str | None:
    """Why ``row`` cannot be loaded, or ``None`` when it can."""
    order_id = (row.get("order_id") or "").strip()
    if not order_id:
        return "missing order_id"
    if order_id in seen:
        return f"duplicate order_id {order_id}"
    if not (row.get("customer") or "").strip():
        return "missing customer"
    if not EMAIL.match((row.get("email") or "").strip()):
        return f"invalid email {row.get('email')!r}"
    try:
        date.fromisoformat(row.get("order_date") or "")
    except ValueError:
        return f"invalid date {row.get('order_date')!r}"
    try:
        if int(row.get("quantity") or "") <= 0:
            return f"quantity must be positive, got {row['quantity']}"
    except ValueError:
        return f"invalid quantity {row.get('quantity')!r}"
    try:
        if float(row.get("unit_price") or "") <= 0:
            return f"unit_price must be positive, got {row['unit_price']}"
    except ValueError:
        return f"invalid unit_price {row.get('unit_price')!r}"
    return None


class Validate(Node):
    """Split the rows into valid ones and rejected ones (with the reason); route on the outcome."""

    def prep(self, ctx, shared):
        return shared.get_list("raw_rows", []), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        rows, pace = prep_result
        ctx.sleep(0.2 * pace)
        valid, rejected, seen = [], [], set()
        for row in rows:
            reason = check_row(row, seen)
            if reason is None:
                seen.add(row["order_id"].strip())
                valid.append(row)
            else:
                rejected.append({"line": row["line"], "order_id": row.get("order_id", ""), "reason": reason})
        return valid, rejected

    def post(self, ctx, shared, prep_result, exec_result):
        valid, rejected = exec_result
        shared.set("valid_rows", valid)
        shared.set("rejected", rejected)
        return "invalid" if rejected else "valid"


class Quarantine(Node):
    """Record the rejected rows in a report; the valid rows carry on to transform."""

    def prep(self, ctx, shared):
        return shared.get_list("rejected", []), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        rejected, pace = prep_result
        ctx.sleep(0.2 * pace)
        return [f"line {r['line']} ({r['order_id'] or '?'}): {r['reason']}" for r in rejected]

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("quarantine_report", exec_result)


def clean_order(row: dict[str, Any]) -> dict[str, Any]:
    """One validated CSV row as a typed, normalised order."""
    quantity = int(row["quantity"])
    unit_price = round(float(row["unit_price"]), 2)
    return {
        "order_id": row["order_id"].strip(),
        "order_date": date.fromisoformat(row["order_date"]).isoformat(),
        "customer": " ".join(row["customer"].split()).title(),
        "email": row["email"].strip().lower(),
        "product": row["product"].strip(),
        "quantity": quantity,
        "unit_price": unit_price,
        "total": round(quantity * unit_price, 2),
        "country": row["country"].strip().upper(),
    }


class Transform(BatchNode):
    """Normalise each valid row, four at a time (each one takes 30-60 ms, like a lookup would)."""

    def __init__(self) -> None:
        super().__init__(concurrent=True, concurrency=4, items_key="valid_rows", results_key="orders")
        self.pace = 1.0

    def prep(self, ctx, shared):
        self.pace = shared.get_float("pace", 1.0)
        return super().prep(ctx, shared)

    def process(self, ctx, item):
        digits = int("".join(ch for ch in item["order_id"] if ch.isdigit()) or 0)
        ctx.sleep((0.03 + (digits * 7919 % 31) / 1000) * self.pace)
        return clean_order(item)


UPSERT = """
INSERT INTO orders (order_id, order_date, customer, email, product, quantity, unit_price, total, country, loaded_at)
VALUES (:order_id, :order_date, :customer, :email, :product, :quantity, :unit_price, :total, :country, :loaded_at)
ON CONFLICT(order_id) DO UPDATE SET
    order_date = excluded.order_date, customer = excluded.customer, email = excluded.email,
    product = excluded.product, quantity = excluded.quantity, unit_price = excluded.unit_price,
    total = excluded.total, country = excluded.country, loaded_at = excluded.loaded_at
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, order_date TEXT NOT NULL, customer TEXT NOT NULL, email TEXT NOT NULL,
    product TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price REAL NOT NULL, total REAL NOT NULL,
    country TEXT NOT NULL, loaded_at TEXT NOT NULL
)
"""


class Load(Node):
    """Upsert the orders into SQLite. The first ``load_failures`` attempts of each run fail
    ("database is locked"), so the retries are there to see; a counter makes it deterministic."""

    max_retries = 3
    wait = 0.2

    def __init__(self) -> None:
        super().__init__()
        self.attempt = 0

    def prep(self, ctx, shared):
        self.attempt = 0
        return {
            "db_path": _resolve(shared.get("db_path", "out/etl.db")),
            "orders": shared.get_list("orders", []),
            "failures": shared.get_int("load_failures", 2),
            "pace": shared.get_float("pace", 1.0),
        }

    def exec(self, ctx, prep_result):
        self.attempt += 1
        ctx.sleep(0.15 * prep_result["pace"])
        if self.attempt <= prep_result["failures"]:
            raise sqlite3.OperationalError(f"database is locked (simulated, attempt {self.attempt})")
        db_path: Path = prep_result["db_path"]
        db_path.parent.mkdir(parents=True, exist_ok=True)
        loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [dict(order, loaded_at=loaded_at) for order in prep_result["orders"] if order is not None]
        with closing(sqlite3.connect(db_path)) as connection:
            with connection:  # one transaction: all rows or none
                connection.execute(SCHEMA)
                connection.executemany(UPSERT, rows)
            (count,) = connection.execute("SELECT COUNT(*) FROM orders").fetchone()
        return {"upserted": len(rows), "rows_in_table": count}

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("loaded", exec_result["upserted"])
        shared.set("db_rows", exec_result["rows_in_table"])
        shared.set("load_attempts", self.attempt)


class Notify(Node):
    """Tell the team the load is done. The mail relay is never reachable in this sample, so
    after two attempts the fallback queues the notification instead of failing the run."""

    max_retries = 2
    wait = 0.2

    def prep(self, ctx, shared):
        return {
            "loaded": shared.get_int("loaded"),
            "rejected": len(shared.get_list("rejected", [])),
            "pace": shared.get_float("pace", 1.0),
        }

    def exec(self, ctx, prep_result):
        ctx.sleep(0.05 * prep_result["pace"])
        raise ConnectionError("mail relay smtp.example.invalid is unreachable (this sample runs offline)")

    def exec_fallback(self, prep_result, error):
        return "notification queued"

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("notification", exec_result)
        shared.set("summary", f"{prep_result['loaded']} orders loaded, {prep_result['rejected']} rows rejected")


extract = Extract()
validate = Validate()
quarantine = Quarantine()
transform = Transform()
load = Load()
notify = Notify()

flow = Flow(extract, name="etl")
flow.connect(extract, "default", validate)
flow.connect(validate, "valid", transform)
flow.connect(validate, "invalid", quarantine)
flow.connect(quarantine, "default", transform)
flow.connect(transform, "default", load)
flow.connect(load, "default", notify)


if __name__ == "__main__":
    from pprint import pprint

    from flyt_engine import SharedStore

    store = SharedStore(initial_store())
    action = flow.run(store)
    final = store.get_all()
    for key in ("raw_rows", "valid_rows", "orders"):
        final[key] = f"<{len(final[key])} rows>"
    print(f"action: {action}")
    pprint(final, sort_dicts=False)
