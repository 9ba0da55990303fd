"""Personal data at rest and in logs (issue 18, item 3), the targets run as processes.

- Every file a target writes that can hold records (dead letters, run report, target-twenty's
  id map) is created 0600, whatever the umask; by default under `output/<target>/`.
- Debug logging never prints a batch of records.
- `keep_days` removes report and dead-letter lines older than it at the start of a run.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox
from tests.reliability.plugins import (  # noqa: F401 (empty is a fixture)
    COMPANY_SCHEMA,
    TARGETS,
    company,
    config,
    lines_of,
    run_plugin,
    run_target,
    sandbox_fixture,
    state,
)

sandbox = sandbox_fixture(seed=5)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most machines have (files 0644): the targets must not rely on a stricter one."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("target", TARGETS)
def test_files_holding_records_are_readable_by_their_owner_only_and_default_under_output(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    settings = config(empty, target, tmp_path, max_failed_records=1)
    del settings["dead_letter_path"]  # the default: output/<target>/ in the working directory
    settings.pop("id_map_path", None)
    settings["run_report_path"] = str(tmp_path / "reports" / "report.jsonl")
    lines = lines_of(COMPANY_SCHEMA, company(1), company(2, name=17), state())

    run = run_plugin(target, settings, lines, tmp_path, cwd=tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    written = [
        tmp_path / "output" / target / "dead-letters.jsonl",
        tmp_path / "reports" / "report.jsonl",
    ]
    if target == "target-twenty":
        written.append(tmp_path / "output" / "target-twenty" / "ids.sqlite3")
        written += list((tmp_path / "output" / "target-twenty").glob("ids.sqlite3-*"))
    for path in written:
        assert mode(path) == 0o600, f"{path} is {oct(mode(path))}"
    assert mode(tmp_path / "output" / target) == 0o700
    assert [json.loads(line)["key"] for line in written[0].read_text().splitlines()] == ["c2"]
    # Nothing else was left in the working directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output", "reports"]


@pytest.mark.parametrize("target", TARGETS)
def test_debug_logging_never_prints_a_batch_of_records(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    names = [f"Person-{n:03d}-Xq" for n in range(60)]
    records = [company(n, name=name) for n, name in enumerate(names, start=1)]
    lines = lines_of(COMPANY_SCHEMA, *records, state())

    run = run_plugin(target, config(empty, target, tmp_path), lines, tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "DEBUG" in run.stderr  # debug logging was on
    assert sorted(r["key"] for r in run.report) == sorted(f"c{n}" for n in range(1, 61))
    assert all(r["action"] == "created" for r in run.report)
    printed = [name for name in names if name in run.stderr]
    assert printed == [], f"{len(printed)} record names in the log"


@pytest.mark.parametrize("target", TARGETS)
def test_keep_days_removes_report_and_dead_letter_lines_older_than_it(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    old = {"at": "2001-01-01T00:00:00Z", "stream": "companies", "key": "c-old", "reason": "x"}
    untimed = {"stream": "companies", "key": "c-untimed"}  # from a version that wrote no time
    for name in ("dead-letters.jsonl", "report.jsonl"):
        (tmp_path / name).write_text(json.dumps(old) + "\n" + json.dumps(untimed) + "\n")
    settings = config(empty, target, tmp_path, keep_days=30, max_failed_records=1)
    lines = lines_of(COMPANY_SCHEMA, company(1), company(2, name=17), state())

    run = run_plugin(target, settings, lines, tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert [d["key"] for d in run.dead_letters] == ["c-untimed", "c2"]
    assert run.report[0]["key"] == "c-untimed"
    assert sorted(r["key"] for r in run.report[1:]) == ["c1", "c2"]
    assert all(r["at"] >= "2020" for r in run.report if "at" in r)
    assert "Removed 1 line(s) older than 30 days" in run.stderr
    assert mode(tmp_path / "report.jsonl") == 0o600
