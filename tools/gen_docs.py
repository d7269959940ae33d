"""Write docs/layers.md, the layer-kind reference, from the registry and the JSON schema.

    python tools/gen_docs.py          # rewrite docs/layers.md
    python tools/gen_docs.py --check  # exit 1 when docs/layers.md differs from what it would write

Every kind registered in `kbuilder.spec.registry.LAYER_KINDS` gets a section: its family,
what it builds (the Keras class, one of kbuilder's own layers, or for a composite the
layers it expands to), its shorthand, and a table of its own fields with type and
constraints, default and description, all read from the kind's Pydantic model and its
JSON schema. Nothing here is written by hand, so the reference cannot drift from the
language: `tests/test_readme.py` fails when the committed file differs from this output.
Importing this module imports no Keras (the spec package never does).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout: import this tree's kbuilder
    sys.path.insert(0, str(REPO))

from kbuilder.spec.registry import LayerSpec, all_kinds  # after the path is set

OUTPUT = REPO / "docs" / "layers.md"
# Families in reading order; a family not listed here comes after them, alphabetically.
FAMILIES = [
    "io",
    "core",
    "conv",
    "pooling",
    "normalization",
    "activation",
    "regularization",
    "preprocessing",
    "shape",
    "merge",
    "attention",
    "composite",
]
COMMON_FIELDS = ("name", "inputs", "trainable", "when")
CONSTRAINT_WORDS = {
    "minimum": "≥",
    "exclusiveMinimum": ">",
    "maximum": "≤",
    "exclusiveMaximum": "<",
}
LENGTH_WORDS = {"minItems": "at least {} items", "maxItems": "at most {} items"}
STRING_WORDS = {"minLength": "at least {} characters", "maxLength": "at most {} characters"}
SCALARS = {"integer": "int", "number": "float", "string": "text", "boolean": "bool", "null": "null"}
# Long value lists that many fields share get a name and one listing under "Value types";
# a list is recognised by a value only it holds. Any other list is written out in place.
NAMED_ENUMS = {"glorot_uniform": "initializer name", "hard_silu": "activation name"}


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _cell(text: str) -> str:
    """Markdown table cell text: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _constraints(node: dict[str, Any]) -> list[str]:
    words = [f"{sign} {node[key]}" for key, sign in CONSTRAINT_WORDS.items() if key in node]
    words += [text.format(node[key]) for key, text in {**LENGTH_WORDS, **STRING_WORDS}.items() if key in node]
    return words


class Shared:
    """The value types that fields refer to, gathered while the kinds are written, listed once."""

    def __init__(self) -> None:
        self.enums: dict[str, list[Any]] = {}
        self.mappings: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # name -> (schema, its $defs)
        # A mapping that is itself a layer kind's model (residual's BatchNorm) links to that kind.
        self.kind_of = {cls.__name__: cls.kind for cls in all_kinds().values()}


