"""SharedStore: every method, the typed getters' exact rules and bind (API.md "SharedStore")."""

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Optional

import pytest

from flyt_engine import BindError, FlytError, SharedStore


# -- construction and basic methods -------------------------------------------------------------
def test_empty_and_initial_mapping_is_copied():
    assert len(SharedStore()) == 0
    initial = {"a": 1}
    store = SharedStore(initial)
    store.set("b", 2)
    assert initial == {"a": 1}
    assert store.get_all() == {"a": 1, "b": 2}
    assert SharedStore(MappingProxyType({"x": 1})).get("x") == 1


def test_initial_must_be_a_mapping():
    with pytest.raises(TypeError):
        SharedStore([("a", 1)])  # type: ignore[arg-type]


def test_get_set_has_with_default():
    store = SharedStore()
    assert store.get("k") is None
    assert store.get("k", "dflt") == "dflt"
    assert not store.has("k")
    store.set("k", None)
    assert store.has("k")
    assert store.get("k", "dflt") is None
    store.set("k", 5)
    assert store.get("k") == 5


def test_delete_and_delete_missing_is_noop():
    store = SharedStore({"a": 1})
    store.delete("a")
    assert not store.has("a")
    store.delete("a")
    store.delete("never")
    assert len(store) == 0


def test_keys_is_a_list_snapshot():
    store = SharedStore({"a": 1, "b": 2})
    keys = store.keys()
    assert isinstance(keys, list)
    assert sorted(keys) == ["a", "b"]
    keys.append("c")
    assert not store.has("c")


def test_len_contains_getitem_setitem():
    store = SharedStore()
    store["x"] = 1
    assert len(store) == 1
    assert "x" in store
    assert "y" not in store
    assert store["x"] == 1
    with pytest.raises(KeyError):
        store["y"]


def test_clear():
    store = SharedStore({"a": 1, "b": 2})
    store.clear()
    assert len(store) == 0
    assert store.keys() == []
    store.set("c", 3)  # still usable
    assert store.get("c") == 3


def test_get_all_is_a_shallow_copy():
    inner = [1]
    store = SharedStore({"a": inner})
    snapshot = store.get_all()
    assert snapshot == {"a": [1]}
    assert type(snapshot) is dict
    snapshot["b"] = 2
    assert not store.has("b")
    assert snapshot["a"] is inner  # shallow


def test_merge_sets_every_key_and_none_is_noop():
    store = SharedStore({"a": 1, "b": 2})
    store.merge({"b": 20, "c": 30})
    assert store.get_all() == {"a": 1, "b": 20, "c": 30}
    store.merge(None)
    assert store.get_all() == {"a": 1, "b": 20, "c": 30}
    store.merge(OrderedDict(d=4))
    assert store.get("d") == 4


def test_merge_rejects_non_mapping():
    with pytest.raises(TypeError):
        SharedStore().merge([("a", 1)])  # type: ignore[arg-type]


def test_update_returns_new_value_and_uses_default():
    store = SharedStore()
    assert store.update("n", lambda old: old + 1, 0) == 1
    assert store.update("n", lambda old: old + 1, 0) == 2
    assert store.get("n") == 2
    assert store.update("list", lambda old: [*old, "x"], []) == ["x"]
    assert store.update("none", lambda old: old) is None
    assert store.has("none")


def test_update_fn_may_read_the_store():
    store = SharedStore({"a": 2, "b": 3})
    assert store.update("sum", lambda _: store.get("a") + store["b"] + len(store.get_all())) == 7


def test_update_exception_leaves_value_unchanged():
    store = SharedStore({"n": 1})

    def boom(old):
        raise ValueError("no")

    with pytest.raises(ValueError):
        store.update("n", boom)
    assert store.get("n") == 1
    assert store.update("n", lambda old: old + 1) == 2  # the lock was released


