"""Run slow per-item calls concurrently while handing results on in the input's order.

Company details are one call per company (N+1). At 200 ms per call a single thread makes
5 calls/s; the rate ceiling is 10/s, so a few calls must be in flight at once. Results still
come out in list order, so the tap's output is deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    items: Iterable[T],
    work: Callable[[T], R],
    needs_work: Callable[[T], bool],
    workers: int,
    ahead: int | None = None,
) -> Iterator[tuple[T, R | None]]:
    """Yield `(item, work(item))` in input order; items that need no work get `(item, None)`.

    At most `ahead` items (default 2 × workers) are in flight or waiting to be yielded, so
    memory stays flat and the input is consumed only as fast as results are taken. An error
    from `work` is raised when its item's turn comes. Closing the iterator cancels what has
    not started and waits for what has.
    """
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
