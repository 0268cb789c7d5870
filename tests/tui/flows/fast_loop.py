"""A loop of 60,000 trivial steps: a run that outpaces the workbench's fold."""

from flyt_engine import Flow, Node

STEPS = 60_000


class Count(Node):
    def prep(self, ctx, shared):
        return shared.get("n", 0)

    def exec(self, ctx, n):
        return n + 1

    def post(self, ctx, shared, prep_result, n):
        shared.set("n", n)
        return "again" if n < STEPS else "done"


count = Count()
flow = Flow(count, name="fast_loop")
flow.connect(count, "again", count)
