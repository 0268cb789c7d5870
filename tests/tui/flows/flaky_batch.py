"""A batch whose item 3 always fails and item 5 fails once before it succeeds (retried)."""

from flyt_engine import BatchNode, Flow, Node


class Items(Node):
    def exec(self, ctx, prep_result):
        return [{"n": n} for n in range(8)]

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("items", exec_result)


tries: dict[int, int] = {}


def price(ctx, item):
    n = item["n"]
    tries[n] = tries.get(n, 0) + 1
    if n == 3:
        raise ValueError("item 3 has no price")
    if n == 5 and tries[n] % 2 == 1:
        raise TimeoutError("slow price service")
    return n * 1.5


items = Items(name="items")
prices = BatchNode(price, max_retries=2, name="prices")
flow = Flow(items, name="pricing")
flow.connect(items, "default", prices)
