"""A loop that never ends on its own but takes its time (tick → tick every 2 ms)."""

from flyt_engine import Flow, Node


class Tick(Node):
    def exec(self, ctx, prep_result):
        ctx.sleep(0.002)

    def post(self, ctx, shared, prep_result, exec_result):
        shared.update("ticks", lambda old: old + 1, 0)
        return "again"


tick = Tick()
flow = Flow(tick, name="ticking")
flow.connect(tick, "again", tick)
