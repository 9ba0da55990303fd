"""A record that breaks its schema only in properties the mapping does not write still loads
(fidelity invariant 14; the target validates what it writes, not what it ignores)."""

from __future__ import annotations

import json

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner


def test_schema_problems_in_unwritten_properties_are_warned_once_and_the_records_load(
    target: TargetRunner,
) -> None:
    schema = data.schema_message("companies")
    schema["schema"] = {
        **schema["schema"],
        "properties": {
            **schema["schema"]["properties"],
            # What a tap declares and then breaks: objects promised, ids sent.
            "origin_list": {"type": ["array", "null"], "items": {"type": "object"}},
            "founded": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    records = [
        {**data.company(i), "origin_list": [i, i + 1], "founded": "not a time"} for i in range(1, 4)
    ]
    lines = [
        json.dumps(schema),
        *(json.dumps(data.record_message("companies", r)) for r in records),
        json.dumps({"type": "STATE", "value": {"line": 4}}),
    ]

    run = target.run(lines)

    assert run.returncode == 0, run.stderr
    assert sorted(c["name"] for c in target.twenty.records()["companies"]) == [
        "Company 1",
        "Company 2",
        "Company 3",
    ]
    assert target.dead_letters() == []
    assert run.stderr.count("property 'origin_list' does not match the stream's schema") == 1
    assert run.stderr.count("property 'founded' does not match the stream's schema") == 1
    assert "origin_list 3" in run.stderr  # counted in the stream summary
    assert run.states == [{"line": 4}]


def test_a_schema_problem_in_a_written_property_still_dead_letters_the_record(
    target: TargetRunner,
) -> None:
    schema = data.schema_message("companies")
    schema["schema"] = {
        **schema["schema"],
        "properties": {**schema["schema"]["properties"], "name": {"type": "string"}},
    }
    lines = [
        json.dumps(schema),
        json.dumps(data.record_message("companies", {**data.company(1), "name": 17})),
        json.dumps(data.record_message("companies", data.company(2))),
    ]

    run = target.run(lines, target.config(max_failed_records=1))

    assert run.returncode == 0, run.stderr
    assert [c["name"] for c in target.twenty.records()["companies"]] == ["Company 2"]
    (letter,) = target.dead_letters()
    assert letter["key"] == 1
    assert "property 'name': 17 is not of type 'string'" in letter["reason"]


def test_a_written_date_time_that_is_no_time_dead_letters_its_record_not_the_run(
    target: TargetRunner,
) -> None:
    opportunities = [data.opportunity(k, 1, 0) for k in range(3)]
    opportunities[1]["close_date"] = "sometime in spring"
    lines = [
        json.dumps(data.schema_message("companies")),
        json.dumps(data.schema_message("opportunities")),
        json.dumps(data.record_message("companies", data.company(1))),
        *(json.dumps(data.record_message("opportunities", o)) for o in opportunities),
    ]

    run = target.run(lines, target.config(max_failed_records=1))

    assert run.returncode == 0, run.stderr
    assert sorted(o["name"] for o in target.twenty.records()["opportunities"]) == [
        "Deal 0",
        "Deal 2",
    ]
    (letter,) = target.dead_letters()
    assert letter["key"] == 1 and "close_date" in letter["reason"]
