"""Load a user's flow file: import it fresh, find its flows, name its nodes, build the initial store.

Everything that can go wrong while loading (a missing file, a syntax error, an exception at
import, no flow in the module, a bad ``--store`` or ``--set``) becomes a ``LoadError`` with a
one-line ``message`` for a status bar and the full ``details`` (with the traceback) for a log.
The caller never sees a raw exception and ``sys.modules`` is never left half-updated.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from flyt_engine import BatchFlow, Flow, Node

__all__ = [
    "FlowEntry",
    "LoadError",
    "LoadOptions",
    "LoadedModule",
    "check_path",
    "entry_by_name",
    "load_module",
    "parse_set_option",
    "parse_target",
    "read_store_file",
    "reload_module",
]

# Packages never dropped on reload, even when they live inside the watched directory.
_PROTECTED_PACKAGES = ("flyt_engine", "flyt_tui")
_LOOKED_FOR = (
    "a module-level `flow`, module-level Flow/BatchFlow objects, zero-argument create_*/build_* "
    "functions returning one, or module-level Node objects"
)


class LoadError(Exception):
    """Loading a flow file failed. ``message`` is one line; ``details`` has the traceback."""

    def __init__(self, message: str, details: str = "", path: Path | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or message
        self.path = Path(path) if path is not None else Path()

    def __str__(self) -> str:
        return self.message


class EntryOrigin(StrEnum):
    """How discovery found a flow of the module (DESIGN.md "Loading and hot reload")."""

    ATTRIBUTE = "attribute"  # named on the command line (FILE.py:NAME, --flow)
    FLOW = "flow"  # the module-level `flow`
    MODULE = "module"  # another module-level Flow/BatchFlow
    FACTORY = "factory"  # a zero-argument create_*/build_* function
    NODE = "node"  # a module-level Node that belongs to no flow


@dataclass
class FlowEntry:
    """One runnable flow (or node) found in the module."""

    name: str  # display name: attribute/variable/factory name
    flow: Node  # the runnable node or flow object (fresh per load)
    origin: EntryOrigin  # how discovery found it


@dataclass(frozen=True)
class LoadOptions:
    """What a module was loaded with, so a reload can do the same again."""

    attr: str | None = None
    flow_name: str | None = None
    store_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedModule:
    """A freshly imported flow file and what was found in it."""

    path: Path  # resolved file path
    module: ModuleType
    entries: list[FlowEntry]  # discovery order; exactly one when attr/--flow given
    initial_store: dict[str, Any]  # initial_store() or SHARED, then --store FILE.json, then --set (later wins)
    user_modules: dict[str, ModuleType]  # sys.modules entries imported from the user's directory
    watch_dir: Path  # the file's directory
    options: LoadOptions = field(default_factory=LoadOptions, repr=False)


# ---------------------------------------------------------------------------------------
# Command-line pieces
# ---------------------------------------------------------------------------------------
def parse_target(target: str) -> tuple[Path, str | None]:
    """Split ``"dir/file.py:attr"`` into ``(Path("dir/file.py"), "attr")``; no colon → ``None``.

    A colon whose tail is not an identifier is part of the path (``C:\\flows\\x.py``), unless
    the head names a ``.py`` file: then the attribute is invalid and a ``LoadError`` says so.
    """
    head, sep, tail = target.rpartition(":")
    if not sep or not head:
        return Path(target), None
    if tail.isidentifier():
        return Path(head), tail
    if head.endswith(".py"):
        raise LoadError(
            f"invalid flow name {tail!r} in {target!r}: expected FILE.py:NAME with NAME a Python identifier",
            path=head,
        )
    return Path(target), None


def parse_set_option(text: str) -> tuple[str, Any]:
    """Parse ``--set key=<json>`` into ``(key, value)``; ``ValueError`` with a clear message."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set {text!r}: expected KEY=JSON, e.g. --set retries=3 or --set name='\"ada\"'")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        hint = " (strings need JSON quotes: --set key='\"text\"')" if raw and raw[:1] not in '[{"' else ""
        raise ValueError(f"--set {key}: value {raw!r} is not valid JSON: {exc.msg}{hint}") from None
    return key, value


