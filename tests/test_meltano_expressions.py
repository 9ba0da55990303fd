"""The expressions in meltano.yml that read OKKI's open fields (`tel_list`, `tel`, `tag`: any
shape, docs/api/okki.md §10) give a usable value or none, for every shape, and never fail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from connector_kit.expressions import Expression
from crm_sandbox.okki import OkkiSandbox
from crm_sandbox.runtime import Knobs

ROOT = Path(__file__).resolve().parent.parent
CALLING_CODE = re.compile(r"\+[0-9]{1,4}")  # what Twenty accepts


def loader_config(name: str) -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return next(p for p in project["plugins"]["loaders"] if p["name"] == name)["config"]


PEOPLE = loader_config("target-twenty")["mappings"]["contacts"]["fields"]
CUSTOMERS = loader_config("target-jiandaoyun")["forms"]["companies"]["fields"]
NUMBER = Expression(PEOPLE["phones.primaryPhoneNumber"]["expression"])
CODE = Expression(PEOPLE["phones.primaryPhoneCallingCode"]["expression"])
TEL = Expression(CUSTOMERS["tel"]["expression"])
TAG = Expression(CUSTOMERS["tag"]["expression"])


@pytest.mark.parametrize(
    ("tel_list", "number", "code"),
    [
        ([["49", "1701234567"], ["1", "555"]], "1701234567", "+49"),  # documented
        ([{"tel_area_code": "49", "tel": "1701234567"}], "1701234567", "+49"),
        (["+49 1701234567"], "+49 1701234567", None),
        ("+49 1701234567", "+49 1701234567", None),
        ([["+86", "13800138000"]], "13800138000", "+86"),
        ([["中国", "13800138000"]], "13800138000", None),  # no calling code Twenty accepts
        ([["", ""]], None, None),
        ([], None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_people_phones_read_every_shape_of_tel_list(
    tel_list: Any, number: str | None, code: str | None
) -> None:
    assert NUMBER({"tel_list": tel_list}) == number
    assert CODE({"tel_list": tel_list}) == code


@pytest.mark.parametrize(
    ("tel", "expected"),
    [
        (["49", "301234567"], "301234567"),  # documented
        ({"tel_area_code": "49", "tel": "301234567"}, "301234567"),  # the vendor's example
        ("+49 301234567", "+49 301234567"),
        (["", ""], None),
        ("", None),
        (None, None),
    ],
)
def test_the_customer_forms_phone_reads_every_shape_of_tel(tel: Any, expected: str | None) -> None:
    assert TEL({"tel": tel}) == expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ([{"tag_id": 101, "tag_name": "VIP"}, {"tag_id": 102, "tag_name": "OEM"}], ["VIP", "OEM"]),
        (["VIP", "OEM"], ["VIP", "OEM"]),
        ("VIP,OEM", ["VIP", "OEM"]),
        ([101, 102], ["101", "102"]),  # ids only: kept as text rather than dropped
        ({"tag_id": 101, "tag_name": "VIP"}, ["VIP"]),
        ([], None),
        ("", None),
        (None, None),
    ],
)
def test_the_customer_forms_tags_read_every_shape_of_tag(tag: Any, expected: Any) -> None:
    assert TAG({"tag": tag}) == expected


def test_a_record_without_the_field_gives_no_value() -> None:
    """Deleted companies come as list rows, without `tel` or `tag`."""
    assert [NUMBER({}), CODE({}), TEL({}), TAG({})] == [None] * 4


def test_every_shape_the_okki_sandbox_serves_gives_a_usable_value() -> None:
    sandbox = OkkiSandbox(seed=3, companies=300, knobs=Knobs(extra={"shape_variety": 0.6}))
    companies = sandbox.records()["companies"]
    for company in companies:
        assert_usable(company)
        for person in company["customers"]:
            assert_usable(person)
    people = [p for c in companies for p in c["customers"]]
    assert sum(NUMBER(p) is not None for p in people) > len(people) / 2
    assert sum(TAG(c) is not None for c in companies) > len(companies) / 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
named = st.dictionaries(st.sampled_from(["tel_area_code", "tel", "tag_name", "name"]), json_values)


@settings(max_examples=500, deadline=None)
@given(value=json_values | st.lists(named, max_size=3) | named | st.lists(st.lists(json_values)))
def test_any_json_in_those_fields_gives_a_usable_value_and_never_fails(value: Any) -> None:
    assert_usable({"tel_list": value, "tel": value, "tag": value})


def assert_usable(record: dict[str, Any]) -> None:
    if "tel_list" in record:
        assert NUMBER(record) is None or isinstance(NUMBER(record), str)
        code = CODE(record)
        assert code is None or CALLING_CODE.fullmatch(code)
    if "tel" in record:
        assert TEL(record) is None or isinstance(TEL(record), str)
    if "tag" in record:
        tags = TAG(record)
        assert tags is None or (tags and all(isinstance(t, str) and t for t in tags))
