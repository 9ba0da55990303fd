"""target-twenty's plan client (`dry_run: true`, see `connector_kit/plan.py`): reads go to Twenty,
writes do not.

- `upsert`: the rows with the batch's ids are read (soft-deleted ones too; rows an earlier read
  of the run returned are not read again) and compared field by field with what would be sent;
  the answer is what Twenty would answer: a new row (created = updated) or the existing one.
- `update` (a PATCH), `delete`: the row is read likewise; a row that is not there answers as a
  404 would (False).
- `create_field` (`create_missing_fields`): remembered, and the metadata read afterwards lists
  the field, so the run goes on as it would once the field exists. A filter naming such a field
  leaves that condition out (no row can hold a value in a field that does not exist yet).

Extra reads: at most one per 60 records written (those of the batch that no earlier read
returned), one per PATCH or DELETE of a row not read before.
"""

from __future__ import annotations

import threading
from typing import Any

from connector_kit.plan import Changes, differences
from target_twenty.client import MAX_BATCH, WITH_DELETED, TwentyClient, quoted

# Rows kept from reads for later writes' comparisons; a batch's rows are taken when written.
_CACHE_LIMIT = 10_000


class PlanClient(TwentyClient):
    def __init__(self, *args: Any, changes: Changes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changes = changes
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {}  # id → the row as last read
        self._new_fields: dict[str, list[dict[str, Any]]] = {}  # object id → field bodies
        self._planned_fields: dict[str, set[str]] = {}  # plural → names of those fields
        self._plurals: dict[str, str] = {}  # object id → plural
        self.refused = 0  # writes not sent

    # Metadata -------------------------------------------------------------------------------
    def objects(self) -> list[dict[str, Any]]:
        objects = super().objects()
        for raw in objects:
            self._plurals[str(raw.get("id"))] = raw.get("namePlural", "")
            extra = self._new_fields.get(str(raw.get("id")), [])
            if extra:
                raw["fields"] = [*(raw.get("fields") or []), *extra]
        return objects

    def create_field(self, definition: dict[str, Any]) -> dict[str, Any]:
        object_id = str(definition.get("objectMetadataId"))
        with self._lock:
            self.refused += 1
            self._new_fields.setdefault(object_id, []).append(dict(definition))
            plural = self._plurals.get(object_id, "")
            self._planned_fields.setdefault(plural, set()).add(str(definition.get("name")))
        return dict(definition)

    # Reads ----------------------------------------------------------------------------------
    def find(self, plural: str, filter_text: str) -> list[dict[str, Any]]:
        planned = self._planned_fields.get(plural)
        if planned:
            filter_text = _without_fields(filter_text, planned)
            if filter_text is None:
                return []
        rows = super().find(plural, filter_text)
        self._keep(rows)
        return rows

    def _keep(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            if len(self._rows) > _CACHE_LIMIT:
                self._rows.clear()  # memory stays flat; a later write reads again
            for row in rows:
                if isinstance(row.get("id"), str):
                    self._rows[row["id"]] = row

    def _current(self, plural: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The rows with these ids (soft-deleted ones too), read only where not known."""
        with self._lock:
            known = {i: self._rows.pop(i) for i in ids if i in self._rows}
        missing = [i for i in ids if i not in known]
        for start in range(0, len(missing), MAX_BATCH):
            chunk = missing[start : start + MAX_BATCH]
            filter_text = f"{WITH_DELETED},id[in]:[{quoted(chunk)}]"
            for row in super().find(plural, filter_text):
                if row.get("id") in chunk:
                    known[row["id"]] = row
        return known

    # Writes, refused ------------------------------------------------------------------------
    def upsert(self, plural: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not 0 < len(records) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} records, not {len(records)}")
        current = self._current(plural, [str(r["id"]) for r in records])
        rows = []
        for record in records:
            row_id = str(record["id"])
            old = current.get(row_id)
            wanted = {k: v for k, v in record.items() if k != "id"}
            if old is None or old.get("deletedAt"):
                self.changes.note(row_id, differences(wanted, old or {}))
                rows.append({"id": row_id, "createdAt": "plan", "updatedAt": "plan"})
            else:
                self.changes.note(row_id, differences(wanted, old))
                rows.append({"id": row_id, "createdAt": old.get("createdAt"), "updatedAt": "plan"})
        with self._lock:
            self.refused += 1
        return rows

    def update(self, plural: str, twenty_id: str, values: dict[str, Any]) -> bool:
        old = self._current(plural, [twenty_id]).get(twenty_id)
        with self._lock:
            self.refused += 1
        if old is None or old.get("deletedAt"):
            return False
        self.changes.note(twenty_id, differences(values, old))
        return True

    def delete(self, plural: str, twenty_id: str) -> bool:
        old = self._current(plural, [twenty_id]).get(twenty_id)
        with self._lock:
            self.refused += 1
        return old is not None and not old.get("deletedAt")


def _without_fields(filter_text: str, fields: set[str]) -> str | None:
    """The filter without the `or(…)` conditions on `fields`; None when none is left.

    Filters are `<prefix>,or(<condition>,<condition>…)` (`ownership.py`), each condition
    `<field>[op]:<value>` with JSON-quoted values; a condition of another shape is kept.
    """
    start = filter_text.rfind(",or(")
    if start < 0 or not filter_text.endswith(")"):
        return filter_text
    prefix, body = filter_text[: start + 1], filter_text[start + 4 : -1]
    kept = [c for c in _split(body) if c.split("[", 1)[0].split(".", 1)[0] not in fields]
    if not kept:
        return None
    return f"{prefix}or({','.join(kept)})"


def _split(body: str) -> list[str]:
    """Top-level comma-separated parts, commas inside quotes and brackets ignored."""
    parts, depth, quoted_text, escaped, current = [], 0, False, False, []
    for char in body:
        if quoted_text:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted_text = False
        elif char == '"':
            quoted_text = True
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts
