"""Run target-jiandaoyun as a process against a Jiandaoyun sandbox, and build its input.

Every test writes into a form of its own (registered through `POST /_sandbox/forms`), so tests
sharing the sandbox never see each other's rows. The sandbox runs at `TIME_SCALE` (its rate
windows are that much shorter) and the target's rate settings are scaled to match.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import SandboxClient, start_sandbox
from crm_sandbox.jiandaoyun.forms import DEMO_CUSTOMERS

TIME_SCALE = 10
# The console script, run as Meltano runs it.
TARGET = [str(Path(sys.executable).parent / "target-jiandaoyun")]


@pytest.fixture(scope="session")
def jdy() -> Iterator[SandboxClient]:
    """A Jiandaoyun sandbox for this package's tests (one per xdist worker)."""
    running = start_sandbox("--time-scale", str(TIME_SCALE), "--companies", "1", "--seed", "3")
    yield running.jiandaoyun
    running.stop()


@pytest.fixture(autouse=True)
def empty_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test that uses the sandbox starts from an empty one (reading it back stays fast),
    and ends with the sandbox having blanked no value: whatever a test sends, the target never
    lets Jiandaoyun save a value as empty in its place (docs/api/jiandaoyun.md §7.2)."""
    if "jdy" not in request.fixturenames:
        yield
        return
    jdy: SandboxClient = request.getfixturevalue("jdy")
    jdy.reset()
    yield
    stats = jdy.stats()
    assert stats["blanked_values"] == 0, f"the sandbox blanked values: {stats['blanked']}"


def new_form(jdy: SandboxClient, widgets: list[dict] | None = None) -> tuple[str, str]:
    """A fresh, empty form (the demo customer form's widgets unless told otherwise)."""
    entry_id = f"form_{uuid.uuid4().hex[:10]}"
    jdy.post(
        "forms",
        {
            "app_id": "tests",
            "entry_id": entry_id,
            "name": entry_id,
            "widgets": widgets or DEMO_CUSTOMERS,
        },
    )
    return "tests", entry_id


def rows_of(jdy: SandboxClient, form: tuple[str, str]) -> list[dict[str, Any]]:
    return jdy.records()["forms"].get(f"{form[0]}/{form[1]}", [])


def config(jdy: SandboxClient, forms: dict[str, Any], tmp_path: Path, **settings: Any) -> dict:
    return {
        "api_key": jdy.credentials["api_key"],
        "base_url": jdy.base_url,
        "forms": forms,
        "batch_requests_per_second": 10 * TIME_SCALE,
        "single_write_requests_per_second": 20 * TIME_SCALE,
        "read_requests_per_second": 30 * TIME_SCALE,
        "company_requests_per_second": 50 * TIME_SCALE,
        "dead_letter_path": str(tmp_path / "dead-letters.jsonl"),
        "run_report_path": str(tmp_path / "report.jsonl"),
        **settings,
    }


# Singer messages ----------------------------------------------------------------------------------
def schema(stream: str, properties: dict[str, Any], keys: list[str] | None = None) -> dict:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": keys if keys is not None else ["id"],
    }


def record(stream: str, values: dict[str, Any]) -> dict:
    return {"type": "RECORD", "stream": stream, "record": values}


def state(value: Any) -> dict:
    return {"type": "STATE", "value": value}


def singer_lines(messages: Iterable[dict]) -> str:
    return "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages)


# Running the target -------------------------------------------------------------------------------
@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def dead_letters(self, tmp_path: Path) -> list[dict]:
        return read_jsonl(tmp_path / "dead-letters.jsonl")


def write_config(settings: dict, tmp_path: Path) -> Path:
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(settings, ensure_ascii=False))
    return path


def run_target(
    settings: dict, messages: Iterable[dict] | str, tmp_path: Path, timeout: float = 120
) -> Run:
    """`target-jiandaoyun --config FILE < messages`, to the end."""
    text = messages if isinstance(messages, str) else singer_lines(messages)
    done = subprocess.run(
        [*TARGET, "--config", str(write_config(settings, tmp_path))],
        input=text,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Run(done.returncode, done.stdout, done.stderr)


def start_target(
    settings: dict, tmp_path: Path, stdin: Any, stderr: Any = subprocess.DEVNULL
) -> subprocess.Popen:
    """The target as a running process (for tests that kill it)."""
    return subprocess.Popen(
        [*TARGET, "--config", str(write_config(settings, tmp_path))],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def writes(requests: list[dict], endpoint: str = "batch_create") -> list[dict]:
    return [r for r in requests if r["path"].endswith(endpoint)]
