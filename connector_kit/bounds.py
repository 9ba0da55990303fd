"""Numbers too large to work with, told apart before any work that grows with their size.

A record is a few bytes of JSON, `1e200000`, and the SDK reads it as `Decimal('1E+200000')`:
comparing or multiplying that Decimal is quick whatever its exponent, but turning it into an
int (`int()`, `round()`, `jsonable`) builds a 200,001-digit integer in seconds, and one with a
larger exponent takes minutes or exhausts memory. So every conversion first asks `within` or
`digits`, which only compare, and a value beyond what the destination stores is refused with a
clear reason instead.
"""

from __future__ import annotations

import sys
from decimal import Decimal

# The largest finite JSON number a destination reading JSON as doubles keeps (Twenty's server
# is Node.js; Jiandaoyun documents doubles): beyond it a number becomes Infinity or an error.
DOUBLE_MAX = Decimal(sys.float_info.max)
# Python itself refuses to turn a longer integer into text (sys.int_info), so no JSON or text
# value can carry one; no API here stores one either.
MAX_DIGITS = sys.int_info.default_max_str_digits  # 4300


def within(value: int | float | Decimal, limit: int | float | Decimal) -> bool:
    """Whether |value| <= limit; a NaN or an infinity is not within any limit."""
    if isinstance(value, Decimal):  # copy_abs: abs() rounds, and overflows past 1e999999
        return value.is_finite() and value.copy_abs() <= limit
    if isinstance(value, float):
        return abs(value) <= limit  # False for NaN and infinities
    return abs(value) <= limit


def digits(value: int | float | Decimal) -> int:
    """How many digits `value` written without an exponent has, about (±1), found without
    writing it: 1e200000 has 200,001, 1e-7 has 8."""
    if isinstance(value, Decimal):
        if not value.is_finite() or not value:
            return 1
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        return max(value.adjusted(), 0) + max(-exponent, 0) + 1
    if isinstance(value, int):
        return value.bit_length() * 30103 // 100000 + 1  # log10(2) = 0.30103
    return len(repr(value))  # a float: its shortest text (at most 24 characters)


def shown(value: int | float | Decimal, limit: int = 40) -> str:
    """A number for a message, never written out in full: 1e200000 becomes `1.000000e+200000`."""
    if digits(value) <= limit:
        return str(value)
    if isinstance(value, int):
        return f"an integer of about {digits(value):,} digits"
    return f"{value:.6e}"
