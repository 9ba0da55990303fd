"""`ObjectWriter`: a batch's entries written into one Twenty object, on a worker thread.

What the sink prepared (records mapped, parents resolved, ids assigned, merged: `sinks.py`)
goes through:
1. identity planning (`identity.py`, `ownership.py`): a unique value another record's row
   holds is a conflict (`on_unique_conflict`), a row made in Twenty holding it is adopted
   (`adopted_rows`);
2. the call; a 400 is split in halves until the refused record is alone, and that record is
   dead-lettered with the server's message while the others load (a unique value taken since
   the id map looked is planned once more from a fresh read first);
3. the id map learns aliases, holders and conflicts; values a record gave up go to the record
   waiting for them; junction rows follow (`links`); children a written parent no longer lists
   follow `on_parent_delete`; every record goes to the run report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connector_kit.http import RejectedError
from target_twenty.client import MAX_BATCH
from target_twenty.entries import Entry, Item
from target_twenty.identity import Plan
from target_twenty.ids import key_text, stable_id
from target_twenty.mapping import SLOT
from target_twenty.removal import Removal

if TYPE_CHECKING:
    from target_twenty.destination import Destination
    from target_twenty.mapping import Reference, StreamMapping
    from target_twenty.ownership import Ownership


class ObjectWriter:
    def __init__(
        self,
        destination: Destination,
        mapping: StreamMapping,
        ownership: Ownership,
        listings: list[Reference],
        *,
        keep_ids: bool,
        fail: Callable[[Item, str, Any], None],
        key_of: Callable[[dict], Any],
        logger: logging.Logger,
    ) -> None:
        self.destination = destination
        self.mapping = mapping
        self.stream = mapping.stream
        self.object = mapping.object
        self.ownership = ownership
        self.listings = listings  # references whose parent records list this stream's records
        self._keep_ids = keep_ids  # a parent stream: its ids are noted as present for this run
        self._fail = fail  # dead-letters an item's record
        self._key_of = key_of  # a record's Singer key, for the run report
        self._logger = logger

    def write(self, entries: list[Entry]) -> None:
        entries = self._planned(entries)
        if entries:
            self._send(entries)

    def _planned(self, entries: list[Entry], force_read: bool = False) -> list[Entry]:
        """Entries as identity planning decided (`identity.py`): their rows, their bodies; those
        that became one row merged, those refused dead-lettered."""
        planned: dict[str, Entry] = {}
        for entry, plan in zip(entries, self.ownership.plan(entries, force_read), strict=True):
            if plan.dead_letter:
                for item in entry.items:
                    self._fail(item, plan.dead_letter, "unique-conflict")
                continue
            self._say_conflicts(entry, plan)
            same = planned.get(plan.id)
            if same is None:
                planned[plan.id] = Entry(plan.id, plan.body, list(entry.items), plan, entry)
            else:  # merged into a row another record of the batch writes
                same.body.update(plan.body)
                same.items += entry.items
                assert same.plan is not None
                same.plan.status = sorted(set(same.plan.status) | set(plan.status))
                same.plan.notes += plan.notes
        return list(planned.values())

    def _say_conflicts(self, entry: Entry, plan: Plan) -> None:
        """One WARNING per conflict (the first 20 of the run; then a count at the end)."""
        for conflict in plan.conflicts:
            if self.destination.conflicts_said < 20:
                self._logger.warning(
                    "Stream '%s': record %s: %s %r is held by %s (row %s) — %s.",
                    self.stream,
                    entry.key,
                    conflict["field"],
                    conflict["value"],
                    f"record {conflict['held_by']}" if conflict["held_by"] else "another row",
                    conflict["held_by_row"],
                    {
                        "keep_apart": "written as its own row without it",
                        "merge": "merged into that row",
                        "dead_letter": "dead-lettered",
                    }[self.destination.settings.on_unique_conflict],
                )
            self.destination.conflicts_said += 1

    def _send(self, entries: list[Entry], replanned: bool = False) -> None:
        try:
            rows = self.destination.client.upsert(
                self.object.plural, [{"id": e.id, **e.body} for e in entries]
            )
        except RejectedError as exc:
            if len(entries) == 1:
                self._refused(entries[0], exc, replanned)
                return
            half = len(entries) // 2  # find the refused record(s); the others load
            self._send(entries[:half], replanned)
            self._send(entries[half:], replanned)
            return
        self._written(entries, rows)

    def _refused(self, entry: Entry, exc: RejectedError, replanned: bool) -> None:
        """A record Twenty refused alone. A unique value someone took since the id map last
        looked is planned again from a fresh read, once; anything else is dead-lettered."""
        source = entry.planned_from
        if not replanned and source is not None and _unique_clash(exc.message):
            again = self._planned([source], force_read=True)
            if again:
                self._send(again, replanned=True)
            return
        for item in entry.items:
            self._fail(item, f"Twenty refused it: {exc.message}", exc.code)

    def _written(self, entries: list[Entry], rows: list[dict[str, Any]]) -> None:
        written = []
        outcomes: dict[str, tuple[Plan, str]] = {}  # key → its plan and row
        for entry, row in zip(entries, rows, strict=True):
            row_id = str(row.get("id") or entry.id)
            written += [(item.key, row_id) for item in entry.items]
            plan = entry.plan or Plan(entry.id, entry.body)
            outcomes.update((i.key, (plan, row_id)) for i in entry.items if i.key is not None)
        # Saved before the batch is acknowledged: a later STATE never outruns an alias.
        self.destination.ids.save(self.object.id, self.stream, written, keep=self._keep_ids)
        released = self.ownership.remember(outcomes)
        for entry, row in zip(entries, rows, strict=True):
            self._report_written(entry, row)
        if released:
            self.ownership.give_away(released)
        if self.mapping.junction is not None:
            self._write_links(entries, rows)
        for ref in self.listings:
            self._check_listed(ref, entries, rows)

    def _report_written(self, entry: Entry, row: dict[str, Any]) -> None:
        row_id = str(row.get("id") or entry.id)
        created = row.get("createdAt") is not None and row.get("createdAt") == row.get("updatedAt")
        plan = entry.plan
        notes = list(plan.notes) if plan else []
        if row_id != entry.id:  # Twenty matched another row than planned (no read was made)
            notes.append(
                f"Twenty matched an existing {self.object.singular} ({row_id}) by a unique "
                f"field; it is this record's {self.object.singular} from now on"
            )
        for n, item in enumerate(entry.items):
            later = n < len(entry.items) - 1
            status = [*(plan.status if plan else []), *item.status]
            self.destination.report.record(
                self.stream,
                self._key_of(item.record),
                "created" if created and n == 0 else "updated",
                row_id,
                "merged with a later version of this record in the same batch"
                if later
                else "; ".join(filter(None, (*notes, item.note))) or None,
                status=sorted(set(status)),
                details=plan.details if plan and not later else None,
            )

    def _write_links(self, entries: list[Entry], rows: list[dict[str, Any]]) -> None:
        """One junction row per linked record, after the records themselves, under a stable id
        (record and linked record), so a re-run updates the same link instead of adding one;
        links a record no longer names (of the columns it carries) are removed."""
        junction = self.mapping.junction
        assert junction is not None
        scope, plural = junction.object.id, junction.object.plural
        links: list[dict[str, Any]] = []
        now: dict[str, dict[str, set[str]]] = {}  # record row → column → its link ids
        for entry, row in zip(entries, rows, strict=True):
            row_id = str(row.get("id") or entry.id)
            columns = now.setdefault(row_id, {})
            for slot, parent_id in entry.items[-1].links.items():
                column = slot.partition(SLOT)[0]
                ids = columns.setdefault(column, set())
                if parent_id is None:
                    continue
                link_id = stable_id(
                    self.destination.ids.namespace,
                    f"{self.stream}>{plural}",
                    key_text([entry.key or row_id, slot]),
                )
                ids.add(link_id)
                links.append({"id": link_id, junction.own_column: row_id, column: parent_id})
        for start in range(0, len(links), MAX_BATCH):
            self.destination.client.upsert(plural, links[start : start + MAX_BATCH])
        before = self.destination.ids.links_of(scope, now)
        gone = [
            link_id
            for owner, columns in now.items()
            for column, link_id in before.get(owner, [])
            if column in columns and link_id not in columns[column]
        ]
        for link_id in gone:
            self.destination.client.delete(plural, link_id)
        self.destination.ids.note_links(
            scope,
            [(o, c, i) for o, columns in now.items() for c, ids in columns.items() for i in ids],
            forget=gone,
        )

    def _check_listed(self, ref: Reference, entries: list[Entry], rows: list[dict]) -> None:
        """Children of `ref`'s stream that a written parent no longer lists leave (or lose
        their link), per `on_parent_delete`."""
        listed: dict[str, set[str]] = {}
        for entry, row in zip(entries, rows, strict=True):
            children = ref.listed_children(entry.items[-1].record)
            if children is not None:
                listed[str(row.get("id") or entry.id)] = children
        child = self.destination.mapping(_stream_of(self.destination, ref))
        if self.destination.started_empty(child.object):
            return  # its rows are this run's, each written under the parent that lists it
        Removal(self.destination, child).unlisted(ref, listed)


def _unique_clash(message: str) -> bool:
    """Whether Twenty refused a record over a unique value (upsert or database wording)."""
    text = message.lower()
    return "multiple records" in text or "duplicate" in text or "unique" in text


def _stream_of(destination: Destination, ref: Reference) -> str:
    """The stream whose mapping holds `ref`."""
    for mapping, other in destination.dependants(ref.stream):
        if other is ref:
            return mapping.stream
    raise LookupError(ref)
