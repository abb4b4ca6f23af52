"""Read one YAML mapping file into plain data while remembering where every value came from.

pydantic validates plain dicts and lists and reports errors by path (`("rules", 2, "when")`); an
admin needs `criteria.yaml:57:11`. So instead of `yaml.safe_load` we compose the node graph
ourselves and record each node's mark under the path it ends up at. Any path can then be turned
back into a line and column.

The files are edited by people and reviewed in pull requests, but `validate` may also run on a
file from anywhere, so every way YAML can hurt is capped and reported as an issue: size, nesting
depth, alias expansion ("billion laughs"), duplicate keys (YAML silently keeps the last one),
non-UTF-8 bytes, exotic tags. Nothing here raises for bad input; problems become `MappingIssue`s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from connector.errors import MappingIssue

MAX_FILE_BYTES = 1 << 20
"""Mapping files are a few kilobytes; anything over a MiB is not a mapping file."""

MAX_NODES = 100_000
"""Values after alias expansion. Ten nested aliases of ten items each are 10**10 nodes."""

MAX_DEPTH = 64
"""Nesting depth. The shipped files nest 4 deep; PyYAML's composer recurses per level."""

Loc = tuple[str | int, ...]
"""A path into the data, as pydantic reports it: ("signals", "pricing_views_30d", "url_patterns", 0)."""

# libyaml when installed (about 10x faster, same marks), else the pure-Python loader; both are safe.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def render_loc(loc: Loc) -> str:
    """`("rules", 2, "when")` -> `rules[2].when`; odd keys are quoted: `lists["a.b"]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


@dataclass
class Document:
    """One mapping file: its plain data (None when unreadable), its bytes, and a node per path.

    `nodes` holds the value node at each path; `key_nodes` the key node of each mapping entry, so an
    unknown key can point at the key rather than at its value.
    """

    file: str
    raw: bytes = b""
    data: Any = None
    nodes: dict[Loc, Node] = field(default_factory=dict)
    key_nodes: dict[Loc, Node] = field(default_factory=dict)
    issues: list[MappingIssue] = field(default_factory=list)

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value (or key) at `loc`, else of its nearest ancestor."""
        if key and loc in self.key_nodes:
            return _start(self.key_nodes[loc])
        for end in range(len(loc), -1, -1):
            node = self.nodes.get(loc[:end])
            if node is not None:
                return _start(node)
        return (1, 1)

    def position_in_scalar(self, loc: Loc, offset: int | None) -> tuple[int, int]:
        """Position of character `offset` of the text value at `loc`.

        Exact for a value written on one line (plain, '...' or "..."); for block scalars and
        values folded over several lines, the value's own position (best effort).
        """
        node = self.nodes.get(loc)
        if offset is None or not isinstance(node, ScalarNode) or not isinstance(node.value, str):
            return self.position(loc)
        if node.start_mark.line != node.end_mark.line or node.style not in (None, "", "'", '"'):
            return self.position(loc)
        line, column = _start(node)
        before = node.value[:offset]
        if node.style == "'":
            return line, column + 1 + len(before) + before.count("'")
        if node.style == '"':
            return line, column + 1 + sum(1 if ch.isprintable() and ch not in '"\\' else 2 for ch in before)
        return line, column + len(before)

    def issue(
        self,
        loc: Loc,
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        position: tuple[int, int] | None = None,
    ) -> MappingIssue:
        """An issue located at `loc` (or at an explicit `position` inside it)."""
        line, column = position or self.position(loc, key=key)
        return MappingIssue(self.file, line, column, render_loc(loc), message, hint)

    def add(self, loc: Loc, message: str, hint: str = "", *, key: bool = False) -> None:
        self.issues.append(self.issue(loc, message, hint, key=key))


