"""Records → rows: what a record writes, checked value by value, and how it meets a stored row.

- Absent is not null (`connector_kit.presence`): a field the record does not carry is left out of
  the row; a null or blank one is left out of a new row and empties the widget in an update.
- Nothing the API would blank is sent (docs/api/jiandaoyun.md §7.2–7.3): a member or department
  not in the company directory, an option text the widget does not offer. Per setting, such a
  value is left out of the row and reported (`Skipped`), or its record is refused.
- A keyed subform is merged with its stored rows (`update_of`); a row to create must give
  every required widget a value (`missing_required`); `up_to_date` tells whether a stored row
  already holds what a row writes.

The mapping (`mapping.py`) says which field goes to which widget; this module reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_jiandaoyun.directory import Unknown
from target_jiandaoyun.mapping import DEAD_LETTER, FieldMapping, StreamMapping
from target_jiandaoyun.values import (
    DEPARTMENT_TYPES,
    MEMBER_TYPES,
    MULTIPLE,
    NOT_WRITABLE,
    OPTION_TYPES,
    ValueRejected,
    convert,
    holds,
    is_blank,
    key_token,
    rewrite,
)

if TYPE_CHECKING:
    from target_jiandaoyun.metadata import Widget

SKIP = object()  # a value left out of its row


@dataclass(frozen=True)
class Skipped:
    """A value left out of its row because the API would have blanked it."""

    field: str  # "owner", or "contacts[2].owner" in a subform
    widget: str
    value: Any
    reason: str
    setting: str  # on_unknown_member / on_unknown_department / on_unknown_option

    def detail(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "widget": self.widget,
            "value": self.value,
            "reason": self.reason,
        }


def row_of(
    mapping: StreamMapping,
    record: dict[str, Any],
    clear: bool = False,
    skipped: list[Skipped] | None = None,
) -> dict[str, Any]:
    """The record as a row of wrapped values.

    A field the record does not carry is left out. A null or blank value is left out too,
    or, with `clear` (for updates), written as `{"value": null}`, which empties the field.
    Values the API would blank are left out and added to `skipped` (policy `skip_field`).
    Raises `ValueRejected` naming the field and widget when a value cannot be written.
    """
    builder = RowBuilder(mapping, skipped if skipped is not None else [])
    return builder.row(mapping.fields, record, clear)


def update_of(mapping: StreamMapping, row: dict[str, Any], stored: dict[str, Any]) -> dict:
    """`row` as the update of the stored row `stored` (read shape) sends it: keyed subforms
    merged with their stored rows, and a deletion mark lifted (the record is live again)."""
    row = dict(row)
    for field_mapping in mapping.fields:
        name = field_mapping.widget.name
        if field_mapping.key is not None and row.get(name, {}).get("value") is not None:
            row[name] = {
                "value": merge_subform(field_mapping, row[name]["value"], stored.get(name))
            }
    mark = mapping.mark
    if mark is not None and mark.widget.name not in row and mark.on(stored):
        row[mark.widget.name] = {"value": None}
    return row


def up_to_date(mapping: StreamMapping, row: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether the stored row (read shape) already holds every value `row` writes."""
    mark = mapping.mark
    if mark is not None and mark.widget.name in row and mark.on(stored):
        return False  # a deletion mark to lift
    return holds_row(mapping.fields, row, stored, whole=False)


def missing_required(mapping: StreamMapping, row: dict[str, Any], creating: bool) -> str | None:
    """Why `row` would leave a required widget empty (None: it does not).

    A created row must give every required widget a value; an update must not clear one.
    Subform rows count as created unless they carry their `_id`."""
    if not mapping.policy.required:
        return None
    return required_problem(mapping.form.widgets, row, creating, "")


