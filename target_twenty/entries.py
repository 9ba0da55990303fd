"""A batch's records on their way to Twenty: one `Item` per source record, one `Entry` per row
written (items sharing an id merged)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from target_twenty.identity import Plan


@dataclass
class Item:
    """One source record on its way to Twenty."""

    record: dict[str, Any]
    key: str | None  # Singer key as text; None for streams without key properties
    payload: dict[str, Any] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)  # join column → parent key
    id: str = ""
    note: str | None = None  # for the run report
    status: list[str] = field(default_factory=list)
    links: dict[str, str | None] = field(default_factory=dict)  # junction column → parent id


@dataclass
class Entry:
    """One record of a request: the last of the items sharing its id, merged."""

    id: str
    body: dict[str, Any]
    items: list[Item]
    plan: Plan | None = None  # what identity planning decided (`ownership.py`)
    planned_from: Entry | None = None  # the entry before planning (its own id and body)

    @property
    def key(self) -> str | None:
        return self.items[-1].key
