"""Deletions that mirror the source (fidelity invariant 16), on a sink's worker thread.

A record marked deleted (`_sdc_deleted_at`) soft-deletes only the row its key owns:

- a row another live record holds too (merged under `on_unique_conflict: merge`) is unlinked
  from the deleted key, never deleted;
- a row made in Twenty that the record adopted is unlinked and kept, unless
  `delete_adopted_rows` is on;
- otherwise the row first gives up its unique values (they move to the non-unique part, so a
  live record can take them, and the one waiting longest for them does), then is deleted, and
  the rows of other streams that reference it follow their reference's `on_parent_delete`
  (`cascade`: deleted the same way, `unlink`: join column emptied, `keep`).

The same rules apply to children a parent no longer lists (`listed_in_parent`): a contact
removed from a live OKKI company leaves Twenty at the company's next write.

Rows are found in Twenty by id and by `source_key_field`, so the id map is not needed to find
them; without that field, an adopted row whose alias the id map lost is left alone (the safe
side).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_twenty.client import quoted
from target_twenty.identity import (
    display_key,
    is_source_row,
    key_of_display,
    move_to_secondary,
    shown_key,
    unique_values,
)
from target_twenty.ids import stable_id
from target_twenty.ownership import Ownership

if TYPE_CHECKING:
    from target_twenty.destination import Destination
    from target_twenty.mapping import Reference, StreamMapping


@dataclass
class Gone:
    """A row to delete, with the source record it stood for (key text; None if unknown)."""

    row: dict[str, Any]
    key: str | None
    record: Any  # the Singer key for the run report
    cause: str | None = None  # why, when not the record's own deletion


class Removal:
    def __init__(self, destination: Destination, mapping: StreamMapping) -> None:
        self.destination = destination
        self.mapping = mapping
        self.stream = mapping.stream
        self.obj = mapping.object
        self.store = destination.ids
        self.client = destination.client

    @property
    def reads(self) -> bool:
        """Whether deletions need the rows first (else a DELETE by id is enough)."""
        return bool(
            self.obj.unique_fields()
            or self.mapping.source_key_field
            or self.mapping.junction
            or self.destination.dependants(self.stream)
        )

    # A source record's own deletion -------------------------------------------------------
    def delete_keys(self, keyed: dict[str, list[dict]], key_of: Any) -> None:
        """Delete what the keys own; `keyed`: key text → its records marked deleted."""
        ids = self.store.ids(self.obj.id, self.stream, list(keyed))
        if not self.reads:
            for key, records in keyed.items():
                found = self.client.delete(self.obj.plural, ids[key])
                self.store.mark_deleted(self.obj.id, [ids[key]])
                self._report_deleted(records, key_of, ids[key], found)
            return
        rows = Ownership(self.destination, self.mapping).rows_of_keys(list(keyed))
        doomed: list[Gone] = []
        for key, records in keyed.items():
            row = rows.get(key)
            if row is None or row.get("deletedAt"):
                # Gone already: children of this run still treat it as deleted, not missing.
                self.store.mark_deleted(self.obj.id, [row["id"] if row else ids[key]])
                self._report_deleted(records, key_of, ids[key], False)
                continue
            kept = self._kept_reason(key, row)
            if kept is not None:
                self._unlink_owner(key, row)
                for record in records:
                    self.destination.report.record(
                        self.stream, key_of(record), "skipped", row["id"], kept[1], status=kept[0]
                    )
                continue
            doomed.append(Gone(row, key, key_of(records[-1])))
            for record in records[:-1]:
                self._report_deleted([record], key_of, row["id"], True)
        self.delete_rows(doomed)

    def _kept_reason(self, key: str, row: dict[str, Any]) -> tuple[list[str], str] | None:
        """Why the row of a deleted key is not deleted (statuses, reason), or None."""
        others = [
            k for s, k in self.store.keys_at(self.obj.id, row["id"]) if (s, k) != (self.stream, key)
        ]
        own = stable_id(self.store.namespace, self.stream, key) == row["id"]
        if others or (is_source_row(row["id"]) and not own):
            return (
                ["shared"],
                "its row is also another record's (merged by a unique value): unlinked from "
                "this record, not deleted",
            )
        if not is_source_row(row["id"]) and not self.destination.settings.delete_adopted_rows:
            return (
                ["adopted"],
                "its row was made in Twenty and adopted: unlinked from this record and kept "
                "(delete_adopted_rows is off)",
            )
        return None

    def _unlink_owner(self, key: str, row: dict[str, Any]) -> None:
        """The row no longer stands for `key`: forget the alias, and the owner field says the
        record it still stands for (if any), else nothing."""
        self.store.unalias(self.obj.id, self.stream, [key])
        self.store.release(self.obj.id, self.stream, [key])
        field = self.mapping.source_key_field
        if field and isinstance(row.get(field), str) and key_of_display(row[field]) == key:
            others = [k for _, k in self.store.keys_at(self.obj.id, row["id"])]
            owner = display_key(json.loads(others[0])) if others else ""
            self.client.update(self.obj.plural, row["id"], {field: owner})

    # Deleting rows, and what follows them -------------------------------------------------
    def delete_rows(self, doomed: list[Gone]) -> None:
        if not doomed:
            return
        released = []
        for gone in doomed:
            row = gone.row
            held = unique_values(self.obj, row)
            if held:  # out of the unique slots first: a live record may take them
                self.client.update(self.obj.plural, row["id"], _without_unique(self.obj, row))
                released += held
            found = self.client.delete(self.obj.plural, row["id"])
            self.store.mark_deleted(self.obj.id, [row["id"]])
            if gone.key is not None:
                self.store.release(self.obj.id, self.stream, [gone.key])
            self.destination.report.record(
                self.stream,
                gone.record,
                "deleted",
                row["id"],
                gone.cause if found else "not in Twenty (deleted already)",
            )
        if released:
            Ownership(self.destination, self.mapping).give_away(released)
        self._unlink_junctions([g.row["id"] for g in doomed])
        self._follow(doomed)

    def _unlink_junctions(self, row_ids: list[str]) -> None:
        """A deleted note or task takes its junction rows (its links) with it."""
        junction = self.mapping.junction
        if junction is None:
            return
        plural = junction.object.plural
        for start in range(0, len(row_ids), 60):
            chunk = row_ids[start : start + 60]
            for row in self.client.find(plural, f"{junction.own_column}[in]:[{quoted(chunk)}]"):
                self.client.delete(plural, row["id"])
                self.store.note_links(junction.object.id, [], forget=[row["id"]])

    def _follow(self, doomed: list[Gone]) -> None:
        """Rows of other streams referencing the deleted rows follow `on_parent_delete`."""
        parent_ids = [g.row["id"] for g in doomed]
        for child, ref in self.destination.dependants(self.stream):
            if ref.on_parent_delete == "keep":
                continue
            rows = Removal(self.destination, child).children(ref, parent_ids)
            cause = (
                f"its '{self.stream}' parent was deleted (on_parent_delete: {ref.on_parent_delete})"
            )
            Removal(self.destination, child).apply(ref, rows, cause)

    def children(self, ref: Reference, parent_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Live rows of this mapping's object that reference the parents and that a source
        record owns (rows made in Twenty are left alone)."""
        ids = sorted(set(parent_ids))
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), 60):
            chunk = ids[start : start + 60]
            rows += self.client.find(self.obj.plural, f"{ref.key}[in]:[{quoted(chunk)}]")
        return [r for r in rows if self._owned(r)]

    def _owned(self, row: dict[str, Any]) -> bool:
        field = self.mapping.source_key_field
        if field and isinstance(row.get(field), str) and row[field].strip():
            return True
        return is_source_row(row["id"])

    def owner_key(self, row: dict[str, Any]) -> str | None:
        field = self.mapping.source_key_field
        if field and isinstance(row.get(field), str) and row[field].strip():
            return key_of_display(row[field].strip())
        return None

    def apply(self, ref: Reference, rows: list[dict[str, Any]], cause: str) -> None:
        """`ref.on_parent_delete` for these child rows."""
        if ref.on_parent_delete == "cascade":
            doomed = []
            for row in rows:
                key = self.owner_key(row)
                doomed.append(Gone(row, key, shown_key(key), cause))
            self.delete_rows(doomed)
        elif ref.on_parent_delete == "unlink":
            for row in rows:
                self.client.update(self.obj.plural, row["id"], {ref.key: None})
                key = self.owner_key(row)
                self.destination.report.record(
                    self.stream, shown_key(key), "updated", row["id"], f"{ref.key} emptied: {cause}"
                )

    # Children a parent no longer lists ----------------------------------------------------
    def unlisted(self, ref: Reference, listed: dict[str, set[str]]) -> None:
        """`listed`: parent row id → key texts of the children its record lists. Owned child
        rows linked to those parents and not listed follow `on_parent_delete`."""
        if ref.on_parent_delete == "keep" or not listed:
            return
        rows = self.children(ref, listed)
        aliases = self.store.aliased_rows(self.obj.id, (r["id"] for r in rows))
        gone = []
        for row in rows:
            keys = listed.get(row.get(ref.key) or "", set())
            key = self.owner_key(row) or aliases.get(row["id"])
            if key is not None:
                if key not in keys:
                    gone.append(row)
            elif row["id"] not in {stable_id(self.store.namespace, self.stream, k) for k in keys}:
                gone.append(row)
        if gone:
            cause = (
                f"its '{ref.stream}' parent no longer lists it (on_parent_delete: "
                f"{ref.on_parent_delete})"
            )
            self.apply(ref, gone, cause)

    def _report_deleted(self, records: list[dict], key_of: Any, row_id: str, found: bool) -> None:
        reason = None if found else "not in Twenty (never loaded, or deleted already)"
        for record in records:
            self.destination.report.record(self.stream, key_of(record), "deleted", row_id, reason)


def _without_unique(obj: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The change that moves a row's unique values to their fields' non-unique part."""
    change: dict[str, Any] = {}
    for f_key, value in unique_values(obj, row):
        change[f_key] = row.get(f_key)
        move_to_secondary(change, obj.fields[f_key], value)
    return change
