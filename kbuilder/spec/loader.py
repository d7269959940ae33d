"""Safe YAML loading that remembers where every value came from.

The loader composes PyYAML's node tree with the *safe* loader (no Python tags) and turns
it into plain dicts/lists itself, so that it can (1) record `file:line:column` for every
spec path, (2) refuse duplicate keys, and (3) bound everything a hostile document can
make expensive: file size, nesting depth (checked while composing, before PyYAML's
recursive composer can overflow the stack), node count before and after alias expansion
(a "billion laughs" document is refused instead of exhausting memory), number length
(`1` and 5,000 zeros), and which scalar types exist at all (plain data only).
"""

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kbuilder.errors import Location, SpecError

MAX_FILE_BYTES = 2_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000  # counted after alias expansion (and, separately, before it)
MAX_NUMBER_CHARS = 50  # int/float literals; no spec value needs more digits than this

PathTuple = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_MAP_TAG, _SEQ_TAG = _TAG + "map", _TAG + "seq"
_NUMBER_TAGS = {_TAG + "int": "an integer", _TAG + "float": "a number"}
# Plain data only. A YAML 1.1 timestamp (`2024-01-31`) stays the text that was written.
_SCALAR_TAGS = {
    _TAG + "null": "null",
    _TAG + "bool": "a boolean",
    _TAG + "str": "a string",
    _TAG + "timestamp": "a date",
    **_NUMBER_TAGS,
}


