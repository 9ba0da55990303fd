"""Records a tap marks deleted (`_sdc_deleted_at`) soft-delete their Twenty records."""

from __future__ import annotations

import json
from typing import Any

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner

DELETED_AT = "2026-03-01T08:00:00+00:00"


def schema(stream: str) -> dict[str, Any]:
    """The stream's schema with the deletion mark declared, as tap-okki declares it."""
    message = data.schema_message(stream)
    properties = {
        **message["schema"]["properties"],
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
    }
    return {**message, "schema": {**message["schema"], "properties": properties}}


def company(i: int, deleted: bool = False) -> dict[str, Any]:
    return data.record_message(
        "companies", {**data.company(i), "_sdc_deleted_at": DELETED_AT if deleted else None}
    )


def lines(*records: dict[str, Any], streams: tuple[str, ...] = ("companies",)) -> list[str]:
    messages = [schema(s) for s in streams] + list(records)
    messages.append({"type": "STATE", "value": {"line": len(messages)}})
    return [json.dumps(m) for m in messages]


def companies_by_domain(target: TargetRunner) -> dict[str, dict[str, Any]]:
    """Rows by domain. A deleted row keeps its domain among its secondary links: it gives up
    the unique slot so a live company can take it."""
    held = target.twenty.records()["companies"]
    return {domain_of(c): c for c in held}


def domain_of(company: dict[str, Any]) -> str:
    links = company["domainName"]
    if company["deletedAt"]:
        assert not links["primaryLinkUrl"]
        return links["secondaryLinks"][-1]["url"]
    return links["primaryLinkUrl"]


def deletes(target: TargetRunner) -> list[dict[str, Any]]:
    return [r for r in target.twenty.requests() if r["method"] == "DELETE"]


def test_records_marked_deleted_soft_delete_their_twenty_records(target: TargetRunner) -> None:
    assert target.run(lines(*(company(i) for i in range(1, 11)))).returncode == 0
    ids = {d: c["id"] for d, c in companies_by_domain(target).items()}
    target.twenty.clear_requests()

    run = target.run(lines(company(3, deleted=True), company(5, deleted=True), company(6)))

    assert run.returncode == 0, run.stderr[-3000:]
    held = companies_by_domain(target)
    assert len(held) == 10  # soft-deleted: the rows stay, with `deletedAt`
    assert {d for d, c in held.items() if c["deletedAt"]} == {data.domain(3), data.domain(5)}
    assert len(deletes(target)) == 2  # one call per record
    report = target.report()[10:]
    assert [(r["key"], r["action"], r["id"]) for r in report if r["action"] == "deleted"] == [
        (3, "deleted", ids[data.domain(3)]),
        (5, "deleted", ids[data.domain(5)]),
    ]
    assert "Stream 'companies': 3 records, 0 created, 1 updated, 2 deleted, 0 failed" in run.stderr
    assert run.states == [{"line": 4}]
    assert target.dead_letters() == []


def test_sending_a_deletion_again_or_for_a_record_never_loaded_is_harmless(
    target: TargetRunner,
) -> None:
    assert target.run(lines(company(1), company(2))).returncode == 0
    deletion = lines(company(1, deleted=True), company(99, deleted=True))
    assert target.run(deletion).returncode == 0

    again = target.run(deletion)

    assert again.returncode == 0, again.stderr[-3000:]
    assert again.states == [{"line": 3}]
    held = companies_by_domain(target)
    assert held[data.domain(1)]["deletedAt"] and not held[data.domain(2)]["deletedAt"]
    assert data.domain(99) not in held
    last = target.report()[-2:]
    assert [r["action"] for r in last] == ["deleted", "deleted"]
    assert all(r["reason"].startswith("not in Twenty") for r in last)
    assert target.dead_letters() == []


def test_a_record_deleted_then_sent_again_is_live_again_with_the_same_id(
    target: TargetRunner,
) -> None:
    assert target.run(lines(company(1), company(2))).returncode == 0
    before = {d: c["id"] for d, c in companies_by_domain(target).items()}
    # Company 1 is deleted and restored within one input (one batch); company 2 deleted here...
    run = target.run(lines(company(1, deleted=True), company(2, deleted=True), company(1)))
    assert run.returncode == 0, run.stderr[-3000:]
    held = companies_by_domain(target)
    assert not held[data.domain(1)]["deletedAt"] and held[data.domain(2)]["deletedAt"]
    assert len(deletes(target)) == 2  # company 1 was deleted, then written again

    # ... and restored by the next run.
    assert target.run(lines(company(2))).returncode == 0

    held = companies_by_domain(target)
    assert {d: c["id"] for d, c in held.items()} == before
    assert not any(c["deletedAt"] for c in held.values())


