"""Value conversion by widget type: exact or refused, never something the API would blank.

The property tests check every converter against the sandbox's own validity rules (the ones
that decide what Jiandaoyun silently saves as empty): whatever a converter returns is valid.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_sandbox.jiandaoyun.values import CHECKERS
from target_jiandaoyun.values import CONVERTERS, ValueRejected, convert

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Anything a Singer record can hold after the SDK read it (numbers arrive as Decimal).
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(),
    st.text(max_size=30),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat()),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["province", "city", "phone", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
# user and dept values must also name a member / department the sandbox knows.
SANDBOX_SPECIFIC = {"user", "dept", "usergroup", "deptgroup"}


@pytest.mark.parametrize("widget_type", sorted(set(CONVERTERS) - SANDBOX_SPECIFIC))
@given(value=json_values)
def test_a_converted_value_is_never_one_the_api_would_blank(widget_type: str, value) -> None:
    if value is None:
        return  # blanks never reach a converter: the field is left out
    try:
        out = convert(widget_type, value, SHANGHAI)
    except ValueRejected:
        return
    CHECKERS[widget_type](out)  # raises Wrong for a value the sandbox would save as empty


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_number_survives_exactly(number: float) -> None:
    assert convert("number", Decimal(repr(number))) == number


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_integers_stay_integers(number: int) -> None:
    out = convert("number", Decimal(number))
    assert out == number and isinstance(out, int)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "is not a number"),
        (True, "boolean"),
        (Decimal("NaN"), "finite"),
        (Decimal("0.12345678901234567890123"), "more digits"),
        (2**60, "too large"),
    ],
)
def test_numbers_that_cannot_be_stored_exactly_are_refused(value, reason: str) -> None:
    with pytest.raises(ValueRejected, match=reason):
        convert("number", value)


def test_numeric_text_is_a_number() -> None:
    assert convert("number", " 12.50 ") == 12.5
    assert convert("number", "7") == 7


@given(st.datetimes(timezones=st.timezones(), min_value=dt.datetime(1900, 1, 2)))
def test_an_aware_datetime_becomes_the_same_instant_in_utc(moment: dt.datetime) -> None:
    out = convert("datetime", moment.isoformat())
    assert out.endswith("Z")
    back = dt.datetime.fromisoformat(out)
    assert abs(back - moment) < dt.timedelta(milliseconds=1)
    CHECKERS["datetime"](out)


def test_a_naive_datetime_is_refused_without_default_timezone() -> None:
    with pytest.raises(ValueRejected, match="default_timezone"):
        convert("datetime", "2024-03-01T10:00:00")
    with pytest.raises(ValueRejected, match="default_timezone"):
        convert("datetime", "2024-03-01")


def test_a_naive_datetime_is_read_in_default_timezone() -> None:
    assert convert("datetime", "2024-03-01 10:00:00", SHANGHAI) == "2024-03-01T02:00:00.000Z"
    assert convert("datetime", "2024-03-01", SHANGHAI) == "2024-02-29T16:00:00.000Z"
    assert convert("datetime", "2024-03-01T10:00:00+08:00") == "2024-03-01T02:00:00.000Z"


@pytest.mark.parametrize("value", ["yesterday", "2024/03/01", 1709280000, Decimal("1.7e12")])
def test_text_that_is_no_datetime_and_epoch_numbers_are_refused(value) -> None:
    with pytest.raises(ValueRejected):
        convert("datetime", value, SHANGHAI)


def test_option_lists_must_be_lists_of_texts() -> None:
    assert convert("checkboxgroup", ["a", "b"]) == ["a", "b"]
    assert convert("combocheck", [1, "b"]) == ["1", "b"]
    for wrong in ("a", [["a"]], [None], [True], {"a": 1}):
        with pytest.raises(ValueRejected):
            convert("checkboxgroup", wrong)


def test_structured_widgets() -> None:
    assert convert("address", {"province": "浙江省", "city": "杭州市", "detail": None}) == {
        "province": "浙江省",
        "city": "杭州市",
    }
    with pytest.raises(ValueRejected, match="only"):
        convert("address", {"province": "浙江省", "street": "x"})
    assert convert("phone", "+86 138 0000 0000") == {"phone": "+86 138 0000 0000"}
    assert convert("phone", {"phone": "123", "verified": True}) == {"phone": "123"}
    with pytest.raises(ValueRejected, match="leading zeros"):
        convert("phone", 13800000000)
    assert convert("user", {"username": "zhangsan", "name": "张三"}) == "zhangsan"
    assert convert("dept", "2") == 2
    assert convert("dept", {"dept_no": 3}) == 3
    with pytest.raises(ValueRejected):
        convert("dept", "sales")


def test_text_takes_numbers_and_booleans_and_a_textarea_takes_json() -> None:
    assert convert("text", Decimal("12.50")) == "12.50"
    assert convert("text", False) == "false"
    assert (
        convert("textarea", {"a": [1, Decimal("2.5")], "b": "中"}) == '{"a": [1, 2.5], "b": "中"}'
    )
    with pytest.raises(ValueRejected):
        convert("text", {"a": 1})


def test_every_checker_of_the_sandbox_has_a_converter() -> None:
    assert set(CHECKERS) <= set(CONVERTERS)
