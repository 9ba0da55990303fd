"""Children that came before their parent, held until it comes.

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
neither buffered in its sink nor held itself is sent the same way (`TargetTwenty.
checkpoint_overdue`), so checkpoints keep flowing.

Only the main thread holds and releases; workers just count the dead letters.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from target_kit.pipeline import Ticket
    from target_twenty.sinks import TwentySink

Parent = tuple[str, str]  # (stream, Singer key as text)


@dataclass(eq=False)
class Held:
    sink: TwentySink
    record: dict[str, Any]
    ticket: Ticket  # of the batch it came in
    key: Parent | None  # its own (stream, key)
    waiting: set[Parent]  # the parents it waits for
    seq: int = 0
    since: float = 0.0  # time.monotonic() when it was held


class HeldRecords:
    def __init__(self) -> None:
        self._entries: dict[int, Held] = {}  # by `seq`: oldest first
        self._by_parent: dict[Parent, dict[int, Held]] = {}  # each by `seq`
        self._latest: dict[Parent, Held] = {}  # the newest held version of a record
        self._seq = 0
        self._held: Counter[str] = Counter()  # per stream
        self._released: Counter[str] = Counter()
        self._orphans: Counter[str] = Counter()
        self._orphans_lock = threading.Lock()

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

    def _remove(self, entry: Held) -> None:
        del self._entries[entry.seq]
        for parent in entry.waiting:
            waiting = self._by_parent[parent]
            del waiting[entry.seq]
            if not waiting:
                del self._by_parent[parent]
        if entry.key is not None and self._latest.get(entry.key) is entry:
            del self._latest[entry.key]

    # Workers ------------------------------------------------------------------------------
    def count_orphan(self, stream: str) -> None:
        """A record of `stream` was dead-lettered: its parent never came (any thread)."""
        with self._orphans_lock:
            self._orphans[stream] += 1

    def summary(self) -> list[tuple[str, int, int, int]]:
        """Per stream: records held, released when their parent came, dead-lettered for lack."""
        streams = sorted(set(self._held) | set(self._orphans))
        return [(s, self._held[s], self._released[s], self._orphans[s]) for s in streams]