def read_store_file(path: Path | str) -> dict[str, Any]:
    """The JSON object in ``--store FILE.json``; any problem is a ``LoadError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError(f"--store {path}: file not found", path=path) from None
    except IsADirectoryError:
        raise LoadError(f"--store {path}: is a directory, not a JSON file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"--store {path}: cannot read: {exc}", path=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"--store {path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=path)
    if not isinstance(data, dict):
        raise LoadError(f"--store {path}: expected a JSON object, got {_json_type(data)}", path=path)
    return data


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null"
    )


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
def load_module(
    path: Path | str,
    *,
    attr: str | None = None,
    flow_name: str | None = None,
    store_file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
) -> LoadedModule:
    """Import ``path`` fresh and find its flows; every failure is a ``LoadError``."""
    options = LoadOptions(attr, flow_name, Path(store_file) if store_file is not None else None, dict(overrides or {}))
    return _load(Path(path), options, ())


def reload_module(previous: LoadedModule) -> LoadedModule:
    """Import ``previous.path`` again with the same options (never ``importlib.reload``).

    The user's modules are dropped from ``sys.modules`` first so siblings are re-imported too;
    if the new import fails they are put back and ``LoadError`` is raised.
    """
    return _load(previous.path, previous.options, tuple(previous.user_modules.items()))


def entry_by_name(loaded: LoadedModule, name: str) -> FlowEntry | None:
    """The entry called ``name``, else ``None``."""
    return next((entry for entry in loaded.entries if entry.name == name), None)


def _load(path: Path, options: LoadOptions, previous: tuple[tuple[str, ModuleType], ...]) -> LoadedModule:
    path = check_path(path)
    if options.attr and options.flow_name and options.attr != options.flow_name:
        raise LoadError(
            f"{path.name}: the flow is named twice ({options.attr!r} and --flow {options.flow_name!r}); give one",
            path=path,
        )
    store_extra = read_store_file(options.store_file) if options.store_file is not None else {}
    imported = _FreshImport(path, previous)
    module = imported.run()
    _CONVERTED.clear()
    try:
        _name_nodes(module, imported.user_modules)
        wanted = options.attr or options.flow_name
        entries = [_named_entry(module, path, wanted)] if wanted else _discover(module, path)
        store = _initial_store(module, path)
    except LoadError:
        imported.rollback()
        raise
    except Exception as exc:  # e.g. a node whose name cannot be set: still a LoadError, never a crash
        imported.rollback()
        details = _format_traceback(exc, exc.__traceback__)
        raise LoadError(f"{type(exc).__name__} while loading {path.name}: {_first_line(str(exc))}", details, path)
    store.update(store_extra)
    store.update(options.overrides)
    return LoadedModule(path, module, entries, store, imported.user_modules, path.parent, options)


def check_path(path: Path) -> Path:
    """``path`` resolved, or a ``LoadError`` saying why it is not a Python file to load."""
    if not path.exists():
        raise LoadError(f"{path}: file not found", path=path)
    if path.is_dir():
        raise LoadError(f"{path}: is a directory, not a .py file", path=path)
    if path.suffix != ".py":
        raise LoadError(f"{path}: not a Python file (expected a .py file)", path=path)
    return path.resolve()


# -- import ------------------------------------------------------------------------------
class _FreshImport:
    """One import of the user's file with its own undo: drop the user's modules, import
    anew; ``rollback()`` takes the new modules out and puts the old ones back."""

    def __init__(self, path: Path, previous: tuple[tuple[str, ModuleType], ...]) -> None:
        self.path = path
        self.inside = _inside_checker(path.parent)
        self.snapshot = dict(sys.modules)
        self.removed: dict[str, ModuleType] = {
            name: module for name, module in self.snapshot.items() if _droppable(name, module, self.inside)
        }
        for name, module in previous:
            if self.snapshot.get(name) is module:
                self.removed[name] = module
        self.module_name = ""
        self.user_modules: dict[str, ModuleType] = {}

    def run(self) -> ModuleType:
        for name in self.removed:
            sys.modules.pop(name, None)
        path = self.path
        self.module_name = _module_name(path)
        importlib.invalidate_caches()
        spec = importlib.util.spec_from_file_location(self.module_name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - only for odd suffixes, checked above
            self.rollback()
            raise LoadError(f"{path.name}: cannot be imported", path=path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[self.module_name] = module
        directory = str(path.parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        write_bytecode = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            self.rollback()
            raise _import_error(exc, path) from None
        finally:
            sys.dont_write_bytecode = write_bytecode
        self.user_modules = self._new_modules()
        return module

    def _new_modules(self) -> dict[str, ModuleType]:
        return {
            name: module
            for name, module in list(sys.modules.items())
            if self.snapshot.get(name) is not module and (name == self.module_name or self.inside(module))
        }

    def rollback(self) -> None:
        for name in self._new_modules():
            sys.modules.pop(name, None)
        sys.modules.update(self.removed)


def _inside_checker(directory: Path) -> Callable[[Any], bool]:
    """A test for "this module's file lies in ``directory``" (installed packages never do)."""
    prefixes = tuple({os.path.join(os.path.abspath(directory), ""), os.path.join(os.path.realpath(directory), "")})
    excluded = tuple(os.path.join(os.path.abspath(p), "") for p in {sys.prefix, sys.base_prefix, sys.exec_prefix} if p)

    def inside(module: Any) -> bool:
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str):
            return False
        filename = os.path.abspath(filename)
        return filename.startswith(prefixes) and not filename.startswith(excluded) and "site-packages" not in filename

    return inside


def _droppable(name: str, module: Any, inside: Callable[[Any], bool]) -> bool:
    if name == "__main__" or name.split(".")[0] in _PROTECTED_PACKAGES:
        return False
    return inside(module)


def _module_name(path: Path) -> str:
    """The stem when it is free and harmless, else a private name (never shadow a real module)."""
    stem = path.stem
    if (
        stem.isidentifier()
        and stem not in sys.modules
        and stem not in sys.stdlib_module_names
        and stem not in _PROTECTED_PACKAGES
    ):
        return stem
    safe = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem)
    name = f"_flyt_user_{safe}"
    counter = 1
    while name in sys.modules:
        counter += 1
        name = f"_flyt_user_{safe}_{counter}"
    return name


def _import_error(exc: BaseException, path: Path) -> LoadError:
    """A LoadError for an exception raised while importing ``path`` (user frames only)."""
    tb = _user_traceback(exc.__traceback__)
    details = _format_traceback(exc, tb)
    kind = type(exc).__name__
    if isinstance(exc, SyntaxError):
        where = Path(exc.filename).name if exc.filename else path.name
        line = f" line {exc.lineno}" if exc.lineno else ""
        return LoadError(f"{kind} in {where}{line}: {exc.msg}", details, path)
    frame = _last_user_frame(tb, path.parent)
    text = _first_line(str(exc)) or kind
    if isinstance(exc, SystemExit):
        text = f"the module called exit({exc.code!r}) at import"
    if frame is not None:
        return LoadError(f"{kind} in {Path(frame[0]).name} line {frame[1]}: {text}", details, path)
    return LoadError(f"{kind} while importing {path.name}: {text}", details, path)


def _format_traceback(exc: BaseException, tb: TracebackType | None) -> str:
    """``exc`` with the traceback ``tb``, as Python prints it (no trailing newline)."""
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _user_details(exc: BaseException) -> str:
    """The traceback of ``exc`` through the user's frames only."""
    return _format_traceback(exc, _user_traceback(exc.__traceback__))


