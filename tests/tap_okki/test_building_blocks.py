"""Pacing, backoff, ordered concurrency and value typing, each on its own."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from zoneinfo import ZoneInfo

import pytest

from tap_okki.conform import ConformError, conform
from tap_okki.errors import OkkiRetriableError
from tap_okki.pacing import Pacer
from tap_okki.pipeline import ordered_map
from tap_okki.retry import RetryPolicy
from tap_okki.times import parse_setting_time

SHANGHAI = ZoneInfo("Asia/Shanghai")


def send_times(pacer: Pacer, threads: int, each: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            pacer.wait()
            with lock:
                times.append(time.monotonic())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sorted(times)


def test_requests_from_all_threads_are_evenly_paced_under_the_rate() -> None:
    times = send_times(Pacer(100), threads=4, each=15)
    # 60 sends at 100/s take 0.59 s at least: never faster than the rate, whatever the threads.
    assert times[-1] - times[0] >= 0.585
    # No bursts: any 500 ms hold about 50 sends (a few more if a thread woke up late) …
    assert max(sum(t <= s < t + 0.5 for s in times) for t in times) <= 55
    # … and the budget is used, not wasted (generous: CI machines are busy).
    assert times[-1] - times[0] < 1.5


def test_a_pause_holds_back_every_thread() -> None:
    pacer = Pacer(1000)
    pacer.pause(0.3)
    started = time.monotonic()
    send_times(pacer, threads=3, each=1)
    assert time.monotonic() - started >= 0.29


def waits(policy: RetryPolicy, exceptions: list[BaseException | None]) -> list[float]:
    generator = policy.waits()
    generator.send(None)  # primed, as `backoff` does
    return [generator.send(e) for e in exceptions]


def test_backoff_doubles_with_jitter_and_is_bounded() -> None:
    random.seed(3)
    policy = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=10.0)
    failures = [OkkiRetriableError("/v1/company/list", "HTTP 502")] * 7
    for attempt, wait in enumerate(waits(policy, failures), start=1):
        ceiling = min(10.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= wait <= ceiling


def test_backoff_honours_retry_after_even_when_fractional() -> None:
    policy = RetryPolicy(base_delay=0.001, max_delay=60.0)
    throttled = [
        OkkiRetriableError("/v1/company/info", "HTTP 429", retry_after=seconds, throttled=True)
        for seconds in (0.01, 2.5, 120.0)
    ]
    small, medium, large = waits(policy, throttled)
    assert 0.01 <= small <= 0.012  # not sooner than the server said, nor much later
    assert 2.5 <= medium <= 3.0
    assert 120.0 <= large <= 144.0  # more than max_delay, because the server asked


def test_a_server_that_keeps_throttling_gets_ever_longer_waits() -> None:
    policy = RetryPolicy(base_delay=0.05, max_delay=60.0)
    refusals = [OkkiRetriableError("/v1/company/info", "HTTP 429", retry_after=0.01)] * 6
    for attempt, wait in enumerate(waits(policy, refusals), start=1):
        assert wait >= max(0.01, 0.05 * 2 ** (attempt - 1) / 2)


def test_detail_calls_run_concurrently_but_come_out_in_list_order() -> None:
    active, peak = 0, 0
    lock = threading.Lock()

    def slow(item: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(random.uniform(0.001, 0.02))
        with lock:
            active -= 1
        return item * 10

    items = list(range(60))
    out = list(ordered_map(items, slow, lambda i: i % 7 != 0, workers=4))
    assert [item for item, _ in out] == items
    assert all(result == (None if item % 7 == 0 else item * 10) for item, result in out)
    assert 2 <= peak <= 4


def test_ordered_map_reads_its_input_only_a_bounded_way_ahead() -> None:
    consumed: list[int] = []

    def source() -> object:
        for i in range(1000):
            consumed.append(i)
            yield i

    results = ordered_map(source(), lambda i: i, lambda i: True, workers=3)
    next(results)
    assert len(consumed) <= 7  # 2 × workers in flight, plus the one handed out
    results.close()


def test_an_error_in_a_detail_call_surfaces_in_order() -> None:
    def work(i: int) -> int:
        if i == 5:
            raise RuntimeError("boom")
        return i

    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        for item, _ in ordered_map(range(20), work, lambda i: True, workers=4):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


COMPANY_SCHEMA = {
    "properties": {
        "company_id": {"type": "integer"},
        "update_time": {"type": ["string", "null"], "format": "date-time"},
        "next_follow_up_time": {"type": ["string", "null"], "format": "date-time"},
        "birth": {"type": ["string", "null"], "format": "date"},
        "user_id": {"type": ["array", "null"], "items": {"type": "integer"}},
        "star": {"type": ["integer", "null"]},
        "amount": {"type": ["number", "null"]},
        "serial_id": {"type": ["string", "null"]},
        "value": {"type": ["string", "number", "array", "null"], "items": {"type": "string"}},
        "owner": {
            "type": ["array", "null"],
            "items": {"type": "object", "properties": {"user_id": {"type": "integer"}}},
        },
    }
}


def test_okki_values_take_the_schema_types() -> None:
    record = conform(
        {
            "company_id": "56657420945678",
            "update_time": "2025-11-06 00:08:47",
            "next_follow_up_time": "1970-01-01 00:00:00",
            "birth": "",
            "user_id": "55280038,55280040",
            "star": "",
            "amount": "12000.50",
            "serial_id": 1001,
            "value": "Retail, Wholesale",
            "owner": [{"user_id": "55280038", "nickname": "Li"}],
            "not_in_schema": "dropped",
        },
        COMPANY_SCHEMA,
        SHANGHAI,
    )
    assert record == {
        "company_id": 56657420945678,
        "update_time": "2025-11-06T00:08:47+08:00",
        "next_follow_up_time": None,
        "birth": None,
        "user_id": [55280038, 55280040],
        "star": None,
        "amount": pytest.approx(12000.5),
        "serial_id": "1001",
        "value": "Retail, Wholesale",  # a string stays a string where strings are allowed
        "owner": [{"user_id": 55280038}],
    }
    assert conform({"user_id": [1, "2"], "value": ["a"]}, COMPANY_SCHEMA, SHANGHAI) == {
        "user_id": [1, 2],
        "value": ["a"],
    }


def test_a_value_that_cannot_take_its_type_names_the_field() -> None:
    with pytest.raises(ConformError, match=r"field 'owner\[\]\.user_id'"):
        conform({"owner": [{"user_id": "Li"}]}, COMPANY_SCHEMA, SHANGHAI)


def test_a_start_date_without_an_offset_is_read_in_okkis_time_zone() -> None:
    assert parse_setting_time("2025-01-01", SHANGHAI) == dt.datetime(2025, 1, 1, tzinfo=SHANGHAI)
    assert parse_setting_time("2025-01-01T00:00:00Z", SHANGHAI).utcoffset() == dt.timedelta(0)
    with pytest.raises(ValueError):
        parse_setting_time("yesterday", SHANGHAI)
