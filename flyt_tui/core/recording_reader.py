"""Reading a ``.flyt.jsonl`` bundle back (``recording.py`` writes it): its head, a stand-in
graph, and the run as the engine's own records, so the workbench folds a recording exactly
as it folds a live run. Nothing of the flow's module is imported or run.

Bad input is normal input here: a file that is not a bundle or is from a newer major
version is refused with a ``RecordingError`` that says why; a line of garbage is skipped
and counted; a last line cut off (a crash, a run still going) is ignored, and
``ended`` says whether the run's end was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from flyt_engine import BatchFlow, BatchNode, Flow, Node
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

from .recording import FORMAT, PHASES, VERSION
from .snapshots import Kept, Prefix, WriteFlag
from .tagged import TAG, decode, decode_error

HEAD_LINES = 8  # the header, graph and store come first: a bundle whose store is not among them is refused
CHUNK_BYTES = 1 << 20  # lines are read and parsed about a megabyte at a time
MAX_LINE = 64 << 20  # a longer line is skipped as garbage, never held whole
INLINE_LIST = 2048  # a recorded list longer than this is handed to the screen as its kept Prefix
_DELETED = int(WriteFlag.DELETED)


class RecordingError(Exception):
    """The file cannot be read as a recording; the message says why, in words."""


@dataclass
class RecordingHead:
    """What the first lines of a bundle say."""

    path: Path
    header: dict[str, Any]
    graph: dict[str, Any] | None
    store: dict[str, Any]  # the initial store, decoded
    offset: int  # where the run's lines begin, in bytes

    @property
    def flow_name(self) -> str:
        return str(self.header.get("flow") or "flow")

    @property
    def module(self) -> Path | None:
        module = self.header.get("module")
        return Path(module) if isinstance(module, str) and module else None


def _major(version: Any) -> int:
    try:
        return int(str(version).split(".", 1)[0])
    except ValueError:
        return -1


def read_head(path: str | Path) -> RecordingHead:
    """The header, graph and initial store of the bundle at ``path`` (``RecordingError``: why not)."""
    path = Path(path)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise RecordingError(f"cannot open {path}: {exc.strerror or exc}") from None
    with stream:
        first = stream.readline(1 << 20)
        if not first.strip():
            raise RecordingError(f"{path.name} is empty: not a flyt recording")
        try:
            header = json.loads(first)
        except (ValueError, UnicodeDecodeError):
            raise RecordingError(f"{path.name} is not a flyt recording (its first line is not JSON)") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise RecordingError(f"{path.name} is not a flyt recording (no {FORMAT!r} header on its first line)")
        major = _major(header.get("version"))
        if major > _major(VERSION):
            raise RecordingError(
                f"{path.name} is a recording of format {header.get('version')}, newer than this flyt-tui reads "
                f"({VERSION}): upgrade flyt-python to open it"
            )
        if major < 1:
            raise RecordingError(f"{path.name} has no readable format version ({header.get('version')!r})")
        graph: dict[str, Any] | None = None
        store: dict[str, Any] | None = None
        for _ in range(HEAD_LINES):
            line = stream.readline(MAX_LINE)
            if not line.endswith(b"\n"):
                break
            try:
                data = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(data, dict) and isinstance(data.get("graph"), dict):
                graph = data["graph"]
            elif isinstance(data, dict) and isinstance(data.get("store"), dict):
                store = {key: decode(value) for key, value in data["store"].items()}
                break
        if store is None:
            raise RecordingError(f"{path.name} ends before its initial store: the recording was cut off at its start")
        return RecordingHead(path, header, graph, store, stream.tell())


# -- the graph, without the module ------------------------------------------------------------------
class RecordedNode(Node):
    """Stands for a node of a recorded flow: its name and place only, no code."""


class RecordedBatchNode(BatchNode):
    """Stands for a recorded BatchNode."""


def stand_in_flow(head: RecordingHead) -> tuple[Node, dict[int, int]]:
    """A flow of stand-in nodes with the recorded names and connections (what the tree draws),
    and the map from each recorded node id to its stand-in's id."""
    ids: dict[int, int] = {}
    graph = head.graph or {}
    nodes = [node for node in graph.get("nodes") or [] if isinstance(node, dict)]
    root: Node
    if head.header.get("root_kind", "flow") != "flow" and len(nodes) == 1:
        root = _stand_in(nodes[0], ids)  # a single node, a BatchNode or a BatchFlow was run
    else:
        root = Flow(name=head.flow_name)
        _build(root, graph, ids)
    root_id = head.header.get("root")
    if isinstance(root_id, int):
        ids[root_id] = id(root)
    return root, ids


