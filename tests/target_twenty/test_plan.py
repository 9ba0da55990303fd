"""Plan mode (`dry_run: true`, issue 17 item 6): Twenty is read, nothing is written, and the
run report says per record what a real run would do."""

from __future__ import annotations

import json

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner


def lines_of(*messages: dict) -> list[str]:
    return [json.dumps(m) for m in messages]


def writes(target: TargetRunner) -> list[dict]:
    return [r for r in target.twenty.requests() if r["method"] != "GET"]


def plan_of(target: TargetRunner, stream: str) -> dict:
    return {row["key"]: row for row in target.report() if row["stream"] == stream}


def test_a_plan_before_the_first_load_writes_nothing_and_says_each_record_would_be_created(
    target: TargetRunner,
) -> None:
    lines = data.singer_lines(12, 20, 4, state_every=10)

    run = target.run(lines, target.config(dry_run=True, create_missing_fields=True))

    assert run.returncode == 0, run.stderr[-3000:]
    assert writes(target) == []
    assert all(not rows for rows in target.twenty.records().values() if isinstance(rows, list))
    assert run.states == []  # Meltano keeps its bookmark: the real run reads the same records
    plan = target.report()
    assert len(plan) == 12 + 20 + 4
    assert {row["action"] for row in plan} == {"create"} and all(r["dry_run"] for r in plan)
    assert all(row["id"] is None for row in plan)
    assert "Plan for stream 'companies': 12 records: 12 to create" in run.stderr
    assert "Plan for stream 'people': 20 records: 20 to create" in run.stderr
    assert not (target.dir / "dead-letters.jsonl").exists()


def test_a_plan_after_a_load_shows_the_fields_that_would_change_and_leaves_rows_alone(
    target: TargetRunner,
) -> None:
    first = target.run(data.singer_lines(10, 10))
    assert first.returncode == 0, first.stderr[-3000:]
    before = target.twenty.records()
    (target.dir / "report.jsonl").unlink()
    target.twenty.clear_requests()
    renamed = {**data.company(3), "name": "Company Three Ltd"}
    moved = {**data.company(4), "city": "Elsewhere"}
    same = data.company(5)
    new = data.company(11)
    orphan = {**data.person(99, 10), "company_id": "404"}  # its company never came
    lines = lines_of(
        data.schema_message("companies"),
        data.schema_message("people"),
        *(data.record_message("companies", r) for r in (renamed, moved, same, new)),
        data.record_message("people", orphan),
        {"type": "STATE", "value": {"line": 1}},
    )

    run = target.run(lines, target.config(dry_run=True))

    assert run.returncode == 0, run.stderr[-3000:]
    assert writes(target) == []
    assert target.twenty.records() == before
    companies = plan_of(target, "companies")
    assert companies[3]["action"] == "update"
    assert companies[3]["changes"] == {"name": {"from": "Company 3", "to": "Company Three Ltd"}}
    assert companies[4]["changes"] == {"address.addressCity": {"from": "City 4", "to": "Elsewhere"}}
    assert companies[5]["action"] == "unchanged" and "changes" not in companies[5]
    assert companies[11]["action"] == "create"
    person = plan_of(target, "people")["c-99"]
    assert person["action"] == "dead-letter" and "is not in Twenty" in person["reason"]
    assert not (target.dir / "dead-letters.jsonl").exists()
    assert run.states == []
    assert (
        "Plan for stream 'companies': 4 records: 1 to create, 2 to update (name 1, "
        "address.addressCity 1), 1 unchanged" in run.stderr
    )
    assert "1 to dead-letter (missing-parent: 1)" in run.stderr


def test_a_plan_reports_a_conflict_over_a_domain_another_record_holds(
    target: TargetRunner,
) -> None:
    first = target.run(data.singer_lines(3))
    assert first.returncode == 0, first.stderr[-3000:]
    (target.dir / "report.jsonl").unlink()
    target.twenty.clear_requests()
    twin = {**data.company(9), "website": data.company(2)["website"]}  # company 2's domain
    lines = lines_of(data.schema_message("companies"), data.record_message("companies", twin))

    run = target.run(lines, target.config(dry_run=True))

    assert run.returncode == 0, run.stderr[-3000:]
    assert writes(target) == []
    row = plan_of(target, "companies")[9]
    assert row["action"] == "create" and "conflict" in row["status"]
    assert row["conflicts"][0]["value"] == data.domain(2)
