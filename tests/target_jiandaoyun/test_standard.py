"""The singer-sdk standard target tests, curated (as MeltanoLabs/target-postgres does).

Each SDK test stream gets a form of its own in the sandbox, whose widgets carry the stream's
property names as aliases, so the target maps them without a `fields` setting (streams with a
key upsert on it). Every kept test has a `validate()` that reads the form back: the SDK's own
tests only prove that the target did not crash. Excluded or replaced tests say why.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.runners import TargetTestRunner
from singer_sdk.testing.suites import SingerTestSuite
from singer_sdk.testing.target_tests import (
    TargetArrayData,
    TargetCamelcaseComplexSchema,
    TargetCamelcaseTest,
    TargetCliPrintsTest,
    TargetDuplicateRecords,
    TargetEncodedStringData,
    TargetInvalidSchemaTest,
    TargetNoPrimaryKeys,
    TargetOptionalAttributes,
    TargetPrimaryKeyUpdates,
    TargetRecordBeforeSchemaTest,
    TargetRecordMissingKeyProperty,
    TargetRecordMissingOptionalFields,
    TargetRecordMissingRequiredProperty,
    TargetSchemaNoProperties,
    TargetSchemaUpdates,
    TargetSpecialCharsInAttributes,
)
from singer_sdk.testing.templates import TargetFileTestTemplate

from connector_kit.target import TooManyFailedRecords
from crm_sandbox.control import SandboxClient
from target_jiandaoyun.target import TargetJiandaoyun
from tests.target_jiandaoyun.conftest import TIME_SCALE, read_jsonl

# Stream → property → widget type; the key widget is the stream's key property.
FORMS: dict[str, dict[str, str]] = {
    "test_array_data": {"id": "number", "fruits": "checkboxgroup"},
    "TestCamelcase": {"Id": "text", "clientName": "text"},
    "ForecastingTypeToCategory": {
        "Id": "text",
        "IsDeleted": "text",
        "CreatedDate": "datetime",
        "ForecastingItemCategory": "text",
        "DisplayPosition": "number",
    },
    "test_duplicate_records": {"id": "number", "metric": "number"},
    "test_strings": {"id": "number", "info": "textarea"},
    "test_strings_in_objects": {"id": "number", "info": "textarea"},
    "test_strings_in_arrays": {"id": "number", "strings": "checkboxgroup"},
    "test_invalid_schema": {"id": "number"},
    "test_no_pk": {"id": "number", "metric": "number"},
    "test_optional_attributes": {"id": "number", "optional": "text"},
    "test_record_before_schema": {"id": "number", "metric": "number"},
    "test_record_missing_key_property": {"id": "number", "metric": "number"},
    "test_record_missing_required_property": {"id": "number", "metric": "number"},
    "test_object_schema_with_properties": {"object_store": "textarea"},
    "test_object_schema_no_properties": {"object_store": "textarea"},
    "test_schema_updates": {
        "id": "number",
        "a1": "number",
        "a2": "text",
        "a3": "text",
        "a4": "textarea",
        "a5": "checkboxgroup",
    },
    "example_stream": {"id": "number", "name": "text", "email": "text"},
    "test:SpecialChars!in?attributes": {"_id": "text", "d": "textarea"},
    "record_missing_fields": {"id": "number", "optional": "text"},
    "test_multiple_state_messages_a": {"id": "number", "metric": "number"},
    "test_multiple_state_messages_b": {"id": "number", "metric": "number"},
}
KEYS = {"TestCamelcase": "Id", "ForecastingTypeToCategory": "Id"}
APPEND_ONLY = {"test_no_pk", "example_stream", "test_object_schema_with_properties"}
APPEND_ONLY |= {"test_object_schema_no_properties", "test:SpecialChars!in?attributes"}
APPEND_ONLY |= {"test_record_missing_required_property"}


def widgets(properties: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for n, (prop, kind) in enumerate(properties.items(), start=1):
        # `_id` is a system field's name: such a property matches its widget by label.
        alias = prop if not prop.startswith("_") else f"p{prop}"
        out.append(
            {"name": alias, "widgetName": f"_widget_17{n:011d}", "label": prop, "type": kind}
        )
    return out


@pytest.fixture
def standard_runner(jdy: SandboxClient, tmp_path: Path) -> Iterator[TargetTestRunner]:
    """A runner whose config maps every SDK test stream to a fresh, empty form."""
    app = f"std_{uuid.uuid4().hex[:8]}"
    forms: dict[str, Any] = {}
    for stream, properties in FORMS.items():
        entry = f"e{len(forms)}"
        jdy.post(
            "forms",
            {"app_id": app, "entry_id": entry, "name": stream, "widgets": widgets(properties)},
        )
        forms[stream] = {"app_id": app, "entry_id": entry}
        if stream not in APPEND_ONLY:
            forms[stream]["key_widget"] = KEYS.get(stream, "id")
    config = {
        "api_key": jdy.credentials["api_key"],
        "base_url": jdy.base_url,
        "forms": forms,
        "default_timezone": "UTC",
        "batch_requests_per_second": 10 * TIME_SCALE,
        "single_write_requests_per_second": 20 * TIME_SCALE,
        "read_requests_per_second": 30 * TIME_SCALE,
        "company_requests_per_second": 50 * TIME_SCALE,
        "dead_letter_path": str(tmp_path / "dead-letters.jsonl"),
    }
    runner = TargetTestRunner(TargetJiandaoyun, config=config)
    runner.jdy = jdy  # type: ignore[attr-defined]
    runner.app = app  # type: ignore[attr-defined]
    runner.dead_letter_path = tmp_path / "dead-letters.jsonl"  # type: ignore[attr-defined]
    yield runner


class Validated:
    """Mixed into an SDK test: read what the target wrote to the sandbox."""

    runner: TargetTestRunner

    def rows(self, stream: str) -> list[dict[str, Any]]:
        entry = f"e{list(FORMS).index(stream)}"
        return self.runner.jdy.records()["forms"][f"{self.runner.app}/{entry}"]  # type: ignore[attr-defined]

    def values(self, stream: str, *names: str) -> list[tuple]:
        return sorted(tuple(row[n] for n in names) for row in self.rows(stream))


class ArrayData(Validated, TargetArrayData):
    def validate(self) -> None:
        assert self.values("test_array_data", "id", "fruits") == [
            (1, ["apple", "orange", "pear"]),
            (2, ["banana", "apple"]),
            (3, ["pear"]),
            (4, ["orange", "banana", "apple", "pear"]),
        ]


class Camelcase(Validated, TargetCamelcaseTest):
    def validate(self) -> None:
        assert self.values("TestCamelcase", "Id", "clientName") == [
            ("1", "Gitter Windows Desktop App"),
            ("2", "Gitter iOS App"),
        ]


class CamelcaseComplexSchema(Validated, TargetCamelcaseComplexSchema):
    def validate(self) -> None:
        assert self.rows("ForecastingTypeToCategory") == []  # two SCHEMA messages, no record


class DuplicateRecords(Validated, TargetDuplicateRecords):
    def validate(self) -> None:
        # Upsert on the key: one row per id, the last record wins.
        assert self.values("test_duplicate_records", "id", "metric") == [(1, 100), (2, 20)]


class EncodedStringData(Validated, TargetEncodedStringData):
    def validate(self) -> None:
        source = self.singer_filepath.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in source if '"RECORD"' in line]
        by_stream: dict[str, list[dict]] = {}
        for message in records:
            by_stream.setdefault(message["stream"], []).append(message["record"])
        assert self.values("test_strings", "id", "info") == [
            (r["id"], r["info"]) for r in by_stream["test_strings"]
        ]
        objects = self.values("test_strings_in_objects", "id", "info")
        assert [(i, json.loads(text)) for i, text in objects] == [
            (r["id"], r["info"]) for r in by_stream["test_strings_in_objects"]
        ]
        assert self.values("test_strings_in_arrays", "id", "strings") == [
            (r["id"], r["strings"]) for r in by_stream["test_strings_in_arrays"]
        ]


class NoPrimaryKeys(Validated, TargetNoPrimaryKeys):
    def validate(self) -> None:
        assert self.values("test_no_pk", "id", "metric") == [(1, 11), (2, 22), (3, 33)]


class OptionalAttributes(Validated, TargetOptionalAttributes):
    def validate(self) -> None:
        assert self.values("test_optional_attributes", "id", "optional") == [
            (1, "This is optional"),
            (2, ""),
            (3, "Also optional"),
            (4, ""),
        ]


class PrimaryKeyUpdates(Validated, TargetPrimaryKeyUpdates):
    def validate(self) -> None:
        assert self.values("example_stream", "id", "email") == [
            (1, "alice@example.com"),
            (2, "bob@example.com"),
        ]


class RecordMissingOptionalFields(Validated, TargetRecordMissingOptionalFields):
    def validate(self) -> None:
        assert self.values("record_missing_fields", "id", "optional") == [
            (1, "now you see me"),
            (2, ""),
        ]


class SchemaNoProperties(Validated, TargetSchemaNoProperties):
    def validate(self) -> None:
        for stream in ("test_object_schema_with_properties", "test_object_schema_no_properties"):
            stored = sorted(
                json.loads(text)["id"] for (text,) in self.values(stream, "object_store")
            )
            assert stored == [1, 2]


class SchemaUpdates(Validated, TargetSchemaUpdates):
    def validate(self) -> None:
        rows = self.values("test_schema_updates", "id", "a1", "a3", "a5")
        assert [r[:2] for r in rows] == [(i, 100 + i) for i in range(1, 7)]
        assert rows[1][2:] == ("true", [])  # a5 arrives with a later schema
        assert rows[5][2:] == ("true", ["banana", "orange"])


class SpecialCharsInAttributes(Validated, TargetSpecialCharsInAttributes):
    def validate(self) -> None:
        [(record_id, d)] = self.values("test:SpecialChars!in?attributes", "p_id", "d")
        assert record_id == "a2e98886" and json.loads(d)["agent:os:version"] == "10.13.1"


class RecordMissingKeyPropertyIsDeadLettered(Validated, TargetRecordMissingKeyProperty):
    """Replaces the SDK test, which expects `MissingKeyPropertiesError` to stop the run: our
    targets dead-letter such a record with the reason (invariant 12) and exit non-zero."""

    def test(self) -> None:
        with pytest.raises(TooManyFailedRecords):
            TargetFileTestTemplate.test(self)

    def validate(self) -> None:
        [letter] = read_jsonl(self.runner.dead_letter_path)  # type: ignore[attr-defined]
        assert "key properties ['id'] are missing" in letter["reason"]
        assert self.rows("test_record_missing_key_property") == []


class RecordMissingRequiredPropertyIsDeadLettered(Validated, TargetRecordMissingRequiredProperty):
    """Not in the SDK's default suite; a record that breaks its schema is dead-lettered."""

    def test(self) -> None:
        with pytest.raises(TooManyFailedRecords):
            TargetFileTestTemplate.test(self)

    def validate(self) -> None:
        [letter] = read_jsonl(self.runner.dead_letter_path)  # type: ignore[attr-defined]
        assert letter["code"] == "schema" and "'id' is a required property" in letter["reason"]


