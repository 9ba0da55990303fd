"""Fields computed by expressions: the mappings the Meltano project configures for OKKI records."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector_kit.expressions import Expression
from connector_kit.http import ConfigError
from crm_sandbox.twenty.schema import object_to_api, standard_objects
from target_twenty.mapping import StreamMapping
from target_twenty.metadata import Workspace
from target_twenty.values import BadValue
from tests.target_twenty.conftest import TargetRunner

OKKI_SCHEMAS = Path(__file__).parents[2] / "tap_okki" / "schemas"
KEYS = {
    "companies": ["company_id"],
    "contacts": ["customer_id"],
    "opportunities": ["opportunity_id"],
}
MICROS = "int(amount * 1000000) if amount is not None else None"
STAGE = "{2: 'CUSTOMER', 3: 'NEW'}.get(stage_type, 'PROPOSAL')"
CLOSE_DATE = "account_date + 'T00:00:00+08:00' if account_date else None"
PHONE = "tel_list[0][1] if tel_list else None"
CALLING_CODE = "'+' + tel_list[0][0] if tel_list else None"
EMPLOYEES = "{1: 10, 2: 50, 3: 100, 4: 500, 5: 1000, 6: 5000}.get(scale_id)"


def okki_mappings() -> dict[str, Any]:
    return {
        "companies": {"fields": {"name": "name", "employees": {"expression": EMPLOYEES}}},
        "contacts": {
            "object": "people",
            "fields": {
                "name.firstName": "name",
                "emails.primaryEmail": "email",
                "phones.primaryPhoneNumber": {"expression": PHONE},
                "phones.primaryPhoneCallingCode": {"expression": CALLING_CODE},
            },
            "references": {"companyId": {"stream": "companies", "field": "company_id"}},
        },
        "opportunities": {
            "fields": {
                "name": "name",
                "amount.amountMicros": {"expression": MICROS},
                "amount.currencyCode": "currency",
                "stage": {"expression": STAGE},
                "closeDate": {"expression": CLOSE_DATE},
            },
            "references": {
                "companyId": {"stream": "companies", "field": "company_id"},
                "pointOfContactId": {"stream": "contacts", "field": "customer_id"},
            },
        },
    }


def okki_schema(stream: str) -> dict[str, Any]:
    return json.loads((OKKI_SCHEMAS / f"{stream}.json").read_text())


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    objects = {o.singular: o for o in standard_objects()}
    return Workspace.from_api([object_to_api(o, objects) for o in objects.values()])


def mapping(
    workspace: Workspace,
    stream: str,
    mappings: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
) -> StreamMapping:
    mappings = mappings or okki_mappings()
    configured = StreamMapping.from_settings(stream, mappings[stream], workspace, mappings)
    schema = properties if properties is not None else okki_schema(stream)["properties"]
    return configured.for_schema(schema, KEYS[stream])


# Mapping, record by record ----------------------------------------------------------------------


def test_opportunity_amount_stage_and_close_date_are_computed(workspace: Workspace) -> None:
    opportunities = mapping(workspace, "opportunities")
    won = {
        "opportunity_id": 1,
        "name": "Pumps",
        "amount": Decimal("12000.35"),  # the SDK reads numbers with a fraction as Decimal
        "currency": "USD",
        "stage": 7,  # OKKI's stage id: not what Twenty's `stage` gets
        "stage_type": 2,
        "account_date": dt.date(2026, 3, 1),  # the SDK parsed the tap's "2026-03-01"
    }

    assert opportunities.payload(won) == {
        "name": "Pumps",
        "amount": {"amountMicros": 12_000_350_000, "currencyCode": "USD"},
        "stage": "CUSTOMER",
        "closeDate": "2026-03-01T00:00:00+08:00",
    }
    lost = {**won, "stage_type": 3}
    assert opportunities.payload(lost)["stage"] == "NEW"
    open_ = {**won, "amount": None, "stage_type": 1, "account_date": None}
    assert opportunities.payload(open_) == {
        "name": "Pumps",
        "amount": {"amountMicros": None, "currencyCode": "USD"},
        "stage": "PROPOSAL",
        "closeDate": None,
    }
    assert opportunities.payload({**won, "stage_type": None})["stage"] == "PROPOSAL"


def test_contact_phone_is_split_into_number_and_calling_code(workspace: Workspace) -> None:
    contacts = mapping(workspace, "contacts")
    record = {
        "customer_id": 5,
        "company_id": 1,
        "name": "Li Lei",
        "email": " Li.Lei@Example.COM ",
        "tel_list": [["86", "13800138000"], ["86", "10086"]],
    }

    assert contacts.payload(record) == {
        "name": {"firstName": "Li Lei"},
        "emails": {"primaryEmail": "li.lei@example.com"},
        "phones": {"primaryPhoneNumber": "13800138000", "primaryPhoneCallingCode": "+86"},
    }
    for no_phone in ([], None):
        assert contacts.payload({**record, "tel_list": no_phone})["phones"] == {
            "primaryPhoneNumber": None,
            "primaryPhoneCallingCode": None,
        }


@pytest.mark.parametrize(("scale_id", "employees"), [(1, 10), (3, 100), (6, 5000), (None, None)])
def test_company_size_class_becomes_a_number_of_employees(
    workspace: Workspace, scale_id: int | None, employees: int | None
) -> None:
    companies = mapping(workspace, "companies")
    record = {"company_id": 1, "name": "Acme", "scale_id": scale_id}

    assert companies.payload(record) == {"name": "Acme", "employees": employees}


def test_expressions_see_dates_and_date_times_as_iso_text(workspace: Workspace) -> None:
    mappings = {
        "opportunities": {
            "fields": {
                "name": {"expression": "account_date + ' / ' + record['create_time']"},
            }
        }
    }
    opportunities = mapping(workspace, "opportunities", mappings)
    record = {
        "opportunity_id": 1,
        "account_date": dt.date(2026, 3, 1),
        "create_time": dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.timezone.utc),
    }

    assert opportunities.payload(record) == {"name": "2026-03-01 / 2026-02-01T09:30:00+00:00"}
    assert record["account_date"] == dt.date(2026, 3, 1)  # the record itself is left as it is


def test_computed_values_are_canonicalised_like_copied_ones(workspace: Workspace) -> None:
    mappings = {
        "companies": {
            "fields": {"domainName.primaryLinkUrl": {"expression": "'HTTPS://' + homepage + '/'"}}
        },
        "contacts": {
            "object": "people",
            "fields": {"emails": {"expression": "{'primaryEmail': email or None}"}},
        },
    }
    companies = mapping(workspace, "companies", mappings)
    contacts = mapping(workspace, "contacts", mappings)

    assert companies.payload({"homepage": "WWW.Acme.com"}) == {
        "domainName": {"primaryLinkUrl": "https://www.acme.com"}
    }
    assert contacts.payload({"email": " A@B.C "}) == {"emails": {"primaryEmail": "a@b.c"}}
    assert contacts.payload({"email": ""}) == {"emails": {"primaryEmail": None}}


def test_an_expression_that_fails_on_a_record_raises_naming_field_and_cause(
    workspace: Workspace,
) -> None:
    contacts = mapping(workspace, "contacts")

    with pytest.raises(BadValue) as failed:
        contacts.payload({"tel_list": [["86"]], "name": "x", "email": "x@y.z"})
    assert str(failed.value) == (
        f"person.phones.primaryPhoneNumber: expression {PHONE!r} failed: list index out of range"
    )


def test_a_computed_value_twenty_would_refuse_raises_like_a_copied_one(
    workspace: Workspace,
) -> None:
    mappings = okki_mappings()
    mappings["opportunities"]["fields"]["stage"] = {
        "expression": "'WON' if stage_type == 2 else 'NEW'"
    }
    opportunities = mapping(workspace, "opportunities", mappings)
    companies = mapping(
        workspace, "companies", {"companies": {"fields": {"employees": {"expression": "'many'"}}}}
    )

    with pytest.raises(BadValue, match=r"opportunity\.stage expects one of NEW, .*, got 'WON'"):
        opportunities.payload({"stage_type": 2})
    with pytest.raises(BadValue, match=r"company\.employees expects a number, got 'many'"):
        companies.payload({})


def test_a_computed_field_is_left_alone_when_a_property_it_reads_is_absent(
    workspace: Workspace,
) -> None:
    mappings = okki_mappings()
    mappings["opportunities"]["fields"]["amount.currencyCode"] = {"expression": "'CNY'"}
    opportunities = mapping(workspace, "opportunities", mappings)

    # An update carrying only the name: nothing it does not carry is touched (or nulled)...
    assert opportunities.payload({"opportunity_id": 1, "name": "Pumps"}) == {
        "name": "Pumps",
        "amount": {"currencyCode": "CNY"},  # ... but a constant is always written
    }


# Settings and schemas -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"expression": "int(amount *"},
            "Setting 'mappings.opportunities.fields' (stream 'opportunities'), field "
            "'amount.amountMicros': cannot parse expression 'int(amount *'",
        ),
        (
            {"expression": "amount = 1"},  # a statement, not an expression
            "field 'amount.amountMicros': cannot parse expression 'amount = 1'",
        ),
        ({"expression": 12}, "expression of 'amount.amountMicros' must be a text, got 12"),
        ({"expr": "amount"}, "'amount.amountMicros' must name a source property or be"),
    ],
)
def test_an_expression_that_does_not_parse_is_a_setting_error_naming_stream_and_field(
    workspace: Workspace, spec: Any, message: str
) -> None:
    mappings = okki_mappings()
    mappings["opportunities"]["fields"]["amount.amountMicros"] = spec

    with pytest.raises(ConfigError) as error:
        StreamMapping.from_settings("opportunities", mappings["opportunities"], workspace, mappings)
    assert message in str(error.value)


def test_a_property_an_expression_reads_must_be_in_the_schema(workspace: Workspace) -> None:
    properties = okki_schema("opportunities")["properties"]
    del properties["stage_type"]

    with pytest.raises(ConfigError) as error:
        mapping(workspace, "opportunities", properties=properties)
    assert str(error.value) == (
        "Stream 'opportunities' has no property 'stage_type', which setting "
        "'mappings.opportunities.fields' reads for Twenty field 'stage'."
    )


def test_names_bound_in_the_expression_and_functions_are_not_properties() -> None:
    expression = Expression("[int(n) for _, n in tel_list if n] + [record.get('x'), len(name)]")
    assert expression.inputs == {"tel_list", "name"}


def test_properties_only_expressions_read_are_no_unknown_properties(workspace: Workspace) -> None:
    # OKKI's `tel_list`, `scale_id`, `stage_type`, `account_date` are no Twenty fields, and
    # `stage` (an OKKI stage id) is not what Twenty's `stage` gets: none is an error.
    for stream in ("companies", "contacts", "opportunities"):
        assert mapping(workspace, stream).fields


# End to end: the target as a process against the sandbox ---------------------------------------


def okki_lines(records: list[tuple[str, dict[str, Any]]]) -> list[str]:
    messages: list[dict[str, Any]] = [
        {"type": "SCHEMA", "stream": s, "schema": okki_schema(s), "key_properties": KEYS[s]}
        for s in ("companies", "contacts", "opportunities")
    ]
    messages += [{"type": "RECORD", "stream": s, "record": r} for s, r in records]
    messages.append({"type": "STATE", "value": {"done": True}})
    return [json.dumps(m) for m in messages]


def test_okki_records_load_with_computed_values_and_records_they_fail_on_are_dead_lettered(
    target: TargetRunner,
) -> None:
    def opportunity(i: int, **values: Any) -> dict[str, Any]:
        return {"opportunity_id": i, "name": f"Deal {i}", "company_id": 1, "customer_id": 11,
                "amount": None, "currency": "USD", "stage": 99, "stage_type": 1,
                "account_date": None, **values}  # fmt: skip

    records = [
        ("companies", {"company_id": 1, "name": "Acme", "scale_id": 4}),
        ("companies", {"company_id": 2, "name": "Tiny", "scale_id": None}),
        ("contacts", {"customer_id": 11, "company_id": 1, "name": "Li Lei",
                      "email": "li.lei@acme.cn", "tel_list": [["86", "13800138000"]]}),
        ("contacts", {"customer_id": 12, "company_id": 2, "name": "Han Meimei",
                      "email": "han@tiny.cn", "tel_list": []}),
        ("contacts", {"customer_id": 13, "company_id": 2, "name": "No number",
                      "email": "broken@tiny.cn", "tel_list": [["86"]]}),
        ("contacts", {"customer_id": 14, "company_id": 2, "name": "Plus twice",
                      "email": "plus@tiny.cn", "tel_list": [["+86", "13900000000"]]}),
        ("opportunities", opportunity(21, amount=12000.35, stage_type=2,
                                      account_date="2026-03-01")),
        ("opportunities", opportunity(22, stage_type=3)),
        ("opportunities", opportunity(23, customer_id=None)),
    ]  # fmt: skip

    run = target.run(okki_lines(records), target.config(mappings=okki_mappings()))

    assert run.returncode != 0  # two records dead-lettered, none tolerated
    assert "2 record(s) were dead-lettered" in run.stderr
    held = target.twenty.records()
    companies = {c["name"]: c for c in held["companies"]}
    assert {n: c["employees"] for n, c in companies.items()} == {"Acme": 500, "Tiny": None}
    people = {p["name"]["firstName"]: p for p in held["people"]}
    assert set(people) == {"Li Lei", "Han Meimei"}
    assert people["Li Lei"]["phones"]["primaryPhoneNumber"] == "13800138000"
    assert people["Li Lei"]["phones"]["primaryPhoneCallingCode"] == "+86"
    assert not people["Han Meimei"]["phones"]["primaryPhoneNumber"]
    deals = {o["name"]: o for o in held["opportunities"]}
    assert set(deals) == {"Deal 21", "Deal 22", "Deal 23"}
    assert deals["Deal 21"]["amount"] == {"amountMicros": 12_000_350_000, "currencyCode": "USD"}
    assert deals["Deal 21"]["stage"] == "CUSTOMER"
    assert dt.datetime.fromisoformat(deals["Deal 21"]["closeDate"]) == dt.datetime(
        2026, 2, 28, 16, tzinfo=dt.timezone.utc
    )
    assert deals["Deal 21"]["pointOfContactId"] == people["Li Lei"]["id"]
    assert (deals["Deal 22"]["stage"], deals["Deal 23"]["stage"]) == ("NEW", "PROPOSAL")
    assert deals["Deal 22"]["amount"]["amountMicros"] is None
    assert deals["Deal 22"]["closeDate"] is None
    letters = {(d["stream"], d["key"]): d for d in target.dead_letters()}
    assert set(letters) == {("contacts", 13), ("contacts", 14)}
    assert letters["contacts", 13]["reason"] == (
        f"person.phones.primaryPhoneNumber: expression {PHONE!r} failed: list index out of range"
    )
    assert letters["contacts", 14]["reason"].startswith("Twenty refused it")  # "++86"
    assert "primaryPhoneCallingCode" in letters["contacts", 14]["reason"]
    assert run.states == [{"done": True}]


def test_an_expression_that_does_not_parse_stops_the_run_before_anything_is_written(
    target: TargetRunner,
) -> None:
    mappings = okki_mappings()
    mappings["contacts"]["fields"]["phones.primaryPhoneNumber"] = {"expression": "tel_list[0]["}

    run = target.run(okki_lines([]), target.config(mappings=mappings))

    assert run.returncode != 0
    assert (
        "Setting 'mappings.contacts.fields' (stream 'contacts'), field "
        "'phones.primaryPhoneNumber': cannot parse expression 'tel_list[0]['"
    ) in run.stderr
    assert not [r for r in target.twenty.requests() if r["method"] != "GET"]


def test_nested_sub_fields_mean_the_same_as_dotted_ones() -> None:
    """Meltano turns dotted keys in meltano.yml into nested objects; both spellings work."""
    from target_twenty.mapping import _flat_fields

    nested = {
        "domainName": {"primaryLinkUrl": "homepage"},
        "amount": {"amountMicros": {"expression": "int(amount * 1000000)"}},
        "name": "name",
    }
    assert _flat_fields(nested) == {
        "domainName.primaryLinkUrl": "homepage",
        "amount.amountMicros": {"expression": "int(amount * 1000000)"},
        "name": "name",
    }
