"""OKKI follow-ups as Twenty notes and next follow-up times as tasks, through `meltano run
tap-okki target-twenty`: linked to their company, contacts and opportunity, never twice,
deleted with their links, tasks moved and marked done as OKKI changes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox
from tests.e2e.meltano_project import MeltanoProject, fresh_project, sandbox_for_meltano

pytestmark = pytest.mark.xdist_group("meltano")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_for_meltano("--companies", "30", "--seed", "4", "--time-scale", "20") as running:
        yield running


@pytest.fixture
def project(sandbox: RunningSandbox, tmp_path: Path) -> MeltanoProject:
    return fresh_project(sandbox, tmp_path)


def run(project: MeltanoProject) -> None:
    result = project.run("run", "tap-okki", "target-twenty")
    assert result.returncode == 0, result.log[-4000:]


def by_okki_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["okkiId"]: r for r in rows if r.get("okkiId")}


def assert_notes_mirror_follow_ups(sandbox: RunningSandbox) -> None:
    okki = sandbox.okki.records()
    twenty = sandbox.twenty.records()
    companies = by_okki_id(twenty["companies"])
    people = by_okki_id(twenty["people"])
    opportunities = by_okki_id(twenty["opportunities"])
    notes = by_okki_id(twenty["notes"])
    live_targets = [t for t in twenty["noteTargets"] if not t["deletedAt"]]
    for follow_up in okki["follow_ups"]:
        key = str(follow_up["trail_id"])
        note = notes[key]
        if follow_up["delete_flag"]:
            assert note["deletedAt"], f"deleted follow-up {key} is a live note"
            assert not [t for t in live_targets if t["noteId"] == note["id"]]
            continue
        assert not note["deletedAt"]
        links = [t for t in live_targets if t["noteId"] == note["id"]]
        expected = {("company", companies[str(follow_up["company_id"])]["id"])}
        named = follow_up["customer_id"]  # one id, 0 for none (the tap makes it a list)
        for contact in named if isinstance(named, list) else [named] if named else []:
            if str(contact) in people:
                expected.add(("person", people[str(contact)]["id"]))
        if follow_up["opportunity_id"]:
            expected.add(("opportunity", opportunities[str(follow_up["opportunity_id"])]["id"]))
        found = {
            (kind, t[f"{kind}Id"]) for t in links for kind in ("company", "person", "opportunity")
        }
        assert found - {(k, None) for k in ("company", "person", "opportunity")} == expected, key
        assert len(links) == len(expected), f"follow-up {key}: {len(links)} links"
    assert len(notes) == len(okki["follow_ups"])


def open_tasks(sandbox: RunningSandbox) -> dict[str, dict[str, Any]]:
    return {
        k: t
        for k, t in by_okki_id(sandbox.twenty.records()["tasks"]).items()
        if t["status"] == "TODO" and not t["deletedAt"]
    }


def future_follow_ups(sandbox: RunningSandbox) -> set[str]:
    now = dt.datetime.now(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        str(c["company_id"])
        for c in sandbox.okki.records()["companies"]
        if c["next_follow_up_time"] and c["next_follow_up_time"][:19].replace(" ", "T") > now
    }


def test_follow_ups_are_linked_notes_and_next_follow_ups_open_tasks_run_after_run(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    run(project)

    assert_notes_mirror_follow_ups(sandbox)
    planned = future_follow_ups(sandbox)
    assert planned and set(open_tasks(sandbox)) == planned
    counts = {k: len(v) for k, v in sandbox.twenty.records().items()}

    run(project)  # nothing changed: nothing created
    assert {k: len(v) for k, v in sandbox.twenty.records().items()} == counts

    okki = sandbox.okki.records()
    moved, cleared = sorted(planned)[:2]
    due = (dt.datetime.now(SHANGHAI) + dt.timedelta(days=40)).replace(microsecond=0)
    later = due.strftime("%Y-%m-%d %H:%M:%S")  # OKKI's zone-less Shanghai wall time
    sandbox.okki.post(
        "companies/update", {"company_ids": [int(moved)], "next_follow_up_time": later}
    )
    sandbox.okki.post(
        "companies/update", {"company_ids": [int(cleared)], "next_follow_up_time": ""}
    )
    gone = [f["trail_id"] for f in okki["follow_ups"] if not f["delete_flag"]][:2]
    sandbox.okki.post("follow_ups/delete", {"trail_ids": gone})

    run(project)

    assert_notes_mirror_follow_ups(sandbox)
    tasks = by_okki_id(sandbox.twenty.records()["tasks"])
    # The same instant, whatever the UTC calendar day: 16:00 UTC is already tomorrow in Shanghai.
    assert dt.datetime.fromisoformat(tasks[moved]["dueAt"]) == due
    assert tasks[moved]["status"] == "TODO"
    assert tasks[cleared]["status"] == "DONE" and not tasks[cleared]["deletedAt"]
    assert set(open_tasks(sandbox)) == future_follow_ups(sandbox)
