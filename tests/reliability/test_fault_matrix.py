"""Each API misbehaving while `meltano run` runs (issue 8's fault matrix).

A run either completes with the exact result, or stops with a clear message, and then a re-run
(the fault still present) completes. Each run injects one fault into OKKI and one into the
destination, so nine runs cover the fourteen faults. The sandboxes run 20× faster than real
time: rate windows, `Retry-After` and token lifetimes are scaled, and so are the 5-second
latency spikes (0.25 s). Small batches make enough calls for every fault to hit. Timeouts are
in test_timeouts.py: the timeout settings are `kind: decimal`, which Meltano 4.4.1 cannot take
from the environment.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox, SandboxClient
from tests.e2e.meltano_project import Run, install_plugins, meltano_missing
from tests.reliability.pipelines import (
    JIANDAOYUN,
    TIME_SCALE,
    TWENTY,
    Pipeline,
    ReliabilityProject,
    assert_holds_exactly_the_source,
    assert_state_consistent,
    first_okki_read,
    fresh,
    start_secret_sandbox,
)

MAX_RUNS = 3
SPIKE = 5.0 / TIME_SCALE  # a 5-second latency spike, scaled like every other duration
SMALL_BATCHES = {"TARGET_TWENTY_BATCH_SIZE": "5", "TARGET_JIANDAOYUN_BATCH_SIZE_ROWS": "2"}


@dataclass(frozen=True)
class Fault:
    api: str  # the misbehaving emulator: okki, twenty or jiandaoyun
    name: str
    knobs: dict[str, Any]
    shows: str  # the proof it happened: a fault in the request log, "tokens" or "failed_rows"

    def __str__(self) -> str:
        return f"{self.api} {self.name}"


def storm(api: str) -> Fault:
    return Fault(api, "429 storm", {"burst_429_rate": 0.1, "burst_429_length": 5}, "429-burst")


def server_errors(api: str, share: float) -> Fault:
    return Fault(api, f"{share:.0%} server errors", {"error_rate": share}, "5xx")


def dropped(api: str) -> Fault:
    return Fault(api, "dropped connections", {"drop_rate": 0.15}, "dropped")


def spikes(api: str) -> Fault:
    return Fault(api, "5 s latency spikes", {"spike_rate": 0.2, "spike_latency": SPIKE}, "spike")


TOKEN_REVOKED = Fault(
    "okki", "token revoked mid-run", {"extra": {"revoke_tokens_after_requests": 20}}, "tokens"
)
HALF_FAILING = Fault(
    "jiandaoyun",
    "half of each batch failing",
    {"extra": {"partial_failure_rate": 0.5}},
    "failed_rows",
)
SCENARIOS = [
    (TWENTY, storm("okki"), storm("twenty")),
    (TWENTY, server_errors("okki", 0.2), server_errors("twenty", 0.3)),
    (TWENTY, dropped("okki"), dropped("twenty")),
    (TWENTY, spikes("okki"), spikes("twenty")),
    (JIANDAOYUN, server_errors("okki", 0.1), storm("jiandaoyun")),
    (JIANDAOYUN, storm("okki"), server_errors("jiandaoyun", 0.2)),
    (JIANDAOYUN, spikes("okki"), dropped("jiandaoyun")),
    (JIANDAOYUN, dropped("okki"), spikes("jiandaoyun")),
    (JIANDAOYUN, TOKEN_REVOKED, HALF_FAILING),
]
# A run that stops must say why: the failing endpoint or API and its code.
CLEAR_MESSAGE = re.compile(
    r"(OKKI|Twenty|Jiandaoyun|/v1/|/rest/|app/entry/)[^\n]*(answered|failing|code|\d{3})"
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    if problem := meltano_missing():
        pytest.fail(problem)
    install_plugins()
    running = start_secret_sandbox(companies=30, seed=33)
    yield running
    running.stop()


def emulator(sandbox: RunningSandbox, api: str) -> SandboxClient:
    return getattr(sandbox, api)


def was_injected(sandbox: RunningSandbox, fault: Fault, since: float) -> bool:
    if fault.shows == "tokens":
        return sandbox.okki.stats()["tokens_issued"] >= 2
    if fault.shows == "failed_rows":
        return sandbox.jiandaoyun.stats()["failed_rows"] > 0
    calls = emulator(sandbox, fault.api).requests(since)
    return any(call["fault"] == fault.shows for call in calls)


@pytest.mark.parametrize(
    ("pipeline", "source", "destination"),
    SCENARIOS,
    ids=[f"{source} + {destination}" for _, source, destination in SCENARIOS],
)
def test_each_run_completes_exactly_or_stops_clearly_and_completes_on_rerun(
    sandbox: RunningSandbox,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    pipeline: Pipeline,
    source: Fault,
    destination: Fault,
) -> None:
    fresh(sandbox)
    project = ReliabilityProject(sandbox, tmp_path, SMALL_BATCHES)
    started = time.time()
    for fault in (source, destination):
        emulator(sandbox, fault.api).knobs(**fault.knobs)
    runs: list[Run] = []
    while not runs or runs[-1].returncode != 0:
        assert len(runs) < MAX_RUNS, f"no run completed; last log:\n{runs[-1].log[-3000:]}"
        run_started = time.time()
        runs.append(project.run_pipeline(pipeline))
        assert_state_consistent(
            project.saved_state(pipeline), first_okki_read(sandbox, run_started)
        )
        if runs[-1].returncode != 0:
            assert CLEAR_MESSAGE.search(error_lines(runs[-1])), runs[-1].log[-3000:]

    for fault in (source, destination):
        assert was_injected(sandbox, fault, started), f"{fault} was never injected"
    assert_holds_exactly_the_source(sandbox, pipeline)
    assert project.leaked_secrets() == []
    record_property("exit_codes", [run.returncode for run in runs])
    record_property("retry_lines", [retry_lines(run) for run in runs])


def error_lines(run: Run) -> str:
    return "\n".join(line for line in run.log.splitlines() if "[error" in line)


def retry_lines(run: Run) -> int:
    """Log lines of a plugin about to send a call again (the tap's and the targets' wording)."""
    return sum(1 for line in run.log.splitlines() if "retrying in" in line or "; retry " in line)
