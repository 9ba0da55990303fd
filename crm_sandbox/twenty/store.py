"""Stored records and the write rules (docs/api/twenty.md): batch create / upsert (§2), find (§3),
update (§4), soft delete (§5).

Rows are dicts keyed like the API (a relation under its join column, `companyId`) and are never
removed: a delete sets `deletedAt`. A write is checked in full before anything is stored, so a
400 writes nothing. Composite values are replaced, never changed in place, so the shallow copies
handed out stay true to the moment they were taken.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from crm_sandbox.twenty.errors import ApiError, bad_request, show
from crm_sandbox.twenty.filters import matches, mentions, parse_filter
from crm_sandbox.twenty.schema import COMPOSITES, DEMO_MEMBER, Field, ObjectType, now_iso
from crm_sandbox.twenty.values import UUID_RE, check_record, default_value, unique_key
from crm_sandbox.twenty.workspace import Workspace

MAX_BATCH = 60  # records per batch call (docs/api/twenty.md §2)
MAX_PAGE = 200  # rows per find-many page (§3)
# Who the server records as the author of API writes (upstream names the API key).
API_ACTOR = {"source": "API", "workspaceMemberId": None, "name": "API key", "context": {}}


@dataclass
class Table:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → row, insertion order
    seq: dict[str, int] = field(default_factory=dict)  # id → insertion number (paging order)
    # Unique field → normalised key → id; soft-deleted rows keep their keys (§2).
    keys: dict[str, dict[Any, str]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)  # created / updated / deleted


class Store:
    def __init__(self, workspace: Workspace, ids: random.Random) -> None:
        self.workspace = workspace
        self.ids = ids  # row ids are seeded, so runs are repeatable
        self.tables: dict[str, Table] = {}
        member = self.workspace.objects["workspaceMember"]
        self._insert(member, self._new_row(member, dict(DEMO_MEMBER)), now_iso())
        self.table(member).counts.clear()

    def table(self, obj: ObjectType) -> Table:
        return self.tables.setdefault(obj.singular, Table())

    def view(self, obj: ObjectType, row: dict[str, Any]) -> dict[str, Any]:
        """A row as the API returns it: every column, in metadata order."""
        return {key: row[key] for key in obj.columns()}

    # Writes -------------------------------------------------------------------------------------

    def write_batch(self, obj: ObjectType, records: Any, upsert: bool) -> list[dict[str, Any]]:
        """Create (or upsert) up to 60 records; answer them in input order (§2)."""
        if not isinstance(records, list):
            raise bad_request(f"The body must be a JSON array of {obj.singular} records.")
        if len(records) > MAX_BATCH:
            verb = "upsert" if upsert else "create"
            raise bad_request(
                f"Maximum number of records to {verb} is {MAX_BATCH}; got {len(records)}."
            )
        plans = self._plan(obj, [check_record(obj, record) for record in records], upsert)
        now = now_iso()
        return [
            self._insert(obj, row, now) if row_id is None else self._update(obj, row_id, row, now)
            for row_id, row in plans
        ]

    def _plan(
        self, obj: ObjectType, batch: list[dict[str, Any]], upsert: bool
    ) -> list[tuple[str | None, dict[str, Any]]]:
        """Per record: None and the complete new row, or the id of the matched row and the
        values to merge into it (merged when applied, after the batch's earlier records)."""
        table = self.table(obj)
        plans: list[tuple[str | None, dict[str, Any]]] = []
        claimed: dict[tuple[str, Any], tuple[int, str]] = {}  # key → (record index, target row)
        for index, values in enumerate(batch):
            self._check_relations(obj, values)
            row_id = self._matched_row(obj, values, upsert)
            if row_id is None:
                row, target = self._new_row(obj, values), f"new record {index}"
                plans.append((None, row))
            else:
                row, target = {**table.rows[row_id], **_without_id(values)}, row_id
                plans.append((row_id, _without_id(values)))
            # Two records of one batch may not both hold a key, unless they update the same row.
            for f in obj.unique_fields():
                key = unique_key(f, row.get(f.name))
                if key is None:
                    continue
                first, owner = claimed.setdefault((f.name, key), (index, target))
                if owner != target:
                    raise bad_request(
                        f"Records {first} and {index} of the batch both have "
                        f"{obj.singular}.{f.unique_path} {show(key)}."
                    )
        return plans

    def _matched_row(self, obj: ObjectType, values: dict[str, Any], upsert: bool) -> str | None:
        """The stored row a record's keys point at (§2); a 400 when that is not allowed."""
        found = self._matches(obj, values)
        if found and not upsert:
            row_id, (path, key) = next(iter(found.items()))
            raise _duplicate(obj, path, key, row_id, hint=" Send upsert=true to update it.")
        if len(found) > 1:
            clashes = "; ".join(f"{p} {show(k)} matches {i}" for i, (p, k) in found.items())
            raise bad_request(
                f"Multiple records found with the same unique fields for {obj.singular}: {clashes}."
            )
        return next(iter(found), None)

    def update(self, obj: ObjectType, row_id: str, body: Any) -> dict[str, Any]:
        """Merge the given fields into a live row (§4); composite fields are replaced whole."""
        row = self._live(obj, row_id)
        values = check_record(obj, body)
        if values.get("id", row["id"]) != row["id"]:
            raise bad_request(f"The id of a {obj.singular} cannot be changed.")
        self._check_relations(obj, values)
        for other, (path, key) in self._matches(obj, values).items():
            if other != row["id"]:
                raise _duplicate(obj, path, key, other)
        return self._update(obj, row["id"], _without_id(values), now_iso())

    def delete(self, obj: ObjectType, row_id: str) -> dict[str, Any]:
        """Soft delete (§5): the row stays, with `deletedAt`, and keeps its unique keys."""
        row = self._live(obj, row_id)
        row["deletedAt"] = now_iso()
        self.table(obj).counts["deleted"] += 1
        return {"id": row["id"]}

    def _new_row(self, obj: ObjectType, values: dict[str, Any]) -> dict[str, Any]:
        row = {}
        for key, f in obj.columns().items():
            if key in values:
                row[key] = values[key]
            elif key == "id" or f.read_only:
                continue  # set when the row is stored
            elif not f.nullable and f.default is None and f.type not in COMPOSITES:
                raise bad_request(
                    f"Invalid value for {obj.singular}.{key} ({f.type}): a value is required."
                )
            else:
                row[key] = default_value(f)
        return row

    def _insert(self, obj: ObjectType, row: dict[str, Any], now: str) -> dict[str, Any]:
        table = self.table(obj)
        row.setdefault("id", str(uuid.UUID(int=self.ids.getrandbits(128), version=4)))
        row.setdefault("position", len(table.rows))
        row |= {"createdAt": now, "updatedAt": now, "deletedAt": None}
        row |= {"createdBy": dict(API_ACTOR), "updatedBy": dict(API_ACTOR)}
        row = self.view(obj, row)  # column order
        table.seq[row["id"]] = len(table.rows)
        table.rows[row["id"]] = row
        self._index(obj, row, add=True)
        table.counts["created"] += 1
        return dict(row)

    def _update(
        self, obj: ObjectType, row_id: str, values: dict[str, Any], now: str
    ) -> dict[str, Any]:
        """Merge `values` into a row and revive it if it was soft-deleted (`createdBy` kept)."""
        table = self.table(obj)
        row = table.rows[row_id]
        self._index(obj, row, add=False)
        row |= values
        row |= {"updatedAt": now, "updatedBy": dict(API_ACTOR), "deletedAt": None}
        self._index(obj, row, add=True)
        table.counts["updated"] += 1
        return dict(row)

    # Keys and relations -------------------------------------------------------------------------

    def _keys(self, obj: ObjectType, f: Field) -> dict[Any, str]:
        table = self.table(obj)
        if f.name not in table.keys:  # first use, or a unique field added since
            table.keys[f.name] = {}
            for row in table.rows.values():
                key = unique_key(f, row.get(f.name))
                if key is not None:
                    table.keys[f.name][key] = row["id"]
        return table.keys[f.name]

    def _index(self, obj: ObjectType, row: dict[str, Any], add: bool) -> None:
        for f in obj.unique_fields():
            keys, key = self._keys(obj, f), unique_key(f, row.get(f.name))
            if key is not None:
                if add:
                    keys[key] = row["id"]
                else:
                    keys.pop(key, None)

    def _matches(self, obj: ObjectType, values: dict[str, Any]) -> dict[str, tuple[str, Any]]:
        """Rows (soft-deleted ones included) holding one of the record's unique keys."""
        found: dict[str, tuple[str, Any]] = {}
        for f in obj.unique_fields():
            key = unique_key(f, values.get(f.name))
            row_id = self._keys(obj, f).get(key) if key is not None else None
            if row_id is not None:
                found.setdefault(row_id, (f.unique_path, key))
        return found

    def _check_relations(self, obj: ObjectType, values: dict[str, Any]) -> None:
        for key, f in obj.columns().items():
            if f.relation and values.get(key) is not None:
                target = self.workspace.objects[f.relation.target]
                row = self.table(target).rows.get(values[key])
                if row is None or row["deletedAt"] is not None:
                    raise bad_request(
                        f"Invalid value for {obj.singular}.{key} (RELATION): no {target.singular} "
                        f"with id {show(values[key])} exists."
                    )

    def add_column(self, obj: ObjectType, f: Field) -> None:
        """Give existing rows a new field's default, as upstream adds the column with it."""
        rows = self.table(obj).rows.values()
        value = default_value(f)
        if f.unique and unique_key(f, value) is not None and len(rows) > 1:
            raise ValueError(
                f"{len(rows)} {obj.plural} would share the default of unique {f.name}."
            )
        for row in rows:
            row[f.column] = default_value(f)

    # Reads --------------------------------------------------------------------------------------

    def get(self, obj: ObjectType, row_id: str) -> dict[str, Any]:
        return self.view(obj, self._live(obj, row_id))

    def find(
        self, obj: ObjectType, filter_text: str | None, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
        """One page of live rows matching the filter, its `pageInfo` and the total count (§3)."""
        node = parse_filter(filter_text, obj) if filter_text else None
        with_deleted = node is not None and mentions(node, "deletedAt")
        table = self.table(obj)
        rows = [
            row
            for row in table.rows.values()
            if (with_deleted or row["deletedAt"] is None) and (node is None or matches(node, row))
        ]
        start = 0
        if after:
            position = table.seq[_cursor_id(after, table)]
            start = next(
                (i for i, r in enumerate(rows) if table.seq[r["id"]] > position), len(rows)
            )
        page = rows[start : start + min(limit, MAX_PAGE)]
        page_info = {
            "hasNextPage": start + len(page) < len(rows),
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(page[0]["id"]) if page else None,
            "endCursor": _cursor(page[-1]["id"]) if page else None,
        }
        return [self.view(obj, row) for row in page], page_info, len(rows)

    def _live(self, obj: ObjectType, row_id: str) -> dict[str, Any]:
        if not UUID_RE.match(row_id):
            raise bad_request(f"Invalid id {show(row_id)}: expected a UUID.")
        row = self.table(obj).rows.get(row_id.lower())
        if row is None or row["deletedAt"] is not None:
            raise ApiError(404, f"No {obj.singular} found with id {show(row_id)}.")
        return row

    # Inspection ---------------------------------------------------------------------------------

    def records(self) -> dict[str, list[dict[str, Any]]]:
        return {
            obj.plural: [self.view(obj, row) for row in self.table(obj).rows.values()]
            for obj in self.workspace.objects.values()
            if not obj.system
        }

    def counts(self) -> dict[str, dict[str, int]]:
        names = ("created", "updated", "deleted")
        return {
            obj.plural: {name: self.table(obj).counts[name] for name in names}
            for obj in self.workspace.objects.values()
            if not obj.system
        }


def _without_id(values: dict[str, Any]) -> dict[str, Any]:
    # A matched row keeps its own id: the client's id was only one of the keys it matched on.
    return {k: v for k, v in values.items() if k != "id"}


def _duplicate(obj: ObjectType, path: str, key: Any, row_id: str, hint: str = "") -> ApiError:
    return bad_request(
        f"Duplicate {obj.singular}.{path} {show(key)}: record {row_id} already has it.{hint}"
    )


def _cursor(row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": row_id}).encode()).decode()


def _cursor_id(cursor: str, table: Table) -> str:
    try:
        row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))["id"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        row_id = None
    if row_id not in table.seq:
        raise bad_request(f"Invalid cursor {show(cursor)}: pass a pageInfo.endCursor unchanged.")
    return row_id
