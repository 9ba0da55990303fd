"""Running this repository's Meltano project (meltano.yml) against a sandbox, from tests.

Each test gets its own state backend, system database, dead-letter files, run reports and
id map under `tmp_path`, so tests are independent; the plugin virtual environments under
.meltano/ are shared (installed once per session).

Each project also gets its own Meltano system directory (`MELTANO_SYS_DIR_ROOT`, holding
links to the shared plugin environments) and its own log directory: Meltano writes every
plugin's config and catalog to `<sys dir>/run/<plugin>/` and deletes them afterwards, so two
runs of one plugin sharing the repository's `.meltano/` (xdist workers, a benchmark, the
demo) would delete each other's files mid-run.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from crm_sandbox.control import RunningSandbox, start_sandbox

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"


def meltano_missing() -> str | None:
    if MELTANO.exists():
        return None
    return f"{MELTANO} is missing: `make test` installs Meltano (make meltano)"


def install_plugins() -> None:
    """`meltano install`, once per test session however many xdist workers ask for it.

    A re-install rewrites the plugin environments, so it must never overlap a run of another
    worker: the first caller installs under a lock, later ones find the session's stamp.
    """
    session = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    (ROOT / ".meltano").mkdir(exist_ok=True)
    stamp = ROOT / ".meltano" / "tests-installed"
    with (ROOT / ".meltano" / "tests-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == session:
            return
        env = {**os.environ, "MELTANO_CLI_DISABLE_VERSION_CHECK": "true"}
        subprocess.run([MELTANO, "install"], cwd=ROOT, env=env, check=True, capture_output=True)
        stamp.write_text(session)


@dataclass
class MeltanoProject:
    sandbox: RunningSandbox
    workdir: Path
    runs: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, run: int) -> dict[str, str]:
        w = self.workdir
        return {
            **os.environ,
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": f"sqlite:///{w / 'meltano.db'}",
            "MELTANO_SYS_DIR_ROOT": str(self.sys_dir()),
            "XDG_STATE_HOME": str(w / "xdg-state"),  # Meltano's own run logs (elt.log)
            "MELTANO_STATE_BACKEND_URI": f"file://{w / 'state'}",
            "TAP_OKKI_BASE_URL": self.sandbox.okki.base_url,
            "TARGET_TWENTY_BASE_URL": self.sandbox.twenty.base_url,
            "TARGET_JIANDAOYUN_BASE_URL": self.sandbox.jiandaoyun.base_url,
            "TARGET_TWENTY_ID_MAP_PATH": str(w / "twenty-ids.sqlite3"),
            "TARGET_TWENTY_RUN_REPORT_PATH": str(self.report("target-twenty", run)),
            "TARGET_TWENTY_DEAD_LETTER_PATH": str(w / "twenty-dead-letters.jsonl"),
            "TARGET_JIANDAOYUN_RUN_REPORT_PATH": str(self.report("target-jiandaoyun", run)),
            "TARGET_JIANDAOYUN_DEAD_LETTER_PATH": str(w / "jiandaoyun-dead-letters.jsonl"),
            **self.extra_env,
        }

    def sys_dir(self) -> Path:
        """This project's `.meltano`: its own `run/`, the shared plugin environments."""
        sys_dir = self.workdir / "meltano-sys"
        for kind in ("extractors", "loaders"):
            link = sys_dir / kind
            if not link.exists():
                sys_dir.mkdir(parents=True, exist_ok=True)
                link.symlink_to(ROOT / ".meltano" / kind, target_is_directory=True)
        return sys_dir

    def report(self, target: str, run: int) -> Path:
        return self.workdir / f"run{run}-{target}-report.jsonl"

    def start(self, *args: str, new_session: bool = False) -> tuple[subprocess.Popen, int]:
        """Start `meltano ARGS…`; `new_session` makes it lead a process group of its own
        (with its plugins), so a test can kill the whole group at once."""
        self.runs += 1
        with (self.workdir / f"run{self.runs}.log").open("w") as log:
            process = subprocess.Popen(
                [MELTANO, *args],
                cwd=ROOT,
                env=self.env(self.runs),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=new_session,
            )
        return process, self.runs

    def run(self, *args: str, timeout: float = 240) -> Run:
        process, number = self.start(*args)
        process.wait(timeout=timeout)
        return Run(self, number, process.returncode)

    def state(self, state_id: str) -> dict:
        path = self.workdir / "state" / state_id / "state.json"
        # Meltano's file backend truncates, then writes: a SIGKILL in between leaves it empty.
        text = path.read_text() if path.exists() else ""
        return json.loads(text) if text.strip() else {}


@dataclass
class Run:
    project: MeltanoProject
    number: int
    returncode: int

    @property
    def log(self) -> str:
        return (self.project.workdir / f"run{self.number}.log").read_text()

    def tally(self, target: str) -> dict[str, Counter]:
        """Per stream: created / updated / failed, from the target's run report."""
        per_stream: dict[str, Counter] = defaultdict(Counter)
        path = self.project.report(target, self.number)
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                per_stream[row["stream"]][row["action"]] += 1
        return per_stream

    def keys(self, target: str, stream: str) -> list:
        path = self.project.report(target, self.number)
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [row["key"] for row in rows if row["stream"] == stream]


def wait_for(condition, timeout: float = 60.0, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(every)


@contextmanager
def sandbox_for_meltano(*sandbox_args: str) -> Iterator[RunningSandbox]:
    """Meltano and its plugins installed, and a sandbox started with `sandbox_args`."""
    if problem := meltano_missing():
        raise RuntimeError(problem)
    install_plugins()
    running = start_sandbox(*sandbox_args)
    try:
        yield running
    finally:
        running.stop()


def fresh_project(sandbox: RunningSandbox, workdir: Path) -> MeltanoProject:
    """A project run against emptied sandboxes, with its own state and files in `workdir`."""
    for api in (sandbox.okki, sandbox.twenty, sandbox.jiandaoyun):
        api.reset()
    return MeltanoProject(sandbox, workdir)
