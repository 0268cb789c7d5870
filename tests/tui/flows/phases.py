"""One node that raises in the phase named by the store key ``fail_in`` (prep, exec or post)."""

from flyt_engine import Flow, Node


def initial_store():
    return {"fail_in": "exec"}


class Fragile(Node):
    def prep(self, ctx, shared):
        phase = shared.get("fail_in")
        if phase == "prep":
            raise KeyError("missing input")
        return phase

    def exec(self, ctx, phase):
        if phase == "exec":
            raise ZeroDivisionError("division by zero")
        return phase

    def post(self, ctx, shared, phase, exec_result):
        if phase == "post":
            raise TypeError("cannot store that")
        shared.set("ok", True)


fragile = Fragile()
flow = Flow(fragile, name="phases")
