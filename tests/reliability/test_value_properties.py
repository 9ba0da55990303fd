"""Property-based tests of the value converters, beyond what the plugin tests already check.

Already elsewhere: tests/tap_okki/test_windows.py (window reading, not values),
tests/target_jiandaoyun/test_values.py (every converted value is one the API keeps; numbers
exact; aware datetimes keep their instant), tests/target_twenty/test_values.py (examples only).
Added here: OKKI time round trips and never-naive output, conforming twice changes nothing;
Twenty's canonical domains and emails are what the server stores (so upserts match) and stay
put when canonicalised again, composites survive the server's checks unchanged, amounts in
micros are exact, date-times are never naive; Jiandaoyun converters are idempotent and zone-less
datetimes are read in `default_timezone` or refused, never guessed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from connector_kit.datetimes import default_timezone
from crm_sandbox.twenty.schema import standard_objects
from crm_sandbox.twenty.values import check_value, normalise_url
from tap_okki.conform import conform
from tap_okki.times import format_okki_time, okki_date, okki_time_to_iso, parse_okki_time
from target_jiandaoyun.values import CONVERTERS, ValueRejected
from target_jiandaoyun.values import convert as jiandaoyun_convert
from target_twenty.metadata import TwentyField
from target_twenty.values import BadValue, canonical_domain, canonical_email, convert, convert_sub

# Zones without daylight saving since 1992 (OKKI's is Asia/Shanghai), where every wall-clock
# time names exactly one instant; and zones with it, for properties that hold anyway.
FIXED_ZONES = [ZoneInfo(name) for name in ("Asia/Shanghai", "UTC", "Asia/Kolkata", "Asia/Tokyo")]
ANY_ZONES = [*FIXED_ZONES, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
moments = st.datetimes(
    min_value=dt.datetime(1992, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.just(dt.timezone.utc),
).map(lambda m: m.replace(microsecond=0))


# OKKI times (tap_okki/times.py, conform.py) -------------------------------------------------------
@given(moment=moments, tz=st.sampled_from(FIXED_ZONES))
def test_an_okki_time_round_trips_to_the_same_instant(moment: dt.datetime, tz: ZoneInfo) -> None:
    text = format_okki_time(moment, tz)
    assert parse_okki_time(text, tz) == moment
    assert dt.datetime.fromisoformat(okki_time_to_iso(text, tz)) == moment


@given(
    moment=st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(9999, 1, 1)),
    tz=st.sampled_from(ANY_ZONES),
    as_okki=st.booleans(),
)
def test_okki_times_become_iso_text_with_an_offset_never_naive(
    moment: dt.datetime, tz: ZoneInfo, as_okki: bool
) -> None:
    text = moment.strftime("%Y-%m-%d %H:%M:%S") if as_okki else moment.isoformat()
    iso = okki_time_to_iso(text, tz)
    assert iso is not None
    parsed = dt.datetime.fromisoformat(iso)
    assert parsed.tzinfo is not None and parsed.utcoffset() is not None
    assert parsed.replace(tzinfo=None) == moment.replace(
        microsecond=0 if as_okki else moment.microsecond
    )
    assert okki_time_to_iso(iso, tz) == iso  # converting again changes nothing


@given(moment=moments, tz=st.sampled_from(ANY_ZONES), offset_minutes=st.integers(-14 * 60, 14 * 60))
def test_an_iso_time_with_an_offset_keeps_its_instant(
    moment: dt.datetime, tz: ZoneInfo, offset_minutes: int
) -> None:
    local = moment.astimezone(dt.timezone(dt.timedelta(minutes=offset_minutes)))
    assert dt.datetime.fromisoformat(okki_time_to_iso(local.isoformat(), tz)) == moment


@pytest.mark.parametrize("unset", ["", "   ", "1970-01-01 00:00:00", "0000-00-00 00:00:00", None])
def test_okkis_unset_times_and_dates_become_null(unset: str | None) -> None:
    assert okki_time_to_iso(unset, FIXED_ZONES[0]) is None
    assert okki_date(unset) is None


OKKI_SCHEMA = {
    "properties": {
        "company_id": {"type": "integer"},
        "update_time": {"type": ["string", "null"], "format": "date-time"},
        "birth": {"type": ["string", "null"], "format": "date"},
        "amount": {"type": ["number", "null"]},
        "user_id": {"type": ["array", "null"], "items": {"type": "integer"}},
        "customers": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {"order_time": {"type": ["string", "null"], "format": "date-time"}},
            },
        },
    }
}
okki_times = moments.map(lambda m: format_okki_time(m, FIXED_ZONES[0])) | st.sampled_from(
    ["", "1970-01-01 00:00:00", "0000-00-00 00:00:00"]
)
okki_records = st.fixed_dictionaries(
    {
        "company_id": st.integers(1, 10**14) | st.integers(1, 10**14).map(str),
        "update_time": okki_times,
        "birth": moments.map(lambda m: m.date().isoformat()) | st.just(""),
        "amount": st.decimals(places=2, min_value=-(10**9), max_value=10**9).map(str) | st.none(),
        "user_id": st.lists(st.integers(1, 10**9), max_size=4).map(
            lambda ids: ",".join(map(str, ids))
        )
        | st.lists(st.integers(1, 10**9), max_size=4),
        "customers": st.lists(st.fixed_dictionaries({"order_time": okki_times}), max_size=3),
    }
)


@given(record=okki_records)
def test_conforming_an_okki_record_gives_the_schema_types_and_conforming_again_changes_nothing(
    record: dict[str, Any],
) -> None:
    tz = FIXED_ZONES[0]
    once = conform(record, OKKI_SCHEMA, tz)
    assert isinstance(once["company_id"], int)
    assert all(isinstance(i, int) for i in once["user_id"])
    for value in [once["update_time"], *(c["order_time"] for c in once["customers"])]:
        assert value is None or dt.datetime.fromisoformat(value).tzinfo is not None
    assert conform(once, OKKI_SCHEMA, tz) == once


# Twenty composites and canonicalisation (target_twenty/values.py) ---------------------------------
SERVER = {obj.plural: obj for obj in standard_objects()}
DOMAIN = TwentyField("domainName", "LINKS", unique=True)
EMAILS = TwentyField("emails", "EMAILS", unique=True)
AMOUNT = TwentyField("amount", "CURRENCY")
ADDRESS = TwentyField("address", "ADDRESS")
NAME = TwentyField("name", "FULL_NAME")
CLOSE_DATE = TwentyField("closeDate", "DATE_TIME")

hosts = st.from_regex(r"(www\.)?[A-Za-z0-9-]{1,12}\.[A-Za-z]{2,6}", fullmatch=True)
urls = st.builds(
    lambda scheme, host, path, space: f"{space}{scheme}{host}{path}{space}",
    st.sampled_from(["", "http://", "https://", "HTTPS://"]),
    hosts,
    st.from_regex(r"(/[A-Za-z0-9._~-]{0,8}){0,3}/?", fullmatch=True),
    st.sampled_from(["", " ", "  \t"]),
)
emails = st.emails().map(lambda e: e.upper() if len(e) % 2 else e) | st.text(max_size=30)


def stored_by_server(plural: str, name: str, value: Any) -> Any:
    obj = SERVER[plural]
    return check_value(obj, obj.fields[name], value)


@given(url=urls | st.text(min_size=1, max_size=40).filter(str.strip))
def test_a_canonical_domain_is_what_twenty_stores_so_an_upsert_meets_the_existing_row(
    url: str,
) -> None:
    canonical = canonical_domain(url)
    assert canonical.startswith("https://") or canonical == ""  # "" for "/", "http://"…
    assert normalise_url(canonical) == canonical
    stored = stored_by_server(
        "companies", "domainName", convert(DOMAIN, {"primaryLinkUrl": url}, "c")
    )
    assert stored["primaryLinkUrl"] == canonical


@given(url=urls)
def test_canonicalising_a_domain_twice_changes_nothing(url: str) -> None:
    assert canonical_domain(canonical_domain(url)) == canonical_domain(url)


def test_whitespace_before_a_trailing_slash_is_kept_as_twenty_keeps_it() -> None:
    """Not idempotent there ("x.com/ /" → "https://x.com/ " → "https://x.com"), but the target
    sends what the server stores, so matching is unaffected."""
    assert canonical_domain("x.com/ /") == normalise_url(canonical_domain("x.com/ /"))


@given(email=emails)
def test_a_canonical_email_is_what_twenty_stores_and_canonicalising_twice_changes_nothing(
    email: str,
) -> None:
    canonical = canonical_email(email)
    assert canonical_email(canonical) == canonical
    stored = stored_by_server("people", "emails", convert(EMAILS, {"primaryEmail": email}, "p"))
    assert stored["primaryEmail"] == canonical


texts = st.text(max_size=20)
addresses = st.fixed_dictionaries(
    {},
    optional={
        "addressStreet1": texts,
        "addressCity": texts,
        "addressState": texts,
        "addressCountry": texts,
        "addressPostcode": texts,
        "addressLat": st.floats(-90, 90),
        "addressLng": st.decimals(-180, 180, places=6),
    },
)


@given(address=addresses, first=texts, last=texts)
def test_composites_pass_twentys_checks_unchanged(address: dict, first: str, last: str) -> None:
    sent = convert(ADDRESS, address, "company.address")
    stored = stored_by_server("companies", "address", sent)
    assert {k: stored[k] for k in sent} == sent
    name = convert(NAME, {"firstName": first, "lastName": last}, "person.name")
    assert stored_by_server("people", "name", name) == {"firstName": first, "lastName": last}


@given(
    amount=st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False),
    code=st.sampled_from(["USD", "CNY", "EUR"]),
)
def test_an_amount_becomes_exact_micros_that_twenty_stores_unchanged(
    amount: Decimal, code: str
) -> None:
    micros = convert_sub(AMOUNT, "amountMicros", amount * 10**6, "o.amount")
    assert isinstance(micros, int) and Decimal(micros) == amount * 10**6
    sent = {"amountMicros": micros, "currencyCode": code}
    assert stored_by_server("opportunities", "amount", sent) == sent


@given(sub=st.text(min_size=1, max_size=12).filter(lambda s: s not in ADDRESS.subfields))
def test_an_unknown_sub_field_is_refused_naming_it(sub: str) -> None:
    with pytest.raises(BadValue, match="has no sub-field"):
        convert(ADDRESS, {sub: "x"}, "company.address")


@given(
    moment=st.datetimes(timezones=st.none() | st.timezones(), min_value=dt.datetime(1900, 1, 2)),
    as_text=st.booleans(),
)
def test_twenty_date_times_are_never_naive_and_aware_ones_keep_their_instant(
    moment: dt.datetime, as_text: bool
) -> None:
    value = moment.isoformat() if as_text else moment
    if moment.utcoffset() is None:  # zone-less: refused, or read in default_timezone
        with pytest.raises(BadValue, match="default_timezone"):
            convert(CLOSE_DATE, value, "o.closeDate")
        out = convert(CLOSE_DATE, value, "o.closeDate", default_timezone("UTC"))
        assert dt.datetime.fromisoformat(out) == moment.replace(tzinfo=dt.timezone.utc)
        return
    parsed = dt.datetime.fromisoformat(convert(CLOSE_DATE, value, "o.closeDate"))
    assert parsed.utcoffset() is not None
    # (Compared in UTC: Python never finds a time in a DST fold equal to one in another zone.)
    assert parsed.astimezone(dt.timezone.utc) == moment.astimezone(dt.timezone.utc)


# Jiandaoyun widget values (target_jiandaoyun/values.py) -------------------------------------------
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.text(max_size=20),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["province", "city", "detail", "phone"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)
SANDBOX_ONLY = {"user", "dept", "usergroup", "deptgroup"}  # values name members the form knows


@pytest.mark.parametrize("widget", sorted(set(CONVERTERS) - SANDBOX_ONLY))
@settings(max_examples=40)  # per widget type: 15 types
@given(value=values)
def test_converting_a_converted_widget_value_again_changes_nothing(widget: str, value: Any) -> None:
    try:
        once = jiandaoyun_convert(widget, value, FIXED_ZONES[0])
    except ValueRejected:
        return
    assert jiandaoyun_convert(widget, once, FIXED_ZONES[0]) == once


@given(
    local=st.datetimes(min_value=dt.datetime(1992, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    tz=st.sampled_from(FIXED_ZONES),
    date_only=st.booleans(),
)
def test_a_zoneless_datetime_is_read_in_default_timezone_and_refused_without_one(
    local: dt.datetime, tz: ZoneInfo, date_only: bool
) -> None:
    local = local.replace(microsecond=local.microsecond // 1000 * 1000)
    if date_only:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    text = local.date().isoformat() if date_only else local.isoformat()
    out = jiandaoyun_convert("datetime", text, tz)
    assert out.endswith("Z")
    assert dt.datetime.fromisoformat(out) == local.replace(tzinfo=tz)
    with pytest.raises(ValueRejected, match="default_timezone"):
        jiandaoyun_convert("datetime", text)


@given(moment=st.datetimes(timezones=st.timezones(), min_value=dt.datetime(1900, 1, 2)))
def test_a_datetime_with_a_zone_ignores_default_timezone(moment: dt.datetime) -> None:
    assume(moment.utcoffset() is not None)
    assert jiandaoyun_convert("datetime", moment.isoformat(), FIXED_ZONES[0]) == jiandaoyun_convert(
        "datetime", moment.isoformat()
    )
