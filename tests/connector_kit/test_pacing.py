"""RateLimiter: proactive pacing under the documented limits (invariant 10)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from connector_kit.pacing import RateLimiter, budget_file


def acquired(limiter: RateLimiter) -> float:
    """The slot `acquire` gave, checked to be no later than its return: the slot says when the
    limiter let the call go, unblurred by when a busy machine next ran the thread (a recorded
    time once put 13 calls in a second of 12)."""
    slot = limiter.acquire()
    assert time.time() >= slot - 0.001
    return slot


def acquire_times(limiter: RateLimiter, n: int, threads: int = 4) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        for _ in range(count):
            slot = acquired(limiter)
            with lock:
                times.append(slot)

    per = n // threads
    pool = [threading.Thread(target=worker, args=(per,)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sorted(times)


def max_in_window(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_requests_per_window_never_exceed_the_limit_across_threads() -> None:
    limiter = RateLimiter([(20, 1.0)])
    times = acquire_times(limiter, 60)
    assert max_in_window(times, 1.0) <= 20
    # ... and it does not waste the budget: 60 calls at 20 a second (less 2 %) take 3 s.
    assert times[-1] - times[0] < 3.4


def test_calls_leave_evenly_at_the_refill_rate_never_in_a_burst() -> None:
    """A full window's worth at once meets 429s when another job spent the server's bucket."""
    limiter = RateLimiter([(100, 1.0), (1000, 1.0)])  # the stricter rate paces
    times = acquire_times(limiter, 40)
    # One call every 1/98 s: any 0.1 s holds 10, never 40.
    assert max_in_window(times, 0.1) <= 10
    assert times[-1] - times[0] >= 39 / 100


def test_an_empty_bucket_reported_by_the_server_delays_the_next_call_by_one_refill() -> None:
    limiter = RateLimiter([(10, 1.0)], headroom=1.0)
    limiter.acquire()
    limiter.observe(0)  # X-RateLimit-Remaining: 0
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.095
    limiter.observe(7)  # calls left: nothing changes
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started < 0.2


def test_limiters_on_one_ledger_file_share_one_rate(tmp_path: Path) -> None:
    """Two processes on one key open the same ledger; two limiters here stand for them."""
    ledger = budget_file(str(tmp_path), "https://api.example.com", "key-1", "twenty")
    assert ledger is not None and "key-1" not in ledger.name
    first = RateLimiter([(50, 1.0)], ledger=ledger)
    second = RateLimiter([(50, 1.0)], ledger=ledger)
    times: list[float] = []
    lock = threading.Lock()

    def worker(limiter: RateLimiter) -> None:
        for _ in range(25):
            slot = acquired(limiter)
            with lock:
                times.append(slot)

    pool = [threading.Thread(target=worker, args=(x,)) for x in (first, second, first, second)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    times.sort()
    # 100 calls at 50 a second together: about 2 s, not 1 s as two separate budgets would take.
    assert times[-1] - times[0] >= 99 / 50
    assert max_in_window(times, 0.5) <= 26
    assert oct(ledger.stat().st_mode & 0o777) == "0o600"


def test_a_pause_reaches_every_limiter_on_the_ledger(tmp_path: Path) -> None:
    ledger = budget_file(str(tmp_path), "https://api.example.com", "key-1", "okki")
    RateLimiter([(100, 1.0)], ledger=ledger).pause(0.3)
    started = time.monotonic()
    RateLimiter([(100, 1.0)], ledger=ledger).acquire()
    assert time.monotonic() - started >= 0.29


def test_no_ledger_without_a_folder() -> None:
    assert budget_file("", "https://api.example.com", "key-1") is None
    assert budget_file(None, "https://api.example.com", "key-1") is None


def test_pause_makes_every_caller_wait() -> None:
    limiter = RateLimiter([(100, 1.0)])
    limiter.pause(0.3)
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.29


def test_an_announced_lower_limit_is_adopted_and_a_higher_one_ignored() -> None:
    limiter = RateLimiter([(100, 60.0), (100, 1.0)])
    assert limiter.announce(50, 60.0) is True
    assert limiter.announce(80, 60.0) is False
    assert limiter.limits() == [(50, 60.0), (100, 1.0)]


def test_a_fractional_rate_is_kept_exactly() -> None:
    """tap-okki paces at 9.5 calls a second by default: read as a whole number, it ran at 9
    (89.5 % of OKKI's ceiling in `make bench`), and a gentle 0.5 a second ran at 1."""
    assert RateLimiter([(9.5, 1.0)], headroom=1.0).interval == 1 / 9.5
    assert RateLimiter([(0.5, 1.0)], headroom=1.0).interval == 2.0
    times = acquire_times(RateLimiter([(9.5, 1.0)], headroom=1.0), 20)
    assert (times[-1] - times[0]) == pytest.approx(19 / 9.5)
