"""split → square (a concurrent BatchNode over 20 items) → per_user (a BatchFlow of 3 iterations)."""

from flyt_engine import BatchFlow, BatchNode, Flow, Node


def initial_store():
    return {"count": 20}


class Split(Node):
    def prep(self, ctx, shared):
        return shared.get_int("count", 0)

    def exec(self, ctx, count):
        return list(range(count))

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("items", exec_result)


def square(ctx, item):
    return item * item


class Greet(Node):
    def prep(self, ctx, shared):
        return shared.get("user")

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("greeting", f"hello {prep_result}")
        return "done"


class Mark(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("marked", True)


def make_user_flow():
    greet = Greet(name="greet")
    mark = Mark(name="mark")
    return Flow(greet, name="user_flow").connect(greet, "done", mark)


def users(ctx, shared):
    return [{"user": name} for name in ("ada", "bob", "cy")]


split = Split()
squares = BatchNode(square, concurrent=True, name="squares")
per_user = BatchFlow(make_user_flow, users, name="per_user")
flow = Flow(split, name="batches")
flow.connect(split, "default", squares)
flow.connect(squares, "default", per_user)
