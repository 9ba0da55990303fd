"""Deterministic Singer input for target-twenty tests: companies, their people, opportunities.

Values are deliberately untidy the way real sources are: domains with upper case, a scheme or a
trailing slash, emails with spaces and capitals, and people that name their company's integer
key as a string.
"""

from __future__ import annotations

import json
from typing import Any

STAGES = ("NEW", "SCREENING", "MEETING", "PROPOSAL", "CUSTOMER")

SCHEMAS: dict[str, dict[str, Any]] = {
    "companies": {
        "type": "object",
        "properties": {
            "company_id": {"type": "integer"},
            "name": {"type": "string"},
            "website": {"type": ["string", "null"]},
            "employees": {"type": ["integer", "null"]},
            "city": {"type": ["string", "null"]},
        },
    },
    "people": {
        "type": "object",
        "properties": {
            "contact_id": {"type": "string"},
            "company_id": {"type": ["string", "null"]},
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "email": {"type": "string"},
            "title": {"type": ["string", "null"]},
        },
    },
    "opportunities": {
        "type": "object",
        "properties": {
            "opp_id": {"type": "integer"},
            "company_id": {"type": "integer"},
            "contact_id": {"type": ["string", "null"]},
            "name": {"type": "string"},
            "amount_micros": {"type": ["integer", "string"]},
            "currency": {"type": "string"},
            "stage": {"type": "string"},
            "close_date": {"type": "string", "format": "date-time"},
        },
    },
}
KEYS = {"companies": ["company_id"], "people": ["contact_id"], "opportunities": ["opp_id"]}


def mappings() -> dict[str, Any]:
    return {
        "companies": {
            "fields": {
                "name": "name",
                "domainName.primaryLinkUrl": "website",
                "employees": "employees",
                "address.addressCity": "city",
            }
        },
        "people": {
            "fields": {
                "name.firstName": "first_name",
                "name.lastName": "last_name",
                "emails.primaryEmail": "email",
                "jobTitle": "title",
            },
            "references": {"companyId": {"stream": "companies", "field": "company_id"}},
        },
        "opportunities": {
            "fields": {
                "name": "name",
                "amount.amountMicros": "amount_micros",
                "amount.currencyCode": "currency",
                "stage": "stage",
                "closeDate": "close_date",
            },
            "references": {
                "companyId": {"stream": "companies", "field": "company_id"},
                "pointOfContactId": {"stream": "people", "field": "contact_id"},
            },
        },
    }


def company(i: int) -> dict[str, Any]:
    website = f"HTTPS://Company{i}.Example.com/" if i % 3 == 0 else f"company{i}.example.com"
    return {
        "company_id": i,
        "name": f"Company {i}",
        "website": website,
        "employees": i * 7 % 5000,
        "city": f"City {i % 40}",
    }


def company_of_person(j: int, companies: int) -> int:
    return 1 + j % companies


def person(j: int, companies: int) -> dict[str, Any]:
    return {
        "contact_id": f"c-{j}",
        "company_id": str(company_of_person(j, companies)),  # a string: the key is an integer
        "first_name": f"First{j}",
        "last_name": f"Last{j}",
        "email": f"  Person.{j}@Example.COM ",
        "title": "CTO" if j % 2 else "Buyer",
    }


def opportunity(k: int, companies: int, people: int) -> dict[str, Any]:
    company_id = 1 + k % companies
    contact = company_id - 1  # a person of the same company (see `company_of_person`)
    return {
        "opp_id": k,
        "company_id": company_id,
        "contact_id": f"c-{contact}" if contact < people else None,
        "name": f"Deal {k}",
        "amount_micros": k * 1_000_000,
        "currency": "USD",
        "stage": STAGES[k % len(STAGES)],
        "close_date": f"2026-{1 + k % 12:02d}-15T09:30:00+00:00",
    }


def domain(i: int) -> str:
    """How Twenty stores company i's domain after the target canonicalised it."""
    return f"https://company{i}.example.com"


def email(j: int) -> str:
    return f"person.{j}@example.com"


def schema_message(stream: str) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": SCHEMAS[stream],
        "key_properties": KEYS[stream],
    }


def record_message(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": record}


def singer_lines(
    companies: int,
    people: int = 0,
    opportunities: int = 0,
    state_every: int = 100,
    interleaved: bool = False,
) -> list[str]:
    """SCHEMA lines, then RECORDs with a STATE every `state_every` records.

    Each STATE's value is its own line number (`{"line": n}`, from 0), so a test can resume
    after the last STATE a target printed. `interleaved`: each company is followed by its people
    and opportunities, as a tap with child streams emits them; otherwise stream after stream.
    """
    streams = ["companies", "people", "opportunities"][: 1 + bool(people) + bool(opportunities)]
    if opportunities and not people:
        streams = ["companies", "opportunities"]
    messages = [schema_message(s) for s in streams]
    records: list[tuple[str, dict[str, Any]]] = []
    if interleaved:
        by_company: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        for j in range(people):
            by_company.setdefault(company_of_person(j, companies), []).append(
                ("people", person(j, companies))
            )
        for k in range(opportunities):
            opp = opportunity(k, companies, people)
            by_company.setdefault(opp["company_id"], []).append(("opportunities", opp))
        for i in range(1, companies + 1):
            records.append(("companies", company(i)))
            records += by_company.get(i, [])
    else:
        records += [("companies", company(i)) for i in range(1, companies + 1)]
        records += [("people", person(j, companies)) for j in range(people)]
        records += [
            ("opportunities", opportunity(k, companies, people)) for k in range(opportunities)
        ]
    for n, (stream, record) in enumerate(records, start=1):
        messages.append(record_message(stream, record))
        if n % state_every == 0 or n == len(records):
            messages.append({"type": "STATE", "value": {"line": len(messages)}})
    return [json.dumps(m) for m in messages]