def read_document(path: Path, file: str) -> Document:
    """Read and parse `path` (shown to the user as `file`). Problems land in `Document.issues`."""
    doc = Document(file=file)
    raw = _read_capped(path, doc)
    if raw is None:
        return doc
    doc.raw = raw
    text = _decode(raw, doc)
    if text is None or not _within_limits(text, doc):
        return doc
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        doc.issues.append(_yaml_issue(file, exc, text))
        return doc
    if not isinstance(root, MappingNode):
        what = "nothing" if root is None else _describe(root)
        doc.issues.append(
            MappingIssue(
                file,
                *(_start(root) if root else (1, 1)),
                "",
                f"expected a mapping (key: value) at the top, found {what}",
            )
        )
        return doc
    _Builder(doc).build_root(root)
    return doc


# --------------------------------------------------------------------------- reading


def _read_capped(path: Path, doc: Document) -> bytes | None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            doc.issues.append(
                _file_issue(doc.file, f"file is {size} bytes; mapping files are limited to {MAX_FILE_BYTES}")
            )
            return None
        with path.open("rb") as handle:  # read at most the cap, even if the file grows meanwhile
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        doc.issues.append(_file_issue(doc.file, f"cannot read file: {exc.strerror or exc}"))
        return None
    if len(raw) > MAX_FILE_BYTES:
        doc.issues.append(_file_issue(doc.file, f"file is larger than {MAX_FILE_BYTES} bytes"))
        return None
    return raw


def _decode(raw: bytes, doc: Document) -> str | None:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        doc.issues.append(
            MappingIssue(doc.file, line, column, "", "file is not valid UTF-8", "save the file as UTF-8")
        )
        return None


