"""Pacing, backoff, ordered concurrency, contacts and proxies, each on its own (value typing:
test_conform.py)."""

from __future__ import annotations

import random
import threading
import time
import typing as t
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import tap_okki
from connector_kit.pacing import RateLimiter
from connector_kit.retry import RetryPolicy
from tap_okki.pipeline import SLOW_CALL, SLOW_CALLS_IN_A_ROW, ordered_map
from tap_okki.streams import CompaniesStream
from tap_okki.tap import TapOkki

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEMA_DIR = Path(tap_okki.__file__).parent / "schemas"


def send_times(pacer: RateLimiter, threads: int, each: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            pacer.acquire()
            with lock:
                times.append(time.monotonic())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sorted(times)


def test_requests_from_all_threads_are_evenly_paced_under_the_rate() -> None:
    times = send_times(RateLimiter([(100, 1.0)], headroom=1.0), threads=4, each=15)
    # 60 sends at 100/s take 0.59 s at least: never faster than the rate, whatever the threads.
    assert times[-1] - times[0] >= 0.585
    # No bursts: any 500 ms hold about 50 sends (a few more if a thread woke up late) …
    assert max(sum(t <= s < t + 0.5 for s in times) for t in times) <= 55
    # … and the budget is used, not wasted (generous: CI machines are busy).
    assert times[-1] - times[0] < 1.5


def test_a_pause_holds_back_every_thread() -> None:
    pacer = RateLimiter([(1000, 1.0)], headroom=1.0)
    pacer.pause(0.3)
    started = time.monotonic()
    send_times(pacer, threads=3, each=1)
    assert time.monotonic() - started >= 0.29


def waits(policy: RetryPolicy, retry_after: list[float | None]) -> list[float]:
    """The waits before tries 2, 3, … of a call whose answers asked for `retry_after`."""
    return [policy.delay(attempt, asked) for attempt, asked in enumerate(retry_after, start=1)]


def test_backoff_doubles_with_jitter_and_is_bounded() -> None:
    random.seed(3)
    policy = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=10.0)
    for attempt, wait in enumerate(waits(policy, [None] * 7), start=1):
        ceiling = min(10.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= wait <= ceiling


def test_backoff_honours_retry_after_even_when_fractional() -> None:
    policy = RetryPolicy(base_delay=0.001, max_delay=60.0)
    small, medium, large = waits(policy, [0.01, 2.5, 120.0])
    assert 0.01 <= small <= 0.012  # not sooner than the server said, nor much later
    assert 2.5 <= medium <= 3.0
    assert 120.0 <= large <= 144.0  # more than max_delay, because the server asked


def test_a_retry_after_is_honoured_up_to_max_retry_after() -> None:
    policy = RetryPolicy(base_delay=0.001, max_retry_after=5.0)
    (wait,) = waits(policy, [3600.0])  # "come back in an hour" does not stall the run
    assert 5.0 <= wait <= 6.0


def test_a_server_that_keeps_throttling_gets_ever_longer_waits() -> None:
    policy = RetryPolicy(base_delay=0.05, max_delay=60.0)
    for attempt, wait in enumerate(waits(policy, [0.01] * 6), start=1):
        assert wait >= max(0.01, 0.05 * 2 ** (attempt - 1) / 2)


def test_slow_detail_calls_run_concurrently_but_come_out_in_list_order() -> None:
    active, peak = 0, 0
    threads: set[str] = set()
    lock = threading.Lock()

    def slow(item: int) -> int:  # as OKKI over the internet: tens of milliseconds and more
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            threads.add(threading.current_thread().name)
        time.sleep(random.uniform(SLOW_CALL + 0.005, SLOW_CALL + 0.02))
        with lock:
            active -= 1
        return item * 10

    items = list(range(60))
    out = list(ordered_map(items, slow, lambda i: i % 7 != 0, workers=4))
    assert [item for item, _ in out] == items
    assert all(result == (None if item % 7 == 0 else item * 10) for item, result in out)
    assert 2 <= peak <= 4
    assert threading.current_thread().name in threads  # the first slow ones, before threads


def test_quick_detail_calls_run_one_by_one_in_the_callers_thread() -> None:
    """Threads would only take turns at the GIL: CPU spent, no time won."""
    threads = set()

    def quick(item: int) -> int:
        threads.add(threading.current_thread().name)
        if item % 50 == 0:
            time.sleep(SLOW_CALL * 2)  # a hiccup now and then is not a slow server
        return item * 10

    out = list(ordered_map(range(200), quick, lambda i: True, workers=4))
    assert out == [(i, i * 10) for i in range(200)]
    assert threads == {threading.current_thread().name}


def test_ordered_map_reads_its_input_only_a_bounded_way_ahead() -> None:
    consumed: list[int] = []

    def source() -> object:
        for i in range(1000):
            consumed.append(i)
            yield i

    def slow(i: int) -> int:
        time.sleep(SLOW_CALL * 1.5)
        return i

    results = ordered_map(source(), slow, lambda i: True, workers=3)
    handed_out = [next(results) for _ in range(SLOW_CALLS_IN_A_ROW + 1)]  # threads from here
    assert len(consumed) <= len(handed_out) + 2 * 3  # 2 × workers in flight
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


# Contacts and proxies ----------------------------------------------------------------------------
PLACEHOLDER = {
    "client_id": "id",
    "client_secret": "placeholder-secret-4e8d",
    "base_url": "http://127.0.0.1:9",
}


def test_a_contact_listed_under_two_companies_is_emitted_with_each() -> None:
    """Moved during the run: the later emission is the newer one, and targets upsert."""
    tap = TapOkki(config=PLACEHOLDER)
    companies = t.cast(CompaniesStream, tap.streams["companies"])
    contacts = tap.streams["contacts"]
    person = {"customer_id": 7, "name": "Omar Khan"}
    emitted = []
    for company_id in (1, 2):
        companies._last = (company_id, {"company_id": company_id}, [person])
        emitted += list(contacts.get_records({"company_id": company_id}))
    assert [(c["customer_id"], c["company_id"]) for c in emitted] == [(7, 1), (7, 2)]


def test_proxies_from_the_environment_apply_to_okki_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")

    def proxy(base_url: str) -> str | None:
        config = {**PLACEHOLDER, "base_url": base_url, "allow_insecure_http": True}
        return TapOkki(config=config).connection.transport.environment.proxy

    assert proxy("http://okki.example:8080") == "http://proxy.example:3128"
    assert proxy("http://internal.example") is None
