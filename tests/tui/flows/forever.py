"""A loop that never ends on its own (spin → spin), writing a counter each step."""

from flyt_engine import Flow, Node


class Spin(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.update("spins", lambda old: old + 1, 0)
        return "again"


spin = Spin()
flow = Flow(spin, name="forever")
flow.connect(spin, "again", spin)
