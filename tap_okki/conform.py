"""OKKI values → the types the stream schemas promise, keeping what cannot be converted.

OKKI's JSON is loosely typed (docs/api/okki.md §10): times are zone-less strings with "unset"
sentinels, ids are sometimes strings (`"user_id": "55280038,55280040"` on list rows, a list of
ints on detail), amounts may be strings, and many fields have no fixed shape at all. Walking the
schema next to the record turns each value into what the schema says, so targets get one type
per field:

- a property with an empty schema (`{}`, an *open* field) → passed on exactly as OKKI sent it
- `format: date-time` → ISO-8601 with the zone's offset; unset (`1970-01-01 00:00:00`, "") → null
- `format: date` → `YYYY-MM-DD`; unset → null
- `integer` / `number` given as a string → the number; "" → null; a `number` given as "NaN"
  or "Infinity" → null too (JSON has no such numbers); `true`/`false` → 1/0
- `string` given as a number or a boolean → its JSON text
- an array of integers given as a comma-separated string, or as one value → the list

A value that none of these rules can convert (`"1,234.50"` for a number, a time in an unknown
layout, an object where a string belongs) never fails the record: the nearest enclosing property
whose schema allows null becomes null, and the original value is kept under `_okki_unconverted`,
keyed by its path (`"customers[2].birth"`). Only a property that allows no null (a stream's key)
raises `ConformError`.

`compile_schema` inspects a schema once and returns a converter for its records: each field
gets a fast path for the value type OKKI usually sends; any other value takes the general path
(`_value`), which holds every rule above. A record in which some value cannot be converted is
walked again carefully (`_walk`), which notes each such value with its path; that is rare, so
the fast path carries no bookkeeping.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from connector_kit.bounds import MAX_DIGITS, digits
from tap_okki.times import is_unset, okki_date, okki_time_to_iso

UNCONVERTED = "_okki_unconverted"  # {"<field path>": <original value>}, declared in every schema
Converter = Callable[[Any], Any]
Unconverted = dict[str, Any]


class ConformError(ValueError):
    """A value that cannot take its schema's type; names the field."""

    def __init__(self, path: str, value: Any, expected: str) -> None:
        self.path, self.value, self.expected = path, value, expected
        super().__init__(f"field '{path}': {_shown(value)} is not a valid {expected}")


def conform(
    record: dict[str, Any], schema: dict[str, Any], tz: ZoneInfo, path: str = ""
) -> dict[str, Any]:
    """A copy of `record` with the properties `schema` declares, each typed as declared."""
    return compile_schema(schema, tz, path)(record)


