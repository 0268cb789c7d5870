"""format: safe, bounded text for hostile values."""

from __future__ import annotations

from flyt_tui.core.format import error_line, format_duration, pretty_lines, safe_repr, traceback_text, user_error


class Raises:
    def __repr__(self):
        raise RuntimeError("no")


class ReturnsNonString:
    def __repr__(self):
        return 42  # type: ignore[return-value]


def test_safe_repr_never_raises_and_is_bounded():
    assert safe_repr(Raises()) == "<Raises object; repr raised RuntimeError>"
    assert safe_repr(ReturnsNonString()) == "<ReturnsNonString object; repr raised TypeError>"
    assert safe_repr([Raises()]) == "[<Raises object; repr raised RuntimeError>]"
    loop: list = [1]
    loop.append(loop)
    assert safe_repr(loop).startswith("[1, [1, [")
    assert len(safe_repr("x" * 100_000, 50)) <= 50
    assert safe_repr(7**50000).startswith("<int of ")
    assert len(safe_repr(b"\x00" * 10_000_000)) <= 120
    assert safe_repr("line1\nline2") == "'line1\\nline2'"


def test_safe_repr_does_not_sort_or_walk_big_containers():
    compared = []

    class Key:
        def __init__(self, n):
            self.n = n

        def __hash__(self):
            return self.n

        def __lt__(self, other):
            compared.append(1)
            return self.n < other.n

        def __repr__(self):
            return f"K{self.n}"

    big = {Key(i): i for i in range(10_000)}
    text = safe_repr(big)
    assert text.startswith("{K0: 0, K1: 1") and text.endswith("...}")
    assert compared == []  # reprlib would sort the keys of a dict or set first
    assert safe_repr(set(big)).endswith("...}") and compared == []


class Counted:
    """An item that counts how often its repr is asked for."""

    calls = 0

    def __repr__(self):
        Counted.calls += 1
        return "c"


def test_subclasses_of_builtin_containers_are_bounded_too():
    """A ``list``/``dict``/... subclass that keeps the builtin repr (the engine's BatchItems,
    the inspector's store view, a user's ``class Rows(list)``) is shown as its base is:
    reprlib alone would call ``repr()`` on the whole of it."""

    class Rows(list):
        pass

    class Table(dict):
        pass

    class Bag(tuple):
        pass

    Counted.calls = 0
    assert safe_repr(Rows(Counted() for _ in range(10_000))) == "[c, c, c, c, c, c, c, c, c, c, ...]"
    assert safe_repr(Table(rows=Rows(Counted() for _ in range(10_000)))).endswith("c, ...]}")
    assert safe_repr(Bag((Counted(),))) == "(c,)"
    assert Counted.calls == 21

    class Shown(list):
        def __repr__(self):
            return "Shown!"

    assert safe_repr(Shown([1])) == "Shown!"  # a repr of its own is the class's to give


def test_a_one_line_summary_of_a_dict_does_not_walk_it():
    """Asked for one line, a dict (or a dict subclass: the inspector's store) is its repr,
    cut; it used to fall back on a full ``repr()`` of the value."""

    class Store(dict):
        pass

    Counted.calls = 0
    big = Store(items=[Counted() for _ in range(10_000)])
    assert pretty_lines(big, width=60, max_lines=1) == ["{'items': [c, c, c, c, c, c, c, c, c, c, ...]}"]
    assert Counted.calls == 10
    assert pretty_lines({"a": 1}, width=60, max_lines=1) == ["{'a': 1}"]


def test_pretty_lines_one_per_key_or_item():
    lines = pretty_lines({"a": 1, "b": [1, 2]}, width=40)
    assert lines == ["dict · 2 keys", "  'a': 1", "  'b': [1, 2]"]
    lines = pretty_lines(list(range(100)), width=40, max_lines=5)
    assert lines[0] == "list · 100 items" and lines[-1] == "  … 97 more" and len(lines) == 5
    assert pretty_lines(Raises()) == ["<Raises object; repr raised RuntimeError>"]
    assert pretty_lines("a\nb") == ["a", "b"]


def test_errors_and_tracebacks_show_the_users_code():
    from flyt_engine import Flow, Node, run

    def explode(ctx, prep):
        raise ValueError("bad value")

    try:
        run(Flow(Node(exec=explode, name="x"), name="f"))
    except Exception as exc:
        error = exc
    cause = user_error(error)
    assert isinstance(cause, ValueError)
    assert error_line(cause) == "ValueError: bad value"
    text = traceback_text(cause)
    assert "in explode" in text and "flyt_engine" not in text
    assert text.splitlines()[-1] == "ValueError: bad value"


def test_format_duration():
    assert format_duration(0.00085) == "850µs"
    assert format_duration(0.012) == "12ms"
    assert format_duration(1.234) == "1.23s"
    assert format_duration(125) == "2m05s"
