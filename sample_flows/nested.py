"""Nested flows: flows used as nodes inside other flows, two levels deep.

What it shows:
- cleanup is a flow (strip_markup → collapse_spaces) used as the first node of analyze;
- analyze is a flow (cleanup → tokenize → measure) used as a node of the top flow, so
  cleanup sits two levels deep;
- the top flow routes on analyze's last action: measure returns "long" or "short", that is
  analyze's action, and the top flow goes to summarize or keep_short accordingly;
- every flow works on the same shared store (no copies), so publish sees what the inner
  nodes wrote.

Run it:
    flyt-tui sample_flows/nested.py
    flyt-tui --headless sample_flows/nested.py --set document='"<p>Short note.</p>"'
    python sample_flows/nested.py
"""

from __future__ import annotations

import re
from typing import Any

from flyt_engine import Flow, Node

DOCUMENT = (
    "<p>The   workbench now shows <b>nested flows</b> as a tree.</p>"
    "<p>Each sub-flow expands to its own nodes, and the action that leaves a sub-flow is the action "
    "of the last node that ran inside it.</p><p>Batch progress, retries and fallbacks are reported "
    "live, and a saved file reloads in well under a second.</p>"
)


def initial_store() -> dict[str, Any]:
    """The document to process and the word count from which it counts as long."""
    return {"document": DOCUMENT, "long_threshold": 25, "pace": 1.0}


class StripMarkup(Node):
    """Remove HTML tags (level 2, inside cleanup)."""

    def prep(self, ctx, shared):
        return shared.get_str("document"), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        text, pace = prep_result
        ctx.sleep(0.05 * pace)
        return re.sub(r"<[^>]+>", " ", text)

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("text", exec_result)


class CollapseSpaces(Node):
    """Collapse runs of whitespace (level 2, inside cleanup)."""

    def prep(self, ctx, shared):
        return shared.get_str("text"), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        text, pace = prep_result
        ctx.sleep(0.05 * pace)
        return " ".join(text.split())

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("text", exec_result)


class Tokenize(Node):
    """Split the clean text into words (level 1, inside analyze)."""

    def prep(self, ctx, shared):
        return shared.get_str("text"), shared.get_float("pace", 1.0)

    def exec(self, ctx, prep_result):
        text, pace = prep_result
        ctx.sleep(0.05 * pace)
        return re.findall(r"[\w'-]+", text)

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("words", exec_result)


class Measure(Node):
    """Count the words and return "long" or "short": the action that leaves analyze."""

    def prep(self, ctx, shared):
        return len(shared.get_list("words", [])), shared.get_int("long_threshold", 25)

    def exec(self, ctx, prep_result):
        count, threshold = prep_result
        return "long" if count >= threshold else "short"

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("word_count", prep_result[0])
        shared.set("length", exec_result)
        return exec_result


class Summarize(Node):
    """Long documents: keep the first sentence."""

    def prep(self, ctx, shared):
        return shared.get_str("text")

    def exec(self, ctx, text):
        first = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0]
        return first

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("summary", exec_result)
        shared.set("route", "summarize")


class KeepShort(Node):
    """Short documents are their own summary."""

    def prep(self, ctx, shared):
        return shared.get_str("text")

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("summary", prep_result)
        shared.set("route", "keep_short")


class Publish(Node):
    """Assemble what the nested flows produced."""

    def prep(self, ctx, shared):
        return {"summary": shared.get_str("summary"), "words": shared.get_int("word_count"), "via": shared.get("route")}

    def post(self, ctx, shared, prep_result, exec_result):
        shared.set("published", prep_result)
        return "done"


strip_markup = StripMarkup()
collapse_spaces = CollapseSpaces()
cleanup = Flow(strip_markup).connect(strip_markup, "default", collapse_spaces)

tokenize = Tokenize()
measure = Measure()
analyze = Flow(cleanup)
analyze.connect(cleanup, "default", tokenize).connect(tokenize, "default", measure)

summarize = Summarize()
keep_short = KeepShort()
publish = Publish()
flow = Flow(analyze, name="nested")
flow.connect(analyze, "long", summarize)
flow.connect(analyze, "short", keep_short)
flow.connect(summarize, "default", publish)
flow.connect(keep_short, "default", publish)
flow.connect(publish, "done", None)


if __name__ == "__main__":
    from pprint import pprint

    from flyt_engine import SharedStore

    store = SharedStore(initial_store())
    print(f"action: {flow.run(store)}")
    pprint(store.get_all(), sort_dicts=False)
