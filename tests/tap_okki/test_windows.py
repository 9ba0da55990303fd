"""WindowReader against a model of OKKI's list: newest first, page numbers, no snapshot."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_okki.windows import Page, Window, WindowReader

T0 = dt.datetime(2025, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
NOW = T0 + dt.timedelta(days=30)  # the window's end, in the past of every change below


class FakeOkkiList:
    """Rows {"id", "t"}; each fetch filters and sorts afresh, like OKKI (docs/api/okki.md §5).

    `before_fetch(n)` runs before the n-th fetch (1-based) and may change the rows.
    """

    def __init__(self, times: list[int], before_fetch: Callable[[int], None] | None = None):
        self.rows = [{"id": i, "t": T0 + dt.timedelta(seconds=s)} for i, s in enumerate(times)]
        self.before_fetch = before_fetch or (lambda n: None)
        self.fetches = 0

    def touch(self, row_id: int) -> None:
        """An update: the row's time becomes later than any window we read."""
        for row in self.rows:
            if row["id"] == row_id:
                row["t"] = NOW + dt.timedelta(seconds=1 + self.fetches)

    def fetch(self, window: Window, number: int, size: int) -> Page:
        self.fetches += 1
        self.before_fetch(self.fetches)
        matching = sorted(
            (
                r
                for r in self.rows
                if (window.start is None or r["t"] >= window.start) and r["t"] <= window.end
            ),
            key=lambda r: (r["t"], r["id"]),
            reverse=True,
        )
        start = (number - 1) * size
        return Page(rows=[dict(r) for r in matching[start : start + size]], total=len(matching))


def reader(okki: FakeOkkiList, size: int = 10, max_rows: int = 10_000) -> WindowReader:
    return WindowReader(
        fetch=lambda w, n: okki.fetch(w, n, size),
        page_size=size,
        key="id",
        label="test",
        logger=logging.getLogger("test"),
        max_rows=max_rows,
    )


def read_all(r: WindowReader, window: Window) -> list[int]:
    return [row["id"] for part, first in r.parts(window) for row in r.rows(part, first)]


def naive_read(okki: FakeOkkiList, window: Window, size: int = 10) -> list[int]:
    """What a plain page-number loop gets: the hazard the reader exists for."""
    ids, number = [], 1
    while True:
        page = okki.fetch(window, number, size)
        ids += [r["id"] for r in page.rows]
        if not page.rows or number * size >= page.total:
            return ids
        number += 1


def test_rows_leaving_the_window_while_paging_do_not_hide_the_rows_behind_them() -> None:
    def updates_after_page_2(n: int) -> None:
        if n == 3:  # three rows already read (newest, on page 1) are updated
            for row_id in (49, 48, 47):
                okki.touch(row_id)

    window = Window(None, NOW)
    okki = FakeOkkiList(list(range(50)), updates_after_page_2)
    assert len(set(naive_read(okki, window))) < 50  # the naive loop loses rows

    okki = FakeOkkiList(list(range(50)), updates_after_page_2)
    r = reader(okki)
    ids = read_all(r, window)
    assert sorted(ids) == list(range(50))  # every row, each once
    assert r.rescans == 1


def test_an_unchanged_window_is_read_once_without_rescans() -> None:
    okki = FakeOkkiList(list(range(95)))
    r = reader(okki)
    assert read_all(r, Window(None, NOW)) == list(reversed(range(95)))
    assert (okki.fetches, r.rescans) == (10, 0)


def test_big_windows_are_split_into_parts_oldest_first() -> None:
    okki = FakeOkkiList([s * 60 for s in range(100)])  # one row a minute
    r = reader(okki, size=10, max_rows=30)
    parts = [(part, first) for part, first in r.parts(Window(T0, NOW))]
    assert len(parts) >= 4
    assert all(first.total <= 30 for _, first in parts)
    assert [p.end for p, _ in parts] == sorted(p.end for p, _ in parts)
    for (older, _), (newer, _) in itertools.pairwise(parts):
        assert newer.start == older.end + dt.timedelta(seconds=1)  # adjacent, no gap
    ids = [row["id"] for part, first in parts for row in r.rows(part, first)]
    assert sorted(ids) == list(range(100))


def test_a_window_that_keeps_changing_is_split_and_still_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    times = list(range(0, 400, 4))  # 100 rows
    victims = iter(range(99, 0, -3))  # one row updated before almost every fetch

    def busy(n: int) -> None:
        if n % 2 == 0:
            okki.touch(next(victims, -1))

    okki = FakeOkkiList(times, busy)
    r = reader(okki, size=10)
    with caplog.at_level(logging.INFO):
        ids = read_all(r, Window(None, NOW))
    assert "reading it in halves" in caplog.text
    touched = {row["id"] for row in okki.rows if row["t"] > NOW}
    assert len(ids) == len(set(ids))
    assert set(range(100)) - touched <= set(ids)


@settings(max_examples=150, deadline=None)
@given(
    times=st.lists(st.integers(0, 50), min_size=0, max_size=60),  # many ties
    size=st.integers(1, 12),
    max_rows=st.integers(5, 80),
    schedule=st.lists(st.tuples(st.integers(1, 30), st.integers(0, 59)), max_size=15),
)
def test_every_row_that_never_left_is_delivered_exactly_once(
    times: list[int], size: int, max_rows: int, schedule: list[tuple[int, int]]
) -> None:
    """Whatever leaves the window, whenever: rows that stayed are all read, none twice."""

    def changes(n: int) -> None:
        for fetch_number, row_id in schedule:
            if fetch_number == n:
                okki.touch(row_id)

    okki = FakeOkkiList(times, changes)
    ids = read_all(reader(okki, size=size, max_rows=max_rows), Window(T0, NOW))
    stayed = {row["id"] for row in okki.rows if row["t"] <= NOW}
    assert len(ids) == len(set(ids))
    assert stayed <= set(ids) <= set(range(len(times)))


def test_the_keys_kept_against_repeats_are_those_of_the_current_part_only() -> None:
    """Re-scans repeat rows only within a part, so memory holds one part's keys, not the run's."""
    okki = FakeOkkiList([s * 60 for s in range(100)])
    r = reader(okki, size=10, max_rows=30)
    for part, first in r.parts(Window(T0, NOW)):
        ids = [row["id"] for row in r.rows(part, first)]
        # What the caller checks removed rows of this part against, keys as text (OKKI sends
        # ids as numbers or as text).
        assert r.seen == {str(i) for i in ids}
        assert len(r.seen) <= 30
