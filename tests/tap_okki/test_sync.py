"""Whole runs against the OKKI sandbox: completeness, increments, paging shifts, faults."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import jsonschema
import pytest

from crm_sandbox.control import RunningSandbox
from tests.tap_okki.helpers import (
    TapRun,
    by_key,
    discover,
    expected_contacts,
    restore_defaults,
    run_tap,
    select_only,
    stats_calls,
    tap_config,
)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def okki_iso(text: str) -> str | None:
    """The sandbox's `YYYY-MM-DD HH:MM:SS` as the tap renders it."""
    if not text or text.startswith("1970-01-01"):
        return None
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).isoformat()


def assert_valid_against_schemas(run: TapRun) -> None:
    schemas = run.schemas()
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for stream in ("companies", "contacts", "opportunities"):
        validator = jsonschema.Draft202012Validator(schemas[stream], format_checker=checker)
        for record in run.records(stream):
            validator.validate(record)


def assert_each_key_once(run: TapRun) -> None:
    for stream, key in (
        ("companies", "company_id"),
        ("contacts", "customer_id"),
        ("opportunities", "opportunity_id"),
    ):
        keys = run.keys(stream, key)
        assert len(keys) == len(set(keys)), f"duplicate {stream}"


def assert_each_contact_follows_its_company(run: TapRun) -> None:
    """Targets that link a person to its company get the company's RECORD first."""
    written: set[int] = set()
    for message in run.messages:
        if message["type"] != "RECORD":
            continue
        record = message["record"]
        if message["stream"] == "companies":
            written.add(record["company_id"])
        elif message["stream"] == "contacts":
            assert record["company_id"] in written, f"contact {record['customer_id']} came first"


# Completeness ------------------------------------------------------------------------------------


