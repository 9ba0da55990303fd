"""Mapping expressions: computed values that may be missing, on SDK-parsed records."""

from __future__ import annotations

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


def test_a_bad_expression_is_refused_when_the_mapping_is_read() -> None:
    with pytest.raises(ExpressionError, match="cannot parse"):
        Expression("int(amount *")


def test_a_failing_expression_names_itself_and_the_cause() -> None:
    with pytest.raises(ExpressionError, match=r"amount \* 2.*failed"):
        Expression("amount * 2")({"amount": None})


def test_expressions_cannot_reach_python_internals() -> None:
    with pytest.raises(ExpressionError):
        Expression("record.__class__")({"x": 1})
