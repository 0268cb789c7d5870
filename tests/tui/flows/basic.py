"""fetch → validate → (valid) transform → save; invalid ends; retry loops back to fetch."""

from flyt_engine import Flow, Node


def initial_store():
    return {"source": [3, 1, 2], "label": "[x] not markup"}


class Fetch(Node):
    def prep(self, ctx, shared):
        return list(shared.get("source", []))

    def exec(self, ctx, prep_result):
        return [value * 10 for value in prep_result]

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("rows", exec_result)
        shared.update("fetches", lambda old: old + 1, 0)


class Validate(Node):
    def prep(self, ctx, shared):
        return shared.get_list("rows", [])

    def exec(self, ctx, rows):
        return all(value > 0 for value in rows)

    def post(self, ctx, shared, prep_result, ok):
        if shared.get("fetches", 0) < 2:
            return "retry"
        return "valid" if ok else "invalid"


class Transform(Node):
    def prep(self, ctx, shared):
        return shared.get_list("rows", [])

    def exec(self, ctx, rows):
        return sorted(rows)

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("result", exec_result)
        return "save"


class Save(Node):
    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("saved", True)


fetch = Fetch()
validate = Validate()
transform = Transform()
save = Save()
flow = Flow(fetch, name="basic")
flow.connect(fetch, "default", validate)
flow.connect(validate, "valid", transform)
flow.connect(validate, "invalid", None)
flow.connect(validate, "retry", fetch)
flow.connect(transform, "save", save)
