"""Absent is not null: whether a record says anything about a destination field.

Taps send partial records (an update carrying only what changed), and stream maps drop
properties; a property missing from a record says nothing about its field. So, in both targets:

- a field copied from a property is written when the record has that property, even as null
  (an explicit null clears the field), and left as it is when the property is absent;
- a computed field is written when the record has every property its expression names
  directly (`amount * 100`), and — when it reads the record only through `record['x']` or
  `record.get('x')` — at least one of those. An expression that reads nothing of the record (a
  constant) or reads it whole (`len(record)`) is always written.

Only `carried` decides; the targets differ in how they write a null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector_kit.expressions import Expression


def carried(record: Mapping[str, Any], source: str, expression: Expression | None = None) -> bool:
    """Whether `record` carries the value copied from `source`, or computed by `expression`."""
    if expression is None:
        return source in record
    if not expression.inputs <= record.keys():
        return False
    if expression.inputs or expression.reads_all or not expression.record_keys:
        return True
    return not expression.record_keys.isdisjoint(record.keys())


def reads(source: str, expression: Expression | None = None) -> frozenset[str] | None:
    """The properties a copied or computed field may read (None: possibly any of them)."""
    if expression is None:
        return frozenset({source})
    if expression.reads_all:
        return None
    return expression.inputs | expression.record_keys
