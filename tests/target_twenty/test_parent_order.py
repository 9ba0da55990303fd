"""Children that come before their parents: held until the parent comes, whatever the tap's order.

The SDK syncs a parent's child streams before it writes the parent's RECORD, and many taps send
whole streams in any order; a child is dead-lettered only when its parent never comes and is not
in Twenty.
"""

from __future__ import annotations

import json
from typing import Any

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner
from tests.target_twenty.test_resilience import assert_loaded_exactly_once


def children_first(
    companies: int, people: int, opportunities: int = 0, interleaved: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """Every record before the records it references: opportunities, people, then companies;
    `interleaved`: company by company (its children, then itself), as the SDK emits them."""
    people_of: dict[int, list[dict]] = {}
    for j in range(people):
        people_of.setdefault(data.company_of_person(j, companies), []).append(
            data.person(j, companies)
        )
    deals_of: dict[int, list[dict]] = {}
    for k in range(opportunities):
        deal = data.opportunity(k, companies, people)
        deals_of.setdefault(deal["company_id"], []).append(deal)
    groups = [
        [
            *(("opportunities", d) for d in deals_of.get(i, [])),
            *(("people", p) for p in people_of.get(i, [])),
            ("companies", data.company(i)),
        ]
        for i in range(1, companies + 1)
    ]
    if interleaved:
        return [record for group in groups for record in group]
    return sorted(
        (record for group in groups for record in group),
        key=lambda r: ("opportunities", "people", "companies").index(r[0]),
    )


def singer_lines(records: list[tuple[str, dict[str, Any]]], state_every: int = 50) -> list[str]:
    """The schemas, the records, and a STATE (its own line number) every `state_every`."""
    streams = dict.fromkeys(stream for stream, _ in records)
    messages: list[dict[str, Any]] = [data.schema_message(s) for s in streams]
    for n, (stream, record) in enumerate(records, start=1):
        messages.append(data.record_message(stream, record))
        if n % state_every == 0 or n == len(records):
            messages.append({"type": "STATE", "value": {"line": len(messages)}})
    return [json.dumps(m) for m in messages]


def state_lines(lines: list[str]) -> list[int]:
    return [n for n, line in enumerate(lines) if '"STATE"' in line]


def assert_in_order_to_the_last(emitted: list[int], lines: list[str]) -> None:
    """STATEs written in order, the last one included; of the STATEs a batch acknowledges
    together, only the latest is written (issue 19)."""
    sent = state_lines(lines)
    assert emitted == sorted(emitted) and set(emitted) <= set(sent)
    assert emitted[-1] == sent[-1]


def test_children_sent_before_their_parents_load_completely_with_their_links(
    target: TargetRunner,
) -> None:
    companies, people, opportunities = 120, 300, 120
    for interleaved in (True, False):
        target.twenty.reset()
        lines = singer_lines(children_first(companies, people, opportunities, interleaved))

        run = target.run(lines)

        assert run.returncode == 0, run.stderr[-3000:]
        assert target.dead_letters() == []
        assert_loaded_exactly_once(target, companies, people)
        held = target.twenty.records()
        person_ids = {p["emails"]["primaryEmail"]: p["id"] for p in held["people"]}
        company_ids = {c["domainName"]["primaryLinkUrl"]: c["id"] for c in held["companies"]}
        deals = {o["name"]: o for o in held["opportunities"]}
        assert len(deals) == opportunities
        for k in range(opportunities):
            source = data.opportunity(k, companies, people)
            deal = deals[source["name"]]
            assert deal["companyId"] == company_ids[data.domain(source["company_id"])]
            contact = int(source["contact_id"][2:])
            assert deal["pointOfContactId"] == person_ids[data.email(contact)]
        assert target.twenty.stats()["rejected_batches"] == 0
        assert_in_order_to_the_last([s["line"] for s in run.states], lines)
        if not interleaved:  # else most parents are still buffered, and simply sent first
            assert (
                "Stream 'people': 300 record(s) came before their parent and waited for it; 300 "
                "followed it once it came, 0 dead-lettered because it never did." in run.stderr
            )


def test_a_state_after_held_children_comes_once_they_are_written_and_batches_stay_full(
    target: TargetRunner,
) -> None:
    companies, people = 300, 600
    lines = singer_lines(children_first(companies, people), state_every=60)
    target.twenty.knobs(latency=0.02, latency_jitter=0.05)  # batches finish out of order
    # Held people wait for their companies (after `checkpoint_seconds` they would stop waiting:
    # test_held_children.py), and STATEs wait for them.
    process = target.start(lines, target.config(checkpoint_seconds=600))
    seen = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            state = json.loads(line)
            held = target.twenty.records()
            emails = {p["emails"]["primaryEmail"] for p in held["people"]}
            domains = {c["domainName"]["primaryLinkUrl"] for c in held["companies"]}
            for message in map(json.loads, lines[: state["line"]]):
                if message["type"] == "RECORD" and message["stream"] == "people":
                    assert data.email(int(message["record"]["contact_id"][2:])) in emails, state
                elif message["type"] == "RECORD":
                    assert data.domain(message["record"]["company_id"]) in domains, state
            seen.append(state["line"])
        process.wait(timeout=60)
    finally:
        process.kill()  # after a failed check, it must not write into the next test's Twenty

    assert process.returncode == 0
    assert_in_order_to_the_last(seen, lines)
    assert_loaded_exactly_once(target, companies, people)
    calls = [r for r in target.twenty.requests() if r["path"] == "/rest/batch/people"]
    # Released as each batch of companies is sent: its 120 people, in two full batches.
    assert len(calls) == people // 60
    assert target.dead_letters() == []


def test_a_child_whose_parent_never_comes_is_dead_lettered_at_the_end_and_the_rest_loads(
    target: TargetRunner,
) -> None:
    before = target.run(singer_lines([("companies", data.company(i)) for i in (1, 2)]))
    assert before.returncode == 0
    orphan = {**data.person(2, 2), "company_id": "999"}
    records = [
        ("people", orphan),
        ("opportunities", {**data.opportunity(0, 3, 3), "contact_id": "c-2", "company_id": 3}),
        ("people", data.person(0, 2)),  # company 1: in Twenty since the run before
        ("people", {**data.person(3, 3), "company_id": "3"}),  # company 3 comes last
        ("companies", data.company(3)),
    ]

    lines = singer_lines(records, state_every=1)
    run = target.run(lines)

    assert run.returncode != 0  # two dead letters, none tolerated
    people = {p["name"]["firstName"]: p for p in target.twenty.records()["people"]}
    companies = {c["name"]: c["id"] for c in target.twenty.records()["companies"]}
    assert people.keys() == {"First0", "First3"}
    assert people["First0"]["companyId"] == companies["Company 1"]
    assert people["First3"]["companyId"] == companies["Company 3"]
    letters = {d["stream"]: d for d in target.dead_letters()}
    assert letters.keys() == {"people", "opportunities"}
    assert letters["people"]["key"] == "c-2" and letters["people"]["code"] == "missing-parent"
    assert letters["people"]["reason"].startswith(
        "companyId: the 'companies' record with key [\"999\"] is not in Twenty and had not come "
        "when this record stopped waiting for it"
    )
    assert (
        "pointOfContactId: the 'people' record with key [\"c-2\"] is not in Twenty: it came"
        in (letters["opportunities"]["reason"])
    )
    # STATEs, in order, to the last: dead-lettered records count as handled.
    assert_in_order_to_the_last([s["line"] for s in run.states], lines)
    # The opportunity waited for the person, and followed it to the dead-letter file.
    assert "Stream 'opportunities': 1 record(s) came before their parent and waited for it; " in (
        run.stderr
    )
    assert "Stream 'people': 1 record(s) came before their parent and waited for it; 0 " in (
        run.stderr
    )


def test_beyond_max_held_records_the_oldest_are_sent_at_once_and_dead_lettered(
    target: TargetRunner,
) -> None:
    # 60 people of companies that never come, then 60 whose companies come after them.
    records = [("people", {**data.person(j, 60), "company_id": f"x{j}"}) for j in range(60)]
    records += [("people", data.person(j, 60)) for j in range(60, 120)]
    records += [("companies", data.company(i)) for i in range(1, 61)]

    run = target.run(singer_lines(records), target.config(max_held_records=100))

    assert run.returncode != 0
    assert "More than max_held_records=100 records wait for their parent" in run.stderr
    letters = target.dead_letters()
    assert sorted(d["key"] for d in letters) == sorted(f"c-{j}" for j in range(60))
    assert all("max_held_records" in d["reason"] for d in letters)
    people = target.twenty.records()["people"]
    companies = {c["name"]: c["id"] for c in target.twenty.records()["companies"]}
    assert sorted(p["name"]["firstName"] for p in people) == sorted(
        f"First{j}" for j in range(60, 120)
    )
    for person in people:
        j = int(person["name"]["firstName"].removeprefix("First"))
        assert person["companyId"] == companies[f"Company {1 + j % 60}"]
    assert (
        "Stream 'people': 120 record(s) came before their parent and waited for it; 60 followed "
        "it once it came, 60 dead-lettered because it never did." in run.stderr
    )


def test_a_later_version_of_a_held_record_waits_behind_it_instead_of_overtaking_it(
    target: TargetRunner,
) -> None:
    old = {**data.person(1, 2), "first_name": "Old", "company_id": "2"}  # company 2 comes last
    new = {**data.person(1, 2), "first_name": "New", "company_id": "1"}
    records = [
        ("companies", data.company(1)),
        ("people", old),
        ("people", new),
        ("companies", data.company(2)),
    ]

    run = target.run(singer_lines(records), target.config(batch_size=1))

    assert run.returncode == 0, run.stderr[-3000:]
    companies = {c["name"]: c["id"] for c in target.twenty.records()["companies"]}
    (person,) = target.twenty.records()["people"]
    assert person["name"]["firstName"] == "New"
    assert person["companyId"] == companies["Company 1"]
