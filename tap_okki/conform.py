"""OKKI values → the types the stream schemas promise.

OKKI's JSON is loosely typed: times are zone-less strings with "unset" sentinels, ids are
sometimes strings (`"user_id": "55280038,55280040"` on list rows, a list of ints on detail),
amounts may be strings. Walking the schema next to the record turns each value into what the
schema says, so targets get one type per field:

- `format: date-time` → ISO-8601 with the zone's offset; unset (`1970-01-01 00:00:00`, "") → null
- `format: date` → `YYYY-MM-DD`; unset → null
- `integer` / `number` given as a string → the number; "" → null; a `number` given as "NaN"
  or "Infinity" → null too (JSON has no such numbers)
- an array of integers given as a comma-separated string → the list

`compile_schema` inspects a schema once and returns a converter for its records: each field
gets a fast path for the value type OKKI usually sends; any other value takes the general path
(`_value`), which holds every rule above.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from tap_okki.times import is_unset, okki_date, okki_time_to_iso
from target_kit.bounds import MAX_DIGITS, digits

Converter = Callable[[Any], Any]


class ConformError(ValueError):
    """A value that cannot take its schema's type; names the field."""


def conform(
    record: dict[str, Any], schema: dict[str, Any], tz: ZoneInfo, path: str = ""
) -> dict[str, Any]:
    """A copy of `record` with the properties `schema` declares, each typed as declared."""
    return compile_schema(schema, tz, path)(record)


def compile_schema(
    schema: dict[str, Any], tz: ZoneInfo, path: str = ""
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`conform` for one schema, which is inspected now rather than for every record."""
    fields = [
        (name, _converter(prop, tz, f"{path}.{name}" if path else name))
        for name, prop in schema.get("properties", {}).items()
    ]

    def convert(record: dict[str, Any]) -> dict[str, Any]:
        return {name: field(record[name]) for name, field in fields if name in record}

    return convert


def _converter(schema: dict[str, Any], tz: ZoneInfo, path: str) -> Converter:
    """The converter of one value: its usual types handled here, the rest by `_value`."""
    types = _types(schema)
    fmt = schema.get("format")

    def general(value: Any) -> Any:
        return _value(value, schema, tz, path)

    if fmt in ("date-time", "date"):
        parse = okki_date if fmt == "date" else lambda text: okki_time_to_iso(text, tz)

        def moment(value: Any) -> Any:
            if type(value) is str:
                try:
                    return parse(value)
                except ValueError:
                    pass  # the general path names the field
            return None if value is None else general(value)

        return moment
    if "properties" in schema:
        record = compile_schema(schema, tz, path)

        def convert(value: Any) -> Any:
            return record(value) if type(value) is dict else general(value)

    else:
        # Values that already have a type the schema allows stay as they are.
        kept = {str} if "string" in types else set()
        kept |= {int} if types & {"integer", "number"} else set()
        kept |= {decimal.Decimal} if "number" in types else set()

        def convert(value: Any) -> Any:
            return value if type(value) in kept or value is None else general(value)

    if "array" in types:
        return _array_or(convert, schema, tz, path)
    return convert


def _array_or(other: Converter, schema: dict[str, Any], tz: ZoneInfo, path: str) -> Converter:
    """Lists item by item; anything else by `other`."""
    item = _converter(schema.get("items", {}), tz, f"{path}[]")

    def array(value: Any) -> Any:
        return [item(each) for each in value] if type(value) is list else other(value)

    return array


def _value(value: Any, schema: dict[str, Any], tz: ZoneInfo, path: str) -> Any:
    """The general path: any value under any schema."""
    if value is None:
        return None
    types = _types(schema)
    try:
        if schema.get("format") == "date-time":
            return okki_time_to_iso(value, tz)
        if schema.get("format") == "date":
            return okki_date(value)
        if isinstance(value, dict):
            return conform(value, schema, tz, path) if "properties" in schema else value
        if isinstance(value, list) or ("array" in types and not _scalar_fits(value, types)):
            return _array(value, schema, tz, path)
        if isinstance(value, str) and "string" not in types:
            return _integer(value) if "integer" in types else _number(value)
        if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
            if "integer" in types and "number" not in types:
                return _integer(value)
            if not types & {"integer", "number"} and "string" in types:
                return str(value)
    except ConformError:
        raise
    except (ValueError, TypeError, OverflowError, decimal.InvalidOperation) as exc:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ConformError(f"field '{path}': {shown} is not a valid {_describe(schema)}") from exc
    return value


def _scalar_fits(value: Any, types: set[str]) -> bool:
    """Whether a scalar can stay a scalar under a schema that also allows an array."""
    if isinstance(value, str):
        return "string" in types
    return bool(types & {"integer", "number", "boolean"})


def _array(value: Any, schema: dict[str, Any], tz: ZoneInfo, path: str) -> list[Any]:
    items = schema.get("items", {})
    if isinstance(value, str):  # OKKI's comma-separated id lists
        if is_unset(value):
            return []
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        value = [value]
    return [_value(item, items, tz, f"{path}[]") for item in value]


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
        return value
    if isinstance(value, str) and not value.strip():
        return None
    number = decimal.Decimal(str(value).strip())
    return number if number.is_finite() else None


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def _describe(schema: dict[str, Any]) -> str:
    return str(schema.get("format") or "/".join(sorted(_types(schema) - {"null"})) or "value")
