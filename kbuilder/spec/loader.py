"""Safe YAML loading that remembers where every value came from.

The loader composes PyYAML's node tree with the *safe* loader (no Python tags) and turns
it into plain dicts/lists itself, so that it can (1) record `file:line:column` for every
spec path, (2) refuse duplicate keys, and (3) bound alias expansion, nesting depth and
file size (a "billion laughs" document is refused instead of exhausting memory).
"""


from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kbuilder.errors import Location, SpecError

MAX_FILE_BYTES = 2_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000  # counted after alias expansion

PathTuple = tuple[str | int, ...]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


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


class _Composer:
    def __init__(self, text: str, file: str):
        self.file = file
        self.loader = yaml.SafeLoader(text)
        self.source = SourceMap(file)
        self.nodes_seen = 0

    def error(self, mark, path: PathTuple, message: str) -> SpecError:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        return SpecError.at(Location(self.file, line, col, format_path(path)), message)

    def load(self) -> Any:
        try:
            root = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise self.error(exc.problem_mark, (), f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise self.error(None, (), f"not valid YAML: {exc}") from None
        finally:
            self.loader.dispose()
        if root is None:
            raise self.error(None, (), "the file is empty; expected a mapping with 'name' and 'layers'")
        return self.convert(root, (), 0)

    def convert(self, node: yaml.Node, path: PathTuple, depth: int) -> Any:
        self.nodes_seen += 1
        if self.nodes_seen > MAX_NODES:
            raise self.error(node.start_mark, path, f"the document expands to more than {MAX_NODES} values (alias bomb?)")
        if depth > MAX_DEPTH:
            raise self.error(node.start_mark, path, f"nesting deeper than {MAX_DEPTH} levels")
        self.source.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self.convert_mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.error(node.start_mark, path, f"YAML tag {node.tag!r} is not allowed")
            return [self.convert(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise self.error(node.start_mark, path, f"YAML tag {node.tag!r} is not allowed (only plain data)") from None

    def convert_mapping(self, node: yaml.MappingNode, path: PathTuple, depth: int) -> dict:
        if node.tag != _MAP_TAG:
            raise self.error(node.start_mark, path, f"YAML tag {node.tag!r} is not allowed")
        self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        result: dict = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise self.error(key_node.start_mark, path, f"mapping keys must be plain scalars, got {key!r}")
            key = str(key)
            if key in result:
                first = self.source.marks.get(path + (key,), (0, 0))[0]
                raise self.error(key_node.start_mark, path + (key,), f"duplicate key '{key}' (first written on line {first})")
            self.source.marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.convert(value_node, path + (key,), depth + 1)
        return result


def parse_yaml(text: str, file: str = "<spec>") -> tuple[Any, SourceMap]:
    """Parse YAML text into plain data plus its source map."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise SpecError.at(Location(file), f"the spec is larger than {MAX_FILE_BYTES} bytes")
    composer = _Composer(text, file)
    return composer.load(), composer.source


def read_yaml(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse a spec file; file problems are reported as spec errors."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SpecError.at(Location(str(path)), f"cannot read the spec: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise SpecError.at(Location(str(path)), f"the spec is {size} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError.at(Location(str(path)), f"the spec is not UTF-8 text ({exc.reason})") from None
    return parse_yaml(text, str(path))