class EveryStateMessageInOrder(TargetFileTestTemplate):
    """Replaces `TargetMultipleStateMessages` (left out of the SDK's default suite, "TODO: fix
    behavior in SDK"), which expects the SDK's drain schedule to drop some STATEs: our targets
    write STATEs once the records before them are written, in order, and of those acknowledged
    by the same batch only the latest (here all six: one batch)."""

    name = "multiple_state_messages"

    def validate(self) -> None:
        source = self.singer_filepath.read_text(encoding="utf-8").splitlines()
        states = [json.loads(line)["value"] for line in source if '"STATE"' in line]
        emitted = self.runner.state_messages
        assert emitted == [state for state in states if state in emitted]  # in order
        assert emitted[-1] == states[-1]


standard_suite = SingerTestSuite(
    kind="target",
    tests=[
        TargetCliPrintsTest,  # no records: nothing to validate
        ArrayData,
        Camelcase,
        CamelcaseComplexSchema,
        DuplicateRecords,
        EncodedStringData,
        TargetInvalidSchemaTest,  # kept as is: expects the run to fail
        NoPrimaryKeys,
        OptionalAttributes,
        PrimaryKeyUpdates,
        TargetRecordBeforeSchemaTest,  # kept as is: expects RecordsWithoutSchemaException
        RecordMissingOptionalFields,
        SchemaNoProperties,
        SchemaUpdates,
        SpecialCharsInAttributes,
        RecordMissingKeyPropertyIsDeadLettered,
        RecordMissingRequiredPropertyIsDeadLettered,
        EveryStateMessageInOrder,
    ],
)

_Standard = get_target_test_class(
    TargetJiandaoyun,
    config={},  # replaced per test by `standard_runner`, which knows the sandbox's address
    custom_suites=[standard_suite],
    include_target_tests=False,
)


class TestTargetJiandaoyunStandard(_Standard):  # type: ignore[misc, valid-type]
    @pytest.fixture
    def runner(self, standard_runner: TargetTestRunner) -> TargetTestRunner:
        return standard_runner
