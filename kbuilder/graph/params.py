"""`${...}` parameter substitution with a tiny arithmetic language (never `eval`).

`"${filters}"` alone becomes the parameter's value with its type (int, list, ...);
`"conv${i}"` inside other text becomes a string. Expressions allow numbers, strings,
parameter names, + - * / // % **, parentheses and min/max/int/round/abs.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any, Mapping

_WHOLE = re.compile(r"^\$\{([^{}]+)\}$")
_PART = re.compile(r"\$\{([^{}]+)\}")

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS = {"min": min, "max": max, "int": int, "round": round, "abs": abs}


class ParamError(ValueError):
    """An expression is malformed or names an unknown parameter."""


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ParamError(f"cannot read the expression '${{{expression}}}'") from None
    return _eval(tree.body, scope, expression)


def _eval(node: ast.AST, scope: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in scope:
            from kbuilder.errors import did_you_mean

            known = ", ".join(sorted(scope)) or "none"
            raise ParamError(f"unknown parameter '{node.id}'{did_you_mean(node.id, scope)} (known: {known})")
        return scope[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, scope, text), _eval(node.right, scope, text)
        try:
            return _BINARY[type(node.op)](left, right)
        except (TypeError, ZeroDivisionError) as exc:
            raise ParamError(f"cannot compute '${{{text}}}': {exc}") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, scope, text))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        args = [_eval(arg, scope, text) for arg in node.args]
        try:
            return _FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise ParamError(f"cannot compute '${{{text}}}': {exc}") from None
    raise ParamError(
        f"'${{{text}}}' uses something expressions do not allow; "
        "use numbers, parameter names, + - * / // % ** and min/max/int/round/abs"
    )


def substitute(value: Any, scope: Mapping[str, Any]) -> Any:
    """Replace `${...}` in every string inside `value` (dicts and lists recursively)."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            result = evaluate(whole.group(1), scope)
            # 64 / 2 gives 32.0: an integral float becomes an int so it fits int fields.
            return int(result) if isinstance(result, float) and result.is_integer() else result
        if "${" in value:
            return _PART.sub(lambda m: str(evaluate(m.group(1), scope)), value)
        return value
    if isinstance(value, dict):
        return {key: substitute(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, scope) for item in value]
    return value


def shallow_substitute(entry: Any, scope: Mapping[str, Any], nested_keys: frozenset[str]) -> Any:
    """Substitute an entry's own arguments but not nested layer lists (they get their
    own scope when expanded: a block body must see the block's arguments, not ours)."""
    if not isinstance(entry, dict) or len(entry) != 1:
        return substitute(entry, scope)
    (kind, args), = entry.items()
    if not isinstance(args, dict):
        return {kind: substitute(args, scope)}
    # A nested layer list stays raw; a plain value there (`shortcut: ${shortcut}`) is ours.
    return {
        kind: {
            k: (v if k in nested_keys and isinstance(v, (list, dict)) else substitute(v, scope))
            for k, v in args.items()
        }
    }


def mentions(entry: Any, name: str, nested_keys: frozenset[str]) -> bool:
    """Whether an entry's own arguments use `name` inside a `${...}` expression."""
    pattern = re.compile(r"\$\{[^{}]*\b" + re.escape(name) + r"\b")

    def walk(value: Any) -> bool:
        if isinstance(value, str):
            return bool(pattern.search(value))
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return False

    if isinstance(entry, dict) and len(entry) == 1:
        (args,) = entry.values()
        if isinstance(args, dict):
            return any(walk(v) for k, v in args.items() if not (k in nested_keys and isinstance(v, (list, dict))))
    return walk(entry)
