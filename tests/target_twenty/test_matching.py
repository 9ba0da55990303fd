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


ACME = {"company_id": 1, "name": "Acme", "website": "acme.com", "employees": 120, "city": "Paris"}
ALICE = {
    "contact_id": "c-1",
    "company_id": "1",
    "first_name": "Alice",
    "last_name": "Martin",
    "email": "alice@acme.com",
    "title": "CEO",
}


def test_company_created_by_hand_as_https_acme_com_is_adopted_filled_and_linked_not_duplicated(
    target: TargetRunner,
) -> None:
    existing = create_by_hand(
        target,
        "companies",
        {"name": "ACME (typed by hand)", "domainName": {"primaryLinkUrl": "HTTPS://Acme.com/"}},
    )
    run = target.run(
        lines_of(
            data.schema_message("companies"),
            data.schema_message("people"),
            data.record_message("companies", ACME),
            data.record_message("people", ALICE),
            {"type": "STATE", "value": {"line": 4}},
        )
    )

    assert run.returncode == 0, run.stderr[-2000:]
    held = target.twenty.records()
    assert [c["id"] for c in held["companies"]] == [existing]  # adopted, not duplicated
    # adopted_rows: fill_empty (the default): what was typed by hand stays, the gaps are filled.
    assert held["companies"][0]["name"] == "ACME (typed by hand)"
    assert held["companies"][0]["employees"] == 120
    assert held["companies"][0]["address"]["addressCity"] == "Paris"
    assert held["people"][0]["companyId"] == existing
    (line,) = [r for r in target.report() if r["stream"] == "companies"]
    assert line["id"] == existing and line["status"] == ["adopted"]
    assert "adopted company" in line["reason"]

    # A later run that sends only a new person of that company links it too: the alias was
    # kept in the id map.
    bob = {**ALICE, "contact_id": "c-2", "first_name": "Bob", "email": "bob@acme.com"}
    later = target.run(lines_of(data.schema_message("people"), data.record_message("people", bob)))

    assert later.returncode == 0, later.stderr[-2000:]
    people = target.twenty.records()["people"]
    assert {p["emails"]["primaryEmail"]: p["companyId"] for p in people} == {
        "alice@acme.com": existing,
        "bob@acme.com": existing,
    }


def test_adopted_rows_update_overwrites_and_link_only_writes_nothing(target: TargetRunner) -> None:
    existing = create_by_hand(
        target,
        "companies",
        {"name": "ACME (typed by hand)", "domainName": {"primaryLinkUrl": "https://acme.com"}},
    )
    schema = data.schema_message("companies")

    target.run(
        lines_of(schema, data.record_message("companies", ACME)),
        target.config(adopted_rows="link_only"),
    )
    (company,) = target.twenty.records()["companies"]
    assert company["id"] == existing and company["employees"] is None

    run = target.run(
        lines_of(schema, data.record_message("companies", ACME)),
        target.config(adopted_rows="update"),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (company,) = target.twenty.records()["companies"]
    assert (company["id"], company["name"], company["employees"]) == (existing, "Acme", 120)


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
    assert person["name"]["firstName"] == "Old"  # typed by hand: kept (adopted_rows)
    assert person["jobTitle"] == "Buyer"  # empty: filled


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


def two_contacts_sharing_one_email() -> list[str]:
    first = data.person(1, 1)
    second = {**data.person(2, 1), "email": "PERSON.1@example.com", "first_name": "Second"}
    others = [data.person(j, 1) for j in range(3, 10)]
    return lines_of(
        data.schema_message("companies"),
        data.schema_message("people"),
        data.record_message("companies", data.company(1)),
        *(data.record_message("people", p) for p in (first, second, *others)),
    )


def test_two_contacts_sharing_one_email_stay_two_people_and_the_conflict_is_reported(
    target: TargetRunner,
) -> None:
    run = target.run(two_contacts_sharing_one_email())

    assert run.returncode == 0, run.stderr[-2000:]
    people = {p["name"]["firstName"]: p for p in target.twenty.records()["people"]}
    assert len(people) == 9
    assert people["First1"]["emails"] == {
        "primaryEmail": data.email(1),
        "additionalEmails": [],
    }
    # The second holder keeps the email, out of the unique slot.
    assert people["Second"]["emails"] == {"primaryEmail": "", "additionalEmails": [data.email(1)]}
    assert target.twenty.stats()["rejected_batches"] == 0
    lines = {line["key"]: line for line in target.report() if line["stream"] == "people"}
    assert lines["c-2"]["id"] == people["Second"]["id"] != lines["c-1"]["id"]
    assert lines["c-2"]["status"] == ["conflict"]
    assert lines["c-2"]["conflicts"] == [
        {
            "field": "emails.primaryEmail",
            "value": data.email(1),
            "held_by": "c-1",
            "held_by_row": lines["c-1"]["id"],
        }
    ]
    assert "status" not in lines["c-1"]
    # The summary names the conflicting record (issue 17: samples and counts per stream).
    conflicted = next(k for k, line in lines.items() if "conflict" in line.get("status", []))
    assert (
        f"'people': 9 records, 9 created, 0 updated, 1 conflict (key {conflicted}), 0 failed"
        in run.stderr
    )
    assert run.stderr.count("emails.primaryEmail 'person.1@example.com' is held by") == 1


def test_on_unique_conflict_merge_makes_one_person_and_still_reports_it(
    target: TargetRunner,
) -> None:
    run = target.run(two_contacts_sharing_one_email(), target.config(on_unique_conflict="merge"))

    assert run.returncode == 0, run.stderr[-2000:]
    people = target.twenty.records()["people"]
    assert len(people) == 8
    shared = [p for p in people if p["emails"]["primaryEmail"] == data.email(1)]
    assert len(shared) == 1 and shared[0]["name"]["firstName"] == "Second"
    lines = {line["key"]: line for line in target.report() if line["stream"] == "people"}
    assert lines["c-2"]["id"] == lines["c-1"]["id"] == shared[0]["id"]
    assert lines["c-2"]["status"] == ["conflict"] and "merged into person" in lines["c-2"]["reason"]


def test_on_unique_conflict_dead_letter_refuses_the_second_holder(target: TargetRunner) -> None:
    run = target.run(
        two_contacts_sharing_one_email(),
        target.config(on_unique_conflict="dead_letter", max_failed_records=1),
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(target.twenty.records()["people"]) == 8
    (letter,) = target.dead_letters()
    assert letter["key"] == "c-2" and letter["code"] == "unique-conflict"
    assert "emails.primaryEmail 'person.1@example.com' is held by" in letter["reason"]
