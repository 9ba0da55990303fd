"""Every setting works from `.env`; `meltano config test` checks each plugin (issue 17, items 1
and 5).

A copy of this repository's meltano.yml in a temporary project whose `.env` gives every
non-object setting of the three plugins (numbers with a fraction too: Meltano 4.4.1 crashed on
those while they were `kind: decimal`), then both pipelines through `meltano run`, as a user
runs them. Objects (`mappings`, `forms`, `stream_maps`) stay in meltano.yml; one JSON
variable for them is tested in tests/target_twenty/test_settings_text.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox
from tests.e2e.meltano_project import MELTANO, ROOT, sandbox_for_meltano

sys.path.insert(0, str(ROOT / "scripts"))
from plugin_settings import OWN_PLUGINS, meltano_settings

pytestmark = pytest.mark.xdist_group("meltano-env")
TIME_SCALE = 30  # the sandboxes' rate windows 30× shorter, so the run stays quick


def dotenv_values(sandbox: RunningSandbox, out: Path) -> dict[str, dict[str, str]]:
    """A value for every non-object setting of each plugin, as text, as `.env` holds it."""
    return {
        "tap-okki": {
            "client_id": "demo-client-id",
            "client_secret": "demo-client-secret",
            "base_url": sandbox.okki.base_url,
            "allow_insecure_http": "false",
            "start_date": "2020-01-01T00:00:00+08:00",
            "scope": "company opportunity user",
            "timezone": "Asia/Shanghai",
            "page_size": "50",
            "lookback_minutes": "5",
            "max_requests_per_second": "60.5",
            "rate_budget_dir": str(out / "budgets"),
            "detail_concurrency": "3",
            "max_rows_per_window": "500",
            "follow_ups_lookback_days": "3",
            "request_timeout": "30.5",
            "max_attempts": "6",
            "backoff_base_seconds": "0.25",
            "backoff_max_seconds": "5.5",
        },
        "target-twenty": {
            "api_key": "twenty-demo-key",
            "base_url": sandbox.twenty.base_url,
            "batch_size_rows": "25",
            "load_method": "upsert",
            "max_requests_per_window": "90",
            "rate_limit_window_seconds": f"{60 / TIME_SCALE + 0.5}",
            "id_map_path": str(out / "twenty" / "ids.sqlite3"),
            "id_namespace": "from-dotenv",
            "process_deletes": "true",
            "on_unique_conflict": "keep_apart",
            "adopted_rows": "fill_empty",
            "delete_adopted_rows": "false",
            "on_missing_parent": "dead_letter",
            "create_missing_fields": "true",
            "max_held_records": "5000",
            "max_in_flight": "4",
            "default_timezone": "Asia/Shanghai",
            "dry_run": "false",
            "dead_letter_path": str(out / "twenty" / "dead-letters.jsonl"),
            "run_report_path": str(out / "twenty" / "report.jsonl"),
            "keep_days": "30",
            "max_failed_records": "0",
            "checkpoint_seconds": "15.5",
            "max_retry_after_seconds": "90.5",
            "rate_budget_dir": str(out / "budgets"),
            "allow_insecure_http": "false",
            "validate_records": "true",
        },
        "target-jiandaoyun": {
            "api_key": "jdy-demo-key",
            "base_url": sandbox.jiandaoyun.base_url,
            "data_creator": "jdy-admin",
            "is_start_workflow": "false",
            "default_timezone": "Asia/Shanghai",
            "process_deletes": "true",
            "on_unknown_member": "skip_field",
            "on_unknown_department": "skip_field",
            "on_unknown_option": "skip_field",
            "check_required_widgets": "true",
            "batch_requests_per_second": "100.5",
            "single_write_requests_per_second": "200.5",
            "read_requests_per_second": "300.5",
            "company_requests_per_second": "500.5",
            "request_timeout": "60.5",
            "batch_size_rows": "30",
            "load_method": "upsert",
            "dry_run": "false",
            "dead_letter_path": str(out / "jiandaoyun" / "dead-letters.jsonl"),
            "run_report_path": str(out / "jiandaoyun" / "report.jsonl"),
            "keep_days": "30",
            "max_failed_records": "0",
            "max_in_flight": "4",
            "checkpoint_seconds": "15.5",
            "max_retry_after_seconds": "90.5",
            "rate_budget_dir": str(out / "budgets"),
            "allow_insecure_http": "false",
            "validate_records": "true",
        },
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_for_meltano("--companies", "40", "--time-scale", str(TIME_SCALE)) as running:
        yield running


def project_with(tmp_path: Path, dotenv: dict[str, str]) -> Path:
    """meltano.yml copied into a project of its own, with `dotenv` as its .env."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    (project / ".env").write_text("".join(f"{k}='{v}'\n" for k, v in dotenv.items()))
    (project / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):  # the installed plugins, shared
        (project / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    return project


def meltano(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_OKKI", "TARGET_"))},
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_STATE_BACKEND_URI": f"file://{project / 'state'}",
    }
    return subprocess.run(
        [str(MELTANO), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_every_non_object_setting_given_in_dotenv_reaches_the_plugins_and_meltano_run_works(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    for api in (sandbox.okki, sandbox.twenty, sandbox.jiandaoyun):
        api.reset()
    out = tmp_path / "out"
    values = dotenv_values(sandbox, out)
    for plugin in OWN_PLUGINS:  # a setting added later must get a value here too
        declared = {s["name"] for s in meltano_settings(plugin) if s["kind"] != "object"}
        assert declared == set(values[plugin]), plugin
    dotenv = {
        f"{plugin.upper().replace('-', '_')}_{name.upper()}": value
        for plugin, settings in values.items()
        for name, value in settings.items()
    }
    project = project_with(tmp_path, dotenv)

    twenty = meltano(project, "run", "tap-okki", "target-twenty")
    jiandaoyun = meltano(project, "run", "tap-okki-companies", "target-jiandaoyun")

    for run in (twenty, jiandaoyun):
        assert run.returncode == 0, run.stderr[-4000:]
        assert "Decimal" not in run.stderr
    companies = len(sandbox.okki.records()["companies"])
    held = sandbox.twenty.records()
    assert len(held["companies"]) == companies
    assert all(row.get("okkiId") for row in held["companies"])  # create_missing_fields
    rows = sandbox.jiandaoyun.records()["forms"]["demo_app/demo_customers"]
    assert len(rows) == companies
    # The paths, sizes and numbers given as text in .env are the ones the plugins used.
    assert (out / "twenty" / "ids.sqlite3").exists()
    twenty_report = jsonl(out / "twenty" / "report.jsonl")
    jiandaoyun_report = jsonl(out / "jiandaoyun" / "report.jsonl")
    assert len([r for r in twenty_report if r["stream"] == "companies"]) == companies
    assert len([r for r in jiandaoyun_report if r["stream"] == "companies"]) == companies
    records = ("/rest/batch/companies", "/rest/batch/people", "/rest/batch/opportunities")
    batches = [r["batch_size"] for r in sandbox.twenty.requests() if r["path"] in records]
    assert batches and max(batches) <= 25  # (junction rows of notes' links are no records)
    creates = [r for r in sandbox.jiandaoyun.requests() if r["path"].endswith("batch_create")]
    assert creates and max(r["batch_size"] for r in creates) <= 30
    # Each plugin shared its keys' budgets through ledger files there, named by hashes only.
    ledgers = list((out / "budgets").iterdir())
    assert len(ledgers) >= 3 and all(p.suffix == ".next" for p in ledgers)


def test_meltano_config_test_checks_every_plugin_against_its_api_and_writes_nothing(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    for api in (sandbox.okki, sandbox.twenty, sandbox.jiandaoyun):
        api.reset()
        api.clear_requests()
    values = dotenv_values(sandbox, tmp_path / "out")
    dotenv = {
        f"{plugin.upper().replace('-', '_')}_{name.upper()}": settings[name]
        for plugin, settings in values.items()
        for name in ("base_url", "id_map_path")
        if name in settings
    }
    project = project_with(tmp_path, dotenv)

    tap = meltano(project, "config", "test", "tap-okki")
    targets = {
        t: meltano(project, "--log-level=debug", "config", "test", t)
        for t in ("target-twenty", "target-jiandaoyun")
    }
    invoked = {t: meltano(project, "invoke", t, "--test") for t in targets}

    assert tap.returncode == 0 and "Plugin configuration is valid" in tap.stdout + tap.stderr
    for target, run in targets.items():
        output = run.stdout + run.stderr
        # The target's check passed: it exited 0 and printed no line Meltano counts as an
        # error. Meltano 4.4.1 then fails on its own (ProcessLookupError from terminate() on
        # the finished process, connector_kit/configtest.py), which `invoke --test` avoids.
        assert "Configuration test passed" in output, (target, output[-3000:])
        assert "Process return code: 0" in output, target
        assert invoked[target].returncode == 0, invoked[target].stderr[-3000:]
        assert "Configuration test passed" in invoked[target].stderr
    assert "the API key reads the metadata" in invoked["target-twenty"].stderr
    assert "mapping checked against its 20 widgets" in invoked["target-jiandaoyun"].stderr
    for api in (sandbox.twenty, sandbox.jiandaoyun):
        assert [r for r in api.requests() if r["method"] != "GET" and "list" not in r["path"]] == []
    assert all(not rows for rows in sandbox.twenty.records().values() if isinstance(rows, list))
