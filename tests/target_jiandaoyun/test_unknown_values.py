"""Members, departments and options the API would blank are never sent (invariant 17).

Jiandaoyun saves a username that is no member, a dept_no that is no department and (as the
sandbox assumes) an option text the widget does not offer as empty, and says nothing. The target
checks members and departments against the company directory, read once per run, and options
against the widget's: per setting the value is left out of its row and reported (`skip_field`),
or the record is dead-lettered (`dead_letter`). The shared fixture asserts that the sandbox
blanked nothing in every test.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import SandboxClient
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

STREAM = "accounts"
FIELDS = {
    "id": "客户编号",
    "name": "客户名称",
    "owner": "负责人",
    "dept": "所属部门",
    "level": "客户等级",
    "tags": "标签",
}
PROPERTIES: dict[str, Any] = {name: {} for name in FIELDS}
OWNER, DEPT = "owner", "_widget_1704067200013"  # names of 负责人 and 所属部门
LEVEL, TAGS = "_widget_1704067200006", "_widget_1704067200009"


def account(key: str, **values: Any) -> dict[str, Any]:
    return {"id": key, "name": f"客户 {key}", **values}


def messages(*records: dict[str, Any], properties: dict | None = None) -> list[dict]:
    return [
        schema(STREAM, properties or PROPERTIES),
        *(record(STREAM, r) for r in records),
        state({"sent": len(records)}),
    ]


def settings_for(
    jdy: SandboxClient, tmp_path: Path, fields: dict | None = None, **settings: Any
) -> tuple[dict, tuple[str, str]]:
    form = new_form(jdy)
    spec = {"app_id": form[0], "entry_id": form[1], "fields": fields or FIELDS}
    spec["key_widget"] = "客户编号"
    return config(jdy, {STREAM: spec}, tmp_path, **settings), form


def by_key(jdy: SandboxClient, form: tuple[str, str]) -> dict[str, dict]:
    return {row["customer_id"]: row for row in rows_of(jdy, form)}


# (field, a value naming nothing, the widget, how the widget reads when left empty, setting)
BAD_VALUES = [
    ("owner", "nobody", OWNER, None, "on_unknown_member"),
    ("dept", 99, DEPT, None, "on_unknown_department"),
    ("level", "Gold", LEVEL, "", "on_unknown_option"),
    ("tags", ["VIP", "No such tag"], TAGS, ["VIP"], "on_unknown_option"),
]


@pytest.mark.parametrize(("field", "bad", "widget", "left", "setting"), BAD_VALUES)
def test_a_value_naming_nothing_is_left_out_of_its_row_and_the_record_reported_partial(
    jdy: SandboxClient,
    tmp_path: Path,
    field: str,
    bad: Any,
    widget: str,
    left: Any,
    setting: str,
) -> None:
    settings, form = settings_for(jdy, tmp_path)  # skip_field: the default
    records = [account("A1", **{field: bad}), account("A2", **{field: bad}), account("A3")]

    run = run_target(settings, messages(*records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = by_key(jdy, form)
    assert set(rows) == {"A1", "A2", "A3"}
    assert rows["A1"][widget] == left and rows["A1"]["_widget_1704067200001"] == "客户 A1"
    report = {line["key"]: line for line in read_jsonl(tmp_path / "report.jsonl")}
    assert report["A1"]["action"] == "created" and report["A1"]["status"] == ["partial"]
    unknown = bad[-1] if isinstance(bad, list) else bad
    (skipped,) = report["A1"]["skipped"]
    assert (skipped["field"], skipped["value"]) == (field, unknown)
    assert "status" not in report["A3"]
    warnings = [line for line in run.stderr.splitlines() if "is left out of the rows" in line]
    assert len(warnings) == 1 and setting in warnings[0]  # one WARNING per value, not per row
    assert "2 partial" in run.stderr  # the stream's summary
    assert run.dead_letters(tmp_path) == []


@pytest.mark.parametrize(("field", "bad", "widget", "left", "setting"), BAD_VALUES)
def test_with_dead_letter_a_value_naming_nothing_dead_letters_its_record(
    jdy: SandboxClient,
    tmp_path: Path,
    field: str,
    bad: Any,
    widget: str,
    left: Any,
    setting: str,
) -> None:
    settings, form = settings_for(jdy, tmp_path, **{setting: "dead_letter"})
    records = [account("A1", **{field: bad}), account("A2")]

    run = run_target(settings, messages(*records), tmp_path)

    assert run.returncode != 0  # max_failed_records is 0
    assert set(by_key(jdy, form)) == {"A2"}
    (letter,) = run.dead_letters(tmp_path)
    kind = setting.removeprefix("on_unknown_")
    assert letter["key"] == "A1" and letter["code"] == f"unknown-{kind}"
    assert f"field '{field}'" in letter["reason"] and f"{setting}: dead_letter" in letter["reason"]


def test_an_update_leaves_a_skipped_widget_as_it_was(jdy: SandboxClient, tmp_path: Path) -> None:
    settings, form = settings_for(jdy, tmp_path)
    assert (
        run_target(settings, messages(account("A1", owner="lisi", dept=2)), tmp_path).returncode
        == 0
    )

    run = run_target(settings, messages(account("A1", owner="gone", dept=77)), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    row = by_key(jdy, form)["A1"]
    assert (row[OWNER]["username"], row[DEPT]["dept_no"]) == ("lisi", 2)  # not blanked
    last = read_jsonl(tmp_path / "report.jsonl")[-1]
    assert last["status"] == ["partial"]
    assert [s["value"] for s in last["skipped"]] == ["gone", 77]


def test_members_may_be_named_by_email_or_unique_display_name(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    fields = {
        **FIELDS,
        "owner": {"widget": "负责人", "match_by": "email"},
        "dept": {"widget": "所属部门", "match_by": "name"},
    }
    settings, form = settings_for(jdy, tmp_path, fields=fields)
    records = [
        account("A1", owner="LiSi@Example.com", dept="华东销售组"),  # emails ignore case
        account("A2", owner="nobody@example.com", dept="财务部"),
    ]

    run = run_target(settings, messages(*records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    rows = by_key(jdy, form)
    assert (rows["A1"][OWNER]["username"], rows["A1"][DEPT]["dept_no"]) == ("lisi", 4)
    assert (rows["A2"][OWNER], rows["A2"][DEPT]) == (None, None)
    (_, partial) = read_jsonl(tmp_path / "report.jsonl")
    assert [s["value"] for s in partial["skipped"]] == ["nobody@example.com", "财务部"]

    by_name = {**FIELDS, "owner": {"widget": "负责人", "match_by": "name"}}
    settings, form = settings_for(jdy, tmp_path, fields=by_name)
    run = run_target(
        settings, messages(account("B1", owner="李四"), account("B2", owner="张伟")), tmp_path
    )

    assert run.returncode == 0, run.stderr[-3000:]
    rows = by_key(jdy, form)
    assert rows["B1"][OWNER]["username"] == "lisi"
    assert rows["B2"][OWNER] is None  # two members are named 张伟: neither is guessed
    assert "several members have the name '张伟'" in run.stderr


def test_the_directory_is_read_once_per_run_and_not_at_all_without_member_widgets(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings, _ = settings_for(jdy, tmp_path, batch_size_rows=2)
    since = time.time()

    run = run_target(
        settings, messages(*(account(f"A{i}", owner="zhangsan") for i in range(9))), tmp_path
    )

    assert run.returncode == 0, run.stderr[-3000:]
    calls = Counter(r["path"].removeprefix("/api/v5/") for r in jdy.requests(since))
    assert calls["corp/department/list"] == 1 and calls["corp/department/user/list"] == 1
    assert len(writes(jdy.requests(since))) == 5  # several batches, one reading

    plain = {"id": "客户编号", "name": "客户名称"}
    settings, _ = settings_for(jdy, tmp_path, fields=plain)
    since = time.time()
    assert run_target(settings, messages(account("B1")), tmp_path).returncode == 0
    assert not [r for r in jdy.requests(since) if "/corp/" in r["path"]]


def test_a_directory_the_key_may_not_read_stops_the_run_before_anything_is_written(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings, form = settings_for(jdy, tmp_path)
    jdy.post("fail_next", {"code": 17054, "msg": "接口未授权", "endpoint": "corp/department/list"})

    run = run_target(settings, messages(account("A1", owner="zhangsan")), tmp_path)

    assert run.returncode != 0
    assert "Reading the company directory" in run.stderr and "17054" in run.stderr
    assert rows_of(jdy, form) == []
