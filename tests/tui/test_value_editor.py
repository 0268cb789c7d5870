"""The JSON editor's conversions: what it offers to edit, and the edited value's shape."""

from __future__ import annotations

import math

from flyt_tui.screens.value_editor import as_json, shaped_like


def test_tuples_are_edited_as_json_arrays_and_come_back_as_tuples():
    prep = ("question?", {"pair": (1, 2), "items": [1, 2]}, 0.5)
    text = as_json(prep)
    assert text is not None and text.lstrip().startswith("[")
    edited = shaped_like(["other?", {"pair": [3, 4], "items": [5], "new": [6]}, 1.0], prep)
    assert edited == ("other?", {"pair": (3, 4), "items": [5], "new": [6]}, 1.0)
    assert type(edited) is tuple and type(edited[1]["pair"]) is tuple and type(edited[1]["new"]) is list


def test_an_array_of_another_length_still_becomes_the_tuple_it_replaces():
    assert shaped_like([1, 2, 3], (1, 2)) == (1, 2, 3)
    assert shaped_like({"a": 1}, (1, 2)) == {"a": 1}  # another kind of value: as written


def test_values_json_cannot_say_are_read_only():
    assert as_json({1, 2}) is None
    assert as_json(object()) is None
    assert as_json(math.nan) is None
    assert as_json({1: "int key"}) is None  # it would come back with the key "1"
    looped: list = []
    looped.append(looped)
    assert as_json(looped) is None
    assert as_json({"ok": [1, "two", None, True]}) is not None
