"""The ``flyt-tui`` command: open a flow file in the workbench, or run it ``--headless``.

Exit codes: 0 the flow succeeded (or the workbench was closed), 1 the flow failed,
2 a usage or load error (bad path, syntax error, no flow, bad ``--set``/``--store``...).
Textual is imported only for the interactive workbench, so headless runs start fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from flyt_engine import __version__

from .core import exit_guard
from .core.breakpoints import BreakOn, BreakpointError, Breakpoints, NodeBreakpoint
from .core.loading import LoadError, check_path, parse_set_option, parse_target, read_store_file
from .core.recording import SUFFIX, is_recording

EXIT_OK, EXIT_FLOW_FAILED, EXIT_USAGE = 0, 1, 2


# True when running as the flyt-tui command (``run``), not called by a test: only then may
# quitting end the process at once (``core/exit_guard.py``).
_as_command = False


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
@click.argument("target", metavar="FILE.py[:NAME] | FILE.flyt.jsonl")
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
@click.option(
    "--break",
    "breakpoints",
    metavar="NODE[:PHASE][ if EXPR]",
    multiple=True,
    help="Pause at NODE's PHASE (prep), when EXPR over shared/prep/attempt/node holds (repeatable).",
)
@click.option(
    "--watch", "watches", metavar="KEY", multiple=True, help="Pause at every write to store KEY (repeatable)."
)
@click.option(
    "--break-on",
    "break_on",
    type=click.Choice([kind.value for kind in BreakOn]),
    multiple=True,
    help="Pause where a node is about to fail (error), at each failed attempt (retry) or before a fallback.",
)
@click.option("--no-watch", is_flag=True, help="Do not reload when the file changes.")
@click.option("--headless", is_flag=True, help="Run the flow without the workbench, progress on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the final action and store as JSON (implies --headless).")
@click.option("-v", "--verbose", is_flag=True, help="--headless: a line per node step, not only the summary.")
@click.option("--mermaid", is_flag=True, help="Print the flow's graph as a Mermaid flowchart and exit.")
@click.option(
    "--record",
    "record",
    metavar="FILE.flyt.jsonl",
    type=click.Path(path_type=Path),
    help="Record the run into a bundle that `flyt-tui FILE.flyt.jsonl` reopens without the code.",
)
@click.option(
    "--otel",
    "otel",
    metavar="console|otlp|FILE.jsonl",
    help="Export the run (or the recording) as OpenTelemetry spans (needs the [otel] extra).",
)
@click.version_option(__version__, "--version", "-V", prog_name="flyt-tui")
def main(
    target: str,
    flow_name: str | None,
    set_options: tuple[str, ...],
    store_file: Path | None,
    breakpoints: tuple[str, ...],
    watches: tuple[str, ...],
    break_on: tuple[str, ...],
    no_watch: bool,
    headless: bool,
    as_json: bool,
    verbose: bool,
    mermaid: bool,
    record: Path | None,
    otel: str | None,
) -> None:
    """Debug a Flyt flow: open FILE.py in the workbench (or run it with --headless).

    NAME picks a flow (a module attribute, or a create_*/build_* factory) when the file
    holds several; without it a module-level `flow` is opened. A FILE.flyt.jsonl (made with
    --record) opens the recorded run read-only, without importing or running anything.
    """
    if otel is not None:
        otel = _check_otel(otel)
    if is_recording(target):
        run_only = {
            "--set": set_options,
            "--store": store_file,
            "--break": breakpoints,
            "--watch": watches,
            "--break-on": break_on,
            "--record": record,
            "--flow": flow_name,
        }
        given = [option for option, value in run_only.items() if value]
        if given:
            _fail(f"{', '.join(given)}: a recording runs nothing (open its module to run it again)")
        raise SystemExit(_recording(Path(target).absolute(), mermaid, headless or as_json, as_json, otel))
    if record is not None:
        if not is_recording(record):
            _fail(f"--record {record}: name the bundle FILE{SUFFIX}")
        record = record.absolute()
        if not record.parent.is_dir():
            _fail(f"--record {record}: the folder {record.parent} does not exist")
    try:
        path, attr = parse_target(target)
    except LoadError as exc:
        _fail(exc.message)
    overrides = _parse_overrides(set_options)
    for text in breakpoints:
        try:
            NodeBreakpoint.parse(text)
        except BreakpointError as exc:
            _fail(f"--break {text!r}: {exc}")
    # Every path is resolved once, now: a module may change directory when it is imported.
    path = path.absolute()
    store_file = store_file.absolute() if store_file is not None else None
    _check_file(path)
    if store_file is not None:
        try:
            read_store_file(store_file)
        except LoadError as exc:
            _fail(exc.message)

    if mermaid:
        raise SystemExit(_mermaid(path, attr, flow_name))
    if headless or as_json:
        points = _points(breakpoints, watches, break_on)
        raise SystemExit(
            _headless(path, attr, flow_name, store_file, overrides, points, as_json, verbose, record, otel)
        )

    from .app import FlytApp  # Textual is only needed here

    app = FlytApp(
        path,
        attr=attr,
        flow_name=flow_name,
        store_file=store_file,
        overrides=overrides,
        breakpoints=breakpoints,
        watches=watches,
        break_on=break_on,
        watch=not no_watch,
        record=record,
        otel=otel,
    )
    raise SystemExit(_run_app(app))


def _run_app(app: Any) -> int:
    """Run the workbench; the real command leaves in bounded time (a test's process must not)."""
    app.guard_exit = _as_command
    if _as_command:
        exit_guard.remember_terminal()
    app.run()
    if _as_command:
        exit_guard.arm()  # the app closed: whatever user code still runs must not hold the process
    return int(app.return_code or EXIT_OK)


def _mermaid(path: Path, attr: str | None, flow_name: str | None) -> int:
    """``--mermaid``: the graph as Mermaid on stdout (what the module prints goes to stderr)."""
    from flyt_engine.graph import describe, to_mermaid

    from .core.loading import load_module

    with stdout_for_json(True) as out:
        try:
            loaded = load_module(path, attr=attr, flow_name=flow_name)
        except LoadError as exc:
            _fail(exc.message, exc.details)
        if len(loaded.entries) != 1:
            names = ", ".join(entry.name for entry in loaded.entries)
            _fail(f"{path.name} holds several flows ({names}); pick one with {path.name}:NAME or --flow NAME")
        assert out is not None
        out.write(to_mermaid(describe(loaded.entries[0].flow)))
    return EXIT_OK


def _points(breakpoints: tuple[str, ...], watches: tuple[str, ...], break_on: tuple[str, ...]) -> Breakpoints:
    points = Breakpoints()
    for text in breakpoints:
        points.add(text)
    for key in watches:
        points.watch(key)
    points.set_break_on(break_on)
    return points


def _headless(
    path: Path,
    attr: str | None,
    flow_name: str | None,
    store_file: Path | None,
    overrides: dict[str, Any],
    breakpoints: Breakpoints | tuple[str, ...],
    as_json: bool,
    verbose: bool = False,
    record: Path | None = None,
    otel: str | None = None,
) -> int:
    from .core.loading import load_module
    from .headless import run_headless

    with stdout_for_json(as_json) as json_out:  # --json owns stdout: the flow's prints go to stderr
        try:
            loaded = load_module(path, attr=attr, flow_name=flow_name, store_file=store_file, overrides=overrides)
        except LoadError as exc:
            _fail(exc.message, exc.details)
        if len(loaded.entries) != 1:
            names = ", ".join(entry.name for entry in loaded.entries)
            _fail(f"{path.name} holds several flows ({names}); pick one with {path.name}:NAME or --flow NAME")
        entry = loaded.entries[0]
        writer = None
        if record is not None:
            from .core.recording import start_recording

            try:
                writer = start_recording(record, entry.flow, loaded.initial_store, module=path, entry=entry.name)
            except OSError as exc:
                _fail(f"--record {record}: {exc.strerror or exc}")
        return run_headless(
            entry.flow,
            loaded.initial_store,
            as_json=as_json,
            verbose=verbose,
            breakpoints=breakpoints,
            stdout=json_out,
            record=writer,
            spans=_spans(otel, entry.flow.name) if otel is not None else None,
        )


def _check_otel(target: str) -> str:
    """``--otel``: the extra is installed and the target makes sense, before anything runs
    (nothing of OpenTelemetry is imported here). Returns the target, a file made absolute."""
    from .core.otel import INSTALL

    if target not in ("console", "otlp") and not target.endswith(".jsonl"):
        _fail(f"--otel {target}: say console, otlp or a FILE.jsonl")
    if not _installed("opentelemetry.sdk"):
        _fail(f"--otel needs OpenTelemetry's SDK: {INSTALL}")
    if target.endswith(".jsonl"):
        file = Path(target).absolute()
        if not file.parent.is_dir():
            _fail(f"--otel {target}: the folder {file.parent} does not exist")
        return str(file)
    return target


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _spans(target: str, service: str, wall_start: float | None = None) -> Any:
    from .core.otel import OtelMissing, SpanBuilder, make_exporter

    try:
        return SpanBuilder(make_exporter(target), service=service, wall_start=wall_start)
    except (OtelMissing, OSError) as exc:
        _fail(f"--otel {target}: {exc}")


def _recording(path: Path, mermaid: bool, headless: bool, as_json: bool, otel: str | None = None) -> int:
    """A FILE.flyt.jsonl target: the workbench opens it read-only; ``--mermaid`` prints its
    graph; ``--headless``/``--json`` print how the recorded run ended. Nothing is run."""
    from .core.recording_reader import RecordingError, read_head

    try:
        head = read_head(path)
    except RecordingError as exc:
        _fail(str(exc))
    if mermaid:
        from flyt_engine.graph import describe, to_mermaid

        from .core.recording_reader import stand_in_flow

        click.echo(to_mermaid(describe(stand_in_flow(head)[0])), nl=False)
        return EXIT_OK
    if headless:
        return _recording_summary(head, as_json, otel)
    from .app import FlytApp

    return _run_app(FlytApp(path, watch=False, otel=otel))


def _recording_summary(head: Any, as_json: bool, otel: str | None = None) -> int:
    """``--headless`` on a recording: how the recorded run ended, read through to its end
    (and, with ``--otel``, its spans, timed as recorded)."""
    import json

    from .core.format import error_line
    from .core.jsonable import to_jsonable
    from .core.recording_reader import RunReader

    reader = RunReader(head)
    wall = head.header.get("wall")
    spans = _spans(otel, head.flow_name, wall if isinstance(wall, (int, float)) else None) if otel else None
    for records, _kept in reader.batches():
        if spans is not None:
            spans.feed(records)
    if spans is not None:
        spans.close()
        click.echo(spans.summary(), err=True)
    state = reader.state
    error = error_line(state.error, 2000) if state.error is not None else None
    if not state.ended:
        error = "the recording ends before the run did (cut off, or still running)"
    if as_json:
        payload = {"action": state.action, "store": to_jsonable(state.store), "error": error, "steps": state.steps}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=True))
    else:
        click.echo(
            f"{head.flow_name}: {state.steps} steps recorded; "
            + (f"failed: {error}" if error else f"action {state.action!r}"),
            err=True,
        )
        for key in sorted(state.store, key=str):
            click.echo(f"{key} = {safe_text(state.store[key])}")
    if state.garbage:
        click.echo(f"flyt-tui: {state.garbage} unreadable line(s) skipped", err=True)
    return EXIT_OK if error is None else EXIT_FLOW_FAILED


