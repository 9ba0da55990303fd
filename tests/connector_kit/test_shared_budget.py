"""RateLimiter with a parent: each endpoint's limit and a budget shared by all (invariant 10)."""

from __future__ import annotations

import threading
import time

from connector_kit.pacing import RateLimiter
from tests.connector_kit.test_pacing import acquired, max_in_window


def test_calls_through_several_endpoints_never_exceed_the_shared_budget() -> None:
    company = RateLimiter([(12, 1.0)])
    endpoints = [RateLimiter([(10, 1.0)], parent=company) for _ in range(3)]
    times: dict[int, list[float]] = {i: [] for i in range(3)}
    lock = threading.Lock()

    def worker(i: int) -> None:
        for _ in range(8):
            slot = acquired(endpoints[i])
            with lock:
                times[i].append(slot)

    threads = [threading.Thread(target=worker, args=(i % 3,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = sorted(t for ts in times.values() for t in ts)
    assert len(everything) == 48
    assert max_in_window(everything, 1.0) <= 12
    for ts in times.values():
        assert max_in_window(sorted(ts), 1.0) <= 10


def test_an_endpoint_pause_does_not_stop_the_other_endpoints() -> None:
    company = RateLimiter([(100, 1.0)])
    slow = RateLimiter([(100, 1.0)], parent=company)
    fast = RateLimiter([(100, 1.0)], parent=company)
    slow.pause(0.5)
    started = time.monotonic()
    fast.acquire()
    assert time.monotonic() - started < 0.1


def test_a_pause_of_the_shared_budget_holds_every_endpoint() -> None:
    company = RateLimiter([(100, 1.0)])
    endpoint = RateLimiter([(100, 1.0)], parent=company)
    company.pause(0.3)
    started = time.monotonic()
    endpoint.acquire()
    assert time.monotonic() - started >= 0.29
