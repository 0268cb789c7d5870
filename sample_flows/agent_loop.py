"""Agent loop: decide → act → decide ... until the agent answers.

What it shows: a loop in a flow. decide looks at what the agent knows so far and returns an
action ("search", "calculate" or "answer"); search and calculate do the work and return
"decide", which leads back to decide. The loop ends on "answer" (answer has no successor).
There is no LLM here: the policy is a few scripted rules over the store, so every run takes
the same four turns, each with a short delay, and stepping through it shows the loop well.
A max_turns guard makes decide answer anyway when the loop runs too long.

Time travel and forks: run it (r), go back three node steps ({ three times, to
calculate · prep), edit `notes` in the store (enter) and fork (R): the agent goes on from
what you wrote. Or move on to calculate · post (]), press E, give another density and R:
the answer uses yours, and calculate's exec does not run again.

Run it:
    flyt-tui sample_flows/agent_loop.py
    flyt-tui --headless sample_flows/agent_loop.py --set question='"What is the population density of Norway?"'
    python sample_flows/agent_loop.py
"""

from __future__ import annotations

import re
from typing import Any

from flyt_engine import Flow, Node

# The agent's "web": a small offline encyclopedia.
FACTS = {
    ("iceland", "population"): 387_758,
    ("iceland", "area"): 103_000,
    ("norway", "population"): 5_550_203,
    ("norway", "area"): 385_207,
    ("portugal", "population"): 10_639_726,
    ("portugal", "area"): 92_212,
}


def initial_store() -> dict[str, Any]:
    """The question, an empty scratchpad and the loop's limits."""
    return {
        "question": "What is the population density of Iceland?",
        "notes": {},
        "trace": [],
        "turns": 0,
        "max_turns": 8,
        "pace": 1.0,
    }


def subject_of(question: str) -> str:
    match = re.search(r"\bof ([A-Za-z ]+?)\??$", question.strip())
    return match.group(1).strip().lower() if match else ""


def policy(question: str, notes: dict[str, Any], turns: int, max_turns: int) -> tuple[str, Any]:
    """The scripted brain: what to do next given what is known. Returns (action, argument)."""
    if turns >= max_turns:
        return "answer", "gave up"
    subject = subject_of(question)
    for fact in ("population", "area"):
        if fact not in notes:
            return "search", f"{subject} {fact}"
    if "density" not in notes:
        return "calculate", ("population", "/", "area")
    return "answer", None


class Decide(Node):
    """Choose the next step; the returned action routes the loop."""

    def prep(self, ctx, shared):
        return (
            shared.get_str("question"),
            shared.get_dict("notes", {}),
            shared.get_int("turns"),
            shared.get_int("max_turns", 8),
            shared.get_float("pace", 1.0),
        )

    def exec(self, ctx, prep_result):
        question, notes, turns, max_turns, pace = prep_result
        ctx.sleep(0.2 * pace)  # "thinking"
        return policy(question, notes, turns, max_turns)

    def post(self, ctx, shared, prep_result, exec_result):
        action, argument = exec_result
        shared.set("turns", prep_result[2] + 1)
        shared.set("next_step", {"action": action, "argument": argument})
        shared.update("trace", lambda trace: [*(trace or []), f"decide → {action} {argument or ''}".rstrip()])
        return action


class Search(Node):
    """Look a fact up in the offline encyclopedia and note it."""

    def prep(self, ctx, shared):
        return shared.get_dict("next_step", {}).get("argument", ""), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        query, pace = prep_result
        ctx.sleep(0.15 * pace)
        subject, _, fact = query.rpartition(" ")
        value = FACTS.get((subject, fact))
        if value is None:
            raise LookupError(f"nothing found for {query!r}")
        return fact, value

    def exec_fallback(self, prep_result, error):
        query = prep_result[0]
        return query.rpartition(" ")[2] or "unknown", None

    def post(self, ctx, shared, prep_result, exec_result):
        fact, value = exec_result
        shared.update("notes", lambda notes: {**(notes or {}), fact: value})
        shared.update("trace", lambda trace: [*(trace or []), f"search → {fact} = {value}"])
        return "decide"


class Calculate(Node):
    """Combine two notes with an operator and note the result."""

    def prep(self, ctx, shared):
        return shared.get_dict("notes", {}), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        notes, pace = prep_result
        ctx.sleep(0.15 * pace)
        if not notes.get("area") or notes.get("population") is None:
            return None
        return round(notes["population"] / notes["area"], 2)

    def post(self, ctx, shared, prep_result, exec_result):
        shared.update("notes", lambda notes: {**(notes or {}), "density": exec_result})
        shared.update("trace", lambda trace: [*(trace or []), f"calculate → density = {exec_result}"])
        return "decide"


class Answer(Node):
    """Write the final answer; no successor, so the loop (and the flow) ends here."""

    def prep(self, ctx, shared):
        return shared.get_str("question"), shared.get_dict("notes", {}), shared.get_dict("next_step", {})

    def exec(self, ctx, prep_result):
        question, notes, step = prep_result
        density = notes.get("density")
        subject = subject_of(question).title() or "it"
        if step.get("argument") == "gave up" or density is None:
            return f"I could not work out the population density of {subject}."
        return f"{subject} has about {density:g} inhabitants per km² ({notes['population']:,} people on {notes['area']:,} km²)."

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("answer", exec_result)
        return "answer"


decide = Decide()
search = Search()
calculate = Calculate()
answer = Answer()

flow = Flow(decide, name="agent_loop")
flow.connect(decide, "search", search)
flow.connect(decide, "calculate", calculate)
flow.connect(decide, "answer", answer)
flow.connect(search, "decide", decide)
flow.connect(calculate, "decide", decide)


if __name__ == "__main__":
    from pprint import pprint

    from flyt_engine import SharedStore

    store = SharedStore(initial_store())
    print(f"action: {flow.run(store)}")
    pprint(store.get_all(), sort_dicts=False)