def _raised(exc: BaseException) -> str:
    """``raised ValueError: the first line of the message``."""
    return f"raised {type(exc).__name__}: {_first_line(str(exc))}"


def _user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """Skip the leading frames of this loader and of importlib's machinery."""
    here = os.path.abspath(__file__)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<frozen importlib") or os.path.abspath(filename) == here:
            tb = tb.tb_next
        else:
            break
    return tb


def _last_user_frame(tb: TracebackType | None, directory: Path) -> tuple[str, int] | None:
    prefix = os.path.join(os.path.abspath(directory), "")
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if os.path.abspath(filename).startswith(prefix):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# -- naming and discovery ------------------------------------------------------------------
def _name_nodes(module: ModuleType, user_modules: dict[str, ModuleType]) -> None:
    """Give each unnamed module-level node the name of the variable holding it (main module first)."""
    modules = [module] + [m for m in user_modules.values() if m is not module]
    for source in modules:
        for var, value in list(vars(source).items()):
            if isinstance(value, Node) and not var.startswith("__") and not value.name_chosen:
                value.adopt_name(var)


def _named_entry(module: ModuleType, path: Path, wanted: str) -> FlowEntry:
    label = f"{path.name}:{wanted}"
    if not hasattr(module, wanted):
        entries = _discover_all(module, path)
        match = next((entry for entry in entries if entry.name == wanted), None)
        if match is not None:
            return match
        found = ", ".join(entry.name for entry in entries) or "none"
        raise LoadError(f"{path.name} has no flow named {wanted!r} (flows found: {found})", path=path)
    value = _flyt_flow(getattr(module, wanted), module, path)
    if isinstance(value, Node):
        return FlowEntry(wanted, value, EntryOrigin.ATTRIBUTE)
    if inspect.isfunction(value) or inspect.ismethod(value):
        if not _takes_no_arguments(value):
            raise LoadError(f"{label} is a function that needs arguments, not a flow", path=path)
        result = _flyt_flow(_call_factory(value, path, label), module, path, wanted)
        if isinstance(result, Node):
            return FlowEntry(wanted, result, EntryOrigin.FACTORY)
        raise LoadError(f"{label} is a function returning {_a(type(result).__name__)}, not a flow", path=path)
    raise LoadError(f"{label} is {_a(type(value).__name__)}, not a flow", path=path)


