"""Values to open in the inspector: an order with nested lines, a long note, a 10 MB string."""

from flyt_engine import Flow, Node


def initial_store():
    return {"blob": "z" * 10_000_000, "note": "a long note " * 40}


class Price(Node):
    def prep(self, ctx, shared):
        return {"sku": "MUG-01", "qty": 2}

    def exec(self, ctx, item):
        lines = [{"sku": item["sku"], "price": 12.5, "tags": ["kitchen", "gift"]}]
        return {"order": "ORD-7", "lines": lines, "total": 25.0}

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("order", exec_result)


class Receipt(Node):
    def exec(self, ctx, prep_result):
        return "printed"


price = Price()
receipt = Receipt()
price >> receipt
flow = Flow(price, name="shop")
