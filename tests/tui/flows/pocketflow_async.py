"""A PocketFlow module written for PocketFlow's async classes, unmodified: an AsyncFlow
with an AsyncNode that retries, an AsyncParallelBatchNode, a sync Node, and an
AsyncBatchFlow whose params reach its inner AsyncNode."""

import asyncio

from pocketflow import AsyncBatchFlow, AsyncFlow, AsyncNode, AsyncParallelBatchNode, Node


class Ask(AsyncNode):
    calls = 0

    async def prep_async(self, shared):
        return shared.get("question", "what is a flow?")

    async def exec_async(self, question):
        type(self).calls += 1
        await asyncio.sleep(0.001)
        if type(self).calls < 2:
            raise ConnectionError("model busy")
        return f"a flow answers {question!r}"

    async def post_async(self, shared, prep_res, exec_res):
        shared["answer"] = exec_res
        shared["tries"] = type(self).calls
        shared["words"] = exec_res.split()


class Lengths(AsyncParallelBatchNode):
    async def prep_async(self, shared):
        return shared["words"]

    async def exec_async(self, word):
        await asyncio.sleep(0.001 * (len(word) % 3))
        return len(word)

    async def post_async(self, shared, prep_res, exec_res):
        shared["lengths"] = exec_res


class Total(Node):
    def prep(self, shared):
        return shared["lengths"]

    def exec(self, lengths):
        return sum(lengths)

    def post(self, shared, prep_res, exec_res):
        shared["total"] = exec_res


class Tag(AsyncNode):
    async def post_async(self, shared, prep_res, exec_res):
        shared.setdefault("tags", []).append(self.params["tag"])


class PerTag(AsyncBatchFlow):
    async def prep_async(self, shared):
        return [{"tag": "short"}, {"tag": "async"}]


def create_flow():
    ask = Ask(max_retries=3)
    lengths = Lengths()
    total = Total()
    tags = PerTag(start=Tag())
    ask >> lengths >> total >> tags
    return AsyncFlow(start=ask)