def _stand_in(data: Mapping[str, Any], ids: dict[int, int]) -> Node:
    kind = data.get("kind")
    name = str(data.get("name", "node"))
    children = data.get("children")
    node: Node
    if kind == "flow":
        inner = Flow(name=name)
        if isinstance(children, dict):
            _build(inner, children, ids)
        node = inner
    elif kind == "batch_flow":
        template: Node
        nodes = children.get("nodes") or [] if isinstance(children, dict) else []
        if isinstance(children, dict) and len(nodes) == 1 and children.get("start") == nodes[0].get("id"):
            template = _stand_in(nodes[0], ids)  # the factory made a single node
        else:
            template = inner = Flow(name=name)
            if isinstance(children, dict):
                _build(inner, children, ids)
        node = BatchFlow(lambda: template, lambda ctx, shared: [], name=name)
    elif kind == "batch_node":
        node = RecordedBatchNode(lambda ctx, item: item, name=name)
    else:
        node = RecordedNode(name=name)
    if isinstance(data.get("id"), int):
        ids[data["id"]] = id(node)
    return node


def _build(flow: Flow, graph: Mapping[str, Any], ids: dict[int, int]) -> None:
    made: dict[int, Node] = {}
    for data in graph.get("nodes") or []:
        if isinstance(data, dict):
            made[data.get("id", id(data))] = _stand_in(data, ids)
    start = made.get(graph.get("start"))  # type: ignore[arg-type]
    if start is not None:
        flow.start = start
    for edge in graph.get("edges") or []:
        try:
            src, action, dst = edge
        except (TypeError, ValueError):
            continue
        if src in made:
            flow.connect(made[src], str(action), made.get(dst))


# -- the run's lines --------------------------------------------------------------------------------
@dataclass
class ReadState:
    """What reading the run's lines found, beside the records."""

    lines: int = 0
    steps: int = 0
    garbage: int = 0  # lines that were not JSON or not of the format, skipped
    cut: bool = False  # the last line was cut off
    ended: bool = False  # the run's end line was read
    action: Any = None
    error: BaseException | None = None
    bytes_read: int = 0
    store: dict[str, Any] = field(default_factory=dict)  # the store at the end, as recorded


