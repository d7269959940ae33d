"""The `${...}` expression language: a tiny evaluator over Python's parsed syntax tree
(never `eval`). Numbers, text, `None`, lists `[a, b]`, indexing and slicing (`dims[0]`,
`dims[-1]`, `dims[1:]`), parameter names, + - * / // % **, comparisons (< <= > >= == !=,
`is None`), and/or/not, `a if cond else b`, parentheses and min/max/int/round/abs/len, and
the functions a composite puts into its body's scope (repeat's `prev(k)`). Nothing else: no
attribute, no other call, no comprehension, no lambda (docs/spec-language.md, "Expressions").

Specs are untrusted: every intermediate result is bounded BEFORE it is computed (the
bits of a power or product, the length of a repeated string or list, float overflow), so
`${9**9**9}` or `${'a'*10**9}` is refused in microseconds instead of eating the machine.
"""

from __future__ import annotations

import ast
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from kbuilder.errors import did_you_mean
from kbuilder.graph.bounds import (
    MAX_DEPTH,
    MAX_EXPRESSION,
    BoundError,
    ParamError,
    checked,
    checked_modulo,
    checked_power,
    checked_product,
    checked_round,
    checked_sum,
)

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: checked_sum,
    ast.Sub: operator.sub,
    ast.Mult: checked_product,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: checked_modulo,
    ast.Pow: checked_power,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Is: operator.is_,  # only with None (checked in _Compare): identity of numbers is not a value
    ast.IsNot: operator.is_not,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "int": int,
    "round": checked_round,
    "abs": abs,
    "len": len,
}
ALLOWED = (
    "numbers, strings, None, lists [a, b], indexing x[i] and slicing x[i:j], parameter names, "
    "+ - * / // % **, < <= > >= == != and `is None`, and/or/not, `a if condition else b` "
    "and min/max/int/round/abs/len"
)

__all__ = ["ALLOWED", "ParamError", "ScopeFunction", "evaluate"]


