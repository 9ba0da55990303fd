"""Settings given as text (issue 17 item 1): what `.env`, the environment or `meltano config
set` hand a plugin as text is read as the type the setting declares, and a nested mapping can
come as JSON in one variable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from connector_kit.settings import settings_from_text
from target_twenty.target import TargetTwenty
from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TARGET, TIME_SCALE, TargetRunner


def test_numbers_booleans_and_json_given_as_text_are_read_as_their_settings_declare() -> None:
    schema = dict(TargetTwenty.config_jsonschema)
    TargetTwenty.append_builtin_config(schema)

    read = settings_from_text(
        {
            "rate_limit_window_seconds": "1.5",
            "max_requests_per_window": "90",
            "create_missing_fields": "true",
            "validate_records": "False",
            "mappings": '{"companies": {"fields": {"domainName": {"primaryLinkUrl": "web"}}}}',
            "id_namespace": "42",  # a text setting stays text
            "keep_days": "soon",  # not a number: left for validation to name
        },
        schema,
    )

    assert read == {
        "rate_limit_window_seconds": 1.5,
        "max_requests_per_window": 90,
        "create_missing_fields": True,
        "validate_records": False,
        "mappings": {"companies": {"fields": {"domainName": {"primaryLinkUrl": "web"}}}},
        "id_namespace": "42",
        "keep_days": "soon",
    }


def test_a_run_configured_only_by_environment_variables_loads_as_one_from_a_config_file(
    target: TargetRunner, tmp_path: Path
) -> None:
    mappings = {  # the nested form: what Meltano keeps of dotted keys (meltano#7317)
        "companies": {
            "fields": {"name": "name", "domainName": {"primaryLinkUrl": "website"}},
        }
    }
    env = {
        "TARGET_TWENTY_API_KEY": target.twenty.credentials["api_key"],
        "TARGET_TWENTY_BASE_URL": target.twenty.base_url,
        "TARGET_TWENTY_RATE_LIMIT_WINDOW_SECONDS": str(60 / TIME_SCALE),
        "TARGET_TWENTY_CHECKPOINT_SECONDS": "12.5",
        "TARGET_TWENTY_MAPPINGS": json.dumps(mappings),
        "TARGET_TWENTY_ID_MAP_PATH": str(tmp_path / "ids.sqlite3"),
        "TARGET_TWENTY_RUN_REPORT_PATH": str(tmp_path / "report.jsonl"),
        "TARGET_TWENTY_DEAD_LETTER_PATH": str(tmp_path / "dead-letters.jsonl"),
    }
    lines = data.singer_lines(5)

    run = subprocess.run(
        [TARGET, "--config=ENV"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # no .env found on the way up
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TARGET_")}, **env},
    )

    assert run.returncode == 0, run.stderr[-3000:]
    held = {c["domainName"]["primaryLinkUrl"]: c for c in target.twenty.records()["companies"]}
    assert set(held) == {data.domain(i) for i in range(1, 6)}
    assert held[data.domain(2)]["name"] == "Company 2"
    assert held[data.domain(2)]["employees"] is None  # the mapping from the variable: no employees


def test_load_method_other_than_upsert_is_refused_in_one_line(target: TargetRunner) -> None:
    run = target.run(data.singer_lines(2), target.config(load_method="append-only"))

    assert run.returncode != 0
    assert "load_method" in run.stderr and "upsert" in run.stderr
    assert "Traceback" not in run.stderr
    assert [r for r in target.twenty.requests() if r["method"] != "GET"] == []
