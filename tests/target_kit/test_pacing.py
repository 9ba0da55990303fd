"""RateLimiter: proactive pacing under the documented limits (invariant 10)."""

from __future__ import annotations

import threading
import time

from target_kit.pacing import RateLimiter


def acquire_times(limiter: RateLimiter, n: int, threads: int = 4) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        for _ in range(count):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

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
    # ... and it does not waste the budget: 60 calls at 20 per window take just over 2 windows.
    assert times[-1] - times[0] < 2.3


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
