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

from target_twenty.client import quoted
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
    from target_twenty.mapping import StreamMapping
    from target_twenty.sinks import Entry
    from target_twenty.target import TargetTwenty

logger = logging.getLogger("target_twenty")

# Longest filter sent in one read: real servers cap the request line (8 KB behind nginx).
MAX_FILTER = 2500
# Twenty lists soft-deleted rows when the filter names deletedAt; an upsert matches them too.
WITH_DELETED = "or(deletedAt[is]:NULL,deletedAt[is]:NOT_NULL)"


class Ownership:
    def __init__(self, target: TargetTwenty, mapping: StreamMapping) -> None:
        self.target = target
        self.mapping = mapping
        self.stream = mapping.stream
        self.obj = mapping.object
        self.scope = self.obj.id
        self.store = target.ids
        self.source_key_field = mapping.source_key_field
        # Nothing to plan for objects without unique fields and without an owner field.
        self.active = bool(self.obj.unique_fields() or self.source_key_field)

    # Planning -----------------------------------------------------------------------------
    def plan(self, entries: list[Entry], force_read: bool = False) -> list[Plan]:
        """A plan per entry, in order (see `identity.Planner`)."""
        if not self.active:
            return [Plan(e.id, e.body) for e in entries]
        values = {e.id: unique_values(self.obj, e.body) for e in entries}
        cache = self.store.holders(self.scope, (v for vs in values.values() for v in vs))
        stream = self.stream
        uncertain = [
            e
            for e in entries
            if force_read
            or self.store.fresh
            or e.key is None
            or e.id != stable_id(self.store.namespace, stream, e.key)
            or any(cache.get(v) != Holder(stream, e.key, e.id) for v in values[e.id])
        ]
        rows = self._read(uncertain) if uncertain else []
        aliases = self.store.aliased_rows(self.scope, (r["id"] for r in rows if "id" in r))
        planner = Planner(
            self.obj,
            Rows(self.obj, rows, self.source_key_field, aliases),
            self.target.on_unique_conflict,  # type: ignore[arg-type]
            self.target.adopted_rows,  # type: ignore[arg-type]
            self.source_key_field,
        )
        reading = {id(e) for e in uncertain}
        plans = []
        for entry in entries:
            if id(entry) in reading:
                stable = (
                    stable_id(self.store.namespace, stream, entry.key)
                    if entry.key is not None
                    else entry.id
                )
                plans.append(planner.plan(Candidate(entry.key, entry.id, stable, entry.body)))
                continue
            plan = Plan(entry.id, dict(entry.body), holds=values[entry.id])
            if self.source_key_field and entry.key is not None:
                plan.body[self.source_key_field] = display_of_key(entry.key)
            planner.claims.update((v, (entry.id, entry.key)) for v in plan.holds)
            plans.append(plan)
        return plans

    def _read(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """Rows (soft-deleted ones too) with the entries' ids, owners or unique values."""
        rows: dict[str, dict[str, Any]] = {}
        for group in self._filters(entries):
            for row in self.target.client.find(self.obj.plural, group):
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
        conditions = [f"id[in]:[{quoted(sorted({e.id for e in entries}))}]"]
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
        rows = self.target.client.find(self.obj.plural, f"id[in]:[{quoted([waiting.twenty_id])}]")
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
        if not self.target.client.update(self.obj.plural, waiting.twenty_id, {f_key: change}):
            return False
        self.store.add_hold(self.scope, waiting, (f_key, value))
        path = f"{f_key}.{f.unique_subfield}" if f.unique_subfield else f_key
        self.target.report.record(
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
