"""`TwentySink`: one stream's records, upserted into one Twenty object, 60 per call.

The live records of a batch, on a worker thread (`write_records`):
1. each record is mapped and its values checked; a value Twenty would refuse dead-letters the
   record before anything is sent;
2. references get the parent's Twenty id (an alias if Twenty matched the parent to an existing
   row); a parent that is neither written in this run nor found in Twenty dead-letters the child
   (it came and was dead-lettered, or the child waited for it in vain: see below);
3. each record gets its id (alias, else the stable id); records with the same id are merged,
   the last one winning; records that share a unique value (two contacts, one email) go to
   separate calls, so the later one updates the row the first one wrote;
4. the call; a 400 is split in halves until the refused record is alone, and that record is
   dead-lettered with the server's message while the others load;
5. aliases Twenty chose are saved, and every record goes to the run report.

A record marked deleted (`_sdc_deleted_at`, see `target_kit.sink`) is soft-deleted instead:
`DELETE /rest/{plural}/{id}` on its id (alias, else the stable id), one call per record; a 404
means it is gone already. A child that references a parent the target deleted leaves that
link as it is (Twenty refuses a link to a deleted record) and says so in the run report.

Parents before children (`batch_needs`): a batch waits for in-flight batches writing the
parents it references, and a parent still buffered in its sink is sent first. A child whose
parent has not come at all yet, and is not in Twenty (one lookup per batch), is held back until
the parent is sent, then follows it (`target_twenty.held`); at the end of the input, children
still waiting are sent anyway, and dead-lettered if their parent is still not in Twenty.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_kit.http import ConfigError, RejectedError
from target_kit.sink import PipelinedSink, is_deleted
from target_twenty.client import MAX_BATCH
from target_twenty.held import Held, Parent
from target_twenty.ids import content_key, key_text, stable_id
from target_twenty.values import BadValue

if TYPE_CHECKING:
    from target_twenty.mapping import Reference, StreamMapping
    from target_twenty.target import TargetTwenty


@dataclass
class Item:
    """One source record on its way to Twenty."""

    record: dict[str, Any]
    key: str | None  # Singer key as text; None for streams without key properties
    payload: dict[str, Any] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)  # join column → parent key
    id: str = ""
    note: str | None = None  # for the run report


@dataclass
class Entry:
    """One record of a request: the last of the items sharing its id, merged."""

    id: str
    body: dict[str, Any]
    items: list[Item]


class TwentySink(PipelinedSink):
    target: TargetTwenty
    MAX_SIZE_DEFAULT = MAX_BATCH

    def setup(self) -> None:
        super().setup()
        self.mapping: StreamMapping = self.target.mapping(self.stream_name).for_schema(
            self.schema.get("properties") or {}, list(self.key_properties or [])
        )
        self.object = self.mapping.object
        self.is_parent = self.stream_name in self.target.parent_streams
        if self.is_parent and not self.key_properties:
            raise ConfigError(
                f"Stream '{self.stream_name}' has no key properties, so the records of other "
                "streams cannot reference it (setting 'mappings.<stream>.references')."
            )
        self._buffered: set[str] = set()  # keys of parents waiting for a full batch
        if not self.key_properties:
            self.logger.warning(
                "Stream '%s' has no key properties: each record's id is derived from its "
                "content, so a changed record is added as a new %s.",
                self.stream_name,
                self.object.singular,
            )
        self.logger.info(
            "Stream '%s' → Twenty object '%s' (%s).",
            self.stream_name,
            self.object.plural,
            ", ".join(f"{fm.path} ← {fm.describe()}" for fm in self.mapping.fields or [])
            or "no fields",
        )

    def written_properties(self) -> frozenset[str] | None:
        return self.mapping.written_properties()

    @property
    def max_size(self) -> int:
        # `batch_size_rows` may lower the batch, never raise it over what one call takes.
        return min(self.batch_size_rows or self.target.batch_size, self.target.batch_size)

    @functools.cached_property
    def _key_names(self) -> tuple[str, ...]:
        return tuple(self.key_properties or ())

    def key_text(self, record: dict[str, Any]) -> str | None:
        if not self._key_names:
            return None
        return key_text([record.get(k) for k in self._key_names])

    # Main thread: buffering and ordering --------------------------------------------------
    def process_record(self, record: dict, context: dict) -> None:
        if self.is_parent and not record.get("__rejected__"):
            key = self.key_text(record)
            if key is not None:
                self._buffered.add(key)
        super().process_record(record, context)

    def process_batch(self, context: dict) -> None:
        self._buffered.clear()
        records = context.get("records", [])
        if not records:
            return
        self._send_parents_first(self._parent_keys(records))
        waits = self._waits(records)
        ready = [r for r, w in zip(records, waits, strict=True) if not w]
        ticket = self.submit(ready, len(records), held=len(records) - len(ready))
        self.target.hold(
            Held(self, r, ticket, self._key(r), w) for r, w in zip(records, waits, strict=True) if w
        )
        self._sent(ready)

    def resend(self, entries: list[Held]) -> None:
        """Send held records: their parent came, or they waited long enough."""
        records = [e.record for e in entries]
        self.submit(records, 0, settles=[e.ticket for e in entries])
        self._sent(records)

    def _sent(self, records: list[dict]) -> None:
        """Records went to be written: children waiting for them may follow now."""
        if self.is_parent and records:
            keys = [k for k in map(self.key_text, records) if k is not None]
            self.target.ids.mark_arrived(self.stream_name, keys)
            self.target.parents_sent([(self.stream_name, k) for k in keys])

    def _key(self, record: dict) -> Parent | None:
        key = self.key_text(record)
        return (self.stream_name, key) if key is not None else None

    def _waits(self, records: list[dict]) -> list[set[Parent]]:
        """For each record, the parents it must wait for (none: it can be written now).

        A parent is waited for when it has not come in this run and is not in Twenty. A record
        also waits for whatever an earlier held version of it waits for: it must not overtake it.
        """
        missing: set[Parent] = set()
        for stream, keys in self._parent_keys(records).items():
            keys -= self.target.ids.arrived(stream, keys)
            waited = {k for k in keys if self.target.held.expects((stream, k))}
            unknown = keys - waited
            if unknown:  # one request for the batch (none for parents sent in this run)
                twenty_ids, present, deleted = self._parents_in_twenty(stream, unknown)
                known = present | deleted
                waited |= {k for k in unknown if twenty_ids[k] not in known}
            missing |= {(stream, k) for k in waited}
        if not missing and not len(self.target.held):
            return [set() for _ in records]  # nothing to wait for: the common case
        waits: list[set[Parent]] = []
        held_here: dict[Parent, set[Parent]] = {}  # records of this batch held so far
        for record in records:
            parents = {(r.stream, k) for r, k in self._references(record)} & missing
            key = self._key(record)
            if key is not None:
                earlier = self.target.held.latest(key)
                parents |= held_here.get(key) or (earlier.waiting if earlier else set())
                if parents:
                    held_here[key] = parents
            waits.append(parents)
        return waits

    def _references(self, record: dict) -> list[tuple[Reference, str]]:
        """The parents a record links to: (reference, parent key)."""
        if not self.mapping.references or (self.process_deletes and is_deleted(record)):
            return []  # a deletion links nothing
        keys = self.mapping.parent_keys(record)
        return [(r, keys[r.key]) for r in self.mapping.references if keys.get(r.key) is not None]

    def _parent_keys(self, records: list[dict]) -> dict[str, set[str]]:
        """Parent stream → the keys `records` reference."""
        keys: dict[str, set[str]] = {}
        for record in records:
            for ref, key in self._references(record):
                keys.setdefault(ref.stream, set()).add(key)
        return keys

    def _send_parents_first(self, parents: dict[str, set[str]]) -> None:
        """Parents still buffered in their sink are sent now, before their children."""
        for stream, keys in parents.items():
            for sink in self.target.sinks_of(stream):
                if sink is not self and keys & sink._buffered:
                    self.logger.debug(
                        "Sending buffered '%s' records before '%s'.", stream, self.stream_name
                    )
                    self.target.drain_one(sink)

    def batch_keys(self, records: list[dict]) -> list[Hashable]:
        return [(self.stream_name, k) for k in map(self.key_text, records) if k is not None]

    def batch_needs(self, records: list[dict]) -> list[Hashable]:
        """The parents' keys; a parent still buffered in its sink is sent now, first."""
        parents = self._parent_keys(records)
        self._send_parents_first(parents)
        return [(stream, k) for stream, keys in parents.items() for k in keys]

    # Worker thread: the batch -------------------------------------------------------------
    def write_records(self, records: list[dict]) -> None:
        items = [item for item in map(self._prepare, records) if item is not None]
        items = self._resolve_parents(items)
        entries = self._merge(self._assign_ids(items))
        for group in self._rounds(entries):
            self._send(group)

    def delete_records(self, records: list[dict]) -> None:
        keyed: dict[str, list[dict]] = {}  # key → its records (a key deleted twice: one call)
        for record in records:
            key = self.key_text(record)
            if key is None:
                self.skip(
                    record,
                    "a record marked deleted in a stream without key properties: there is no id "
                    f"to find its {self.object.singular} by, so nothing is deleted",
                )
            else:
                keyed.setdefault(key, []).append(record)
        ids = self.target.ids.ids(self.object.id, self.stream_name, list(keyed))
        for key, same_key in keyed.items():
            twenty_id = ids[key]
            found = self.target.client.delete(self.object.plural, twenty_id)
            # Noted before the batch is acknowledged, as aliases are.
            self.target.ids.mark_deleted(self.object.id, [twenty_id])
            reason = None if found else "not in Twenty (never loaded, or deleted already)"
            for record in same_key:
                self.target.report.record(
                    self.stream_name, self.key_of(record), "deleted", twenty_id, reason
                )

    def _prepare(self, record: dict[str, Any]) -> Item | None:
        item = Item(record, self.key_text(record))
        try:
            item.payload = self.mapping.payload(record)
        except BadValue as exc:
            self._fail(item, str(exc), "invalid-value")
            return None
        item.parents = self.mapping.parent_keys(record)
        return item

    def _parents_in_twenty(
        self, stream: str, keys: Iterable[str]
    ) -> tuple[dict[str, str], set[str], set[str]]:
        """Each parent key's Twenty id; of these ids, those in Twenty and those deleted."""
        store = self.target.ids
        parent = self.target.object_of(stream)
        twenty_ids = store.ids(parent.id, stream, keys)
        present = store.present(parent.id, twenty_ids.values())
        deleted = store.deleted(parent.id, set(twenty_ids.values()) - present)
        unknown = sorted(set(twenty_ids.values()) - present - deleted)
        if unknown:  # written before this run, or never: ask Twenty
            found = self.target.client.existing(parent.plural, unknown)
            store.mark_present(parent.id, found)
            present |= found
        return twenty_ids, present, deleted

    def _resolve_parents(self, items: list[Item]) -> list[Item]:
        """Put each parent's Twenty id in its join column; dead-letter orphans."""
        orphans: dict[int, tuple[Reference, str]] = {}
        for ref in self.mapping.references:
            keys = {i.parents[ref.key] for i in items if i.parents.get(ref.key) is not None}
            twenty_ids, present, deleted = self._parents_in_twenty(ref.stream, keys)
            for n, item in enumerate(items):
                if ref.key not in item.parents:
                    continue
                key = item.parents[ref.key]
                if key is None:
                    item.payload[ref.key] = None
                elif twenty_ids[key] in present:
                    item.payload[ref.key] = twenty_ids[key]
                elif twenty_ids[key] in deleted:
                    # The source deleted the parent but kept this record (OKKI keeps a deleted
                    # company's opportunities): write it, and leave the link as it was.
                    item.note = (
                        f"{ref.key} left as it was: the '{ref.stream}' record with key {key} "
                        "was deleted"
                    )
                else:
                    orphans.setdefault(n, (ref, key))
        for n, (ref, key) in orphans.items():
            self._fail(items[n], self._orphan_reason(ref, key), "missing-parent")
        return [item for n, item in enumerate(items) if n not in orphans]

    def _orphan_reason(self, ref: Reference, key: str) -> str:
        missing = f"{ref.key}: the '{ref.stream}' record with key {key} is not in Twenty"
        if self.target.ids.arrived(ref.stream, [key]):
            return f"{missing}: it came in this run but was not written (see its dead letter)"
        self.target.held.count_orphan(self.stream_name)
        return (
            f"{missing} and did not come in this run (a record waits for its parent until the "
            "end of the input, or until more than max_held_records wait); load the parent, "
            "then re-send this record"
        )

    def _assign_ids(self, items: list[Item]) -> list[Item]:
        known = self.target.ids.ids(
            self.object.id, self.stream_name, [i.key for i in items if i.key is not None]
        )
        for item in items:
            if item.key is not None:
                item.id = known[item.key]
            else:
                item.id = stable_id(
                    self.target.ids.namespace, self.stream_name, content_key(item.payload)
                )
        return items

    @staticmethod
    def _merge(items: list[Item]) -> list[Entry]:
        """One entry per id: a later version of a record wins, field by field."""
        entries: dict[str, Entry] = {}
        for item in items:
            entry = entries.get(item.id)
            if entry is None:
                entries[item.id] = Entry(item.id, dict(item.payload), [item])
            else:
                entry.body.update(item.payload)
                entry.items.append(item)
        return list(entries.values())

    def _rounds(self, entries: list[Entry]) -> list[list[Entry]]:
        """Split entries so that no call holds one unique value (email, domain) twice."""
        rounds: list[tuple[list[Entry], dict[Any, str]]] = []
        for entry in entries:
            values = self.mapping.unique_values(entry.body)
            free = [r for r in rounds if all(r[1].get(v, entry.id) == entry.id for v in values)]
            if not free:
                rounds.append(([], {}))
                free = rounds[-1:]
            group, claimed = free[0]
            group.append(entry)
            claimed.update((v, entry.id) for v in values)
        return [group for group, _ in rounds]

    def _send(self, entries: list[Entry]) -> None:
        try:
            rows = self.target.client.upsert(
                self.object.plural, [{"id": e.id, **e.body} for e in entries]
            )
        except RejectedError as exc:
            if len(entries) == 1:
                for item in entries[0].items:
                    self._fail(item, f"Twenty refused it: {exc.message}", exc.code)
                return
            half = len(entries) // 2  # find the refused record(s); the others load
            self._send(entries[:half])
            self._send(entries[half:])
            return
        self._written(entries, rows)

    def _written(self, entries: list[Entry], rows: list[dict[str, Any]]) -> None:
        written = []
        for entry, row in zip(entries, rows, strict=True):
            row_id = str(row.get("id") or entry.id)
            written += [(item.key, row_id) for item in entry.items]
        # Saved before the batch is acknowledged: a later STATE never outruns an alias.
        self.target.ids.save(self.object.id, self.stream_name, written, keep=self.is_parent)
        for entry, row in zip(entries, rows, strict=True):
            row_id = str(row.get("id") or entry.id)
            created = row.get("createdAt") is not None and row.get("createdAt") == row.get(
                "updatedAt"
            )
            reason = None
            if row_id != entry.id:
                reason = (
                    f"Twenty matched an existing {self.object.singular} ({row_id}) by a unique "
                    f"field; it is this record's {self.object.singular} from now on"
                )
                self.logger.info(
                    "Stream '%s', key %s: %s.", self.stream_name, entry.items[-1].key, reason
                )
            for n, item in enumerate(entry.items):
                later = n < len(entry.items) - 1
                self.target.report.record(
                    self.stream_name,
                    self.key_of(item.record),
                    "created" if created and n == 0 else "updated",
                    row_id,
                    "merged with a later version of this record in the same batch"
                    if later
                    else "; ".join(filter(None, (reason, item.note))) or None,
                )

    def _fail(self, item: Item, reason: str, code: Any) -> None:
        self.reject(item.record, reason, code)