class ScopeFunction(ABC):
    """A function a composite puts into its body's scope, called by name like the built-ins
    (`repeat` gives its body `prev(k)`). It takes evaluated positional arguments, returns a
    value `checked` accepts, and raises ParamError for arguments it cannot take."""

    name = ""

    @abstractmethod
    def __call__(self, *args: Any) -> Any: ...


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    text = expression.strip()
    if len(text) > MAX_EXPRESSION:
        raise ParamError(
            f"the expression '${{{text[:40]}...}}' is {len(text)} characters long; at most {MAX_EXPRESSION} are allowed"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ParamError(
            f"cannot read the expression '${{{text if len(text) <= 80 else text[:77] + '...'}}}'; expressions allow {ALLOWED}"
        ) from None
    return _Evaluator(scope, expression).eval(tree.body, 0)


class _Evaluator:
    """Walks the expression tree; each node kind has one small method, each result is checked."""

    def __init__(self, scope: Mapping[str, Any], text: str):
        # Messages quote the expression, shortened: a hostile one can be 1000 characters.
        self.scope, self.text = scope, text if len(text) <= 80 else text[:77] + "..."

    def fail(self, why: str) -> ParamError:
        return ParamError(f"cannot compute '${{{self.text}}}': {why}")

    def eval(self, node: ast.AST, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ParamError(f"'${{{self.text}}}' uses something expressions do not allow; use {ALLOWED}")
        try:
            return checked(method(node, depth + 1))
        except BoundError as exc:
            raise self.fail(str(exc)) from None
        except ParamError:
            raise
        except (TypeError, ZeroDivisionError, OverflowError, ValueError, IndexError) as exc:
            raise self.fail(str(exc) or type(exc).__name__) from None

    def _Constant(self, node: ast.Constant, depth: int) -> Any:
        if node.value is None or isinstance(node.value, (bool, int, float, str)):
            return node.value
        raise ParamError(f"'${{{self.text}}}' uses a constant expressions do not allow ({node.value!r})")

    def _Name(self, node: ast.Name, depth: int) -> Any:
        if node.id not in self.scope:
            known = ", ".join(sorted(self.scope)) or "none"
            raise ParamError(
                f"unknown parameter '{node.id}'{did_you_mean(node.id, self.scope)} (known: {known})"
            )
        value = self.scope[node.id]
        if isinstance(value, ScopeFunction):
            raise self.fail(f"'{node.id}' is a function here: call it, e.g. {node.id}(1)")
        return value

    def _BinOp(self, node: ast.BinOp, depth: int) -> Any:
        if type(node.op) not in _BINARY:
            raise ParamError(f"'${{{self.text}}}' uses an operator expressions do not allow; use {ALLOWED}")
        return _BINARY[type(node.op)](self.eval(node.left, depth), self.eval(node.right, depth))

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Any:
        if type(node.op) not in _UNARY:
            raise ParamError(f"'${{{self.text}}}' uses an operator expressions do not allow; use {ALLOWED}")
        return _UNARY[type(node.op)](self.eval(node.operand, depth))

    def _Compare(self, node: ast.Compare, depth: int) -> bool:
        left = self.eval(node.left, depth)
        for op, right_node in zip(node.ops, node.comparators):
            if type(op) not in _COMPARE:
                raise ParamError(
                    f"'${{{self.text}}}' uses a comparison expressions do not allow; use < <= > >= == != or `is None`"
                )
            right = self.eval(right_node, depth)
            if isinstance(op, (ast.Is, ast.IsNot)) and left is not None and right is not None:
                raise self.fail("`is` and `is not` compare with None only; compare values with == and !=")
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> Any:
        # Short-circuits like Python: `a and b` is a when a is false, else b.
        stop_when = isinstance(node.op, ast.Or)
        value = None
        for operand in node.values:
            value = self.eval(operand, depth)
            if bool(value) == stop_when:
                return value
        return value

    def _IfExp(self, node: ast.IfExp, depth: int) -> Any:
        branch = node.body if self.eval(node.test, depth) else node.orelse
        return self.eval(branch, depth)

    def _List(self, node: ast.List, depth: int) -> list:
        # Each item is evaluated (and bounded) in turn; checked() then bounds the whole list.
        return [self.eval(item, depth) for item in node.elts]

    def _Subscript(self, node: ast.Subscript, depth: int) -> Any:
        sequence = self.eval(node.value, depth)
        if not isinstance(sequence, (list, str)):
            raise self.fail(f"only a list or text can be indexed, not {_kind(sequence)}")
        if isinstance(node.slice, ast.Slice):
            bounds = [
                None if part is None else self._index(part, depth)
                for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            return sequence[slice(*bounds)]  # no longer than `sequence`: bounded already
        index = self._index(node.slice, depth)
        if not -len(sequence) <= index < len(sequence):
            what = (
                f"a list of {len(sequence)} items"
                if isinstance(sequence, list)
                else f"text of {len(sequence)} characters"
            )
            last = f"0 to {len(sequence) - 1}, or -1 to -{len(sequence)} from the end" if sequence else "none"
            raise self.fail(f"index {index} is out of range for {what} (valid: {last})")
        return sequence[index]

    def _index(self, node: ast.AST, depth: int) -> int:
        index = self.eval(node, depth)
        if isinstance(index, bool) or not isinstance(index, int):
            raise self.fail(f"an index must be an integer, got {_kind(index)}")
        return index

    def _Call(self, node: ast.Call, depth: int) -> Any:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        provided = self.scope.get(name) if name is not None else None
        if isinstance(provided, ScopeFunction) and not node.keywords:
            return provided(*[self.eval(arg, depth) for arg in node.args])
        if name not in _FUNCTIONS or node.keywords:
            raise ParamError(
                f"'${{{self.text}}}' calls something expressions do not allow; use min/max/int/round/abs/len "
                "(and prev(k) inside a repeat)"
            )
        args = [self.eval(arg, depth) for arg in node.args]
        if name == "int" and args and isinstance(args[0], str):
            raise self.fail("int() takes a number here, not text")
        return _FUNCTIONS[name](*args)


def _kind(value: Any) -> str:
    return "None" if value is None else f"{type(value).__name__} {value!r}"[:60]
