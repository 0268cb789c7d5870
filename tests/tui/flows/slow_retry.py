"""A node that fails and then waits 30 s before retrying: stopping must not wait for it."""

from flyt_engine import Flow, Node


class Patient(Node):
    max_retries = 3
    wait = 30.0

    def exec(self, ctx, prep_result):
        raise ConnectionError("not yet")


patient = Patient()
flow = Flow(patient, name="slow_retry")
