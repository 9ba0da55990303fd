"""Subform rows keep their identity: what people type into Jiandaoyun survives the next run.

An update rewrites a subform whole (docs/api/jiandaoyun.md §6.5). With a `key_field`, the target
merges: rows whose key the record still has keep their `_id` and every column no mapping writes,
rows whose key left the source go, new keys are appended. Without one, it says at start-up which
columns an update will empty.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

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

STREAM = "companies"
CONTACTS = "_widget_1704067200014"  # 联系人
NAME, TITLE, CALLS, FIRST = (f"_widget_17040672000{n}" for n in (15, 16, 17, 18))
CONTACT_ID = "contact_id"  # 联系人编号
PROPERTIES = {
    "id": {"type": "string"},
    "name": {"type": "string"},
    "contacts": {
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "properties": {"cid": {"type": "integer"}, "name": {}, "title": {}},
        },
    },
}


def spec(form: tuple[str, str], key_field: str | None = "cid") -> dict[str, Any]:
    subform: dict[str, Any] = {
        "widget": "联系人",
        "fields": {"cid": "联系人编号", "name": "姓名", "title": "职务"},
    }
    if key_field:
        subform["key_field"] = key_field
    return {
        "app_id": form[0],
        "entry_id": form[1],
        "fields": {"id": "客户编号", "name": "客户名称"},
        "subforms": {"contacts": subform},
        "key_widget": "客户编号",
    }


def messages(*companies: dict[str, Any]) -> list[dict]:
    return [
        schema(STREAM, PROPERTIES),
        *(record(STREAM, c) for c in companies),
        state({"sent": len(companies)}),
    ]


def contact(cid: int, name: str, title: str | None = None) -> dict[str, Any]:
    return {"cid": cid, "name": name, "title": title}


def the_row(jdy: SandboxClient, form: tuple[str, str]) -> dict[str, Any]:
    (row,) = rows_of(jdy, form)
    return row


def fill_in_by_hand(jdy: SandboxClient, form: tuple[str, str], calls: dict[str, int]) -> None:
    """What a salesperson does in Jiandaoyun: count calls per contact, and add a contact of
    their own (without an OKKI id)."""
    row = the_row(jdy, form)
    rows = []
    for item in row[CONTACTS]:
        kept = {k: {"value": v} for k, v in item.items() if k != "_id" and v not in ("", None)}
        rows.append({"_id": item["_id"], **kept, CALLS: {"value": calls.get(item[NAME], 0)}})
        rows[-1][FIRST] = {"value": "2024-05-01T02:00:00.000Z"}
    rows.append({NAME: {"value": "前台小王"}, CALLS: {"value": 1}})
    answer = requests.post(
        f"{jdy.base_url}/api/v5/app/entry/data/update",
        json={
            "app_id": form[0],
            "entry_id": form[1],
            "data_id": row["_id"],
            "data": {CONTACTS: {"value": rows}},
        },
        headers={"Authorization": f"Bearer {jdy.credentials['api_key']}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_keyed_subform_rows_keep_their_ids_and_hand_typed_columns_across_runs(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {STREAM: spec(form)}, tmp_path)
    first = {
        "id": "C1",
        "name": "Acme",
        "contacts": [contact(1, "张三", "经理"), contact(2, "李四"), contact(3, "王五")],
    }
    assert run_target(settings, messages(first), tmp_path).returncode == 0
    ids = {item[NAME]: item["_id"] for item in the_row(jdy, form)[CONTACTS]}
    fill_in_by_hand(jdy, form, {"张三": 5, "李四": 7, "王五": 9})

    # At the source: 张三 promoted, 李四 removed, 赵六 added.
    second = {
        **first,
        "contacts": [contact(1, "张三", "总监"), contact(3, "王五"), contact(4, "赵六")],
    }
    run = run_target(settings, messages(second), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    items = the_row(jdy, form)[CONTACTS]
    assert [(i[NAME], i[TITLE], i[CALLS], i[CONTACT_ID]) for i in items] == [
        ("张三", "总监", 5, "1"),  # the hand-typed call count survives the update
        ("王五", "", 9, "3"),
        ("前台小王", "", 1, ""),  # added by hand, without a key: no source row is its
        ("赵六", "", None, "4"),  # new at the source: appended
    ]
    assert [i["_id"] for i in items[:2]] == [ids["张三"], ids["王五"]]
    assert items[0][FIRST] == "2024-05-01T02:00:00.000Z"
    assert "李四" not in {i[NAME] for i in items}  # removed at the source: gone
    assert "has no key_field" not in run.stderr

    since = time.time()
    again = run_target(settings, messages(second), tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert writes(jdy.requests(since), "data/update") == []  # nothing changed: nothing sent
    assert read_jsonl(tmp_path / "report.jsonl")[-1]["reason"] == "already up to date"
    assert [i["_id"] for i in the_row(jdy, form)[CONTACTS]] == [i["_id"] for i in items]


def test_a_subform_row_without_a_property_keeps_its_column_and_a_null_clears_it(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {STREAM: spec(form)}, tmp_path)
    company = {
        "id": "C1",
        "name": "Acme",
        "contacts": [contact(1, "张三", "经理"), contact(2, "李四", "CEO")],
    }
    assert run_target(settings, messages(company), tmp_path).returncode == 0

    partial = {"id": "C1", "contacts": [{"cid": 1, "name": "张三"}, {"cid": 2, "title": None}]}
    run = run_target(settings, messages(partial), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    row = the_row(jdy, form)
    assert row["_widget_1704067200001"] == "Acme"  # `name` absent from the record: untouched
    assert [(i[NAME], i[TITLE]) for i in row[CONTACTS]] == [("张三", "经理"), ("李四", "")]


def test_without_a_subform_key_updates_replace_its_rows_and_the_start_up_log_says_so(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {STREAM: spec(form, key_field=None)}, tmp_path)
    company = {"id": "C1", "name": "Acme", "contacts": [contact(1, "张三")]}
    assert run_target(settings, messages(company), tmp_path).returncode == 0
    before = the_row(jdy, form)[CONTACTS][0]["_id"]

    run = run_target(settings, messages({**company, "name": "Acme Ltd"}), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    warning = next(line for line in run.stderr.splitlines() if "has no key_field" in line)
    assert "subform '联系人'" in warning and "'联系次数', '首次联系时间'" in warning
    assert "forms.companies.subforms.contacts.key_field" in warning
    assert the_row(jdy, form)[CONTACTS][0]["_id"] != before  # replaced, as the log said


def test_subform_rows_without_a_key_or_repeating_one_dead_letter_their_record(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(jdy, {STREAM: spec(form)}, tmp_path, max_failed_records=2)
    companies = [
        {"id": "C1", "name": "a", "contacts": [contact(1, "张三"), contact(1, "张三丰")]},
        {"id": "C2", "name": "b", "contacts": [{"name": "无编号"}]},
        {"id": "C3", "name": "c", "contacts": [contact(1, "张三")]},
    ]

    run = run_target(settings, messages(*companies), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    letters = {line["key"]: line["reason"] for line in run.dead_letters(tmp_path)}
    assert "subform key '1' is on two rows" in letters["C1"]
    assert "subform row 1 has no key ('cid')" in letters["C2"]
    assert [row["customer_id"] for row in rows_of(jdy, form)] == ["C3"]
