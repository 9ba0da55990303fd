"""Proactive pacing shared by every request a target sends.

One `RateLimiter` per API key, used by all worker threads. It holds one sliding window per limit
window the API documents (Twenty: 100 per 60 s and 100 per 1 s; Jiandaoyun: 10 per 1 s per batch
endpoint), a pause that a `Retry-After` sets for everybody, and can lower a window's limit when
the server announces a smaller one (`X-RateLimit-Limit`).
"""

from __future__ import annotations

import threading
import time
from collections import deque


class Window:
    """At most `limit` requests in any `period` seconds (a sliding log of send times).

    Stricter than the server's token bucket of the same size, so it never trips it, yet it
    sends at the same long-run rate.
    """

    def __init__(self, limit: int, period: float, documented: tuple[int, float]) -> None:
        self.limit = max(1, int(limit))
        self.period = period
        self.documented = documented  # the API's own (limit, period), before our headroom
        self.sent: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        while self.sent and self.sent[0] <= now - self.period:
            self.sent.popleft()
        if len(self.sent) < self.limit:
            return 0.0
        return self.sent[0] + self.period - now


class RateLimiter:
    """Thread-safe pacing over several windows, with a shared back-off pause.

    `headroom` (0–1) is the share of each documented rate we allow ourselves (the window is
    stretched, the count kept): a little under the server's own limit, so network jitter never
    pushes a request over the line.
    """

    def __init__(
        self,
        windows: list[tuple[float, float]],
        headroom: float = 0.98,
        parent: RateLimiter | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._headroom = headroom
        self._windows = [self._window(limit, period) for limit, period in windows]
        self._paused_until = 0.0
        # A budget shared with other limiters (Jiandaoyun: 50 calls/s per company on top of each
        # endpoint's own limit). A request is counted in both at the same instant, so neither is
        # exceeded; the lock order is always child, then parent.
        self.parent = parent
        self.waited = 0.0  # seconds callers spent waiting, for reports

    def _window(self, limit: float, period: float) -> Window:
        return Window(int(limit), period / self._headroom, (int(limit), period))

    def acquire(self) -> None:
        """Block until a request may be sent, then count it."""
        started = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._wait_time(now)
                if wait <= 0 and self.parent is not None:
                    with self.parent._lock:
                        wait = self.parent._wait_time(now)
                        if wait <= 0:
                            self.parent._count(now, started)
                if wait <= 0:
                    self._count(now, started)
                    return
            time.sleep(min(wait, 1.0))

    def _wait_time(self, now: float) -> float:
        paused = self._paused_until - now
        return paused if paused > 0 else max((w.wait_time(now) for w in self._windows), default=0)

    def _count(self, now: float, started: float) -> None:
        for window in self._windows:
            window.sent.append(now)
        self.waited += now - started

    def pause(self, seconds: float) -> None:
        """Everybody waits `seconds` (a `Retry-After`); then one probe, and the pace resumes."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def announce(self, limit: int, period: float) -> bool:
        """The server says its limit for `period` is `limit`; adopt it if it is stricter.

        Returns True when the pacing changed.
        """
        with self._lock:
            for i, window in enumerate(self._windows):
                documented_limit, documented_period = window.documented
                if documented_period == period and limit < documented_limit:
                    fresh = self._window(limit, period)
                    fresh.sent = window.sent
                    self._windows[i] = fresh
                    return True
            return False

    def limits(self) -> list[tuple[int, float]]:
        """The (limit, period) pairs in force, as documented or announced."""
        with self._lock:
            return [w.documented for w in self._windows]
