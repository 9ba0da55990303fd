"""Plan mode (`dry_run: true`, issue 17 item 6): the form is read, nothing is written, and the
run report says per record what a real run would do."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import config, new_form, read_jsonl, rows_of, run_target
from tests.target_jiandaoyun.test_load import messages

WRITES = ("batch_create", "data/update", "data/delete")


def written(jdy: SandboxClient, since: float) -> list[dict]:
    return [r for r in jdy.requests(since) if r["path"].endswith(WRITES)]


def test_a_plan_writes_no_row_and_says_per_record_create_update_unchanged_or_dead_letter(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    records = c.customers(30, seed=4)
    spec = c.form_spec(form, key_widget="客户编号")
    real = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    first = run_target(real, messages(records[:20]), tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = rows_of(jdy, form)
    (tmp_path / "report.jsonl").unlink()
    renamed = {**records[0], "name": "改名的客户"}
    unknown_level = {**records[25], "level": "没有这个等级"}
    since = time.time()
    plan_settings = {**real, "dry_run": True, "on_unknown_option": "dead_letter"}
    changed = [renamed, *records[1:20], *records[20:25], unknown_level]

    run = run_target(plan_settings, messages(changed, every=10), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert written(jdy, since) == []
    assert rows_of(jdy, form) == before
    assert run.states == []
    plan = {row["key"]: row for row in read_jsonl(tmp_path / "report.jsonl")}
    assert Counter(row["action"] for row in plan.values()) == {
        "update": 1,
        "unchanged": 19,
        "create": 5,
        "dead-letter": 1,
    }
    assert plan[renamed["id"]]["changes"] == {
        "客户名称": {"from": records[0]["name"], "to": "改名的客户"}
    }
    assert "没有这个等级" in plan[unknown_level["id"]]["reason"]
    assert not (tmp_path / "dead-letters.jsonl").exists()
    assert "Plan for stream 'customers': 26 records: 5 to create, 1 to update (客户名称 1)" in (
        run.stderr
    )
