"""Time travel in tests: a chat loop that appends a message each turn (one list, changed
in place), then a slow report; each node counts its prep calls so a fork can be checked."""

from flyt_engine import Flow, Node

SHARED = {"turn": 0}


class Turn(Node):
    def __init__(self) -> None:
        super().__init__(name="turn")
        self.prep_calls = 0

    def prep(self, ctx, shared):
        self.prep_calls += 1
        return {"turn": shared.get("turn", 0)}

    def exec(self, ctx, prep_result):
        return f"message {prep_result['turn']}"

    def post(self, ctx, shared, prep_result, message):
        messages = shared.get("messages") or []
        messages.append(message)
        shared["messages"] = messages
        shared["turn"] = prep_result["turn"] + 1
        return "again" if shared["turn"] < 3 else "done"


class Report(Node):
    def __init__(self) -> None:
        super().__init__(name="report")
        self.prep_calls = 0

    def prep(self, ctx, shared):
        self.prep_calls += 1
        return list(shared.get("messages") or [])

    def post(self, ctx, shared, messages, exec_result):
        shared["report"] = " | ".join(messages)


turn = Turn()
report = Report()
turn - "again" >> turn
turn - "done" >> report
flow = Flow(start=turn, name="chat")