def _discover(module: ModuleType, path: Path) -> list[FlowEntry]:
    """The candidates of the first discovery rule that finds any."""
    for rule in (_rule_main_flow, _rule_flows, _rule_factories, _rule_nodes):
        entries = rule(module, path, [])
        if entries:
            return _unique(entries)
    raise LoadError(f"no flow found in {path.name}: looked for {_LOOKED_FOR}", path=path)


def _discover_all(module: ModuleType, path: Path) -> list[FlowEntry]:
    """The candidates of every discovery rule (to find a ``--flow NAME`` that is no attribute)."""
    found: list[FlowEntry] = []
    for rule in (_rule_main_flow, _rule_flows, _rule_factories, _rule_nodes):
        for entry in rule(module, path, found):
            if all(entry.flow is not other.flow for other in found):
                found.append(entry)
    return _unique(found)


def _public_items(module: ModuleType) -> list[tuple[str, Any]]:
    return [(var, value) for var, value in list(vars(module).items()) if not var.startswith("__")]


def _rule_main_flow(module: ModuleType, path: Path, found: list[FlowEntry]) -> list[FlowEntry]:
    main = _flyt_flow(vars(module).get("flow"), module, path)
    return [FlowEntry("flow", main, EntryOrigin.FLOW)] if isinstance(main, Node) else []


def _rule_flows(module: ModuleType, path: Path, found: list[FlowEntry]) -> list[FlowEntry]:
    entries: list[FlowEntry] = []
    for var, value in _public_items(module):
        value = _flyt_flow(value, module, path)
        if isinstance(value, (Flow, BatchFlow)) and all(value is not e.flow for e in entries):
            entries.append(FlowEntry(var, value, EntryOrigin.MODULE))
    return entries


_CONVERTED: dict[int, tuple[Any, Node]] = {}  # id(PocketFlow flow) -> (it, our flow), per load


