"""The JSON Schema of a spec, for editors' YAML language servers and for tests.

Layer lists are validated entry by entry after `${...}` substitution, so the schema
describes them through one shared `LayerEntry` definition and lets any number, boolean,
choice, name or list be written as a `${...}` expression (an expression may compute a
list, `"${[1, 3]}"`, or a layer name, `"${prev(1)}"`), and `inputs:` be one name.
"""

from typing import Any

from pydantic import TypeAdapter

from kbuilder.spec.composite import LAYER_ENTRY_MARK
from kbuilder.spec.entry import layer_entry_type
from kbuilder.spec.model import ModelSpec
from kbuilder.spec.registry import all_kinds

EXPRESSION = {
    "type": "string",
    "pattern": r"^.*\$\{[^{}]+\}.*$",
    "description": "A ${...} parameter expression.",
}
SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def _allow_expressions(node: Any) -> Any:
    if isinstance(node, dict):
        if node == LAYER_ENTRY_MARK:
            return {"$ref": "#/$defs/LayerEntry"}
        node = {key: _allow_expressions(value) for key, value in node.items()}
        if _may_be_an_expression(node):
            described = {k: v for k, v in node.items() if k in ("description", "title", "default")}
            plain = {k: v for k, v in node.items() if k not in described}
            return {**described, "anyOf": [plain, EXPRESSION]}
        return node
    if isinstance(node, list):
        return [_allow_expressions(item) for item in node]
    return node


def _may_be_an_expression(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind in ("integer", "number", "boolean", "array") or "enum" in node:
        return True
    return kind == "string" and "pattern" in node  # names: `conv${index}`, `${prev(1)}`


def json_schema() -> dict[str, Any]:
    schema = ModelSpec.model_json_schema(ref_template="#/$defs/{model}")
    entry = TypeAdapter(layer_entry_type()).json_schema(ref_template="#/$defs/{model}")
    defs = schema.setdefault("$defs", {})
    defs.update(entry.pop("$defs", {}))
    defs["LayerEntry"] = {**entry, "description": "One layer: `- kind: {arguments}` (or `- kind` alone)."}
    defs["LayerEntry"]["oneOf"] = defs["LayerEntry"].get("oneOf", []) + [
        {
            "type": "string",
            "enum": _argless_kinds(),
            "description": "A kind with no arguments, e.g. `- flatten`.",
        }
    ]
    _allow_short_forms(defs)
    schema = _allow_expressions(schema)
    return {"$schema": SCHEMA_URI, **schema, "title": "kbuilder model spec"}


def _allow_short_forms(defs: dict[str, Any]) -> None:
    """`- dense: 128` (the shorthand field) and `- flatten:` (no arguments) are valid too."""
    for kind, spec in all_kinds().items():
        entry = defs.get(f"{spec.__name__}Entry")
        if entry is None:
            continue
        full = entry["properties"][kind]
        options = [{k: v for k, v in full.items() if k != "description"}]
        if spec.shorthand:
            options.append(defs[spec.__name__]["properties"][spec.shorthand])
        if not any(f.is_required() for f in spec.model_fields.values()):
            options.append({"type": "null"})
        entry["properties"][kind] = {"description": full.get("description", ""), "anyOf": options}
        inputs = defs[spec.__name__]["properties"].get("inputs")
        if inputs is not None:  # `inputs: x` means `inputs: [x]`
            names = next(option for option in inputs["anyOf"] if option.get("type") == "array")
            inputs["anyOf"] = [*inputs["anyOf"], names["items"]]


def _argless_kinds() -> list[str]:
    return sorted(
        kind
        for kind, spec in all_kinds().items()
        if all(not f.is_required() for f in spec.model_fields.values())
    )
