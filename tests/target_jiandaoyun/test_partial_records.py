"""Absent is not null: a partial record updates only the widgets it carries (invariant 17).

Taps send partial records and stream maps drop properties. A property absent from a record
leaves its widget as it was, and so does a computed field whose inputs are all absent; only an
explicit null empties a widget (`connector_kit.presence`, the rule target-twenty follows too).
"""

from __future__ import annotations

from pathlib import Path

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun.conftest import (
    config,
    new_form,
    record,
    rows_of,
    run_target,
    schema,
    state,
)

STREAM = "companies"
NAME, NOTE, ADDRESS = "_widget_1704067200001", "_widget_1704067200003", "_widget_1704067200010"
LEVEL = "_widget_1704067200006"
FIELDS = {
    "id": "客户编号",
    "name": "客户名称",
    "amount": "金额",
    "level": "客户等级",
    "label": {"widget": "备注", "expression": "'客户：' + name if name else None"},
    "place": {
        "widget": "地址",
        "expression": "{'province': record.get('province') or '', "
        "'city': record.get('city') or ''}",
    },
}
PROPERTIES = {name: {} for name in ("id", "name", "amount", "level", "province", "city")}


def run(jdy: SandboxClient, tmp_path: Path, form: tuple[str, str], *records: dict):
    spec = {"app_id": form[0], "entry_id": form[1], "fields": FIELDS, "key_widget": "客户编号"}
    messages = [schema(STREAM, PROPERTIES), *(record(STREAM, r) for r in records), state(1)]
    return run_target(config(jdy, {STREAM: spec}, tmp_path), messages, tmp_path)


def test_a_partial_record_updates_only_the_widgets_it_carries(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    full = {
        "id": "C1",
        "name": "Acme",
        "amount": 10,
        "level": "A 级",
        "province": "浙江省",
        "city": "杭州市",
    }
    assert run(jdy, tmp_path, form, full).returncode == 0
    (before,) = rows_of(jdy, form)

    done = run(jdy, tmp_path, form, {"id": "C1", "amount": 12})

    assert done.returncode == 0, done.stderr[-3000:]
    (after,) = rows_of(jdy, form)
    assert after["amount"] == 12
    for widget in (NAME, NOTE, ADDRESS, LEVEL):  # copied and computed from absent properties
        assert after[widget] == before[widget], widget
    assert (after[NOTE], after[ADDRESS]) == ("客户：Acme", {"province": "浙江省", "city": "杭州市"})
    assert after["updateTime"] >= before["updateTime"]


def test_an_explicit_null_empties_the_widget_and_what_is_computed_from_it(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    full = {"id": "C1", "name": "Acme", "amount": 10, "level": "A 级", "province": "浙江省"}
    assert run(jdy, tmp_path, form, full).returncode == 0

    done = run(jdy, tmp_path, form, {"id": "C1", "name": None, "level": None, "city": "宁波市"})

    assert done.returncode == 0, done.stderr[-3000:]
    (after,) = rows_of(jdy, form)
    assert (after[NAME], after[NOTE], after[LEVEL]) == ("", "", "")
    assert after["amount"] == 10  # absent: untouched
    # `place` reads the record through record.get: one of its keys is there, so it is computed.
    assert after[ADDRESS] == {"city": "宁波市"}


def test_partial_records_of_one_key_in_one_batch_are_applied_in_order(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    assert run(jdy, tmp_path, form, {"id": "C1", "name": "Acme", "amount": 10}).returncode == 0

    done = run(
        jdy,
        tmp_path,
        form,
        {"id": "C1", "name": "Acme Ltd"},
        {"id": "C1", "amount": 11},
        {"id": "C1", "amount": 12, "level": "B 级"},
    )

    assert done.returncode == 0, done.stderr[-3000:]
    (after,) = rows_of(jdy, form)
    assert (after[NAME], after["amount"], after[LEVEL]) == ("Acme Ltd", 12, "B 级")
