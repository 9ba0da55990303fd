"""Proactive pacing shared by every request a target sends.

One `RateLimiter` per API key, used by all worker threads. It holds one token bucket per limit
window the API documents (Twenty: 100 per 60 s and 100 per 1 s; Jiandaoyun: 10 per 1 s per batch
endpoint), a pause that a `Retry-After` sets for everybody, and can lower a window's limit when
the server announces a smaller one (`X-RateLimit-Limit`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class Window:
    limit: float  # requests allowed per `period`
    period: float  # seconds
    burst: float  # bucket capacity; below `limit` keeps slack on the server's side for jitter

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.updated = time.monotonic()

    @property
    def rate(self) -> float:
        return self.limit / self.period

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self) -> float:
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    """Thread-safe multi-window token bucket with a shared back-off pause.

    `headroom` (0–1) is the share of each documented limit we allow ourselves: a little under
    the server's own bucket, so network jitter never pushes a request over the line.
    """

    def __init__(self, windows: list[tuple[float, float]], headroom: float = 0.98) -> None:
        self._lock = threading.Lock()
        self._headroom = headroom
        self._windows = [self._window(limit, period) for limit, period in windows]
        self._paused_until = 0.0
        self.waited = 0.0  # seconds callers spent waiting, for reports

    def _window(self, limit: float, period: float) -> Window:
        allowed = limit * self._headroom
        # Keep a few tokens of the server's burst unused: they absorb arrival-time jitter.
        return Window(limit=allowed, period=period, burst=max(1.0, min(allowed, limit - 3)))

    def acquire(self) -> None:
        """Block until a request may be sent, then count it."""
        started = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._paused_until - now
                if wait <= 0:
                    for window in self._windows:
                        window.refill(now)
                    wait = max(w.wait_time() for w in self._windows)
                    if wait <= 0:
                        for window in self._windows:
                            window.tokens -= 1
                        self.waited += now - started
                        return
            time.sleep(min(wait, 1.0))

    def pause(self, seconds: float) -> None:
        """Everybody waits `seconds` (a `Retry-After`), and the buckets start empty afterwards."""
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._paused_until:
                self._paused_until = until
                for window in self._windows:
                    window.tokens = 0.0
                    window.updated = until

    def announce(self, limit: int, period: float) -> bool:
        """The server says its limit for `period` is `limit`; adopt it if it is stricter.

        Returns True when the pacing changed.
        """
        with self._lock:
            for i, window in enumerate(self._windows):
                if window.period == period and limit * self._headroom < window.limit:
                    fresh = self._window(limit, period)
                    fresh.tokens = min(window.tokens, fresh.burst)
                    self._windows[i] = fresh
                    return True
            return False

    def limits(self) -> list[tuple[float, float]]:
        with self._lock:
            return [(w.limit, w.period) for w in self._windows]
