"""prepare → explode: explode raises in exec, so the run fails."""

from flyt_engine import Flow, Node


class Prepare(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("prepared", True)


class Explode(Node):
    def exec(self, ctx, prep_result):
        raise ValueError("kaboom in exec")


prepare = Prepare()
explode = Explode()
flow = Flow(prepare, name="failing")
flow.connect(prepare, "default", explode)
