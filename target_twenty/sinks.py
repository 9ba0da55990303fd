"""`TwentySink`: one stream's records, upserted into one Twenty object, 60 per call.

The live records of a batch, on a worker thread (`write_records`):
1. each record is mapped and its values checked; a value Twenty would refuse dead-letters the
   record before anything is sent;
2. references get the parent's Twenty id (an alias if the parent adopted a row made in
   Twenty); a parent neither written in this run nor found in Twenty makes the child an orphan,
   handled by `on_missing_parent` (it came and was dead-lettered, or the child waited for it in
   vain: see below); links through a junction object are kept for after the write;
3. each record gets its id (alias, else the stable id); records with the same id are merged,
   the last one winning; `create_when` keeps records it says no to from creating rows;
4. the writer (`writer.py`) plans identities, sends, and notes what was written.

A record marked deleted (`_sdc_deleted_at`, see `connector_kit.sink`) deletes what its key alone
owns, its children following their rule (`removal.py`). A child that references a parent the
target deleted leaves that link as it is (Twenty refuses a link to a deleted record) and says
so in the run report.

Parents before children (`parents.py`): a batch waits for in-flight batches writing the
parents it references, and a parent still buffered in its sink is sent first. A child whose
parent has not come at all yet, and is not in Twenty (one lookup per batch), is held back until
the parent is sent, then follows it; at the end of the input, children still waiting are sent
anyway, and handled by `on_missing_parent` if their parent is still not in Twenty.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from connector_kit.http import ConfigError
from connector_kit.sink import PipelinedSink, is_deleted
from target_twenty.client import MAX_BATCH
from target_twenty.entries import Entry, Item
from target_twenty.ids import content_key, key_text, stable_id
from target_twenty.ownership import Ownership
from target_twenty.parents import Held, Parent
from target_twenty.removal import Removal
from target_twenty.values import BadValue
from target_twenty.writer import ObjectWriter

if TYPE_CHECKING:
    from connector_kit.report import RunReport
    from target_twenty.destination import Destination
    from target_twenty.mapping import Reference, StreamMapping
    from target_twenty.parents import ParentOrder
    from target_twenty.settings import TwentySettings


class SinkHost(Protocol):
    """What a sink takes from its target (`TargetTwenty`), which it never imports."""

    destination: Destination
    parent_order: ParentOrder
    settings: TwentySettings
    report: RunReport


class TwentySink(PipelinedSink):
    target: SinkHost  # type: ignore[assignment]
    MAX_SIZE_DEFAULT = MAX_BATCH

    def setup(self) -> None:
        super().setup()
        self.destination = self.target.destination
        properties = self.schema.get("properties") or {}
        mapping = self.destination.mapping(self.stream_name)
        if mapping.missing:  # create_missing_fields: before any record is written
            mapping = self.destination.create_fields(mapping, properties)
        self.mapping: StreamMapping = mapping.for_schema(
            properties, list(self.key_properties or [])
        )
        self.object = self.mapping.object
        self.ownership = Ownership(self.destination, self.mapping)
        self.removal = Removal(self.destination, self.mapping)
        # References of other streams whose parent records list their children here.
        self.listings = [
            ref for _, ref in self.destination.dependants(self.stream_name) if ref.listed_in_parent
        ]
        self.is_parent = self.stream_name in self.destination.parent_streams
        # (record key, parent) of records sent after waiting in vain for that parent: a parent
        # arriving while their batch waits its turn does not link them (it is not written yet).
        self._sent_without: dict[str | None, set[Parent]] = {}
        self.writer = ObjectWriter(
            self.destination,
            self.mapping,
            self.ownership,
            self.listings,
            keep_ids=self.is_parent,
            fail=self._fail,
            key_of=self.key_of,
            logger=self.logger,
        )
        if self.is_parent and not self.key_properties:
            raise ConfigError(
                f"Stream '{self.stream_name}' has no key properties, so the records of other "
                "streams cannot reference it (setting 'mappings.<stream>.references')."
            )
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
        written = self.mapping.written_properties()
        if written is None:
            return None
        return written | {ref.listed_in_parent[0] for ref in self.listings}  # type: ignore[index]

    @property
    def max_size(self) -> int:
        # `batch_size_rows` (at most what one call takes, its schema says), or `batch_size`.
        return self.destination.settings.batch_size

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
                self.target.parent_order.buffered(self, key)
        super().process_record(record, context)

    def process_batch(self, context: dict) -> None:
        order = self.target.parent_order
        order.batch_taken(self)
        records = context.get("records", [])
        if not records:
            return
        keys = [self._key(r) for r in records]
        parents = [self._parents_of(r) for r in records]  # once per batch
        order.send_buffered_first(self, (p for found in parents for p in found))
        waits = order.waits(list(zip(keys, parents, strict=True)), self._found_in_twenty)
        now = [n for n, waiting in enumerate(waits) if not waiting]
        ready = [records[n] for n in now]
        needs = list(dict.fromkeys(p for n in now for p in parents[n]))
        ticket = self.submit(ready, len(records), held=len(records) - len(ready), needs=needs)
        order.hold(
            Held(self, records[n], ticket, keys[n], waiting)
            for n, waiting in enumerate(waits)
            if waiting
        )
        self._sent(ready)

    def resend(self, entries: list[Held]) -> None:
        """Send held records: their parent came, or they waited long enough."""
        records = [e.record for e in entries]
        needs = list(dict.fromkeys(p for r in records for p in self._parents_of(r)))
        order = self.target.parent_order
        for entry in entries:
            missing = {(s, k) for s, k in entry.waiting if not order.arrived(s, [k])}
            if missing:
                self._sent_without.setdefault(self.key_text(entry.record), set()).update(missing)
        order.send_buffered_first(self, needs)
        self.submit(records, 0, settles=[e.ticket for e in entries], needs=needs)
        self._sent(records)

    def _sent(self, records: list[dict]) -> None:
        """Records went to be written: children waiting for them may follow now."""
        if self.is_parent and records:
            keys = [k for k in map(self.key_text, records) if k is not None]
            self.target.parent_order.sent(self.stream_name, keys)

    def _key(self, record: dict) -> Parent | None:
        key = self.key_text(record)
        return (self.stream_name, key) if key is not None else None

    def _parents_of(self, record: dict) -> list[Parent]:
        """The parent records a record links to, as (stream, key)."""
        if not self.mapping.references or (self.process_deletes and is_deleted(record)):
            return []  # a deletion links nothing
        keys = self.mapping.parent_keys(record)
        return [(self.mapping.reference_of(s).stream, k) for s, k in keys.items() if k is not None]

    def _found_in_twenty(self, stream: str, keys: set[str]) -> set[str]:
        """Those of `keys` whose `stream` record is in Twenty (or was deleted there)."""
        twenty_ids, present, deleted = self._parents_in_twenty(stream, keys)
        return {k for k in keys if twenty_ids[k] in present | deleted}

    def batch_keys(self, records: list[dict]) -> list[Hashable]:
        """Its records' keys, and the unique values they write or hold now: two batches that
        touch one domain or email are written one after the other, so the second sees who
        holds it (`ownership.py`)."""
        keys = [k for k in map(self.key_text, records) if k is not None]
        held: list[Hashable] = [(self.stream_name, k) for k in keys]
        if self.ownership.active:
            scope = self.object.id
            for record in records:
                held += [("unique", scope, *v) for v in self.mapping.unique_values_of(record)]
            for values in self.destination.ids.held_by(scope, self.stream_name, keys).values():
                held += [("unique", scope, *v) for v in values]
        return held

    def batch_clears(self, records: list[dict]) -> list[Hashable]:
        """The keys this batch may take links away from: records deleted (their children
        follow `on_parent_delete`), and every record of a parent that lists its children
        (those it no longer lists leave). Batches in flight that link to them go first:
        Twenty refuses a link to a deleted record."""
        if not self.listings:
            records = [r for r in records if self.process_deletes and is_deleted(r)]
        return [(self.stream_name, k) for k in map(self.key_text, records) if k is not None]

    # Worker thread: the batch -------------------------------------------------------------
    def write_records(self, records: list[dict]) -> None:
        items = [item for item in map(self._prepare, records) if item is not None]
        items = self._resolve_parents(items)
        entries = self._merge(self._assign_ids(items))
        self.writer.write(self._updates_only_where_rows_exist(entries))

    def _updates_only_where_rows_exist(self, entries: list[Entry]) -> list[Entry]:
        """Records `create_when` says not to create are written only if their row exists."""
        if self.mapping.create_when is None:
            return entries
        updates = [e for e in entries if not self.mapping.creates(e.items[-1].record)]
        if not updates:
            return entries
        existing = self.destination.client.existing(self.object.plural, [e.id for e in updates])
        kept = []
        for entry in entries:
            if entry in updates and entry.id not in existing:
                for item in entry.items:
                    self.skip(
                        item.record,
                        f"no {self.object.singular} to update, and create_when is false for "
                        "this record: nothing written",
                    )
            else:
                kept.append(entry)
        return kept

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
        if keyed:
            self.removal.delete_keys(keyed, self.key_of)

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
        store = self.destination.ids
        parent = self.destination.object_of(stream)
        twenty_ids = store.ids(parent.id, stream, keys)
        present = store.present(parent.id, twenty_ids.values())
        deleted = store.deleted(parent.id, set(twenty_ids.values()) - present)
        unknown = sorted(k for k, i in twenty_ids.items() if i not in present | deleted)
        # Written before this run (perhaps adopted), or never: ask Twenty, unless the parent's
        # object held no row when the run began (its rows are this run's: the id map knows them).
        if unknown and not self.destination.started_empty(parent):
            ownership = Ownership(self.destination, self.destination.mapping(stream))
            for key, row in ownership.rows_of_keys(unknown).items():
                if row is None:
                    continue
                twenty_ids[key] = row["id"]
                if row.get("deletedAt"):
                    store.mark_deleted(parent.id, [row["id"]])
                    deleted.add(row["id"])
                else:
                    store.mark_present(parent.id, [row["id"]])
                    present.add(row["id"])
        return twenty_ids, present, deleted

    def _resolve_parents(self, items: list[Item]) -> list[Item]:
        """Put each parent's Twenty id in its join column (a link's: in the item's links, for
        the junction row written after it); dead-letter orphans."""
        orphans: dict[int, tuple[Reference, str, str]] = {}
        sent_without = [self._sent_without.pop(i.key, set()) for i in items]
        for ref in self.mapping.references:
            slots = [
                [(s, k) for s, k in i.parents.items() if self.mapping.reference_of(s) is ref]
                for i in items
            ]
            keys = {k for found in slots for _, k in found if k is not None}
            twenty_ids, present, deleted = self._parents_in_twenty(ref.stream, keys)
            for n, item in enumerate(items):
                # A link through a junction is written after the record, not into it.
                target = item.links if ref.via_junction else item.payload
                for slot, key in slots[n]:
                    if key is None:
                        target[slot] = None
                    elif twenty_ids[key] in present:
                        target[slot] = twenty_ids[key]
                    elif twenty_ids[key] in deleted:
                        # The source deleted the parent but kept this record (OKKI keeps a
                        # deleted company's opportunities): write it, leave the link as it was.
                        item.note = (
                            f"{ref.key} left as it was: the '{ref.stream}' record with key {key} "
                            "was deleted"
                        )
                    else:
                        orphans.setdefault(n, (ref, slot, key))
        rule = self.destination.settings.on_missing_parent
        dropped = set()
        for n, (ref, slot, key) in orphans.items():
            came = (ref.stream, key) not in sent_without[n] and bool(
                self.target.parent_order.arrived(ref.stream, [key])
            )
            reason = self._orphan_reason(ref, key, came)
            if rule == "load_unlinked" and not came:
                (items[n].links if ref.via_junction else items[n].payload)[slot] = None
                items[n].note = f"{reason}; loaded without the link (on_missing_parent)"
                items[n].status.append("unlinked")
            elif rule == "skip" and not came:
                self.skip(items[n].record, f"{reason} (on_missing_parent: skip)")
                dropped.add(n)
            else:
                self._fail(items[n], reason, "missing-parent")
                dropped.add(n)
        return [item for n, item in enumerate(items) if n not in dropped]

    def _orphan_reason(self, ref: Reference, key: str, came: bool) -> str:
        missing = f"{ref.key}: the '{ref.stream}' record with key {key} is not in Twenty"
        if came:
            return f"{missing}: it came in this run but was not written (see its dead letter)"
        self.target.parent_order.count_orphan(self.stream_name)
        return (
            f"{missing} and had not come when this record stopped waiting for it (a record waits "
            "for its parent until the end of the input, checkpoint_seconds once a STATE waits for "
            "it, or until more than max_held_records wait); load the parent, then re-send this "
            "record (--replay)"
        )

    def _assign_ids(self, items: list[Item]) -> list[Item]:
        known = self.destination.ids.ids(
            self.object.id, self.stream_name, [i.key for i in items if i.key is not None]
        )
        for item in items:
            if item.key is not None:
                item.id = known[item.key]
            else:
                item.id = stable_id(
                    self.destination.ids.namespace, self.stream_name, content_key(item.payload)
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

    def _fail(self, item: Item, reason: str, code: Any) -> None:
        self.reject(item.record, reason, code)
