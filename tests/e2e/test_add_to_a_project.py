"""Another Meltano project adds target-twenty in one command (issue 17, item 3).

As a Meltano user with a tap of their own would: `meltano init`, a third-party tap from PyPI
(tap-spreadsheets 1.1.2, built on singer-sdk 0.52, reading a CSV file), then

    meltano add --plugin-type loader target-twenty --from-ref plugins/loaders/target-twenty.yml

a mapping set with `meltano config set`, the key and address in `.env`, a plan (`dry_run`),
then the real run into the Twenty sandbox. The definition's `pip_url` is the distribution's
name, `okki-crm-sync`; this test serves it as a wheel built from the checkout
(`UV_FIND_LINKS`), as a package index would.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox, start_sandbox
from tests.e2e.meltano_project import MELTANO, ROOT, meltano_missing

pytestmark = pytest.mark.xdist_group("meltano-add")
TAP = {
    "name": "tap-spreadsheets",
    "namespace": "tap_spreadsheets",
    "pip_url": "tap-spreadsheets==1.1.2",
    "executable": "tap-spreadsheets",
    "capabilities": ["catalog", "discover", "state", "about", "stream-maps"],
    "settings": [{"name": "files", "kind": "array"}],
}
CSV = """id,company,website,city
1,Acme Trading,acme.example.com,Hangzhou
2,Blue Sky Ltd,https://BlueSky.example.com/,Shanghai
3,Cedar Works,cedar.example.com,Beijing
"""
MAPPINGS = {
    "customers": {
        "object": "companies",
        "source_key_field": "sheetId",
        "fields": {
            "name": "company",
            "domainName": {"primaryLinkUrl": "website"},
            "address": {"addressCity": "city"},
        },
    }
}


@pytest.fixture(scope="module")
def twenty() -> Iterator[RunningSandbox]:
    running = start_sandbox("--companies", "1")
    yield running
    running.stop()


def run(cwd: Path, *args: str, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        [str(MELTANO), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"meltano {' '.join(args)}:\n{output[-4000:]}"
    return output


def test_a_fresh_project_adds_target_twenty_from_its_definition_plans_then_loads_a_csv_tap(
    twenty: RunningSandbox, tmp_path: Path
) -> None:
    if problem := meltano_missing():
        pytest.fail(problem)
    wheels = tmp_path / "wheels"
    pip = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_"))},
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "UV_FIND_LINKS": str(wheels),  # okki-crm-sync, as an index would serve it
    }
    env.pop("MELTANO_ENVIRONMENT", None)
    run(tmp_path, "init", "project", "--no_usage_stats", env=env)
    project = tmp_path / "project"
    (project / "tap.yml").write_text(json.dumps(TAP))
    (project / "customers.csv").write_text(CSV)
    run(project, "add", "--plugin-type", "extractor", "tap-spreadsheets", "--from-ref", "tap.yml",
        env=env)  # fmt: skip
    definition = ROOT / "plugins" / "loaders" / "target-twenty.yml"

    run(project, "add", "--plugin-type", "loader", "target-twenty", "--from-ref", str(definition),
        env=env)  # fmt: skip

    files = [{"path": str(project / "customers.csv"), "format": "csv"}]
    files[0] |= {"table_name": "customers", "primary_keys": ["id"]}
    run(project, "config", "set", "tap-spreadsheets", "files", json.dumps(files), env=env)
    run(project, "config", "set", "target-twenty", "mappings", json.dumps(MAPPINGS), env=env)
    run(project, "config", "set", "target-twenty", "create_missing_fields", "true", env=env)
    dotenv = project / ".env"
    dotenv.write_text(
        "TARGET_TWENTY_API_KEY=twenty-demo-key\n"
        f"TARGET_TWENTY_BASE_URL={twenty.twenty.base_url}\n"
        "TARGET_TWENTY_DRY_RUN=true\n"
    )
    listed = run(project, "config", "list", "target-twenty", env=env)
    assert "TARGET_TWENTY_API_KEY" in listed and "twenty-demo-key" not in listed  # sensitive
    twenty.twenty.reset()

    plan = run(project, "run", "tap-spreadsheets", "target-twenty", env=env)

    assert "Plan for stream 'customers': 3 records: 3 to create" in plan
    assert twenty.twenty.records()["companies"] == []
    assert [r for r in twenty.twenty.requests() if r["method"] != "GET"] == []
    planned = [json.loads(line) for line in (project / "output/target-twenty/plan.jsonl").open()]
    assert [(p["key"], p["action"]) for p in planned] == [("1", "create"), ("2", "create"),
                                                          ("3", "create")]  # fmt: skip
    dotenv.write_text(dotenv.read_text().replace("DRY_RUN=true", "DRY_RUN=false"))

    load = run(project, "run", "tap-spreadsheets", "target-twenty", env=env)

    assert "Stream 'customers': 3 records, 3 created" in load
    companies = {c["sheetId"]: c for c in twenty.twenty.records()["companies"]}
    assert {k: (c["name"], c["domainName"]["primaryLinkUrl"]) for k, c in companies.items()} == {
        "1": ("Acme Trading", "https://acme.example.com"),
        "2": ("Blue Sky Ltd", "https://bluesky.example.com"),
        "3": ("Cedar Works", "https://cedar.example.com"),
    }
    assert companies["2"]["address"]["addressCity"] == "Shanghai"
