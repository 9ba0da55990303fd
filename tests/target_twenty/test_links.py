"""Notes and tasks linked to the records they are about, through Twenty's junction objects
(`links`), and records created only when `create_when` says so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner

DELETED_AT = "2026-03-01T08:00:00+00:00"
NOTES_SCHEMA = {
    "type": "SCHEMA",
    "stream": "follow_ups",
    "key_properties": ["trail_id"],
    "schema": {
        "type": "object",
        "properties": {
            "trail_id": {"type": "integer"},
            "company_id": {"type": ["integer", "null"]},
            "contact_id": {"type": ["string", "null"]},
            "opp_id": {"type": ["integer", "null"]},
            "content": {"type": ["string", "null"]},
            "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}
TASKS_SCHEMA = {
    "type": "SCHEMA",
    "stream": "next_follow_ups",
    "key_properties": ["company_id"],
    "schema": {
        "type": "object",
        "properties": {
            "company_id": {"type": "integer"},
            "name": {"type": "string"},
            "due": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}


def config(target: TargetRunner, **overrides: Any) -> dict[str, Any]:
    mappings = data.mappings()
    mappings["follow_ups"] = {
        "object": "notes",
        "fields": {
            "title": {"expression": "'Follow-up ' + str(trail_id)"},
            "bodyV2.markdown": "content",
        },
        "links": {
            "through": "noteTargets",
            "to": [
                {"stream": "companies", "field": "company_id"},
                {"stream": "people", "field": "contact_id"},
                {"stream": "opportunities", "field": "opp_id"},
            ],
        },
    }
    mappings["next_follow_ups"] = {
        "object": "tasks",
        "create_when": "due is not None",
        "fields": {
            "title": {"expression": "'Follow up: ' + name"},
            "dueAt": "due",
            "status": {"expression": "'TODO' if due else 'DONE'"},
        },
        "links": {"through": "taskTargets", "to": [{"stream": "companies", "field": "company_id"}]},
    }
    return target.config(mappings=mappings, **overrides)


def note(
    trail: int, company: int | None, contact: str | None, opp: int | None, **extra: Any
) -> dict:
    record = {
        "trail_id": trail,
        "company_id": company,
        "contact_id": contact,
        "opp_id": opp,
        "content": f"Called about order {trail}\nSecond line",
        "_sdc_deleted_at": None,
        **extra,
    }
    return data.record_message("follow_ups", record)


def world(notes: list[dict], notes_schema: dict | None = None) -> list[str]:
    """Two companies, their people and an opportunity, then the notes (before their records
    too: a note that comes first waits for what it links to)."""
    messages = [
        data.schema_message("companies"),
        data.schema_message("people"),
        data.schema_message("opportunities"),
        notes_schema or NOTES_SCHEMA,
        *notes[:1],
        data.record_message("companies", data.company(1)),
        data.record_message("companies", data.company(2)),
        data.record_message("people", data.person(0, 2)),
        data.record_message("people", data.person(1, 2)),
        data.record_message("opportunities", data.opportunity(0, 2, 2)),
        *notes[1:],
        {"type": "STATE", "value": {"done": True}},
    ]
    return [json.dumps(m) for m in messages]


def ids_of(target: TargetRunner, plural: str) -> dict[str, str]:
    rows = target.twenty.records()[plural]
    if plural == "companies":
        return {r["name"]: r["id"] for r in rows}
    if plural == "people":
        return {r["name"]["firstName"]: r["id"] for r in rows}
    return {r["name"]: r["id"] for r in rows}


@pytest.mark.parametrize("style", ["plain", "morph"])
def test_each_note_is_linked_to_its_company_contact_and_opportunity_and_a_rerun_adds_nothing(
    target: TargetRunner, style: str
) -> None:
    target.twenty.knobs(extra={"junction_style": style})
    target.twenty.reset()
    prefix = "target" if style == "morph" else ""
    column = {
        k: f"{prefix}{k.title()}Id" if prefix else f"{k}Id"
        for k in ("company", "person", "opportunity")
    }
    lines = world([note(1, 1, "c-0", 0), note(2, 2, None, None)])

    first = target.run(lines, config(target))
    again = target.run(lines, config(target))

    target.twenty.knobs(extra={"junction_style": "plain"})
    assert first.returncode == 0, first.stderr[-3000:]
    assert again.returncode == 0, again.stderr[-3000:]
    held = target.twenty.records()
    notes = {n["title"]: n for n in held["notes"]}
    assert notes["Follow-up 1"]["bodyV2"]["markdown"] == "Called about order 1\nSecond line"
    companies, people = ids_of(target, "companies"), ids_of(target, "people")
    (deal,) = held["opportunities"]
    links = sorted(
        (
            (t["noteId"], t[column["company"]], t[column["person"]], t[column["opportunity"]])
            for t in held["noteTargets"]
        ),
        key=str,
    )
    first_note, second_note = notes["Follow-up 1"]["id"], notes["Follow-up 2"]["id"]
    expected = [
        (first_note, companies["Company 1"], None, None),
        (first_note, None, people["First0"], None),
        (first_note, None, None, deal["id"]),
        (second_note, companies["Company 2"], None, None),
    ]
    assert links == sorted(expected, key=str)
    # Notes after what they link to, then one batch of their links.
    calls = [r["path"] for r in target.twenty.requests() if r["method"] == "POST"][:5]
    assert calls == [
        "/rest/batch/companies",
        "/rest/batch/people",
        "/rest/batch/opportunities",
        "/rest/batch/notes",
        "/rest/batch/noteTargets",
    ]
    assert len(held["noteTargets"]) == 4  # the re-run updated, added nothing


def test_a_deleted_follow_up_soft_deletes_its_note_and_its_links(target: TargetRunner) -> None:
    target.run(world([note(1, 1, "c-0", None)]), config(target))

    run = target.run(
        [json.dumps(NOTES_SCHEMA), json.dumps(note(1, 1, "c-0", None, _sdc_deleted_at=DELETED_AT))],
        config(target),
    )

    assert run.returncode == 0, run.stderr[-3000:]
    held = target.twenty.records()
    assert all(n["deletedAt"] for n in held["notes"])
    assert len(held["noteTargets"]) == 2 and all(t["deletedAt"] for t in held["noteTargets"])


def test_a_link_the_record_drops_is_removed(target: TargetRunner) -> None:
    target.run(world([note(1, 1, "c-0", None)]), config(target))

    run = target.run([json.dumps(NOTES_SCHEMA), json.dumps(note(1, 1, None, None))], config(target))

    assert run.returncode == 0, run.stderr[-3000:]
    live = [t for t in target.twenty.records()["noteTargets"] if not t["deletedAt"]]
    assert [t["companyId"] for t in live] == [ids_of(target, "companies")["Company 1"]]


def test_a_next_follow_up_is_one_task_moved_when_it_changes_and_done_when_cleared(
    target: TargetRunner,
) -> None:
    head = [data.schema_message("companies"), TASKS_SCHEMA]

    def run(*tasks: dict) -> None:
        companies = [data.record_message("companies", data.company(i)) for i in (1, 2)]
        result = target.run(
            [
                json.dumps(m)
                for m in [
                    *head,
                    *companies,
                    *(data.record_message("next_follow_ups", t) for t in tasks),
                ]
            ],
            config(target),
        )
        assert result.returncode == 0, result.stderr[-3000:]

    run(
        {"company_id": 1, "name": "Company 1", "due": "2027-01-10T09:00:00+08:00"},
        {"company_id": 2, "name": "Company 2", "due": None},  # none planned: no task
    )
    (task,) = target.twenty.records()["tasks"]
    assert (task["title"], task["status"]) == ("Follow up: Company 1", "TODO")
    (link,) = target.twenty.records()["taskTargets"]
    assert link["companyId"] == ids_of(target, "companies")["Company 1"]

    run({"company_id": 1, "name": "Company 1", "due": "2027-02-01T09:00:00+08:00"})
    (task,) = target.twenty.records()["tasks"]
    assert task["dueAt"].startswith("2027-02-01T01:00:00") and task["status"] == "TODO"

    run({"company_id": 1, "name": "Company 1", "due": None})
    (task,) = target.twenty.records()["tasks"]
    assert task["status"] == "DONE" and not task["deletedAt"]  # done, not deleted
    assert len(target.twenty.records()["taskTargets"]) == 1


def test_a_note_naming_several_contacts_links_each_and_drops_the_one_it_stops_naming(
    target: TargetRunner,
) -> None:
    schema = {**NOTES_SCHEMA, "schema": {**NOTES_SCHEMA["schema"]}}
    schema["schema"]["properties"] = {
        **NOTES_SCHEMA["schema"]["properties"],
        "contact_ids": {"type": ["array", "null"], "items": {"type": "string"}},
    }
    cfg = config(target)
    cfg["mappings"]["follow_ups"]["links"]["to"][1] = {"stream": "people", "field": "contact_ids"}
    target.run(world([note(1, 1, None, None, contact_ids=["c-0", "c-1"])], schema), cfg)
    people = ids_of(target, "people")
    linked = {t["personId"] for t in target.twenty.records()["noteTargets"] if t["personId"]}
    assert linked == {people["First0"], people["First1"]}

    run = target.run(
        [json.dumps(schema), json.dumps(note(1, 1, None, None, contact_ids=["c-1"]))], cfg
    )

    assert run.returncode == 0, run.stderr[-3000:]
    live = [t for t in target.twenty.records()["noteTargets"] if not t["deletedAt"]]
    assert {t["personId"] for t in live if t["personId"]} == {people["First1"]}
    assert len(live) == 2  # the company and the one contact
