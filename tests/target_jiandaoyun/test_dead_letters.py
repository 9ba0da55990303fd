"""Records that cannot be written go to the dead-letter file with the reason; the rest of
their batch is written; the exit code says so unless tolerated (invariants 3 and 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import config, new_form, record, rows_of, run_target, schema

# Property schemas loose enough to let wrong values through to the target's own checks.
LOOSE = {**c.SCHEMA, **{name: {} for name in ("amount", "phone", "level", "address", "contacts")}}

BAD_VALUES = {
    "amount": ("a lot", "'amount' → widget '金额'"),
    "last_contact": ("2024-02-30T10:00:00Z", "not an ISO-8601"),
    "level": ({"text": "A"}, "not an option text"),
    "phone": (13800000000, "leading zeros"),
    "address": ({"province": "浙江省", "street": "x"}, "only ['province'"),
    "contacts": ([{"name": "x", "calls": "many"}], "subform row 1"),
}


@pytest.mark.parametrize("tolerated", [False, True])
def test_values_that_cannot_be_converted_are_dead_lettered_and_never_blanked(
    jdy: SandboxClient, tmp_path: Path, tolerated: bool
) -> None:
    form = new_form(jdy)
    records = c.customers(20, seed=11)
    for rec, (field, (value, _)) in zip(records, BAD_VALUES.items(), strict=False):
        rec[field] = value
    settings = config(
        jdy,
        {c.STREAM: c.form_spec(form)},
        tmp_path,
        default_timezone=c.TIMEZONE,
        max_failed_records=len(BAD_VALUES) if tolerated else 0,
    )
    blanked = jdy.stats()["blanked_values"]

    run = run_target(
        settings, [schema(c.STREAM, LOOSE), *(record(c.STREAM, r) for r in records)], tmp_path
    )

    assert (run.returncode == 0) is tolerated, run.stderr[-2000:]
    letters = run.dead_letters(tmp_path)
    assert [line["key"] for line in letters] == [r["id"] for r in records[: len(BAD_VALUES)]]
    for line, (field, (value, reason)) in zip(letters, BAD_VALUES.items(), strict=True):
        assert line["stream"] == c.STREAM and line["code"] == "value"
        assert field in line["reason"] and reason in line["reason"]
        assert line["record"][field] == value
    written = {row["customer_id"] for row in rows_of(jdy, form)}
    assert written == {r["id"] for r in records[len(BAD_VALUES) :]}
    assert jdy.stats()["blanked_values"] == blanked


def test_a_row_the_api_refuses_is_isolated_and_dead_lettered_with_the_api_code(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    records = c.customers(4, seed=12)
    settings = config(
        jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE, max_in_flight=1
    )
    # The batch of 4 is refused, then its first half, then that half's first row.
    jdy.post("fail_next", {"code": 4000, "msg": "提交失败", "times": 3, "endpoint": "batch_create"})

    run = run_target(
        settings, [schema(c.STREAM, c.SCHEMA), *(record(c.STREAM, r) for r in records)], tmp_path
    )

    assert run.returncode != 0
    letters = run.dead_letters(tmp_path)
    assert len(letters) == 1 and letters[0]["key"] == records[0]["id"]
    assert letters[0]["code"] == 4000 and "提交失败" in letters[0]["reason"]
    assert sorted(row["customer_id"] for row in rows_of(jdy, form)) == [
        r["id"] for r in records[1:]
    ]
    assert "could not be written" in run.stderr


def test_a_datetime_without_zone_is_dead_lettered_unless_default_timezone_is_set(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    records = c.customers(3, seed=13)
    records[1]["last_contact"] = "2026-03-01T09:30:00"
    for rec in records:
        rec["contacts"] = []  # their datetimes may lack a zone too
    records[0]["last_contact"] = records[2]["last_contact"] = "2026-03-01T09:30:00+08:00"
    messages = [schema(c.STREAM, c.SCHEMA), *(record(c.STREAM, r) for r in records)]

    run = run_target(config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path), messages, tmp_path)

    assert run.returncode != 0
    (letter,) = run.dead_letters(tmp_path)
    assert letter["stream"] == c.STREAM and letter["key"] == records[1]["id"]
    assert "'last_contact'" in letter["reason"] and "has no time zone" in letter["reason"]
    assert "default_timezone" in letter["reason"]
    assert records[1]["id"] not in {row["customer_id"] for row in rows_of(jdy, form)}

    (tmp_path / "dead-letters.jsonl").unlink()
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE)
    run = run_target(settings, messages, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    (row,) = [r for r in rows_of(jdy, form) if r["customer_id"] == records[1]["id"]]
    assert c.actual(row) == c.expected(records[1])  # read as 09:30 in Shanghai, stored in UTC
