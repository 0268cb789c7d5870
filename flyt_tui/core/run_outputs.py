"""Where each run of the workbench goes besides the screen: its bundle (``--record``), its
spans (``--otel``), and "save this run". No widget here: the app feeds the drained batches
in and shows the words that come back.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flyt_engine import Node
from flyt_engine.events import Record

from .format import error_line
from .recording import SUFFIX, RecordingWriter, start_recording
from .snapshots import Kept
from .timeline import Timeline


def numbered(path: Path | str, run: int, suffix: str) -> str:
    """Run 1 goes to ``path``; run N to ``path`` with ``.N`` before ``suffix``."""
    text = str(path)
    return text if run <= 1 else f"{text.removesuffix(suffix)}.{run}{suffix}"


class RunOutputs:
    """The bundle and the spans of the run going on, and the bundles of earlier runs."""

    def __init__(self, record: Path | None = None, otel: str | None = None) -> None:
        self.record = record
        self.otel = otel
        self.writer: RecordingWriter | None = None
        self.spans: Any = None  # a core.otel.SpanBuilder (imported only with --otel)
        self.recorded: dict[int, Path] = {}  # run number -> its bundle

    def start(self, run: int, flow: Node, initial: Mapping[str, Any], *, module: Path, entry: str) -> list[str]:
        """Open run ``run``'s bundle and spans; returns what could not be opened, in words."""
        problems: list[str] = []
        self.writer, self.spans = None, None
        if self.otel is not None:
            problems.extend(self.start_spans(run, flow.name))
        if self.record is not None:
            path = Path(numbered(self.record, run, SUFFIX))
            try:
                self.writer = start_recording(path, flow, initial, module=module, entry=entry)
                self.recorded[run] = path
            except OSError as exc:
                problems.append(f"cannot record to {path}: {exc.strerror or exc}")
        return problems

    def start_spans(self, run: int, service: str, wall_start: float | None = None) -> list[str]:
        """Spans only (a recording being opened is not recorded again)."""
        if self.otel is None:
            return []
        from .otel import SpanBuilder, make_exporter

        target = numbered(self.otel, run, ".jsonl") if self.otel.endswith(".jsonl") else self.otel
        try:
            self.spans = SpanBuilder(make_exporter(target), service=service, wall_start=wall_start)
        except Exception as exc:  # the extra missing, a file that cannot be written
            return [f"OpenTelemetry export is off: {error_line(exc, 160)}"]
        return []

    @property
    def active(self) -> bool:
        return self.writer is not None or self.spans is not None

    def feed(self, records: list[Record], kept: Iterable[Kept]) -> None:
        """A drained batch (and the values its writes kept)."""
        if self.writer is not None:
            self.writer.feed(records, kept)
        if self.spans is not None:
            self.spans.feed(records)

    def detach(self) -> tuple[RecordingWriter | None, Any]:
        """The run ended: hand over its writer and spans to be finished (``finish``)."""
        taken = self.writer, self.spans
        self.writer, self.spans = None, None
        return taken

    @staticmethod
    def finish(writer: RecordingWriter | None, spans: Any, timeout: float = 10.0) -> list[tuple[str, bool]]:
        """Close them (blocking: call it off the UI thread); ``(words, is a problem)`` to show."""
        said: list[tuple[str, bool]] = []
        if writer is not None:
            finished = writer.close(timeout)
            if writer.error is not None:
                said.append((f"the recording {writer.path.name} stopped: {error_line(writer.error, 120)}", True))
            elif not finished:
                said.append((f"{writer.path.name} is still being written", True))
            else:
                said.append((f"recorded to {writer.path}", False))
        if spans is not None:
            spans.close(timeout)
            said.append((spans.summary(), bool(spans.dropped or spans.error)))
        return said

    def close_now(self) -> None:
        """Quitting: write what was drained, within a second each."""
        writer, spans = self.detach()
        if writer is not None:
            writer.close(timeout=1.0)
        if spans is not None:
            spans.close(timeout=1.0)

    def save(
        self,
        timeline: Timeline,
        run: int,
        target: Path,
        *,
        flow: Node | None,
        module: Path,
        entry: str,
        source: Path | None = None,
    ) -> None:
        """Save run ``run`` as a bundle at ``target``: a copy of ``source`` (the recording on
        show) or of its ``--record`` bundle, else the run made again from its timeline (no
        durations: the timeline does not keep them). Raises what went wrong."""
        from .timeline_export import timeline_records

        source = source if source is not None else self.recorded.get(run)
        if source is not None and source.is_file():
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            return
        if flow is None:
            raise RuntimeError("no flow is loaded")
        writer = start_recording(target, flow, timeline.initial, module=module, entry=entry)
        for records, kept in timeline_records(timeline, (flow.name,), id(flow)):
            writer.feed(records, kept)
        writer.close(60)
        if writer.error is not None:
            raise writer.error
