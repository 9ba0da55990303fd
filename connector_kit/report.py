"""The run report (one line per record) and the progress and summary lines in the log."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connector_kit.files import now_text
from connector_kit.serialize import dumps, open_jsonl

Action = Literal["created", "updated", "deleted", "skipped", "failed"]

# Rates are quoted only for a stream that wrote for at least one of the API's rate windows (the
# target sets it): within one window a burst may outrun the ceiling, and over a fraction of a
# second a rate says more about the clock than about throughput ("126799 % of the API
# ceiling" for three records).
MEANINGFUL_SECONDS = 10.0
SAMPLES = 3  # keys named per status in a stream's summary


def new_run_id() -> str:
    """When the run started (UTC) and a random suffix: sorts by time, unique per run."""
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{started}-{secrets.token_hex(3)}"


@dataclass
class StreamTally:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0  # nothing to do for it, with the reason in the report (not a failure)
    failed: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    # Statuses beside the action ("conflict", "partial", "adopted"…), and schema problems in
    # properties nothing writes, by property: counted, shown in the summary.
    statuses: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    # A few keys per status (conflict, adopted…), for the summary: a person can look them up
    # in the run report instead of reading one log line per record.
    samples: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.created + self.updated + self.deleted + self.skipped + self.failed


class RunReport:
    """Thread-safe tallies per stream, an optional JSON Lines report, periodic progress lines.

    `ceiling_per_minute` is what the API's limits allow (records per minute): progress and
    summary lines quote the achieved rate against it.
    """

    def __init__(
        self,
        logger: logging.Logger,
        path: Path | None,
        ceiling_per_minute: float,
        progress_every: float = 30.0,
    ) -> None:
        self.logger = logger
        self.path = path
        self.ceiling_per_minute = ceiling_per_minute
        self.progress_every = progress_every
        self.started = time.monotonic()
        self.run_id = new_run_id()  # on every report and dead-letter line of the run
        self.meaningful_seconds = MEANINGFUL_SECONDS
        self._last_progress = self.started
        self._lock = threading.Lock()
        self._file = None
        self.tallies: dict[str, StreamTally] = defaultdict(StreamTally)
        self._at_second, self._at_text = 0, ""

    def record(
        self,
        stream: str,
        key: Any,
        action: Action,
        destination_id: str | None = None,
        reason: str | None = None,
        status: Iterable[str] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        """One record's outcome. `status`: what else happened to it (e.g. "conflict": written
        without a unique value another key holds); `details`: facts for the report line."""
        now = time.monotonic()
        status = list(status)
        with self._lock:
            tally = self.tallies[stream]
            tally.first_at = tally.first_at or now
            tally.last_at = now
            setattr(tally, action, getattr(tally, action) + 1)
            tally.statuses.update(status)
            for one in status:
                kept = tally.samples.setdefault(one, [])
                if len(kept) < SAMPLES:
                    kept.append(key)
            if self.path is not None:
                if self._file is None:
                    self._file = open_jsonl(self.path)
                line: dict[str, Any] = {
                    "at": self._at(),
                    "run": self.run_id,
                    "stream": stream,
                    "key": key,
                    "id": destination_id,
                    "action": action,
                }
                if status:
                    line["status"] = status
                if reason:
                    line["reason"] = reason
                if details:
                    line.update(details)
                self._file.write(dumps(line) + "\n")
            due = now - self._last_progress >= self.progress_every
            if due:
                self._last_progress = now
        if due:
            self.progress()

    def _at(self) -> str:
        """The time for a report line: made once a second (keep_days reads it)."""
        second = int(time.time())
        if second != self._at_second:
            self._at_second, self._at_text = second, now_text()
        return self._at_text

    def note_ignored(self, stream: str, prop: str) -> None:
        """A record of `stream` broke its schema in `prop`, which nothing writes."""
        with self._lock:
            self.tallies[stream].ignored[prop] += 1

    def count(self, stream: str, status: str) -> int:
        with self._lock:
            return self.tallies[stream].statuses[status] if stream in self.tallies else 0

    def _rate(self, records: int, seconds: float) -> str:
        if seconds < self.meaningful_seconds:
            return f"too short ({seconds:.1f}s) for a rate"
        per_minute = records / seconds * 60 if seconds > 0 else 0.0
        share = per_minute / self.ceiling_per_minute * 100 if self.ceiling_per_minute else 0.0
        return f"{per_minute:,.0f} records/min ({share:.0f}% of the API ceiling)"

    def progress(self) -> None:
        with self._lock:
            total = sum(t.records for t in self.tallies.values())
            failed = sum(t.failed for t in self.tallies.values())
        elapsed = time.monotonic() - self.started
        self.logger.info(
            "Progress: %d records written or dead-lettered (%d failed) in %.0fs, %s",
            total,
            failed,
            elapsed,
            self._rate(total, elapsed),
        )

    def summary(self) -> list[str]:
        """One line per stream; logged and returned (the demo prints them)."""
        lines = []
        with self._lock:
            for stream, t in sorted(self.tallies.items()):
                seconds = max(t.last_at - t.first_at, 1e-9) if t.records > 1 else 0.0
                # Deletions and skips only when there were some: most runs have none.
                rare = f"{t.deleted} deleted, " if t.deleted else ""
                rare += f"{t.skipped} skipped, " if t.skipped else ""
                rare += "".join(
                    f"{n} {s} ({_keys(t.samples.get(s, []), n)}), "
                    for s, n in sorted(t.statuses.items())
                )
                lines.append(
                    f"Stream '{stream}': {t.records} records, {t.created} created, "
                    f"{t.updated} updated, {rare}{t.failed} failed, in {seconds:.1f}s, "
                    + self._rate(t.records, seconds)
                    + _ignored(t.ignored)
                )
            if self._file is not None:
                self._file.close()
                self._file = None
        if lines:
            self.logger.info("Run %s: summary per stream", self.run_id)
        for line in lines:
            self.logger.info("%s", line)
        return lines


def _keys(samples: list[Any], count: int) -> str:
    shown = ", ".join(str(k) for k in samples)
    return (
        f"key {shown}" if count == 1 else f"keys {shown}" + (", …" if count > len(samples) else "")
    )


def _ignored(counts: Counter[str]) -> str:
    if not counts:
        return ""
    listed = ", ".join(f"{prop or '(record)'} {n}" for prop, n in sorted(counts.items()))
    return f"; schema problems in properties not written (records loaded anyway): {listed}"
