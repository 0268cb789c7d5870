"""Recorded runs: the ``.flyt.jsonl`` bundle and its writer (``docs/recording.md``).

A bundle is JSON lines: a header (format version, module, flow, versions, clocks), the
graph, the initial store, then the run as it was drained: one line per stretch of records
of one node step (a leaf node's whole step is one line), a table entry the first time a
node path appears, and an end line. Values are tagged JSON (``tagged.py``), never pickles.

``RecordingWriter`` runs on a thread of its own: the UI (or headless) hands it each batch
of drained records with the values their writes kept, and it encodes and appends them,
flushing after every batch, so an unfinished bundle is readable up to its last whole
line. Nothing here runs on the run thread.

A step line is a JSON array ``[S, T, ops…]``: ``S`` the node step (numbered in the order
steps start; ``-1`` for records outside any step, ``[-1, T, path, node_id, ops…]``), ``T``
microseconds since the previous step line began (the first: since the run started); a
line that starts step ``S`` carries its path's id first. The ops, in record order:

- ``0``, ``1``, ``2``: prep, exec, post is about to run;
- ``["f", µs, result]``: the phase ended (``result`` left out when ``None``);
- ``["w", key, value, flags?]`` a store write, ``["d", key, flags?]`` a deletion
  (``flags``: ``WriteFlag``, left out when 0; ``value`` ``{"$t": "ext", "n", "v"}`` is the
  key's previous list with ``v`` appended);
- ``["x", attempt, max_attempts, error, wait]`` a failed attempt, ``["b", error]`` a fallback;
- ``["e", next, action?]`` the node returned (``action`` left out when it is post's result);
- ``["F", phase, error]`` the node failed;
- ``["B", total]``, ``["i", index, ok, µs, error?]``, ``["E", done, failed]``: a batch.
"""

from __future__ import annotations

import json
import platform
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from flyt_engine import Node, __version__
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
from flyt_engine.graph import Graph

from .snapshots import Kept, KeptPairing, Prefix, WriteFlag, thaw
from .tagged import TAG, TEXT_LIMIT, encode, encode_error

FORMAT = "flyt-recording"
VERSION = "1.0"  # major.minor: a reader refuses a newer major, reads any minor
SUFFIX = ".flyt.jsonl"
PHASES = ("prep", "exec", "post")
_PHASE_CODE = {"prep": 0, "exec": 1, "post": 2}
_DELETED = int(WriteFlag.DELETED)
_SAFE = 1 << 53  # ints JSON readers keep exactly
MAX_PENDING = 200_000  # records waiting for the writer (about 20 MB) before feed waits for it
_TEXT = TEXT_LIMIT


def is_recording(path: str | Path) -> bool:
    """Whether ``path`` names a bundle (by its suffix)."""
    return str(path).endswith(SUFFIX)


def graph_json(graph: Graph) -> dict[str, Any]:
    """A ``describe()`` graph as JSON: ids as recorded, nested graphs as ``children``."""
    return {
        "start": graph.start,
        "nodes": [
            {
                "id": node.id,
                "name": node.name,
                "kind": node.kind,
                **({"children": graph_json(node.children)} if node.children is not None else {}),
            }
            for node in graph.nodes
        ],
        "edges": [[src, action, dst] for src, action, dst in graph.edges],
    }


