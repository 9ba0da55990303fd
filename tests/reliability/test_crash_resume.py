"""`meltano run` killed at seeded random moments, then re-run until it completes (issue 8).

Each pipeline is killed five times: three SIGKILLs to the whole process group (meltano, tap and
target die at once, mid-request or mid-write) and two SIGTERMs to meltano, which passes them on
to the plugins. The moment is the n-th API call of the run (OKKI's or the destination's), n
drawn from a seeded generator, so kills land while the tap reads as well as while the target
writes. Small windows and batches make checkpoints frequent, so most resumed runs start from a
checkpoint in the middle. After the kills, re-runs complete with the destination holding exactly
OKKI's records, and (once per pipeline) a run after that moves nothing. After a SIGKILL,
meltano refuses a plain re-run until forced: the killed run still counts as running.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox
from tests.e2e.meltano_project import install_plugins, meltano_missing
from tests.reliability.pipelines import (
    PIPELINES,
    Pipeline,
    ReliabilityProject,
    assert_holds_exactly_the_source,
    assert_state_consistent,
    bookmarks,
    destination_size,
    first_okki_read,
    fresh,
    run_and_kill,
    start_secret_sandbox,
)

# A checkpoint every 10 companies (the tap's window parts) and every 10 records (batches).
FREQUENT_CHECKPOINTS = {
    "TAP_OKKI_MAX_ROWS_PER_WINDOW": "10",
    "TARGET_TWENTY_BATCH_SIZE": "10",
    "TARGET_JIANDAOYUN_BATCH_SIZE_ROWS": "10",
}
# A run from scratch makes about 45 OKKI calls and 10 to 25 to the destination.
MOMENTS = (3, 45)
KILLS = {signal.SIGKILL: 3, signal.SIGTERM: 2}
EXIT_CODES = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143}  # 143: meltano, terminated


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    if problem := meltano_missing():
        pytest.fail(problem)
    install_plugins()
    running = start_secret_sandbox(companies=30, seed=21)
    yield running
    running.stop()


@pytest.mark.parametrize("how", list(KILLS), ids=lambda s: s.name)
@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: p.name)
def test_killed_runs_resume_until_the_destination_holds_exactly_the_source(
    sandbox: RunningSandbox,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    pipeline: Pipeline,
    how: signal.Signals,
) -> None:
    fresh(sandbox)
    rng = random.Random(f"{pipeline.name}-{how.name}")
    # After a SIGKILL meltano never marked its run as ended: the next run needs --force.
    flags = ("--force",) if how is signal.SIGKILL else ()
    chains = 1
    project = ReliabilityProject(sandbox, tmp_path / "chain1", FREQUENT_CHECKPOINTS)
    kills = 0
    while kills < KILLS[how]:
        moment = rng.randint(*MOMENTS)
        attempt = run_and_kill(project, pipeline, how, moment, *flags)
        saved = project.saved_state(pipeline)
        record_property(
            f"attempt{attempt.run.number}",
            f"after {moment} calls: killed={attempt.killed} exit={attempt.run.returncode} "
            f"destination={destination_size(sandbox, pipeline)} bookmarks="
            f"{bookmarks(saved.get('completed', {}).get('singer_state', {}))}",
        )
        assert_state_consistent(saved, first_okki_read(sandbox, attempt.started))
        assert not project.leaked_secrets()
        if attempt.killed:
            kills += 1
            assert attempt.run.returncode == EXIT_CODES[how], attempt.run.log[-2000:]
            if how is signal.SIGKILL and kills == 1:
                assert_refused_without_force(project, pipeline)
        else:  # the resumed run had less left to do than its moment: all loaded, start over
            assert attempt.run.returncode == 0, attempt.run.log[-3000:]
            assert_holds_exactly_the_source(sandbox, pipeline)
            fresh(sandbox)
            chains += 1
            project = ReliabilityProject(sandbox, tmp_path / f"chain{chains}", FREQUENT_CHECKPOINTS)

    completed = project.run_pipeline(pipeline, *flags)

    assert completed.returncode == 0, completed.log[-3000:]
    assert_holds_exactly_the_source(sandbox, pipeline)
    saved = project.saved_state(pipeline)
    assert saved["partial"] == {} and saved["completed"]["singer_state"]["bookmarks"]
    record_property("completed", f"exit={completed.returncode}")
    if how is signal.SIGTERM:  # once per pipeline: a run after completion moves nothing
        started = time.time()
        again = project.run_pipeline(pipeline)
        assert again.returncode == 0, again.log[-3000:]
        assert again.tally(pipeline.target) == {}
        assert_holds_exactly_the_source(sandbox, pipeline)
        assert_state_consistent(project.saved_state(pipeline), first_okki_read(sandbox, started))
        record_property("re-run", "moved nothing")
    assert project.leaked_secrets() == []


def assert_refused_without_force(project: ReliabilityProject, pipeline: Pipeline) -> None:
    """After a SIGKILL, meltano still holds the killed run as running: a plain re-run stops at
    once saying so, and how to go on."""
    refused = project.run_pipeline(pipeline)
    assert refused.returncode != 0
    assert f"Another '{pipeline.state_id}' pipeline is already running" in refused.log
    assert "'--force' option" in refused.log
