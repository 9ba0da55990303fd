"""Wrong settings stop the run before anything is written, with a message naming the setting;
secrets never show (invariants 1 and 2)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import (
    TARGET,
    config,
    new_form,
    read_jsonl,
    record,
    rows_of,
    run_target,
    schema,
    singer_lines,
    state,
    write_config,
)

WRITES = ("batch_create", "data/update", "data/create")


def some_records(count: int = 5) -> list[dict]:
    return [
        schema(c.STREAM, c.SCHEMA),
        *(record(c.STREAM, r) for r in c.customers(count)),
        state({"n": count}),
    ]


def writes_since(jdy: SandboxClient, since: float) -> list[dict]:
    return [r for r in jdy.requests(since) if r["path"].endswith(WRITES)]


def test_a_field_mapped_to_a_label_not_on_the_form_is_an_error_before_anything_is_written(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form)
    spec["fields"] = {**spec["fields"], "name": "客户全称"}  # the label is 客户名称
    since = time.time()

    run = run_target(config(jdy, {c.STREAM: spec}, tmp_path), some_records(), tmp_path)

    assert run.returncode != 0
    assert "Stream 'customers', field 'name'" in run.stderr
    assert "'客户全称'" in run.stderr and f"form {form[0]}/{form[1]}" in run.stderr
    assert writes_since(jdy, since) == [] and rows_of(jdy, form) == []
    assert run.states == []


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"api_key": "not-a-key"}, "'api_key'"),
        ({"app_id": "no_such_app"}, "'app_id'"),
        ({"entry_id": "no_such_form"}, "'entry_id'"),
    ],
)
def test_a_refused_key_or_missing_app_or_form_stops_at_once_naming_the_setting(
    jdy: SandboxClient, tmp_path: Path, change: dict, setting: str
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form)
    settings = config(jdy, {c.STREAM: spec}, tmp_path)
    if "api_key" in change:
        settings.update(change)
    else:
        spec.update(change)
    since = time.time()
    started = time.monotonic()

    run = run_target(settings, some_records(), tmp_path)

    assert run.returncode != 0
    assert setting in run.stderr
    assert time.monotonic() - started < 15  # no retry loop
    calls = jdy.requests(since)
    assert len(calls) == 1 and calls[0]["status"] == 400  # one widget/list, not retried
    assert rows_of(jdy, form) == []


def test_a_stream_without_a_form_is_an_error_naming_the_stream(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {"other": c.form_spec(form)}, tmp_path)
    run = run_target(settings, some_records(), tmp_path)
    assert run.returncode != 0
    assert "Stream 'customers' has no entry in the 'forms' setting" in run.stderr


def test_plain_http_to_a_remote_host_is_refused_unless_allowed(tmp_path: Path) -> None:
    settings = {
        "api_key": "jdy-test-key-7c1",
        "base_url": "http://api.example.com",
        "forms": {"s": {"app_id": "a", "entry_id": "e"}},
    }
    run = run_target(settings, "", tmp_path)
    assert (
        run.returncode != 0 and "'base_url'" in run.stderr and "allow_insecure_http" in run.stderr
    )


def test_a_zoneless_datetime_needs_default_timezone_and_a_bad_zone_is_refused(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone="Mars/Base")
    run = run_target(settings, some_records(), tmp_path)
    assert run.returncode != 0 and "'default_timezone'" in run.stderr


def test_the_api_key_never_appears_in_output_logs_reports_or_dead_letters(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    secret = "jdy-SECRET-7f3a9c"
    jdy.knobs(extra={"api_keys": [jdy.credentials["api_key"], secret]})
    try:
        form = new_form(jdy)
        settings = config(
            jdy,
            {c.STREAM: c.form_spec(form)},
            tmp_path,
            api_key=secret,
            default_timezone=c.TIMEZONE,
        )
        bad = c.customers(3)
        bad[1]["amount"] = "lots"  # dead-lettered: the dead-letter file is written too
        messages = [
            schema(c.STREAM, {**c.SCHEMA, "amount": {}}),
            *(record(c.STREAM, r) for r in bad),
        ]
        text = singer_lines(messages)
        done = subprocess.run(
            [*TARGET, "--config", str(write_config(settings, tmp_path))],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LOGLEVEL": "DEBUG"},
        )
        wrong = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, api_key=secret + "-old")
        refused = run_target(wrong, messages, tmp_path)
    finally:
        jdy.knobs(extra={"api_keys": [jdy.credentials["api_key"]]})

    assert "DEBUG" in done.stderr  # debug logging really was on
    assert len(read_jsonl(tmp_path / "dead-letters.jsonl")) == 1
    outputs = [done.stdout, done.stderr, refused.stdout, refused.stderr]
    outputs += [(tmp_path / name).read_text() for name in ("dead-letters.jsonl", "report.jsonl")]
    assert refused.returncode != 0 and "8301" in refused.stderr
    for text in outputs:
        assert secret not in text


def test_data_creator_is_recorded_and_an_unknown_member_stops_the_run_naming_the_setting(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form)
    settings = config(
        jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE, data_creator="zhangsan"
    )
    run = run_target(settings, some_records(), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {row["creator"]["username"] for row in rows_of(jdy, form)} == {"zhangsan"}

    spec["data_creator"] = "nobody"  # a per-form override of the top-level setting
    failed = run_target(settings, some_records(), tmp_path)
    assert failed.returncode != 0
    assert "1010" in failed.stderr and "'data_creator'" in failed.stderr
    assert len(rows_of(jdy, form)) == 5


def test_an_expression_reading_a_name_the_schema_lacks_stops_the_run_before_any_write(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    spec["fields"] = {**spec["fields"], "cents": {"widget": "金额", "expression": "amout * 100"}}
    del spec["fields"]["amount"]
    since = time.time()

    run = run_target(config(jdy, {c.STREAM: spec}, tmp_path), some_records(), tmp_path)

    assert run.returncode != 0
    assert "Stream 'customers', field 'cents': expression 'amout * 100' reads 'amout'" in run.stderr
    assert writes_since(jdy, since) == [] and rows_of(jdy, form) == []
    assert read_jsonl(tmp_path / "dead-letters.jsonl") == []  # not one dead letter per record


def test_a_mapping_that_writes_only_the_key_is_an_error_not_60_updates(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = {"app_id": form[0], "entry_id": form[1], "key_widget": "客户编号", "fields": {}}
    since = time.time()

    run = run_target(config(jdy, {c.STREAM: spec}, tmp_path), some_records(), tmp_path)

    assert run.returncode != 0
    assert "the mapping writes nothing" in run.stderr or "writes only the key" in run.stderr
    assert writes_since(jdy, since) == []


def test_append_mode_warns_at_start_that_records_sent_again_create_rows_again(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE)

    first = run_target(settings, some_records(2), tmp_path)
    again = run_target(settings, some_records(3), tmp_path)  # 2 sent again, in another batch

    assert first.returncode == 0 and again.returncode == 0
    warning = next(line for line in first.stderr.splitlines() if "appends (no key_widget)" in line)
    assert "WARNING" in warning and "a retried batch is never created twice" in warning
    assert "creates another row" in warning and "forms.customers.key_widget" in warning
    assert len(rows_of(jdy, form)) == 5  # as the warning said

    upsert = c.form_spec(form, key_widget="客户编号")
    quiet = run_target(config(jdy, {c.STREAM: upsert}, tmp_path), some_records(2), tmp_path)
    assert "appends (no key_widget)" not in quiet.stderr