def test_a_deletion_never_overtakes_an_earlier_write_of_the_same_record(
    target: TargetRunner,
) -> None:
    # One record per batch and slow, jittery answers: without ordering, deletions would land
    # before the writes they follow and the rows would end up live.
    target.twenty.knobs(latency=0.02, latency_jitter=0.1)
    records = [m for i in range(1, 31) for m in (company(i), company(i, deleted=True))]

    run = target.run(lines(*records), target.config(batch_size=1))

    assert run.returncode == 0, run.stderr[-3000:]
    held = companies_by_domain(target)
    assert len(held) == 30 and all(c["deletedAt"] for c in held.values())


def test_state_is_written_only_once_twenty_has_deleted_every_record_before_it(
    target: TargetRunner,
) -> None:
    assert target.run(lines(*(company(i) for i in range(1, 121)))).returncode == 0
    messages: list[dict[str, Any]] = [schema("companies")]
    for i in range(1, 121):
        messages.append(company(i, deleted=True))
        if i % 20 == 0:
            messages.append({"type": "STATE", "value": {"line": len(messages)}})
    input_lines = [json.dumps(m) for m in messages]
    target.twenty.knobs(latency=0.02, latency_jitter=0.05)
    process = target.start(input_lines, target.config(max_requests_per_window=30))
    seen = []
    assert process.stdout is not None
    for line in process.stdout:
        state = json.loads(line)
        gone = {d for d, c in companies_by_domain(target).items() if c["deletedAt"]}
        before = [m["record"] for m in messages[: state["line"]] if m["type"] == "RECORD"]
        assert {data.domain(r["company_id"]) for r in before} <= gone, state
        seen.append(state["line"])
    process.wait(timeout=60)

    assert process.returncode == 0
    # In order, to the last; STATEs acknowledged by the same batch as a later one are not
    # written (issue 19: only the latest of them matters).
    assert seen == sorted(seen) and set(seen) <= {21 * n for n in range(1, 7)} and seen[-1] == 126


def test_a_child_of_a_deleted_parent_is_still_written_and_keeps_its_link(
    target: TargetRunner,
) -> None:
    person = data.record_message("people", data.person(0, 1))  # of company 1
    assert target.run(lines(company(1), person, streams=("companies", "people"))).returncode == 0
    company_id = companies_by_domain(target)[data.domain(1)]["id"]
    assert target.run(lines(company(1, deleted=True))).returncode == 0
    changed = data.record_message("people", {**data.person(0, 1), "title": "CEO"})

    run = target.run(lines(changed, streams=("companies", "people")))

    assert run.returncode == 0, run.stderr[-3000:]
    (held,) = target.twenty.records()["people"]
    assert (held["jobTitle"], held["companyId"]) == ("CEO", company_id)
    assert target.report()[-1]["reason"] == (
        "companyId left as it was: the 'companies' record with key [\"1\"] was deleted"
    )
    assert target.dead_letters() == []


def test_with_process_deletes_off_records_marked_deleted_are_upserted(
    target: TargetRunner,
) -> None:
    assert target.run(lines(company(1))).returncode == 0

    run = target.run(lines(company(1, deleted=True)), target.config(process_deletes=False))

    assert run.returncode == 0, run.stderr[-3000:]
    assert not companies_by_domain(target)[data.domain(1)]["deletedAt"]
    assert deletes(target) == []
    assert target.report()[-1]["action"] == "updated"


def test_in_a_stream_without_key_properties_records_marked_deleted_are_skipped(
    target: TargetRunner,
) -> None:
    keyless = {**schema("companies"), "key_properties": []}
    messages = [keyless, company(1), company(2, deleted=True), company(3, deleted=True)]
    messages.append({"type": "STATE", "value": {"line": 4}})

    config = target.config(mappings={"companies": data.mappings()["companies"]})  # no children

    run = target.run([json.dumps(m) for m in messages], config)

    assert run.returncode == 0, run.stderr[-3000:]
    assert set(companies_by_domain(target)) == {data.domain(1)}  # not written as live ones
    assert deletes(target) == []
    assert [r["action"] for r in target.report()] == ["created", "skipped", "skipped"]
    assert run.stderr.count("no id to find its company by") == 1  # logged once
    assert "3 records, 1 created, 0 updated, 2 skipped, 0 failed" in run.stderr
    assert run.states == [{"line": 4}]
