"""Several batches in flight, STATE only for what every earlier record's batch acknowledged.

The SDK hands a full batch to the sink and, left alone, emits STATE only when it drains all sinks
(every 5 minutes or at the end). We instead:

- `Dispatcher.submit` sends each batch to a bounded thread pool and returns at once (it blocks
  only when `max_in_flight` batches are out: back-pressure on stdin, so memory stays flat);
- a batch waits for earlier in-flight batches that hold the same keys (so two versions of one
  record are never written out of order) or the parents it needs (a company before its people);
- `Checkpointer` snapshots, at every STATE message, how many records each sink had received,
  and writes the STATE once every batch covering those records has been acknowledged — in the
  order the STATEs arrived, and never again after a batch failed (as singer-io/target-stitch).

A sink may keep records of a batch back (a child whose parent has not come yet): its ticket then
counts them as `held`, and stays open until later batches that `settles` it have written them.
STATEs received after a held record wait for it, however long it waits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ticket:
    sink: str
    start: int  # position of the batch's first record among the records the sink received
    end: int
    done: threading.Event = field(default_factory=threading.Event)  # its batch has run
    failed: bool = False
    held: int = 0  # of its records, those left to later batches that settle them


class Checkpointer:
    """Writes a STATE once all records received before it are acknowledged."""

    def __init__(self, write: Callable[[dict], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._received: dict[str, int] = {}
        self._submitted: dict[str, int] = {}
        self._acked: dict[str, int] = {}
        self._open: dict[str, deque[Ticket]] = {}
        self._states: deque[tuple[dict[str, int], Any, float]] = deque()
        self._failed = False
        self.emitted = 0

    def received(self, sink: str, count: int = 1) -> None:
        with self._lock:
            self._received[sink] = self._received.get(sink, 0) + count

    def add_state(self, state: Any) -> None:
        with self._lock:
            if self._states and self._states[-1][1] == state:
                return
            self._states.append((dict(self._received), state, time.monotonic()))
        self._emit_ready()

    def open_ticket(self, sink: str, count: int, held: int = 0) -> Ticket:
        with self._lock:
            start = self._submitted.get(sink, 0)
            ticket = Ticket(sink, start, start + count, held=held)
            self._submitted[sink] = ticket.end
            self._open.setdefault(sink, deque()).append(ticket)
            return ticket

    def close_ticket(self, ticket: Ticket) -> None:
        with self._lock:
            ticket.done.set()
            self._advance(ticket.sink)
        self._emit_ready()

    def settle(self, ticket: Ticket) -> None:
        """One of the records `ticket` held back is written or dead-lettered."""
        with self._lock:
            ticket.held -= 1
            self._advance(ticket.sink)
        self._emit_ready()

    def _advance(self, sink: str) -> None:
        # Tickets are acknowledged in order: a ticket still holding records keeps later ones back.
        queue = self._open[sink]
        while queue and queue[0].done.is_set() and not queue[0].held:
            self._acked[sink] = queue.popleft().end

    def fail(self) -> None:
        with self._lock:
            self._failed = True
            self._states.clear()

    def oldest_pending_age(self) -> float:
        """Seconds the oldest unwritten STATE has waited (0 when none waits)."""
        with self._lock:
            return time.monotonic() - self._states[0][2] if self._states else 0.0

    def unsubmitted(self, sink: str) -> bool:
        """Whether `sink` holds received records the oldest waiting STATE depends on."""
        with self._lock:
            if not self._states:
                return False
            needed = self._states[0][0].get(sink, 0)
            return self._submitted.get(sink, 0) < needed

    def _emit_ready(self) -> None:
        # Holding the lock while writing keeps STATE lines in order across worker threads.
        with self._lock:
            while self._states and not self._failed:
                snapshot, state, _ = self._states[0]
                if any(self._acked.get(s, 0) < n for s, n in snapshot.items()):
                    return
                self._states.popleft()
                self._write(state)
                self.emitted += 1


class Dispatcher:
    """A bounded pool of batch writers that keeps per-key order and parent-before-child order."""

    def __init__(self, checkpointer: Checkpointer, max_in_flight: int) -> None:
        self.checkpointer = checkpointer
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="batch")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._holders: dict[Hashable, Ticket] = {}
        self._futures: set[Future] = set()
        self.failure: BaseException | None = None

    def holds(self, key: Hashable) -> bool:
        """Whether a batch that writes `key` is still in flight."""
        with self._lock:
            return key in self._holders

    def submit(
        self,
        sink: str,
        count: int,
        job: Callable[[], None],
        holds: Iterable[Hashable] = (),
        needs: Iterable[Hashable] = (),
        held: int = 0,
        settles: Iterable[Ticket] = (),
    ) -> Ticket:
        """Run `job` (which writes `count` records of `sink`) once its predecessors are done.

        `holds`: keys this batch writes; `needs`: keys of other records it references.
        `held`: how many of the `count` records `job` leaves out, to be written by later batches;
        `settles`: for each record this batch writes that an earlier batch held, that batch's
        ticket (such records are not counted in `count` again).
        """
        self.raise_failure()
        self._slots.acquire()
        holds = list(holds)
        with self._lock:
            ticket = self.checkpointer.open_ticket(sink, count, held)
            held_by = (self._holders[k] for k in (*holds, *needs) if k in self._holders)
            predecessors = list({id(t): t for t in held_by}.values())
            for key in holds:
                self._holders[key] = ticket
            future = self._pool.submit(self._run, ticket, job, predecessors, holds, list(settles))
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return ticket

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def _run(
        self,
        ticket: Ticket,
        job: Callable[[], None],
        waits: list[Ticket],
        holds: list,
        settles: list[Ticket],
    ) -> None:
        try:
            for predecessor in waits:
                predecessor.done.wait()
                if predecessor.failed:
                    raise RuntimeError("an earlier batch this one depends on failed")
            if self.failure is None:
                job()
            else:
                raise RuntimeError("the run is stopping after an earlier failure")
        except BaseException as exc:
            ticket.failed = True
            with self._lock:
                if self.failure is None:
                    self.failure = exc
            self.checkpointer.fail()
            ticket.done.set()
        else:
            for earlier in settles:
                self.checkpointer.settle(earlier)
            self.checkpointer.close_ticket(ticket)
        finally:
            with self._lock:
                for key in holds:
                    if self._holders.get(key) is ticket:
                        del self._holders[key]
            self._slots.release()

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def join(self) -> None:
        """Wait for every batch; raise the first failure."""
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                break
            for future in pending:
                future.exception()
        self.raise_failure()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
