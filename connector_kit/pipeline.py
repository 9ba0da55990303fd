"""Several batches in flight, STATE only for what every earlier record's batch acknowledged.

The SDK hands a full batch to the sink and, left alone, emits STATE only when it drains all sinks
(every 5 minutes or at the end). We instead:

- `Dispatcher.submit` sends each batch to a bounded thread pool and returns at once (it blocks
  only when `max_in_flight` batches are out: back-pressure on stdin, so memory stays flat);
- a batch waits for earlier in-flight batches that hold the same keys (so two versions of one
  record are never written out of order) or the parents it needs (a company before its people);
  a batch that may delete records (`clears`) also waits for in-flight batches that reference
  them (a person linked to a company is written before the company is deleted);
- `Checkpointer` snapshots, at every STATE message, how many records each sink had received,
  and writes the STATE once every batch covering those records has been acknowledged — in the
  order the STATEs arrived, and never again after a failure (as singer-io/target-stitch); an
  error anywhere in a worker, even after its batch was written (writing the STATE itself), is
  a failure of the run.

A sink may keep records of a batch back (a child whose parent has not come yet): its ticket then
counts them as `held`, and stays open until later batches that `settles` it have written them.
STATEs received after a held record wait for it (the target decides how long: see
`PipelinedTarget.checkpoint_overdue`).

Memory stays flat however long a STATE waits: a STATE that would be written at the same moment
as the one queued before it (in every sink whose records came between them, both wait for the
same batch) replaces it — a STATE is the tap's whole state, only the latest matters — and
acknowledged tickets are forgotten at once, not when those before them are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Ticket:
    sink: str
    start: int  # position of the batch's first record among the records the sink received
    end: int
    seq: int = 0  # order of opening (per checkpointer)
    done: threading.Event = field(default_factory=threading.Event)  # its batch has run
    failed: bool = False
    held: int = 0  # of its records, those left to later batches that settle them


class Checkpointer:
    """Writes a STATE once all records received before it are acknowledged.

    `before_write` runs before each STATE is written (the dead letters it depends on are made
    durable there).
    """

    def __init__(
        self, write: Callable[[Any], None], before_write: Callable[[], None] = lambda: None
    ) -> None:
        self._write = write
        self._before_write = before_write
        self._lock = threading.Lock()
        self._received: dict[str, int] = {}
        self._submitted: dict[str, int] = {}
        # Per sink, the tickets not acknowledged yet (running, or holding records), in the
        # order they were opened: the first one's start is how far the sink is acknowledged.
        self._pending: dict[str, dict[int, Ticket]] = {}
        self._states: deque[tuple[dict[str, int], Any, float]] = deque()
        self._seq = 0
        self._failed = False
        self.received_states = 0
        self.emitted = 0
        self.most_waiting = 0  # STATEs waiting at once, at most: stays small however long the run

    def received(self, sink: str, count: int = 1) -> None:
        with self._lock:
            self._received[sink] = self._received.get(sink, 0) + count

    def add_state(self, state: Any) -> None:
        with self._lock:
            self.received_states += 1
            if self._failed:
                return
            snapshot = dict(self._received)
            if self._states:
                previous, last, since = self._states[-1]
                if last == state:
                    return
                if self._written_together(previous, snapshot):
                    # Only the latest of them matters: a STATE is the tap's whole state.
                    self._states[-1] = (snapshot, state, since)
                    return
            self._states.append((snapshot, state, time.monotonic()))
            self.most_waiting = max(self.most_waiting, len(self._states))
        self._emit_ready()

    def _written_together(self, earlier: dict[str, int], later: dict[str, int]) -> bool:
        """Whether two snapshots are acknowledged at the same moment: in every sink whose
        records came between them, both wait for the same batch."""
        return all(
            self._waits_for(sink, earlier.get(sink, 0)) == self._waits_for(sink, count)
            for sink, count in later.items()
            if count != earlier.get(sink, 0)
        )

    def _waits_for(self, sink: str, count: int) -> int | None:
        """The batch whose acknowledgement acknowledges the first `count` records of `sink`:
        the last pending ticket starting before them (0: the sink's next batch, which takes
        all it buffers; None: they are acknowledged)."""
        if count <= self._acked(sink):
            return None
        if count > self._submitted.get(sink, 0):
            return 0
        last = None
        for ticket in self._pending[sink].values():
            if ticket.start >= count:
                break
            last = ticket.seq
        return last

    def pending_states(self) -> int:
        with self._lock:
            return len(self._states)

    def open_tickets(self) -> int:
        with self._lock:
            return sum(map(len, self._pending.values()))

    def open_ticket(self, sink: str, count: int, held: int = 0) -> Ticket:
        with self._lock:
            start = self._submitted.get(sink, 0)
            self._seq += 1
            ticket = Ticket(sink, start, start + count, self._seq, held=held)
            self._submitted[sink] = ticket.end
            self._pending.setdefault(sink, {})[ticket.seq] = ticket
            return ticket

    def close_ticket(self, ticket: Ticket) -> None:
        with self._lock:
            ticket.done.set()
            self._settled(ticket)
        self._emit_ready()

    def settle(self, ticket: Ticket) -> None:
        """One of the records `ticket` held back is written or dead-lettered."""
        with self._lock:
            ticket.held -= 1
            self._settled(ticket)
        self._emit_ready()

    def _settled(self, ticket: Ticket) -> None:
        if ticket.done.is_set() and not ticket.held:
            del self._pending[ticket.sink][ticket.seq]

    def _acked(self, sink: str) -> int:
        """Records of `sink` acknowledged: those before its first pending ticket, or all."""
        pending = self._pending.get(sink)
        if pending:
            return next(iter(pending.values())).start
        return self._submitted.get(sink, 0)

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

    def _compact(self) -> None:
        """Merge the queued STATEs that have come to be written together (a batch between
        them was acknowledged since); `add_state` merges those that are at once."""
        kept: deque[tuple[dict[str, int], Any, float]] = deque()
        for snapshot, state, since in self._states:
            if kept and self._written_together(kept[-1][0], snapshot):
                since = kept.pop()[2]
            kept.append((snapshot, state, since))
        self._states = kept

    def _emit_ready(self) -> None:
        # Holding the lock while writing keeps STATE lines in order across worker threads.
        with self._lock:
            while self._states and not self._failed:
                snapshot, state, _ = self._states[0]
                if any(self._acked(s) < n for s, n in snapshot.items()):
                    if len(self._states) > 1:
                        self._compact()
                    return
                try:
                    self._before_write()
                    self._write(state)
                except BaseException:
                    # A STATE not written (a closed pipe, a full disk): none after it either.
                    self._failed = True
                    self._states.clear()
                    raise
                self._states.popleft()
                self.emitted += 1


class Dispatcher:
    """A bounded pool of batch writers that keeps per-key order and parent-before-child order."""

    def __init__(self, checkpointer: Checkpointer, max_in_flight: int) -> None:
        self.checkpointer = checkpointer
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="batch")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._holders: dict[Hashable, Ticket] = {}
        self._needers: dict[Hashable, dict[int, Ticket]] = {}  # key → batches referencing it
        self._futures: set[Future] = set()
        self.failure: BaseException | None = None

    def holds(self, key: Hashable) -> bool:
        """Whether a batch that writes `key` is still in flight."""
        with self._lock:
            return key in self._holders

    def in_flight(self) -> int:
        with self._lock:
            return len(self._futures)

    def submit(
        self,
        sink: str,
        count: int,
        job: Callable[[], None],
        holds: Iterable[Hashable] = (),
        needs: Iterable[Hashable] = (),
        held: int = 0,
        settles: Iterable[Ticket] = (),
        clears: Iterable[Hashable] = (),
    ) -> Ticket:
        """Run `job` (which writes `count` records of `sink`) once its predecessors are done.

        `holds`: keys this batch writes; `needs`: keys of other records it references;
        `clears`: keys whose records it may delete (it also waits for in-flight batches that
        reference them, which would otherwise link to a deleted record).
        `held`: how many of the `count` records `job` leaves out, to be written by later batches;
        `settles`: for each record this batch writes that an earlier batch held, that batch's
        ticket (such records are not counted in `count` again).
        """
        self.raise_failure()
        self._slots.acquire()
        holds, needs = list(holds), list(needs)
        with self._lock:
            ticket = self.checkpointer.open_ticket(sink, count, held)
            earlier = [self._holders[k] for k in (*holds, *needs) if k in self._holders]
            for key in clears:
                earlier += self._needers.get(key, {}).values()
            predecessors = list({id(t): t for t in earlier if t is not ticket}.values())
            for key in holds:
                self._holders[key] = ticket
            for key in needs:
                self._needers.setdefault(key, {})[ticket.seq] = ticket
            future = self._pool.submit(
                self._run, ticket, job, predecessors, holds, needs, list(settles)
            )
            self._futures.add(future)
        waiting = sum(not t.done.is_set() for t in predecessors)
        if waiting:
            logger.debug(
                "%s: a batch of %d record(s) waits for %d batch(es) in flight that write or "
                "reference its keys",
                sink,
                count,
                waiting,
            )
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
        needs: list,
        settles: list[Ticket],
    ) -> None:
        try:
            for predecessor in waits:
                predecessor.done.wait()
                if predecessor.failed:
                    raise RuntimeError("an earlier batch this one depends on failed")
            if self.failure is not None:
                raise RuntimeError("the run is stopping after an earlier failure")
            job()
            # Acknowledging can fail too (the STATE it writes meets a closed pipe): a failure
            # like any other, never lost in the worker.
            for earlier in settles:
                self.checkpointer.settle(earlier)
            self.checkpointer.close_ticket(ticket)
        except BaseException as exc:
            ticket.failed = True
            self.fail(exc)
            ticket.done.set()
        finally:
            with self._lock:
                for key in holds:
                    if self._holders.get(key) is ticket:
                        del self._holders[key]
                for key in needs:
                    needers = self._needers.get(key)
                    if needers is not None:
                        needers.pop(ticket.seq, None)
                        if not needers:
                            del self._needers[key]
            self._slots.release()

    def fail(self, exc: BaseException) -> None:
        """The run fails with `exc` (the first failure is kept): no STATE from now on."""
        with self._lock:
            if self.failure is None:
                self.failure = exc
        self.checkpointer.fail()

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
