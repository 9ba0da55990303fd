"""Parents before children: a record is written after the parent records it references.

Three things decide when a child may go, all kept here and changed on the main thread only:

- buffered parents: parent records waiting in their sink for a full batch. A batch whose
  records reference one sends that sink first (`send_buffered_first`);
- arrived keys: parent records sent to be written in this run, whatever came of them (noted in
  the id map's run-only table, so memory stays flat). A child of one goes at once: its batch
  waits for the parent's batch in flight (the dispatcher's `needs`);
- held records: children whose parent has neither arrived nor is in Twenty.

Many taps send a child before its parent: the SDK syncs a parent's child streams before it
writes the parent's RECORD, and other taps send whole streams in any order. A child whose parent
has not come in this run and is not in Twenty waits here (in memory, `max_held_records` at most)
instead of being dead-lettered; when the parent is sent, the child follows in a batch that waits
for the parent's. At the end of the input, or when too many wait, the oldest are sent anyway:
their batch looks the parent up in Twenty one last time and, if it is missing, applies
`on_missing_parent` (dead-letter, skip, or write without the link).

The batch a held record came in keeps its checkpoint ticket open until the record is written or
dead-lettered (`Checkpointer.settle`), so a STATE that came after it waits for it too — but not
for ever: once a STATE has waited `checkpoint_seconds`, a record held that long whose parent is
neither buffered in its sink nor held itself is sent the same way (`checkpoint_overdue`), so
checkpoints keep flowing.

This module knows sinks only as `Sender`s and is handed the id map and a way to drain a sink,
so it imports neither the sinks nor the target.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from connector_kit.pipeline import Ticket
    from target_twenty.ids import IdStore

Parent = tuple[str, str]  # (stream, Singer key as text)


class Sender(Protocol):
    """A sink, as parent ordering sees it."""

    stream_name: str

    @property
    def max_size(self) -> int: ...

    def resend(self, entries: list[Held]) -> None: ...


@dataclass(eq=False)
class Held:
    sink: Sender
    record: dict[str, Any]
    ticket: Ticket  # of the batch it came in
    key: Parent | None  # its own (stream, key)
    waiting: set[Parent]  # the parents it waits for
    seq: int = 0
    since: float = 0.0  # time.monotonic() when it was held


class HeldRecords:
    """The children waiting for a parent, oldest first, findable by the parents they wait for."""

    def __init__(self) -> None:
        self._entries: dict[int, Held] = {}  # by `seq`: oldest first
        self._by_parent: dict[Parent, dict[int, Held]] = {}  # each by `seq`
        self._latest: dict[Parent, Held] = {}  # the newest held version of a record
        self._seq = 0
        self._held: Counter[str] = Counter()  # per stream
        self._released: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def expects(self, parent: Parent) -> bool:
        """Whether a child of `parent` can wait for it without asking Twenty: others wait for it
        already (it is not there), or it is held itself (it is sent later in this run)."""
        return parent in self._by_parent or parent in self._latest

    def latest(self, key: Parent | None) -> Held | None:
        """The newest held version of the record `key` (a later one must not overtake it)."""
        return self._latest.get(key) if key is not None else None

    def add(self, entry: Held) -> None:
        self._seq += 1
        entry.seq = self._seq
        entry.since = time.monotonic()
        self._entries[entry.seq] = entry
        for parent in entry.waiting:
            self._by_parent.setdefault(parent, {})[entry.seq] = entry
        if entry.key is not None:
            self._latest[entry.key] = entry
        self._held[entry.sink.stream_name] += 1

    def arrived(self, parents: Iterable[Parent]) -> list[Held]:
        """These parents were sent: the records that waited for nothing else, oldest first."""
        ready = []
        for parent in parents:
            for entry in self._by_parent.pop(parent, {}).values():
                entry.waiting.discard(parent)
                if not entry.waiting:
                    ready.append(entry)
        for entry in ready:
            self._remove(entry)
            self._released[entry.sink.stream_name] += 1
        return sorted(ready, key=lambda e: e.seq)

    def oldest(self, count: int) -> list[Held]:
        """Take the `count` records held longest."""
        taken = [self._entries[seq] for seq in list(self._entries)[:count]]
        for entry in taken:
            self._remove(entry)
        return taken

    def held_longer_than(self, seconds: float) -> list[Held]:
        """The records held for more than `seconds`, oldest first (they stay held)."""
        cutoff = time.monotonic() - seconds
        found = []
        for entry in self._entries.values():  # in the order they were held
            if entry.since > cutoff:
                break
            found.append(entry)
        return found

    def take(self, entries: Iterable[Held]) -> list[Held]:
        """Stop holding these records (to send them)."""
        taken = [e for e in entries if self._entries.get(e.seq) is e]
        for entry in taken:
            self._remove(entry)
        return taken

    def unblocked(self) -> list[Held]:
        """Take the records none of whose parents is itself held (else it may come after all)."""
        taken = [e for e in self._entries.values() if not any(p in self._latest for p in e.waiting)]
        for entry in taken:
            self._remove(entry)
        return taken

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Per stream: records held, and released when their parent came."""
        return self._held, self._released

    def _remove(self, entry: Held) -> None:
        del self._entries[entry.seq]
        for parent in entry.waiting:
            waiting = self._by_parent[parent]
            del waiting[entry.seq]
            if not waiting:
                del self._by_parent[parent]
        if entry.key is not None and self._latest.get(entry.key) is entry:
            del self._latest[entry.key]


