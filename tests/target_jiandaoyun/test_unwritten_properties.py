"""A record that breaks its schema only in properties the mapping does not read still loads
(fidelity invariant 14): target-jiandaoyun validates what its fields, key, subforms, expressions
and deletion mark read, and warns once about the rest."""

from __future__ import annotations

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
)

STREAM = "companies"
PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "name": {"type": "string"},
    "amount": {"type": ["number", "null"]},
    "contacts": {"type": ["array", "null"], "items": {"type": "object"}},
    # What a tap declares and then breaks: objects promised, ids sent.
    "origin_list": {"type": ["array", "null"], "items": {"type": "object"}},
    "rank": {"type": ["integer", "null"]},
}
FIELDS = {
    "id": "客户编号",
    "name": "客户名称",
    "cents": {"widget": "金额", "expression": "round(amount * 100) if amount else None"},
}


def settings_for(jdy: SandboxClient, tmp_path: Path, **settings: Any) -> tuple[dict, tuple]:
    form = new_form(jdy)
    spec = {
        "app_id": form[0],
        "entry_id": form[1],
        "fields": FIELDS,
        "subforms": {"contacts": {"widget": "联系人", "fields": {"name": "姓名"}}},
        "key_widget": "客户编号",
    }
    return config(jdy, {STREAM: spec}, tmp_path, **settings), form


def company(i: int, **values: Any) -> dict[str, Any]:
    return {"id": f"C{i}", "name": f"Company {i}", "amount": i, **values}


def messages(*records: dict[str, Any]) -> list[dict]:
    return [schema(STREAM, PROPERTIES), *(record(STREAM, r) for r in records), state({"n": 1})]


def test_schema_problems_in_properties_no_mapping_reads_are_warned_once_and_the_records_load(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings, form = settings_for(jdy, tmp_path)
    records = [company(i, origin_list=[i, i + 1], rank="first") for i in range(1, 4)]

    run = run_target(settings, messages(*records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(row["customer_id"] for row in rows_of(jdy, form)) == ["C1", "C2", "C3"]
    assert run.dead_letters(tmp_path) == []
    assert run.stderr.count("property 'origin_list' does not match the stream's schema") == 1
    assert run.stderr.count("property 'rank' does not match the stream's schema") == 1
    assert "origin_list 3" in run.stderr  # counted in the stream summary
    assert run.states == [{"n": 1}]


def test_a_schema_problem_in_a_property_a_field_an_expression_or_a_subform_reads_dead_letters(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    settings, form = settings_for(jdy, tmp_path, max_failed_records=3)
    records = [
        company(1, name=17),  # copied into 客户名称
        company(2, amount="lots"),  # read by the expression computing 金额
        company(3, contacts=[1, 2]),  # fills the subform
        company(4),
    ]

    run = run_target(settings, messages(*records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert [row["customer_id"] for row in rows_of(jdy, form)] == ["C4"]
    letters = {line["key"]: line["reason"] for line in run.dead_letters(tmp_path)}
    assert "property 'name': 17 is not of type 'string'" in letters["C1"]
    assert "property 'amount'" in letters["C2"]
    assert "property 'contacts.0'" in letters["C3"]