def header(*, module: str | Path | None, flow: str, entry: str | None = None, **extra: Any) -> dict[str, Any]:
    """The first line of a bundle."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "module": str(module) if module is not None else None,
        "flow": flow,
        "entry": entry or flow,
        "flyt": __version__,
        "python": platform.python_version(),
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall": time.time(),
    }
    out.update(extra)
    return out


def _us(seconds: float) -> int:
    return int(seconds * 1_000_000 + 0.5)


class _Encoder:
    """Turns drained records into bundle lines (the format above); one per writer."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.steps = 0
        self.paths: dict[tuple[str, ...], int] = {}
        self._by_header: dict[int, int] = {}  # id(header) -> step, while the step runs
        self._lists: dict[str, tuple[list[Any], int]] = {}  # key -> (shadow, length) last written
        self.pairing = KeptPairing()
        self._post_result: Any = None
        self._by_head: dict[int, tuple[tuple[Any, ...], int]] = {}  # id(header) -> (header, path id)
        self._last_us = 0  # when the previous step line began (lines carry the time since)

    def lines(self, records: list[Record], out: list[Any]) -> None:
        """Append the lines of ``records`` to ``out`` (JSON-ready objects).

        The writer's hot loop: a line begins where the records' header changes (or a step
        starts); phase starts, phase ends and store writes (nearly every record) are encoded
        inline, the rest by ``_op``."""
        line: list[Any] = []
        current: Any = None
        by_header = self._by_header
        phase_code = _PHASE_CODE
        t0 = self.t0
        for record in records:
            kind = record[0]
            head = record[1]
            if head is not current or kind is NodeStarted:  # a line begins (or a run line)
                if t0 is None:
                    t0 = self.t0 = record[2]
                if kind is RunStarted or kind is RunFinished:
                    current = None
                    out.append(self._run_line(record))
                    continue
                now = int((record[2] - t0) * 1e6 + 0.5)
                current = head
                if kind is NodeStarted:  # a new step (a node's visits share one header: never by header alone)
                    step = self.steps
                    self.steps += 1
                    by_header[id(head)] = step
                    line = [step, now - self._last_us, self._path_id(head, out)]
                    self._last_us = now
                    out.append(line)
                    continue
                running = by_header.get(id(head))
                if running is None:
                    line = [-1, now - self._last_us, self._path_id(head, out), head[3]]
                else:
                    line = [running, now - self._last_us]
                self._last_us = now
                out.append(line)
            if kind is PhaseStarted:
                line.append(phase_code[record[3]])
            elif kind is PhaseFinished:
                result = record[4]
                duration = int(record[5] * 1e6 + 0.5)
                if record[3] == "post":
                    self._post_result = result
                if result is None:
                    line.append(["f", duration])
                else:
                    plain = type(result)
                    if not ((plain is str and len(result) <= _TEXT) or (plain is int and -_SAFE < result < _SAFE)):
                        result = encode(result)
                    line.append(["f", duration, result])
            elif kind is StoreChanged:
                line.append(self._write(record))
            else:
                op = self._op(kind, record)
                if op is not None:  # (a kind of record this format does not know: left out)
                    line.append(op)
                if kind is NodeFinished or kind is NodeFailed:
                    by_header.pop(id(head), None)

    def _path_id(self, head: tuple[Any, ...], out: list[Any]) -> int:
        """The id of the header's path (a table line the first time it is seen); looked up
        by the header's identity first, as headers are reused for every visit of a node."""
        cached = self._by_head.get(id(head))
        if cached is not None and cached[0] is head:
            return cached[1]
        path = head[1]
        found = self.paths.get(path)
        if found is None:
            found = self.paths[path] = len(self.paths)
            out.append({"path": found, "names": list(path), "node": head[3]})
        self._by_head[id(head)] = (head, found)
        return found

    def _run_line(self, record: Record) -> dict[str, Any]:
        assert self.t0 is not None
        head = record[1]
        if record[0] is RunStarted:
            return {"run": {"id": head[0], "t": _us(record[2] - self.t0), "path": list(head[1]), "node": head[3]}}
        action, error = record[3], record[4]
        end: dict[str, Any] = {"t": _us(record[2] - self.t0), "action": action, "steps": self.steps}
        if error is not None:
            end["error"] = encode_error(error)
        return {"end": end}

    def _op(self, kind: Any, record: Record) -> Any:
        """The op of a record that is not a phase or a write (the format above)."""
        if kind is NodeFinished:
            action, following = record[3], record[4]
            same = action == self._post_result and type(action) is str
            self._post_result = None
            return ["e", following] if same else ["e", following, encode(action)]
        if kind is ExecFailed:
            return ["x", record[3], record[4], encode_error(record[5]), record[6]]
        if kind is FallbackUsed:
            return ["b", encode_error(record[3])]
        if kind is NodeFailed:
            return ["F", record[3], encode_error(record[4])]
        if kind is BatchStarted:
            return ["B", record[3]]
        if kind is BatchItemFinished:
            item = ["i", record[3], 1 if record[4] else 0, _us(record[6])]
            if record[5] is not None:
                item.append(encode_error(record[5]))
            return item
        if kind is BatchFinished:
            return ["E", record[3], record[4]]
        return None

    def _write(self, record: Record) -> list[Any]:
        key, value, deleted = record[3], record[4], record[5]
        queue_ = self.pairing.queue
        if queue_ and (entry := queue_[0])[1] is value and entry[0] == key:
            queue_.popleft()
            kept, flags = entry[2], entry[3]
            if not flags and not deleted:  # the usual case: a plain value, kept as it is
                plain = type(kept)
                if (plain is int and -_SAFE < kept < _SAFE) or (plain is str and len(kept) <= _TEXT):
                    if key in self._lists:
                        del self._lists[key]
                    return ["w", key, kept]
        else:
            kept, flags = self.pairing.pair(key, value, deleted)
        flags = int(flags)
        if deleted or flags & _DELETED:
            self._lists.pop(key, None)
            op = ["d", key]
            flags &= ~_DELETED
        else:
            op = ["w", key, self._value(key, kept)]
        if flags:
            op.append(flags)
        return op

    def _value(self, key: str, kept: Any) -> Any:
        if type(kept) is not Prefix:
            self._lists.pop(key, None)
            return encode(thaw(kept))
        last = self._lists.get(key)
        self._lists[key] = (kept.items, kept.length)
        if last is not None and last[0] is kept.items and last[1] <= kept.length:
            return {TAG: "ext", "n": last[1], "v": encode(kept.items[last[1] : kept.length])}
        return encode(kept.items[: kept.length])


