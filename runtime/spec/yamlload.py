"""Safe YAML loading that keeps the line and column of every node.

Syncline reads YAML through libyaml's event parser (`CSafeLoader` when PyYAML was built with it) and
builds plain Python values itself, without recursion, so that hostile input fails with a diagnostic
instead of crashing or hanging the process:

- files over `MAX_FILE_BYTES` and text that is not UTF-8 are refused before parsing;
- nesting deeper than `MAX_DEPTH` is refused while building (the event parser keeps its own stack on
  the heap, so deep input cannot overflow the C stack the way the recursive composer can);
- aliases are expanded against a budget of `MAX_NODES` values per document (alias bombs);
- duplicate keys, `!!python/*` and every other tag that is not plain data are refused;
- plain scalars are resolved by YAML 1.2 core rules, so `on`, `no`, `yes` and `0777` stay strings
  (YAML 1.1 would turn them into booleans and octal numbers), and non-integer numbers become
  `Decimal` so money stays exact from the file onward.

The result of `load_file` is a list of `Document`s, each holding its data and a position table that
maps a location path such as ``("steps", 2, "retry")`` to the 1-based line and column of that value
(and, separately, of its key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from runtime.errors import Diagnostic

try:  # libyaml's C parser when present (it is, in the PyPI wheels)
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - pure-Python fallback
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

Loc = tuple[str | int, ...]

_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_INT_LEADING_ZERO_RE = re.compile(r"[-+]?0[0-9]+\Z")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_OCT_RE = re.compile(r"0o[0-7]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})

_STR_TAG = "tag:yaml.org,2002:str"
_ALLOWED_SCALAR_TAGS = frozenset(
    {
        _STR_TAG,
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
        "!",
    }
)
_ALLOWED_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "!"})
_MERGE_KEY = "<<"


@dataclass
class Document:
    """One YAML document of a file: plain data plus where each value sits in the file."""

    path: str
    index: int
    data: Any
    line: int
    col: int
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def pos(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """The position of the value at `loc` (or of its key), else of its nearest ancestor."""
        table = self.key_positions if key else self.positions
        probe = tuple(loc)
        while probe:
            if probe in table:
                return table[probe]
            if key and probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return (self.line, self.col)


class YamlLoadError(Exception):
    """Raised with the diagnostics of a file that cannot be loaded."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(d.text() for d in diagnostics))
        self.diagnostics = diagnostics


