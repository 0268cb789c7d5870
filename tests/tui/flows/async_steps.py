"""Async phases in the workbench: fetch awaits, then a concurrent async batch, then a
node that fails on demand (shared["fail"]) and one that waits a long time."""

import asyncio

from flyt_engine import BatchNode, Flow, Node


class Fetch(Node):
    async def prep(self, ctx, shared):
        return shared.get("n", 3)

    async def exec(self, ctx, n):
        await ctx.asleep(0.01)
        return list(range(n))

    async def post(self, ctx, shared, p, rows):
        shared.set("rows", rows)


async def double(ctx, item):
    await asyncio.sleep(0.01)
    return item * 2


class Check(Node):
    async def exec(self, ctx, p):
        return None

    async def post(self, ctx, shared, p, e):
        if shared.get("fail"):
            raise ValueError("the async bug")
        shared.set("checked", True)
        return "wait" if shared.get("wait") else None


class Wait(Node):
    async def exec(self, ctx, p):
        await ctx.asleep(60)


fetch = Fetch(name="fetch")
doubles = BatchNode(double, concurrent=True, items_key="rows", results_key="doubled", name="doubles")
check = Check(name="check")
wait = Wait(name="wait")
fetch >> doubles >> check
check - "wait" >> wait
flow = Flow(fetch, name="async_steps")
