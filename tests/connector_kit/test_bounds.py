"""Numbers told apart by size without being expanded (connector_kit.bounds), and `jsonable`
keeping a number too long for an int as its text."""

from __future__ import annotations

import time
from decimal import Decimal

from connector_kit.bounds import DOUBLE_MAX, MAX_DIGITS, digits, shown, within
from connector_kit.serialize import dumps, jsonable

HUGE = Decimal("1e2000000")


def test_sizes_of_huge_numbers_are_known_at_once_without_expanding_them() -> None:
    started = time.monotonic()
    assert not within(HUGE, DOUBLE_MAX) and not within(HUGE.copy_negate(), DOUBLE_MAX)
    assert within(Decimal("-1.7e308"), DOUBLE_MAX)
    assert not within(Decimal("NaN"), DOUBLE_MAX) and not within(float("inf"), DOUBLE_MAX)
    assert digits(HUGE) == 2_000_001
    assert digits(Decimal("1e-7")) == 8
    assert digits(10**5000) in (5000, 5001)
    assert shown(HUGE) == "1.000000e+2000000"
    assert shown(Decimal("12.50")) == "12.50"
    assert time.monotonic() - started < 0.1


def test_jsonable_keeps_a_whole_number_too_long_for_an_int_as_its_text() -> None:
    started = time.monotonic()
    assert jsonable(HUGE) == "1E+2000000"
    assert dumps({"amount": HUGE}) == '{"amount":"1E+2000000"}'
    assert time.monotonic() - started < 0.1
    longest = Decimal(10) ** (MAX_DIGITS - 1)
    assert jsonable(longest) == 10 ** (MAX_DIGITS - 1)  # still an exact int below the limit
