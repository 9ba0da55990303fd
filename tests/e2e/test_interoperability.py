"""Our plugins with Singer plugins written by others, installed from PyPI, through Meltano.

- `tap-jsonl` (singer-sdk based, adds `_sdc_*` properties) feeding `target-twenty`;
- `tap-okki` feeding `target-jsonl` (singer-python based).

A throw-away Meltano project in tmp_path declares the four plugins; ours are installed from this
repository, the others from PyPI, each in its own environment as Meltano does.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from crm_sandbox.control import RunningSandbox, start_sandbox
from tests.e2e.meltano_project import MELTANO, ROOT, meltano_missing

pytestmark = pytest.mark.xdist_group("meltano-interop")

COMPANIES = [
    {"id": "c-1", "name": "Acme", "website": "HTTPS://Acme.com/"},
    {"id": "c-2", "name": "Globex", "website": "globex.com"},
    {"id": "c-3", "name": "Initech 株式会社", "website": None},
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_sandbox("--companies", "15", "--seed", "3", "--time-scale", "20")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def project(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if problem := meltano_missing():
        pytest.fail(problem)
    home = tmp_path_factory.mktemp("interop")
    (home / "input").mkdir()
    (home / "input" / "companies.jsonl").write_text(
        "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in COMPANIES)
    )
    (home / "output").mkdir()
    ours = {"pip_url": f"-e {ROOT}"}
    project = {
        "project_id": "interoperability-test",
        "default_environment": "test",
        "send_anonymous_usage_stats": False,
        "environments": [{"name": "test"}],
        "plugins": {
            "extractors": [
                {
                    "name": "tap-jsonl",
                    "namespace": "tap_jsonl",
                    "pip_url": "tap-jsonl==0.3.1",
                    "config": {
                        "path": str(home / "input" / "*.jsonl"),
                        "stream_name": "companies",
                        "primary_keys": ["id"],
                    },
                },
                {
                    "name": "tap-okki",
                    "namespace": "tap_okki",
                    **ours,
                    "config": {
                        "base_url": sandbox.okki.base_url,
                        "client_id": "demo-client-id",
                        "client_secret": "demo-client-secret",
                    },
                    "select": ["companies.*", "opportunities.*"],
                },
            ],
            "loaders": [
                {
                    "name": "target-twenty",
                    "namespace": "target_twenty",
                    **ours,
                    "config": {
                        "base_url": sandbox.twenty.base_url,
                        "api_key": "twenty-demo-key",
                        "id_map_path": str(home / "ids.sqlite3"),
                        "dead_letter_path": str(home / "dead-letters.jsonl"),
                        "mappings": {
                            "companies": {
                                "fields": {
                                    "name": "name",
                                    "domainName": {"primaryLinkUrl": "website"},
                                }
                            }
                        },
                    },
                },
                {
                    "name": "target-jsonl",
                    "namespace": "target_jsonl",
                    "pip_url": "target-jsonl==0.1.4",
                    "config": {"destination_path": str(home / "output")},
                },
            ],
        },
    }
    (home / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    meltano(home, "install")
    return home


def meltano(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = subprocess.run(
        [MELTANO, *args], cwd=home, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_a_third_party_tap_feeds_target_twenty(project: Path, sandbox: RunningSandbox) -> None:
    sandbox.twenty.reset()

    meltano(project, "run", "tap-jsonl", "target-twenty")

    companies = {c["name"]: c for c in sandbox.twenty.records()["companies"]}
    assert set(companies) == {c["name"] for c in COMPANIES}
    assert companies["Acme"]["domainName"]["primaryLinkUrl"] == "https://acme.com"
    assert companies["Globex"]["domainName"]["primaryLinkUrl"] == "https://globex.com"
    # tap-jsonl's `_sdc_*` properties are Singer metadata, not fields: nothing was refused.
    assert not (project / "dead-letters.jsonl").exists()

    meltano(project, "run", "--full-refresh", "tap-jsonl", "target-twenty")
    assert len(sandbox.twenty.records()["companies"]) == len(COMPANIES)


def test_tap_okki_feeds_a_third_party_target(project: Path, sandbox: RunningSandbox) -> None:
    meltano(project, "run", "tap-okki", "target-jsonl")

    written: dict[str, list[dict]] = {}
    for path in (project / "output").glob("*.jsonl"):
        stream = path.name.split("-")[0]
        written[stream] = [json.loads(line) for line in path.read_text().splitlines()]
    okki = sandbox.okki.records()
    assert sorted(c["company_id"] for c in written["companies"]) == sorted(
        c["company_id"] for c in okki["companies"]
    )
    assert len(written["opportunities"]) == len(okki["opportunities"])