class RowBuilder:
    """Converts one record's values, checking members, departments and options on the way."""

    def __init__(self, mapping: StreamMapping, skipped: list[Skipped]) -> None:
        self.mapping = mapping
        self.tz = mapping.timezone
        self.skipped = skipped

    def row(
        self, mappings: Iterable[FieldMapping], record: dict[str, Any], clear: bool, where: str = ""
    ) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for mapping in mappings:
            if not mapping.carried(record):
                continue  # absent is not null: the widget is left as it is
            value = mapping.value(record)
            widget = mapping.widget
            if is_blank(value):
                if clear:
                    row[widget.name] = {"value": None}
                continue
            label = f"{where}{mapping.source}"
            try:
                if widget.type == "subform":
                    converted = self.subform_rows(mapping, value)
                else:
                    converted = self.value(mapping, value, label)
            except ValueRejected as exc:
                raise exc.within(f"field '{label}' → widget {widget.describe()}") from None
            if converted is not SKIP:
                row[widget.name] = {"value": converted}
        return row

    def subform_rows(self, mapping: FieldMapping, value: Any) -> list[dict]:
        if not isinstance(value, list | tuple):
            raise ValueRejected("a subform takes a list of objects")
        rows = []
        keys: set[Hashable] = set()
        for number, item in enumerate(value, start=1):
            if not isinstance(item, dict):
                raise ValueRejected(f"subform row {number} is not an object")
            try:
                # Keyed rows are merged with the stored ones: a null there must clear.
                row = self.row(
                    mapping.items, item, mapping.key is not None, f"{mapping.source}[{number}]."
                )
            except ValueRejected as exc:
                raise exc.within(f"subform row {number}") from None
            if mapping.key is not None:
                key = row.get(mapping.key.widget.name, {}).get("value")
                if key is None:
                    raise ValueRejected(f"subform row {number} has no key ('{mapping.key.source}')")
                if key_token(key) in keys:
                    raise ValueRejected(f"subform key {key!r} is on two rows")
                keys.add(key_token(key))
            rows.append(row)
        return rows

    def value(self, mapping: FieldMapping, value: Any, label: str) -> Any:
        widget = mapping.widget
        directory = self.mapping.directory
        if directory is not None and widget.type in MEMBER_TYPES | DEPARTMENT_TYPES:
            kind, by, look_up = (
                ("member", mapping.match_by or "username", directory.username)
                if widget.type in MEMBER_TYPES
                else ("department", mapping.match_by or "dept_no", directory.dept_no)
            )
            names = self.names(mapping, value, by)
            return self.known(mapping, label, names, kind, lambda v: look_up(v, by))
        converted = convert(widget.type, value, self.tz)
        if widget.type in OPTION_TYPES and widget.options is not None:
            return self.known(mapping, label, converted, "option", lambda v: _option(v, widget))
        return converted

    def names(self, mapping: FieldMapping, value: Any, by: str) -> Any:
        """The value as the stored kind (usernames, dept_nos), or as text to look up by."""
        if by in ("username", "dept_no"):
            return convert(mapping.widget.type, value, self.tz)
        return convert("checkboxgroup" if mapping.widget.type in MULTIPLE else "text", value)

    def known(
        self, mapping: FieldMapping, label: str, converted: Any, kind: str, look_up: Callable
    ) -> Any:
        """`converted` with the values the API would blank left out (or the record refused)."""
        policy = getattr(self.mapping.policy, kind)
        kept = []
        for one in converted if isinstance(converted, list) else [converted]:
            try:
                kept.append(look_up(one))
            except Unknown as unknown:
                setting = f"on_unknown_{kind}"
                if policy == DEAD_LETTER:
                    raise ValueRejected(
                        f"{unknown} ({setting}: dead_letter)", f"unknown-{kind}"
                    ) from None
                self.skipped.append(
                    Skipped(label, mapping.widget.label, one, str(unknown), setting)
                )
        if isinstance(converted, list):
            return kept if kept or not converted else SKIP
        return kept[0] if kept else SKIP


def _option(text: str, widget: Widget) -> str:
    assert widget.options is not None
    if text not in widget.options:
        raise Unknown(f"{text!r} is not one of the widget's options ({', '.join(widget.options)})")
    return text


def merge_subform(mapping: FieldMapping, new_rows: list[dict], stored: Any) -> list[dict]:
    """The subform rows an update sends: stored rows whose key is still there keep their `_id`
    and the columns the new row does not write; stored rows whose key is gone are dropped;
    new keys are appended. Stored rows without a key (added by hand) or repeating an earlier
    key are kept as they are: no source row is theirs."""
    assert mapping.key is not None
    key = mapping.key.widget.name
    new = {key_token(r[key]["value"]): r for r in new_rows}
    merged: list[dict] = []
    seen: set[Hashable] = set()
    for old in stored if isinstance(stored, list) else []:
        if not isinstance(old, dict) or not old.get("_id"):
            continue
        token = None if old.get(key) in (None, "") else key_token(old[key])
        if token is not None and token not in seen:
            seen.add(token)
            if token not in new:
                continue  # the source no longer has this row
            merged.append({"_id": old["_id"], **_carried(mapping.widget, old), **new[token]})
        else:
            merged.append({"_id": old["_id"], **_carried(mapping.widget, old)})
    merged += [row for token, row in new.items() if token not in seen]
    return merged


def _carried(subform: Widget, stored: dict[str, Any]) -> dict[str, Any]:
    """A stored subform row's values, written back as they are (docs/api/jiandaoyun.md §6.5)."""
    carried = {}
    for item in subform.items:
        value = rewrite(item.type, stored.get(item.name))
        if value is not None:
            carried[item.name] = {"value": value}
    return carried


def holds_row(
    mappings: Iterable[FieldMapping], row: dict[str, Any], stored: dict[str, Any], whole: bool
) -> bool:
    """`whole`: the row replaces everything (a subform row), so a field it leaves out must
    read empty; otherwise a left-out field is not written and not compared."""
    for mapping in mappings:
        widget = mapping.widget
        if widget.name not in row and not whole:
            continue
        written = row.get(widget.name, {}).get("value")
        current = stored.get(widget.name)
        if widget.type != "subform":
            if not holds(widget.type, written, current):
                return False
            continue
        written = written or []
        if not isinstance(current, list) or len(current) != len(written):
            return False
        for new, old in zip(written, current, strict=True):
            if not isinstance(old, dict):
                return False
            if mapping.key is not None:
                # Merged rows: the same rows (by `_id`), each holding what it writes.
                same = new.get("_id") == old.get("_id")
                if not same or not holds_row(mapping.items, new, old, whole=False):
                    return False
            elif not holds_row(mapping.items, new, old, whole=True):
                return False
    return True


def required_problem(
    widgets: Iterable[Widget], row: dict[str, Any], creating: bool, where: str
) -> str | None:
    for widget in widgets:
        written = row.get(widget.name)
        value = None if written is None else written.get("value")
        if widget.required and widget.type not in NOT_WRITABLE:
            empty = value is None or value == [] or value == ""
            if (creating and empty) or (written is not None and empty):
                verb = "has no value" if creating and written is None else "would be emptied"
                return f"required widget {where}{widget.describe()} {verb}"
        if widget.type == "subform" and isinstance(value, list):
            for number, sub in enumerate(value, start=1):
                inner = f"{where}{widget.label or widget.name}[{number}]."
                problem = required_problem(widget.items, sub, "_id" not in sub, inner)
                if problem:
                    return problem
    return None
