"""Scale-out that is tried (issue 17, item 9): the Meltano project under Dagster
(orchestrate/dagster/definitions.py, dagster-meltano), its state in a PostgreSQL database
shared between machines.

Two "machines" are two working directories, each with its own copy of the project and its own
`output/` (target-twenty's id map among it), sharing nothing but the state database. The first
sync runs on one, the second (after changes in OKKI) on the other, both as Dagster jobs. The
same two syncs from one directory, with a database of its own, must leave Twenty exactly as
they do: the second machine reads the first one's bookmarks from the database and finds its
rows in Twenty by their `okkiId`, not in a file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox
from tests.e2e.meltano_project import ROOT, sandbox_for_meltano
from tests.e2e.postgres import postgres_server

pytestmark = pytest.mark.xdist_group("meltano-scale")
DAGSTER = ROOT / ".venv-dagster" / "bin" / "dagster"
DEFINITIONS = ROOT / "orchestrate" / "dagster" / "definitions.py"
RENAMED, DELETED = [3, 7], [11]  # which OKKI companies (by rank of their id) change between syncs


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_for_meltano("--companies", "30", "--seed", "9", "--time-scale", "20") as running:
        yield running


@pytest.fixture(scope="module")
def database() -> Iterator[Callable[[str], str]]:
    with postgres_server() as new_database:
        yield new_database


def machine(tmp_path: Path, name: str) -> Path:
    """A working directory of its own: the project, the installed plugins, its own output."""
    project = tmp_path / name
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    (project / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):
        (project / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    return project


def environment(project: Path, state_database: str, sandbox: RunningSandbox) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_OKKI", "TARGET_"))},
        "PATH": f"{ROOT / '.venv-meltano' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "MELTANO_PROJECT_ROOT": str(project),
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_DATABASE_URI": state_database,  # the systemdb state backend: shared
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(project / "dagster-home"),
        "TAP_OKKI_BASE_URL": sandbox.okki.base_url,
        "TARGET_TWENTY_BASE_URL": sandbox.twenty.base_url,
    }


def dagster_sync(project: Path, state_database: str, sandbox: RunningSandbox) -> None:
    """The `okki-to-twenty` Meltano job, as Dagster runs it."""
    (project / "dagster-home").mkdir(exist_ok=True)
    done = subprocess.run(
        [str(DAGSTER), "job", "execute", "-f", str(DEFINITIONS), "-j", "okki_to_twenty"],
        cwd=project,
        env=environment(project, state_database, sandbox),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "RUN_SUCCESS" in done.stdout + done.stderr


def meltano_sync(
    project: Path, state_database: str, sandbox: RunningSandbox, *command: str
) -> None:
    done = subprocess.run(
        [str(ROOT / ".venv-meltano" / "bin" / "meltano"), *(command or ("run", "okki-to-twenty"))],
        cwd=project,
        env=environment(project, state_database, sandbox),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def twenty_rows(sandbox: RunningSandbox) -> dict[str, list[dict[str, Any]]]:
    """Every object's rows by id, without the times a run stamps on them."""
    rows = {}
    for plural, held in sandbox.twenty.records().items():
        if isinstance(held, list):
            rows[plural] = sorted(
                (
                    {k: v for k, v in row.items() if not k.endswith("At")}
                    | {"deleted": bool(row.get("deletedAt"))}
                    for row in held
                ),
                key=lambda row: str(row.get("id")),
            )
    return rows


def two_syncs(
    first: Callable[[], None], second: Callable[[], None], sandbox: RunningSandbox
) -> dict[str, list[dict[str, Any]]]:
    for api in (sandbox.okki, sandbox.twenty):
        api.reset()
    first()
    ids = changed_ids(sandbox)
    sandbox.okki.post("companies/update", {"company_ids": ids["renamed"], "rename": True})
    sandbox.okki.post("companies/delete", {"company_ids": ids["deleted"]})
    second()
    return twenty_rows(sandbox)


def changed_ids(sandbox: RunningSandbox) -> dict[str, list[Any]]:
    ids = sorted(c["company_id"] for c in sandbox.okki.records()["companies"])
    return {"renamed": [ids[i] for i in RENAMED], "deleted": [ids[i] for i in DELETED]}


def report(project: Path) -> list[dict[str, Any]]:
    path = project / "output" / "target-twenty" / "report.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_two_machines_sharing_only_the_state_database_end_as_one_machine_does(
    sandbox: RunningSandbox, database: Callable[[str], str], tmp_path: Path
) -> None:
    shared, own = database("shared_state"), database("one_machine_state")
    a, b, single = machine(tmp_path, "a"), machine(tmp_path, "b"), machine(tmp_path, "one")
    # Once, before any machine runs: the system database's tables (dagster-meltano starts two
    # `meltano` commands at once, which would both try to create them).
    meltano_sync(a, shared, sandbox, "upgrade", "database")

    two_machines = two_syncs(
        lambda: dagster_sync(a, shared, sandbox), lambda: dagster_sync(b, shared, sandbox), sandbox
    )
    one_machine = two_syncs(
        lambda: meltano_sync(single, own, sandbox),
        lambda: meltano_sync(single, own, sandbox),
        sandbox,
    )

    assert two_machines == one_machine
    # Machine b read machine a's bookmarks from the database: it moved only what changed.
    sandbox.okki.reset()
    ids = changed_ids(sandbox)
    moved = {line["key"] for line in report(b) if line["stream"] == "companies"}
    assert {str(key) for key in moved} == {str(i) for i in ids["renamed"] + ids["deleted"]}
    companies = {row["okkiId"]: row for row in two_machines["companies"]}
    assert len(companies) == 30
    assert all(companies[str(i)]["name"].endswith("(renamed)") for i in ids["renamed"])
    assert all(companies[str(i)]["deleted"] for i in ids["deleted"])
