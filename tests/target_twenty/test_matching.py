"""Records Twenty already holds, and duplicates in the input: one row per real-world record."""

from __future__ import annotations

import json

import requests

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner


def lines_of(*messages: dict) -> list[str]:
    return [json.dumps(m) for m in messages]


def create_by_hand(target: TargetRunner, plural: str, record: dict) -> str:
    """A row someone typed into Twenty before the first import."""
    response = requests.post(
        f"{target.twenty.base_url}/rest/batch/{plural}",
        json=[record],
        headers={"Authorization": f"Bearer {target.twenty.credentials['api_key']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return next(iter(response.json()["data"].values()))[0]["id"]


def test_company_created_by_hand_as_https_acme_com_is_updated_and_linked_not_duplicated(
    target: TargetRunner,
) -> None:
    existing = create_by_hand(
        target,
        "companies",
        {"name": "ACME (typed by hand)", "domainName": {"primaryLinkUrl": "HTTPS://Acme.com/"}},
    )
    acme = {
        "company_id": 1,
        "name": "Acme",
        "website": "acme.com",
        "employees": 120,
        "city": "Paris",
    }
    alice = {
        "contact_id": "c-1",
        "company_id": "1",
        "first_name": "Alice",
        "last_name": "Martin",
        "email": "alice@acme.com",
        "title": "CEO",
    }
    run = target.run(
        lines_of(
            data.schema_message("companies"),
            data.schema_message("people"),
            data.record_message("companies", acme),
            data.record_message("people", alice),
            {"type": "STATE", "value": {"line": 4}},
        )
    )

    assert run.returncode == 0, run.stderr[-2000:]
    held = target.twenty.records()
    assert [c["id"] for c in held["companies"]] == [existing]  # updated, not duplicated
    assert held["companies"][0]["name"] == "Acme"
    assert held["people"][0]["companyId"] == existing
    (line,) = [r for r in target.report() if r["stream"] == "companies"]
    assert line["id"] == existing and "matched an existing company" in line["reason"]

    # A later run that sends only a new person of that company links it too: the alias
    # Twenty chose was kept in the id map.
    bob = {**alice, "contact_id": "c-2", "first_name": "Bob", "email": "bob@acme.com"}
    later = target.run(lines_of(data.schema_message("people"), data.record_message("people", bob)))

    assert later.returncode == 0, later.stderr[-2000:]
    people = target.twenty.records()["people"]
    assert {p["emails"]["primaryEmail"]: p["companyId"] for p in people} == {
        "alice@acme.com": existing,
        "bob@acme.com": existing,
    }


def test_person_created_by_hand_is_matched_by_email_whatever_its_case(
    target: TargetRunner,
) -> None:
    target.run(
        lines_of(
            data.schema_message("companies"), data.record_message("companies", data.company(1))
        )
    )
    existing = create_by_hand(
        target,
        "people",
        {"name": {"firstName": "Old"}, "emails": {"primaryEmail": "Person.0@Example.com"}},
    )

    run = target.run(
        lines_of(data.schema_message("people"), data.record_message("people", data.person(0, 1)))
    )

    assert run.returncode == 0, run.stderr[-2000:]
    (person,) = target.twenty.records()["people"]
    assert person["id"] == existing
    assert person["name"]["firstName"] == "First0"


def test_versions_of_one_record_in_one_batch_are_merged_last_wins(target: TargetRunner) -> None:
    versions = [{**data.company(1), "name": f"Version {n}"} for n in range(3)]
    run = target.run(
        lines_of(
            data.schema_message("companies"),
            *(data.record_message("companies", v) for v in versions),
        )
    )

    assert run.returncode == 0, run.stderr[-2000:]
    (company,) = target.twenty.records()["companies"]
    assert company["name"] == "Version 2"
    batch_calls = [r for r in target.twenty.requests() if r["method"] == "POST"]
    assert [r["batch_size"] for r in batch_calls] == [1]
    assert len(target.report()) == 3  # one line per source record


def test_two_contacts_sharing_one_email_end_in_one_person_without_a_failed_batch(
    target: TargetRunner,
) -> None:
    first = data.person(1, 1)
    second = {**data.person(2, 1), "email": "PERSON.1@example.com", "first_name": "Second"}
    others = [data.person(j, 1) for j in range(3, 10)]
    run = target.run(
        lines_of(
            data.schema_message("companies"),
            data.schema_message("people"),
            data.record_message("companies", data.company(1)),
            *(data.record_message("people", p) for p in (first, second, *others)),
        )
    )

    assert run.returncode == 0, run.stderr[-2000:]
    people = target.twenty.records()["people"]
    assert len(people) == 8
    shared = [p for p in people if p["emails"]["primaryEmail"] == data.email(1)]
    assert len(shared) == 1 and shared[0]["name"]["firstName"] == "Second"
    assert target.twenty.stats()["rejected_batches"] == 0
    people_calls = [r for r in target.twenty.requests() if r["path"] == "/rest/batch/people"]
    assert [r["batch_size"] for r in people_calls] == [8, 1]  # the second holder comes after
    lines = {line["key"]: line for line in target.report() if line["stream"] == "people"}
    assert lines["c-2"]["id"] == lines["c-1"]["id"] == shared[0]["id"]
    assert "matched an existing person" in lines["c-2"]["reason"]
