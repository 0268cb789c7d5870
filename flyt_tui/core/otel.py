"""OpenTelemetry spans of a run, live or recorded (the optional ``[otel]`` extra).

One span for the run, one per node step (a child of its flow's step), phases, failed
attempts, fallbacks and store writes as span events, a batch's items summed up on its
node's span (count, failures, total and longest duration). Spans are built on a thread of
their own from the drained records (never on the run thread), with explicit timestamps:
the run's wall-clock start plus each record's offset. Nothing is lost silently: spans the
exporter refuses or that overflow the queue are counted in ``dropped`` and reported.

Nothing here is imported unless ``--otel`` is given; without the extra, ``--otel`` says
how to install it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flyt_engine.events import (
    BatchFinished,
    BatchItemFinished,
    BatchStarted,
    ExecFailed,
    FallbackUsed,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    PhaseFinished,
    PhaseStarted,
    Record,
    RunFinished,
    RunStarted,
    StoreChanged,
)

from .format import error_line, safe_repr

INSTALL = "pip install 'flyt-python[otel]'"
MAX_QUEUE = 50_000  # ended spans waiting for the exporter; beyond that they are dropped (and counted)
EXPORT_BATCH = 512


class OtelMissing(RuntimeError):
    """The ``[otel]`` extra is not installed."""


def _sdk() -> Any:
    try:
        from opentelemetry.sdk import trace as sdk_trace
    except ImportError:
        raise OtelMissing(f"--otel needs OpenTelemetry's SDK: {INSTALL}") from None
    return sdk_trace


def make_exporter(target: str) -> Any:
    """``console`` (stderr), ``otlp`` (OTLP over HTTP, configured by the usual
    ``OTEL_EXPORTER_OTLP_*`` variables) or a ``FILE.jsonl`` (one span per line)."""
    _sdk()
    if target == "console":
        import sys

        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)
    if target == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise OtelMissing(
                "--otel otlp needs the OTLP exporter: pip install opentelemetry-exporter-otlp-proto-http"
            ) from None
        return OTLPSpanExporter()
    return JsonLinesExporter(Path(target))


class JsonLinesExporter:
    """Writes each span as one JSON line (``ReadableSpan.to_json``, compacted)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by shutdown

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            for span in spans:
                self._file.write(json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n")
            self._file.flush()
        except Exception:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _countable_processor(exporter: Any) -> Any:
    """A span processor that queues ended spans (bounded) for ``drain`` to export, and counts
    what it drops: the SDK's batch processor drops silently, which the issue forbids."""
    sdk_trace = _sdk()

    class CountingProcessor(sdk_trace.SpanProcessor):  # type: ignore[name-defined]
        def __init__(self) -> None:
            self.pending: list[Any] = []
            self.exported = 0
            self.dropped = 0

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            pass

        def on_end(self, span: Any) -> None:
            if len(self.pending) >= MAX_QUEUE:
                self.dropped += 1
                return
            self.pending.append(span)
            if len(self.pending) >= EXPORT_BATCH:
                self.drain()

        def drain(self) -> None:
            pending, self.pending = self.pending, []
            for start in range(0, len(pending), EXPORT_BATCH):
                chunk = pending[start : start + EXPORT_BATCH]
                try:
                    result = exporter.export(chunk)
                    ok = getattr(result, "name", "SUCCESS") == "SUCCESS"
                except Exception:
                    ok = False
                if ok:
                    self.exported += len(chunk)
                else:
                    self.dropped += len(chunk)

        def shutdown(self) -> None:
            self.drain()
            try:
                exporter.shutdown()
            except Exception:
                pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            self.drain()
            return True

    return CountingProcessor()


class SpanBuilder:
    """Turns drained records into spans (see the module docstring). ``feed`` batches in,
    ``close`` when the run ended; ``exported`` and ``dropped`` say how it went."""

    def __init__(self, exporter: Any, *, service: str = "flyt", wall_start: float | None = None) -> None:
        sdk_trace = _sdk()
        from opentelemetry.sdk.resources import Resource

        self._processor = _countable_processor(exporter)
        self._provider = sdk_trace.TracerProvider(resource=Resource.create({"service.name": service}))
        self._provider.add_span_processor(self._processor)
        self._tracer = self._provider.get_tracer("flyt_tui")
        self._wall = wall_start if wall_start is not None else time.time()
        self._t0: float | None = None
        self._run: Any = None
        self._open: dict[int, Any] = {}  # id(header) -> the step's span (while it runs)
        self._by_path: dict[tuple[str, ...], Any] = {}  # path -> its open step's span
        self._batches: dict[tuple[str, ...], list[float]] = {}  # path -> [items, failed, total s, longest s]
        self._queue: queue.SimpleQueue[list[Record] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="flyt-otel", daemon=True)
        self._thread.start()
        self.error: BaseException | None = None

    @property
    def exported(self) -> int:
        return int(self._processor.exported)

    @property
    def dropped(self) -> int:
        return int(self._processor.dropped)

    def feed(self, records: list[Record]) -> None:
        if records:
            self._queue.put(records)

    def close(self, timeout: float = 10.0) -> bool:
        """End what is still open (a stopped run), export everything, and stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def summary(self) -> str:
        dropped = f", {self.dropped} dropped" if self.dropped else ""
        failed = f" (stopped: {error_line(self.error, 120)})" if self.error is not None else ""
        return f"OpenTelemetry: {self.exported} spans exported{dropped}{failed}"

    # -- the builder's thread -------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while True:
                records = self._queue.get()
                if records is None:
                    break
                self._build(records)
            self._end_open()
        except BaseException as exc:
            self.error = exc
        finally:
            try:
                self._provider.shutdown()
            except Exception as exc:
                self.error = self.error or exc

    def _ns(self, t: float) -> int:
        if self._t0 is None:
            self._t0 = t
        return int((self._wall + (t - self._t0)) * 1e9)

    def _parent(self, path: tuple[str, ...]) -> Any:
        cut = path[:-1]
        while cut:
            span = self._by_path.get(cut)
            if span is not None:
                return span
            cut = cut[:-1]
        return self._run

    def _context(self, parent: Any) -> Any:
        from opentelemetry import trace

        return trace.set_span_in_context(parent) if parent is not None else None

    def _build(self, records: Iterable[Record]) -> None:
        tracer = self._tracer
        for record in records:
            kind, head, t = record[0], record[1], record[2]
            if kind is RunStarted:
                self._run = tracer.start_span(
                    f"run {head[1][-1] if head[1] else 'flow'}",
                    start_time=self._ns(t),
                    attributes={"flyt.flow": head[2], "flyt.run_id": head[0]},
                )
            elif kind is NodeStarted:
                path = head[1]
                span = tracer.start_span(
                    head[2],
                    context=self._context(self._parent(path)),
                    start_time=self._ns(t),
                    attributes={"flyt.node": head[2], "flyt.path": "/".join(path)},
                )
                self._open[id(head)] = span
                self._by_path[path] = span
            elif kind is RunFinished:
                if self._run is not None:
                    self._end_open(t)
                    if record[4] is not None:
                        self._error(self._run, record[4])
                    else:
                        self._run.set_attribute("flyt.action", safe_repr(record[3], 200))
                    self._run.end(end_time=self._ns(t))
                    self._run = None
            else:
                # a batch reports on a header of its own: its node's open step is found by path
                span = self._open.get(id(head)) or self._by_path.get(head[1]) or self._run
                if span is None:
                    continue
                self._event(span, kind, record, head)

    def _event(self, span: Any, kind: Any, record: Record, head: tuple[Any, ...]) -> None:
        stamp = self._ns(record[2])
        if kind is PhaseStarted:
            span.add_event(f"{record[3]} started", timestamp=stamp)
        elif kind is PhaseFinished:
            span.add_event(f"{record[3]} finished", {"flyt.duration_s": float(record[5])}, timestamp=stamp)
        elif kind is StoreChanged:
            span.add_event(
                "store write", {"flyt.key": str(record[3]), "flyt.deleted": bool(record[5])}, timestamp=stamp
            )
        elif kind is ExecFailed:
            attributes = {
                "flyt.attempt": int(record[3]),
                "flyt.max_attempts": int(record[4]),
                "exception.message": error_line(record[5], 500),
                "flyt.wait_s": float(record[6]),
            }
            span.add_event("attempt failed", attributes, timestamp=stamp)
        elif kind is FallbackUsed:
            span.add_event("fallback used", {"exception.message": error_line(record[3], 500)}, timestamp=stamp)
        elif kind is BatchStarted:
            self._batches[head[1]] = [0, 0, 0.0, 0.0]
            span.set_attribute("flyt.batch.total", int(record[3]))
        elif kind is BatchItemFinished:
            tally = self._batches.setdefault(head[1], [0, 0, 0.0, 0.0])
            tally[0] += 1
            tally[1] += 0 if record[4] else 1
            tally[2] += float(record[6])
            tally[3] = max(tally[3], float(record[6]))
        elif kind is BatchFinished:
            self._batch_attributes(span, head)
        elif kind is NodeFinished:
            self._batch_attributes(span, head)
            span.set_attribute("flyt.action", safe_repr(record[3], 200))
            self._close_step(head, stamp)
        elif kind is NodeFailed:
            self._batch_attributes(span, head)
            self._error(span, record[4], phase=record[3])
            self._close_step(head, stamp)

    def _batch_attributes(self, span: Any, head: tuple[Any, ...]) -> None:
        tally = self._batches.pop(head[1], None)
        if tally is not None:
            span.set_attribute("flyt.batch.items", int(tally[0]))
            span.set_attribute("flyt.batch.failed", int(tally[1]))
            span.set_attribute("flyt.batch.duration_sum_s", tally[2])
            span.set_attribute("flyt.batch.duration_max_s", tally[3])

    def _error(self, span: Any, error: BaseException, *, phase: str | None = None) -> None:
        from opentelemetry.trace import Status, StatusCode

        text = error_line(error, 500)
        span.set_status(Status(StatusCode.ERROR, text))
        attributes = {"exception.type": type(error).__name__, "exception.message": text}
        if phase is not None:
            attributes["flyt.phase"] = phase
        span.add_event("exception", attributes)

    def _close_step(self, head: tuple[Any, ...], stamp: int) -> None:
        span = self._open.pop(id(head), None)
        if span is None:
            return
        path = head[1]
        if self._by_path.get(path) is span:
            del self._by_path[path]
        span.end(end_time=stamp)

    def _end_open(self, t: float | None = None) -> None:
        """Steps still open when the run ended (stopped, cut off): ended where it stopped."""
        stamp = self._ns(t) if t is not None else None
        for span in list(self._open.values())[::-1]:
            span.set_attribute("flyt.unfinished", True)
            span.end(end_time=stamp)
        self._open.clear()
        self._by_path.clear()
        if t is None and self._run is not None:
            self._run.set_attribute("flyt.unfinished", True)
            self._run.end()
            self._run = None