def safe_text(value: Any) -> str:
    from .core.format import safe_repr

    return safe_repr(value, 200)


@contextlib.contextmanager
def stdout_for_json(as_json: bool) -> Iterator[TextIO | None]:
    """With ``--json``, give the JSON document stdout to itself: everything else written to
    stdout — ``print`` in the flow, C code, child processes writing to fd 1 — goes to
    stderr until the document is out. Yields the stream to write the document to."""
    if not as_json:
        yield None
        return
    real = sys.stdout
    saved_fd: int | None = None
    try:
        fd = real.fileno()
        real.flush()
        saved_fd = os.dup(fd)
        os.dup2(sys.stderr.fileno(), fd)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd = -1  # not a real file (a test runner's buffer): only sys.stdout is redirected
    out: TextIO = os.fdopen(os.dup(saved_fd), "w", encoding="utf-8", closefd=True) if saved_fd is not None else real
    sys.stdout = sys.stderr
    try:
        yield out
    finally:
        sys.stdout = real
        with contextlib.suppress(Exception):
            out.flush()
        if saved_fd is not None:
            sys.stderr.flush()
            os.dup2(saved_fd, fd)
            os.close(saved_fd)
            with contextlib.suppress(Exception):
                out.close()


def run(prog_name: str = "flyt-tui") -> None:
    """The ``flyt-tui`` console script: ``main``, then leave at once even when the user's
    module left non-daemon threads behind (they would keep the interpreter alive)."""
    global _as_command
    _as_command = True
    try:
        main(prog_name=prog_name)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else EXIT_USAGE)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
        if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        raise SystemExit(code) from None
