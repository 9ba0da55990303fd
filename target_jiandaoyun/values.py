"""Source values → the value a Jiandaoyun widget accepts, by widget type.

Value formats: docs/api/jiandaoyun.md §7.

Jiandaoyun does not refuse a value of the wrong type: it saves it as empty. So every value is
converted here, and one that cannot be converted *exactly* raises `ValueRejected`; its record
goes to the dead-letter file with the reason instead of being blanked in the form.

Rules worth knowing (the README repeats them):
- `None` and blank strings mean "no value": the field is left out of the row, never sent.
- Datetimes are written as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` (Jiandaoyun keeps milliseconds). A
  datetime or date without a time zone is read in `default_timezone`; without that setting it
  is rejected, because guessing shifts it by hours (Jiandaoyun reads naive strings as UTC+8).
  Numbers are not accepted as datetimes: seconds and milliseconds cannot be told apart.
- Numbers must survive the trip through a JSON double (15–17 significant digits); numeric text
  such as "12.50" is accepted, other text is not.
- Text widgets take text, numbers and booleans (as "true"/"false"); a textarea also takes an
  object or a list, written as JSON.
- Option widgets take option texts (numbers become their text); multi-option widgets take a list
  of them. Whether a text is one of the widget's options, and whether a username or dept_no is
  in the company directory, is checked by the mapping (mapping.py, directory.py), not here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Hashable
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_kit.bounds import MAX_DIGITS, digits, shown, within
from connector_kit.datetimes import with_zone
from connector_kit.isotime import fromisoformat
from connector_kit.serialize import jsonable

# Widgets the API refuses to write (§7.2); mapping a field to one is a setting error.
NOT_WRITABLE = frozenset({"sn", "linkdata", "signature", "aggregation"})
# Widgets whose values must be in the company directory, or among the widget's options.
MEMBER_TYPES = frozenset({"user", "usergroup"})
DEPARTMENT_TYPES = frozenset({"dept", "deptgroup"})
OPTION_TYPES = frozenset({"radiogroup", "combo", "checkboxgroup", "combocheck"})
MULTIPLE = frozenset({"usergroup", "deptgroup", "checkboxgroup", "combocheck"})

_ADDRESS_KEYS = ("province", "city", "district", "detail")
_MAX_SAFE_INTEGER = 2**53  # a JSON number is a double on Jiandaoyun's side


class ValueRejected(ValueError):
    """The value cannot be written to its widget without changing it.

    `code` goes to the dead-letter file: "value" for a value of the wrong kind,
    "unknown-member", "unknown-department" or "unknown-option" for one the API would blank.
    """

    def __init__(self, message: str, code: str = "value") -> None:
        super().__init__(message)
        self.code = code

    def within(self, where: str) -> ValueRejected:
        """The same rejection, its message prefixed with where it happened."""
        return ValueRejected(f"{where}: {self}", self.code)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# Text ------------------------------------------------------------------------------------------
def _text(value: Any, tz: dt.tzinfo | None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return _number_text(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise ValueRejected(f"{_kind(value)} is not text")


def _textarea(value: Any, tz: dt.tzinfo | None) -> str:
    if isinstance(value, dict | list):
        try:
            return json.dumps(jsonable(value), ensure_ascii=False, allow_nan=False)
        except (ValueError, ArithmeticError):
            raise ValueRejected("the object or list holds a number that is not finite") from None
    return _text(value, tz)


def _number_text(value: int | Decimal | float) -> str:
    if digits(value) > MAX_DIGITS:  # checked before writing out 1e200000's 200,001 digits
        raise ValueRejected(f"{shown(value)} has more than {MAX_DIGITS} digits")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueRejected(f"{value} is not a finite number")
        return format(value, "f")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueRejected(f"{value} is not a finite number")
    return str(value)


# Numbers ---------------------------------------------------------------------------------------
def _number(value: Any, tz: dt.tzinfo | None) -> int | float:
    if isinstance(value, bool):
        raise ValueRejected("a boolean is not a number")
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueRejected(f"text {value!r} is not a number") from None
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise ValueRejected(f"{value} is too large to be stored exactly (over 2^53)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueRejected(f"{value} is not a finite number")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueRejected(f"{value} is not a finite number")
        if value == value.to_integral_value() and within(value, _MAX_SAFE_INTEGER):
            return int(value)
        as_float = float(value)
        if not math.isfinite(as_float) or Decimal(repr(as_float)) != value:
            raise ValueRejected(
                f"{value} has more digits than a Jiandaoyun number keeps (about 15 significant)"
            )
        return as_float
    raise ValueRejected(f"{_kind(value)} is not a number")


# Datetimes -------------------------------------------------------------------------------------
def _datetime(value: Any, tz: dt.tzinfo | None) -> str:
    if isinstance(value, str):
        try:
            value = fromisoformat(value.strip())
        except ValueError:
            raise ValueRejected(f"text {value!r} is not an ISO-8601 date or datetime") from None
    elif not isinstance(value, dt.date):
        raise ValueRejected(
            f"{_kind(value)} is not a datetime (epoch numbers are ambiguous: send ISO-8601 text)"
        )
    try:
        value = with_zone(value, tz)  # zone-less: read in default_timezone, else refused
    except ValueError as exc:
        raise ValueRejected(str(exc)) from None
    try:
        utc = value.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        raise ValueRejected(f"datetime {value.isoformat()} is out of range") from None
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# Options ---------------------------------------------------------------------------------------
def _option(value: Any, tz: dt.tzinfo | None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return _number_text(value)
    raise ValueRejected(f"{_kind(value)} is not an option text")


def _options(value: Any, tz: dt.tzinfo | None) -> list[str]:
    if not isinstance(value, list | tuple):
        raise ValueRejected(f"{_kind(value)} is not a list of option texts")
    try:
        return [_option(item, tz) for item in value]
    except ValueRejected as exc:
        raise ValueRejected(f"list of option texts: {exc}") from None


# Structured widgets ----------------------------------------------------------------------------
def _address(value: Any, tz: dt.tzinfo | None) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueRejected(
            f"{_kind(value)} is not an address object {{province, city, district, detail}}"
        )
    unknown = sorted(set(value) - set(_ADDRESS_KEYS))
    if unknown:
        raise ValueRejected(f"address has keys {unknown}; only {list(_ADDRESS_KEYS)} are allowed")
    address = {}
    for key in _ADDRESS_KEYS:
        part = value.get(key)
        if is_blank(part):
            continue
        if not isinstance(part, str):
            raise ValueRejected(f"address {key} is {_kind(part)}, not text")
        address[key] = part
    return address


def _phone(value: Any, tz: dt.tzinfo | None) -> dict[str, str]:
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"phone", "verified"})  # "verified" is the read shape
        if unknown:
            raise ValueRejected(f"phone object has keys {unknown}; only 'phone' is written")
        value = value.get("phone")
    if not isinstance(value, str) or not value.strip():
        raise ValueRejected(
            f"{_kind(value)} is not a phone number as text (numbers lose leading zeros)"
        )
    return {"phone": value}


def _user(value: Any, tz: dt.tzinfo | None) -> str:
    if isinstance(value, dict):  # the read shape {name, username, …}
        value = value.get("username")
    if not isinstance(value, str) or not value.strip():
        raise ValueRejected(f"{_kind(value)} is not a member username")
    return value


def _dept(value: Any, tz: dt.tzinfo | None) -> int:
    if isinstance(value, dict):  # the read shape {name, dept_no, …}
        value = value.get("dept_no")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueRejected(f"{_kind(value)} is not a department number (dept_no)")


def _list_of(convert: Callable[[Any, dt.tzinfo | None], Any], what: str) -> Callable:
    def convert_list(value: Any, tz: dt.tzinfo | None) -> list:
        if not isinstance(value, list | tuple):
            raise ValueRejected(f"{_kind(value)} is not a list of {what}")
        return [convert(item, tz) for item in value]

    return convert_list


#: widget type → converter. `subform` is converted row by row by the mapping (it needs the
#: mapping of the subform's own fields).
CONVERTERS: dict[str, Callable[[Any, dt.tzinfo | None], Any]] = {
    "text": _text,
    "textarea": _textarea,
    "number": _number,
    "datetime": _datetime,
    "radiogroup": _option,
    "combo": _option,
    "checkboxgroup": _options,
    "combocheck": _options,
    "address": _address,
    "phone": _phone,
    "user": _user,
    "dept": _dept,
    "usergroup": _list_of(_user, "member usernames"),
    "deptgroup": _list_of(_dept, "department numbers"),
}

WRITABLE = frozenset({*CONVERTERS, "subform"})


def convert(widget_type: str, value: Any, tz: dt.tzinfo | None = None) -> Any:
    """The write value for a widget of `widget_type` (call only for non-blank values)."""
    return CONVERTERS[widget_type](value, tz)


# Carrying a stored value over -----------------------------------------------------------------
def rewrite(widget_type: str, stored: Any) -> Any:
    """The write value that keeps `stored` (as data/list reads it) as it is; None when it is
    empty or cannot be written back (§7.4). For subform columns that an
    update would otherwise empty (§6.5)."""
    if stored in EMPTY_READS:
        return None
    if widget_type in ("user", "dept"):
        value = _members(stored, "username" if widget_type == "user" else "dept_no")
        return value if value not in EMPTY_READS else None
    if widget_type in ("usergroup", "deptgroup"):
        values = _members(stored, "username" if widget_type == "usergroup" else "dept_no")
        return values if isinstance(values, list) and None not in values else None
    if widget_type == "phone":
        return (
            {"phone": stored["phone"]} if isinstance(stored, dict) and stored.get("phone") else None
        )
    if widget_type == "address":
        kept = (
            {k: v for k, v in stored.items() if k in _ADDRESS_KEYS and v}
            if isinstance(stored, dict)
            else {}
        )
        return kept or None
    if widget_type in CONVERTERS:
        return stored  # text, numbers, datetimes and options read as they are written
    return None  # images, attachments, …: no write shape to give back


# Comparing with what the form holds ----------------------------------------------------------
def key_token(value: Any) -> Hashable:
    """A key as compared with what data/list returns (numbers compared by value)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return ("number", Decimal(str(value)).normalize())
    return ("text", str(value))


