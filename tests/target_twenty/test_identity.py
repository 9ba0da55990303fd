"""Every source record is its own Twenty row (fidelity invariants 15 and 16): unique values
another record holds are conflicts, not merges; deletions reach only what the deleted key owns;
children follow their parent as the mapping says; ownership survives losing the id map."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner

DELETED_AT = "2026-03-01T08:00:00+00:00"


def schema(stream: str, **extra: dict) -> dict[str, Any]:
    message = data.schema_message(stream)
    properties = {
        **message["schema"]["properties"],
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
        **extra,
    }
    return {**message, "schema": {**message["schema"], "properties": properties}}


def rec(stream: str, record: dict[str, Any], deleted: bool = False) -> dict[str, Any]:
    return data.record_message(
        stream, {**record, "_sdc_deleted_at": DELETED_AT if deleted else None}
    )


def lines(*messages: dict[str, Any]) -> list[str]:
    return [json.dumps(m) for m in messages]


def owned_config(target: TargetRunner, **overrides: Any) -> dict[str, Any]:
    """The test mappings with `okkiId`-style owner fields, created by the target."""
    mappings = data.mappings()
    for stream in mappings:
        mappings[stream]["source_key_field"] = "sourceKey"
    return target.config(mappings=mappings, create_missing_fields=True, **overrides)


def company(i: int, website: str | None = None, **changes: Any) -> dict[str, Any]:
    return {**data.company(i), **({"website": website} if website else {}), **changes}


def by_key(target: TargetRunner, plural: str) -> dict[str, dict[str, Any]]:
    return {r["sourceKey"]: r for r in target.twenty.records()[plural] if r.get("sourceKey")}


def make_by_hand(target: TargetRunner, plural: str, record: dict[str, Any]) -> str:
    response = requests.post(
        f"{target.twenty.base_url}/rest/batch/{plural}",
        json=[record],
        headers={"Authorization": f"Bearer {target.twenty.credentials['api_key']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return next(iter(response.json()["data"].values()))[0]["id"]


# Conflicts -------------------------------------------------------------------------------------


def test_companies_sharing_a_domain_stay_apart_and_the_domain_follows_the_live_one(
    target: TargetRunner,
) -> None:
    config = owned_config(target)
    first = target.run(
        lines(
            schema("companies"),
            rec("companies", company(1, "https://acme.com")),
            # The same domain in other letters and schemes (the target writes https:// + host).
            rec("companies", company(2, "HTTP://ACME.com/")),
            rec("companies", company(3, "ACME.com/")),
        ),
        config,
    )

    assert first.returncode == 0, first.stderr[-3000:]
    rows = by_key(target, "companies")
    assert rows["1"]["domainName"]["primaryLinkUrl"] == "https://acme.com"
    for kept_apart in ("2", "3"):
        assert rows[kept_apart]["domainName"]["primaryLinkUrl"] == ""
        assert rows[kept_apart]["domainName"]["secondaryLinks"] == [
            {"url": "https://acme.com", "label": ""}
        ]
    conflicts = [r for r in target.report() if "conflict" in r.get("status", [])]
    assert [(c["key"], c["conflicts"][0]["held_by"]) for c in conflicts] == [(2, "1"), (3, "1")]
    assert "2 conflict" in first.stderr

    # Company 1 is deleted at the source: company 2, which waited longest, takes the domain.
    second = target.run(
        lines(schema("companies"), rec("companies", company(1), deleted=True)), config
    )

    assert second.returncode == 0, second.stderr[-3000:]
    rows = by_key(target, "companies")
    assert rows["1"]["deletedAt"] and rows["1"]["domainName"]["primaryLinkUrl"] == ""
    assert rows["2"]["domainName"] == {
        "primaryLinkUrl": "https://acme.com",
        "primaryLinkLabel": "",
        "secondaryLinks": [],
    }
    assert rows["3"]["domainName"]["primaryLinkUrl"] == ""  # still waiting
    resolved = [r for r in target.report() if "conflict-resolved" in r.get("status", [])]
    assert [(r["stream"], r["key"]) for r in resolved] == [("companies", "2")]


def test_a_changed_domain_is_given_to_the_record_that_waited_for_it(
    target: TargetRunner,
) -> None:
    config = owned_config(target)
    target.run(
        lines(
            schema("companies"),
            rec("companies", company(1, "acme.com")),
            rec("companies", company(2, "acme.com")),
        ),
        config,
    )

    run = target.run(lines(schema("companies"), rec("companies", company(1, "acme.de"))), config)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = by_key(target, "companies")
    assert rows["1"]["domainName"]["primaryLinkUrl"] == "https://acme.de"
    assert rows["2"]["domainName"]["primaryLinkUrl"] == "https://acme.com"


def test_a_row_made_in_twenty_holding_the_value_of_a_record_with_a_row_is_a_conflict(
    target: TargetRunner,
) -> None:
    config = owned_config(target)
    target.run(lines(schema("companies"), rec("companies", company(1, "acme.com"))), config)
    made = make_by_hand(
        target, "companies", {"name": "Hand", "domainName": {"primaryLinkUrl": "https://acme.de"}}
    )

    run = target.run(lines(schema("companies"), rec("companies", company(1, "acme.de"))), config)

    assert run.returncode == 0, run.stderr[-3000:]
    companies = {c["id"]: c for c in target.twenty.records()["companies"]}
    assert companies[made]["name"] == "Hand" and not companies[made].get("sourceKey")
    ours = by_key(target, "companies")["1"]
    assert ours["domainName"]["secondaryLinks"] == [{"url": "https://acme.de", "label": ""}]
    line = target.report()[-1]
    assert line["status"] == ["conflict"] and line["conflicts"][0]["held_by_row"] == made


# Adopted and shared rows -------------------------------------------------------------------------


def test_a_deleted_record_never_deletes_the_row_made_in_twenty_it_adopted(
    target: TargetRunner,
) -> None:
    made = make_by_hand(
        target, "companies", {"name": "Hand", "domainName": {"primaryLinkUrl": "https://acme.com"}}
    )
    config = owned_config(target)
    target.run(lines(schema("companies"), rec("companies", company(1, "acme.com"))), config)
    assert by_key(target, "companies")["1"]["id"] == made

    run = target.run(lines(schema("companies"), rec("companies", company(1), deleted=True)), config)

    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = target.twenty.records()["companies"]
    assert row["id"] == made and not row["deletedAt"] and row["sourceKey"] == ""
    line = target.report()[-1]
    assert (line["action"], line["status"]) == ("skipped", ["adopted"])

    # With delete_adopted_rows, the adopted row follows its record.
    target.run(lines(schema("companies"), rec("companies", company(1, "acme.com"))), config)
    allowed = owned_config(target, delete_adopted_rows=True)
    target.run(lines(schema("companies"), rec("companies", company(1), deleted=True)), allowed)
    (row,) = target.twenty.records()["companies"]
    assert row["id"] == made and row["deletedAt"]


def test_under_merge_a_deleted_key_unlinks_the_shared_row_until_the_last_one_goes(
    target: TargetRunner,
) -> None:
    config = owned_config(target, on_unique_conflict="merge")
    target.run(
        lines(
            schema("companies"),
            rec("companies", company(1, "acme.com")),
            rec("companies", company(2, "acme.com")),
        ),
        config,
    )
    (shared,) = target.twenty.records()["companies"]

    target.run(lines(schema("companies"), rec("companies", company(2), deleted=True)), config)
    (row,) = target.twenty.records()["companies"]
    assert row["id"] == shared["id"] and not row["deletedAt"]
    assert target.report()[-1]["status"] == ["shared"]

    target.run(lines(schema("companies"), rec("companies", company(1), deleted=True)), config)
    (row,) = target.twenty.records()["companies"]
    assert row["deletedAt"]


def test_ownership_is_read_from_twenty_when_the_id_map_is_lost(target: TargetRunner) -> None:
    made = make_by_hand(
        target, "companies", {"name": "", "domainName": {"primaryLinkUrl": "https://acme.com"}}
    )
    config = owned_config(target, adopted_rows="update")
    target.run(lines(schema("companies"), rec("companies", company(1, "acme.com"))), config)
    for path in target.dir.glob("ids.sqlite3*"):
        path.unlink()

    # A new domain: only the owner field can tell which row is company 1's.
    run = target.run(lines(schema("companies"), rec("companies", company(1, "acme.de"))), config)

    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = target.twenty.records()["companies"]
    assert row["id"] == made and row["domainName"]["primaryLinkUrl"] == "https://acme.de"


# Children of deleted parents, and children a parent no longer lists -----------------------------


def family_config(target: TargetRunner, rule: str, **overrides: Any) -> dict[str, Any]:
    config = owned_config(target, **overrides)
    people = config["mappings"]["people"]["references"]["companyId"]
    people.update(on_parent_delete=rule, listed_in_parent="contacts[].contact_id")
    return config


LISTING = {"type": ["array", "null"], "items": {"type": "object"}}


def family(i: int, contacts: list[int], deleted: bool = False) -> list[dict[str, Any]]:
    parent = company(i, contacts=[{"contact_id": f"c-{j}"} for j in contacts])
    return [
        rec("companies", parent, deleted),
        *(
            rec("people", {**data.person(j, 1), "company_id": str(i)})
            for j in contacts
            if not deleted
        ),
    ]


def test_people_of_a_deleted_company_follow_on_parent_delete(target: TargetRunner) -> None:
    for rule, expected in (("cascade", True), ("unlink", False), ("keep", False)):
        target.twenty.reset()
        config = family_config(target, rule)
        head = [schema("companies", contacts=LISTING), schema("people")]
        assert target.run(lines(*head, *family(1, [1, 2])), config).returncode == 0
        company_id = by_key(target, "companies")["1"]["id"]

        run = target.run(lines(*head, *family(1, [], deleted=True)), config)

        assert run.returncode == 0, run.stderr[-3000:]
        people = by_key(target, "people").values()
        assert [bool(p["deletedAt"]) for p in people] == [expected, expected], rule
        links = {p["companyId"] for p in people}
        assert links == ({None} if rule == "unlink" else {company_id}), rule


def test_a_contact_the_company_no_longer_lists_leaves_twenty(target: TargetRunner) -> None:
    config = family_config(target, "cascade")
    head = [schema("companies", contacts=LISTING), schema("people")]
    assert target.run(lines(*head, *family(1, [1, 2, 3])), config).returncode == 0
    made = make_by_hand(
        target,
        "people",
        {"name": {"firstName": "Hand"}, "companyId": by_key(target, "companies")["1"]["id"]},
    )

    run = target.run(lines(*head, *family(1, [1, 3])), config)

    assert run.returncode == 0, run.stderr[-3000:]
    people = by_key(target, "people")
    assert {k: bool(p["deletedAt"]) for k, p in people.items()} == {
        "c-1": False,
        "c-2": True,
        "c-3": False,
    }
    hand = next(p for p in target.twenty.records()["people"] if p["id"] == made)
    assert not hand["deletedAt"]  # made in Twenty: never the target's to remove
    reads = [r for r in target.twenty.requests() if "companyId[in]" in r["query"]]
    # One read per batch of companies written; none in the first run, which began with no
    # people in Twenty (each was written under the company that listed it).
    assert len(reads) == 1


# Missing parents and missing fields --------------------------------------------------------------


def test_on_missing_parent_skip_and_load_unlinked(target: TargetRunner) -> None:
    orphan = {**data.person(1, 1), "company_id": "404"}
    head = [data.schema_message("companies"), data.schema_message("people")]
    body = [
        data.record_message("companies", data.company(1)),
        data.record_message("people", orphan),
    ]

    skipped = target.run(lines(*head, *body), target.config(on_missing_parent="skip"))
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert target.twenty.records()["people"] == [] and target.dead_letters() == []
    (line,) = [r for r in target.report() if r["stream"] == "people"]
    assert line["action"] == "skipped" and "on_missing_parent: skip" in line["reason"]

    loaded = target.run(lines(*head, *body), target.config(on_missing_parent="load_unlinked"))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    (person,) = target.twenty.records()["people"]
    line = [r for r in target.report() if r["stream"] == "people"][-1]  # of the second run
    assert person["companyId"] is None and line["status"] == ["unlinked"]


def test_a_missing_parent_is_not_looked_up_in_an_object_that_started_empty(
    target: TargetRunner,
) -> None:
    """On a first load, a parent that has not come is not in Twenty either: the target asks
    only whether the object held any row (once), never for the parent itself, since that read
    would hold up the input for every batch of orphans."""
    orphans = [{**data.person(j, 1), "company_id": str(400 + j)} for j in range(3)]
    messages = [data.schema_message("companies"), data.schema_message("people")]
    messages += [data.record_message("companies", data.company(1))]
    messages += [data.record_message("people", orphan) for orphan in orphans]

    run = target.run(lines(*messages), target.config(on_missing_parent="load_unlinked"))

    assert run.returncode == 0, run.stderr[-3000:]
    people = target.twenty.records()["people"]
    assert len(people) == 3 and all(p["companyId"] is None for p in people)
    reads = [r for r in target.twenty.requests() if r["method"] == "GET"]
    companies = [r for r in reads if r["path"] == "/rest/companies"]
    assert len(companies) == 1 and "limit=1" in companies[0]["query"], companies


def test_create_missing_fields_creates_them_from_the_schema_before_any_record(
    target: TargetRunner,
) -> None:
    mappings = data.mappings()
    mappings["companies"]["source_key_field"] = "okkiId"
    mappings["companies"]["fields"]["headcount"] = "employees"
    missing = target.run(
        lines(data.schema_message("companies"), data.record_message("companies", data.company(1))),
        target.config(mappings=mappings),
    )
    assert missing.returncode != 0
    assert "'mappings.companies.source_key_field'" in missing.stderr
    assert target.twenty.records()["companies"] == []

    run = target.run(
        lines(data.schema_message("companies"), data.record_message("companies", data.company(1))),
        target.config(mappings=mappings, create_missing_fields=True),
    )

    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = target.twenty.records()["companies"]
    assert (row["okkiId"], row["headcount"]) == ("1", 7)
    creations = [
        r for r in target.twenty.requests() if r["method"] == "POST" and "metadata" in r["path"]
    ]
    first_write = next(r for r in target.twenty.requests() if r["path"] == "/rest/batch/companies")
    assert len(creations) == 2 and all(c["at"] < first_write["at"] for c in creations)


def test_create_missing_fields_refused_by_twenty_stops_before_writing(
    target: TargetRunner,
) -> None:
    target.twenty.knobs(extra={"metadata_writes": False})
    mappings = data.mappings()
    mappings["companies"]["source_key_field"] = "okkiId"

    run = target.run(
        lines(data.schema_message("companies"), data.record_message("companies", data.company(1))),
        target.config(mappings=mappings, create_missing_fields=True),
    )

    assert run.returncode != 0
    assert "Twenty refused to create field 'okkiId'" in run.stderr and "403" in run.stderr
    assert target.twenty.records()["companies"] == []


def test_a_parent_whose_list_came_unreadable_removes_no_child(target: TargetRunner) -> None:
    config = family_config(target, "cascade")
    head = [schema("companies", contacts=LISTING), schema("people")]
    assert target.run(lines(*head, *family(1, [1, 2])), config).returncode == 0

    # The tap could not read the company's contacts this time (null, the value kept aside).
    unreadable = rec("companies", company(1, contacts=None))
    run = target.run(lines(*head, unreadable), config)

    assert run.returncode == 0, run.stderr[-3000:]
    assert not any(p["deletedAt"] for p in by_key(target, "people").values())
