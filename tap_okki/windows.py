"""Reading a fixed past time window of an OKKI list completely, although its pages shift.

OKKI lists come newest `update_time` first, paged by page number, and every request evaluates
the filter afresh (docs/api/okki.md §5). Our window ends at the run's start, in the past, so rows
can only *leave* it while we page (an update or a deletion moves `update_time` past the end;
new rows land past the end too). A row that leaves moves every later row one place forward,
and a page-number reader silently skips one of them.

The remedy here: note `totalItem` on the first page of a scan and compare it on every later
page. Since rows only leave, an unchanged total means nothing moved and the scan saw every
row. A changed total means some row may have been skipped: scan again from page 1 (rows seen
before are not delivered again) until a whole scan sees the total unchanged. A window that
keeps changing is split in two. Rows that left are "changed during the run": their new
`update_time` is later than the bookmark, so the next run reads them.

Follow-ups are windowed on when they happened, which a user may set in the past: a follow-up
written during the run can *enter* a past window (docs/api/okki.md §9), and deleted ones stay
listed, so there rows only enter. A total that grows is a change as well: the same re-scan
catches the shifted rows, and the new ones too when it meets them (else the next run's
look-back does).

Big windows are split by time before reading (oldest part first), so each part is quick to
re-scan and the bookmark can advance after each part.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

ONE_SECOND = dt.timedelta(seconds=1)
# OKKI treats 1970-01-01 00:00:00 as "unset", so an open window starts one second later.
EPOCH = dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc)
UNSTABLE_SCANS_BEFORE_SPLIT = 3
MAX_SCANS = 50  # of a one-second window that never stops changing: then give up loudly


@dataclass(frozen=True)
class Window:
    """Rows whose update time t satisfies start <= t <= end (OKKI's ends are inclusive)."""

    start: dt.datetime | None  # None: from the beginning of time
    end: dt.datetime

    def halves(self) -> tuple[Window, Window] | None:
        """Two adjacent windows covering this one, or None when it is a single second."""
        start = self.start or EPOCH
        seconds = int((self.end - start).total_seconds())
        if seconds < 1:
            return None
        middle = start + dt.timedelta(seconds=seconds // 2)
        return Window(self.start, middle), Window(middle + ONE_SECOND, self.end)


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int  # `totalItem`: rows matching the window when this page was served


FetchPage = Callable[[Window, int], Page]  # (window, 1-based page number) → page


class WindowLostError(RuntimeError):
    """A one-second window changed on every one of MAX_SCANS scans."""


@dataclass
class WindowReader:
    """Reads windows of one OKKI list; each row (by `key`) is delivered once per `rows()` call."""

    fetch: FetchPage
    page_size: int
    key: str
    label: str  # for log lines, e.g. "companies"
    logger: logging.Logger
    max_rows: int = 2000  # split windows holding more rows than this
    # Keys delivered by the current `rows()` call: only its re-scans and halves can meet a row
    # again (a row that changes during the run leaves every window of the run), so the set
    # holds one part's keys, not the whole run's.
    seen: set[str] = field(default_factory=set)
    rescans: int = 0  # scans repeated because the total changed (for the run log)
    pages: int = 0

    def parts(self, window: Window) -> Iterator[tuple[Window, Page]]:
        """Split `window` into parts of at most `max_rows` rows, oldest first.

        Yields each part with its first page, which the caller passes on to `rows()`.
        """
        first = self._fetch(window, 1)
        halves = window.halves() if first.total > self.max_rows else None
        if halves is None:
            yield window, first
            return
        self.logger.info(
            "%s: %d rows between %s and %s; reading the window in two halves",
            self.label,
            first.total,
            _show(window.start),
            _show(window.end),
        )
        older, newer = halves
        yield from self.parts(older)
        yield from self.parts(newer)

    def rows(self, window: Window, first: Page | None = None) -> Iterator[dict[str, Any]]:
        """Every row that matched `window` when this call began and has not left it since.

        Afterwards `seen` holds the keys of those rows.
        """
        self.seen = set()
        yield from self._rows(window, first)

    def _rows(self, window: Window, first: Page | None = None) -> Iterator[dict[str, Any]]:
        for scan in range(1, MAX_SCANS + 1):
            baseline, stable = yield from self._scan(window, first if scan == 1 else None)
            if stable:
                return
            if scan >= UNSTABLE_SCANS_BEFORE_SPLIT and (halves := window.halves()):
                self.logger.info(
                    "%s: rows keep leaving %s…%s while we page; reading it in halves",
                    self.label,
                    _show(window.start),
                    _show(window.end),
                )
                for half in halves:
                    yield from self._rows(half)
                return
            self.rescans += 1
            self.logger.info(
                "%s: rows left the window while we paged (%d matched at first); "
                "scanning it again, skipping rows already read",
                self.label,
                baseline,
            )
        raise WindowLostError(
            f"{self.label}: the window {_show(window.start)}…{_show(window.end)} changed on "
            f"each of {MAX_SCANS} scans; run the tap again"
        )

    def _scan(
        self, window: Window, first: Page | None
    ) -> Generator[dict[str, Any], None, tuple[int, bool]]:
        """One pass from page 1; returns (total on the first page, total never changed)."""
        page = first or self._fetch(window, 1)
        baseline = page.total
        stable = True
        number = 1
        while True:
            if page.total != baseline:
                stable = False
            for row in page.rows:
                row_key = self.key_of(row)
                if row_key not in self.seen:
                    self.seen.add(row_key)
                    yield row
            if not page.rows or number * self.page_size >= page.total:
                return baseline, stable
            number += 1
            page = self._fetch(window, number)

    def key_of(self, row: dict[str, Any]) -> str:
        """A row's key as text: OKKI sends ids as numbers or as text (docs/api/okki.md §10)."""
        return str(row[self.key]).strip()

    def _fetch(self, window: Window, number: int) -> Page:
        self.pages += 1
        return self.fetch(window, number)


def _show(moment: dt.datetime | None) -> str:
    return moment.isoformat() if moment else "the beginning"
