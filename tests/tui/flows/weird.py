"""Hostile values and names: a node called [x], unprintable, huge and recursive store values."""

from flyt_engine import Flow, Node


class Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def initial_store():
    loop = [1, 2]
    loop.append(loop)
    return {
        "unprintable": Unprintable(),
        "huge_list": list(range(1_000_000)),
        "huge_int": 7**20000,
        "recursive": loop,
        "blob": b"\x00" * 5_000_000,
        "[bold]": "[red]not markup[/red]",
    }


class Bracket(Node):
    def prep(self, ctx, shared):
        return shared.get("unprintable")

    def exec(self, ctx, prep_result):
        return prep_result

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("copy", exec_result)
        shared.set("big_dict", {f"k{i}": i for i in range(200_000)})


bracket = Bracket(name="[x]")
flow = Flow(bracket, name="weird")
