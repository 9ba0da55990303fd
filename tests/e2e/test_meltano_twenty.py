"""`meltano run tap-okki target-twenty` end to end, as users run it (environment `dev`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox
from tests.e2e.meltano_project import (
    MeltanoProject,
    fresh_project,
    sandbox_for_meltano,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("meltano")
STATE_ID = "dev:tap-okki-to-target-twenty"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_for_meltano("--companies", "40", "--seed", "5", "--time-scale", "20") as running:
        yield running


@pytest.fixture
def project(sandbox: RunningSandbox, tmp_path: Path) -> MeltanoProject:
    return fresh_project(sandbox, tmp_path)


def live_okki(sandbox: RunningSandbox) -> dict:
    return sandbox.okki.records()


def test_first_run_loads_every_company_person_and_opportunity_linked(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    run = project.run("run", "tap-okki", "target-twenty")
    assert run.returncode == 0, run.log[-3000:]
    okki = live_okki(sandbox)
    twenty = sandbox.twenty.records()
    assert len(twenty["companies"]) == len(okki["companies"])
    assert len(twenty["opportunities"]) == len(okki["opportunities"])
    tally = run.tally("target-twenty")
    contacts = {p["customer_id"] for c in okki["companies"] for p in c["customers"]}
    assert sum(tally["contacts"].values()) == len(contacts)
    assert tally["contacts"]["failed"] == 0
    company_ids = {c["id"] for c in twenty["companies"]}
    assert all(p["companyId"] in company_ids for p in twenty["people"])
    assert all(o["companyId"] in company_ids for o in twenty["opportunities"])
    assert project.state(STATE_ID), "Meltano saved no state"


def test_incremental_rerun_moves_only_what_changed(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    assert project.run("run", "tap-okki", "target-twenty").returncode == 0
    before = sandbox.twenty.records()
    changed = sandbox.okki.post("companies/update", {"count": 3})["company_ids"]

    second = project.run("run", "tap-okki", "target-twenty")

    assert second.returncode == 0, second.log[-3000:]
    moved = set(second.keys("target-twenty", "companies"))
    assert set(changed) <= moved
    # Only the changes, plus whatever OKKI changed in the look-back overlap (10 minutes before
    # the first run's bookmark): the generated data is weeks old, so nothing else.
    assert moved == set(changed)
    assert second.tally("target-twenty")["companies"]["created"] == 0
    after = sandbox.twenty.records()
    assert len(after["companies"]) == len(before["companies"])
    assert len(after["people"]) == len(before["people"])


def test_full_refresh_reloads_everything_and_creates_nothing_new(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    assert project.run("run", "tap-okki", "target-twenty").returncode == 0
    before = sandbox.twenty.records()

    again = project.run("run", "--full-refresh", "tap-okki", "target-twenty")

    assert again.returncode == 0, again.log[-3000:]
    tally = again.tally("target-twenty")
    assert tally["companies"]["updated"] == len(before["companies"])
    assert sum(t["created"] for t in tally.values()) == 0
    after = sandbox.twenty.records()
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}


def test_a_failed_run_keeps_its_checkpoints_and_the_rerun_completes_without_duplicates(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    okki = live_okki(sandbox)
    # Slow OKKI down so the run is still going when Twenty starts refusing the key.
    sandbox.okki.knobs(latency=0.05)
    try:
        process, _ = project.start("run", "tap-okki", "target-twenty")
        wait_for(lambda: len(sandbox.twenty.records()["companies"]) >= 10)
        sandbox.twenty.knobs(extra={"api_keys": ["another-key"]})
        process.wait(timeout=240)
        assert process.returncode != 0
    finally:
        sandbox.twenty.knobs(extra={"api_keys": ["twenty-demo-key"]})
        sandbox.okki.knobs(latency=0.0)

    rerun = project.run("run", "tap-okki", "target-twenty")

    assert rerun.returncode == 0, rerun.log[-3000:]
    twenty = sandbox.twenty.records()
    names = [c["name"] for c in twenty["companies"]]
    assert len(twenty["companies"]) == len(okki["companies"])
    assert len(set(c["id"] for c in twenty["companies"])) == len(names)
    assert len(twenty["opportunities"]) == len(okki["opportunities"])
    assert project.state(STATE_ID)["completed"]["singer_state"]["bookmarks"]