def _within_limits(text: str, doc: Document) -> bool:
    """Walk the parser's events (iterative, cheap) to refuse deep nesting before composing (recursive)."""
    depth = 0
    count = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    doc.issues.append(
                        _mark_issue(doc.file, event.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
                    )
                    return False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if isinstance(event, yaml.NodeEvent):
                count += 1
                if count > MAX_NODES:
                    doc.issues.append(
                        _mark_issue(doc.file, event.start_mark, f"more than {MAX_NODES} values")
                    )
                    return False
    except yaml.YAMLError as exc:
        doc.issues.append(_yaml_issue(doc.file, exc, text))
        return False
    return True


# --------------------------------------------------------------------------- nodes -> data


class _TooBig(Exception):
    """Raised inside the builder to stop expanding aliases at once."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node


class _Builder:
    """Turns a composed node graph into dicts/lists/scalars, recording each node by its path.

    Aliases are expanded (each use is a separate path), so expansion is budgeted: `MAX_NODES`
    values and `MAX_DEPTH` levels, which also stops a recursive alias (`&a [*a]`).
    """

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.budget = MAX_NODES
        self.constructor = SafeConstructor()

    def build_root(self, root: MappingNode) -> None:
        try:
            self.doc.data = self.build(root, (), 0)
        except _TooBig as exc:
            self.doc.data = None
            self.doc.nodes.clear()
            self.doc.key_nodes.clear()
            self.doc.issues.append(
                MappingIssue(
                    self.doc.file,
                    *_start(exc.node),
                    "",
                    str(exc),
                    "aliases (*name) expand into copies; keep the file small and explicit",
                )
            )

    def build(self, node: Node, loc: Loc, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooBig(node, f"the file expands to more than {MAX_NODES} values (through aliases)")
        if depth > MAX_DEPTH:
            raise _TooBig(node, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
        self.doc.nodes[loc] = node
        if isinstance(node, MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, SequenceNode):
            return self._sequence(node, loc, depth)
        return self._scalar(node, loc)

    def _mapping(self, node: MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self.doc.add(loc, f"unsupported tag {node.tag}", "remove the tag")
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in self._entries(node):
            key = self._key(key_node, loc)
            if key is None:
                continue
            if key in first_line:
                self.doc.issues.append(
                    self.doc.issue(
                        (*loc, key),
                        f"duplicate key '{key}' (first on line {first_line[key]})",
                        "YAML keeps only one of them silently; remove the other",
                        position=_start(key_node),
                    )
                )
                continue
            first_line[key] = _start(key_node)[0]
            self.doc.key_nodes[(*loc, key)] = key_node
            out[key] = self.build(value_node, (*loc, key), depth + 1)
        return out

    def _entries(self, node: MappingNode) -> Iterator[tuple[Node, Node]]:
        """Entries with `<<: *defaults` merges expanded; explicit keys win over merged ones."""
        explicit = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        yield from explicit
        names = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
        for merge_key, source in ((k, v) for k, v in node.value if k.tag == _MERGE_TAG):
            sources = source.value if isinstance(source, SequenceNode) else [source]
            for mapping in sources:
                if not isinstance(mapping, MappingNode):
                    self.doc.issues.append(
                        MappingIssue(
                            self.doc.file,
                            *_start(merge_key),
                            "",
                            "'<<' must merge a mapping or a list of mappings",
                        )
                    )
                    continue
                for key_node, value_node in self._entries(mapping):
                    if isinstance(key_node, ScalarNode) and key_node.value not in names:
                        names.add(key_node.value)
                        yield key_node, value_node

    def _key(self, key_node: Node, loc: Loc) -> str | None:
        # Keys are read as text, so `yes:` or `1:` stay the names the admin typed.
        if isinstance(key_node, ScalarNode):
            return str(key_node.value)
        self.doc.issues.append(
            self.doc.issue(loc, "mapping keys must be plain text", position=_start(key_node))
        )
        return None

    def _sequence(self, node: SequenceNode, loc: Loc, depth: int) -> list[Any]:
        if node.tag != _SEQ_TAG:
            self.doc.add(loc, f"unsupported tag {node.tag}", "remove the tag")
        return [self.build(item, (*loc, index), depth + 1) for index, item in enumerate(node.value)]

    def _scalar(self, node: Node, loc: Loc) -> Any:
        try:
            return self.constructor.construct_object(node)
        except yaml.YAMLError as exc:  # a tag with no safe constructor (!!python/object...)
            problem = getattr(exc, "problem", None) or str(exc)
            self.doc.add(loc, f"cannot read value: {problem}", "remove the tag; only plain YAML is allowed")
        except ValueError:  # Python refuses to convert integers of more than 4300 digits
            self.doc.add(loc, "number has too many digits", "quote it if it is meant as text")
        return None


# --------------------------------------------------------------------------- issues


def _start(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _describe(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the value {str(node.value)[:40]!r}"


def _file_issue(file: str, message: str) -> MappingIssue:
    return MappingIssue(file, 1, 1, "", message)


def _mark_issue(file: str, mark: Any, message: str) -> MappingIssue:
    if mark is None:
        return MappingIssue(file, 1, 1, "", message)
    return MappingIssue(file, mark.line + 1, mark.column + 1, "", message)


def _char_at(text: str, mark: Any) -> str:
    lines = text.split("\n")
    line, column = int(mark.line), int(mark.column)
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


def _yaml_issue(file: str, exc: yaml.YAMLError, text: str) -> MappingIssue:
    """A syntax error at the parser's problem mark, worded like the parser but on one line."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = ", ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        hint = "indent with spaces, not tabs" if mark is not None and _char_at(text, mark) == "\t" else ""
        if (
            exc.context_mark is not None
            and exc.problem_mark is not None
            and exc.context_mark.line != exc.problem_mark.line
        ):
            hint = hint or f"the construct starts on line {exc.context_mark.line + 1}"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return MappingIssue(file, line, column, "", f"YAML syntax error: {problem}", hint)
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return MappingIssue(
            file, line, column, "", f"YAML cannot read the file: {exc.reason}", "remove the control character"
        )
    return MappingIssue(file, 1, 1, "", f"YAML error: {exc}")
