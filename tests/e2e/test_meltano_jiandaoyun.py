"""`meltano run tap-okki-companies target-jiandaoyun`, and the project's Meltano plumbing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

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
FOLLOW_UPS = "demo_app/demo_follow_ups"


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


CONTACTS, CONTACT_NAME, CALLS = (
    "_widget_1704067200014",
    "_widget_1704067200015",
    "_widget_1704067200017",
)
DELETED_AT = "deleted_at"  # 删除时间


def fill_in_calls_by_hand(sandbox: RunningSandbox, row: dict) -> None:
    """What a salesperson does in Jiandaoyun: count the calls to each contact."""
    contacts = [
        {
            "_id": item["_id"],
            **{k: {"value": v} for k, v in item.items() if k != "_id" and v not in ("", None)},
            CALLS: {"value": 3},
        }
        for item in row[CONTACTS]
    ]
    jdy = sandbox.jiandaoyun
    answer = requests.post(
        f"{jdy.base_url}/api/v5/app/entry/data/update",
        json={
            "app_id": "demo_app",
            "entry_id": "demo_customers",
            "data_id": row["_id"],
            "data": {CONTACTS: {"value": contacts}},
        },
        headers={"Authorization": f"Bearer {jdy.credentials['api_key']}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def forms_with(**change: object) -> str:
    """meltano.yml's `forms` setting for target-jiandaoyun, changed, as an environment value."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    loader = next(p for p in project["plugins"]["loaders"] if p["name"] == "target-jiandaoyun")
    forms = loader["config"]["forms"]
    forms["companies"].update(change)  # Meltano merges this into meltano.yml's: null unsets
    return json.dumps(forms, ensure_ascii=False)


@pytest.mark.parametrize("mode", ["mark", "delete"])
def test_companies_deleted_in_okki_are_marked_or_deleted_and_hand_typed_contacts_survive(
    mode: str, project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    if mode == "delete":  # meltano.yml marks; the same pipeline with real deletions
        project.extra_env["TARGET_JIANDAOYUN_FORMS"] = forms_with(
            delete_mode="delete", mark_widget=None
        )
    first = project.run("run", "tap-okki-companies", "target-jiandaoyun")
    assert first.returncode == 0, first.log[-3000:]
    rows = {row["customer_id"]: row for row in sandbox.jiandaoyun.records()["forms"][FORM]}
    kept, typed_into = [k for k, row in rows.items() if len(row[CONTACTS]) >= 2][:2]
    fill_in_calls_by_hand(sandbox, rows[typed_into])
    contact_ids = [c["_id"] for c in rows[typed_into][CONTACTS]]
    gone = sandbox.okki.post("companies/delete", {"company_ids": [int(kept)]})["company_ids"]
    sandbox.okki.post("companies/update", {"company_ids": [int(typed_into)]})

    second = project.run("run", "tap-okki-companies", "target-jiandaoyun")

    assert second.returncode == 0, second.log[-3000:]
    after = {row["customer_id"]: row for row in sandbox.jiandaoyun.records()["forms"][FORM]}
    if mode == "mark":
        assert set(after) == set(rows)  # the row and what people typed into it stay
        assert after[str(gone[0])][DELETED_AT] is not None
        assert "mark their rows deleted: 删除时间 = the deletion time" in second.log
    else:
        assert set(after) == set(rows) - {str(gone[0])}
        assert "delete their rows from form demo_app/demo_customers" in second.log
    assert all(row[DELETED_AT] is None for key, row in after.items() if key != str(gone[0]))
    contacts = after[typed_into][CONTACTS]
    assert [c["_id"] for c in contacts] == contact_ids  # rows matched by OKKI's contact id
    assert [c[CALLS] for c in contacts] == [3] * len(contact_ids)  # typed by hand: kept
    assert second.tally("target-jiandaoyun")["companies"]["deleted"] == 1
    assert sandbox.jiandaoyun.stats()["blanked_values"] == 0


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


def test_follow_ups_land_in_the_follow_up_form_once_and_deleted_ones_are_marked(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    first = project.run("run", "tap-okki-companies", "target-jiandaoyun")
    assert first.returncode == 0, first.log[-3000:]
    follow_ups = {f["trail_id"]: f for f in sandbox.okki.records()["follow_ups"]}
    rows = {r["trail_id"]: r for r in sandbox.jiandaoyun.records()["forms"][FOLLOW_UPS]}
    assert set(rows) == {str(k) for k in follow_ups}
    some_id, follow_up = next(iter(follow_ups.items()))
    row = rows[str(some_id)]
    assert row["_widget_1704067400004"] == follow_up["content"]  # line breaks kept
    assert row["_widget_1704067400002"] == str(follow_up["company_id"])
    assert row["_widget_1704067400005"]  # when it happened

    sandbox.okki.post("follow_ups/delete", {"trail_ids": [some_id]})
    second = project.run("run", "tap-okki-companies", "target-jiandaoyun")

    assert second.returncode == 0, second.log[-3000:]
    rows = {r["trail_id"]: r for r in sandbox.jiandaoyun.records()["forms"][FOLLOW_UPS]}
    assert len(rows) == len(follow_ups)  # nothing created twice
    assert rows[str(some_id)]["deleted_at"]  # marked, kept
    assert sandbox.jiandaoyun.stats()["blanked_values"] == 0
