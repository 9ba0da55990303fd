"""Who owns a Twenty row, and what a record may write into it (fidelity invariants 15 and 16).

Twenty keeps some values unique (a company's `domainName.primaryLinkUrl`, a person's
`emails.primaryEmail`, custom `isUnique` fields), and its upsert matches a record to any row
holding one of the record's unique values, then updates that row (docs/api/twenty.md). Left
alone, two source records that share a domain become one row, and each run overwrites the one
with the other. So before a batch is sent, the rows holding its unique values (and the rows its
keys own) are read, and each record is planned:

- a value no row holds, or its own row holds: written as it is;
- a value held by a row no source record owns (typed in by hand), while the record has no row
  of its own yet: the record *adopts* that row (the import guide's "ID check"); how much of it
  it may change is the setting `adopted_rows`;
- a value held by another source record's row: a *conflict*, settled by `on_unique_conflict`:
  `keep_apart` (the record gets its own row, the value moves to the composite's non-unique
  part: `secondaryLinks`, `additionalEmails`, `additionalPhones`), `merge` (written into that
  row, as Twenty would), or `dead_letter`.

Ownership is read from Twenty itself, so the id map (`ids.py`) is only a cache: the mapping's
`source_key_field` (e.g. `okkiId`) names the source key that owns a row; a row whose id is a
UUIDv5 was written by this target for some source record (rows Twenty creates get random v4
ids); the id map's aliases name the owners of adopted and merged rows.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from target_twenty.ids import key_text
from target_twenty.metadata import TwentyField, TwentyObject

ConflictRule = Literal["keep_apart", "merge", "dead_letter"]
AdoptedRule = Literal["update", "fill_empty", "link_only"]

# A unique composite's non-unique part, where a value another record holds is kept.
SECONDARY = {"LINKS": "secondaryLinks", "EMAILS": "additionalEmails", "PHONES": "additionalPhones"}

UniqueValue = tuple[str, str]  # (field key, value as the server compares it)


def server_key(f: TwentyField, value: Any) -> str | None:
    """A unique value as Twenty compares it (lower-cased email, URL origin; no trailing
    slash); None when empty."""
    if value in (None, ""):
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if f.type == "EMAILS":
        return text.strip().lower()
    if f.type == "LINKS":
        scheme, separator, rest = text.strip().partition("://")
        if not separator:
            scheme, rest = "", text.strip()
        host, slash, path = rest.partition("/")
        return ((scheme + separator + host).lower() + slash + path).rstrip("/") or None
    return text


def unique_values(obj: TwentyObject, body: dict[str, Any]) -> list[UniqueValue]:
    """The unique values a record's Twenty body writes."""
    found = []
    for f in obj.unique_fields():
        value = body.get(f.key)
        if f.unique_subfield:
            value = value.get(f.unique_subfield) if isinstance(value, dict) else None
        key = server_key(f, value)
        if key is not None:
            found.append((f.key, key))
    return found


def display_key(values: list[Any]) -> str:
    """A Singer key as people read it in `source_key_field`: `56657420945678`, or the key
    text (`["a", "b"]`) for a compound key."""
    return str(values[0]) if len(values) == 1 else key_text(values)


def key_of_display(text: str) -> str:
    """`display_key`'s text back to the key text the target computes ids from."""
    if text.startswith("["):
        try:
            values = json.loads(text)
        except ValueError:
            values = None
        if isinstance(values, list):
            return key_text(values)
    return key_text([text])


# A UUIDv5 as Twenty writes ids (asked once per record written: parsing a UUID costs 5× more).
_CANONICAL_V5 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def is_source_row(twenty_id: str) -> bool:
    """Whether a row's id was chosen by a client like this target (UUIDv5), not by Twenty."""
    if _CANONICAL_V5.fullmatch(twenty_id):
        return True
    try:
        return uuid.UUID(twenty_id).version == 5
    except ValueError:
        return False


@dataclass
class Owner:
    """Who owns a row: a source key, some source record (key unknown), or nobody."""

    kind: Literal["key", "source", "none"]
    key: str | None = None  # key text, for kind "key"

    def describe(self) -> str:
        if self.kind == "key":
            return f"the record with key {display_of_key(self.key or '[]')}"
        if self.kind == "source":
            return "another source record"
        return "a row made in Twenty"


@dataclass
class Candidate:
    """One record (the last of its key's versions in the batch) before planning."""

    key: str | None  # key text; None in a stream without key properties
    id: str  # its row: alias or stable id
    stable_id: str
    body: dict[str, Any]
    values: list[UniqueValue]  # `unique_values` of the body


