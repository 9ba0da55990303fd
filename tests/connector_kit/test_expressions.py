"""Mapping expressions: computed values that may be missing, on SDK-parsed records."""

from __future__ import annotations

import datetime as dt
import re
import time
from decimal import Decimal

import pytest

from connector_kit import expressions
from connector_kit.expressions import Expression, ExpressionError


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
        "at": dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.timezone.utc),
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


# Limits ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "record", "reason"),
    [
        ("int(amount * 1000000)", {"amount": Decimal("1e200000")}, "int() of a number of more"),
        ("round(amount)", {"amount": Decimal("1e200000")}, "round() of a number of more"),
        ("int(amount * 1000000)", {"amount": Decimal("1e2000000")}, "Overflow (a number out"),
        ("''.join(['x' * 99999] * 1000)", {}, "join() would build 99,999,000 characters"),
        ("'x'.ljust(10 ** 9)", {}, "ljust() would build 1,000,000,000 characters"),
        ("('y' * 99999).replace('y', 'z' * 99999)", {}, "replace() would build"),
        ("f'{name:>999999999}'", {"name": "a"}, "format width or precision over 1,000,000"),
        ("'%0999999999d' % 1", {}, "format width or precision over 1,000,000"),
        ("10 ** 4000000", {}, "a power of more than 4300 digits"),
        ("(10 ** 2500) * (10 ** 2500)", {}, "a product of more than 4300 digits"),
    ],
)
def test_an_expression_is_refused_before_it_builds_a_huge_text_or_number(
    source: str, record: dict, reason: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=re.escape(reason)):
        Expression(source)(record)
    assert time.monotonic() - started < 0.5


def test_passing_on_a_long_text_of_the_record_is_no_growth() -> None:
    name = " " + "n" * 2_000_000
    assert Expression("name.strip()")({"name": name}) == name.strip()
    assert Expression("record['name'][1:]")({"name": name}) == name[1:]


def test_an_expression_stops_when_its_time_on_one_record_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 3,000 replacements in 100,000-character texts: a few tenths of a second unbounded.
    slow = Expression("[len(x.replace('a', 'bb')) for x in [text] * 3000]")
    monkeypatch.setattr(expressions, "SECONDS_PER_RECORD", 0.02)
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=r"took more than 0\.02s on one record"):
        slow({"text": "a" * 99_999})
    assert time.monotonic() - started < 0.2
    # The next record gets its own budget.
    assert Expression("len(text)")({"text": "abc"}) == 3


def test_markdown_turns_html_into_markdown_and_keeps_every_line_break_and_word() -> None:
    from connector_kit.expressions import markdown

    assert markdown(None) is None
    # Plain text: line breaks become hard breaks, Markdown's own characters are escaped.
    assert markdown("Called Anna\nSent *catalog* & price_list") == (
        "Called Anna\\\nSent \\*catalog\\* & price\\_list"
    )
    assert markdown("报价已发送\r\n客户回复: 考虑中") == "报价已发送\\\n客户回复: 考虑中"
    # HTML: tags become Markdown, entities text, <br> and source line breaks hard breaks.
    html = "<p>Meeting at <b>Canton Fair</b> &amp; dinner</p><p>Next: sample<br>2 pcs\nby DHL</p>"
    assert markdown(html) == (
        "Meeting at **Canton Fair** & dinner\n\nNext: sample\\\n2 pcs\\\nby DHL"
    )
    assert markdown("<ul><li>one</li><li>two</li></ul>") == "* one\n* two"
    assert markdown("a < b and c > d") == "a < b and c > d"  # not HTML: kept as it is


def test_markdown_is_available_in_mapping_expressions() -> None:
    assert Expression("markdown(content)")({"content": "<i>hi</i>\nthere"}) == "*hi*\\\nthere"
