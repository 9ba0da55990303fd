"""OKKI values → the types the stream schemas promise.

OKKI's JSON is loosely typed: times are zone-less strings with "unset" sentinels, ids are
sometimes strings (`"user_id": "55280038,55280040"` on list rows, a list of ints on detail),
amounts may be strings. Walking the schema next to the record turns each value into what the
schema says, so targets get one type per field:

- `format: date-time` → ISO-8601 with the zone's offset; unset (`1970-01-01 00:00:00`, "") → null
- `format: date` → `YYYY-MM-DD`; unset → null
- `integer` / `number` given as a string → the number; "" → null
- an array of integers given as a comma-separated string → the list
"""

from __future__ import annotations

import decimal
from typing import Any
from zoneinfo import ZoneInfo

from tap_okki.times import is_unset, okki_date, okki_time_to_iso


class ConformError(ValueError):
    """A value that cannot take its schema's type; names the field."""


def conform(
    record: dict[str, Any], schema: dict[str, Any], tz: ZoneInfo, path: str = ""
) -> dict[str, Any]:
    """A copy of `record` with the properties `schema` declares, each typed as declared."""
    properties = schema.get("properties", {})
    return {
        name: _value(record.get(name), prop, tz, f"{path}.{name}" if path else name)
        for name, prop in properties.items()
        if name in record
    }


def _value(value: Any, schema: dict[str, Any], tz: ZoneInfo, path: str) -> Any:
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
    except (ValueError, TypeError, decimal.InvalidOperation) as exc:
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
    return int(number)


def _number(value: Any) -> decimal.Decimal | int | None:
    if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and not value.strip():
        return None
    return decimal.Decimal(str(value).strip())


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def _describe(schema: dict[str, Any]) -> str:
    return str(schema.get("format") or "/".join(sorted(_types(schema) - {"null"})) or "value")
