"""Source values → Twenty values, checked against the field's type before anything is sent.

A value Twenty would refuse for certain (a stage that is not an option, a text in a number
field, an unknown sub-field) raises `BadValue`, and the record goes to the dead-letter file
without costing the rest of its batch a request. What only the server knows (uniqueness,
relations) is left to it.

Unique keys are canonicalised the way the server compares them, so that a record and the row
someone typed by hand meet: a domain becomes `https://` + the lower-cased host (+ path, no
trailing slash), an email is trimmed and lower-cased.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_kit.bounds import DOUBLE_MAX, shown, within
from connector_kit.datetimes import with_zone
from connector_kit.isotime import fromisoformat
from connector_kit.serialize import jsonable
from target_twenty.metadata import TwentyField

NUMBER_TEXT = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
# Sub-fields that hold numbers; every other known sub-field holds text or a list.
NUMERIC_SUBFIELDS = {"amountMicros": "integer", "addressLat": "number", "addressLng": "number"}
LIST_SUBFIELDS = {"secondaryLinks", "additionalEmails", "additionalPhones"}


class BadValue(ValueError):
    """A value the field cannot hold; the message names the field path and the value."""


def show(value: Any, limit: int = 60) -> str:
    text = repr(jsonable(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def canonical_domain(url: str) -> str:
    """`HTTPS://Acme.com/` and `acme.com` → `https://acme.com` (path kept, no trailing slash)."""
    text = url.strip()
    if not text:
        return ""
    rest = text.split("://", 1)[1] if "://" in text else text
    host, slash, path = rest.partition("/")
    if not host.strip():  # "http://", "/": no domain, not the key "https:" they would all share
        return ""
    return ("https://" + host.lower() + slash + path).rstrip("/")


def canonical_email(email: str) -> str:
    return email.strip().lower()


def convert(f: TwentyField, value: Any, path: str, zone: dt.tzinfo | None = None) -> Any:
    """`value` as Twenty expects it in field `f` (`path` names it in messages; `zone`: the
    `default_timezone` a datetime without an offset is read in)."""
    if value is None:
        return None
    if f.subfields is not None:
        return _composite(f, value, path)
    if f.type == "DATE_TIME":
        return _date_time(value, path, zone)
    converter = SCALARS.get(f.type)
    return converter(f, value, path) if converter else jsonable(value)


def convert_sub(f: TwentyField, sub: str, value: Any, path: str) -> Any:
    """One sub-field of a composite (`domainName.primaryLinkUrl`)."""
    if value is None:
        return None
    kind = NUMERIC_SUBFIELDS.get(sub)
    if kind == "integer":
        return _integer(value, path)
    if kind == "number":
        return _number(None, value, path)
    if sub in LIST_SUBFIELDS:
        if not isinstance(value, list):
            raise BadValue(f"{path} expects a list, got {show(value)}")
        if sub == "additionalEmails":
            return [canonical_email(_text(None, v, path)) for v in value]
        return jsonable(value)
    if f.subfields and sub in f.subfields:
        text = _text(None, value, path)
        if f.type == "EMAILS":
            return canonical_email(text)  # the server lower-cases every email
        if f.type == "LINKS" and f.unique_subfield == sub:
            return canonical_domain(text)
        return text
    return jsonable(value)


def _composite(f: TwentyField, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadValue(f"{path} ({f.type}) expects an object with {', '.join(f.subfields)}")
    unknown = [k for k in value if k not in f.subfields]
    if unknown:
        raise BadValue(
            f"{path} ({f.type}) has no sub-field {unknown[0]!r}; known: {', '.join(f.subfields)}"
        )
    return {k: convert_sub(f, k, v, f"{path}.{k}") for k, v in value.items()}


def _text(f: TwentyField | None, value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(jsonable(value))
    raise BadValue(f"{path} expects a text, got {show(value)}")


def _number(f: TwentyField | None, value: Any, path: str) -> int | float:
    if isinstance(value, bool):
        raise BadValue(f"{path} expects a number, got {show(value)}")
    if isinstance(value, str) and NUMBER_TEXT.match(value):
        value = Decimal(value.strip())
    if isinstance(value, int | float | Decimal):
        # Checked before `jsonable`, which would spend minutes turning 1e2000000 into an int.
        if not within(value, DOUBLE_MAX):  # NaN is no JSON number either
            raise BadValue(f"{path} expects a finite number within ±1.8e308, got {shown(value)}")
        return jsonable(value)
    raise BadValue(f"{path} expects a number, got {show(value)}")


def _integer(value: Any, path: str) -> int:
    number = _number(None, value, path)
    try:
        # Micros: a fraction of a millionth is rounding noise (0.1 * 3 * 1e6), not data.
        return int(Decimal(str(number)).to_integral_value())
    except (InvalidOperation, ValueError, OverflowError):
        raise BadValue(f"{path} expects an integer, got {show(value)}") from None


def _boolean(f: TwentyField, value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise BadValue(f"{path} expects true or false, got {show(value)}")
    return value


def _date_time(value: Any, path: str, zone: dt.tzinfo | None) -> str:
    if isinstance(value, str):
        try:
            value = fromisoformat(value.strip())
        except ValueError:
            raise BadValue(f"{path} expects an ISO 8601 date-time, got {show(value)}") from None
    if not isinstance(value, dt.date):
        raise BadValue(f"{path} expects an ISO 8601 date-time, got {show(value)}")
    try:
        return jsonable(with_zone(value, zone))  # zone-less: default_timezone, else refused
    except ValueError as exc:
        raise BadValue(f"{path}: {exc}") from None


def _date(f: TwentyField, value: Any, path: str) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise BadValue(f"{path} expects an ISO 8601 date, got {show(value)}")


def _select(f: TwentyField, value: Any, path: str) -> str:
    if f.options and value not in f.options:
        raise BadValue(f"{path} expects one of {', '.join(f.options)}, got {show(value)}")
    return value


def _multi_select(f: TwentyField, value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        raise BadValue(f"{path} expects a list of {', '.join(f.options)}, got {show(value)}")
    return [_select(f, item, path) for item in value]


def _uuid(f: TwentyField, value: Any, path: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise BadValue(f"{path} expects a UUID, got {show(value)}") from None


def _json(f: TwentyField, value: Any, path: str) -> Any:
    value = jsonable(value)
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise BadValue(f"{path} holds NaN or an infinity, which JSON cannot carry") from None
    return value


SCALARS = {
    "TEXT": _text,
    "NUMBER": _number,
    "NUMERIC": _number,
    "RATING": _select,
    "BOOLEAN": _boolean,
    "DATE": _date,
    "SELECT": _select,
    "MULTI_SELECT": _multi_select,
    "UUID": _uuid,
    "RELATION": _uuid,
    "RAW_JSON": _json,
    "ARRAY": _json,
}
