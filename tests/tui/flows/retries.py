"""flaky fails twice then succeeds; fragile always fails and its fallback answers."""

from flyt_engine import Flow, Node


def initial_store():
    return {"counter": {"calls": 0}}


class Flaky(Node):
    max_retries = 3
    wait = 0.01

    def prep(self, ctx, shared):
        return shared.get("counter")

    def exec(self, ctx, counter):
        counter["calls"] += 1
        if counter["calls"] <= 2:
            raise ConnectionError(f"flaky attempt {counter['calls']}")
        return "fetched"

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("flaky_result", exec_result)


class Fragile(Node):
    max_retries = 2

    def exec(self, ctx, prep_result):
        raise TimeoutError("service down")

    def exec_fallback(self, prep_result, error):
        return "cached"

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("fragile_result", exec_result)


flaky = Flaky()
fragile = Fragile()
flow = Flow(flaky, name="retries")
flow.connect(flaky, "default", fragile)