EMPTY_READS = (None, "", [], {})  # how a field without a value reads, by widget type


def holds(widget_type: str, written: Any, stored: Any) -> bool:
    """Whether `stored` (as data/list reads it) already is the value `written` would set.

    Strict on purpose: whatever this cannot confirm counts as different, so the row is
    updated; only a needless update can result, never a skipped one.
    """
    if written is None:
        return stored in EMPTY_READS
    if widget_type == "datetime":
        return _instant(stored) is not None and _instant(stored) == _instant(written)
    if widget_type == "number":
        return _is_number(stored) and stored == written
    if widget_type == "address":
        return isinstance(stored, dict) and {k: v for k, v in stored.items() if v} == written
    if widget_type == "phone":
        return isinstance(stored, dict) and stored.get("phone") == written["phone"]
    if widget_type in ("user", "usergroup"):
        return _members(stored, "username") == written
    if widget_type in ("dept", "deptgroup"):
        return _members(stored, "dept_no") == written
    return type(stored) is type(written) and stored == written


def _instant(value: Any) -> dt.datetime | None:
    try:
        return fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _members(stored: Any, key: str) -> Any:
    """The usernames / dept_nos of the read shape (objects), one or a list."""
    if isinstance(stored, list):
        return [item.get(key) if isinstance(item, dict) else item for item in stored]
    return stored.get(key) if isinstance(stored, dict) else stored


def _kind(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {shown!r}"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, int | float | Decimal):
        return f"number {value}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
