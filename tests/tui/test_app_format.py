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