class ParentOrder:
    """Buffered parents, arrived keys and held children of one run."""

    def __init__(
        self,
        store: IdStore,
        drain: Callable[[Any], None],
        *,
        max_held: int,
        batch_size: int,
        on_missing_parent: str,
        logger: logging.Logger,
    ) -> None:
        self._store = store  # keeps the arrived keys
        self._drain = drain  # sends a sink's buffer as a batch now
        self._max_held = max_held
        self._batch_size = batch_size
        self._on_missing_parent = on_missing_parent
        self._logger = logger
        # Per stream, per sink: parent keys waiting in the sink for a full batch.
        self._buffered: dict[str, dict[Sender, set[str]]] = {}
        self._held = HeldRecords()
        self._overflow_logged = False
        self._orphans: Counter[str] = Counter()  # per stream; counted on worker threads
        self._orphans_lock = threading.Lock()

    def __len__(self) -> int:
        """Records held back."""
        return len(self._held)

    # Buffered parents ---------------------------------------------------------------------
    def buffered(self, sink: Sender, key: str) -> None:
        """A parent record waits in `sink`'s buffer."""
        self._buffered.setdefault(sink.stream_name, {}).setdefault(sink, set()).add(key)

    def batch_taken(self, sink: Sender) -> None:
        """`sink`'s buffer goes out as a batch: its parents are buffered no more."""
        self._buffered.get(sink.stream_name, {}).pop(sink, None)

    def send_buffered_first(self, child: Sender, parents: Iterable[Parent]) -> None:
        """Parents still buffered in another sink are sent now, before `child`'s batch."""
        for parent in parents:
            sink = self._buffering(parent)  # asked anew: a drain may have sent others too
            if sink is not None and sink is not child:
                self._logger.debug(
                    "Sending buffered '%s' records before '%s'.",
                    sink.stream_name,
                    child.stream_name,
                )
                self._drain(sink)

    def _buffering(self, parent: Parent) -> Sender | None:
        """The sink holding `parent` in its buffer (not sent yet), if any."""
        stream, key = parent
        sinks = self._buffered.get(stream, {})
        return next((sink for sink, keys in sinks.items() if key in keys), None)

    # Arrived keys -------------------------------------------------------------------------
    def arrived(self, stream: str, keys: Iterable[str]) -> set[str]:
        """Those of `keys` whose `stream` records were sent to be written in this run."""
        return self._store.arrived(stream, keys)

    def sent(self, stream: str, keys: list[str]) -> None:
        """Parent records went to be written: the children waiting for them follow now."""
        self._store.mark_arrived(stream, keys)
        self._resend(self._held.arrived((stream, k) for k in keys))

    # Held children ------------------------------------------------------------------------
    def waits(
        self,
        records: list[tuple[Parent | None, list[Parent]]],
        found_in_twenty: Callable[[str, set[str]], set[str]],
    ) -> list[set[Parent]]:
        """For each record (its own key, the parents it references), the parents it must wait
        for (none: it can be written now).

        A parent is waited for when it has not come in this run and is not in Twenty
        (`found_in_twenty`: one lookup per parent stream, for parents neither arrived nor
        awaited already). A record also waits for whatever an earlier held version of it waits
        for: it must not overtake it.
        """
        by_stream: dict[str, set[str]] = {}
        for _, parents in records:
            for stream, key in parents:
                by_stream.setdefault(stream, set()).add(key)
        missing: set[Parent] = set()
        for stream, keys in by_stream.items():
            keys -= self.arrived(stream, keys)
            waited = {k for k in keys if self._held.expects((stream, k))}
            unknown = keys - waited
            if unknown:
                waited |= unknown - found_in_twenty(stream, unknown)
            missing |= {(stream, k) for k in waited}
        if not missing and not len(self._held):
            return [set() for _ in records]  # nothing to wait for: the common case
        waits: list[set[Parent]] = []
        held_here: dict[Parent, set[Parent]] = {}  # records of this batch held so far
        for key, references in records:
            parents = {p for p in references if p in missing}
            if key is not None:
                earlier = self._held.latest(key)
                parents |= held_here.get(key) or (earlier.waiting if earlier else set())
                if parents:
                    held_here[key] = parents
            waits.append(parents)
        return waits

    def hold(self, entries: Iterable[Held]) -> None:
        for entry in entries:
            self._held.add(entry)
        excess = len(self._held) - self._max_held
        if excess > 0:
            if not self._overflow_logged:
                self._overflow_logged = True
                self._logger.warning(
                    "More than max_held_records=%d records wait for their parent: the oldest "
                    "are sent now, and dead-lettered if their parent is not in Twenty.",
                    self._max_held,
                )
            # A batch's worth at once, not one lookup per record from here on.
            self._resend(self._held.oldest(max(excess, self._batch_size)))

    def checkpoint_overdue(self, seconds: float) -> None:
        """A STATE has waited `seconds`. Records held that long are not left waiting for a
        parent that may never come: a parent still buffered in its sink is sent (they follow
        it); those whose parents are neither buffered nor held themselves are sent now, and
        their batch applies `on_missing_parent` to a parent still missing. A parent that is
        held waits its own turn, and its children follow it."""
        stale = self._held.held_longer_than(seconds)
        if not stale:
            return
        for sink in dict.fromkeys(self._buffering(p) for e in stale for p in e.waiting):
            if sink is not None:
                self._drain(sink)  # the parents go; their children are released after them
        ready = [
            e
            for e in self._held.held_longer_than(seconds)
            if not any(self._buffering(p) or self._held.latest(p) for p in e.waiting)
        ]
        if not ready:
            return
        self._logger.warning(
            "%d record(s) waited %ss (checkpoint_seconds) for a parent that has not come: sent "
            "now, so STATE can move on (on_missing_parent: %s).",
            len(ready),
            format(seconds, "g"),
            self._on_missing_parent,
        )
        self._resend(self._held.take(ready))

    def end_of_input(self) -> None:
        """Parents that never came: send their children anyway (their batch looks the parent
        up in Twenty once more). A child of a held record goes once that record is sent."""
        while len(self._held):
            self._resend(self._held.unblocked() or self._held.oldest(len(self._held)))

    def _resend(self, entries: list[Held]) -> None:
        by_sink: dict[Sender, list[Held]] = {}
        for entry in entries:
            by_sink.setdefault(entry.sink, []).append(entry)
        for sink, held in by_sink.items():
            for start in range(0, len(held), sink.max_size):
                sink.resend(held[start : start + sink.max_size])

    # Any thread ---------------------------------------------------------------------------
    def count_orphan(self, stream: str) -> None:
        """A record of `stream` was dead-lettered: its parent never came."""
        with self._orphans_lock:
            self._orphans[stream] += 1

    def log_summary(self) -> None:
        """Per stream: records held, released when their parent came, dead-lettered for lack."""
        held, released = self._held.counts()
        for stream in sorted(set(held) | set(self._orphans)):
            self._logger.info(
                "Stream '%s': %d record(s) came before their parent and waited for it; "
                "%d followed it once it came, %d dead-lettered because it never did.",
                stream,
                held[stream],
                released[stream],
                self._orphans[stream],
            )
