"""Size bounds for `${...}` expressions: every result is checked, and the operations that
can explode (powers, products, repeated text) are checked BEFORE they are computed.

A spec is untrusted input: `${9**9**9}` would otherwise take minutes and gigabytes,
`${'a'*10**9}` a gigabyte of text, `${2.0**10000}` an OverflowError from Python.
No layer argument needs an integer beyond 64 bits or text longer than a few hundred
characters, so the bounds cost nothing to a real spec.
"""

from __future__ import annotations

import math
import operator
from typing import Any

MAX_INT_BITS = 63  # |value| < 2**63 (about 9.2e18): every integer a layer can use
MAX_TEXT = 4096  # characters of a string (names are far shorter)
MAX_ITEMS = 4096  # items of a list, those of the lists inside it included
MAX_EXPRESSION = 1000  # characters inside one ${...}
MAX_DEPTH = 64  # nesting of operations inside one expression


class ParamError(ValueError):
    """An expression is malformed, names an unknown parameter or exceeds a bound."""


class BoundError(ParamError):
    """A result is (or would be) beyond a bound; the evaluator adds the expression."""


def _too_big(what: str) -> ParamError:
    return BoundError(
        f"the result would be {what}; expressions are limited to integers below 2**{MAX_INT_BITS}, "
        f"finite floats, text of at most {MAX_TEXT} characters and lists of at most {MAX_ITEMS} items "
        "(nested lists' items counted)"
    )


def items_in(value: list, limit: int = MAX_ITEMS) -> int:
    """The items of `value` and of every list inside it, counted until `limit` is passed.

    `[[0] * 4096] * 4096` is 4,096 references to one list, cheap to make: counting stops
    as soon as the limit is passed instead of walking 16 million items. Nesting is bounded
    by the expression's depth, or by the spec loader's for a list a parameter holds.
    """
    total, pending = 0, [value]
    while pending and total <= limit:
        current = pending.pop()
        total += len(current)
        pending.extend(item for item in current if isinstance(item, list))
    return total


def checked(value: Any) -> Any:
    """`value` if it is within bounds, else a ParamError saying which bound."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise _too_big(f"an integer of {value.bit_length()} bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _too_big(f"the float {value}")
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise _too_big(f"text of {len(value)} characters")
        return value
    if isinstance(value, list):
        if items_in(value) > MAX_ITEMS:
            raise _too_big(f"a list of more than {MAX_ITEMS} items")
        return value
    raise BoundError(
        f"the result would be a {type(value).__name__} ({value!r}), which no layer argument takes"
    )


def _limit(value: Any) -> int:
    return MAX_ITEMS if isinstance(value, list) else MAX_TEXT


def _length(value: Any) -> int | None:
    # A list's size counts the items of the lists inside it: `[[0] * 64] * 64` is 4,160.
    if isinstance(value, list):
        return items_in(value)
    return len(value) if isinstance(value, str) else None


def checked_sum(left: Any, right: Any) -> Any:
    a, b = _length(left), _length(right)
    if a is not None and b is not None and type(left) is type(right) and a + b > _limit(left):
        raise _too_big(f"a sequence of {a + b} items")
    return operator.add(left, right)


def checked_product(left: Any, right: Any) -> Any:
    # text * n and list * n: bound the length before building it.
    for sequence, count in ((left, right), (right, left)):
        size = _length(sequence)
        if size is not None and isinstance(count, int) and size * max(count, 0) > _limit(sequence):
            raise _too_big(f"a sequence of {size * count} items")
    if isinstance(left, int) and isinstance(right, int):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS + 1:
            raise _too_big(f"an integer of about {bits} bits")
    return operator.mul(left, right)


def checked_power(base: Any, exponent: Any) -> Any:
    if isinstance(base, (str, list)) or isinstance(exponent, (str, list)):
        raise BoundError("** takes numbers")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        # bits of base**exponent >= exponent * (bits of base - 1): refuse before computing.
        bits = exponent * (abs(base).bit_length() - 1)
        if bits > MAX_INT_BITS:
            raise _too_big(f"an integer of at least {bits} bits")
    # A float power: log2 of the result above 1024 overflows a double.
    if (
        isinstance(base, (int, float))
        and isinstance(exponent, (int, float))
        and abs(base) > 1
        and exponent > 0
        and exponent * math.log2(abs(base)) > 1024
    ):
        raise _too_big(f"about 2**{exponent * math.log2(abs(base)):.0f}")
    result = operator.pow(base, exponent)
    if isinstance(result, complex):
        raise BoundError("a negative number to a fractional power has no real value")
    return result


def checked_modulo(left: Any, right: Any) -> Any:
    # 'text' % value is printf-style formatting: `'%0999999999d' % 1` is a gigabyte.
    if isinstance(left, str):
        raise BoundError("% takes numbers here, not text (text formatting is not allowed)")
    return operator.mod(left, right)


def checked_round(number: Any, digits: Any = None) -> Any:
    # round(5, -10**7) computes 10**(10**7) inside Python: bound the digits first.
    if digits is not None and (not isinstance(digits, int) or abs(digits) > 400):
        raise BoundError("round() takes at most 400 digits either way")
    return round(number) if digits is None else round(number, digits)
