"""Two module-level flows (and no `flow`): the workbench asks which one to open."""

from flyt_engine import Flow, Node


class Hello(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("said", "hello")


class Bye(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("said", "bye")


hello = Hello()
bye = Bye()
greeting_flow = Flow(hello, name="greeting")
farewell_flow = Flow(bye, name="farewell")
