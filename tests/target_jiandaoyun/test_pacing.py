"""Pacing and retries: within every rate limit, and every retriable answer retried without
ever creating a row twice (invariants 3, 9 and 10)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import (
    TIME_SCALE,
    config,
    new_form,
    record,
    rows_of,
    run_target,
    schema,
    state,
)

# Answers the contract says to retry (docs/api/jiandaoyun.md §9), each given once to a batch_create.
RETRIED = [
    {"code": 8303},  # company rate limit
    {"code": 8304},  # endpoint rate limit
    {"code": 4012},  # form busy
    {"code": 9004},
    {"code": 9007},
    {"code": 17027},
    {"code": 0, "status": 429},  # too many concurrent requests
    {"code": 0, "status": 502},  # gateway error
]
LIMITS = {
    "batch_create": 10,
    "data/update": 20,
    "data/list": 30,
}  # per second (§8)
COMPANY = 50


def messages(records: list[dict]) -> list[dict]:
    return [
        schema(c.STREAM, c.SCHEMA),
        *(record(c.STREAM, r) for r in records),
        state({"n": len(records)}),
    ]


def busiest_window(moments: list[float], window: float) -> int:
    moments = sorted(moments)
    best, start = 0, 0
    for end, moment in enumerate(moments):
        while moments[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_every_endpoint_and_the_company_budget_stay_within_their_limits(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    spec = c.form_spec(form, key_widget="客户编号")
    settings = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE)
    limited = jdy.stats()["rate_limited"]
    since = time.time()
    first = run_target(settings, messages(c.customers(1500, seed=31)), tmp_path)
    # Half of the rows change: 750 data/update calls next to the look-ups and creations.
    changed = c.customers(1500, seed=31, version=1)[:750] + c.customers(1500, seed=31)[750:]
    second = run_target(settings, messages(changed + c.customers(2000, seed=31)[1500:]), tmp_path)

    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    # The sandbox's own rate buckets (the contract's limits) never refused a call...
    assert jdy.stats()["rate_limited"] == limited  # not one 8303, 8304 or 429
    # ...and over ten (scaled) seconds no endpoint went past its rate. Arrival times bunch up
    # by a few milliseconds when the sandbox is busy, so a single scaled second is too short to
    # judge the sender, and the window measured is a little shorter than ten seconds.
    calls = jdy.requests(since)
    ten_seconds = 0.95 * 10.0 / TIME_SCALE
    for endpoint, limit in LIMITS.items():
        moments = [r["at"] for r in calls if r["path"].endswith(endpoint)]
        assert moments, endpoint
        assert busiest_window(moments, ten_seconds) <= 10 * limit, endpoint
    assert busiest_window([r["at"] for r in calls], ten_seconds) <= 10 * COMPANY
    assert Counter(r["path"].rsplit("/", 1)[-1] for r in calls)["update"] == 750
    assert len(rows_of(jdy, form)) == 2000


def test_throttling_busy_forms_gateway_errors_and_lost_answers_are_retried_without_duplicates(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    records = c.customers(2000, seed=32)
    settings = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE)
    since = time.time()
    for answer in RETRIED:
        jdy.post("fail_next", {**answer, "endpoint": "batch_create"})
    jdy.knobs(drop_rate=0.3)  # the rows are created but the answer is lost
    try:
        run = run_target(settings, messages(records), tmp_path)
    finally:
        jdy.knobs(drop_rate=0)

    assert run.returncode == 0, run.stderr[-3000:]
    keys = Counter(row["customer_id"] for row in rows_of(jdy, form))
    assert keys == Counter(r["id"] for r in records)  # each exactly once
    creates = [r for r in jdy.requests(since) if r["path"].endswith("batch_create")]
    assert Counter(r["fault"] for r in creates)["dropped"] > 0
    answered = Counter((r["status"], r["code"]) for r in creates)
    for answer in RETRIED:
        assert answered[(answer.get("status", 400), answer["code"])] >= 1, answer
    assert "retry" in run.stderr