def load_file(path: Path, *, display_path: str | None = None) -> list[Document]:
    """Read and parse one YAML file. Raises `YamlLoadError` with diagnostics on any problem."""
    shown = display_path or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise YamlLoadError(
                [Diagnostic.make("SL006", f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes", shown, 1, 1)]
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlLoadError([Diagnostic.make("SL007", f"cannot read file: {exc.strerror}", shown, 0, 0)]) from None
    return load_bytes(raw, shown)


def load_bytes(raw: bytes, path: str) -> list[Document]:
    """Parse YAML text given as bytes (must be UTF-8)."""
    if len(raw) > MAX_FILE_BYTES:
        raise YamlLoadError(
            [Diagnostic.make("SL006", f"file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES} bytes", path, 1, 1)]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlLoadError(
            [Diagnostic.make("SL007", f"file is not valid UTF-8 (byte {exc.start})", path, line, 1)]
        ) from None
    return load_text(text, path)


def _tab_indented_line(text: str, line: int) -> int | None:
    """The error's `line` when a tab is in its indentation, else the last line before it that has one."""
    lines = text.splitlines()[: max(line, 0)]
    for number in range(len(lines), 0, -1):
        content = lines[number - 1]
        if "\t" in content[: len(content) - len(content.lstrip(" \t"))]:
            return number
    return None


def load_text(text: str, path: str) -> list[Document]:
    """Parse YAML text into documents with positions."""
    builder = _Builder(path)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in problem:
            raise YamlLoadError(
                [Diagnostic.make("SL005", f"nesting is deeper than the parser's limit ({problem})", path, line, col)]
            ) from None
        tab = _tab_indented_line(text, line)
        if tab == line:
            message = "a tab in the indentation: YAML indents with spaces only"
            raise YamlLoadError(
                [Diagnostic.make("SL001", message, path, line, col, "replace the tab with spaces")]
            ) from None
        hint = f"line {tab} is indented with a tab; YAML indents with spaces only" if tab else None
        raise YamlLoadError(
            [Diagnostic.make("SL001", f"YAML syntax error: {problem}", path, line, col, hint)]
        ) from None
    except yaml.YAMLError as exc:
        raise YamlLoadError([Diagnostic.make("SL001", f"YAML syntax error: {exc}", path, 0, 0)]) from None
    return builder.documents


class _Abort(Exception):
    pass


@dataclass
class _Frame:
    kind: str  # "map" or "seq"
    value: Any
    loc: Loc
    anchor: str | None
    pending_key: Any = None
    has_key: bool = False
    key_pos: tuple[int, int] = (0, 0)
    merges: list[Any] = field(default_factory=list)


class _Builder:
    """Builds plain values from parser events with an explicit stack (no recursion)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.documents: list[Document] = []
        self._stack: list[_Frame] = []
        self._anchors: dict[str, tuple[Any, int]] = {}
        self._doc: Document | None = None
        self._nodes = 0
        self._root: Any = None
        self._has_root = False

    # -- events -----------------------------------------------------------------------------------
    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            line, col = _pos(event.start_mark)
            self._doc = Document(self.path, len(self.documents), None, line, col)
            self._anchors = {}
            self._nodes = 0
            self._has_root = False
        elif isinstance(event, yaml.DocumentEndEvent):
            assert self._doc is not None
            if self._has_root and self._root is not None:
                self._doc.data = self._root
                self.documents.append(self._doc)
            self._doc = None
        elif isinstance(event, yaml.ScalarEvent):
            self._add(self._scalar(event), event, size=1, depth=0)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._start(event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self._end()

    # -- helpers ----------------------------------------------------------------------------------
    def _fail(self, code: str, message: str, mark: Any, hint: str | None = None) -> None:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        raise YamlLoadError([Diagnostic.make(code, message, self.path, line, col, hint)])

    def _child_loc(self) -> Loc:
        if not self._stack:
            return ()
        top = self._stack[-1]
        if top.kind == "seq":
            return (*top.loc, len(top.value))
        if top.has_key and isinstance(top.pending_key, str | int):
            return (*top.loc, top.pending_key)
        return top.loc

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            self._fail(
                "SL004",
                f"document expands to more than {MAX_NODES} values through aliases",
                mark,
                "an alias bomb? write the data out instead of nesting aliases",
            )

    def _record(self, loc: Loc, mark: Any) -> None:
        assert self._doc is not None
        self._doc.positions[loc] = (mark.line + 1, mark.column + 1)

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        tag = event.tag
        if tag is not None and tag not in _ALLOWED_COLLECTION_TAGS:
            self._fail(
                "SL003",
                f"tag {_short_tag(tag)!r} is not allowed",
                event.start_mark,
                "Syncline files hold plain data only: remove the tag",
            )
        if len(self._stack) >= MAX_DEPTH:
            self._fail("SL005", f"nesting is deeper than {MAX_DEPTH} levels", event.start_mark)
        self._count(1, event.start_mark)
        loc = self._child_loc()
        if self._stack and self._stack[-1].kind == "map" and not self._stack[-1].has_key:
            self._fail("SL012", "a mapping or list cannot be used as a key", event.start_mark)
        self._record(loc, event.start_mark)
        kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
        value: Any = {} if kind == "map" else []
        self._stack.append(_Frame(kind, value, loc, event.anchor))

    def _end(self) -> None:
        frame = self._stack.pop()
        value = frame.value
        if frame.kind == "map" and frame.merges:
            merged: dict[Any, Any] = {}
            for source in frame.merges:
                for k, v in source.items():
                    merged.setdefault(k, v)
            merged.update(value)
            value = merged
        if frame.anchor is not None:
            self._anchors[frame.anchor] = (value, self._nodes_in(value))
        self._attach(value, None)

    def _nodes_in(self, value: Any) -> int:
        # Cheap upper bound used when an alias re-uses this value; exact counting would itself be a bomb.
        if isinstance(value, dict):
            return 1 + len(value)
        if isinstance(value, list):
            return 1 + len(value)
        return 1

    def _add(self, value: Any, event: yaml.NodeEvent, *, size: int, depth: int) -> None:
        self._count(size, event.start_mark)
        if self._stack and self._stack[-1].kind == "map" and not self._stack[-1].has_key:
            # a key
            top = self._stack[-1]
            if not isinstance(value, str | int | bool) and value is not None:
                self._fail("SL012", "keys must be strings or numbers", event.start_mark)
            if value in top.value:
                first = self._doc.key_positions.get((*top.loc, value)) if self._doc else None
                where = f" (first at line {first[0]})" if first else ""
                self._fail(
                    "SL002",
                    f"duplicate key {value!r}{where}",
                    event.start_mark,
                    "YAML keeps only one of them: remove or rename the other",
                )
            top.pending_key = value
            top.has_key = True
            top.key_pos = _pos(event.start_mark)
            assert self._doc is not None
            if isinstance(value, str | int):
                self._doc.key_positions[(*top.loc, value)] = top.key_pos
            return
        loc = self._child_loc()
        self._record(loc, event.start_mark)
        if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            self._anchors[event.anchor] = (value, 1)
        self._attach(value, event)

    def _attach(self, value: Any, event: yaml.Event | None) -> None:
        if not self._stack:
            self._root = value
            self._has_root = True
            return
        top = self._stack[-1]
        if top.kind == "seq":
            top.value.append(value)
            return
        key = top.pending_key
        top.has_key = False
        top.pending_key = None
        if key == _MERGE_KEY:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                mark = event.start_mark if event is not None else None
                self._fail("SL012", "a merge key (<<) takes a mapping or a list of mappings", mark)
            top.merges.extend(sources)
            return
        top.value[key] = value

    def _alias(self, event: yaml.AliasEvent) -> None:
        anchor = event.anchor or ""
        if anchor not in self._anchors:
            self._fail("SL001", f"unknown alias *{anchor}", event.start_mark)
        value, _size = self._anchors[anchor]
        if self._stack and self._stack[-1].kind == "map" and not self._stack[-1].has_key:
            self._add(value, event, size=1, depth=0)
            return
        # Aliased collections are shared, not copied; budget them by their full expanded size.
        self._count(_expanded_size(value, MAX_NODES - self._nodes + 1), event.start_mark)
        loc = self._child_loc()
        self._record(loc, event.start_mark)
        self._attach(value, event)

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        value: str = event.value
        tag = event.tag
        plain = not event.style
        if tag is not None and tag != "!" and tag not in _ALLOWED_SCALAR_TAGS:
            self._fail(
                "SL003",
                f"tag {_short_tag(tag)!r} is not allowed",
                event.start_mark,
                "Syncline files hold plain data only: remove the tag",
            )
        if tag == _STR_TAG or tag == "!":
            return value
        if tag is not None:
            return _explicit(tag, value, lambda msg: self._fail("SL012", msg, event.start_mark))
        if not plain:
            return value
        return resolve_plain(value)


def _pos(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def resolve_plain(value: str) -> Any:
    """YAML 1.2 core-schema resolution of a plain scalar, with exact decimals."""
    if value in _NULLS:
        return None
    if value in _TRUES:
        return True
    if value in _FALSES:
        return False
    first = value[0]
    if first.isdigit() or first in "-+.":
        if _INT_RE.match(value):
            if _INT_LEADING_ZERO_RE.match(value):
                return value  # `0777`: YAML 1.1 octal, YAML 1.2 decimal; keep the text as written
            return int(value)
        if _FLOAT_RE.match(value):
            return Decimal(value)
        if _HEX_RE.match(value):
            return int(value, 16)
        if _OCT_RE.match(value):
            return int(value[2:], 8)
    return value


def _explicit(tag: str, value: str, fail: Any) -> Any:
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        if value in _TRUES:
            return True
        if value in _FALSES:
            return False
        fail(f"{value!r} is not a boolean (write true or false)")
    if tag.endswith(":int"):
        try:
            return int(value, 0) if not _INT_LEADING_ZERO_RE.match(value) else int(value, 10)
        except ValueError:
            fail(f"{value!r} is not an integer")
    if tag.endswith(":float"):
        try:
            return Decimal(value)
        except ArithmeticError:
            fail(f"{value!r} is not a number")
    return value


def _expanded_size(value: Any, budget: int) -> int:
    """Count values reachable from `value`, stopping as soon as `budget` is exceeded."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > budget:
            return count
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
