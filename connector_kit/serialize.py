"""JSON in and out: text parsed as the SDK parses it, and what the SDK puts in records (Decimal,
datetime, date) turned into JSON values."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import msgspec

from connector_kit.bounds import MAX_DIGITS
from connector_kit.files import private_file

_FAST = msgspec.json.Decoder(float_hook=Decimal)


def parse_json(text: str | bytes) -> Any:
    """JSON as the SDK reads it (numbers with a fraction as Decimal) at msgspec's speed; what
    msgspec refuses but Python's json accepts (NaN, lone surrogates) goes to json, as in the SDK.
    Raises `json.JSONDecodeError` (a ValueError) for text that is not JSON."""
    try:
        return _FAST.decode(text)
    except msgspec.DecodeError:
        pass
    return json.loads(text, parse_float=Decimal)


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        whole = value.is_finite() and value == value.to_integral_value()
        if whole and value.adjusted() >= MAX_DIGITS:
            # No JSON writer here takes an int this long, and building it takes seconds to
            # minutes (1e200000): its own text keeps it, for a dead letter or a text field.
            return str(value)
        return int(value) if whole else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))


def open_jsonl(path: Path) -> TextIO:
    """Open a JSON Lines file for appending (created 0600), on a fresh line: a run killed
    mid-write may have left half a line, which must not swallow the next run's first one."""
    private_file(path)  # it holds records: personal data
    file = path.open("a", encoding="utf-8")
    if file.tell() > 0:
        with path.open("rb") as existing:
            existing.seek(-1, 2)
            if existing.read(1) != b"\n":
                file.write("\n")
    return file
