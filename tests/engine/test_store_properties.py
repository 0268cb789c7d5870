"""Property tests for SharedStore: atomic updates and merges under threads, dict semantics."""

import math
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from flyt_engine import SharedStore

FAST = settings(max_examples=15, deadline=None)


def run_threads(count: int, target, *args) -> None:
    """Start ``count`` threads on ``target`` together (a barrier) and join them."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait(10)
            target(index, *args)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


@FAST
@given(threads=st.integers(2, 4), increments=st.integers(1, 200))
def test_concurrent_updates_never_lose_an_increment(threads, increments):
    store = SharedStore()

    def worker(_index):
        for _ in range(increments):
            store.update("n", lambda old: old + 1, 0)

    run_threads(threads, worker)
    assert store.get("n") == threads * increments


@FAST
@given(threads=st.integers(2, 4), items=st.integers(1, 100))
def test_concurrent_list_appends_through_update_keep_every_item(threads, items):
    store = SharedStore()

    def worker(index):
        for i in range(items):
            store.update("log", lambda old, v=(index, i): [*old, v], [])

    run_threads(threads, worker)
    log = store.get("log")
    assert len(log) == threads * items
    assert set(log) == {(t, i) for t in range(threads) for i in range(items)}


@FAST
@given(rounds=st.integers(1, 300), readers=st.integers(1, 3), width=st.integers(2, 6))
def test_merge_is_atomic_for_concurrent_readers(rounds, readers, width):
    keys = [f"k{j}" for j in range(width)]
    store = SharedStore(dict.fromkeys(keys, -1))
    done = threading.Event()
    torn: list[dict] = []

    def writer():
        for i in range(rounds):
            store.merge(dict.fromkeys(keys, i))
        done.set()

    def reader(_index):
        while not done.is_set():
            snapshot = store.get_all()
            if len(set(snapshot.values())) != 1:
                torn.append(snapshot)
                return

    def role(index):
        if index == 0:
            writer()
        else:
            reader(index)

    run_threads(readers + 1, role)
    assert torn == []
    assert store.get_all() == dict.fromkeys(keys, rounds - 1)


@FAST
@given(rounds=st.integers(1, 200))
def test_merge_is_atomic_for_update_readers(rounds):
    """A reader inside ``update`` (under the lock) never sees a half-applied merge either."""
    store = SharedStore({"a": 0, "b": 0})
    done = threading.Event()
    torn = []

    def role(index):
        if index == 0:
            for i in range(rounds):
                store.merge({"a": i, "b": i})
            done.set()
        else:
            while not done.is_set():

                def check(old):
                    if store.get("a") != store.get("b"):
                        torn.append((store.get("a"), store.get("b")))
                    return old

                store.update("probe", check)

    run_threads(2, role)
    assert torn == []


# -- single-threaded model: SharedStore behaves like a dict ------------------------------------------
keys = st.sampled_from(["a", "b", "c", "d"])
values = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, values),
        st.tuples(st.just("delete"), keys),
        st.tuples(st.just("merge"), st.dictionaries(keys, values, max_size=3)),
        st.tuples(st.just("clear")),
        st.tuples(st.just("update"), keys),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(initial=st.dictionaries(keys, values, max_size=4), ops=operations)
def test_store_matches_a_dict_model(initial, ops):
    store = SharedStore(initial)
    model = dict(initial)
    for op in ops:
        name = op[0]
        if name == "set":
            store.set(op[1], op[2])
            model[op[1]] = op[2]
        elif name == "delete":
            store.delete(op[1])
            model.pop(op[1], None)
        elif name == "merge":
            store.merge(op[1])
            model.update(op[1])
        elif name == "clear":
            store.clear()
            model.clear()
        else:
            new = store.update(op[1], lambda old: [old], "missing")
            model[op[1]] = [model.get(op[1], "missing")]
            assert new == model[op[1]]
        assert store.get_all() == model
        assert sorted(store.keys()) == sorted(model)
        assert len(store) == len(model)
        for key in ("a", "b", "c", "d"):
            assert (key in store) == (key in model) == store.has(key)
            assert store.get(key, "dflt") == model.get(key, "dflt")


numbers = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans())


@settings(max_examples=200, deadline=None)
@given(value=numbers)
def test_get_int_and_get_float_rules(value):
    store = SharedStore({"k": value})
    got_int = store.get_int("k", -7)
    got_float = store.get_float("k", -7.5)
    if isinstance(value, bool):
        assert got_int == -7
        assert got_float == -7.5
    elif isinstance(value, int):
        assert got_int == value
        assert got_float == float(value)
    elif math.isfinite(value):
        assert got_int == math.trunc(value)
        assert got_float == value
    else:
        assert got_int == -7
        assert isinstance(got_float, float)
        assert got_float == value or (math.isnan(got_float) and math.isnan(value))
    assert type(got_int) is int
    assert type(got_float) is float