# -- typed getters ----------------------------------------------------------------------------
def test_get_str():
    store = SharedStore({"s": "hi", "n": 1, "b": b"x", "none": None})
    assert store.get_str("s") == "hi"
    assert store.get_str("n") == ""
    assert store.get_str("b") == ""
    assert store.get_str("none") == ""
    assert store.get_str("missing") == ""
    assert store.get_str("n", "dflt") == "dflt"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (-5, -5),
        (0, 0),
        (3.9, 3),
        (-3.9, -3),  # toward zero, not floor
        (2.0, 2),
        (10**20, 10**20),
    ],
)
def test_get_int_accepts_int_and_truncates_floats(value, expected):
    store = SharedStore({"k": value})
    result = store.get_int("k", 99)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [True, False, "5", "x", math.nan, math.inf, -math.inf, None, [1], b"1"])
def test_get_int_wrong_types_give_default(value):
    store = SharedStore({"k": value})
    assert store.get_int("k", 99) == 99
    assert store.get_int("k") == 0


def test_get_int_missing_gives_default():
    assert SharedStore().get_int("k") == 0
    assert SharedStore().get_int("k", -1) == -1


@pytest.mark.parametrize(("value", "expected"), [(42, 42.0), (1.5, 1.5), (-2, -2.0), (math.inf, math.inf)])
def test_get_float_accepts_int_and_float_and_returns_float(value, expected):
    result = SharedStore({"k": value}).get_float("k", 9.0)
    assert result == expected
    assert type(result) is float


def test_get_float_nan_is_a_float():
    assert math.isnan(SharedStore({"k": math.nan}).get_float("k", 9.0))


@pytest.mark.parametrize("value", [True, False, "1.5", None, [1.0]])
def test_get_float_wrong_types_give_default(value):
    store = SharedStore({"k": value})
    assert store.get_float("k", 9.5) == 9.5
    assert store.get_float("k") == 0.0
    assert SharedStore().get_float("missing") == 0.0


def test_get_bool_only_bool():
    store = SharedStore({"t": True, "f": False, "one": 1, "s": "true", "none": None})
    assert store.get_bool("t") is True
    assert store.get_bool("f", True) is False
    assert store.get_bool("one") is False
    assert store.get_bool("one", True) is True
    assert store.get_bool("s", True) is True
    assert store.get_bool("none") is False
    assert store.get_bool("missing", True) is True


def test_get_list_accepts_list_and_tuple_as_new_list():
    original = [1, 2]
    store = SharedStore({"l": original, "t": (1, 2)})
    got = store.get_list("l")
    assert got == [1, 2]
    assert got is not original
    got.append(3)
    assert store.get("l") == [1, 2]
    tup = store.get_list("t")
    assert tup == [1, 2]
    assert type(tup) is list


@pytest.mark.parametrize("value", ["ab", b"ab", {"a": 1}, MappingProxyType({"a": 1}), 5, None, {1, 2}])
def test_get_list_wrong_types_give_default(value):
    store = SharedStore({"k": value})
    assert store.get_list("k") is None
    assert store.get_list("k", ["d"]) == ["d"]
    assert SharedStore().get_list("missing", []) == []


class _CustomMapping(Mapping):
    def __init__(self, data):
        self._data = data

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


@pytest.mark.parametrize("value", [{"a": 1}, OrderedDict(a=1), MappingProxyType({"a": 1}), _CustomMapping({"a": 1})])
def test_get_dict_accepts_any_mapping_as_dict_copy(value):
    store = SharedStore({"k": value})
    got = store.get_dict("k")
    assert got == {"a": 1}
    assert type(got) is dict
    got["b"] = 2
    assert "b" not in store.get("k")


@pytest.mark.parametrize("value", [[("a", 1)], "ab", 5, None])
def test_get_dict_wrong_types_give_default(value):
    store = SharedStore({"k": value})
    assert store.get_dict("k") is None
    assert store.get_dict("k", {"d": 1}) == {"d": 1}


# -- bind -------------------------------------------------------------------------------------
@dataclass
class Address:
    city: str
    zip: str = "00000"


@dataclass
class Person:
    name: str
    age: int
    address: Address
    tags: list[str] = field(default_factory=list)
    nickname: Optional[str] = None  # noqa: UP045 - the typing spelling is what users write
    spouse: Address | None = None


