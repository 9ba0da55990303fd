"""How both targets read records: JSON lines, schema validation, timestamps.

Each is a faster path than the SDK's own; these tests hold them to the SDK's results.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.exceptions import InvalidInputLine, InvalidRecord
from singer_sdk.sinks.core import JSONSchemaValidator

from connector_kit.sink import PipelinedSink
from connector_kit.target import COMMON_SETTINGS, NumberingReader, PipelinedTarget
from connector_kit.validation import CompiledValidator, compiled_validator

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"], "default": "unnamed"},
        "amount": {"type": ["number", "null"]},
        "seen": {"type": ["string", "null"], "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {
            "type": ["object", "null"],
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    "required": ["id"],
}

RECORDS = [
    {"id": 1, "name": "ok", "amount": Decimal("1.5"), "seen": "2024-01-02T03:04:05+08:00"},
    {"id": 2, "seen": "not a date: formats are not checked, as in the SDK"},
    {"id": 3, "tags": ["a", "b"], "address": {"city": "Shenzhen"}},
    {"id": 4, "extra": "allowed: no additionalProperties"},
    {"id": "5"},
    {"id": True},
    {"id": Decimal("3")},
    {"id": 6, "name": 17},
    {"id": 7, "tags": ["a", 1]},
    {"id": 8, "address": {}},
    {"name": "no id"},
    {"id": 9, "amount": "1.5"},
]


def verdict(validator: Any, record: dict) -> str:
    try:
        validator.validate(record)
    except InvalidRecord as exc:
        return f"refused: {exc.error_message}"
    return "accepted"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: json.dumps(r, default=str)[:40])
def test_the_compiled_validator_gives_the_sdks_verdict_and_message(record: dict) -> None:
    assert verdict(compiled_validator(SCHEMA), record) == verdict(
        JSONSchemaValidator(SCHEMA), record
    )


def test_the_compiled_validator_writes_no_defaults_into_records() -> None:
    record = {"id": 1}
    compiled_validator(SCHEMA).validate(record)
    assert record == {"id": 1}


def test_a_schema_fastjsonschema_cannot_compile_falls_back_to_the_sdks_validator() -> None:
    assert isinstance(compiled_validator(SCHEMA), CompiledValidator)
    odd = {"type": "object", "properties": {"x": {"$ref": "#/definitions/missing"}}}
    assert isinstance(compiled_validator(odd), JSONSchemaValidator)


LINES = [
    '{"type": "RECORD", "record": {"a": 1.50, "b": 1e5, "c": -0, "d": "\\u00e9", "e": [1, 2.0]}}',
    '{"a": 1, "a": 2}',
    '{"x": NaN, "y": Infinity}',
    '{"big": 123456789012345678901234567890}',
    '{"lone": "\\ud800"}',
]


@pytest.mark.parametrize("line", LINES)
def test_lines_read_as_the_sdk_reads_them(line: str) -> None:
    expected = json.loads(line, parse_float=Decimal)
    got = NumberingReader().deserialize_json(line)
    assert json.dumps(got, default=repr) == json.dumps(expected, default=repr)


def test_a_line_that_is_not_json_is_refused_with_its_number() -> None:
    reader = NumberingReader()
    reader.deserialize_json('{"ok": 1}')
    with pytest.raises(InvalidInputLine, match=r"^Unable to parse line 2 of the input as JSON"):
        reader.deserialize_json('{"broken": ')


# Timestamps: a minimal target on our base classes, records kept in memory.
class KeepingSink(PipelinedSink):
    kept: list[dict] = []

    def write_records(self, records: list[dict]) -> None:
        KeepingSink.kept += records


class KeepingTarget(PipelinedTarget):
    name = "target-keeping"
    config_jsonschema = COMMON_SETTINGS.to_dict()
    default_sink_class = KeepingSink


def run_keeping_target(tmp_path: Path, records: list[dict], caplog: Any) -> list[dict]:
    KeepingSink.kept = []
    schema = {"type": "object", "properties": {k: v for k, v in SCHEMA["properties"].items()}}
    lines = [json.dumps({"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": []})]
    lines += [json.dumps({"type": "RECORD", "stream": "s", "record": r}) for r in records]
    target = KeepingTarget(config={"dead_letter_path": str(tmp_path / "dead.jsonl")})
    target.process_lines(lines)
    target.process_endofpipe()
    return KeepingSink.kept


def test_date_time_properties_are_parsed_and_unknown_fields_warned_about_as_in_the_sdk(
    tmp_path: Path, caplog: Any
) -> None:
    kept = run_keeping_target(
        tmp_path,
        [
            {"id": 1, "seen": "2024-01-02T03:04:05+08:00", "name": "a"},
            {"id": 2, "seen": None},
            {"id": 3, "surprise": "x"},
            {"id": 4, "seen": "2024-05-06T07:08:09Z", "surprise": "y"},
        ],
        caplog,
    )
    tz8 = dt.timezone(dt.timedelta(hours=8))
    assert kept[0] == {"id": 1, "seen": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz8), "name": "a"}
    assert kept[1] == {"id": 2, "seen": None}
    assert kept[3]["seen"] == dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    warnings = [
        r.getMessage() for r in caplog.records if "No schema for record field" in r.getMessage()
    ]
    assert warnings == ["No schema for record field 'surprise'"]
