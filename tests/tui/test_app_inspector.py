"""The inspector: values open like a debugger's variables view, stay open, and a new view
never reflows the screen; the graph pane is only as wide as the graph."""

from __future__ import annotations

from conftest import SIZE, flow_path, select_node, wait_for, wait_loaded, wait_state

from flyt_tui.app import FlytApp
from flyt_tui.widgets.inspector import Inspector


def _line(app: FlytApp, starts: str):
    """The inspector's visible line whose text (without guides) starts with ``starts``."""
    inspector = app.inspector
    for number in range(inspector.last_line + 1):
        node = inspector.get_node_at_line(number)
        if node is not None and node.label.plain.lstrip().startswith(starts):
            return number, node
    raise AssertionError(f"no inspector line starts with {starts!r}:\n{inspector.plain}")


def _child_lines(app: FlytApp, starts: str) -> list[str]:
    """The inspector's lines one level down (as ``plain`` indents them) starting with ``starts``."""
    return [
        line for line in app.inspector.plain.splitlines() if line.startswith("  ") and line.strip().startswith(starts)
    ]


async def test_a_small_result_opens_by_itself_and_nested_parts_open_on_enter():
    app = FlytApp(flow_path("nested_values"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        select_node(app, "price")
        await wait_for(pilot, lambda: _child_lines(app, "'total': 25.0"), what="exec to open by itself")
        assert _child_lines(app, "'lines': ")
        assert not _child_lines(app, "[0]")  # nested: closed until asked
        number, _ = _line(app, "'lines'")
        app.inspector.focus()
        app.inspector.cursor_line = number
        await pilot.press("enter")
        await wait_for(pilot, lambda: "[0]" in app.inspector.plain, what="the list to open")
        _, first = _line(app, "[0]")
        app.inspector.cursor_line = first.line
        await pilot.press("enter")
        await wait_for(pilot, lambda: "'tags'" in app.inspector.plain, what="the item to open")
        # What the user opened stays open when the view is built again.
        select_node(app, "receipt")
        await wait_for(pilot, lambda: app.inspector.plain.startswith("receipt"))
        select_node(app, "price")
        await wait_for(pilot, lambda: "'tags'" in app.inspector.plain, what="the opened parts to stay open")
        # And closing a part that opened by itself is remembered too.
        number, _ = _line(app, "exec")
        app.inspector.focus()
        app.inspector.cursor_line = number
        await pilot.press("space")
        await wait_for(pilot, lambda: not _child_lines(app, "'order'"), what="exec to close")
        select_node(app, "receipt")
        await wait_for(pilot, lambda: app.inspector.plain.startswith("receipt"))
        select_node(app, "price")
        await wait_for(pilot, lambda: app.inspector.plain.startswith("price"))
        assert not _child_lines(app, "'order'")


async def test_a_ten_megabyte_string_opens_wrapped_with_its_length():
    app = FlytApp(flow_path("nested_values"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        app.store_table.focus()
        await pilot.pause()
        app.store_table.move_cursor(row=1)
        await pilot.pause()
        app.store_table.move_cursor(row=app.store_table.store_keys().index("blob"))
        await wait_for(pilot, lambda: app.inspector.plain.startswith("blob  str"))
        text = app.inspector.plain
        assert ("…" in text or "..." in text) and "characters in all" not in text  # closed: one line, marked as cut
        number, _ = _line(app, "value")
        app.inspector.focus()
        app.inspector.cursor_line = number
        await pilot.press("enter")
        await wait_for(pilot, lambda: "… 10,000,000 characters in all" in app.inspector.plain)
        widths = {len(line.strip()) for line in app.inspector.plain.splitlines()[2:-1]}
        assert max(widths) <= app.inspector.size.width  # wrapped, not cut


async def test_a_new_inspector_view_does_not_reflow_the_screen():
    """Each view used to change the inspector's height: a layout of the whole screen per
    cursor move, the cost that made a streaming run 1.8 times slower."""
    app = FlytApp(flow_path("nested_values"), watch=False, stable_output=True)
    layouts: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("r")
        await wait_state(pilot, "done")
        await pilot.pause(0.2)
        inspector = app.inspector
        original = Inspector.refresh

        def spy(self, *regions, **options):
            if options.get("layout"):
                layouts.append("inspector")
            return original(self, *regions, **options)

        inspector.refresh = spy.__get__(inspector)  # type: ignore[method-assign]
        for name in ("receipt", "price", "shop", "price", "receipt"):
            select_node(app, name)
            await wait_for(pilot, lambda name=name: inspector.plain.startswith(name))
        await pilot.pause(0.2)
        assert layouts == []


async def test_the_graph_pane_is_only_as_wide_as_the_graph():
    app = FlytApp(flow_path("nested_values"), watch=False, stable_output=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.pause()
        assert 40 <= app.flow_tree.size.width + 2 < SIZE[0] // 2
        assert app.inspector.size.width > SIZE[0] // 2
