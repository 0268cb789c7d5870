"""A flow written for PocketFlow, as its cookbook writes them (opened unmodified).

get_question → answer (retried, then a fallback) → a branch on the answer's length:
"long" → summarize (a nested Flow of two nodes); "short" → done. Then score_all (a
BatchNode over the words) and per_topic (a BatchFlow: the same inner node once per topic,
reading its params).
"""

from pocketflow import BatchFlow, BatchNode, Flow, Node


class GetQuestion(Node):
    def prep(self, shared):
        return shared.get("question", "what is flow-based programming?")

    def post(self, shared, prep_res, exec_res):
        shared["asked"] = prep_res


class Answer(Node):
    calls = 0

    def prep(self, shared):
        return shared["asked"]

    def exec(self, prep_res):
        Answer.calls += 1
        if Answer.calls % 3 == 1:  # the first attempt of each run fails
            raise ConnectionError("model timed out")
        return f"an answer to {prep_res!r} with several words in it"

    def exec_fallback(self, prep_res, exc):
        return "fallback answer"

    def post(self, shared, prep_res, exec_res):
        shared["answer"] = exec_res
        shared["tries"] = self.cur_retry + 1
        return "long" if len(exec_res.split()) > 5 else "short"


class Split(Node):
    def prep(self, shared):
        return shared["answer"]

    def exec(self, prep_res):
        return prep_res.split()

    def post(self, shared, prep_res, exec_res):
        shared["words"] = exec_res


class Count(Node):
    def post(self, shared, prep_res, exec_res):
        shared["count"] = len(shared["words"])


class ScoreAll(BatchNode):
    def prep(self, shared):
        return shared["words"]

    def exec(self, word):
        return len(word)

    def post(self, shared, prep_res, exec_res):
        shared["scores"] = exec_res


class Topic(Node):
    def post(self, shared, prep_res, exec_res):
        shared.setdefault("topics", []).append(self.params["topic"])


class PerTopic(BatchFlow):
    def prep(self, shared):
        return [{"topic": "flows"}, {"topic": "nodes"}]


class Done(Node):
    def post(self, shared, prep_res, exec_res):
        shared["done"] = True


def create_qa_flow():
    get_question = GetQuestion()
    answer = Answer(max_retries=3, wait=0)
    split, count = Split(), Count()
    split >> count
    summarize = Flow(start=split)
    score_all = ScoreAll()
    per_topic = PerTopic(start=Topic())
    done = Done()
    get_question >> answer
    answer - "long" >> summarize
    answer - "short" >> done
    summarize >> score_all >> per_topic >> done
    return Flow(start=get_question)