def compile_schema(
    schema: dict[str, Any], tz: ZoneInfo, path: str = ""
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`conform` for one schema, which is inspected now rather than for every record."""
    fast = _compile_object(schema, tz, path)

    def convert(record: dict[str, Any]) -> dict[str, Any]:
        try:
            return fast(record)
        except ConformError:
            return walk(record, schema, tz, path)

    return convert


def walk(
    record: dict[str, Any], schema: dict[str, Any], tz: ZoneInfo, path: str = ""
) -> dict[str, Any]:
    """The careful conversion of a record: what `compile_schema` gives, by the general rules.

    The values it could not convert go under `_okki_unconverted` when the schema declares it
    (every tap-okki stream that types OKKI's values does). Raises ConformError only for a
    property that allows no null (a key).
    """
    unconverted: Unconverted = {}
    converted = _object(record, schema, tz, path, unconverted)
    if unconverted and UNCONVERTED in schema.get("properties", {}):
        converted[UNCONVERTED] = unconverted
    return converted


# The fast path ------------------------------------------------------------------------------------
def _compile_object(
    schema: dict[str, Any], tz: ZoneInfo, path: str
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    fields = [
        (name, _converter(prop, tz, _join(path, name)))
        for name, prop in schema.get("properties", {}).items()
        if name != UNCONVERTED  # ours to fill, never OKKI's
    ]

    def convert(record: dict[str, Any]) -> dict[str, Any]:
        return {name: field(record[name]) for name, field in fields if name in record}

    return convert


def _converter(schema: dict[str, Any], tz: ZoneInfo, path: str) -> Converter:
    """The converter of one value: its usual types handled here, the rest by `_value`.

    Raises ConformError for any value the general path cannot convert either.
    """
    if _is_open(schema):
        return _same
    types = _types(schema)
    fmt = schema.get("format")

    def general(value: Any) -> Any:
        return _value(value, schema, tz, path, None)

    if fmt in ("date-time", "date"):
        parse = okki_date if fmt == "date" else lambda text: okki_time_to_iso(text, tz)

        def convert(value: Any) -> Any:
            if type(value) is str:
                try:
                    return parse(value)
                except ValueError:
                    pass  # the general path names the field
            return None if value is None else general(value)

    elif "properties" in schema:
        record = _compile_object(schema, tz, path)

        def convert(value: Any) -> Any:
            return record(value) if type(value) is dict else general(value)

    else:
        # Values that already have a type the schema allows stay as they are.
        kept = {str} if "string" in types else set()
        kept |= {int} if types & {"integer", "number"} else set()
        kept |= {decimal.Decimal} if "number" in types else set()

        def convert(value: Any) -> Any:
            return value if type(value) in kept or value is None else general(value)

    if "array" in types and not fmt:
        convert = _array_or(convert, schema, tz, path)
    if "null" not in types:
        return _never_null(convert, schema, path)
    return convert


def _never_null(convert: Converter, schema: dict[str, Any], path: str) -> Converter:
    """A key or a list item that allows no null: nothing usable (null, "") is no value."""

    def required(value: Any) -> Any:
        converted = convert(value)
        if converted is None:
            raise ConformError(path, value, _describe(schema))
        return converted

    return required


def _array_or(other: Converter, schema: dict[str, Any], tz: ZoneInfo, path: str) -> Converter:
    """Lists item by item; anything else by `other`."""
    item = _converter(schema.get("items", {}), tz, f"{path}[]")

    def array(value: Any) -> Any:
        return [item(each) for each in value] if type(value) is list else other(value)

    return array


def _same(value: Any) -> Any:
    return value


# The general path ---------------------------------------------------------------------------------
def _walk(
    value: Any, schema: dict[str, Any], tz: ZoneInfo, path: str, unconverted: Unconverted | None
) -> Any:
    """`_value`, except that with `unconverted` given, a value that cannot be converted where
    null is allowed becomes null and is noted there (replacing notes about its parts)."""
    if unconverted is None:
        return _value(value, schema, tz, path, None)
    try:
        return _value(value, schema, tz, path, unconverted)
    except ConformError:
        if "null" not in _types(schema):
            raise  # the enclosing property takes the null, or a key stops the run
        for noted in [p for p in unconverted if p.startswith((f"{path}.", f"{path}["))]:
            del unconverted[noted]
        unconverted[path] = value
        return None


def _value(
    value: Any, schema: dict[str, Any], tz: ZoneInfo, path: str, unconverted: Unconverted | None
) -> Any:
    """Any value under any schema; ConformError when no rule converts it."""
    if _is_open(schema):
        return value
    converted = _converted(value, schema, tz, path, unconverted)
    if converted is None and "null" not in _types(schema):
        raise ConformError(path, value, _describe(schema))
    return converted


def _converted(
    value: Any, schema: dict[str, Any], tz: ZoneInfo, path: str, unconverted: Unconverted | None
) -> Any:
    if value is None:
        return None
    types = _types(schema)
    fmt = schema.get("format")
    try:
        if fmt == "date-time":
            return okki_time_to_iso(_text(value), tz)
        if fmt == "date":
            return okki_date(_text(value))
        if isinstance(value, dict):
            if "properties" in schema:
                return _object(value, schema, tz, path, unconverted)
            if "object" in types:
                return value
        elif isinstance(value, list) or ("array" in types and not _scalar_fits(value, types)):
            if "array" in types:
                return _array(value, schema, tz, path, unconverted)
        elif isinstance(value, bool):
            if types & {"integer", "number"}:
                return int(value)
            if "string" in types:
                return "true" if value else "false"
        elif isinstance(value, str):
            if "string" in types:
                return value
            if "integer" in types:
                return _integer(value)
            if "number" in types:
                return _number(value)
        elif isinstance(value, (int, float, decimal.Decimal)):
            if "integer" in types and "number" not in types:
                return _integer(value)
            if "number" in types:
                return _number(value)
            if "string" in types:
                return str(value)
    except ConformError:
        raise
    except (ValueError, TypeError, OverflowError, decimal.InvalidOperation) as exc:
        raise ConformError(path, value, _describe(schema)) from exc
    raise ConformError(path, value, _describe(schema))


def _object(
    record: dict[str, Any],
    schema: dict[str, Any],
    tz: ZoneInfo,
    path: str,
    unconverted: Unconverted | None,
) -> dict[str, Any]:
    return {
        name: _walk(record[name], prop, tz, _join(path, name), unconverted)
        for name, prop in schema["properties"].items()
        if name in record and name != UNCONVERTED
    }


def _array(
    value: Any, schema: dict[str, Any], tz: ZoneInfo, path: str, unconverted: Unconverted | None
) -> list[Any]:
    items = schema.get("items", {})
    if not isinstance(value, list):
        # Positions in a list made here would point nowhere in what OKKI sent: a part that
        # cannot be converted fails the whole value, kept as sent.
        unconverted = None
        if isinstance(value, str):  # OKKI's comma-separated id lists
            if is_unset(value):
                return []
            value = [part.strip() for part in value.split(",") if part.strip()]
        else:
            value = [value]
    return [
        _walk(item, items, tz, f"{path}[{index}]", unconverted) for index, item in enumerate(value)
    ]


def _scalar_fits(value: Any, types: set[str]) -> bool:
    """Whether a scalar can stay a scalar under a schema that also allows an array."""
    if isinstance(value, str):
        return "string" in types
    return bool(types & {"integer", "number", "boolean"})


def _text(value: Any) -> str:
    """Times and dates come as text; anything else is no time."""
    if isinstance(value, str):
        return value
    raise TypeError(f"{type(value).__name__} is no time")


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and not value.strip():
        return None
    number = decimal.Decimal(str(value).strip())
    if number != number.to_integral_value():
        raise ValueError("not a whole number")
    if digits(number) > MAX_DIGITS:  # before int() spends minutes on 1e2000000
        raise ValueError(f"more than {MAX_DIGITS} digits")
    return int(number)


def _number(value: Any) -> decimal.Decimal | int | None:
    if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
        return value if not isinstance(value, decimal.Decimal) or value.is_finite() else None
    if isinstance(value, str) and not value.strip():
        return None
    number = decimal.Decimal(str(value).strip())
    return number if number.is_finite() else None


def _is_open(schema: dict[str, Any]) -> bool:
    """An open field (docs/api/okki.md §10): any JSON, passed on unchanged."""
    return not schema.keys() & {"type", "format", "properties", "items"}


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def _describe(schema: dict[str, Any]) -> str:
    return str(schema.get("format") or "/".join(sorted(_types(schema) - {"null"})) or "value")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
