"""Run tap-okki as a process (as Meltano does) and read what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from crm_sandbox.control import RunningSandbox

# The console script, as Meltano runs it.
TAP = [str(Path(sys.executable).parent / "tap-okki")]
STREAMS = ("companies", "contacts", "opportunities", "follow_ups", "next_follow_ups")


@dataclass
class TapRun:
    returncode: int
    stdout: str
    stderr: str

    @cached_property
    def messages(self) -> list[dict[str, Any]]:
        """The Singer messages, one JSON object a line."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def keys(self, stream: str, key: str) -> list[Any]:
        return [r[key] for r in self.records(stream)]

    def schemas(self) -> dict[str, dict[str, Any]]:
        return {m["stream"]: m["schema"] for m in self.messages if m["type"] == "SCHEMA"}

    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def state(self) -> dict[str, Any]:
        return self.states()[-1]

    def bookmark(self, stream: str) -> str | None:
        return self.state["bookmarks"].get(stream, {}).get("replication_key_value")

    def check(self) -> TapRun:
        assert self.returncode == 0, self.stderr[-3000:]
        return self


def tap_config(sandbox: RunningSandbox, **overrides: Any) -> dict[str, Any]:
    """Settings for a sandbox started with `--time-scale 100` (10/s becomes 1000/s)."""
    return {
        "client_id": sandbox.okki.credentials["client_id"],
        "client_secret": sandbox.okki.credentials["client_secret"],
        "base_url": sandbox.okki.base_url,
        "max_requests_per_second": 900,
        "detail_concurrency": 6,
        "backoff_base_seconds": 0.02,
        "backoff_max_seconds": 0.5,
        **overrides,
    }


def run_tap(
    tmp_path: Path,
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 120,
    meanwhile: Callable[[], None] | None = None,
) -> TapRun:
    """`tap-okki --config FILE [--state FILE] [--catalog FILE]`, as a subprocess.

    `meanwhile` is called every 10 ms while the tap runs (to steer the sandbox mid-run).
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    command = [*TAP]
    files = {"config": config, "state": state, "catalog": catalog}
    for name, content in files.items():
        if content is not None:
            path = tmp_path / f"{name}-{os.urandom(4).hex()}.json"
            path.write_text(json.dumps(content))
            command += [f"--{name}", str(path)]
    with (
        tempfile.TemporaryFile("w+") as stdout,
        tempfile.TemporaryFile("w+") as stderr,
        subprocess.Popen(
            [*command, *args],
            stdout=stdout,
            stderr=stderr,
            text=True,
            env={**os.environ, **(env or {})},
        ) as process,
    ):
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"tap-okki ran longer than {timeout} s")
            if meanwhile:
                meanwhile()
            time.sleep(0.01)
        stdout.seek(0)
        stderr.seek(0)
        return TapRun(process.returncode, stdout.read(), stderr.read())


def discover(tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(run_tap(tmp_path, config, args=("--discover",)).check().stdout)


def select_only(catalog: dict[str, Any], *selected: str) -> dict[str, Any]:
    """The catalog with exactly `selected` streams (and all their fields) selected."""
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in selected
    return catalog


def by_key(records: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in records}


def restore_defaults(sandbox: RunningSandbox) -> None:
    """Knobs and data back to how the session started them."""
    sandbox.okki.knobs(
        latency=0.0,
        latency_jitter=0.0,
        error_rate=0.0,
        drop_rate=0.0,
        burst_429_rate=0.0,
        extra={
            "rate_per_second": 10,
            "token_ttl": 28_800,
            "revoke_tokens_after_requests": None,
            "churn": None,
            "success_code": 200,
            "force_error": None,
            "shape_variety": 0,
            "unconvertible_share": None,
            "opportunity_deletes": "hidden",
            "trail_churn": None,
        },
    )
    sandbox.okki.reset()


def expected_contacts(companies: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {p["customer_id"]: p for c in companies for p in c["customers"]}


def stats_calls(sandbox: RunningSandbox) -> dict[str, int]:
    return defaultdict(int, sandbox.okki.stats()["calls"])
