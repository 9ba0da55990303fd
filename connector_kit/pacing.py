"""Pacing that models the server's limiter: calls leave evenly, at the rate the server refills.

Twenty (two buckets per key: 100 a minute, 100 a second), Jiandaoyun (per endpoint, under one
company-wide budget) and OKKI (per client, per second) all count calls in token buckets that
refill continuously (docs/api/*.md, "Rate limits"). A client cannot see how full a bucket is:
another job on the same key may just have spent it. So the model here assumes the least, a
bucket with one token, refilled at the server's rate (less `headroom`): one call every
1/rate seconds, never a burst. That reaches the server's long-run rate, which is all a long
load can use, and meets no 429 whether the budget starts full or spent.

What the server says overrides what we assume: a lower `X-RateLimit-Limit` becomes the rate
(`announce`), `X-RateLimit-Remaining: 0` means the bucket is empty (`observe`: the next call
waits a refill), and a throttled answer's `Retry-After` holds every caller back (`pause`).

Sharing a budget: a `Schedule` may live in a ledger file (`budget_file`), one per API host,
key and limit, locked with `flock`, so every process on the machine that uses the same key
(two pipelines, overlapping schedules) takes its slots from one timetable: together they stay
at the rate, each getting what the others leave.

No limiter library fits: pyrate-limiter and limits count calls per window (a window's worth
may leave at once) and take nothing from the server's headers; the glue around either would
be larger than this module.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from singer_sdk import typing as th

try:
    import fcntl
except ImportError:  # Windows: no flock, so each process paces alone
    fcntl = None  # type: ignore[assignment]

RATE_BUDGET_SETTING = th.Property(
    "rate_budget_dir",
    th.StringType,
    default="~/.cache/okki-crm-sync/rate-budgets",
    description="Folder in which the plugin processes of this machine that use the same API key "
    "share its rate budget: one small file per key and limit, named by a hash (the key is never "
    "written), holding the time of the next free call. Two pipelines or overlapping schedules on "
    "one key then stay together under the API's limit. Empty: this process paces alone.",
)


def budget_file(folder: str | None, *identity: str) -> Path | None:
    """The ledger of one budget (API host, key, limit) in `folder`; None when not shared.

    The file is named by a hash: the key itself is never written anywhere.
    """
    if not folder or fcntl is None:
        return None
    digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:32]
    return Path(os.path.expanduser(folder)) / f"{digest}.next"


STALE = 3600.0  # seconds: no pause of ours is longer (Retry-After is capped well below)


class Schedule:
    """The time (epoch seconds) from which the next call may leave, for this process or, with
    a ledger file, for every process that opens the same file."""

    def __init__(self, ledger: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._ledger = ledger
        self._file: int | None = None
        self.next = 0.0

    @contextmanager
    def held(self) -> Iterator[Schedule]:
        """Read, change and write `next` with nobody else (thread or process) in between."""
        with self._lock:
            if self._ledger is None:
                yield self
                return
            if self._file is None:
                self._ledger.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._file = os.open(self._ledger, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                text = os.pread(self._file, 64, 0)
                try:
                    self.next = float(text or 0)
                except ValueError:
                    self.next = 0.0  # a torn or foreign file: start afresh
                if self.next > time.time() + STALE:
                    self.next = 0.0  # written under another clock: not a real wait
                yield self
                os.pwrite(self._file, f"{self.next:<32.6f}".encode(), 0)
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)


class RateLimiter:
    """Thread-safe pacing to the strictest of `rates` ((calls, per seconds) pairs).

    `headroom` (0–1) is the share of the documented rate we allow ourselves, so network jitter
    never pushes two calls closer together than the server refills. With a `parent` (a budget
    shared with other limiters, like Jiandaoyun's company-wide one), a call takes a slot of
    both at the same instant; the lock order is always child, then parent.
    """

    def __init__(
        self,
        rates: list[tuple[float, float]],
        headroom: float = 0.98,
        parent: RateLimiter | None = None,
        ledger: Path | None = None,
    ) -> None:
        # Floats: a pace such as tap-okki's 9.5 calls a second is a fraction (as int, 9).
        self._documented = [(float(limit), float(period)) for limit, period in rates]
        self._headroom = headroom
        self.parent = parent
        self.schedule = Schedule(ledger)
        self.interval = self._interval()
        self.waited = 0.0  # seconds callers spent waiting, for reports

    def _interval(self) -> float:
        return (
            max(period / (limit if limit > 0 else 1) for limit, period in self._documented)
            / self._headroom
        )

    def acquire(self) -> float:
        """Block until a call may be sent; its slot is then taken. Returns the slot (epoch
        seconds): when the call may leave, whenever the caller's thread next runs."""
        started = time.time()
        with self.schedule.held() as own:
            slot = max(started, own.next)
            if self.parent is None:
                own.next = slot + self.interval
            else:
                with self.parent.schedule.held() as shared:
                    slot = max(slot, shared.next)
                    shared.next = slot + self.parent.interval
                own.next = slot + self.interval
        wait = slot - time.time()
        if wait > 0:
            time.sleep(wait)
        self.waited += max(0.0, slot - started)
        return slot

    def pause(self, seconds: float) -> None:
        """Nobody sends for `seconds` (a `Retry-After`; the server's bucket is empty)."""
        with self.schedule.held() as own:
            own.next = max(own.next, time.time() + seconds)

    def observe(self, remaining: int | None) -> None:
        """The server says how many calls its bucket holds; none left: wait one refill."""
        if remaining is not None and remaining <= 0:
            self.pause(self.interval)

    def announce(self, limit: int, period: float) -> bool:
        """The server says its limit for `period` is `limit`; adopt it if it is stricter.

        Returns True when the pacing changed.
        """
        with self.schedule.held():
            for i, (documented, documented_period) in enumerate(self._documented):
                if documented_period == period and limit < documented:
                    self._documented[i] = (float(limit), period)
                    self.interval = self._interval()
                    return True
            return False

    def limits(self) -> list[tuple[float, float]]:
        """The (limit, period) pairs in force, as documented or announced."""
        return list(self._documented)