def _flyt_flow(value: Any, module: ModuleType, path: Path, label: str | None = None) -> Any:
    """``value``, or for a PocketFlow flow our flow running it (``core/pocketflow_adapter.py``);
    the same PocketFlow object gives the same flow within one load."""
    from .pocketflow_adapter import PocketFlowError, convert, is_pocketflow_flow

    if isinstance(value, Node) or not is_pocketflow_flow(value):
        return value
    known = _CONVERTED.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    names = {id(item): var for var, item in _public_items(module) if not isinstance(item, Node)}
    if label:  # a factory's flow is named after it (create_qa_flow → qa_flow), as ours are
        names[id(value)] = label.removeprefix("create_").removeprefix("build_") or label
    try:
        flow = convert(value, names)
    except PocketFlowError as exc:
        raise LoadError(f"{path.name}: {exc}", path=path) from None
    _CONVERTED[id(value)] = (value, flow)
    return flow


def _rule_factories(module: ModuleType, path: Path, found: list[FlowEntry]) -> list[FlowEntry]:
    entries: list[FlowEntry] = []
    for var, value in _public_items(module):
        if _is_factory(var, value, module):
            result = _flyt_flow(_call_factory(value, path, var), module, path, var)
            if isinstance(result, Node):
                entries.append(FlowEntry(var, result, EntryOrigin.FACTORY))
    return entries


def _rule_nodes(module: ModuleType, path: Path, found: list[FlowEntry]) -> list[FlowEntry]:
    contained: set[int] = set()
    for entry in found:
        _contained_ids(entry.flow, contained)
    entries: list[FlowEntry] = []
    for var, value in _public_items(module):
        if isinstance(value, Node) and id(value) not in contained:
            contained.add(id(value))
            entries.append(FlowEntry(var, value, EntryOrigin.NODE))
    return entries


def _unique(entries: list[FlowEntry]) -> list[FlowEntry]:
    """Entry names are unique: a repeated name gets a ``#2``, ``#3`` suffix."""
    used: set[str] = set()
    for entry in entries:
        name, counter = entry.name, 1
        while name in used:
            counter += 1
            name = f"{entry.name}#{counter}"
        entry.name = name
        used.add(name)
    return entries


def _is_factory(var: str, value: Any, module: ModuleType) -> bool:
    return (
        var.startswith(("create_", "build_"))
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
        and _takes_no_arguments(value)
    )


def _takes_no_arguments(fn: Any) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()
    )


def _call_factory(fn: Any, path: Path, label: str) -> Any:
    """Call a ``create_*``/``build_*`` factory; a root it returns without a chosen name is
    named after it (``create_pipeline`` → ``pipeline``), not after its class."""
    try:
        result = fn()
    except Exception as exc:
        raise LoadError(f"{label}() {_raised(exc)}", _user_details(exc), path) from None
    if isinstance(result, Node) and not result.name_chosen:
        for prefix in ("create_", "build_"):
            if label.startswith(prefix) and len(label) > len(prefix):
                result.adopt_name(label[len(prefix) :])
                break
    return result


def _contained_ids(node: Node, seen: set[int] | None = None) -> set[int]:
    """Ids of every node inside ``node`` (sub-flows included), ``node`` itself too."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return seen
    seen.add(id(node))
    if isinstance(node, Flow):
        for member in node.members():
            _contained_ids(member, seen)
    return seen


def _a(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


# -- initial store -------------------------------------------------------------------------
def _initial_store(module: ModuleType, path: Path) -> dict[str, Any]:
    """``SHARED`` (a copy) then ``initial_store()``, merged in that order."""
    store: dict[str, Any] = {}
    shared = vars(module).get("SHARED")
    if isinstance(shared, Mapping):
        try:
            store.update(copy.deepcopy(dict(shared)))
        except Exception:
            store.update(shared)
    factory = vars(module).get("initial_store")
    if callable(factory):
        try:
            initial = factory()
        except Exception as exc:
            raise LoadError(f"initial_store() in {path.name} {_raised(exc)}", _user_details(exc), path) from None
        if initial is not None:
            if not isinstance(initial, Mapping):
                raise LoadError(
                    f"initial_store() in {path.name} must return a dict, not {type(initial).__name__}", path=path
                )
            store.update(initial)
    return store
