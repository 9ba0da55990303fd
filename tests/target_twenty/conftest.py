"""A Twenty sandbox with time compressed 60× (100 calls per minute become 100 per second), and
the target run as a process against it, as Meltano runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox, SandboxClient, start_sandbox
from tests.target_twenty.crm_data import mappings

TIME_SCALE = 60.0
TARGET = str(Path(sys.executable).with_name("target-twenty"))
DEFAULT_KNOBS: dict[str, Any] = {
    "latency": 0.0,
    "latency_jitter": 0.0,
    "error_rate": 0.0,
    "drop_rate": 0.0,
    "burst_429_rate": 0.0,
    "burst_429_length": 5,
    "extra": {
        "limit_per_minute": 100,
        "limit_per_second": 100,
        "rate_limit_style": "headers",
        "announce_limits": False,
        "metadata_writes": True,
    },
}


@pytest.fixture(scope="session")
def twenty_sandbox() -> Iterator[RunningSandbox]:
    running = start_sandbox("--seed", "11", "--time-scale", str(TIME_SCALE))
    yield running
    running.stop()


@pytest.fixture
def twenty(twenty_sandbox: RunningSandbox) -> Iterator[SandboxClient]:
    """The Twenty emulator, empty, with default knobs; emptied again after the test."""
    client = twenty_sandbox.twenty
    client.knobs(**DEFAULT_KNOBS)
    client.reset()
    yield client
    client.knobs(**DEFAULT_KNOBS)
    client.reset()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


@dataclass
class TargetRunner:
    """Writes the config and input files, runs `target-twenty`, reads what it wrote."""

    twenty: SandboxClient
    dir: Path

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "api_key": self.twenty.credentials["api_key"],
            "base_url": self.twenty.base_url,
            "rate_limit_window_seconds": 60 / TIME_SCALE,
            "id_map_path": str(self.dir / "ids.sqlite3"),
            "dead_letter_path": str(self.dir / "dead-letters.jsonl"),
            "run_report_path": str(self.dir / "report.jsonl"),
            "mappings": mappings(),
            **overrides,
        }

    def start(
        self, lines: list[str], config: dict[str, Any] | None = None, env: dict | None = None
    ) -> subprocess.Popen:
        config_file = self.dir / "config.json"
        config_file.write_text(json.dumps(config or self.config()))
        input_file = self.dir / "input.singer"
        input_file.write_text("\n".join(lines) + "\n")
        return subprocess.Popen(
            [TARGET, "--config", str(config_file)],
            stdin=input_file.open(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def run(
        self, lines: list[str], config: dict[str, Any] | None = None, env: dict | None = None
    ) -> Run:
        process = self.start(lines, config, env)
        stdout, stderr = process.communicate(timeout=180)
        return Run(process.returncode, stdout, stderr)

    def dead_letters(self) -> list[dict[str, Any]]:
        return _json_lines(self.dir / "dead-letters.jsonl")

    def report(self) -> list[dict[str, Any]]:
        return _json_lines(self.dir / "report.jsonl")


def _json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture
def target(twenty: SandboxClient, tmp_path: Path) -> TargetRunner:
    return TargetRunner(twenty, tmp_path)
