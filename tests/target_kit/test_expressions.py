"""Mapping expressions: computed values that may be missing, on SDK-parsed records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from target_kit.expressions import Expression, ExpressionError


def test_an_expression_may_yield_none_for_a_missing_value() -> None:
    micros = Expression("int(amount * 1000000) if amount is not None else None")
    assert micros({"amount": Decimal("12000.5")}) == 12_000_500_000
    assert micros({"amount": None}) is None


def test_lookups_and_indexing_work_on_nested_values() -> None:
    stage = Expression("{1: 'PROPOSAL', 2: 'CUSTOMER'}.get(stage_type, 'NEW')")
    calling_code = Expression("'+' + tel_list[0][0] if tel_list else None")
    assert stage({"stage_type": 2}) == "CUSTOMER"
    assert stage({"stage_type": 3}) == "NEW"
    assert calling_code({"tel_list": [["49", "1701234567"]]}) == "+49"
    assert calling_code({"tel_list": []}) is None


def test_dates_and_times_are_the_iso_text_the_tap_sent_by_name_and_through_record() -> None:
    # What the SDK makes of "2026-03-01", "2026-02-01T09:30:00+00:00" and "09:30:00".
    record = {
        "day": dt.date(2026, 3, 1),
        "at": dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.UTC),
        "time": dt.time(9, 30),
        "amount": Decimal("1.5"),
    }
    expression = Expression("[day + 'T00:00:00+08:00', record['at'], time, amount]")

    assert expression(record) == [
        "2026-03-01T00:00:00+08:00",
        "2026-02-01T09:30:00+00:00",
        "09:30:00",
        Decimal("1.5"),  # numbers stay numbers
    ]
    assert record["day"] == dt.date(2026, 3, 1)  # the record itself is left as it is


def test_a_bad_expression_is_refused_when_the_mapping_is_read() -> None:
    with pytest.raises(ExpressionError, match="cannot parse"):
        Expression("int(amount *")


def test_a_failing_expression_names_itself_and_the_cause() -> None:
    with pytest.raises(ExpressionError, match=r"amount \* 2.*failed"):
        Expression("amount * 2")({"amount": None})


def test_expressions_cannot_reach_python_internals() -> None:
    with pytest.raises(ExpressionError):
        Expression("record.__class__")({"x": 1})
