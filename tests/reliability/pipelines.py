"""The two pipelines through `meltano run`, with distinctive secrets and debug logging.

What the reliability tests share:

- `ReliabilityProject`: `tests.e2e.meltano_project.MeltanoProject` with `--log-level=debug` on
  every run, and a scan of everything the run left behind for secrets and OKKI tokens. Its runs
  use environment `dev`, which pins the sandboxes' demo credentials (nothing from the shell or
  `.env` replaces them); plugins run directly (`tests.reliability.plugins`) use credentials
  nobody else uses. The sandboxes are told to accept both, and only both;
- `Pipeline`: the two pipelines of meltano.yml and their state ids;
- `assert_holds_exactly_the_source`: the destination holds each OKKI record once, no more;
- `assert_state_consistent`: what Meltano saved for a pipeline is a state the tap can resume
  from: every bookmark no later than the start of the run that read it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_sandbox.control import RunningSandbox, start_sandbox
from target_twenty.ids import key_text, stable_id
from tests.e2e.fidelity import assert_twenty_mirrors_okki
from tests.e2e.meltano_project import MeltanoProject, Run

TIME_SCALE = 20  # the sandboxes' rate windows, Retry-After and token lifetimes, divided by it

# Credentials seen nowhere else: finding one of these strings anywhere is a leak.
OKKI_CLIENT_ID = "reliability-client"
OKKI_CLIENT_SECRET = "okki-secret-Qz7RX2vK9"
TWENTY_API_KEY = "twenty-key-Hm4TpW8cL3"
JIANDAOYUN_API_KEY = "jdy-key-Vb6NsY1dF5"
# What `dev` in meltano.yml pins for `meltano run` (the sandboxes' demo credentials).
DEV_OKKI_CLIENT_ID = "demo-client-id"
DEV_SECRETS = ("demo-client-secret", "twenty-demo-key", "jdy-demo-key")
SECRETS = (OKKI_CLIENT_SECRET, TWENTY_API_KEY, JIANDAOYUN_API_KEY, *DEV_SECRETS)
# The OKKI sandbox's tokens are JWT-shaped (crm_sandbox/okki/auth.py) and it does not reveal
# the ones it issued: every one starts with this header, and the tap sends them as "Bearer …".
TOKEN_PATTERNS = (
    re.compile(r"eyJ0eXAiOiJKV1Qi"),  # base64 of '{"typ":"JWT"'
    re.compile(r"eyJ[\w-]{10,}\.eyJ[\w-]{10,}"),
    re.compile(r"Bearer\s+(?!\*)[\w.~+/-]{8,}"),
)

FORM = "demo_app/demo_customers"
COMPANY_NAME = "_widget_1704067200001"  # 客户名称
CONTACTS = "_widget_1704067200014"  # 联系人 (subform)
CONTACT_NAME = "_widget_1704067200015"  # 姓名


@dataclass(frozen=True)
class Pipeline:
    tap: str
    target: str

    @property
    def state_id(self) -> str:
        return f"dev:{self.tap}-to-{self.target}"

    @property
    def name(self) -> str:
        return self.target.removeprefix("target-")


TWENTY = Pipeline("tap-okki", "target-twenty")
JIANDAOYUN = Pipeline("tap-okki-companies", "target-jiandaoyun")
PIPELINES = (TWENTY, JIANDAOYUN)


def start_secret_sandbox(companies: int, seed: int, host: str = "127.0.0.1") -> RunningSandbox:
    """The three emulators (time-scaled), accepting only the credentials above."""
    sandbox = start_sandbox(
        "--companies",
        str(companies),
        "--seed",
        str(seed),
        "--time-scale",
        str(TIME_SCALE),
        "--host",
        host,
    )
    accept_test_credentials(sandbox)
    return sandbox


def accept_test_credentials(sandbox: RunningSandbox) -> None:
    """The secret credentials above and those `dev` pins, no others."""
    okki_dev, twenty_dev, jiandaoyun_dev = DEV_SECRETS
    clients = {OKKI_CLIENT_ID: OKKI_CLIENT_SECRET, DEV_OKKI_CLIENT_ID: okki_dev}
    sandbox.okki.knobs(extra={"clients": clients})
    sandbox.twenty.knobs(extra={"api_keys": [TWENTY_API_KEY, twenty_dev]})
    sandbox.jiandaoyun.knobs(extra={"api_keys": [JIANDAOYUN_API_KEY, jiandaoyun_dev]})


def fresh(sandbox: RunningSandbox) -> None:
    """Seeded OKKI data again, empty destinations, no faults."""
    no_faults = {
        "latency": 0.0,
        "latency_jitter": 0.0,
        "error_rate": 0.0,
        "drop_rate": 0.0,
        "burst_429_rate": 0.0,
        "spike_rate": 0.0,
    }
    for api in (sandbox.okki, sandbox.twenty, sandbox.jiandaoyun):
        api.knobs(**no_faults)
        api.reset()
    sandbox.okki.knobs(extra={"revoke_tokens_after_requests": None, "force_error": None})
    sandbox.jiandaoyun.knobs(extra={"partial_failure_rate": 0.0})
    accept_test_credentials(sandbox)


class ReliabilityProject(MeltanoProject):
    """The repository's Meltano project (environment `dev`), logging at debug level.

    `settings` are extra plugin settings as environment variables (`TAP_OKKI_PAGE_SIZE`…).
    Meltano 4.4.1 cannot pass `kind: decimal` settings given this way (it fails with "Object
    of type Decimal is not JSON serializable"), so only integer, boolean and text ones work.
    """

    def __init__(
        self, sandbox: RunningSandbox, workdir: Path, settings: dict[str, str] | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(sandbox, workdir, extra_env=dict(settings or {}))

    def start_pipeline(self, pipeline: Pipeline, *flags: str) -> tuple[subprocess.Popen, int]:
        """`meltano --log-level=debug run TAP TARGET` as the leader of its own process group."""
        args = ("--log-level=debug", "run", *flags, pipeline.tap, pipeline.target)
        return self.start(*args, new_session=True)

    def run_pipeline(self, pipeline: Pipeline, *flags: str, timeout: float = 240) -> Run:
        process, number = self.start_pipeline(pipeline, *flags)
        try:
            process.wait(timeout=timeout)
        finally:
            stop_group(process)
        return Run(self, number, process.returncode)

    def leaked_secrets(self) -> list[str]:
        """Every secret or token found in what the runs left: logs, reports, dead letters,
        state, the system database, the id map, Meltano's own logs.

        Meltano's system directory is not searched: it holds the plugins' config files, which
        carry the credentials by design (Meltano deletes them after each run, not after a kill).
        """
        found = []
        for path in sorted(self.workdir.rglob("*")):
            if not path.is_file() or "meltano-sys" in path.relative_to(self.workdir).parts:
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [f"{path.name}: {s!r}" for s in SECRETS if s in text]
            found += [f"{path.name}: token {p.pattern!r}" for p in TOKEN_PATTERNS if p.search(text)]
        return found

    def saved_state(self, pipeline: Pipeline) -> dict[str, Any]:
        """Meltano's saved state: `{"completed": {...}, "partial": {...}}`, or {}."""
        return self.state(pipeline.state_id)


def stop_group(process: subprocess.Popen) -> None:
    """Kill what is left of a run's process group (plugins of a killed meltano)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# The destination holds exactly the source --------------------------------------------------------
def twenty_id(stream: str, key: Any) -> str:
    return stable_id("", stream, key_text([key]))


def assert_holds_exactly_the_source(sandbox: RunningSandbox, pipeline: Pipeline) -> None:
    if pipeline is TWENTY:
        assert_twenty_holds_exactly_okki(sandbox)
    else:
        assert_jiandaoyun_holds_exactly_okki(sandbox)


def assert_twenty_holds_exactly_okki(sandbox: RunningSandbox) -> None:
    """Every OKKI company, contact and opportunity is one live Twenty record with its values
    and links, nothing else is there, nothing twice (`tests.e2e.fidelity`)."""
    assert_twenty_mirrors_okki(sandbox.okki.records(), sandbox.twenty.records())


def assert_jiandaoyun_holds_exactly_okki(sandbox: RunningSandbox) -> None:
    """One row per OKKI company in the customer form (key 客户编号), with its name and its
    contacts in the subform; no other row."""
    companies = {str(c["company_id"]): c for c in sandbox.okki.records()["companies"]}
    rows = sandbox.jiandaoyun.records()["forms"][FORM]
    held = Counter(row["customer_id"] for row in rows)
    expected = Counter(companies.keys())
    assert held == expected, f"Jiandaoyun rows: {_difference(held, expected)}"
    for row in rows:
        company = companies[row["customer_id"]]
        assert row[COMPANY_NAME] == company["name"]
        contacts = [c[CONTACT_NAME] for c in row.get(CONTACTS) or []]
        assert contacts == [p["name"] for p in company["customers"]]


def _difference(held: Counter, expected: Counter) -> str:
    missing = sum((expected - held).values())
    extra = sum((held - expected).values())
    return f"{missing} missing, {extra} extra or duplicated (of {sum(expected.values())})"


def destination_size(sandbox: RunningSandbox, pipeline: Pipeline) -> int:
    """Records written to the pipeline's destination so far."""
    if pipeline is TWENTY:
        return sum(len(rows) for rows in sandbox.twenty.records().values())
    return len(sandbox.jiandaoyun.records()["forms"][FORM])


# State ------------------------------------------------------------------------------------------
def bookmarks(state: dict[str, Any]) -> dict[str, dt.datetime]:
    """Stream → bookmark of a Singer state (`{"bookmarks": {...}}`)."""
    return {
        stream: dt.datetime.fromisoformat(entry["replication_key_value"])
        for stream, entry in (state.get("bookmarks") or {}).items()
        if entry.get("replication_key_value")
    }


def assert_state_consistent(saved: dict[str, Any], read_started: float) -> None:
    """Meltano's saved state (completed and partial) bookmarks nothing later than the moment
    the run that saved it started reading OKKI (`read_started`, epoch seconds; OKKI's clock
    has whole seconds), and keeps no progress markers."""
    latest = dt.datetime.fromtimestamp(read_started + 1, dt.timezone.utc)
    for part in ("completed", "partial"):
        singer_state = (saved.get(part) or {}).get("singer_state") or {}
        for stream, bookmark in bookmarks(singer_state).items():
            assert bookmark <= latest, f"{part} bookmark of {stream} {bookmark} > {latest}"
        for stream, entry in (singer_state.get("bookmarks") or {}).items():
            assert "progress_markers" not in entry, f"{part} state of {stream} has progress"


def first_okki_read(sandbox: RunningSandbox, since: float) -> float:
    """When the run started after `since` made its first OKKI data call (epoch seconds)."""
    calls = [r for r in sandbox.okki.requests(since) if "oauth2" not in r["path"]]
    return min((r["at"] for r in calls), default=time.time())


# Killing a run at a seeded moment ----------------------------------------------------------------
@dataclass
class KilledRun:
    run: Run
    started: float  # epoch seconds
    killed: bool  # False: the run ended before its moment came


def api_calls(sandbox: RunningSandbox, pipeline: Pipeline, since: float) -> int:
    """Calls made to OKKI and to the pipeline's destination since `since`."""
    destination = sandbox.twenty if pipeline is TWENTY else sandbox.jiandaoyun
    return len(sandbox.okki.requests(since)) + len(destination.requests(since))


def run_and_kill(
    project: ReliabilityProject,
    pipeline: Pipeline,
    how: signal.Signals,
    after_calls: int,
    *flags: str,
) -> KilledRun:
    """Run the pipeline and, once it has made `after_calls` API calls, kill it: SIGKILL to
    the whole process group (meltano and its plugins), or SIGTERM to meltano alone, which
    passes it on to the plugins."""
    started = time.time()
    process, number = project.start_pipeline(pipeline, *flags)
    killed = False
    try:
        while process.poll() is None:
            if api_calls(project.sandbox, pipeline, started) >= after_calls:
                if how is signal.SIGKILL:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.send_signal(how)
                killed = True
                break
            time.sleep(0.05)
        process.wait(timeout=120)
    finally:
        stop_group(process)
    return KilledRun(Run(project, number, process.returncode), started, killed)
