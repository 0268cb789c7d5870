"""A checkout with a bug that a data breakpoint finds: the coupon discount vanishes.

What it shows: the run succeeds, but the customer is charged the full price although the
coupon was applied. Which node undoes it? Watch the key and the workbench pauses at every
write to it, inside the writing node, with the writer, the old and the new value:

    flyt-tui sample_flows/checkout_bug.py --watch total      # or: select `total`, press w, then r
    flyt-tui --headless sample_flows/checkout_bug.py --watch total

The third write shows it: `shipping` sets total from `subtotal` (before the coupon) plus
the fee, instead of adding the fee to the discounted total. Fix it in `Shipping.post`
(save: the workbench reloads) and run again. A conditional breakpoint finds it too:
`B` on shipping, `shipping:post if shared["total"] < shared["subtotal"]`.
"""

from __future__ import annotations

from typing import Any

from flyt_engine import Flow, Node

SHIPPING_FEE = 4.99
FREE_SHIPPING_FROM = 100.0


def initial_store() -> dict[str, Any]:
    """A cart of three lines and a 10 % coupon."""
    return {
        "cart": [
            {"sku": "MUG-01", "price": 12.5, "qty": 2},
            {"sku": "TEA-07", "price": 8.0, "qty": 3},
            {"sku": "SPOON", "price": 3.25, "qty": 4},
        ],
        "coupon": "WELCOME10",
    }


class Subtotal(Node):
    def prep(self, ctx: Any, shared: Any) -> list[dict[str, Any]]:
        return shared["cart"]

    def exec(self, ctx: Any, cart: list[dict[str, Any]]) -> float:
        return round(sum(line["price"] * line["qty"] for line in cart), 2)

    def post(self, ctx: Any, shared: Any, cart: Any, subtotal: float) -> None:
        shared["subtotal"] = subtotal
        shared["total"] = subtotal


class Coupon(Node):
    RATES = {"WELCOME10": 0.10}

    def prep(self, ctx: Any, shared: Any) -> tuple[float, float]:
        return shared["total"], self.RATES.get(shared.get("coupon", ""), 0.0)

    def exec(self, ctx: Any, inputs: tuple[float, float]) -> float:
        total, rate = inputs
        return round(total * (1 - rate), 2)

    def post(self, ctx: Any, shared: Any, inputs: Any, discounted: float) -> None:
        shared["total"] = discounted
        shared["discount"] = round(inputs[0] - discounted, 2)


class Shipping(Node):
    def prep(self, ctx: Any, shared: Any) -> float:
        return shared["total"]

    def exec(self, ctx: Any, total: float) -> float:
        return 0.0 if total >= FREE_SHIPPING_FROM else SHIPPING_FEE

    def post(self, ctx: Any, shared: Any, total: float, fee: float) -> None:
        shared["shipping"] = fee
        shared["total"] = round(shared["subtotal"] + fee, 2)  # the bug: should be total + fee


class Receipt(Node):
    def prep(self, ctx: Any, shared: Any) -> tuple[float, float]:
        return shared["total"], shared.get("discount", 0.0)

    def post(self, ctx: Any, shared: Any, inputs: tuple[float, float], result: Any) -> None:
        total, discount = inputs
        shared["receipt"] = f"charged {total:.2f} (coupon saved {discount:.2f})"


subtotal = Subtotal()
coupon = Coupon()
shipping = Shipping()
receipt = Receipt()
subtotal >> coupon >> shipping >> receipt
flow = Flow(subtotal, name="checkout")


if __name__ == "__main__":
    from flyt_engine import SharedStore

    store = SharedStore(initial_store())
    flow.run(store)
    print(store["receipt"])  # charged 66.99 (coupon saved 6.20): the discount is gone
