"""How values open in the inspector (``core/outline.py``): lazily, capped, without running user code."""

from __future__ import annotations

from dataclasses import dataclass

from flyt_tui.core.outline import MAX_PARTS, MAX_TEXT_LINES, can_open, parts_of


def test_a_dict_opens_into_its_items_named_by_their_keys():
    parts = parts_of({"a": 1, 2: [3]}, 40)
    assert [(part.name, part.value) for part in parts] == [("'a'", 1), ("2", [3])]


def test_lists_tuples_and_sets_open_into_their_elements():
    assert [(p.name, p.value) for p in parts_of([10, 20], 40)] == [("[0]", 10), ("[1]", 20)]
    assert [p.value for p in parts_of((1, 2, 3), 40)] == [1, 2, 3]
    assert sorted(p.value for p in parts_of({5, 6}, 40)) == [5, 6]


def test_a_self_containing_list_opens_one_level_at_a_time():
    loop: list = [1]
    loop.append(loop)
    parts = parts_of(loop, 40)
    assert parts[1].value is loop  # opening it again is the user's choice, never a recursion


def test_a_big_container_is_capped_and_says_how_many_more():
    parts = parts_of(list(range(MAX_PARTS + 50)), 40)
    assert len(parts) == MAX_PARTS + 1
    assert parts[-1].text == "… 50 more"


def test_subclasses_with_hostile_methods_open_without_calling_them():
    class Hostile(dict):
        def items(self):
            raise RuntimeError("never called")

        def __iter__(self):
            raise RuntimeError("never called")

    class HostileList(list):
        def __iter__(self):
            raise RuntimeError("never called")

    assert [p.value for p in parts_of(Hostile(k=1), 40)] == [1]
    assert [p.value for p in parts_of(HostileList([7, 8]), 40)] == [7, 8]


def test_an_object_opens_into_its_attributes_without_its_getattr():
    @dataclass
    class Order:
        id: str
        total: float

    class Spooky:
        def __init__(self) -> None:
            self.x = 1

        def __getattribute__(self, name):
            raise RuntimeError("no")

    assert [(p.name, p.value) for p in parts_of(Order("A1", 9.5), 40)] == [(".id", "A1"), (".total", 9.5)]
    assert [(p.name, p.value) for p in parts_of(Spooky(), 40)] == [(".x", 1)]
    assert not can_open(len, 40) and not can_open(Order, 40) and not can_open(3, 40)


def test_a_long_string_opens_wrapped_and_a_huge_one_says_its_length():
    text = "word " * 30
    assert not can_open("short", 40) and can_open(text, 40)
    lines = [part.text for part in parts_of(text, 40)]
    assert all(line is not None and len(line) <= 40 for line in lines)
    assert "".join(line or "" for line in lines) == text
    huge = "x" * 10_000_000
    parts = parts_of(huge, 80)
    assert len(parts) == MAX_TEXT_LINES + 1
    assert parts[-1].text == "… 10,000,000 characters in all"


def test_newlines_in_a_string_start_new_lines():
    parts = parts_of("first line\nsecond line " + "y" * 50, 30)
    assert parts[0].text == "first line"
    assert parts[1].text is not None and parts[1].text.startswith("second line")
