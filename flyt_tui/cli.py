"""The ``flyt-tui`` command: open a flow file in the workbench, or run it ``--headless``.

Exit codes: 0 the flow succeeded (or the workbench was closed), 1 the flow failed,
2 a usage or load error (bad path, syntax error, no flow, bad ``--set``/``--store``...).
Textual is imported only for the interactive workbench, so headless runs start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flyt_engine import __version__

from .core.loading import LoadError, check_path, parse_set_option, parse_target, read_store_file

EXIT_OK, EXIT_FLOW_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message: str, details: str = "") -> None:
    """Print a clear error on stderr and exit with the usage/load error code."""
    click.echo(f"flyt-tui: error: {message}", err=True)
    if details and details.strip() != message.strip():
        click.echo(details.rstrip(), err=True)
    raise SystemExit(EXIT_USAGE)


def _parse_overrides(options: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for text in options:
        try:
            key, value = parse_set_option(text)
        except ValueError as exc:
            _fail(str(exc))
        overrides[key] = value
    return overrides


def _check_file(path: Path) -> None:
    try:
        check_path(path)
    except LoadError as exc:
        _fail(exc.message)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("target", metavar="FILE.py[:NAME]")
@click.option("--flow", "flow_name", metavar="NAME", help="The flow to open when the file has several.")
@click.option(
    "--set",
    "set_options",
    metavar="KEY=JSON",
    multiple=True,
    help="Set a key of the initial store to a JSON value (repeatable; wins over --store).",
)
@click.option(
    "--store",
    "store_file",
    metavar="FILE.json",
    type=click.Path(path_type=Path),
    help="Merge a JSON object into the initial store.",
)
@click.option("--break", "breakpoints", metavar="NODE", multiple=True, help="Pause before NODE (repeatable).")
@click.option("--no-watch", is_flag=True, help="Do not reload when the file changes.")
@click.option("--headless", is_flag=True, help="Run the flow without the workbench, progress on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the final action and store as JSON (implies --headless).")
@click.version_option(__version__, "--version", "-V", prog_name="flyt-tui")
def main(
    target: str,
    flow_name: str | None,
    set_options: tuple[str, ...],
    store_file: Path | None,
    breakpoints: tuple[str, ...],
    no_watch: bool,
    headless: bool,
    as_json: bool,
) -> None:
    """Debug a Flyt flow: open FILE.py in the workbench (or run it with --headless).

    NAME picks a flow (a module attribute, or a create_*/build_* factory) when the file
    holds several; without it a module-level `flow` is opened.
    """
    try:
        path, attr = parse_target(target)
    except LoadError as exc:
        _fail(exc.message)
    overrides = _parse_overrides(set_options)
    _check_file(path)
    if store_file is not None:
        try:
            read_store_file(store_file)
        except LoadError as exc:
            _fail(exc.message)

    if headless or as_json:
        raise SystemExit(_headless(path, attr, flow_name, store_file, overrides, breakpoints, as_json))

    from .app import FlytApp  # Textual is only needed here

    app = FlytApp(
        path,
        attr=attr,
        flow_name=flow_name,
        store_file=store_file,
        overrides=overrides,
        breakpoints=breakpoints,
        watch=not no_watch,
    )
    app.run()
    raise SystemExit(app.return_code or EXIT_OK)


def _headless(
    path: Path,
    attr: str | None,
    flow_name: str | None,
    store_file: Path | None,
    overrides: dict[str, Any],
    breakpoints: tuple[str, ...],
    as_json: bool,
) -> int:
    from .core.loading import load_module
    from .headless import run_headless

    try:
        loaded = load_module(path, attr=attr, flow_name=flow_name, store_file=store_file, overrides=overrides)
    except LoadError as exc:
        _fail(exc.message, exc.details)
    if len(loaded.entries) != 1:
        names = ", ".join(entry.name for entry in loaded.entries)
        _fail(f"{path.name} holds several flows ({names}); pick one with {path.name}:NAME or --flow NAME")
    entry = loaded.entries[0]
    return run_headless(entry.flow, loaded.initial_store, as_json=as_json, breakpoints=breakpoints)
