"""Loads: every writable widget type with the right values, partial failures, upserts."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import (
    config,
    new_form,
    read_jsonl,
    record,
    rows_of,
    run_target,
    schema,
    state,
    writes,
)


def messages(records: list[dict], every: int = 500) -> list[dict]:
    out = [schema(c.STREAM, c.SCHEMA)]
    for n, rec in enumerate(records, start=1):
        out.append(record(c.STREAM, rec))
        if n % every == 0:
            out.append(state({"customers": n}))
    return out


def test_5000_records_of_every_writable_widget_type_land_with_the_right_values(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    records = c.customers(5000, seed=1)
    blanked_before = jdy.stats()["blanked_values"]
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE)
    since = time.time()

    run = run_target(settings, messages(records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = rows_of(jdy, form)
    assert len(rows) == 5000
    by_key = {row["customer_id"]: row for row in rows}
    for rec in records:
        assert c.actual(by_key[rec["id"]]) == c.expected(rec), rec["id"]
    stats = jdy.stats()
    assert stats["blanked_values"] == blanked_before  # nothing was silently saved as empty
    creates = writes(jdy.requests(since))
    assert max(r["batch_size"] for r in creates) == 100
    assert len(creates) == 50 and all(r["status"] == 200 for r in creates)
    # In order, to the last; STATEs acknowledged at the same moment are written once (issue 19).
    sent = [{"customers": n} for n in range(500, 5001, 500)]
    assert run.states == [state for state in sent if state in run.states]
    assert run.states[-1] == {"customers": 5000}
    report = read_jsonl(tmp_path / "report.jsonl")
    assert Counter(line["action"] for line in report) == {"created": 5000}
    assert {line["id"] for line in report} == set(by_key[r["id"]]["_id"] for r in records)


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_with_10_percent_of_rows_failing_on_each_attempt_every_row_lands_exactly_once(
    jdy: SandboxClient, tmp_path: Path, mode: str
) -> None:
    form = new_form(jdy)
    records = c.customers(1000, seed=2)
    spec = c.form_spec(form, **({"key_widget": "客户编号"} if mode == "upsert" else {}))
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    since = time.time()
    failed_before = jdy.stats()["failed_rows"]
    jdy.knobs(extra={"partial_failure_rate": 0.1})
    try:
        run = run_target(settings, messages(records), tmp_path)
    finally:
        jdy.knobs(extra={"partial_failure_rate": 0.0})

    assert run.returncode == 0, run.stderr[-3000:]
    keys = Counter(row["customer_id"] for row in rows_of(jdy, form))
    assert keys == Counter(rec["id"] for rec in records)  # each exactly once
    assert jdy.stats()["failed_rows"] - failed_before > 50  # failures really happened...
    assert len(writes(jdy.requests(since))) > 10  # ...and were re-sent, not given up


def test_a_rerun_in_upsert_mode_updates_rows_instead_of_duplicating_them(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    first = run_target(settings, messages(c.customers(300, seed=3)), tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    ids = {row["customer_id"]: row["_id"] for row in rows_of(jdy, form)}

    changed = c.customers(350, seed=3, version=1)  # 300 known keys, 50 new ones
    second = run_target(settings, messages(changed), tmp_path)

    assert second.returncode == 0, second.stderr[-3000:]
    rows = rows_of(jdy, form)
    assert len(rows) == 350
    by_key = {row["customer_id"]: row for row in rows}
    for rec in changed:
        assert c.actual(by_key[rec["id"]]) == c.expected(rec)
    assert all(by_key[key]["_id"] == row_id for key, row_id in ids.items())
    report = read_jsonl(tmp_path / "report.jsonl")[-350:]
    assert Counter(line["action"] for line in report) == {"updated": 300, "created": 50}


def test_identical_batches_appended_on_purpose_are_all_written(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    records = c.customers(100, seed=4)
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE)

    run = run_target(settings, messages(records + records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert Counter(row["customer_id"] for row in rows_of(jdy, form)) == {
        r["id"]: 2 for r in records
    }


def test_a_key_already_on_two_rows_updates_the_oldest_and_is_reported(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    twice = [{"customer_id": {"value": "C000000"}}, {"customer_id": {"value": "C000000"}}]
    answer = requests.post(
        f"{jdy.base_url}/api/v5/app/entry/data/batch_create",
        json={"app_id": form[0], "entry_id": form[1], "data_list": twice},
        headers={"Authorization": f"Bearer {jdy.credentials['api_key']}"},
        timeout=10,
    ).json()
    oldest, newer = sorted(answer["success_ids"])
    spec = c.form_spec(form, key_widget="客户编号")
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    [rec] = c.customers(1, seed=5)

    run = run_target(settings, messages([rec]), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = {row["_id"]: row for row in rows_of(jdy, form)}
    assert len(rows) == 2
    assert c.actual(rows[oldest]) == c.expected(rec)
    assert rows[newer]["_widget_1704067200001"] == ""  # untouched
    [line] = read_jsonl(tmp_path / "report.jsonl")
    assert line["action"] == "updated" and line["id"] == oldest
    assert "is on 2 rows" in line["reason"] and newer in line["reason"]
    assert "is on 2 rows" in run.stderr


def test_computed_fields_are_written_and_can_be_the_upsert_key(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = {
        "app_id": form[0],
        "entry_id": form[1],
        "fields": {
            "code": {"widget": "客户编号", "expression": "'OKKI-' + id"},
            "name": "客户名称",
            "cents": {"widget": "金额", "expression": "round(amount * 100) if amount else None"},
        },
        "key_widget": "客户编号",
        "key_field": "code",
    }
    settings = config(jdy, {c.STREAM: spec}, tmp_path)
    records = c.customers(30, seed=6)

    for _ in range(2):  # the second run finds every computed key
        run = run_target(settings, messages(records), tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]

    rows = {row["customer_id"]: row for row in rows_of(jdy, form)}
    assert len(rows) == 30
    for rec in records:
        row = rows[f"OKKI-{rec['id']}"]
        assert row["amount"] == (round(rec["amount"] * 100) if rec["amount"] else None)