def format_path(path: PathTuple) -> str:
    """`("layers", 4, "conv2d", "kernel_size")` -> `layers[4].conv2d.kernel_size`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class SourceMap:
    """Maps spec paths to the place in the file where they were written."""

    file: str
    marks: dict[PathTuple, tuple[int, int]] = field(default_factory=dict)
    overridden: dict[PathTuple, str] = field(default_factory=dict)
    values: int = 0  # how many values the document expanded to (aliases included)

    def locate(self, path: PathTuple) -> Location:
        """The location of `path`, or of its closest written ancestor."""
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            if prefix in self.overridden:  # an override replaces everything below it
                return Location(f"--set {self.overridden[prefix]}", None, None, format_path(path))
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            if prefix in self.marks:
                line, col = self.marks[prefix]
                return Location(self.file, line, col, format_path(path))
        return Location(self.file, None, None, format_path(path))


class _LimitReached(Exception):
    """Raised inside PyYAML's composer; turned into a located SpecError by the caller."""

    def __init__(self, mark, message: str):
        super().__init__(message)
        self.mark, self.message = mark, message


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, with depth and node limits checked while the tree is composed
    (PyYAML's composer recurses once per level: 20,000 `[` would overflow the stack)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0
        self.composed = 0

    def compose_node(self, parent, index):
        self.composed += 1
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH + 1:
                raise _LimitReached(self.peek_event().start_mark, f"nesting deeper than {MAX_DEPTH} levels")
            if self.composed > MAX_NODES:
                raise _LimitReached(
                    self.peek_event().start_mark, f"the document has more than {MAX_NODES} values"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _line_column(text: str, position: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


class _Composer:
    def __init__(self, text: str, file: str, allow_empty: bool = False, max_nodes: int = MAX_NODES):
        self.file = file
        self.max_nodes = max_nodes
        self.allow_empty = allow_empty
        self.text = text
        self.source = SourceMap(file)
        self.nodes_seen = 0

    def error(self, mark, path: PathTuple, message: str) -> SpecError:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return SpecError.at(Location(self.file, line, col, format_path(path)), message)

    def load(self) -> Any:
        try:
            self.loader = _BoundedLoader(self.text)  # checks every character up front
        except yaml.reader.ReaderError as exc:
            line, col = _line_column(self.text, exc.position)
            where = Location(self.file, line, col)
            message = f"the character U+{exc.character:04X} is not allowed in YAML; remove it"
            raise SpecError.at(where, message) from None
        try:
            root = self.loader.get_single_node()
        except _LimitReached as exc:
            raise self.error(exc.mark, (), exc.message) from None
        except yaml.MarkedYAMLError as exc:
            raise self.error(exc.problem_mark, (), f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise self.error(None, (), f"not valid YAML: {exc}") from None
        finally:
            self.loader.dispose()
        if root is None:
            if self.allow_empty:
                return None
            raise self.error(
                None, (), "the file is empty; expected a mapping with 'name', 'inputs' and 'layers'"
            )
        return self.convert(root, (), 0)

    def convert(self, node: yaml.Node, path: PathTuple, depth: int) -> Any:
        self.nodes_seen += 1
        if self.nodes_seen > self.max_nodes:
            raise self.error(
                node.start_mark,
                path,
                f"the document expands to more than {self.max_nodes} values (alias bomb?)",
            )
        if depth > MAX_DEPTH:
            raise self.error(
                node.start_mark, path, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)"
            )
        self.source.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self.convert_mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.error(node.start_mark, path, f"YAML tag {node.tag!r} is not allowed")
            return [self.convert(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: PathTuple) -> Any:
        """A plain scalar: null, boolean, number, string (a date stays a string)."""
        kind = _SCALAR_TAGS.get(node.tag)
        if kind is None:
            raise self.error(
                node.start_mark,
                path,
                f"YAML tag {node.tag!r} is not allowed (only plain data: "
                "strings, numbers, booleans and null)",
            )
        if node.tag == _TAG + "timestamp":
            return node.value
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            raise self.error(
                node.start_mark,
                path,
                f"a number written with {len(node.value)} characters; "
                f"kbuilder reads numbers of at most {MAX_NUMBER_CHARS} characters",
            )
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError):
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            raise self.error(node.start_mark, path, f"cannot read {shown!r} as {kind}") from None

    def convert_mapping(self, node: yaml.MappingNode, path: PathTuple, depth: int) -> dict:
        if node.tag != _MAP_TAG:
            raise self.error(node.start_mark, path, f"YAML tag {node.tag!r} is not allowed")
        try:
            self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        except yaml.YAMLError:
            raise self.error(
                node.start_mark, path, "`<<` merges a mapping or a list of mappings, e.g. `<<: *defaults`"
            ) from None
        except RecursionError:
            raise self.error(node.start_mark, path, "`<<` merges a mapping into itself") from None
        result: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(
                    key_node.start_mark, path, "mapping keys must be plain scalars, not a list or mapping"
                )
            key = self.scalar(key_node, path)
            if not isinstance(key, (str, int, float, bool)):
                raise self.error(
                    key_node.start_mark, path, f"mapping keys must be plain scalars, got {key!r}"
                )
            key = str(key)
            if key in result:
                first = self.source.marks.get(path + (key,), (0, 0))[0]
                raise self.error(
                    key_node.start_mark,
                    path + (key,),
                    f"duplicate key '{key}' (first written on line {first})",
                )
            self.source.marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.convert(value_node, path + (key,), depth + 1)
        return result


def parse_yaml(
    text: str, file: str = "<spec>", *, allow_empty: bool = False, max_nodes: int = MAX_NODES
) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain data plus its source map (an empty text is an error
    unless `allow_empty`, for a `--set key=` value; `max_nodes` bounds the expanded values)."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise SpecError.at(Location(file, 1, 1), f"the spec is larger than {MAX_FILE_BYTES} bytes")
    composer = _Composer(text, file, allow_empty, max_nodes)
    data = composer.load()
    composer.source.values = composer.nodes_seen
    return data, composer.source


def read_spec_text(path: str | Path) -> str:
    """The text of a spec file: a regular file of at most MAX_FILE_BYTES bytes of UTF-8.

    Opened without blocking (a FIFO would wait for a writer forever), checked with fstat
    on the open descriptor (a directory or /dev/zero is refused before reading), and read
    with a bound (a file that grows after the check still cannot make us read more)."""
    where = Location(str(path), 1, 1)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SpecError.at(where, f"cannot read the spec: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        problem = None
        if stat.S_ISDIR(info.st_mode):
            problem = "this is a directory; give a spec file (.yaml) inside it"
        elif not stat.S_ISREG(info.st_mode):
            problem = "not a regular file (a device, FIFO or socket); specs are read from files only"
        elif info.st_size > MAX_FILE_BYTES:
            problem = f"the spec is {info.st_size} bytes; the limit is {MAX_FILE_BYTES}"
    except OSError as exc:
        problem = f"cannot read the spec: {exc.strerror}"
    if problem is not None:
        os.close(fd)
        raise SpecError.at(where, problem)
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SpecError.at(where, f"cannot read the spec: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError.at(where, f"the spec is larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"the spec is not UTF-8 text (byte 0x{data[exc.start]:02x}, {exc.reason}); save it as UTF-8"
        raise SpecError.at(Location(str(path), line, column), message) from None


def read_yaml(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse a spec file; file problems are reported as spec errors."""
    return parse_yaml(read_spec_text(path), str(path))
