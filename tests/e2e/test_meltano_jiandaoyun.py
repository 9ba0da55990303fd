"""`meltano run tap-okki-companies target-jiandaoyun`, and the project's Meltano plumbing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox
from tests.e2e.meltano_project import (
    MELTANO,
    ROOT,
    MeltanoProject,
    fresh_project,
    sandbox_for_meltano,
)

pytestmark = pytest.mark.xdist_group("meltano")
FORM = "demo_app/demo_customers"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_for_meltano("--companies", "30", "--seed", "9", "--time-scale", "20") as running:
        yield running


@pytest.fixture
def project(sandbox: RunningSandbox, tmp_path: Path) -> MeltanoProject:
    return fresh_project(sandbox, tmp_path)


def test_companies_land_in_the_customer_form_with_contacts_as_a_subform_once(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    first = project.run("run", "tap-okki-companies", "target-jiandaoyun")
    assert first.returncode == 0, first.log[-3000:]
    okki = {c["company_id"]: c for c in sandbox.okki.records()["companies"]}
    rows = sandbox.jiandaoyun.records()["forms"][FORM]
    by_key = {row["customer_id"]: row for row in rows}
    assert len(rows) == len(okki) == len(by_key)
    some_id, company = next((k, c) for k, c in okki.items() if c["customers"])
    row = by_key[str(some_id)]
    assert row["_widget_1704067200001"] == company["name"]
    contacts = row["_widget_1704067200014"]
    assert [c["_widget_1704067200015"] for c in contacts] == [
        p["name"] for p in company["customers"]
    ]
    assert sandbox.jiandaoyun.stats()["blanked_values"] == 0

    sandbox.okki.post("companies/update", {"company_ids": [some_id]})
    second = project.run("run", "tap-okki-companies", "target-jiandaoyun")

    assert second.returncode == 0, second.log[-3000:]
    assert second.keys("target-jiandaoyun", "companies") == [some_id]
    assert len(sandbox.jiandaoyun.records()["forms"][FORM]) == len(okki)


def meltano(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MELTANO_CLI_DISABLE_VERSION_CHECK": "true"}
    return subprocess.run(
        [MELTANO, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("plugin", ["tap-okki", "target-twenty", "target-jiandaoyun"])
def test_meltano_invoke_about_works_for_every_plugin(plugin: str, sandbox: RunningSandbox) -> None:
    result = meltano("invoke", plugin, "--about", "--format=json")
    assert result.returncode == 0, result.stderr[-2000:]
    about = json.loads(result.stdout[result.stdout.index("{") :])
    assert about["name"] == plugin


@pytest.mark.parametrize(
    ("plugin", "secret_env", "secret"),
    [
        ("tap-okki", "TAP_OKKI_CLIENT_SECRET", "okki-secret-do-not-print"),
        ("target-twenty", "TARGET_TWENTY_API_KEY", "twenty-key-do-not-print"),
        ("target-jiandaoyun", "TARGET_JIANDAOYUN_API_KEY", "jdy-key-do-not-print"),
    ],
)
def test_meltano_config_list_redacts_every_secret(
    plugin: str, secret_env: str, secret: str, sandbox: RunningSandbox
) -> None:
    env = {**os.environ, "MELTANO_CLI_DISABLE_VERSION_CHECK": "true", secret_env: secret}
    for environment in ("dev", "prod"):
        result = subprocess.run(
            [MELTANO, f"--environment={environment}", "config", "list", plugin],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        output = result.stdout + result.stderr
        assert secret not in output
        for demo_secret in ("demo-client-secret", "twenty-demo-key", "jdy-demo-key"):
            assert demo_secret not in output
        assert "(redacted)" in output
