"""Records a tap marks deleted (`_sdc_deleted_at`) delete the rows holding their key, or, with
`delete_mode: mark`, mark them and keep them."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

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
    writes,
)

SCHEMA = {**c.SCHEMA, "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"}}


def deleted(key: str) -> dict[str, Any]:
    """What tap-okki sends for a deleted company: the key, the mark, perhaps a few fields."""
    return {"id": key, "name": "gone", "_sdc_deleted_at": "2026-03-01T08:00:00+08:00"}


def messages(*records: dict[str, Any]) -> list[dict]:
    return [
        schema(c.STREAM, SCHEMA),
        *(record(c.STREAM, r) for r in records),
        state({"sent": len(records)}),
    ]


def upsert_settings(jdy: SandboxClient, tmp_path: Path, **settings: Any) -> dict:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    return config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE, **settings)


def form_of(settings: dict) -> tuple[str, str]:
    spec = settings["forms"][c.STREAM]
    return spec["app_id"], spec["entry_id"]


def keys_in(jdy: SandboxClient, settings: dict) -> Counter[str]:
    return Counter(row["customer_id"] for row in rows_of(jdy, form_of(settings)))


def test_records_marked_deleted_delete_the_rows_holding_their_key(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings = upsert_settings(jdy, tmp_path)
    records = c.customers(20, seed=31)
    assert run_target(settings, messages(*records), tmp_path).returncode == 0
    ids = {row["customer_id"]: row["_id"] for row in rows_of(jdy, form_of(settings))}
    since = time.time()

    gone = ["C000003", "C000007", "C000011"]
    run = run_target(settings, messages(*map(deleted, gone), records[0]), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert keys_in(jdy, settings) == {r["id"]: 1 for r in records if r["id"] not in gone}
    assert len(writes(jdy.requests(since), "data/delete")) == 3
    report = read_jsonl(tmp_path / "report.jsonl")[20:]
    assert sorted((r["key"], r["id"]) for r in report if r["action"] == "deleted") == [
        (key, ids[key]) for key in gone
    ]
    assert "4 records, 0 created, 1 updated, 3 deleted, 0 failed" in run.stderr
    assert run.states == [{"sent": 4}]
    assert run.dead_letters(tmp_path) == []


def test_sending_a_deletion_again_or_for_a_key_never_written_is_harmless(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings = upsert_settings(jdy, tmp_path)
    records = c.customers(3, seed=32)
    assert run_target(settings, messages(*records), tmp_path).returncode == 0
    deletion = messages(deleted("C000001"), deleted("C999999"))
    assert run_target(settings, deletion, tmp_path).returncode == 0

    again = run_target(settings, deletion, tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert again.states == [{"sent": 2}]
    assert keys_in(jdy, settings) == {"C000000": 1, "C000002": 1}
    last = read_jsonl(tmp_path / "report.jsonl")[-2:]
    assert [line["action"] for line in last] == ["deleted", "deleted"]
    assert all(line["reason"].startswith("no row holds this key") for line in last)
    assert again.dead_letters(tmp_path) == []


def test_a_record_deleted_then_sent_again_is_a_row_again(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings = upsert_settings(jdy, tmp_path)
    records = c.customers(2, seed=33)
    assert run_target(settings, messages(*records), tmp_path).returncode == 0

    # C000000 is deleted and restored within one input (one batch); C000001 deleted here...
    run = run_target(
        settings, messages(deleted("C000000"), deleted("C000001"), records[0]), tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert keys_in(jdy, settings) == {"C000000": 1}

    # ... and restored by the next run.
    assert run_target(settings, messages(records[1]), tmp_path).returncode == 0

    rows = {row["customer_id"]: row for row in rows_of(jdy, form_of(settings))}
    assert {key: c.actual(row) for key, row in rows.items()} == {
        r["id"]: c.expected(r) for r in records
    }


def test_a_deletion_never_overtakes_an_earlier_write_of_the_same_record(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings = upsert_settings(jdy, tmp_path, batch_size_rows=1)
    records = c.customers(20, seed=34)
    jdy.knobs(latency=0.01, latency_jitter=0.05)
    try:
        run = run_target(
            settings, messages(*(m for r in records for m in (r, deleted(r["id"])))), tmp_path
        )
    finally:
        jdy.knobs(latency=0.0, latency_jitter=0.0)

    assert run.returncode == 0, run.stderr[-3000:]
    assert keys_in(jdy, settings) == {}


def test_state_is_written_only_once_the_rows_before_it_are_deleted(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings = upsert_settings(jdy, tmp_path, single_write_requests_per_second=100)
    records = c.customers(200, seed=35)
    assert run_target(settings, messages(*records), tmp_path).returncode == 0
    tap = [schema(c.STREAM, SCHEMA)]
    for n, rec in enumerate(records, start=1):
        tap.append(record(c.STREAM, deleted(rec["id"])))
        if n % 25 == 0:
            tap.append(state({"sent": n}))
    process = start_target(settings, tmp_path, stdin=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(singer_lines(tap))
    process.stdin.close()
    seen = []
    for line in process.stdout:
        sent = json.loads(line)["sent"]
        left = keys_in(jdy, settings)
        assert not any(rec["id"] in left for rec in records[:sent]), sent
        seen.append(sent)
    process.wait(timeout=60)

    assert process.returncode == 0
    # In order, to the last; STATEs acknowledged at the same moment as a later one are not
    # written (issue 19: only the latest of them matters).
    assert seen == sorted(seen) and seen[-1] == 200


def test_without_a_key_widget_deleted_records_are_skipped_not_appended(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE)
    records = c.customers(2, seed=36)

    run = run_target(settings, messages(*records, deleted("C000000"), deleted("C000009")), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert keys_in(jdy, {"forms": {c.STREAM: {"app_id": form[0], "entry_id": form[1]}}}) == {
        "C000000": 1,
        "C000001": 1,
    }
    report = read_jsonl(tmp_path / "report.jsonl")
    assert [line["action"] for line in report] == ["created", "created", "skipped", "skipped"]
    assert "no key_widget to find their rows by" in report[-1]["reason"]
    assert run.stderr.count("records marked deleted are not deleted") == 1  # logged once
    assert "4 records, 2 created, 0 updated, 2 skipped, 0 failed" in run.stderr
    assert run.states == [{"sent": 4}]
    assert run.dead_letters(tmp_path) == []


# delete_mode: mark ------------------------------------------------------------------------------
STATUS, DELETED_AT = "status", "deleted_at"  # the demo form's 客户状态 and 删除时间


def mark_settings(jdy: SandboxClient, tmp_path: Path, **mark: Any) -> dict:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号", delete_mode="mark", **mark)
    return config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)


def test_mark_keeps_the_row_and_sets_the_deletion_time_and_a_later_record_clears_it(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings = mark_settings(jdy, tmp_path, mark_widget="删除时间")
    records = c.customers(3, seed=37)
    assert run_target(settings, messages(*records), tmp_path).returncode == 0
    before = {row["customer_id"]: row for row in rows_of(jdy, form_of(settings))}

    run = run_target(settings, messages(deleted("C000001")), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = {row["customer_id"]: row for row in rows_of(jdy, form_of(settings))}
    assert set(rows) == {"C000000", "C000001", "C000002"}  # nothing deleted
    assert rows["C000001"][DELETED_AT] == "2026-03-01T00:00:00.000Z"  # 08:00 +08:00
    assert c.actual(rows["C000001"]) == c.actual(before["C000001"])  # the rest is as it was
    assert rows["C000000"][DELETED_AT] is None
    [line] = read_jsonl(tmp_path / "report.jsonl")[3:]
    assert (line["action"], line["status"], line["id"]) == (
        "deleted",
        ["marked"],
        before["C000001"]["_id"],
    )
    assert "mark their rows deleted: 删除时间 = the deletion time" in run.stderr
    assert "1 deleted, 1 marked" in run.stderr

    since = time.time()
    again = run_target(settings, messages(deleted("C000001")), tmp_path)
    assert again.returncode == 0
    assert writes(jdy.requests(since), "data/update") == []  # marked already: nothing to do

    restored = run_target(settings, messages(records[1]), tmp_path)

    assert restored.returncode == 0, restored.stderr[-3000:]
    row = next(r for r in rows_of(jdy, form_of(settings)) if r["customer_id"] == "C000001")
    assert row[DELETED_AT] is None and row["_id"] == before["C000001"]["_id"]


def test_mark_may_set_a_status_option_and_a_restore_clears_only_that_option(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings = mark_settings(jdy, tmp_path, mark_widget="客户状态", mark_value="已删除")
    records = c.customers(2, seed=38)
    assert run_target(settings, messages(*records), tmp_path).returncode == 0

    run = run_target(settings, messages(deleted("C000000")), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = {row["customer_id"]: row for row in rows_of(jdy, form_of(settings))}
    assert (rows["C000000"][STATUS], rows["C000001"][STATUS]) == ("已删除", "")
    assert "客户状态 = '已删除'" in run.stderr

    assert run_target(settings, messages(*records), tmp_path).returncode == 0
    rows = {row["customer_id"]: row for row in rows_of(jdy, form_of(settings))}
    assert rows["C000000"][STATUS] == ""


def test_mark_settings_that_cannot_work_stop_the_run_before_anything_is_written(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    cases = [
        ({"mark_widget": "客户状态", "mark_value": "Gone"}, "not one of the options"),
        ({"mark_widget": "客户状态"}, "needs a mark_value"),
        ({"mark_widget": "金额"}, "must be a datetime"),
        ({}, "needs mark_widget"),
    ]
    for mark, problem in cases:
        settings = mark_settings(jdy, tmp_path, **mark)
        since = time.time()
        run = run_target(settings, messages(*c.customers(1)), tmp_path)
        assert run.returncode != 0 and problem in run.stderr, mark
        assert writes(jdy.requests(since)) == []
