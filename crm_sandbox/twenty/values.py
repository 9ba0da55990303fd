"""Checking and normalising written values, field type by field type (docs/api/twenty.md §2).

Every problem raises a 400 naming the object, the field (and sub-field) and the value, e.g.
`Invalid value for company.employees (NUMBER): expected a number, got "120".` Emails are
lower-cased and URLs get a lower-case origin without trailing slash, as the server stores them.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from crm_sandbox.twenty.errors import ApiError, bad_request, show
from crm_sandbox.twenty.schema import (
    COMPOSITES,
    INTEGER,
    JSON_OBJECT,
    LINK_LIST,
    NUMBER,
    PHONE_LIST,
    STRINGS,
    TEXT,
    UNIQUE_SUBFIELD,
    Field,
    ObjectType,
    SubField,
)

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class Problem(ValueError):
    """Why a value does not fit; `sub` names the composite sub-field at fault."""

    def __init__(self, message: str, sub: str | None = None) -> None:
        super().__init__(message)
        self.sub = sub


def check_record(obj: ObjectType, record: Any) -> dict[str, Any]:
    """The stored form of each key a client wrote: field names and join columns (`companyId`)."""
    if not isinstance(record, dict):
        raise bad_request(f"Each {obj.singular} record must be a JSON object, got {show(record)}.")
    columns = obj.columns()
    values = {}
    for key, value in record.items():
        f = columns.get(key)
        if f is None:
            raise bad_request(_unknown_key(obj, key))
        if f.read_only:
            raise bad_request(f'Field "{key}" of object {obj.singular} is read-only.')
        values[key] = check_value(obj, f, value)
    return values


def _unknown_key(obj: ObjectType, key: str) -> str:
    message = f'Object {obj.singular} doesn\'t have any "{key}" field.'
    f = obj.fields.get(key)
    if f and f.join_column:
        message += f' Write the relation through its join column "{f.join_column}".'
    elif f and f.relation:
        message += (
            f" It is the one-to-many side of a relation: set"
            f' "{f.relation.inverse}Id" on the {f.relation.target} records instead.'
        )
    return message


def check_value(obj: ObjectType, f: Field, value: Any) -> Any:
    """`value` as stored in field `f`, or a 400 saying what is wrong with it."""
    try:
        if value is None:
            return _null(f)
        if f.type in COMPOSITES:
            return _composite(f.type, value)
        return SCALARS[f.type](f, value)
    except Problem as problem:
        path = f"{obj.singular}.{f.join_column or f.name}" + (
            f".{problem.sub}" if problem.sub else ""
        )
        raise ApiError(400, f"Invalid value for {path} ({f.type}): {problem}.") from None


def _null(f: Field) -> Any:
    # Upstream stores a null composite as its empty sub-fields; a non-nullable field takes its
    # default, and only a non-nullable field without one refuses null.
    if f.type in COMPOSITES or (not f.nullable and f.default is not None):
        return default_value(f)
    if not f.nullable:
        raise Problem("cannot be null")
    return None


def default_value(f: Field) -> Any:
    """What a new record holds in `f` when the client does not write it."""
    if f.type in COMPOSITES:
        return {name: copy.deepcopy(sub.default) for name, sub in COMPOSITES[f.type].items()}
    return copy.deepcopy(f.default)


# Scalars ----------------------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise Problem(f"expected a string, got {show(value)}")
    return value


def _as_number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Problem(f"expected a number, got {show(value)}")
    return value


def _boolean(f: Field, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Problem(f"expected true or false, got {show(value)}")
    return value


def _uuid(f: Field, value: Any) -> str:
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise Problem(f"expected a UUID, got {show(value)}")
    return value.lower()


def _date_time(f: Field, value: Any) -> str:
    parsed = parse_date_time(value)
    if parsed is None:
        raise Problem(f"expected an ISO 8601 date-time, got {show(value)}")
    return parsed


def parse_date_time(value: Any) -> str | None:
    """An ISO 8601 string as the server returns it (`2025-03-01T09:30:00.000Z`), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:  # Postgres reads a zone-less timestamptz as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _date(f: Field, value: Any) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise Problem(f"expected an ISO 8601 date (YYYY-MM-DD), got {show(value)}") from None


