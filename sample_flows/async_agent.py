"""Async agent: think → call tools (concurrently) → think ... → answer, all `async def`.

What it shows: async phases, the way most LLM and HTTP flows are written. `think` is an
`async def exec` that "calls the LLM" (simulated latency with `await ctx.asleep`, which
ends at once when you stop the run); it asks for tools. `tools` is a BatchNode whose
`async def process` runs every requested tool call as a task on the run's event loop,
at most 3 at once. The weather tool fails now and then and is retried; the stock tool
always times out and falls back to a cached quote. The loop ends on "answer".

In the workbench it runs, steps (n / N), pauses at breakpoints and stops (x) exactly as a
sync flow does: a paused checkpoint freezes the whole loop.

Run it:
    flyt-tui sample_flows/async_agent.py
    flyt-tui --headless sample_flows/async_agent.py
    python sample_flows/async_agent.py
"""

from __future__ import annotations

from typing import Any

from flyt_engine import BatchNode, Context, Flow, Node, SharedStore, run

LLM_LATENCY = 0.4  # seconds a simulated model call takes
TOOL_LATENCY = 0.3  # seconds a simulated tool call takes


def initial_store() -> dict[str, Any]:
    """The question, what the agent learned, and the conversation so far."""
    return {
        "question": "Should I bike to work in Oslo and Bergen tomorrow, and is ACME worth a look?",
        "messages": [],
        "observations": {},
        "turn": 0,
    }


class Think(Node):
    """The model: plans tool calls on the first turn, answers on the second."""

    async def prep(self, ctx: Context, shared: SharedStore) -> dict[str, Any]:
        return {"question": shared["question"], "observations": dict(shared["observations"])}

    async def exec(self, ctx: Context, prep_result: dict[str, Any]) -> dict[str, Any]:
        await ctx.asleep(LLM_LATENCY)  # the model thinks
        seen = prep_result["observations"]
        if not seen:
            calls = [
                {"tool": "weather", "city": "Oslo"},
                {"tool": "weather", "city": "Bergen"},
                {"tool": "stock", "symbol": "ACME"},
            ]
            return {"action": "tools", "calls": calls}
        lines = [f"{name}: {value}" for name, value in sorted(seen.items())]
        return {"action": "answer", "text": "Based on " + "; ".join(lines)}

    async def post(self, ctx: Context, shared: SharedStore, prep_result: Any, exec_result: dict[str, Any]) -> str:
        shared.update("messages", lambda old: [*old, exec_result], [])
        shared.update("turn", lambda n: n + 1, 0)
        if exec_result["action"] == "tools":
            shared.set("tool_calls", exec_result["calls"])
        else:
            shared.set("answer", exec_result["text"])
        return exec_result["action"]


_weather_attempts: dict[int, int] = {}  # id of a tool call -> attempts so far (this process)


class Tools(BatchNode):
    """Every tool call of the turn at once (3 in flight at most), retried, with a fallback."""

    max_retries = 2
    wait = 0.1

    async def process(self, ctx: Context, call: dict[str, Any]) -> Any:
        await ctx.asleep(TOOL_LATENCY)
        if call["tool"] == "weather":
            attempt = _weather_attempts[id(call)] = _weather_attempts.get(id(call), 0) + 1
            if call["city"] == "Bergen" and attempt == 1:
                raise ConnectionError("weather service: 503 (try again)")
            return f"{call['city']}: {'rain' if call['city'] == 'Bergen' else 'sun'}, 12°C"
        if call["tool"] == "stock":
            raise TimeoutError(f"quote service did not answer for {call['symbol']}")
        raise ValueError(f"unknown tool {call['tool']!r}")

    async def exec_fallback(self, prep_result: Any, error: BaseException) -> Any:
        return f"{prep_result.get('symbol', '?')}: 41.20 (cached quote: {type(error).__name__})"


def record(ctx: Context, shared: SharedStore, prep_result: Any, results: Any) -> str:
    """After the tools ran: what each call returned becomes an observation."""
    calls = shared["tool_calls"]
    learned = {f"{c['tool']} {c.get('city') or c.get('symbol')}": r for c, r in zip(calls, results, strict=True)}
    shared.update("observations", lambda old: {**old, **learned}, {})
    return "think"


def build_flow() -> Flow:
    think = Think(name="think")
    tools = Tools(items_key="tool_calls", results_key="tool_results", concurrent=True, concurrency=3, post=record)
    tools.adopt_name("tools")
    think - "tools" >> tools
    tools - "think" >> think
    return Flow(think, name="async_agent")


flow = build_flow()
SHARED = initial_store()


if __name__ == "__main__":
    store = SharedStore(initial_store())
    run(flow, store)
    print(store["answer"])
