"""Settings are checked before anything is read; secrets never reach stdout or stderr."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from crm_sandbox.control import RunningSandbox
from tap_okki.tap import TapOkki
from tests.tap_okki.helpers import run_tap, stats_calls, tap_config


def assert_stopped_before_any_call(okki: RunningSandbox, run_output: str, setting: str) -> None:
    assert f"'{setting}'" in run_output
    stats = okki.okki.stats()
    assert stats["tokens_issued"] == 0 and not stats["calls"]


def test_missing_client_id_stops_the_run_before_any_call_naming_the_setting(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    config = tap_config(okki)
    del config["client_id"]
    run = run_tap(tmp_path, config)
    assert run.returncode != 0
    assert_stopped_before_any_call(okki, run.stderr, "client_id")


@pytest.mark.parametrize("start_date", ["not-a-date", "2025-13-45", "yesterday"])
def test_a_start_date_that_is_not_a_date_stops_the_run_naming_the_setting(
    okki: RunningSandbox, tmp_path: Path, start_date: str
) -> None:
    run = run_tap(tmp_path, tap_config(okki, start_date=start_date))
    assert run.returncode != 0
    assert_stopped_before_any_call(okki, run.stderr, "start_date")


def test_a_page_size_over_okkis_maximum_is_refused(okki: RunningSandbox, tmp_path: Path) -> None:
    run = run_tap(tmp_path, tap_config(okki, page_size=500))
    assert run.returncode != 0
    assert_stopped_before_any_call(okki, run.stderr, "page_size")


def test_credentials_okki_refuses_stop_the_run_before_any_record_naming_the_settings(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    wrong = "not-the-secret-5f2c9a"
    run = run_tap(tmp_path, tap_config(okki, client_secret=wrong))
    assert run.returncode != 0
    assert "invalid_client" in run.stderr
    assert "'client_id'/'client_secret'" in run.stderr
    assert [m for m in run.messages if m["type"] == "RECORD"] == []
    assert wrong not in run.output
    assert stats_calls(okki)["/v1/company/list"] == 0


def test_a_scope_okki_refuses_is_named(okki: RunningSandbox, tmp_path: Path) -> None:
    run = run_tap(tmp_path, tap_config(okki, scope="company bogus"))
    assert run.returncode != 0
    assert "invalid_scope" in run.stderr and "'scope'" in run.stderr


def test_plain_http_to_a_remote_host_is_refused_unless_explicitly_allowed(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    refused = run_tap(tmp_path, tap_config(okki, base_url="http://crm.example.com"))
    assert refused.returncode != 0
    assert "'allow_insecure_http'" in refused.stderr
    assert_stopped_before_any_call(okki, refused.stderr, "base_url")

    def errors(url: str, allow: bool = False) -> list[str]:
        return TapOkki(
            config={**tap_config(okki), "base_url": url, "allow_insecure_http": allow},
            validate_config=False,
        )._validate_config(raise_errors=False)

    assert errors("http://crm.example.com", allow=True) == []
    assert errors("https://crm.example.com") == []
    assert errors("http://127.0.0.1:9") == errors("http://localhost:9") == []
    assert errors("http://[::1]:9") == []
    assert errors("ftp://crm.example.com")  # not http(s) at all


def test_secrets_never_appear_in_output_even_with_debug_logging(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    config = tap_config(okki)
    secret = config["client_secret"]
    # A token of this sandbox, to know what one looks like: its first part (the JWT header)
    # is the same in every token, so any token printed anywhere would show it.
    answer = requests.post(
        f"{okki.okki.base_url}/v1/oauth2/access_token",
        json={
            "grant_type": "client_credentials",
            "client_id": config["client_id"],
            "client_secret": secret,
            "scope": "company",
        },
        timeout=10,
    ).json()
    token_header = answer["access_token"].split(".")[0]
    okki.okki.knobs(error_rate=0.1, drop_rate=0.03, extra={"revoke_tokens_after_requests": 40})
    debug = {"TAP_OKKI_LOGLEVEL": "DEBUG"}

    run = run_tap(tmp_path, config, env=debug).check()
    refused = run_tap(tmp_path, {**config, "client_secret": secret + "-wrong"}, env=debug)

    assert "DEBUG" in run.stderr  # debug logging was really on
    assert okki.okki.stats()["tokens_issued"] >= 3  # ours, the tap's, one after revocation
    for output in (run.output, refused.output):
        assert secret not in output
        assert token_header not in output
        assert not re.search(r"Bearer [\w.-]{8,}", output)
        assert 'access_token"' not in output


def test_about_discover_and_test_modes_work(okki: RunningSandbox, tmp_path: Path) -> None:
    about = json.loads(run_tap(tmp_path, {}, args=("--about", "--format=json")).check().stdout)
    settings = about["settings"]["properties"]
    assert settings["client_secret"].get("secret") is True
    assert set(about["settings"]["required"]) == {"client_id", "client_secret"}
    assert "batch" not in about["capabilities"]

    config = tap_config(okki)
    catalog = json.loads(run_tap(tmp_path, config, args=("--discover",)).check().stdout)
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert set(streams) == {
        "companies", "contacts", "opportunities", "follow_ups", "next_follow_ups"
    }  # fmt: skip
    assert streams["companies"]["key_properties"] == ["company_id"]
    assert streams["contacts"]["key_properties"] == ["customer_id"]
    assert streams["opportunities"]["key_properties"] == ["opportunity_id"]
    assert streams["follow_ups"]["key_properties"] == ["trail_id"]
    assert streams["companies"]["replication_key"] == "update_time"
    assert streams["follow_ups"]["replication_key"] == "create_time"
    assert stats_calls(okki) == {}  # discovery reads nothing from OKKI

    tested = run_tap(tmp_path, config, args=("--test",)).check()
    assert {m["stream"] for m in tested.messages if m["type"] == "RECORD"} == {
        "companies",
        "contacts",
        "opportunities",
        "follow_ups",
        "next_follow_ups",
    }