@dataclass
class Plan:
    """What to send for one record, and what to report and remember about it."""

    id: str
    body: dict[str, Any]
    status: list[str] = field(default_factory=list)  # "conflict", "adopted"
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dead_letter: str | None = None
    holds: list[UniqueValue] = field(default_factory=list)  # after the write
    waits: list[UniqueValue] = field(default_factory=list)  # kept apart from these
    conflicts: list[dict[str, Any]] = field(default_factory=list)


class Rows:
    """The rows read for a batch, indexed by id, owner and unique value."""

    def __init__(
        self,
        obj: TwentyObject,
        rows: Iterable[dict[str, Any]],
        source_key_field: str | None,
        aliases: dict[str, str],
    ) -> None:
        self.obj = obj
        self.source_key_field = source_key_field
        self.aliases = aliases  # row id → key text of the record aliased to it
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_owner: dict[str, dict[str, Any]] = {}
        self.by_value: dict[UniqueValue, dict[str, Any]] = {}
        for row in rows:
            if not isinstance(row, dict) or not row.get("id"):
                continue
            self.by_id[row["id"]] = row
            owner = self.owner(row)
            if owner.kind == "key" and owner.key is not None:
                # A live row wins over a deleted one; two live rows: the first stays.
                known = self.by_owner.get(owner.key)
                if known is None or (known.get("deletedAt") and not row.get("deletedAt")):
                    self.by_owner[owner.key] = row
            for value in unique_values(obj, row):
                self.by_value.setdefault(value, row)

    def owner(self, row: dict[str, Any]) -> Owner:
        if self.source_key_field:
            text = row.get(self.source_key_field)
            if isinstance(text, str) and text.strip():
                return Owner("key", key_of_display(text.strip()))
        if row["id"] in self.aliases:
            return Owner("key", self.aliases[row["id"]])
        if is_source_row(row["id"]):
            return Owner("source")
        return Owner("none")


