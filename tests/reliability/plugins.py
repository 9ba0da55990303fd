"""Running the plugins directly (not through Meltano), with crafted settings and input.

Every run gets the secret credentials (tests.reliability.pipelines) and debug logging. The
targets get a `companies` stream like tap-okki's, mapped onto Twenty's companies and onto the
demo customer form of Jiandaoyun (upsert on 客户编号).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox
from tests.reliability.pipelines import (
    FORM,
    JIANDAOYUN_API_KEY,
    OKKI_CLIENT_ID,
    OKKI_CLIENT_SECRET,
    SECRETS,
    TIME_SCALE,
    TOKEN_PATTERNS,
    TWENTY_API_KEY,
    start_secret_sandbox,
)

BIN = Path(sys.executable).parent
TARGETS = ("target-twenty", "target-jiandaoyun")
PLUGINS = ("tap-okki", *TARGETS)
DEBUG = {
    "LOGLEVEL": "DEBUG",
    **{f"{name.upper().replace('-', '_')}_LOGLEVEL": "DEBUG" for name in PLUGINS},
}

COMPANY_SCHEMA = {
    "type": "SCHEMA",
    "stream": "companies",
    "key_properties": ["company_id"],
    "schema": {
        "type": "object",
        "properties": {
            "company_id": {"type": ["string"]},
            "name": {"type": ["string", "null"]},
            "homepage": {"type": ["string", "null"]},
        },
    },
}


def company(number: int, **values: Any) -> dict[str, Any]:
    return {
        "type": "RECORD",
        "stream": "companies",
        "record": {
            "company_id": f"c{number}",
            "name": f"Company {number}",
            "homepage": f"https://company{number}.example.com",
            **values,
        },
    }


def state() -> dict[str, Any]:
    """A STATE message; `lines_of` sets its value to its line number (1-based)."""
    return {"type": "STATE", "value": {}}


def config(sandbox: RunningSandbox, plugin: str, workdir: Path, **overrides: Any) -> dict:
    """Settings of `plugin` for this sandbox; `overrides` replace or add settings."""
    if plugin == "tap-okki":
        return {
            "client_id": OKKI_CLIENT_ID,
            "client_secret": OKKI_CLIENT_SECRET,
            "base_url": sandbox.okki.base_url,
            "max_requests_per_second": 10 * TIME_SCALE * 0.9,
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 0.5,
            **overrides,
        }
    common = {
        "dead_letter_path": str(workdir / "dead-letters.jsonl"),
        "run_report_path": str(workdir / "report.jsonl"),
    }
    if plugin == "target-twenty":
        settings = {
            "api_key": TWENTY_API_KEY,
            "base_url": sandbox.twenty.base_url,
            "rate_limit_window_seconds": 60 / TIME_SCALE,
            "id_map_path": str(workdir / "ids.sqlite3"),
            "mappings": {
                "companies": {
                    "object": "companies",
                    "fields": {"name": "name", "domainName.primaryLinkUrl": "homepage"},
                }
            },
        }
    else:
        settings = {
            "api_key": JIANDAOYUN_API_KEY,
            "base_url": sandbox.jiandaoyun.base_url,
            "forms": {
                "companies": {
                    "app_id": FORM.split("/")[0],
                    "entry_id": FORM.split("/")[1],
                    "key_field": "company_id",
                    "key_widget": "客户编号",
                    "fields": {"name": "客户名称"},
                }
            },
        }
    return {**common, **settings, **overrides}


@dataclass
class PluginRun:
    workdir: Path
    returncode: int
    stdout: str
    stderr: str

    @cached_property
    def states(self) -> list[Any]:
        """Line numbers of the STATE messages a target wrote back."""
        return [json.loads(line)["position"] for line in self.stdout.splitlines() if line.strip()]

    @cached_property
    def messages(self) -> list[dict[str, Any]]:
        """What a tap wrote: Singer messages."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def jsonl(self, name: str) -> list[dict[str, Any]]:
        path = self.workdir / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        return self.jsonl("dead-letters.jsonl")

    @property
    def report(self) -> list[dict[str, Any]]:
        return self.jsonl("report.jsonl")

    def leaked_secrets(self) -> list[str]:
        texts = {"stdout": self.stdout, "stderr": self.stderr}
        for name in ("dead-letters.jsonl", "report.jsonl"):
            path = self.workdir / name
            texts[name] = path.read_text() if path.exists() else ""
        found = [f"{where}: {s!r}" for where, text in texts.items() for s in SECRETS if s in text]
        found += [
            f"{where}: token {p.pattern!r}"
            for where, text in texts.items()
            for p in TOKEN_PATTERNS
            if p.search(text)
        ]
        return found


def run_plugin(
    plugin: str,
    settings: dict[str, Any],
    lines: list[str],
    workdir: Path,
    *args: str,
    timeout: float = 120,
    cwd: Path | None = None,
) -> PluginRun:
    """`PLUGIN --config FILE ARGS… < lines` with debug logging, to the end (in `cwd`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "config.json"
    config_file.write_text(json.dumps(settings, ensure_ascii=False))
    done = subprocess.run(
        [str(BIN / plugin), "--config", str(config_file), *args],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **DEBUG},
        cwd=cwd,
    )
    config_file.unlink()  # holds the key by design; it is not output
    return PluginRun(workdir, done.returncode, done.stdout, done.stderr)


def lines_of(*messages: dict[str, Any] | str) -> list[str]:
    """Singer input lines; a STATE's value is `{"position": its line number}`; a str is a
    line sent as it is (e.g. malformed JSON)."""
    lines = []
    for number, message in enumerate(messages, start=1):
        if isinstance(message, str):
            lines.append(message)
            continue
        if message["type"] == "STATE":
            message = {**message, "value": {"position": number}}
        lines.append(json.dumps(message, ensure_ascii=False))
    return lines


def held_keys(sandbox: RunningSandbox, target: str) -> set[str]:
    """Keys of the companies the destination holds (Twenty: from the name "Company N")."""
    if target == "target-twenty":
        names = [c["name"] for c in sandbox.twenty.records()["companies"]]
        return {"c" + n.removeprefix("Company ") for n in names if n.startswith("Company ")}
    return {row["customer_id"] for row in sandbox.jiandaoyun.records()["forms"][FORM]}


def assert_nothing_silently_dropped(
    run: PluginRun, lines: list[str], sandbox: RunningSandbox, target: str
) -> None:
    """Every record before the last STATE the target wrote is in the destination or in the
    dead-letter file; nothing the target acknowledged is lost."""
    acknowledged = max(run.states, default=0)
    before = [json.loads(line) for line in lines[:acknowledged]]
    keys = {m["record"].get("company_id") for m in before if m.get("type") == "RECORD"}
    lettered = {letter["key"] for letter in run.dead_letters}
    assert keys <= held_keys(sandbox, target) | lettered


def sandbox_fixture(seed: int) -> Any:
    """A module's `sandbox` fixture: the secret-checking emulators with one company of `seed`."""

    @pytest.fixture(scope="module")
    def sandbox() -> Any:
        running = start_secret_sandbox(companies=1, seed=seed)
        yield running
        running.stop()

    return sandbox


def run_target(
    sandbox: RunningSandbox, target: str, lines: list[str], tmp_path: Path, **settings: Any
) -> PluginRun:
    """`target` over `lines` with the sandbox's settings and `settings`; no secret in its output."""
    outcome = run_plugin(target, config(sandbox, target, tmp_path, **settings), lines, tmp_path)
    assert outcome.leaked_secrets() == []
    return outcome
