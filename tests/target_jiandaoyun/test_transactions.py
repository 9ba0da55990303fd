"""transaction_id: each batch its own, so the API never answers a new batch with an old one's rows
(issue 19, item 1); every row created is reported with its row id.

The sandbox remembers a transaction id for an hour (`transaction_ttl`, time-scaled), as the API
does: an id sent again within it creates nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

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
    singer_lines,
    start_target,
    state,
)
from tests.target_jiandaoyun.test_deletions import SCHEMA, deleted


def messages(*records: dict[str, Any]) -> list[dict]:
    return [
        schema(c.STREAM, SCHEMA),
        *(record(c.STREAM, r) for r in records),
        state({"sent": len(records)}),
    ]


def delete_rows(jdy: SandboxClient, form: tuple[str, str], rows: list[dict]) -> None:
    """Rows deleted by hand in Jiandaoyun (data/batch_delete)."""
    for start in range(0, len(rows), 100):
        answer = requests.post(
            f"{jdy.base_url}/api/v5/app/entry/data/batch_delete",
            json={
                "app_id": form[0],
                "entry_id": form[1],
                "data_ids": [row["_id"] for row in rows[start : start + 100]],
            },
            headers={"Authorization": f"Bearer {jdy.credentials['api_key']}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text


def test_a_record_created_deleted_and_restored_with_the_same_values_is_in_the_form_again(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    [customer] = c.customers(1, seed=191)

    for run_records in ([customer], [deleted(customer["id"])], [customer]):  # three runs
        run = run_target(settings, messages(*run_records), tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]

    # The restore's batch holds the very rows of the first run's: within the hour the API
    # remembers that batch's transaction_id, so the same id would have created nothing.
    [row] = rows_of(jdy, form)
    assert c.actual(row) == c.expected(customer)
    report = read_jsonl(tmp_path / "report.jsonl")
    assert [line["action"] for line in report] == ["created", "deleted", "created"]
    assert report[-1]["id"] == row["_id"]


def test_identical_rows_appended_in_later_runs_are_written_again_also_after_a_wipe(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE)
    customers = c.customers(150, seed=192)

    for _ in range(2):  # append mode: every run appends its rows, the same ones on purpose
        assert run_target(settings, messages(*customers), tmp_path).returncode == 0
    twice = Counter(row["customer_id"] for row in rows_of(jdy, form))
    delete_rows(jdy, form, rows_of(jdy, form))  # the form wiped by hand, and reloaded
    assert run_target(settings, messages(*customers), tmp_path).returncode == 0

    assert twice == {customer["id"]: 2 for customer in customers}
    assert Counter(row["customer_id"] for row in rows_of(jdy, form)) == {
        customer["id"]: 1 for customer in customers
    }


def test_a_batch_whose_first_answer_was_lost_reports_every_created_row_with_its_id(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    customers = c.customers(20, seed=193)
    jdy.gate("batch_create", stage="after", drop=True)  # created, the answer lost

    run = run_target(settings, messages(*customers), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = {row["customer_id"]: row["_id"] for row in rows_of(jdy, form)}
    assert len(rows) == 20  # the retry created nothing more
    report = {line["key"]: line for line in read_jsonl(tmp_path / "report.jsonl")}
    assert {key: line["id"] for key, line in report.items()} == rows
    assert {line["action"] for line in report.values()} == {"created"}


def test_rows_counted_as_created_but_not_in_the_form_are_created_again_under_a_new_id(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    customers = c.customers(10, seed=194)
    jdy.gate("batch_create", stage="after", drop=True)
    retry = jdy.gate("batch_create", skip=1)  # the retry of the batch, held before it is served
    source = tmp_path / "input.singer"
    source.write_text(singer_lines(messages(*customers)))
    with source.open() as stdin:
        process = start_target(settings, tmp_path, stdin=stdin)
    try:
        jdy.wait_at_gate(retry)
        creates = [r for r in jdy.requests() if r["path"].endswith("batch_create")]
        assert [r["fault"] for r in creates] == ["dropped"]
        # Meanwhile two of the rows the lost answer would have named are deleted: the retry
        # counts them as created all the same (success_count 10, success_ids []).
        gone = rows_of(jdy, form)[3:5]
        delete_rows(jdy, form, gone)
        jdy.open_gate(retry)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()

    rows = {row["customer_id"]: row["_id"] for row in rows_of(jdy, form)}
    assert sorted(rows) == sorted(customer["id"] for customer in customers)
    assert not {row["_id"] for row in gone} & set(rows.values())  # created again, anew
    report = {line["key"]: line for line in read_jsonl(tmp_path / "report.jsonl")}
    assert {key: line["id"] for key, line in report.items()} == rows
    creates = [r for r in jdy.requests() if r["path"].endswith("batch_create")]
    assert [r["batch_size"] for r in creates] == [10, 10, 2]  # lost, retried, the two again


def test_rows_still_missing_after_being_created_again_are_dead_lettered_never_reported_created(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    customers = c.customers(4, seed=195)
    # Twice: a batch_create applied, its answer lost, its retry held while rows are deleted.
    for first in (0, 2):
        jdy.gate("batch_create", stage="after", drop=True, skip=first)
    retries = [jdy.gate("batch_create", skip=first + 1) for first in (0, 2)]
    source = tmp_path / "input.singer"
    source.write_text(singer_lines(messages(*customers)))
    with source.open() as stdin:
        process = start_target(settings, tmp_path, stdin=stdin)
    try:
        jdy.wait_at_gate(retries[0])
        delete_rows(jdy, form, rows_of(jdy, form)[:1])  # one of the four is gone
        jdy.open_gate(retries[0])
        jdy.wait_at_gate(retries[1])
        delete_rows(jdy, form, rows_of(jdy, form)[-1:])  # and again, when created anew
        jdy.open_gate(retries[1])
        assert process.wait(timeout=60) == 1  # a record could not be written
    finally:
        process.kill()

    assert len(rows_of(jdy, form)) == 3
    [letter] = read_jsonl(tmp_path / "dead-letters.jsonl")
    assert letter["code"] == "not-created"
    assert "counted it as created, twice, yet no row holds its key" in letter["reason"]
    report = read_jsonl(tmp_path / "report.jsonl")
    assert all(line["id"] for line in report if line["action"] == "created")
    assert sorted(line["action"] for line in report) == ["created"] * 3 + ["failed"]