class RunReader:
    """Turns the lines after a bundle's head into batches of the engine's records (with the
    values their writes kept), ready for ``RunView.ingest``."""

    def __init__(self, head: RecordingHead, node_ids: Mapping[int, int] | None = None) -> None:
        self.head = head
        self.node_ids = dict(node_ids or {})
        self.state = ReadState(store=dict(head.store))
        self.run_id = 0
        self._paths: dict[int, tuple[tuple[str, ...], int]] = {}
        self._headers: dict[int, tuple[Any, ...]] = {}  # step -> header, while it runs
        self._phases: dict[int, str] = {}  # step -> its running phase
        self._lists: dict[str, list[Any]] = {}  # key -> the shadow list its last write extends
        self._post_result: Any = None
        self._clock = 0  # microseconds since the run started, as the lines add up

    def batches(self, lines_per_batch: int = 2000) -> Iterator[tuple[list[Record], list[Kept]]]:
        """The run, a batch of records at a time (``state`` fills as it goes)."""
        with open(self.head.path, "rb") as stream:
            stream.seek(self.head.offset)
            yield from self._read(stream, lines_per_batch)

    def _read(self, stream: IO[bytes], lines_per_batch: int) -> Iterator[tuple[list[Record], list[Kept]]]:
        for chunk in self._chunks(stream):
            for start in range(0, len(chunk), lines_per_batch):
                records: list[Record] = []
                kept: list[Kept] = []
                self._lines(chunk[start : start + lines_per_batch], records, kept)
                if records or kept:
                    yield records, kept

    def _chunks(self, stream: IO[bytes]) -> Iterator[list[bytes]]:
        """The whole lines of ``stream``, about ``CHUNK_BYTES`` at a time. A line longer than
        ``MAX_LINE`` is skipped (and counted) without being held; a last line without its
        newline is left out (``cut``)."""
        state = self.state
        state.bytes_read = self.head.offset
        rest = b""
        skipping = False  # inside a line too long to keep
        while True:
            block = stream.read(CHUNK_BYTES)
            if not block:
                break
            state.bytes_read += len(block)
            if skipping:
                newline = block.find(b"\n")
                if newline < 0:
                    continue
                block = block[newline + 1 :]
                skipping = False
            data = rest + block if rest else block
            end = data.rfind(b"\n")
            if end < 0:
                rest = data
            else:
                lines = data[:end].split(b"\n")
                rest = data[end + 1 :]
                yield lines
            if len(rest) > MAX_LINE:
                state.garbage += 1
                rest = b""
                skipping = True
        if rest.strip() or skipping:
            state.cut = True  # the last line, cut off: ignored

    def _lines(self, lines: list[bytes], records: list[Record], kept: list[Kept]) -> None:
        """Parse ``lines`` in one call (the usual case), else one by one, counting garbage."""
        state = self.state
        state.lines += len(lines)
        try:
            parsed = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            parsed = []
            for raw in lines:
                try:
                    parsed.append(json.loads(raw))
                except ValueError:
                    state.garbage += 1
        step_line = self._step_line
        for data in parsed:
            try:
                if type(data) is list:
                    step_line(data, records, kept)
                else:
                    self._other_line(data, records)
            except Exception:  # a line this reader does not know: skipped and counted
                state.garbage += 1

    def _other_line(self, data: Any, records: list[Record]) -> None:
        if "path" in data:
            node = data.get("node", 0)
            self._paths[int(data["path"])] = (tuple(str(n) for n in data["names"]), self.node_ids.get(node, node))
        elif "run" in data:
            run = data["run"]
            self.run_id = int(run.get("id", 0))
            path = tuple(run.get("path") or (self.head.flow_name,))
            node = run.get("node", 0)
            records.append((RunStarted, (self.run_id, path, path[-1], self.node_ids.get(node, node)), run["t"] / 1e6))
        elif "end" in data:
            end = data["end"]
            state = self.state
            state.ended = True
            state.action = end.get("action")
            state.error = decode_error(end["error"]) if end.get("error") is not None else None
            path = (self.head.flow_name,)
            header = (self.run_id, path, path[-1], 0)
            records.append((RunFinished, header, end.get("t", 0) / 1e6, state.action, state.error))
        elif "graph" in data or "store" in data or "unwritable" in data:
            if "unwritable" in data:
                self.state.garbage += 1
        else:
            raise ValueError("unknown line")

    def _step_line(self, data: list[Any], records: list[Record], kept: list[Kept]) -> tuple[tuple[Any, ...], bool]:
        """A step line's records; returns its header and whether it started its step."""
        step, header, ops, new = self._line_head(data)
        if new:
            records.append((NodeStarted, header, self._clock / 1e6))
        self._line_end(step, self._line_ops(step, header, ops, records, kept))
        return header, new

    def _line_head(self, data: list[Any]) -> tuple[int, tuple[Any, ...], list[Any], bool]:
        """The line's step, its header, its ops and whether it starts the step; the clock moves on."""
        step = data[0]
        self._clock += data[1]
        if step == -1:
            path, node_id = self._paths[data[2]]
            header = (self.run_id, path, path[-1] if path else "", self.node_ids.get(data[3], data[3]))
            return step, header, data[4:], False
        state = self.state
        if step == state.steps:  # the line starts this step
            path, node_id = self._paths[data[2]]
            header = self._headers[step] = (self.run_id, path, path[-1] if path else "", node_id)
            state.steps += 1
            return step, header, data[3:], True
        return step, self._headers[step], data[2:], False

    def _line_end(self, step: int, phase: str) -> None:
        if step >= 0:
            if phase:
                self._phases[step] = phase
            else:  # the step ended
                self._headers.pop(step, None)
                self._phases.pop(step, None)

    def _line_ops(
        self,
        step: int,
        header: tuple[Any, ...],
        ops: list[Any],
        records: list[Record],
        kept: list[Kept],
        *,
        writes: bool = True,
        phase: str | None = None,
        clock: int | None = None,
    ) -> str:
        """The records of a line's ops (``writes``: its store writes too); returns the phase the
        step is in after it (``""``: it ended). ``phase`` and ``clock`` default to the step's own."""
        t = (self._clock if clock is None else clock) / 1e6
        add = records.append
        if phase is None:
            phase = self._phases.get(step, "prep")
        started = False  # a phase started on this line (else the line began as the phase ended)
        for op in ops:
            if type(op) is int:
                phase = PHASES[op]
                add((PhaseStarted, header, t, phase))
                started = True
                continue
            code = op[0]
            if code == "f":
                duration = op[1] / 1e6
                if started:
                    t += duration
                result = op[2] if len(op) > 2 else None
                if type(result) is dict or type(result) is list:
                    result = decode(result)
                if phase == "post":
                    self._post_result = result
                add((PhaseFinished, header, t, phase, result, duration))
            elif code == "w" or code == "d":
                if writes:
                    key, value, kept_value, flags, deleted = self._written(op)
                    kept.append((key, value, kept_value, flags))
                    add((StoreChanged, header, t, key, value, deleted))
            elif code == "e":
                action = decode(op[2]) if len(op) > 2 else self._post_result
                self._post_result = None
                add((NodeFinished, header, t, action, op[1]))
                phase = ""
            elif code == "x":
                add((ExecFailed, header, t, op[1], op[2], decode_error(op[3]), op[4]))
            elif code == "b":
                add((FallbackUsed, header, t, decode_error(op[1])))
            elif code == "F":
                add((NodeFailed, header, t, op[1], decode_error(op[2])))
                phase = ""
            elif code == "B":
                add((BatchStarted, header, t, op[1]))
            elif code == "i":
                duration = op[3] / 1e6
                error = decode_error(op[4]) if len(op) > 4 else None
                add((BatchItemFinished, header, t, op[1], bool(op[2]), error, duration))
            elif code == "E":
                add((BatchFinished, header, t, op[1], op[2]))
        return phase

    def _written(self, op: list[Any]) -> tuple[str, Any, Any, int, bool]:
        """A write op as ``(key, value shown, value kept, flags, deleted)``; the store at the
        end and the shadows of appended lists move on."""
        key = op[1]
        store = self.state.store
        if op[0] == "d":
            self._lists.pop(key, None)
            store.pop(key, None)
            return key, None, None, (op[2] if len(op) > 2 else 0) | _DELETED, True
        flags = op[3] if len(op) > 3 else 0
        raw = op[2]
        kept_value: Any
        if type(raw) is dict and raw.get(TAG) == "ext":
            shadow = self._lists.get(key, [])
            length = int(raw.get("n", len(shadow)))
            if length != len(shadow):  # the earlier list was not all recorded: start a shadow of our own
                shadow = shadow[:length]
            shadow.extend(decode(raw.get("v") or []))
            self._lists[key] = shadow
            kept_value = Prefix(shadow, len(shadow))
            value: Any = shadow[:] if len(shadow) <= INLINE_LIST else kept_value
        elif type(raw) is list:
            shadow = decode(raw)
            self._lists[key] = shadow
            kept_value = Prefix(shadow, len(shadow))
            value = shadow[:] if len(shadow) <= INLINE_LIST else kept_value
        else:
            value = decode(raw) if type(raw) is dict else raw
            self._lists.pop(key, None)
            kept_value = value
        store[key] = value
        return key, value, kept_value, flags, False
