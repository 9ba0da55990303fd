"""`data/list` filters (docs/api/jiandaoyun.md §5.1, §5.2), applied to rows in read shape.

`{"rel": "and"|"or", "cond": [{"field", "type", "method", "value": [...]}]}`. Methods: `eq`,
`ne`, `in`, `nin` (at most 200 values), `empty`, `not_empty`, and `range` (`[low, high]`, either
null, inclusive; numbers and datetimes). A condition compares a field's read value; for `user`
it is the username, for `dept` the dept_no, for `phone` the number. On list fields
(checkboxgroup, combocheck) `eq`/`ne` compare the set of options and `in`/`nin` ask whether any
option is among the values. The condition's `type` is not checked: the field's own type decides.
Anything else is an invalid filter, code 4815.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MAX_IN_VALUES = 200
LIST_KINDS = frozenset({"checkboxgroup", "combocheck"})
METHODS = frozenset({"eq", "ne", "in", "nin", "empty", "not_empty", "range"})
# System fields a filter may name, with the type their values compare as.
SYSTEM_FILTER_FIELDS = {
    "_id": "text",
    "creator": "user",
    "updater": "user",
    "createTime": "datetime",
    "updateTime": "datetime",
}

Row = dict[str, Any]


class FilterError(ValueError):
    """The filter cannot be applied (the message says why)."""


def compile_filter(spec: Any, widgets: list[dict[str, Any]]) -> Callable[[Row], bool]:
    """A predicate over read-shape rows; raise FilterError when `spec` is invalid."""
    if spec is None or spec == {}:
        return lambda row: True
    if not isinstance(spec, dict):
        raise FilterError("filter must be an object")
    rel, cond = spec.get("rel", "and"), spec.get("cond", [])
    if rel not in ("and", "or"):
        raise FilterError('filter rel must be "and" or "or"')
    if not isinstance(cond, list):
        raise FilterError("filter cond must be a list")
    kinds = {w["name"]: w["type"] for w in widgets} | SYSTEM_FILTER_FIELDS
    tests = [_condition(c, kinds) for c in cond]
    if not tests:
        return lambda row: True
    combine = all if rel == "and" else any
    return lambda row: combine(test(row) for test in tests)


def _condition(cond: Any, kinds: dict[str, str]) -> Callable[[Row], bool]:
    if not isinstance(cond, dict):
        raise FilterError("each filter condition must be an object")
    field, method, values = cond.get("field"), cond.get("method"), cond.get("value", [])
    if field not in kinds:
        raise FilterError(f"unknown filter field {field!r}")
    kind = kinds[field]
    if kind == "subform":
        raise FilterError(f"a subform ({field}) cannot be filtered")
    if method not in METHODS:
        raise FilterError(f"filter method {method!r} is not one of {sorted(METHODS)}")
    if method in ("empty", "not_empty"):
        want_empty = method == "empty"
        return lambda row: _is_empty(row.get(field)) == want_empty
    if not isinstance(values, list):
        raise FilterError(f"filter value of {field} must be a list")
    if method in ("in", "nin") and len(values) > MAX_IN_VALUES:
        raise FilterError(f"{method} takes at most {MAX_IN_VALUES} values, got {len(values)}")
    if method in ("eq", "ne") and not values:
        raise FilterError(f"{method} on {field} needs a value")
    if method == "range":
        return _range(field, kind, values)
    if method in ("eq", "ne") and kind not in LIST_KINDS:
        values = values[:1]
    wanted = {_key(kind, v) for v in values}

    def test(row: Row) -> bool:
        value = row.get(field)
        if kind not in LIST_KINDS:
            return _row_key(kind, value) in wanted
        options = set(value or [])
        return options == wanted if method in ("eq", "ne") else bool(options & wanted)

    negate = method in ("ne", "nin")
    return lambda row: test(row) != negate


def _range(field: str, kind: str, values: list[Any]) -> Callable[[Row], bool]:
    if kind not in ("number", "datetime") or len(values) != 2:
        raise FilterError(f"range needs [low, high] on a number or datetime field ({field})")
    low, high = (None if v is None else _key(kind, v) for v in values)

    def test(row: Row) -> bool:
        value = _row_key(kind, row.get(field))
        if value is None:
            return False
        return (low is None or value >= low) and (high is None or value <= high)

    return test


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _row_key(kind: str, value: Any) -> Any:
    """A stored read value as conditions compare it."""
    if _is_empty(value):
        return None
    if isinstance(value, dict):
        value = value.get("username", value.get("dept_no", value.get("phone")))
    return _key(kind, value)


def _key(kind: str, value: Any) -> Any:
    """A filter value normalised for comparison with `_row_key`."""
    try:
        if kind == "number":
            return float(value)
        if kind == "dept":
            return int(value)
        if kind == "datetime":
            return _moment(value)
    except (TypeError, ValueError) as exc:
        raise FilterError(f"{value!r} is not a valid {kind} filter value") from exc
    if isinstance(value, dict | list):
        raise FilterError(f"{value!r} is not a valid {kind} filter value")
    return value


def _moment(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    moment = datetime.fromisoformat(value)  # TypeError when not a string
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
