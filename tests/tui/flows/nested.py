"""outer: prepare → inner (a sub-flow: first → second) → finish; inner's last action routes outer."""

from flyt_engine import Flow, Node


class Prepare(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("prepared", True)


class First(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("first", 1)


class Second(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("second", 2)
        return "inner_done"


class Finish(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("finished", True)


prepare = Prepare()
first = First()
second = Second()
finish = Finish()
inner = Flow(first, name="inner").connect(first, "default", second)
flow = Flow(prepare, name="outer")
flow.connect(prepare, "default", inner)
flow.connect(inner, "inner_done", finish)