def start_recording(
    path: str | Path,
    flow: Node,
    initial_store: Mapping[str, Any],
    *,
    module: str | Path | None = None,
    entry: str | None = None,
) -> RecordingWriter:
    """A writer for a run of ``flow``: the header names the flow and its root (so a reader
    can stand in for its nodes), the graph is ``describe(flow)``. ``OSError``: cannot write there."""
    from flyt_engine.graph import describe, kind_of

    try:
        graph: Graph | None = describe(flow)
    except Exception:  # a graph that cannot be drawn: the run is recorded all the same
        graph = None
    head = header(module=module, flow=flow.name, entry=entry, root=id(flow), root_kind=kind_of(flow))
    return RecordingWriter(path, head, graph, initial_store)


class RecordingWriter:
    """Streams a run into a bundle from a thread of its own (see the module docstring).

    ``feed`` is what the drain calls (a queue put); ``close`` waits for the queue to be
    written. A failure to write (a full disk) is kept in ``error`` and stops the writing,
    never the run.
    """

    def __init__(
        self,
        path: str | Path,
        head: Mapping[str, Any],
        graph: Graph | None,
        initial_store: Mapping[str, Any],
    ) -> None:
        """Opens ``path`` and writes the first lines now: an ``OSError`` is the caller's to report."""
        self.path = Path(path)
        self._file: IO[str] = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the writer thread
        self._encoder = _Encoder()
        self.error: BaseException | None = None
        self.lines_written = 0
        first: list[Any] = [dict(head)]
        if graph is not None:
            first.append({"graph": graph_json(graph)})
        first.append({"store": {str(key): encode(value) for key, value in dict(initial_store).items()}})
        self._write(first)
        self._queue: queue.SimpleQueue[tuple[list[Record], list[Kept]] | None] = queue.SimpleQueue()
        self._pending = 0  # records queued, not written yet (an int: += and -= are atomic enough for a bound)
        self._progress = threading.Event()  # set by the writer after each batch
        self._thread = threading.Thread(target=self._loop, name="flyt-recording", daemon=True)
        self._thread.start()
        self._closed = False

    def feed(self, records: list[Record], kept: Iterable[Kept] = ()) -> None:
        """Queue a drained batch (and the values its writes kept) to be written. While more
        than ``MAX_PENDING`` records wait, it waits for the writer first: the drain slows
        down, so the run is held back at its checkpoints (the session's backlog limit)
        instead of the queue growing with the run."""
        if self._closed or not (records or kept):
            return
        while self._pending > MAX_PENDING and self.error is None and self._thread.is_alive():
            self._progress.clear()
            self._progress.wait(0.05)
        self._pending += len(records)
        self._queue.put((records, list(kept)))

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued and close the file; ``False`` if that took over ``timeout``."""
        if self._closed:
            return True
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def steps(self) -> int:
        return self._encoder.steps

    def _loop(self) -> None:
        from .session import GARBAGE

        encoder = self._encoder
        GARBAGE.pause()  # its lists hold no cycles; a collection per few thousand lines would cost more than the writing
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                records, kept = item
                out: list[Any] = []
                encoder.pairing.extend(kept)
                encoder.lines(records, out)
                self._pending -= len(records)
                del item, records, kept
                self._write(out)
                self._progress.set()
        except BaseException as exc:  # a full disk, a closed file: keep it, stop writing
            self.error = exc
        finally:
            GARBAGE.resume()
            try:
                self._file.close()
            except Exception as exc:
                self.error = self.error or exc

    def _write(self, lines: list[Any]) -> None:
        if self.error is not None or not lines:
            return
        dumps = _dumps
        text = "\n".join(map(dumps, lines)) + "\n"
        self._file.write(text)
        self._file.flush()
        self.lines_written += len(lines)


def _make_dumps() -> Any:
    """A one-line JSON encoder made once (``JSONEncoder.encode`` builds one per call)."""
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
    except ImportError:  # no C accelerator: the plain encoder
        c_make_encoder = None
    if c_make_encoder is None:
        encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False)
        return encoder.encode

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not JSON")

    fast = c_make_encoder(None, refuse, encode_basestring_ascii, None, ":", ",", False, False, False)
    join = "".join
    return lambda line: join(fast(line, 0))


_encode_line = _make_dumps()


def _dumps(line: Any) -> str:
    try:
        return _encode_line(line)
    except (TypeError, ValueError, RecursionError) as exc:  # an encoder gap: say so rather than lose the line
        return json.dumps({"unwritable": f"{type(exc).__name__}: {exc}"[:500]})


# The reader lives in recording_reader.py (it needs the engine's node classes for its
# stand-in graph); its names are reachable from here too, the bundle's one module.
_READER_NAMES = ("RecordingError", "RecordingHead", "RunReader", "read_head", "stand_in_flow")


def __getattr__(name: str) -> Any:
    if name in _READER_NAMES:
        from . import recording_reader

        return getattr(recording_reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
