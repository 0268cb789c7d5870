"""Retries and fallbacks: four ways a node copes with failing work.

What it shows (one node each, run in sequence):
- fetch_rates: plain retries with a fixed wait (max_retries=3, wait=0.1); fails twice, then succeeds;
- sync_inventory: exponential backoff by overriding get_wait() (0.05, 0.1, 0.2 s ...);
- charge_card: selective retry by overriding get_max_retries(): a timeout is retried, a
  declined card is permanent, so retrying stops at once and the fallback answers;
- send_receipt: a functional node whose exec always fails and whose fallback keeps the run
  going with a value of its own.
Each node records its attempts under "attempts" in the store; the failures are scripted
(counters on the nodes), so every run behaves the same.

Run it:
    flyt-tui sample_flows/retry_fallback.py
    flyt-tui --headless sample_flows/retry_fallback.py
    python sample_flows/retry_fallback.py
"""

from __future__ import annotations

from typing import Any

from flyt_engine import Flow, Node


def initial_store() -> dict[str, Any]:
    """The order being processed and how many attempts of each scripted node fail."""
    return {"order_id": "ORD-2024-0042", "amount": 129.9, "rate_failures": 2, "inventory_failures": 3}


def record_attempts(shared, node: str, attempts: int) -> None:
    shared.update("attempts", lambda old: {**(old or {}), node: attempts})


class FetchRates(Node):
    """Plain retries: a flaky currency service answers on the third attempt."""

    max_retries = 3
    wait = 0.1

    def prep(self, ctx, shared):
        self.attempt = 0
        return shared.get_int("rate_failures", 2)

    def exec(self, ctx, failures):
        self.attempt += 1
        if self.attempt <= failures:
            raise TimeoutError(f"rates service timed out (attempt {self.attempt})")
        return {"EUR": 1.0, "USD": 1.09, "SEK": 11.52}

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("rates", exec_result)
        record_attempts(shared, "fetch_rates", self.attempt)


class SyncInventory(Node):
    """Exponential backoff: get_wait() doubles the wait after each failed attempt."""

    max_retries = 5
    base_wait = 0.05

    def prep(self, ctx, shared):
        self.attempt = 0
        self.waits: dict[int, float] = {}  # failed attempt -> the wait that followed it
        return shared.get_int("inventory_failures", 3)

    def get_wait(self) -> float:
        wait = self.base_wait * 2 ** (self.attempt - 1)
        self.waits[self.attempt] = wait
        return wait

    def exec(self, ctx, failures):
        self.attempt += 1
        if self.attempt <= failures:
            raise ConnectionError(f"warehouse API returned 503 (attempt {self.attempt})")
        return {"sku-17": 12, "sku-23": 0, "sku-42": 3}

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("inventory", exec_result)
        shared.set("backoff_waits", list(self.waits.values()))
        record_attempts(shared, "sync_inventory", self.attempt)


class CardDeclined(Exception):
    """A permanent error: retrying cannot help."""


class ChargeCard(Node):
    """Selective retry: transient errors are retried, a permanent one stops the retries."""

    max_retries = 4
    wait = 0.05

    def prep(self, ctx, shared):
        self.attempt = 0
        self.permanent = False
        return shared.get_float("amount")

    def get_max_retries(self) -> int:
        return self.attempt if self.permanent else self.max_retries

    def exec(self, ctx, amount):
        self.attempt += 1
        if self.attempt == 1:
            raise TimeoutError("payment gateway timed out")  # transient: retried
        self.permanent = True
        raise CardDeclined(f"card declined for {amount:.2f} EUR (insufficient funds)")

    def exec_fallback(self, prep_result, error):
        return {"status": "payment_pending", "reason": str(error)}

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("payment", exec_result)
        record_attempts(shared, "charge_card", self.attempt)


def send_email(ctx, receipt):
    raise ConnectionError("SMTP relay unreachable")


def queue_receipt(receipt, error):
    return f"receipt for {receipt} queued for later ({type(error).__name__})"


def store_receipt(ctx, shared, prep_result, exec_result):
    shared.set("receipt", exec_result)


fetch_rates = FetchRates()
sync_inventory = SyncInventory()
charge_card = ChargeCard()
send_receipt = Node(
    prep=lambda ctx, shared: shared.get_str("order_id"),
    exec=send_email,
    fallback=queue_receipt,
    post=store_receipt,
    max_retries=2,
    wait=0.05,
)

flow = Flow(fetch_rates, name="retry_fallback")
flow.connect(fetch_rates, "default", sync_inventory)
flow.connect(sync_inventory, "default", charge_card)
flow.connect(charge_card, "default", send_receipt)


if __name__ == "__main__":
    from pprint import pprint

    from flyt_engine import SharedStore

    store = SharedStore(initial_store())
    print(f"action: {flow.run(store)}")
    pprint(store.get_all(), sort_dicts=False)