@dataclass
class Team:
    members: list[Person]
    lead: Optional[Person]  # noqa: UP045 - required but optional: a missing key gives None
    scores: dict[str, float] = field(default_factory=dict)


class Keyword:
    """A plain class taking the keys as keyword arguments."""

    def __init__(self, host: str, port: int = 80):
        self.host = host
        self.port = port


class FakeModel:
    """Stands in for a pydantic model: only ``model_validate`` is used."""

    calls: list[Any] = []

    def __init__(self, value: int):
        self.value = value

    @classmethod
    def model_validate(cls, data):
        cls.calls.append(data)
        if not isinstance(data, Mapping) or "value" not in data:
            raise ValueError("value is required")
        return cls(int(data["value"]) * 10)


def test_bind_dataclass_with_nested_list_and_optional_fields():
    store = SharedStore(
        {"p": {"name": "Ann", "age": 30, "address": {"city": "Oslo"}, "tags": ["a", "b"], "spouse": {"city": "Bergen"}}}
    )
    person = store.bind("p", Person)
    assert isinstance(person, Person)
    assert person.name == "Ann" and person.age == 30
    assert isinstance(person.address, Address)
    assert person.address == Address("Oslo", "00000")
    assert person.tags == ["a", "b"]
    assert person.nickname is None
    assert isinstance(person.spouse, Address) and person.spouse.city == "Bergen"


def test_bind_lists_of_dataclasses_and_required_optional():
    store = SharedStore(
        {
            "t": {
                "members": [
                    {"name": "A", "age": 1, "address": {"city": "X"}},
                    {"name": "B", "age": 2, "address": {"city": "Y", "zip": "9"}, "nickname": "bee"},
                ],
                "scores": {"A": 1, "B": 2.5},
            }
        }
    )
    team = store.bind("t", Team)
    assert [type(m) for m in team.members] == [Person, Person]
    assert team.members[1].address.zip == "9"
    assert team.members[1].nickname == "bee"
    assert team.lead is None
    assert team.scores == {"A": 1.0, "B": 2.5}
    assert all(type(v) is float for v in team.scores.values())


def test_bind_optional_field_given_none():
    store = SharedStore({"p": {"name": "A", "age": 1, "address": {"city": "X"}, "spouse": None}})
    assert store.bind("p", Person).spouse is None


def test_bind_instance_returned_as_is():
    person = Person("A", 1, Address("X"))
    store = SharedStore({"p": person, "n": 5, "s": "x"})
    assert store.bind("p", Person) is person
    assert store.bind("n", int) == 5
    assert store.bind("s", str) == "x"


def test_bind_keyword_class():
    store = SharedStore({"cfg": {"host": "h", "port": 8080}, "short": {"host": "h2"}})
    cfg = store.bind("cfg", Keyword)
    assert isinstance(cfg, Keyword) and (cfg.host, cfg.port) == ("h", 8080)
    assert store.bind("short", Keyword).port == 80


def test_bind_model_validate_class():
    FakeModel.calls.clear()
    store = SharedStore({"m": {"value": "4"}})
    model = store.bind("m", FakeModel)
    assert isinstance(model, FakeModel)
    assert model.value == 40  # went through model_validate, not __init__
    assert FakeModel.calls == [{"value": "4"}]


def test_bind_model_validate_failure_is_bind_error():
    store = SharedStore({"m": {"other": 1}})
    with pytest.raises(BindError) as info:
        store.bind("m", FakeModel)
    assert "'m'" in str(info.value)
    assert "value is required" in str(info.value)


def test_bind_missing_key_names_key_and_reason():
    with pytest.raises(BindError) as info:
        SharedStore().bind("config", Keyword)
    message = str(info.value)
    assert "config" in message
    assert "missing" in message
    assert isinstance(info.value, FlytError)


def test_bind_missing_required_field_names_key_and_field():
    store = SharedStore({"p": {"name": "A", "address": {"city": "X"}}})
    with pytest.raises(BindError) as info:
        store.bind("p", Person)
    assert "'p'" in str(info.value)
    assert "age" in str(info.value)


