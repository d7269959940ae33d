"""Turns Pydantic validation errors into located, readable problems with suggestions."""

import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from kbuilder.errors import Location, Problem, SpecError, did_you_mean
from kbuilder.spec.loader import PathTuple, SourceMap


def describe(value: Any, limit: int = 60) -> str:
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})" if not isinstance(value, (dict, list)) else text


def _data_path(raw: Any, loc: Iterable[Any], kind: str = "missing") -> tuple[PathTuple, list[Any]]:
    """Keep the loc parts that exist in the raw data; drop union member labels
    (`tagged-union[SGD,Adam]`, `literal['sgd']`), which name no key a user wrote."""
    loc = list(loc)
    kept: list[Any] = []
    node = raw
    for i, part in enumerate(loc):
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and 0 <= part < len(node)
        ):
            kept.append(part)
            node = node[part]
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict) and kind in _NAMES_A_KEY:
            kept.append(part)  # a missing or extra field: the name is the point
        else:
            continue
    return tuple(kept), loc


_NAMES_A_KEY = {"missing", "extra_forbidden"}
_NAME_ERRORS = {
    "literal_error",
    "enum",
}  # a value is not one of the allowed names  # errors whose last loc part is a field name


def _model_types(tp: Any) -> list[type[BaseModel]]:
    """The BaseModel classes an annotation can hold (through Optional/Union/Annotated)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _model_types(typing.get_args(tp)[0])
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return [m for arg in typing.get_args(tp) for m in _model_types(arg)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def _fields_at(root: type[BaseModel], path: PathTuple) -> set[str]:
    """Field names allowed in the mapping at `path` under `root` (for did-you-mean)."""
    candidates: list[Any] = [root]
    for part in path:
        nxt: list[Any] = []
        for tp in candidates:
            for model in _model_types(tp) or []:
                field = model.model_fields.get(str(part))
                if field is not None:
                    nxt.append(field.annotation)
            origin = typing.get_origin(tp)
            if origin in (list, dict):
                nxt.append(typing.get_args(tp)[-1])
        candidates = nxt
    return {name for tp in candidates for m in _model_types(tp) for name in m.model_fields}


def _message(err: Mapping[str, Any], raw_at: Any, allowed: set[str]) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return f"missing required field '{err['loc'][-1]}'"
    if kind == "extra_forbidden":
        key = err["loc"][-1]
        hint = did_you_mean(key, allowed) if allowed else ""
        known = f"; known fields: {', '.join(sorted(allowed))}" if allowed and not hint else ""
        return f"unknown field '{key}'{hint}{known}"
    if kind == "union_tag_not_found":  # a tagged mapping without its tag key
        return f"missing the key {ctx.get('discriminator', '')}, which says what this mapping is; got {describe(value)}"
    if kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags", ""))
        options = [o.strip(" '") for o in expected.split(",")]
        hint = did_you_mean(str(ctx.get("tag", "")), options)
        return (
            f"{ctx.get('discriminator', 'the tag')} must be one of {expected}, got {ctx.get('tag')!r}{hint}"
        )
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
        return f"expected one of {expected}, got {describe(value)}{did_you_mean(str(value), options)}"
    text = err["msg"]
    text = text[0].lower() + text[1:] if text else text
    text = text.removeprefix("value error, ")
    if text.startswith("input should be "):
        rest = text[len("input should be ") :]
        text = "expected " + ("a value " if rest.startswith(("greater", "less")) else "") + rest
    return f"{text}; got {describe(value)}" if "input" in err and kind != "value_error" else text


def spec_error_from_validation(
    exc: ValidationError,
    raw: Any,
    source: SourceMap,
    *,
    base: PathTuple = (),
    root: type[BaseModel] | None = None,
    context: str = "",
) -> SpecError:
    """Map a ValidationError on `raw` (found at `base` in the file) to a SpecError."""
    problems: dict[PathTuple, list[str]] = {}
    errors = exc.errors()
    located = [(_data_path(raw, err["loc"], err["type"])[0], err) for err in errors]
    # Paths with an error of their own that is not a name mismatch (the mapping branch's).
    explained = {
        path[:i] for path, err in located for i in range(len(path) + (err["type"] not in _NAME_ERRORS))
    }
    for path, err in located:
        if err["type"] in _NAME_ERRORS and isinstance(err.get("input"), dict) and path in explained:
            # `Optimizer | OptimizerName` given a mapping: the mapping's own error below is the
            # message; "expected one of the names" from the name branch would be a second, wrong one.
            continue
        allowed = set()
        if err["type"] == "extra_forbidden" and root is not None:
            allowed = _fields_at(root, path[:-1])
        message = _message(err, raw, allowed)
        bucket = problems.setdefault(path, [])
        if message not in bucket:
            bucket.append(message)
    out = []
    for path, messages in problems.items():
        if len(messages) > 1 and all(m.startswith("expected") for m in messages):
            messages = [
                " or ".join(m.split("; got")[0] for m in messages) + "; got" + messages[0].split("; got")[-1]
            ]
        for message in messages:
            out.append(Problem(source.locate(base + path), message, context))
    return SpecError(out)


def located(source: SourceMap, path: PathTuple, message: str, context: str = "") -> SpecError:
    return SpecError([Problem(source.locate(path), message, context)])


__all__ = ["Location", "describe", "located", "spec_error_from_validation"]
