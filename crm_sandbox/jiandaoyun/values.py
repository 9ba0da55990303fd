"""Written values: unwrap `{"value": …}`, check the type, store the read shape.

The rules are those of docs/api/jiandaoyun.md §7.

What counts as valid, per widget type (anything else is saved as the type's empty value and
reported as an `Issue`, never rejected, as upstream does):

- text, textarea, radiogroup, combo: a string.
- number: a JSON number (not a string, not a boolean, finite).
- datetime: `YYYY-MM-DDTHH:MM[:SS[.ffffff]]Z` (UTC), or integer epoch milliseconds ≥ 10^11.
  Read back as `"2018-01-01T10:10:10.000Z"`.
- checkboxgroup, combocheck: a list of strings.
- address: an object whose keys are among province, city, district, detail; string values.
- phone: `{"phone": "<string>"}`, read back as `{"phone": …, "verified": false}`.
- radiogroup, combo, checkboxgroup, combocheck of a form that lists the widget's `options`:
  only those texts (a list holding any other text is saved empty whole).
- user: the username of a member of the directory (directory.py), read back as the member
  object.
- dept: a `dept_no` of the directory, as a number or a string of digits, read back as the
  department object.
- subform: a list of rows, each an object of wrapped item values, checked the same way; read
  back with a `_id` per row.

Naive or offset datetime strings ("2024-01-01 10:00:00", "…+08:00") are wrong: the contract
forbids naive strings and the project writes UTC `Z` only. A number below 10^11 is taken for
epoch seconds (or 0), which upstream rejects. `{"value": null}` is valid for every type and
clears the field. A value not wrapped as `{"value": …}` is saved as empty; an unknown name, a
system field and a non-writable widget (`READ_ONLY_TYPES`) are ignored. A subform row may carry
its `_id` (bare or wrapped) to keep it on update; any other row gets a new id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sandbox.jiandaoyun.directory import (  # noqa: F401 (re-exported for tests)
    COMPANY_CREATOR,
    DEPARTMENTS,
    MEMBERS,
    department,
    member,
)

READ_ONLY_TYPES = frozenset({"sn", "linkdata", "signature", "aggregation"})
SYSTEM_FIELDS = frozenset(
    {"_id", "appId", "entryId", "creator", "updater", "deleter"}
    | {"createTime", "updateTime", "deleteTime", "flowState"}
)
OPTION_TYPES = frozenset({"radiogroup", "combo", "checkboxgroup", "combocheck"})

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_MS_MIN = 10**11  # 1973-03-03; smaller numbers are epoch seconds or 0
EPOCH_MS_MAX = 253_402_300_800_000  # year 10000
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z")
ADDRESS_KEYS = frozenset({"province", "city", "district", "detail"})


@dataclass
class Issue:
    """A written value the sandbox did not keep as sent."""

    field: str
    value: Any
    reason: str
    ignored: bool = False  # True: not written at all; False: saved as the empty value


class Wrong(ValueError):
    """A value of the wrong type (the message says what was expected)."""


def format_time(moment: datetime) -> str:
    """A datetime as the API reads it: UTC, milliseconds, `Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise Wrong("expected a string")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Wrong("expected a JSON number")
    return value


def _datetime(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not EPOCH_MS_MIN <= value < EPOCH_MS_MAX:
            raise Wrong("epoch value out of range: expected milliseconds")
        return format_time(EPOCH + timedelta(milliseconds=value))
    if isinstance(value, str) and ISO_UTC.fullmatch(value):
        try:
            return format_time(datetime.fromisoformat(value))
        except ValueError:
            pass  # e.g. month 13
    raise Wrong("expected an ISO-8601 UTC string ending in Z, or epoch milliseconds")


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Wrong("expected a list of strings")
    return list(value)


def _address(value: Any) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or not set(value) <= ADDRESS_KEYS
        or not all(isinstance(v, str) for v in value.values())
    ):
        raise Wrong("expected {province, city, district, detail} strings")
    return dict(value)


def _phone(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {"phone"}:
        raise Wrong('expected {"phone": "<string>"}')
    if not isinstance(value["phone"], str):
        raise Wrong('expected {"phone": "<string>"}')
    return {"phone": value["phone"], "verified": False}


def _user(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        raise Wrong("expected a member username")
    if value not in MEMBERS:
        raise Wrong("no member with this username")
    return member(value)


def _dept(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Wrong("expected a dept_no")
    if value not in DEPARTMENTS:
        raise Wrong("no department with this dept_no")
    return department(value)


def _among_options(widget: dict[str, Any], value: str | list[str]) -> None:
    options = widget.get("options")
    if options is None:
        return  # a form that does not list the options takes any text
    for text in value if isinstance(value, list) else [value]:
        if text and text not in options:
            raise Wrong(f"{text!r} is not one of the widget's options")


CHECKERS: dict[str, Callable[[Any], Any]] = {
    "text": _string,
    "textarea": _string,
    "radiogroup": _string,
    "combo": _string,
    "number": _number,
    "datetime": _datetime,
    "checkboxgroup": _strings,
    "combocheck": _strings,
    "address": _address,
    "phone": _phone,
    "user": _user,
    "dept": _dept,
}
WRITABLE_TYPES = frozenset(CHECKERS) | {"subform"}


def empty(kind: str) -> Any:
    """The value a field of this type reads as when nothing (valid) was written."""
    if kind in ("text", "textarea", "radiogroup", "combo", "sn"):
        return ""
    if kind in ("checkboxgroup", "combocheck", "subform"):
        return []
    if kind in ("address", "phone"):
        return {}
    return None  # number, datetime, user, dept, linkdata, signature, aggregation


def write_row(
    widgets: list[dict[str, Any]],
    data: dict[str, Any],
    new_id: Callable[[], str],
    old: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Issue]]:
    """Check one written row: the values to store (by widget id) and what was not kept.

    `old` is the stored row an update applies to: its subform rows keep their ids when the
    written rows name them.
    """
    by_name = {w["name"]: w for w in widgets}
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    for name, wrapped in data.items():
        widget = by_name.get(name)
        if widget is None:
            reason = "system field is not writable" if name in SYSTEM_FIELDS else "unknown field"
            issues.append(Issue(name, wrapped, reason, ignored=True))
            continue
        kind, key = widget["type"], widget["widgetName"]
        if kind in READ_ONLY_TYPES:
            issues.append(Issue(name, wrapped, f"a {kind} widget is not writable", ignored=True))
            continue
        if not isinstance(wrapped, dict) or "value" not in wrapped:
            issues.append(Issue(name, wrapped, 'not wrapped as {"value": …}'))
            values[key] = empty(kind)
            continue
        value = wrapped["value"]
        if kind == "subform":
            old_rows = (old or {}).get(key) or []
            values[key] = _subform(widget, value, new_id, old_rows, issues)
            continue
        try:
            values[key] = empty(kind) if value is None else CHECKERS[kind](value)
            if value is not None and kind in OPTION_TYPES:
                _among_options(widget, values[key])
        except Wrong as wrong:
            issues.append(Issue(name, value, str(wrong)))
            values[key] = empty(kind)
    return values, issues


def _subform(
    widget: dict[str, Any],
    value: Any,
    new_id: Callable[[], str],
    old_rows: list[dict[str, Any]],
    issues: list[Issue],
) -> list[dict[str, Any]]:
    name = widget["name"]
    if value is None:
        return []
    if not isinstance(value, list):
        issues.append(Issue(name, value, "expected a list of subform rows"))
        return []
    reusable = {row["_id"] for row in old_rows}
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            issues.append(Issue(f"{name}[{i}]", row, "a subform row must be an object"))
            continue
        cells = dict(row)
        given = cells.pop("_id", None)
        if isinstance(given, dict):
            given = given.get("value")
        stored, row_issues = write_row(widget["items"], cells, new_id)
        issues.extend(
            Issue(f"{name}[{i}].{x.field}", x.value, x.reason, x.ignored) for x in row_issues
        )
        row_id = given if given in reusable else new_id()
        reusable.discard(row_id)  # two rows naming the same _id: the second gets a new one
        blank = {item["widgetName"]: empty(item["type"]) for item in widget["items"]}
        rows.append({"_id": row_id, **blank, **stored})
    return rows


def render(widgets: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """Stored values (by widget id) in read shape: by `name`, every widget present."""
    out: dict[str, Any] = {}
    for widget in widgets:
        value = values.get(widget["widgetName"], empty(widget["type"]))
        if widget["type"] == "subform":
            value = [{"_id": row["_id"], **render(widget["items"], row)} for row in value]
        out[widget["name"]] = value
    return out
