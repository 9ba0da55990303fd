"""Records that cannot be written, and settings that are wrong (rules 2, 3, 12)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner


def lines_of(*messages: dict) -> list[str]:
    return [json.dumps(m) for m in messages]


def opportunities_input(bad: dict[int, dict]) -> list[str]:
    """Company 1 (whose employees is a text) and 2; 60 opportunities of company 2, where
    `bad` replaces fields of some."""
    opportunities = [
        {**data.opportunity(k, 1, 0), "company_id": 2, **bad.get(k, {})} for k in range(60)
    ]
    loose = data.schema_message("companies")  # a tap that types employees loosely
    loose["schema"] = {**loose["schema"], "properties": {**loose["schema"]["properties"]}}
    loose["schema"]["properties"]["employees"] = {"type": ["integer", "string", "null"]}
    return lines_of(
        loose,
        data.schema_message("opportunities"),
        data.record_message("companies", {**data.company(1), "employees": "many"}),
        data.record_message("companies", data.company(2)),
        *(data.record_message("opportunities", o) for o in opportunities),
        {"type": "STATE", "value": {"line": 64}},
    )


def test_invalid_stage_and_text_in_number_field_are_dead_lettered_and_the_rest_loads(
    target: TargetRunner,
) -> None:
    run = target.run(opportunities_input({7: {"stage": "WON"}}))

    assert run.returncode != 0  # something was dead-lettered and nothing tolerates it
    assert "2 record(s) were dead-lettered" in run.stderr
    held = target.twenty.records()
    assert [c["name"] for c in held["companies"]] == ["Company 2"]
    assert sorted(o["name"] for o in held["opportunities"]) == sorted(
        f"Deal {k}" for k in range(60) if k != 7
    )
    letters = {(d["stream"], json.dumps(d["key"])): d for d in target.dead_letters()}
    assert set(letters) == {("companies", "1"), ("opportunities", "7")}
    assert "company.employees expects a number, got 'many'" in letters["companies", "1"]["reason"]
    assert (
        "opportunity.stage expects one of NEW, SCREENING" in letters["opportunities", "7"]["reason"]
    )
    assert "'WON'" in letters["opportunities", "7"]["reason"]
    assert letters["opportunities", "7"]["record"]["name"] == "Deal 7"
    assert target.twenty.stats()["rejected_batches"] == 0  # caught before sending
    assert run.states == [{"line": 64}]  # dead-lettered records count as handled


def test_a_datetime_without_zone_is_dead_lettered_unless_default_timezone_is_set(
    target: TargetRunner,
) -> None:
    lines = opportunities_input({7: {"close_date": "2026-03-01T09:30:00"}})

    run = target.run(lines)

    assert run.returncode != 0
    letters = {(d["stream"], json.dumps(d["key"])): d for d in target.dead_letters()}
    reason = letters["opportunities", "7"]["reason"]
    assert "opportunity.closeDate" in reason and "has no time zone" in reason
    assert "default_timezone" in reason
    assert "Deal 7" not in {o["name"] for o in target.twenty.records()["opportunities"]}

    (target.dir / "dead-letters.jsonl").unlink()
    run = target.run(lines, target.config(default_timezone="Asia/Shanghai"))

    assert ("opportunities", "7") not in {
        (d["stream"], json.dumps(d["key"])) for d in target.dead_letters()
    }
    (deal,) = [o for o in target.twenty.records()["opportunities"] if o["name"] == "Deal 7"]
    landed = dt.datetime.fromisoformat(deal["closeDate"].replace("Z", "+00:00"))
    assert landed == dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.timezone.utc)  # 09:30 in Shanghai


def test_dead_letters_within_max_failed_records_let_the_run_succeed(target: TargetRunner) -> None:
    run = target.run(
        opportunities_input({3: {"stage": "WON"}}), target.config(max_failed_records=2)
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(target.dead_letters()) == 2


def test_record_only_the_server_refuses_is_isolated_by_splitting_its_batch(
    target: TargetRunner,
) -> None:
    # The target does not second-guess currency codes; Twenty refuses lower case ones.
    run = target.run(
        opportunities_input({41: {"currency": "usd"}}), target.config(max_failed_records=1)
    )

    assert run.returncode != 0  # company 1 and opportunity 41
    held = target.twenty.records()
    assert len(held["opportunities"]) == 59
    (letter,) = [d for d in target.dead_letters() if d["stream"] == "opportunities"]
    assert letter["key"] == 41 and letter["code"] == 400
    assert "Twenty refused it" in letter["reason"] and "currencyCode" in letter["reason"]
    calls = [r for r in target.twenty.requests() if r["path"] == "/rest/batch/opportunities"]
    assert calls[0]["batch_size"] == 60 and calls[0]["status"] == 400
    refused = [r for r in calls if r["status"] == 400]
    assert refused[-1]["batch_size"] == 1  # halved until the record was alone
    assert len(calls) <= 2 * 6 + 1  # a bisection, not one call per record


def test_child_whose_parent_is_neither_loaded_nor_in_twenty_is_dead_lettered(
    target: TargetRunner,
) -> None:
    orphan = {**data.person(1, 1), "company_id": "999"}
    run = target.run(
        lines_of(
            data.schema_message("companies"),
            data.schema_message("people"),
            data.record_message("companies", data.company(1)),
            data.record_message("people", data.person(0, 1)),
            data.record_message("people", orphan),
        )
    )

    assert run.returncode != 0
    assert [p["name"]["firstName"] for p in target.twenty.records()["people"]] == ["First0"]
    (letter,) = target.dead_letters()
    assert letter["key"] == "c-1" and letter["code"] == "missing-parent"
    assert "'companies' record with key [\"999\"] is not in Twenty" in letter["reason"]


def test_unknown_twenty_field_stops_the_run_before_anything_is_written(
    target: TargetRunner,
) -> None:
    mappings = data.mappings()
    mappings["people"]["fields"]["linkedinUrl"] = "title"

    run = target.run(data.singer_lines(60, 60), target.config(mappings=mappings))

    assert run.returncode != 0
    assert "'mappings.people.fields' (stream 'people')" in run.stderr
    assert "field 'linkedinUrl', which Twenty object 'people' does not have" in run.stderr
    assert not [r for r in target.twenty.requests() if r["method"] != "GET"]


def test_source_property_that_is_no_twenty_field_stops_the_run_naming_stream_and_property(
    target: TargetRunner,
) -> None:
    run = target.run(data.singer_lines(5), target.config(mappings={}))

    assert run.returncode != 0
    assert "Stream 'companies': property 'website' is not a field of Twenty object" in run.stderr
    assert not [r for r in target.twenty.requests() if r["method"] != "GET"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 61}, "batch_size"),
        ({"base_url": "http://twenty.example.com"}, "Setting 'base_url' uses plain http://"),
        ({"mappings": {"people": {"object": "contacts"}}}, "'mappings.people.object'"),
        (
            {
                "mappings": {
                    "people": {"references": {"companyId": {"stream": "people", "field": "x"}}}
                }
            },
            "'companyId' points to companies, but stream 'people' loads 'people'",
        ),
    ],
)
def test_wrong_setting_stops_the_run_before_any_write_naming_the_setting(
    target: TargetRunner, overrides: dict, message: str
) -> None:
    run = target.run(data.singer_lines(5), target.config(**overrides))

    assert run.returncode != 0
    assert message in run.stderr
    assert not [r for r in target.twenty.requests() if r["method"] != "GET"]


def test_refused_api_key_stops_the_run_naming_the_setting_without_printing_the_key(
    target: TargetRunner,
) -> None:
    key = "wrong-key-0123456789abcdef"
    run = target.run(data.singer_lines(5), target.config(api_key=key))

    assert run.returncode != 0
    assert "401" in run.stderr and "check the setting 'api_key'" in run.stderr
    assert key not in run.stderr + run.stdout
