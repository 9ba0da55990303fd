"""Proactive pacing: every request of the run, from every thread, under one rate.

OKKI counts requests per client. Sending them evenly spaced (one every 1/rate seconds) keeps
the server's token bucket from ever running dry, so throttled answers stay the exception; a
`Retry-After` from the server pauses every thread, not only the one that got it.
"""

from __future__ import annotations

import threading
import time


class Pacer:
    """Thread-safe: `wait()` blocks until the caller may send its next request."""

    def __init__(self, requests_per_second: float) -> None:
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.interval = 1.0 / requests_per_second
        self._lock = threading.Lock()
        self._next_slot = time.monotonic()
        self.waited = 0.0  # seconds spent waiting, summed over threads (for the run log)

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
            delay = slot - now
            self.waited += delay
        if delay > 0:
            time.sleep(delay)

    def pause(self, seconds: float) -> None:
        """The server asked us to wait: nobody sends for `seconds` from now."""
        with self._lock:
            self._next_slot = max(self._next_slot, time.monotonic() + seconds)
