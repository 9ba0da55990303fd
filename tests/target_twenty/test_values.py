"""Values as Twenty compares and accepts them, and stable ids (no API involved)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector_kit.datetimes import default_timezone
from target_twenty.client import encode_batch
from target_twenty.ids import key_text, stable_id
from target_twenty.metadata import TwentyField
from target_twenty.values import BadValue, canonical_domain, canonical_email, convert, convert_sub

DOMAIN = TwentyField("domainName", "LINKS", unique=True)
CURRENCY = TwentyField("amount", "CURRENCY")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("HTTPS://Acme.com/", "https://acme.com"),
        ("acme.com", "https://acme.com"),
        ("http://ACME.com/About/", "https://acme.com/About"),
        ("  www.Acme.com  ", "https://www.acme.com"),
        ("", ""),
    ],
)
def test_domains_become_https_with_a_lower_case_host_and_no_trailing_slash(
    written: str, canonical: str
) -> None:
    assert canonical_domain(written) == canonical
    assert convert_sub(DOMAIN, "primaryLinkUrl", written, "company.domainName") == canonical


def test_emails_are_trimmed_and_lower_cased_like_the_server_compares_them() -> None:
    assert canonical_email(" Bob.Smith@Example.COM ") == "bob.smith@example.com"
    emails = TwentyField("emails", "EMAILS", unique=True)
    assert convert(emails, {"primaryEmail": "A@B.C", "additionalEmails": ["X@Y.Z"]}, "p") == {
        "primaryEmail": "a@b.c",
        "additionalEmails": ["x@y.z"],
    }


def test_numbers_accept_decimals_and_numeric_text_and_refuse_other_text() -> None:
    number = TwentyField("employees", "NUMBER")
    assert convert(number, Decimal("120"), "c.employees") == 120
    assert convert(number, " 12.5 ", "c.employees") == 12.5
    with pytest.raises(BadValue, match=r"c\.employees expects a number, got 'many'"):
        convert(number, "many", "c.employees")
    with pytest.raises(BadValue):
        convert(number, True, "c.employees")
    for not_finite in (Decimal("NaN"), float("inf"), Decimal("-Infinity")):  # not JSON
        with pytest.raises(BadValue, match=r"c\.employees expects a finite number"):
            convert(number, not_finite, "c.employees")


def test_raw_json_values_refuse_nan_and_infinity() -> None:
    extra = TwentyField("extra", "RAW_JSON")
    assert convert(extra, {"score": Decimal("1.5"), "tags": ["a"]}, "c.extra") == {
        "score": 1.5,
        "tags": ["a"],
    }
    with pytest.raises(BadValue, match=r"c\.extra holds NaN or an infinity"):
        convert(extra, {"score": float("nan")}, "c.extra")


def test_batches_encode_as_json_whatever_text_the_records_hold() -> None:
    records = [{"name": "小满 Acme", "note": "lone \ud800 surrogate"}, {"n": 1.5}]
    assert json.loads(encode_batch(records)) == records  # the surrogate goes as an escape
    assert encode_batch(records[1:]) == b'[{"n":1.5}]'


def test_amount_micros_are_integers_without_float_noise() -> None:
    assert (
        convert_sub(CURRENCY, "amountMicros", Decimal("1234.5") * 10**6, "o.amount") == 1234500000
    )
    assert convert_sub(CURRENCY, "amountMicros", 0.1 * 3 * 1e6, "o.amount") == 300000


def test_select_values_must_be_options() -> None:
    stage = TwentyField("stage", "SELECT", options=("NEW", "CUSTOMER"))
    assert convert(stage, "NEW", "o.stage") == "NEW"
    with pytest.raises(BadValue, match="expects one of NEW, CUSTOMER, got 'WON'"):
        convert(stage, "WON", "o.stage")


def test_date_times_without_zone_are_refused_unless_default_timezone_says_where() -> None:
    close = TwentyField("closeDate", "DATE_TIME")
    aware = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    assert convert(close, aware, "o") == "2026-03-01T09:30:00+00:00"
    for naive in (dt.datetime(2026, 3, 1, 9, 30), "2026-03-01T09:30:00", dt.date(2026, 3, 1)):
        with pytest.raises(BadValue, match=r"o\.closeDate: .* has no time zone; set 'default_"):
            convert(close, naive, "o.closeDate")
    shanghai = default_timezone("Asia/Shanghai")
    assert convert(close, "2026-03-01T09:30:00", "o", shanghai) == "2026-03-01T09:30:00+08:00"
    assert convert(close, dt.date(2026, 3, 1), "o", shanghai) == "2026-03-01T00:00:00+08:00"
    with pytest.raises(BadValue):
        convert(close, "next week", "o")


def test_composites_refuse_unknown_sub_fields() -> None:
    with pytest.raises(BadValue, match="has no sub-field 'amount'"):
        convert(CURRENCY, {"amount": 12}, "o.amount")


def test_stable_ids_depend_on_namespace_stream_and_key_and_ignore_key_types() -> None:
    assert key_text([123]) == key_text(["123"])
    one = stable_id("", "companies", key_text([1]))
    assert one == stable_id("", "companies", key_text([1]))
    assert one != stable_id("", "people", key_text([1]))
    assert one != stable_id("other-tap", "companies", key_text([1]))


def test_stable_ids_never_change_between_versions() -> None:
    # Ids already in users' Twenty workspaces: a change here would duplicate every record.
    assert key_text([1, 'Ä"x']) == '["1", "Ä\\"x"]'
    assert (
        stable_id("", "companies", key_text([1, 'Ä"x'])) == "41b9e036-5014-57a1-a58f-af1f1e9c3269"
    )


@given(st.text(), st.text(), st.text())
def test_stable_id_is_uuid5_of_namespace_stream_and_key(
    namespace: str, stream: str, key: str
) -> None:
    name = f"{namespace}\x1f{stream}\x1f{key}"
    expected = uuid.uuid5(uuid.UUID("0c7c5d2e-6f5b-5e55-9a43-7477656e7479"), name)
    assert stable_id.__wrapped__(namespace, stream, key) == str(expected)


@given(
    st.lists(
        st.one_of(st.text(), st.integers(), st.decimals(allow_nan=False, allow_infinity=False)),
        max_size=3,
    )
)
def test_key_text_is_the_json_list_of_the_values_as_text(values: list) -> None:
    from connector_kit.serialize import jsonable

    assert key_text(values) == json.dumps([str(jsonable(v)) for v in values], ensure_ascii=False)