class Planner:
    """Plans the records of one batch, in order: an earlier record's claims bind later ones."""

    def __init__(
        self,
        obj: TwentyObject,
        rows: Rows,
        on_conflict: ConflictRule,
        adopted: AdoptedRule,
        source_key_field: str | None,
    ) -> None:
        self.obj = obj
        self.rows = rows
        self.on_conflict = on_conflict
        self.adopted = adopted
        self.source_key_field = source_key_field
        # Value → (row id, key text) planned to hold it by an earlier record of the batch.
        self.claims: dict[UniqueValue, tuple[str, str | None]] = {}

    def plan(self, candidate: Candidate) -> Plan:
        plan = Plan(candidate.id, dict(candidate.body))
        own = self._own_row(candidate)
        if own is not None:
            plan.id = own["id"]
        exists = own is not None
        for f_key, value in candidate.values:
            claim = self.claims.get((f_key, value))
            holder = self.rows.by_value.get((f_key, value))
            holder_id = claim[0] if claim else holder["id"] if holder is not None else None
            if holder_id is None or holder_id == plan.id:
                plan.holds.append((f_key, value))
                continue
            if claim is not None and (holder is None or holder["id"] != holder_id):
                # Claimed by an earlier record of this batch.
                owner = Owner("key", claim[1]) if claim[1] else Owner("source")
            else:
                owner = self.rows.owner(holder)  # type: ignore[arg-type]
            if (
                owner.kind == "none"
                and not exists
                and holder is not None
                and not holder.get("deletedAt")
                and (f_key, value) not in self.claims
            ):
                self._adopt(plan, holder)
                exists = True
                plan.holds.append((f_key, value))
                continue
            self._conflict(plan, candidate, f_key, value, holder_id, holder, owner)
            if plan.dead_letter:
                return plan
        if "adopted" not in plan.status and not is_source_row(plan.id):
            row = self.rows.by_id.get(plan.id)
            if row is not None:
                self._adopt(plan, row)  # adopted in an earlier run: still a row made by hand
        if self.source_key_field and candidate.key is not None:
            plan.body[self.source_key_field] = display_of_key(candidate.key)
        for value in plan.holds:
            self.claims[value] = (plan.id, candidate.key)
        return plan

    def _own_row(self, candidate: Candidate) -> dict[str, Any] | None:
        """The row this record owns in Twenty, if it has one (found by id or by owner)."""
        row = self.rows.by_id.get(candidate.id)
        if row is not None:
            return row
        if candidate.key is not None:
            return self.rows.by_owner.get(candidate.key)
        return None

    def _adopt(self, plan: Plan, row: dict[str, Any]) -> None:
        plan.id = row["id"]
        if "adopted" not in plan.status:
            plan.status.append("adopted")
        if self.adopted == "link_only":
            plan.body = {}
        elif self.adopted == "fill_empty":
            plan.body = {k: _only_empty(row.get(k), v) for k, v in plan.body.items()}
            plan.body = {k: v for k, v in plan.body.items() if v is not _NOTHING}
        # Twenty replaces a composite whole: the sub-fields the mapping does not write keep
        # what the row holds.
        for k, v in plan.body.items():
            if isinstance(v, dict) and isinstance(row.get(k), dict):
                plan.body[k] = {**row[k], **v}
        plan.notes.append(
            f"adopted {self.obj.singular} {row['id']}, made in Twenty (adopted_rows: "
            f"{self.adopted})"
        )

    def _conflict(
        self,
        plan: Plan,
        candidate: Candidate,
        f_key: str,
        value: str,
        holder_id: str,
        holder: dict[str, Any] | None,
        owner: Owner,
    ) -> None:
        f = self.obj.fields[f_key]
        path = f"{f_key}.{f.unique_subfield}" if f.unique_subfield else f_key
        held_by = owner.describe()
        if holder is not None and holder.get("deletedAt"):
            held_by += " (deleted in Twenty)"
        conflict = {
            "field": path,
            "value": value,
            "held_by": shown_key(owner.key) if owner.kind == "key" else None,
            "held_by_row": holder_id,
        }
        plan.conflicts.append(conflict)
        if "conflict" not in plan.status:
            plan.status.append("conflict")
        plan.details.setdefault("conflicts", []).append(conflict)
        if self.on_conflict == "dead_letter":
            plan.dead_letter = (
                f"{self.obj.singular}.{path} {value!r} is held by {held_by} "
                f"({holder_id}); on_unique_conflict is dead_letter"
            )
        elif self.on_conflict == "merge" and not (holder is not None and holder.get("deletedAt")):
            plan.id = holder_id
            plan.holds.append((f_key, value))
            plan.notes.append(
                f"merged into {self.obj.singular} {holder_id} of {held_by}, which holds "
                f"{path} {value!r} (on_unique_conflict: merge)"
            )
        else:
            move_to_secondary(plan.body, f, value)
            plan.waits.append((f_key, value))
            plan.notes.append(
                f"{path} {value!r} is held by {held_by} ({holder_id}): written without it "
                f"as its own {self.obj.singular}"
                + (
                    f", the value kept in {f_key}.{SECONDARY[f.type]}"
                    if f.type in SECONDARY
                    else ""
                )
            )


def shown_key(key: str | None) -> Any:
    """A key text as the run report shows keys: the value, or the list of a compound key."""
    if key is None:
        return None
    values = json.loads(key)
    return values[0] if len(values) == 1 else values


def display_of_key(key: str) -> str:
    """The text `source_key_field` holds for a key text (`display_key` of its values)."""
    return display_key(json.loads(key))


def _is_empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_is_empty(v) for v in value.values())
    return value in (None, "", [], {})


_NOTHING = object()


def _only_empty(current: Any, new: Any) -> Any:
    """What of `new` fills an empty `current` (`fill_empty`); `_NOTHING` when nothing does."""
    if isinstance(new, dict) and isinstance(current, dict):
        filled = {s: x for s, x in new.items() if _is_empty(current.get(s))}
        return filled or _NOTHING
    return new if _is_empty(current) else _NOTHING


def move_to_secondary(body: dict[str, Any], f: TwentyField, value: str) -> None:
    """Take a unique value out of the unique slot; keep it in the non-unique part if any."""
    current = body.get(f.key)
    if f.unique_subfield is None:
        body[f.key] = None
        return
    composite = dict(current) if isinstance(current, dict) else {}
    primary = composite.get(f.unique_subfield)
    composite[f.unique_subfield] = ""
    secondary = SECONDARY.get(f.type)
    if secondary is not None:
        kept = list(composite.get(secondary) or [])
        if f.type == "LINKS":
            kept.append({"url": primary or value, "label": ""})
        elif f.type == "EMAILS":
            kept.append(primary or value)
        else:  # PHONES
            kept.append(
                {
                    "number": primary or value,
                    "countryCode": composite.pop("primaryPhoneCountryCode", "") or "",
                    "callingCode": composite.pop("primaryPhoneCallingCode", "") or "",
                }
            )
        composite[secondary] = kept
    body[f.key] = composite
