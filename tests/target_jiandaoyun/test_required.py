"""Widgets the form marks required get a value: the API does not check them, the target does.

widget/list says `"required": true` of such a widget (docs/api/jiandaoyun.md §2.3). A record
that would create a row without a value for one, or empty one in an update, is dead-lettered
naming the widget; `check_required_widgets: false` turns the check off.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun.conftest import (
    config,
    new_form,
    record,
    rows_of,
    run_target,
    schema,
    state,
    writes,
)

STREAM = "leads"
NAME = "_widget_1800000000001"
WIDGETS = [
    {"name": NAME, "label": "客户名称", "type": "text", "required": True},
    {"name": "code", "widgetName": "_widget_1800000000002", "label": "客户编号", "type": "text"},
    {"name": "_widget_1800000000003", "label": "备注", "type": "text"},
    {
        "name": "_widget_1800000000004",
        "label": "联系人",
        "type": "subform",
        "items": [
            {"name": "_widget_1800000000005", "label": "姓名", "type": "text", "required": True},
            {"name": "_widget_1800000000006", "label": "职务", "type": "text"},
        ],
    },
    {"name": "_widget_1800000000007", "label": "流水号", "type": "sn", "required": True},
]
FIELDS = {"id": "客户编号", "name": "客户名称", "note": "备注"}
SUBFORMS = {"contacts": {"widget": "联系人", "fields": {"name": "姓名", "title": "职务"}}}
PROPERTIES: dict[str, Any] = {"id": {}, "name": {}, "note": {}, "contacts": {}}


def settings_for(jdy: SandboxClient, tmp_path: Path, **settings: Any) -> tuple[dict, tuple]:
    form = new_form(jdy, WIDGETS)
    spec = {
        "app_id": form[0],
        "entry_id": form[1],
        "fields": FIELDS,
        "subforms": SUBFORMS,
        "key_widget": "客户编号",
    }
    return config(jdy, {STREAM: spec}, tmp_path, **settings), form


def messages(*records: dict[str, Any]) -> list[dict]:
    return [schema(STREAM, PROPERTIES), *(record(STREAM, r) for r in records), state(1)]


def test_a_record_that_would_leave_a_required_widget_empty_is_dead_lettered_naming_it(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings, form = settings_for(jdy, tmp_path, max_failed_records=10)
    records = [
        {"id": "L1", "name": "Acme", "contacts": [{"name": "张三"}]},
        {"id": "L2", "name": None},
        {"id": "L3", "note": "no name at all"},
        {"id": "L4", "name": "Foo", "contacts": [{"name": "李四"}, {"title": "经理"}]},
    ]

    first = run_target(settings, messages(*records), tmp_path)

    assert first.returncode == 0, first.stderr[-3000:]
    assert [row["code"] for row in rows_of(jdy, form)] == ["L1"]
    letters = {line["key"]: line for line in first.dead_letters(tmp_path)}
    assert set(letters) == {"L2", "L3", "L4"}
    assert all(line["code"] == "required" for line in letters.values())
    assert "required widget '客户名称'" in letters["L2"]["reason"]
    assert "has no value" in letters["L3"]["reason"]
    assert "联系人[2].'姓名'" in letters["L4"]["reason"]

    # An update that does not carry the name leaves it; one that empties it is refused.
    second = run_target(settings, messages({"id": "L1", "note": "called"}), tmp_path)
    third = run_target(settings, messages({"id": "L1", "name": ""}), tmp_path)

    assert second.returncode == 0 and third.returncode == 0, third.stderr[-3000:]
    (row,) = rows_of(jdy, form)
    assert (row[NAME], row["_widget_1800000000003"]) == ("Acme", "called")
    last = third.dead_letters(tmp_path)[-1]
    assert last["key"] == "L1" and "would be emptied" in last["reason"]


def test_with_check_required_widgets_off_such_records_are_written(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings, form = settings_for(jdy, tmp_path, check_required_widgets=False)

    run = run_target(settings, messages({"id": "L1", "note": "no name"}), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert [row[NAME] for row in rows_of(jdy, form)] == [""]


def test_a_required_widget_no_field_writes_is_a_setting_error_before_anything_is_written(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings, form = settings_for(jdy, tmp_path)
    settings["forms"][STREAM]["fields"] = {"id": "客户编号", "note": "备注"}
    since = time.time()

    run = run_target(settings, messages({"id": "L1", "note": "x"}), tmp_path)

    assert run.returncode != 0
    assert "widget '客户名称'" in run.stderr and "is required by the form" in run.stderr
    assert "check_required_widgets" in run.stderr
    assert writes(jdy.requests(since)) == [] and rows_of(jdy, form) == []
