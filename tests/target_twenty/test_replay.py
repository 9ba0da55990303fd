"""Replaying dead letters (issue 17 item 7): fix the cause, replay, the records land, nothing
else changes."""

from __future__ import annotations

import json
import subprocess

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TARGET, TargetRunner


def lines_of(*messages: dict) -> list[str]:
    return [json.dumps(m) for m in messages]


def test_people_dead_lettered_for_a_missing_company_land_linked_when_replayed_after_it_loads(
    target: TargetRunner,
) -> None:
    people = [data.person(j, 3) for j in range(6)]  # companies 1-3, which have not come
    first = target.run(
        lines_of(
            data.schema_message("people"),
            *(data.record_message("people", p) for p in people),
            {"type": "STATE", "value": {"line": 1}},
        )
    )
    assert first.returncode != 0  # six dead letters, none tolerated
    letters = target.dead_letters()
    assert [(d["stream"], d["code"]) for d in letters] == [("people", "missing-parent")] * 6
    assert len({d["run"] for d in letters}) == 1 and all(d["schema"] for d in letters)
    # The cause, fixed: the companies load.
    fixed = target.run(data.singer_lines(3))
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    before = target.twenty.records()
    config = target.dir / "config.json"
    config.write_text(json.dumps(target.config()))
    dead_letters = target.dir / "dead-letters.jsonl"

    replay = subprocess.run(
        [TARGET, "--config", str(config), "--replay", str(dead_letters)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )

    assert replay.returncode == 0, replay.stderr[-3000:]
    assert replay.stdout == ""  # no STATE: Meltano's bookmarks do not move
    after = target.twenty.records()
    assert after["companies"] == before["companies"]  # nothing else changed
    company_ids = {c["domainName"]["primaryLinkUrl"]: c["id"] for c in after["companies"]}
    by_email = {p["emails"]["primaryEmail"]: p for p in after["people"]}
    assert len(by_email) == 6
    for j in range(6):
        company = data.company_of_person(j, 3)
        assert by_email[data.email(j)]["companyId"] == company_ids[data.domain(company)]
    assert not dead_letters.exists()  # nothing failed again
    assert not dead_letters.with_name("dead-letters.jsonl.replay").exists()
    assert "Replay of" in replay.stderr and "complete" in replay.stderr


def test_a_record_that_fails_again_on_replay_is_dead_lettered_anew_and_the_rest_land(
    target: TargetRunner,
) -> None:
    people = [data.person(j, 2) for j in range(4)]
    target.run(
        lines_of(data.schema_message("people"), *(data.record_message("people", p) for p in people))
    )
    only_first = lines_of(
        data.schema_message("companies"), data.record_message("companies", data.company(1))
    )
    assert target.run(only_first).returncode == 0  # company 2 is still missing
    config = target.dir / "config.json"
    config.write_text(json.dumps(target.config()))

    replay = subprocess.run(
        [TARGET, "--config", str(config), "--replay", str(target.dir / "dead-letters.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )

    assert replay.returncode != 0  # two failed again, none tolerated
    landed = {p["emails"]["primaryEmail"] for p in target.twenty.records()["people"]}
    assert landed == {data.email(j) for j in (0, 2)}  # company 1's people
    again = target.dead_letters()
    assert sorted(d["key"] for d in again) == ["c-1", "c-3"]
    assert not (target.dir / "dead-letters.jsonl.replay").exists()
