"""The reads and memory behind `identity`: for one sink, on its worker threads.

Before a batch is sent, the rows that hold its unique values, and the rows its keys own, are read
in one request (per 60 records; split when the filter would make a long URL), unless the id map
already says each record holds its values in its own row: then nothing is read, which is the
usual case once a workspace is loaded. After the write, the id map learns who holds what and
who waits for what; a value a record gave up (it changed, or its record was deleted) goes to
the record that has waited longest for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from target_twenty.client import MAX_BATCH, WITH_DELETED, quoted
from target_twenty.identity import (
    SECONDARY,
    Candidate,
    Plan,
    Planner,
    Rows,
    UniqueValue,
    display_of_key,
    server_key,
    shown_key,
    unique_values,
)
from target_twenty.ids import Holder, stable_id

if TYPE_CHECKING:
    from target_twenty.destination import Destination
    from target_twenty.entries import Entry
    from target_twenty.mapping import StreamMapping

logger = logging.getLogger("target_twenty")

# Longest filter sent in one read: real servers cap the request line (8 KB behind nginx).
MAX_FILTER = 3500  # before URL encoding; see docs/api/twenty.md


class Ownership:
    def __init__(self, destination: Destination, mapping: StreamMapping) -> None:
        self.destination = destination
        self.mapping = mapping
        self.stream = mapping.stream
        self.obj = mapping.object
        self.scope = self.obj.id
        self.store = destination.ids
        # The owner field, once it exists (`create_missing_fields` makes it when its stream's
        # SCHEMA comes; a parent looked up before that has no rows owned through it yet).
        field = mapping.source_key_field
        self.source_key_field = field if field in self.obj.fields else None
        # Nothing to plan for objects without unique fields and without an owner field.
        self.active = bool(self.obj.unique_fields() or mapping.source_key_field)

    # Planning -----------------------------------------------------------------------------
    def plan(self, entries: list[Entry], force_read: bool = False) -> list[Plan]:
        """A plan per entry, in order (see `identity.Planner`)."""
        if not self.active:
            return [Plan(e.id, e.body) for e in entries]
        values = {e.id: unique_values(self.obj, e.body) for e in entries}
        cache = self.store.holders(self.scope, (v for vs in values.values() for v in vs))
        # An object that held no row when the run began holds only what this run wrote, and
        # the id map knows all of that: only values it gave another record need a read.
        empty = self.destination.started_empty(self.obj)
        uncertain = [
            e for e in entries if force_read or self._uncertain(e, values[e.id], cache, empty)
        ]
        if empty:  # what this run wrote: the id map knows it, no read needed
            rows, owners = self._rows_from_cache(uncertain, values, cache)
        else:
            rows = self._read(uncertain) if uncertain else []
            owners = self.store.aliased_rows(self.scope, (r["id"] for r in rows if "id" in r))
        planner = Planner(
            self.obj,
            Rows(self.obj, rows, self.source_key_field, owners),
            self.destination.settings.on_unique_conflict,  # type: ignore[arg-type]
            self.destination.settings.adopted_rows,  # type: ignore[arg-type]
            self.source_key_field,
        )
        # Every entry is planned, read or not: an earlier record of the batch may claim its
        # values (the planner's claims).
        return [
            planner.plan(Candidate(e.key, e.id, self._stable(e), e.body, values[e.id]))
            for e in entries
        ]

    def _stable(self, entry: Entry) -> str:
        if entry.key is None:
            return entry.id  # a content id: its own
        return stable_id(self.store.namespace, self.stream, entry.key)

    def _uncertain(
        self,
        entry: Entry,
        values: list[UniqueValue],
        cache: dict[UniqueValue, Holder],
        empty: bool,
    ) -> bool:
        """Whether Twenty must be read to plan this entry."""
        if entry.key is None or entry.id != self._stable(entry):
            return True  # no key to own a row by, or an adopted or merged row
        mine = Holder(self.stream, entry.key, entry.id)
        if empty:
            return any(v in cache and cache[v] != mine for v in values)
        return self.store.fresh or any(cache.get(v) != mine for v in values)

    def _rows_from_cache(
        self,
        entries: list[Entry],
        values: dict[str, list[UniqueValue]],
        cache: dict[UniqueValue, Holder],
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The rows holding the entries' values, as the id map knows them (row id → the key
        that owns it): enough to plan when the object held nothing before this run."""
        rows: dict[str, dict[str, Any]] = {}
        owners: dict[str, str] = {}
        for entry in entries:
            for f_key, value in values[entry.id]:
                holder = cache.get((f_key, value))
                if holder is None:
                    continue
                f = self.obj.fields[f_key]
                row = rows.setdefault(holder.twenty_id, {"id": holder.twenty_id})
                row[f_key] = {f.unique_subfield: value} if f.unique_subfield else value
                owners[holder.twenty_id] = holder.key
        return list(rows.values()), owners

    def _read(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """Rows (soft-deleted ones too) with the entries' ids, owners or unique values."""
        rows: dict[str, dict[str, Any]] = {}
        for group in self._filters(entries):
            for row in self.destination.client.find(self.obj.plural, group):
                rows.setdefault(row.get("id"), row)
        return list(rows.values())

    def _filters(self, entries: list[Entry]) -> list[str]:
        """`in` filters covering the entries, each short enough for one request."""
        groups: list[list[Entry]] = [[]]
        size = 0
        for entry in entries:
            # What the entry adds to a filter: its id, key and values, quoted, with commas.
            cost = (
                40
                + len(entry.key or "")
                + sum(len(v) + 3 for _, v in unique_values(self.obj, entry.body))
            )
            if groups[-1] and size + cost > MAX_FILTER:
                groups.append([])
                size = 0
            groups[-1].append(entry)
            size += cost
        return [self._filter(group) for group in groups if group]

    def _filter(self, entries: list[Entry]) -> str:
        # Rows the target wrote carry their owner in `source_key_field`: their ids are needed
        # only for rows that are not the key's own (adopted), or without that field.
        by_id = [e for e in entries if not self.source_key_field or e.id != self._stable(e)]
        conditions = [f"id[in]:[{quoted(sorted({e.id for e in by_id}))}]"] if by_id else []
        keys = sorted({display_of_key(e.key) for e in entries if e.key is not None})
        if self.source_key_field and keys:
            conditions.append(f"{self.source_key_field}[in]:[{quoted(keys)}]")
        by_field: dict[str, set[str]] = {}
        for entry in entries:
            for f_key, value in unique_values(self.obj, entry.body):
                by_field.setdefault(f_key, set()).add(value)
        for f_key, found in sorted(by_field.items()):
            f = self.obj.fields[f_key]
            path = f"{f_key}.{f.unique_subfield}" if f.unique_subfield else f_key
            conditions.append(f"{path}[in]:[{quoted(sorted(found))}]")
        return f"{WITH_DELETED},or({','.join(conditions)})"

    def rows_of_keys(self, keys: list[str]) -> dict[str, dict[str, Any] | None]:
        """Each key's row in Twenty (soft-deleted ones too), found by its id (alias or stable)
        and by `source_key_field`, so it is found without the id map; None when it has none.
        A row found only by its owner field is remembered as the key's alias."""
        ids = self.store.ids(self.scope, self.stream, keys)
        found: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(keys), MAX_BATCH):
            chunk = keys[start : start + MAX_BATCH]
            conditions = [f"id[in]:[{quoted(sorted({ids[k] for k in chunk}))}]"]
            if self.source_key_field:
                shown = sorted({display_of_key(k) for k in chunk})
                conditions.append(f"{self.source_key_field}[in]:[{quoted(shown)}]")
            rows = self.destination.client.find(
                self.obj.plural, f"{WITH_DELETED},or({','.join(conditions)})"
            )
            by_id = {row["id"]: row for row in rows if "id" in row}
            indexed = Rows(self.obj, rows, self.source_key_field, {})
            for key in chunk:
                found[key] = by_id.get(ids[key]) or indexed.by_owner.get(key)
        moved = [(k, r["id"]) for k, r in found.items() if r is not None and r["id"] != ids[k]]
        if moved:
            self.store.save(self.scope, self.stream, moved, keep=False)
        return found

    # After the write ----------------------------------------------------------------------
    def remember(self, outcomes: dict[str, tuple[Plan, str]]) -> list[UniqueValue]:
        """Note who holds and waits for what after a write (`outcomes`: key → its plan and
        row id); returns the values the keys held before and gave up."""
        if not self.active or not outcomes:
            return []
        before = self.store.held_by(self.scope, self.stream, outcomes)
        released = [
            v
            for key, (plan, _) in outcomes.items()
            for v in before.get(key, ())
            if v not in plan.holds
        ]
        self.store.remember(
            self.scope,
            self.stream,
            [(key, row_id, plan.holds, plan.waits) for key, (plan, row_id) in outcomes.items()],
        )
        return released

    def give_away(self, released: Iterable[UniqueValue]) -> None:
        """Each released value to the record that waited longest for it (its row's unique
        slot takes it; the non-unique part loses it)."""
        for f_key, value in dict.fromkeys(released):
            if self.store.holders(self.scope, [(f_key, value)]):
                continue  # taken already (by a record of the batch that released it)
            for waiting in self.store.waiting(self.scope, f_key, value):
                if self._promote(waiting, f_key, value):
                    break

    def _promote(self, waiting: Holder, f_key: str, value: str) -> bool:
        f = self.obj.fields[f_key]
        rows = self.destination.client.find(
            self.obj.plural, f"id[in]:[{quoted([waiting.twenty_id])}]"
        )
        if not rows:
            return False  # gone (deleted in Twenty): the next waiting record may take it
        current = rows[0].get(f_key)
        if f.unique_subfield and isinstance(current, dict):
            composite = {k: v for k, v in current.items()}
            composite[f.unique_subfield] = value
            secondary = SECONDARY.get(f.type)
            if secondary:
                composite[secondary] = [
                    item for item in composite.get(secondary) or [] if not _is(f, item, value)
                ]
            change: Any = composite
        else:
            change = value
        if not self.destination.client.update(self.obj.plural, waiting.twenty_id, {f_key: change}):
            return False
        self.store.add_hold(self.scope, waiting, (f_key, value))
        path = f"{f_key}.{f.unique_subfield}" if f.unique_subfield else f_key
        self.destination.report.record(
            waiting.stream,
            shown_key(waiting.key),
            "updated",
            waiting.twenty_id,
            f"{path} {value!r} was released by the record that held it: given to this record",
            status=["conflict-resolved"],
        )
        logger.info(
            "Stream '%s': %s %r released; record %s (%s) holds it now.",
            waiting.stream,
            path,
            value,
            waiting.key,
            waiting.twenty_id,
        )
        return True


def _is(f: Any, item: Any, value: str) -> bool:
    """Whether a non-unique list item holds `value` (a link, an email, a phone)."""
    if isinstance(item, dict):
        item = item.get("url") if f.type == "LINKS" else item.get("number")
    return server_key(f, item) == value
