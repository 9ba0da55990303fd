"""The `follow_ups` stream against the OKKI sandbox: one list over the window for the whole
account, the follow-up look-back, deletions, paging shifts and OKKI's shapes (docs/api/okki.md
§9)."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import jsonschema

from crm_sandbox.control import RunningSandbox
from tests.tap_okki.helpers import (
    TapRun,
    by_key,
    discover,
    run_tap,
    select_only,
    stats_calls,
    tap_config,
)

TRAILS = "/v1/dynamic/trail/list"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def okki_iso(text: str) -> str:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).isoformat()


def follow_ups_only(okki: RunningSandbox, tmp_path: Path, **settings: Any) -> dict[str, Any]:
    config = tap_config(okki, **settings)
    return {"config": config, "catalog": select_only(discover(tmp_path, config), "follow_ups")}


def run(tmp_path: Path, setup: dict[str, Any], state: dict | None = None) -> TapRun:
    return run_tap(tmp_path, setup["config"], catalog=setup["catalog"], state=state).check()


def test_one_list_reads_every_follow_up_of_the_account_at_a_call_per_page(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    truth = okki.okki.records()["follow_ups"]
    setup = follow_ups_only(okki, tmp_path)

    first = run(tmp_path, setup)

    records = by_key(first.records("follow_ups"), "trail_id")
    assert len(records) == len(first.records("follow_ups")) == len(truth) > 300
    for row in truth[:50]:
        record = records[row["trail_id"]]
        assert record["content"] == row["content"]  # line breaks and HTML as written
        assert record["company_id"] == row["company_id"]
        assert record["customer_id"] == ([row["customer_id"]] if row["customer_id"] else [])
        assert record["opportunity_id"] == (row["opportunity_id"] or None)
        assert record["create_time"] == okki_iso(row["create_time"])
        assert record["_sdc_deleted_at"] is None
    assert any("\n" in r["content"] for r in records.values())
    assert any("<p>" in r["content"] for r in records.values())
    # No company filter: the whole account in pages of 100, nothing per company.
    calls = stats_calls(okki)
    assert calls[TRAILS] == math.ceil(len(truth) / 100) + 1  # and OKKI's clock, once a run
    assert calls["/v1/company/list"] == calls["/v1/company/info"] == 0
    schema = first.schemas()["follow_ups"]
    for record in records.values():
        jsonschema.validate(record, schema)
    assert first.bookmark("follow_ups")


def test_the_next_run_emits_what_was_written_since_backdated_edited_or_deleted_and_nothing_else(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    setup = follow_ups_only(okki, tmp_path, lookback_minutes=0)
    first = run(tmp_path, setup)
    truth = okki.okki.records()["follow_ups"]
    week = dt.datetime.now(SHANGHAI) - dt.timedelta(days=6)
    recent = [f["trail_id"] for f in truth if okki_iso(f["create_time"]) > week.isoformat()]
    companies = [c["company_id"] for c in okki.okki.records()["companies"][:3]]
    created = okki.okki.post(
        "follow_ups/create", {"company_ids": companies, "backdate_minutes": 3 * 24 * 60}
    )["trail_ids"]
    edited = okki.okki.post("follow_ups/update", {"trail_ids": recent[:2]})["trail_ids"]
    deleted = okki.okki.post("follow_ups/delete", {"trail_ids": recent[2:4]})["trail_ids"]

    second = run(tmp_path, setup, state=first.state)

    records = by_key(second.records("follow_ups"), "trail_id")
    assert set(records) == {*created, *edited, *deleted}
    for trail_id in deleted:
        assert records[trail_id]["delete_flag"] == 1
        assert records[trail_id]["_sdc_deleted_at"] == records[trail_id]["update_time"]
    for trail_id in edited:
        assert "(edited" in records[trail_id]["content"]
        assert records[trail_id]["_sdc_deleted_at"] is None
    # Backdated by up to three days, before the first run's bookmark: still caught.
    assert any(records[i]["create_time"] < first.bookmark("follow_ups") for i in created)
    # The rest of the look-back (7 days) is read again, not sent again.
    unchanged = int(re.search(r"(\d+) read again unchanged", second.stderr)[1])
    assert unchanged >= len(recent) - 4 > 0
    assert second.bookmark("follow_ups") >= first.bookmark("follow_ups")  # OKKI has seconds


def test_changes_to_follow_ups_older_than_the_look_back_wait_for_a_full_refresh(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    truth = okki.okki.records()["follow_ups"]
    month = (dt.datetime.now(SHANGHAI) - dt.timedelta(days=20)).isoformat()
    old = next(f["trail_id"] for f in truth if okki_iso(f["create_time"]) < month)
    short = follow_ups_only(okki, tmp_path, follow_ups_lookback_days=7)
    first = run(tmp_path, short)
    okki.okki.post("follow_ups/delete", {"trail_ids": [old]})

    assert old not in run(tmp_path, short, state=first.state).keys("follow_ups", "trail_id")
    longer = follow_ups_only(okki, tmp_path, follow_ups_lookback_days=60)
    seen = by_key(run(tmp_path, longer, state=first.state).records("follow_ups"), "trail_id")
    assert seen[old]["_sdc_deleted_at"] is not None


def test_follow_ups_written_while_paging_are_not_lost(okki: RunningSandbox, tmp_path: Path) -> None:
    """Backdated follow-ups land inside the window being paged and shift its pages."""
    before = {f["trail_id"] for f in okki.okki.records()["follow_ups"]}
    okki.okki.knobs(
        latency=0.05,
        extra={
            "trail_churn": {
                "after_list_requests": 3,
                "create": 6,
                "backdate_minutes": 60 * 24,
                "update": 2,
                "delete": 2,
            }
        },
    )
    setup = follow_ups_only(okki, tmp_path, page_size=20, lookback_minutes=0)

    first = run(tmp_path, setup)

    emitted = first.keys("follow_ups", "trail_id")
    assert len(emitted) == len(set(emitted))
    assert before <= set(emitted)  # everything that existed when the run started
    assert "scanning it again" in first.stderr
    okki.okki.knobs(latency=0.0)
    truth = okki.okki.records()["follow_ups"]
    written_during = {f["trail_id"] for f in truth} - before
    assert len(written_during) == 6
    second = run(tmp_path, setup, state=first.state)
    assert written_during <= set(emitted) | set(second.keys("follow_ups", "trail_id"))


def test_follow_ups_in_okkis_other_shapes_are_typed_and_valid(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    okki.okki.knobs(extra={"shape_variety": 1.0, "unconvertible_share": 0.5})
    served = okki.okki.records()["follow_ups"]
    first = run(tmp_path, follow_ups_only(okki, tmp_path))

    schema = first.schemas()["follow_ups"]
    records = by_key(first.records("follow_ups"), "trail_id")
    assert len(records) == len(served)
    for row in served:
        record = records[int(row["trail_id"])]
        jsonschema.validate(record, schema)
        contact = row["customer_id"]
        named = [int(c) for c in (contact if isinstance(contact, list) else [contact]) if int(c)]
        assert record["customer_id"] == named
    kept = [r for r in records.values() if r.get("_okki_unconverted")]
    assert kept and all(r["type"] is None or r["create_user"] is None for r in kept)


def test_follow_ups_unselected_cost_no_call(okki: RunningSandbox, tmp_path: Path) -> None:
    config = tap_config(okki)
    catalog = select_only(discover(tmp_path, config), "companies", "contacts", "opportunities")
    run_tap(tmp_path, config, catalog=catalog).check()
    assert stats_calls(okki)[TRAILS] == 0


def test_next_follow_ups_give_each_company_its_plan_without_a_call_of_their_own(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    config = tap_config(okki, lookback_minutes=0)
    catalog = select_only(discover(tmp_path, config), "next_follow_ups")
    companies = okki.okki.records()["companies"]

    first = run_tap(tmp_path, config, catalog=catalog).check()

    plans = by_key(first.records("next_follow_ups"), "company_id")
    assert set(plans) == {c["company_id"] for c in companies}
    for company in companies:
        plan = plans[company["company_id"]]
        planned = company["next_follow_up_time"]
        assert plan["next_follow_up_time"] == (None if planned < "1971" else okki_iso(planned))
        assert plan["name"] == company["name"] and plan["user_id"] == company["user_id"]
    now = dt.datetime.now(SHANGHAI).isoformat()
    times = [p["next_follow_up_time"] for p in plans.values()]
    assert None in times and any(t and t > now for t in times) and any(t and t < now for t in times)
    calls = stats_calls(okki)
    assert calls["/v1/company/info"] == len(companies) and calls[TRAILS] == 0
    assert first.records("companies") == []  # the parent is read, not emitted
    # OKKI plans one anew and clears another: the next run says so.
    planned, cleared = companies[0]["company_id"], companies[1]["company_id"]
    okki.okki.post(
        "companies/update", {"company_ids": [planned], "next_follow_up_time": "2030-01-02 09:30:00"}
    )
    okki.okki.post("companies/update", {"company_ids": [cleared], "next_follow_up_time": ""})

    second = run_tap(tmp_path, config, catalog=catalog, state=first.state).check()

    plans = by_key(second.records("next_follow_ups"), "company_id")
    assert set(plans) == {planned, cleared}
    assert plans[planned]["next_follow_up_time"] == "2030-01-02T09:30:00+08:00"
    assert plans[cleared]["next_follow_up_time"] is None


def test_streams_sync_after_the_streams_they_link_to_whatever_the_catalog_order(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    """Follow-ups link to opportunities: they come after them, although the SDK (and a catalog
    Meltano sorted) would put them first by name. A target otherwise holds every follow-up
    until the opportunities come: on a large account, more than it may hold."""
    config = tap_config(okki)
    catalog = select_only(discover(tmp_path, config), *STREAMS)
    catalog["streams"].sort(key=lambda entry: entry["tap_stream_id"])  # by name, as Meltano's

    messages = run_tap(tmp_path, config, catalog=catalog).check().messages
    first_record = {}
    for number, message in enumerate(messages):
        if message["type"] == "RECORD":
            first_record.setdefault(message["stream"], number)

    assert set(first_record) == set(STREAMS)
    assert first_record["companies"] < first_record["opportunities"] < first_record["follow_ups"]
    assert first_record["contacts"] < first_record["opportunities"]


STREAMS = ("companies", "contacts", "opportunities", "follow_ups", "next_follow_ups")