def type_text(node: dict[str, Any], defs: dict[str, Any], shared: Shared) -> str:
    """A short reading of one JSON-schema node: `int ≥ 1`, `list of 2 (int)`, `"same" or "valid"`."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = defs.get(name, {})
        if name in shared.kind_of:
            return f"[`{shared.kind_of[name]}`](#{shared.kind_of[name]}) arguments"
        if target.get("type") == "object" or "properties" in target:
            shared.mappings.setdefault(name, (target, defs))
            return f"[{name}](#{name.lower()}) mapping"
        return type_text(target, defs, shared) if target else name
    if node.get("x-kbuilder") == "layer-entry":
        return "layer entry"
    if "enum" in node:
        named = next((name for value, name in NAMED_ENUMS.items() if value in node["enum"]), None)
        if named:
            shared.enums.setdefault(named, node["enum"])
        return f"[{named}](#value-types)" if named else " or ".join(_literal(v) for v in node["enum"])
    if "const" in node:
        return _literal(node["const"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [type_text(option, defs, shared) for option in node[key]]
            return " or ".join(dict.fromkeys(parts))
    kind = node.get("type")
    if kind == "array":
        lengths = (node.get("minItems"), node.get("maxItems"))
        items = type_text(node.get("items", {}), defs, shared) if node.get("items") else "values"
        if "prefixItems" in node:
            return "[" + ", ".join(type_text(item, defs, shared) for item in node["prefixItems"]) + "]"
        if lengths[0] is not None and lengths[0] == lengths[1]:
            return f"list of {lengths[0]} ({items})"
        if None not in lengths:
            return f"list of {lengths[0]} to {lengths[1]} ({items})"
        bounds = ", ".join(_constraints({k: v for k, v in node.items() if k in LENGTH_WORDS}))
        return f"list of ({items})" + (f", {bounds}" if bounds else "")
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict) and values:
            return f"mapping of name to ({type_text(values, defs, shared)})"
        return "mapping"
    if isinstance(kind, list):
        return " or ".join(SCALARS.get(k, k) for k in kind)
    if kind in SCALARS:
        bounds = _constraints(node)
        pattern = f" matching `{node['pattern']}`" if "pattern" in node else ""
        return SCALARS[kind] + (" " + ", ".join(bounds) if bounds else "") + pattern
    return "any"


def builds_text(cls: type[LayerSpec]) -> str:
    if cls.composite:
        return (
            "nothing of its own: expands into the layers it contains ([the spec language](spec-language.md))"
        )
    if cls.kind == "input":
        return "`keras.Input` (a model input declared among the layers)"
    if cls.keras_class and cls.keras_class.startswith("kbuilder:"):
        name = cls.keras_class.split(":", 1)[1]
        return f"`{name}`, a layer of kbuilder's own (`kbuilder/layers/`, keras.ops only, serializable)"
    if cls.keras_class:
        return f"`keras.layers.{cls.keras_class}`"
    return "a builder of its own in `kbuilder.build`"


def field_rows(cls: type[LayerSpec], shared: Shared) -> list[str]:
    schema = cls.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    own = set(inspect.get_annotations(cls))
    properties = schema.get("properties", {})
    # The kind's own fields first, then those it shares with its base (activation, initializers...).
    ordered = [name for name in properties if name in own] + [name for name in properties if name not in own]
    rows = []
    for name in ordered:
        node = properties[name]
        if name in COMMON_FIELDS:
            continue
        default = "required" if name in required else f"`{_literal(node.get('default'))}`"
        description = node.get("description", "")
        if not description and "$ref" in node:
            description = defs.get(node["$ref"].rsplit("/", 1)[-1], {}).get("description", "")
        type_cell = type_text(node, defs, shared)
        rows.append(f"| `{name}` | {_cell(type_cell)} | {default} | {_cell(description) or '—'} |")
    return rows


def kind_section(cls: type[LayerSpec], shared: Shared) -> list[str]:
    lines = [f"### `{cls.kind}`", ""]
    doc = " ".join((cls.__doc__ or "").split())
    if doc:
        lines += [doc, ""]
    lines.append(f"- family: {cls.category}")
    lines.append(f"- builds: {builds_text(cls)}")
    if cls.shorthand:
        lines.append(f"- shorthand: `- {cls.kind}: VALUE` means `- {cls.kind}: {{{cls.shorthand}: VALUE}}`")
    rows = field_rows(cls, shared)
    if rows:
        lines += ["", "| field | type | default | description |", "| --- | --- | --- | --- |", *rows]
    else:
        lines += ["- fields: none of its own (may stand alone: `- " + cls.kind + "`)"]
    return lines + [""]


def value_types(shared: Shared) -> list[str]:
    lines = ["## Value types", ""]
    for name, values in sorted(shared.enums.items()):
        lines += [f"- {name}: " + ", ".join(f"`{v}`" for v in values), ""]
    written: set[str] = set()
    while pending := sorted(set(shared.mappings) - written):
        name = pending[0]
        written.add(name)
        schema, defs = shared.mappings[name]
        lines += [f"### {name}", "", " ".join(schema.get("description", "").split()), ""]
        lines += ["| field | type | default | description |", "| --- | --- | --- | --- |"]
        required = set(schema.get("required", []))
        for field, node in schema.get("properties", {}).items():
            default = "required" if field in required else f"`{_literal(node.get('default'))}`"
            type_cell = _cell(type_text(node, defs, shared))
            lines.append(
                f"| `{field}` | {type_cell} | {default} | {_cell(node.get('description', '')) or '—'} |"
            )
        lines.append("")
    return lines


def _family_order(family: str) -> tuple[int, str]:
    return (FAMILIES.index(family), "") if family in FAMILIES else (len(FAMILIES), family)


def render() -> str:
    kinds = all_kinds()
    families: dict[str, list[type[LayerSpec]]] = {}
    for cls in kinds.values():
        families.setdefault(cls.category, []).append(cls)
    ordered = sorted(families, key=_family_order)
    common = LayerSpec.model_json_schema()["properties"]
    lines = [
        "# Layer kinds",
        "",
        "<!-- Generated by tools/gen_docs.py from kbuilder.spec.registry and the JSON schema;",
        "     do not edit by hand: run `python tools/gen_docs.py` after changing a kind. -->",
        "",
        f"Every layer kind a spec can name ({len(kinds)} in all), by family. A layer entry is",
        "`- kind: {arguments}`; the arguments are Keras's own names and semantics. Types read",
        "from the JSON schema (`kbuilder schema`); any number or boolean may also be a `${...}`",
        "expression (see [the spec language](spec-language.md)).",
        "",
        "| family | kinds |",
        "| --- | --- |",
    ]
    for family in ordered:
        names = ", ".join(f"[`{c.kind}`](#{c.kind})" for c in sorted(families[family], key=lambda c: c.kind))
        lines.append(f"| {family} | {names} |")
    lines += [
        "",
        "## Fields every kind takes",
        "",
        "| field | default | description |",
        "| --- | --- | --- |",
    ]
    for name in COMMON_FIELDS:
        node = common[name]
        lines.append(
            f"| `{name}` | `{_literal(node.get('default'))}` | {_cell(node.get('description', ''))} |"
        )
    lines.append("")
    shared = Shared()
    for family in ordered:
        lines += [f"## {family}", ""]
        for cls in sorted(families[family], key=lambda c: c.kind):
            lines += kind_section(cls, shared)
    lines += value_types(shared)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/layers.md instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(
                f"{OUTPUT.relative_to(REPO)} is out of date: run `python tools/gen_docs.py`", file=sys.stderr
            )
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)} ({len(all_kinds())} kinds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
