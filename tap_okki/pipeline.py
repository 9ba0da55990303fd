"""Run slow per-item calls concurrently while handing results on in the input's order.

Company details are one call per company (N+1). At 200 ms per call a single thread makes
5 calls/s; the rate ceiling is 10/s, so a few calls must be in flight at once. Results still
come out in list order, so the tap's output is deterministic.

Calls that answer at once (a server next door, no rate limit) gain nothing from threads:
Python runs one thread at a time, and threads taking turns cost a fifth of the tap's CPU. So
calls run one by one in the caller's thread until they prove slow.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

SLOW_CALL = 0.02  # seconds: OKKI over the internet, or paced under its rate limit, takes longer
SLOW_CALLS_IN_A_ROW = 3  # before calls go to threads (one slow call may be a hiccup)
logger = logging.getLogger(__name__)


def ordered_map(
    items: Iterable[T],
    work: Callable[[T], R],
    needs_work: Callable[[T], bool],
    workers: int,
    ahead: int | None = None,
) -> Iterator[tuple[T, R | None]]:
    """Yield `(item, work(item))` in input order; items that need no work get `(item, None)`.

    Calls run in the caller's thread while they are quick; from the third slow one in a row
    on, `workers` threads run them (one worker: the caller's thread does the same, without a
    thread to hand results over). At most `ahead` items (default 2 × workers) are then in
    flight or waiting to be yielded, so memory stays flat and the input is consumed only as
    fast as results are taken. An error from `work` is raised when its item's turn comes.
    Closing the iterator cancels what has not started and waits for what has.
    """
    items = iter(items)
    slow_in_a_row = 0
    for item in items:
        if not needs_work(item):
            yield item, None
            continue
        started = time.monotonic()
        result = work(item)
        slow = time.monotonic() - started > SLOW_CALL
        slow_in_a_row = slow_in_a_row + 1 if slow else 0
        yield item, result
        if slow_in_a_row >= SLOW_CALLS_IN_A_ROW and workers > 1:
            logger.info(
                "Detail calls take over %.0f ms: %d at once from here on",
                SLOW_CALL * 1000,
                workers,
            )
            yield from _concurrently(items, work, needs_work, workers, ahead)
            return


def _concurrently(
    items: Iterator[T],
    work: Callable[[T], R],
    needs_work: Callable[[T], bool],
    workers: int,
    ahead: int | None,
) -> Iterator[tuple[T, R | None]]:
    limit = max(1, ahead or 2 * workers)
    pending: deque[tuple[T, Future[R] | None]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="okki-detail")
    try:
        for item in items:
            pending.append((item, pool.submit(work, item) if needs_work(item) else None))
            while len(pending) >= limit:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _result(entry: tuple[T, Future[R] | None]) -> tuple[T, R | None]:
    item, future = entry
    return item, (future.result() if future is not None else None)