def _select(f: Field, value: Any) -> str:
    if value not in f.options:
        raise Problem(f"expected one of {', '.join(f.options)}, got {show(value)}")
    return value


def _multi_select(f: Field, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise Problem(f"expected a list of options ({', '.join(f.options)}), got {show(value)}")
    return [_select(f, item) for item in value]


def _raw_json(f: Field, value: Any) -> Any:
    if not isinstance(value, dict | list):
        raise Problem(f"expected a JSON object or array, got {show(value)}")
    return value


SCALARS: dict[str, Callable[[Field, Any], Any]] = {
    "UUID": _uuid,
    "RELATION": _uuid,  # a join column holds the related record's id
    "TEXT": lambda f, value: _as_text(value),
    "NUMBER": lambda f, value: _as_number(value),
    "POSITION": lambda f, value: _as_number(value),
    "BOOLEAN": _boolean,
    "DATE_TIME": _date_time,
    "DATE": _date,
    "SELECT": _select,
    "MULTI_SELECT": _multi_select,
    "RAW_JSON": _raw_json,
}


# Composites -------------------------------------------------------------------------------------


def _composite(type_: str, value: Any) -> dict[str, Any]:
    subs = COMPOSITES[type_]
    if not isinstance(value, dict):
        raise Problem(f"expected an object with {', '.join(subs)}, got {show(value)}")
    for name in value:
        if name not in subs:
            raise Problem(f'unknown sub-field "{name}"; known: {", ".join(subs)}')
    stored = {}
    for name, sub in subs.items():
        raw = value.get(name)
        try:
            stored[name] = copy.deepcopy(sub.default) if raw is None else _sub_value(sub, raw)
        except Problem as problem:
            raise Problem(str(problem), sub=name) from None
    if type_ == "EMAILS":
        stored["primaryEmail"] = stored["primaryEmail"].lower()
        stored["additionalEmails"] = [email.lower() for email in stored["additionalEmails"]]
    if type_ == "LINKS":
        stored["primaryLinkUrl"] = normalise_url(stored["primaryLinkUrl"])
        for link in stored["secondaryLinks"]:
            link["url"] = normalise_url(link["url"])
    return stored


def _sub_value(sub: SubField, value: Any) -> Any:
    if sub.kind == TEXT:
        text = _as_text(value)
        if text and sub.pattern and not re.fullmatch(sub.pattern, text):
            raise Problem(f"expected {sub.hint}, got {show(value)}")
        return text
    if sub.kind == NUMBER:
        return _as_number(value)
    if sub.kind == INTEGER:
        number = _as_number(value)
        if number != int(number):
            raise Problem(f"expected an integer, got {show(value)}")
        return int(number)
    if sub.kind == STRINGS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Problem(f"expected a list of strings, got {show(value)}")
        return list(value)
    if sub.kind == LINK_LIST:
        return _object_list(value, ("url", "label"))
    if sub.kind == PHONE_LIST:
        return _object_list(value, ("number", "countryCode", "callingCode"))
    if sub.kind == JSON_OBJECT and isinstance(value, dict):
        return value
    raise Problem(f"expected an object, got {show(value)}")


def _object_list(value: Any, keys: tuple[str, ...]) -> list[dict[str, str]]:
    shape = "{" + ", ".join(keys) + "}"
    if not isinstance(value, list):
        raise Problem(f"expected a list of {shape}, got {show(value)}")
    items = []
    for item in value:
        ok = isinstance(item, dict) and set(item) <= set(keys)
        if not ok or not all(isinstance(v, str | None) for v in item.values()):
            raise Problem(f"expected a list of {shape} with string values, got {show(item)}")
        items.append({k: item.get(k) or "" for k in keys})
    return items


def normalise_url(url: str) -> str:
    """Lower-case the origin and drop trailing slashes; never add a scheme (§2)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    host, slash, path = rest.partition("/")
    return ((scheme + separator + host).lower() + slash + path).rstrip("/")


def unique_key(f: Field, stored: Any) -> Any:
    """What upsert and uniqueness compare for field `f`; None when the value is empty."""
    sub = UNIQUE_SUBFIELD.get(f.type)
    if sub:
        stored = (stored or {}).get(sub)
    return None if stored in (None, "") else stored