@pytest.mark.parametrize(
    ("value", "cls", "reason_fragment"),
    [
        ({"name": "A", "age": "old", "address": {"city": "X"}}, Person, "age"),
        ({"name": "A", "age": 1, "address": "nowhere"}, Person, "address"),
        ("not a mapping", Person, "str"),
        ({"hostname": "h"}, Keyword, "host"),
        ("5", int, "str"),
        ({"members": "x", "lead": None}, Team, "members"),
    ],
)
def test_bind_impossible_conversion_names_key_and_reason(value, cls, reason_fragment):
    store = SharedStore({"thekey": value})
    with pytest.raises(BindError) as info:
        store.bind("thekey", cls)
    message = str(info.value)
    assert "thekey" in message
    assert reason_fragment in message


def test_bind_keyword_class_constructor_error_is_bind_error():
    class Picky:
        def __init__(self, n: int):
            if n < 0:
                raise ValueError("n must be >= 0")

    store = SharedStore({"k": {"n": -1}})
    with pytest.raises(BindError) as info:
        store.bind("k", Picky)
    assert "'k'" in str(info.value) and "n must be >= 0" in str(info.value)


def test_bind_int_to_float():
    value = SharedStore({"f": 3}).bind("f", float)
    assert value == 3.0 and type(value) is float


def test_bind_error_is_raised_not_returned_and_store_untouched():
    store = SharedStore({"p": {"bad": True}})
    with pytest.raises(BindError):
        store.bind("p", Address)
    assert store.get("p") == {"bad": True}


def test_bind_heterogeneous_tuple_field():
    @dataclass
    class Pair:
        pair: tuple[int, str]
        rest: tuple[int, ...] = ()

    store = SharedStore({"p": {"pair": [1, "a"], "rest": [1, 2, 3]}})
    bound = store.bind("p", Pair)
    assert bound.pair == (1, "a")
    assert bound.rest == (1, 2, 3)


def test_bind_tuple_of_wrong_length_is_bind_error():
    @dataclass
    class Pair:
        pair: tuple[int, str]

    with pytest.raises(BindError) as info:
        SharedStore({"p": {"pair": [1, "a", "extra"]}}).bind("p", Pair)
    assert "'p.pair'" in str(info.value)


def test_bind_abstract_sequence_and_set_fields_convert_their_items():
    @dataclass
    class Holder:
        addresses: Sequence[Address]
        codes: set[int]
        lookup: Mapping[str, Address]

    store = SharedStore({"h": {"addresses": [{"city": "X"}], "codes": [1, 1, 2], "lookup": {"k": {"city": "Y"}}}})
    holder = store.bind("h", Holder)
    assert holder.addresses == [Address("X")]
    assert holder.codes == {1, 2}
    assert holder.lookup == {"k": Address("Y")}


def test_bind_union_failure_says_why():
    @dataclass
    class Either:
        value: int | Address

    with pytest.raises(BindError) as info:
        SharedStore({"e": {"value": "text"}}).bind("e", Either)
    assert "'e.value'" in str(info.value)


def test_bind_local_dataclass_with_string_annotations():
    """Annotations as strings (``from __future__ import annotations``) on a class defined in a
    function: resolvable fields still convert; an unresolvable one gives a clear BindError."""

    @dataclass
    class Local:
        n: "int"
        items: "list[int]"
        inner: "LocalInner"  # defined in this function only: not resolvable by name

    @dataclass
    class LocalInner:
        x: int

    store = SharedStore({"ok": {"n": 1, "items": [1], "inner": {"x": 1}}})
    with pytest.raises(BindError) as info:
        store.bind("ok", Local)
    message = str(info.value)
    assert "'ok.inner'" in message
    assert "LocalInner" in message and "resolve" in message

    @dataclass
    class Flat:
        n: "int"
        name: "str | None"
        address: "Address"

    flat = SharedStore({"f": {"n": 3, "name": None, "address": {"city": "X"}}}).bind("f", Flat)
    assert flat == Flat(3, None, Address("X"))