def test_full_run_delivers_every_company_contact_and_opportunity_exactly_once(
    okki_big_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox = okki_big_sandbox
    restore_defaults(sandbox)
    truth = sandbox.okki.records()
    assert len(truth["companies"]) == 2000

    run = run_tap(tmp_path, tap_config(sandbox)).check()

    assert_each_key_once(run)
    assert_each_contact_follows_its_company(run)
    # In OKKI's own order (newest first), though details were fetched concurrently.
    assert run.keys("companies", "company_id") == [c["company_id"] for c in truth["companies"]]
    assert set(run.keys("contacts", "customer_id")) == set(expected_contacts(truth["companies"]))
    assert run.keys("opportunities", "opportunity_id") == [
        o["opportunity_id"] for o in truth["opportunities"]
    ]
    assert_valid_against_schemas(run)
    # Values, not just keys: a sample company, contact and opportunity, field by field.
    company = truth["companies"][123]
    emitted = by_key(run.records("companies"), "company_id")[company["company_id"]]
    assert emitted["name"] == company["name"]
    assert emitted["homepage"] == company["homepage"]
    assert emitted["user_id"] == company["user_id"]
    assert emitted["update_time"] == okki_iso(company["update_time"])
    assert emitted["next_follow_up_time"] == okki_iso(company["next_follow_up_time"])
    assert emitted["company"] == company["company"]
    assert emitted["_sdc_deleted_at"] is None
    contacts = by_key(run.records("contacts"), "customer_id")
    embedded = by_key(emitted["customers"], "customer_id")
    for person in company["customers"]:
        typed = {**person, "birth": person["birth"] or None}
        assert contacts[person["customer_id"]] == typed
        assert embedded[person["customer_id"]] == typed
    opportunity = truth["opportunities"][7]
    got = by_key(run.records("opportunities"), "opportunity_id")[opportunity["opportunity_id"]]
    assert got["amount"] == pytest.approx(opportunity["amount"])
    assert got["user_id"] == [int(opportunity["user_id"])]  # one owner; upstream sends lists
    assert got["customer_id"] == (opportunity["customer_id"] or None)
    assert got["account_date"] == opportunity["account_date"]
    # N+1 and nothing more: one detail call per company, a token, and list pages.
    calls = stats_calls(sandbox)
    assert calls["/v1/company/info"] == 2000
    assert calls["/v1/oauth2/access_token"] == 1
    assert calls["/v1/company/list"] <= 2000 / 100 + 1 + 2  # pages, the removed list, clock


def test_second_run_emits_only_the_changes_and_deletions_since_the_bookmark(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    config = tap_config(okki, lookback_minutes=1)
    first = run_tap(tmp_path, config).check()
    bookmark = dt.datetime.fromisoformat(first.bookmark("companies"))
    updated = okki.okki.post("companies/update", {"count": 50})["company_ids"]
    others = [c["company_id"] for c in first.records("companies") if c["company_id"] not in updated]
    deleted = okki.okki.post("companies/delete", {"company_ids": others[:5]})["company_ids"]
    truth = okki.okki.records()

    second = run_tap(tmp_path, config, state=first.state).check()

    # The look-back overlap: whatever changed in the minute before the first run's bookmark.
    overlap_start = bookmark - dt.timedelta(minutes=1)

    def in_overlap(okki_time: str) -> bool:
        return dt.datetime.fromisoformat(okki_iso(okki_time)) >= overlap_start

    live = [
        c for c in truth["companies"] if c["company_id"] in updated or in_overlap(c["update_time"])
    ]
    emitted = by_key(second.records("companies"), "company_id")
    assert set(emitted) == {c["company_id"] for c in live} | set(deleted)
    assert set(updated) <= set(emitted)
    for company_id in deleted:
        assert emitted[company_id]["_sdc_deleted_at"] is not None
        assert emitted[company_id]["_sdc_deleted_at"] >= bookmark.isoformat()
    for company_id in updated:
        assert emitted[company_id]["_sdc_deleted_at"] is None
        assert emitted[company_id]["remark"].startswith("Edited")
    assert set(second.keys("contacts", "customer_id")) == set(expected_contacts(live))
    expected_opportunities = {
        o["opportunity_id"] for o in truth["opportunities"] if in_overlap(o["update_time"])
    }
    assert set(second.keys("opportunities", "opportunity_id")) == expected_opportunities
    assert_each_key_once(second)
    # Only the changed companies cost a detail call.
    assert stats_calls(okki)["/v1/company/info"] == len(first.records("companies")) + len(live)


def test_start_date_bounds_the_first_run_read_in_okkis_time_zone(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    companies = okki.okki.records()["companies"]
    middle = sorted(c["update_time"] for c in companies)[len(companies) // 2]
    start_date = middle.replace(" ", "T")  # no offset: read in Asia/Shanghai, like OKKI's times

    run = run_tap(tmp_path, tap_config(okki, start_date=start_date)).check()

    expected = {c["company_id"] for c in companies if c["update_time"] >= middle}
    assert set(run.keys("companies", "company_id")) == expected
    assert 90 <= len(expected) <= 110


def test_bookmark_is_the_server_time_when_the_run_started_not_the_newest_record(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    okki.okki.clear_requests()
    # Paced at 100 calls/s, the ~200 calls of this run take two seconds at least.
    run = run_tap(tmp_path, tap_config(okki, max_requests_per_second=100)).check()
    log = okki.okki.requests()
    data_calls = [r for r in log if r["path"] != "/v1/oauth2/access_token"]
    first_call = dt.datetime.fromtimestamp(data_calls[0]["at"], SHANGHAI)
    last_call = dt.datetime.fromtimestamp(data_calls[-1]["at"], SHANGHAI)
    assert last_call - first_call > dt.timedelta(seconds=1.5)  # a run long enough to tell

    for stream in ("companies", "opportunities"):
        bookmark = dt.datetime.fromisoformat(run.bookmark(stream))
        assert bookmark.utcoffset() == dt.timedelta(hours=8)
        # OKKI's `now` (whole seconds) when the first call was served …
        assert (
            first_call - dt.timedelta(seconds=1) <= bookmark <= first_call + dt.timedelta(seconds=1)
        )
        # … which is later than every record, but not the end of the run.
        newest = max(dt.datetime.fromisoformat(r["update_time"]) for r in run.records(stream))
        assert newest < bookmark < last_call


def churn_mid_run(okki: RunningSandbox, **churn: int) -> Callable[[], None]:
    """Arm the sandbox's churn after the 4th company-list call, with the tap slowed down
    until then: OKKI's clock has whole seconds, so the changes must land in a later second
    than the window's end (else they stay inside it). Full speed once the churn fired."""
    okki.okki.knobs(latency=0.1, extra={"churn": {"after_list_requests": 4, **churn}})
    fired = False

    def watch() -> None:
        nonlocal fired
        if not fired and okki.okki.knobs()["extra"]["churn"] is None:
            fired = True
            okki.okki.knobs(latency=0.0)

    return watch


# One detail call at a time, 5 rows a page: by the 4th list call (clock, pages 1-3) at least
# 8 detail calls have been answered, each 100 ms late: the churn comes > 1 s after the clock.
SLOW_PAGING = {"page_size": 5, "detail_concurrency": 1, "lookback_minutes": 0}


def test_companies_updated_while_paging_are_not_lost_and_come_in_the_next_run(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    before = [c["company_id"] for c in okki.okki.records()["companies"]]
    # 20 companies among those already listed are updated: they leave the window, and every
    # row behind them moves forward across page boundaries.
    watch = churn_mid_run(okki, update=20)
    config = tap_config(okki, **SLOW_PAGING)

    first = run_tap(tmp_path, config, meanwhile=watch).check()

    truth = okki.okki.records()
    bookmark = first.bookmark("companies")
    touched = {c["company_id"] for c in truth["companies"] if okki_iso(c["update_time"]) > bookmark}
    assert len(touched) == 20, "the churn fired after the window's end"
    emitted = set(first.keys("companies", "company_id"))
    assert set(before) - touched <= emitted  # no untouched company is missing
    assert_each_key_once(first)
    assert "scanning it again" in first.stderr  # the shift was noticed, not lucky

    second = run_tap(tmp_path, config, state=first.state).check()
    assert set(second.keys("companies", "company_id")) == touched


def test_deletions_and_creations_while_paging_lose_no_company(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    before = {c["company_id"] for c in okki.okki.records()["companies"]}
    watch = churn_mid_run(okki, update=5, delete=5, create=5)
    config = tap_config(okki, **SLOW_PAGING)

    first = run_tap(tmp_path, config, meanwhile=watch).check()

    truth = okki.okki.records()
    removed = {r["company_id"] for r in truth["removed"]}
    live_now = {c["company_id"] for c in truth["companies"]}
    changed = removed | {
        c["company_id"]
        for c in truth["companies"]
        if okki_iso(c["update_time"]) > first.bookmark("companies")
    }
    assert len(removed) == 5 and len(live_now - before) == 5
    assert len(changed) == 15
    assert before - changed <= set(first.keys("companies", "company_id"))
    assert "scanning it again" in first.stderr

    second = run_tap(tmp_path, config, state=first.state).check()
    records = by_key(second.records("companies"), "company_id")
    assert set(records) == changed  # updates, creations and deletions, nothing else
    assert {k for k, r in records.items() if r["_sdc_deleted_at"]} == removed


def test_big_windows_are_read_in_parts_and_the_bookmark_advances_per_part(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    truth = okki.okki.records()
    run = run_tap(tmp_path, tap_config(okki, max_rows_per_window=40)).check()

    assert set(run.keys("companies", "company_id")) == {c["company_id"] for c in truth["companies"]}
    assert_each_key_once(run)
    bookmarks = [
        s["bookmarks"]["companies"]["replication_key_value"]
        for s in run.states()
        if s["bookmarks"].get("companies", {}).get("replication_key_value")
    ]
    assert len(set(bookmarks)) >= 5  # 200 rows, at most 40 a part
    assert bookmarks == sorted(bookmarks)
    # Each STATE comes after every company of its part, none later than its bookmark.
    emitted: list[str] = []
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] == "companies":
            emitted.append(message["record"]["update_time"])
        elif message["type"] == "STATE":
            mark = message["value"]["bookmarks"].get("companies", {}).get("replication_key_value")
            if mark:
                older = [c for c in truth["companies"] if okki_iso(c["update_time"]) <= mark]
                assert len(emitted) >= len(older)


# Faults ------------------------------------------------------------------------------------------


def comparable(run: TapRun) -> dict[str, list[dict[str, Any]]]:
    return {s: run.records(s) for s in ("companies", "contacts", "opportunities")}


def test_revoked_token_server_errors_and_dropped_connections_change_nothing(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    config = tap_config(okki)
    clean = run_tap(tmp_path, config).check()
    okki.okki.reset()
    okki.okki.knobs(error_rate=0.1, drop_rate=0.05, extra={"revoke_tokens_after_requests": 60})

    faulty = run_tap(tmp_path, config).check()

    assert comparable(faulty) == comparable(clean)
    log = okki.okki.requests()
    assert sum(r["fault"] == "5xx" for r in log) >= 5
    assert sum(r["fault"] == "dropped" for r in log) >= 2
    # The first token, one after the revocation (and one more if a token answer was lost).
    assert okki.okki.stats()["tokens_issued"] >= 2
    assert sum(r["status"] == 401 for r in log) >= 1
    assert faulty.stderr.count("OKKI refused the access token") == 1


def test_throttled_answers_are_paced_and_retried_until_complete(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    # The server allows 1 call/s (100/s time-scaled, no bursts); the tap may send 900/s.
    okki.okki.knobs(extra={"rate_per_second": 1})
    truth = okki.okki.records()

    run = run_tap(tmp_path, tap_config(okki, detail_concurrency=8)).check()

    assert len(run.records("companies")) == len(truth["companies"])
    assert okki.okki.stats()["throttled"] > 0
    assert "HTTP 429" in run.stderr


def test_envelope_code_429_is_retried_and_code_0_means_success(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    okki.okki.knobs(
        extra={
            "success_code": 0,
            "force_error": {
                "path": "/v1/company/list",
                "code": 429,
                "message": "请求过于频繁",
                "times": 3,
            },
        }
    )
    run = run_tap(tmp_path, tap_config(okki)).check()
    assert len(run.records("companies")) == 200
    assert "code 429" in run.stderr


def test_a_company_gone_before_its_details_are_read_is_skipped_and_logged(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    okki.okki.knobs(
        extra={
            "force_error": {
                "path": "/v1/company/info",
                "code": 404,
                "message": "Not Found Resource",
            }
        }
    )
    run = run_tap(tmp_path, tap_config(okki)).check()
    assert len(run.records("companies")) == 199
    assert "skipping company" in run.stderr and "Not Found Resource" in run.stderr


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/v1/company/list", -1, "系统错误"),
        ("/v1/company/info", 400, "count out of range"),
        ("/v1/opportunity/list", 403, "no permission opportunity scopes"),
    ],
)
def test_other_okki_codes_stop_the_run_naming_endpoint_code_and_message(
    okki: RunningSandbox, tmp_path: Path, path: str, code: int, message: str
) -> None:
    okki.okki.knobs(extra={"force_error": {"path": path, "code": code, "message": message}})
    run = run_tap(tmp_path, tap_config(okki))
    assert run.returncode != 0
    assert f"OKKI {path} answered code {code}: {message}" in run.stderr
    answered = [r for r in okki.okki.requests() if r["path"] == path and r["code"] == code]
    assert len(answered) == 1  # not retried


# Selection ---------------------------------------------------------------------------------------


def test_unselected_streams_make_no_api_calls(okki: RunningSandbox, tmp_path: Path) -> None:
    config = tap_config(okki)
    catalog = discover(tmp_path, config)

    only_opportunities = run_tap(
        tmp_path, config, catalog=select_only(catalog, "opportunities")
    ).check()
    calls = stats_calls(okki)
    assert calls["/v1/company/list"] == calls["/v1/company/info"] == 0
    assert calls["/v1/opportunity/list"] > 0
    assert set(only_opportunities.schemas()) == {"opportunities"}

    okki.okki.reset()
    only_companies = run_tap(tmp_path, config, catalog=select_only(catalog, "companies")).check()
    assert stats_calls(okki)["/v1/opportunity/list"] == 0
    assert only_companies.records("contacts") == []


def test_contacts_alone_read_companies_without_emitting_them(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    config = tap_config(okki)
    truth = okki.okki.records()
    run = run_tap(tmp_path, config, catalog=select_only(discover(tmp_path, config), "contacts"))
    run.check()
    assert run.records("companies") == []
    assert set(run.keys("contacts", "customer_id")) == set(expected_contacts(truth["companies"]))
    assert [m["stream"] for m in run.messages if m["type"] == "SCHEMA"] == ["contacts"]


# Logs and proxies --------------------------------------------------------------------------------


def test_contacts_are_counted_once_for_the_run_not_once_per_company(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    run = run_tap(tmp_path, tap_config(okki)).check()
    contacts = len(run.records("contacts"))
    counts = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in run.stderr.splitlines()
        if '"record_count"' in line and '"contacts"' in line
    ]
    assert [point["value"] for point in counts] == [contacts]
    assert f"contacts: {contacts} emitted from 200 companies" in run.stderr
    assert run.stderr.count("Beginning sync of 'contacts'") == 1
    assert '"sync_duration"' not in "".join(
        line for line in run.stderr.splitlines() if '"contacts"' in line
    )


class ForwardingProxy(http.server.BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy that counts the paths it carried."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real proxy
    carried: ClassVar[Counter[str]] = Counter()
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        request = urllib.request.Request(self.path, body, headers, method=self.command)
        try:
            with self.direct.open(request, timeout=30) as answer:
                status, content, kind = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as refused:
            status, content, kind = refused.code, refused.read(), refused.headers
        self.carried[urlsplit(self.path).path] += 1
        self.send_response(status)
        self.send_header("Content-Type", kind.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = forward

    def log_message(self, *args: Any) -> None:
        pass


def test_a_proxy_from_the_environment_carries_every_call(
    okki: RunningSandbox, tmp_path: Path
) -> None:
    ForwardingProxy.carried.clear()
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ForwardingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    env = {"HTTP_PROXY": url, "http_proxy": url, "NO_PROXY": "", "no_proxy": ""}
    try:
        run = run_tap(tmp_path, tap_config(okki), env=env).check()
    finally:
        proxy.shutdown()
    assert len(run.records("companies")) == 200
    assert ForwardingProxy.carried["/v1/oauth2/access_token"] == 1
    assert ForwardingProxy.carried["/v1/company/info"] == 200
    assert sum(ForwardingProxy.carried.values()) == sum(stats_calls(okki).values())
