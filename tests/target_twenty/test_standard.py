"""The singer-sdk standard target tests, curated (as MeltanoLabs/target-postgres does), each with a
`validate()` that checks what Twenty — the sandbox — holds afterwards.

The SDK's sample streams (`test_array_data`, `TestCamelcase`, …) are loaded into custom objects
created for them in the workspace, through the `mappings` setting: Twenty names objects and
fields in camelCase, so most sample streams need a mapping, as a real user's would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing import target_tests as sdk
from singer_sdk.testing.runners import TargetTestRunner
from singer_sdk.testing.suites import SingerTestSuite

from connector_kit.target import TooManyFailedRecords
from crm_sandbox.control import RunningSandbox, SandboxClient
from target_twenty.target import TargetTwenty
from tests.target_twenty.conftest import DEFAULT_KNOBS, TIME_SCALE

# Custom objects for the sample streams: plural name → {field: type}.
OBJECTS: dict[str, dict[str, str]] = {
    "arrayData": {"fruits": "RAW_JSON"},
    "camelcaseTests": {"clientName": "TEXT"},
    "forecastingCategories": {
        "isDeleted": "BOOLEAN",
        "createdDate": "DATE_TIME",
        "displayPosition": "NUMBER",
        "forecastingItemCategory": "TEXT",
    },
    "duplicateRecords": {"metric": "NUMBER"},
    "strings": {"info": "TEXT"},
    "stringsInObjects": {"info": "RAW_JSON"},
    "stringsInArrays": {"strings": "RAW_JSON"},
    "noPkRecords": {"sourceId": "NUMBER", "metric": "NUMBER"},
    "optionalAttributes": {"optional": "TEXT"},
    "exampleRecords": {"email": "TEXT"},
    "missingFields": {"optional": "TEXT"},
    "metrics": {"metric": "NUMBER"},
    "objectStores": {"objectStore": "RAW_JSON"},
    "schemaUpdates": {
        "a1": "NUMBER",
        "a2": "TEXT",
        "a3": "BOOLEAN",
        "a4": "RAW_JSON",
        "a5": "RAW_JSON",
        "a6": "NUMBER",
    },
    "specialChars": {"d": "RAW_JSON"},
}
MAPPINGS: dict[str, dict[str, Any]] = {
    "test_array_data": {"object": "arrayData"},
    "TestCamelcase": {"object": "camelcaseTests"},
    "ForecastingTypeToCategory": {
        "object": "forecastingCategories",
        "fields": {
            "isDeleted": "IsDeleted",
            "createdDate": "CreatedDate",
            "displayPosition": "DisplayPosition",
            "forecastingItemCategory": "ForecastingItemCategory",
        },
    },
    "test_duplicate_records": {"object": "duplicateRecords"},
    "test_strings": {"object": "strings"},
    "test_strings_in_objects": {"object": "stringsInObjects"},
    "test_strings_in_arrays": {"object": "stringsInArrays"},
    "test_no_pk": {"object": "noPkRecords", "fields": {"sourceId": "id", "metric": "metric"}},
    "test_optional_attributes": {"object": "optionalAttributes"},
    "example_stream": {"object": "exampleRecords"},
    "record_missing_fields": {"object": "missingFields"},
    "test_record_missing_key_property": {"object": "metrics"},
    "test_record_missing_required_property": {"object": "metrics"},
    "test_multiple_state_messages_a": {"object": "metrics"},
    "test_multiple_state_messages_b": {"object": "metrics"},
    "test_object_schema_with_properties": {
        "object": "objectStores",
        "fields": {"objectStore": "object_store"},
    },
    "test_object_schema_no_properties": {
        "object": "objectStores",
        "fields": {"objectStore": "object_store"},
    },
    "test_schema_updates": {"object": "schemaUpdates"},
    "test:SpecialChars!in?attributes": {"object": "specialChars"},
}


@dataclass
class Workspace:
    """What a standard test's `validate()` reads: the sandbox and the target's files."""

    twenty: SandboxClient
    config: dict[str, Any]

    def rows(self, plural: str) -> list[dict[str, Any]]:
        return [r for r in self.twenty.records()[plural] if r["deletedAt"] is None]

    def dead_letters(self) -> list[dict[str, Any]]:
        path = Path(self.config["dead_letter_path"])
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def standard_workspace(twenty_sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Workspace]:
    twenty = twenty_sandbox.twenty
    twenty.knobs(**DEFAULT_KNOBS)
    twenty.reset()
    for plural, fields in OBJECTS.items():
        twenty.post(
            "metadata/objects",
            {
                "nameSingular": f"{plural}Item",
                "namePlural": plural,
                "fields": [{"name": name, "type": type_} for name, type_ in fields.items()],
            },
        )
    config = {
        "api_key": twenty.credentials["api_key"],
        "base_url": twenty.base_url,
        "rate_limit_window_seconds": 60 / TIME_SCALE,
        "mappings": MAPPINGS,
        "id_map_path": str(tmp_path / "ids.sqlite3"),
        "dead_letter_path": str(tmp_path / "dead-letters.jsonl"),
        "run_report_path": str(tmp_path / "report.jsonl"),
    }
    yield Workspace(twenty, config)
    twenty.reset()


# Curated tests: the SDK's, with `validate()` checking the sandbox ---------------------------


class ArrayData(sdk.TargetArrayData):
    def validate(self) -> None:
        rows = self.resource.rows("arrayData")
        assert sorted(r["fruits"] for r in rows) == sorted(
            [
                ["apple", "orange", "pear"],
                ["banana", "apple"],
                ["pear"],
                ["orange", "banana", "apple", "pear"],
            ]
        )


class CamelcaseComplexSchema(sdk.TargetCamelcaseComplexSchema):
    def validate(self) -> None:
        # Two SCHEMA messages and no record: the mapping was checked, nothing was written.
        assert self.resource.rows("forecastingCategories") == []


class Camelcase(sdk.TargetCamelcaseTest):
    def validate(self) -> None:
        names = sorted(r["clientName"] for r in self.resource.rows("camelcaseTests"))
        assert names == ["Gitter Windows Desktop App", "Gitter iOS App"]


class DuplicateRecords(sdk.TargetDuplicateRecords):
    def validate(self) -> None:
        # Five records, two keys: two rows holding the last version of each (upserted).
        assert sorted(r["metric"] for r in self.resource.rows("duplicateRecords")) == [20, 100]


class EncodedStringData(sdk.TargetEncodedStringData):
    def validate(self) -> None:
        sent = [json.loads(line) for line in self.singer_filepath.read_text().splitlines()]
        by_stream: dict[str, list] = {}
        for message in sent:
            if message["type"] == "RECORD":
                by_stream.setdefault(message["stream"], []).append(message["record"])
        infos = sorted(r["info"] for r in self.resource.rows("strings"))
        assert infos == sorted(r["info"] for r in by_stream["test_strings"])
        objects = sorted(json.dumps(r["info"]) for r in self.resource.rows("stringsInObjects"))
        assert objects == sorted(
            json.dumps(r["info"]) for r in by_stream["test_strings_in_objects"]
        )
        arrays = sorted(json.dumps(r["strings"]) for r in self.resource.rows("stringsInArrays"))
        assert arrays == sorted(
            json.dumps(r["strings"]) for r in by_stream["test_strings_in_arrays"]
        )


class MultipleStateMessages(sdk.TargetMultipleStateMessages):
    """Replaced `test()`: the SDK expects the STATEs it emits at its drains (3 of 6); this
    target emits STATEs once the records before them are written, in order, and of those
    acknowledged by the same batch only the latest (here all six: one batch)."""

    def test(self) -> None:
        self.runner.sync_all()
        sent = [
            json.loads(line)["value"]
            for line in self.singer_filepath.read_text().splitlines()
            if '"STATE"' in line
        ]
        emitted = self.runner.state_messages
        assert emitted == [state for state in sent if state in emitted]  # in order
        assert emitted[-1] == sent[-1]

    def validate(self) -> None:
        assert len(self.resource.rows("metrics")) == 12  # ids 1-6 of both streams


class NoPrimaryKeys(sdk.TargetNoPrimaryKeys):
    def validate(self) -> None:
        rows = self.resource.rows("noPkRecords")
        assert sorted((r["sourceId"], r["metric"]) for r in rows) == [(1, 11), (2, 22), (3, 33)]
        # Without keys a record's id comes from its content: sending it again adds nothing.
        self.runner.sync_all()
        assert len(self.resource.rows("noPkRecords")) == 3


class OptionalAttributes(sdk.TargetOptionalAttributes):
    def validate(self) -> None:
        values = sorted(r["optional"] or "" for r in self.resource.rows("optionalAttributes"))
        assert values == ["", "", "Also optional", "This is optional"]


class PrimaryKeyUpdates(sdk.TargetPrimaryKeyUpdates):
    def validate(self) -> None:
        emails = sorted(r["email"] for r in self.resource.rows("exampleRecords"))
        assert emails == ["alice@example.com", "bob@example.com"]


class RecordMissingKeyProperty(sdk.TargetRecordMissingKeyProperty):
    """Replaced `test()`: the SDK expects `MissingKeyPropertiesError` at once; this target
    dead-letters the record (invariant 12), writes the rest, then fails the run."""

    def test(self) -> None:
        with pytest.raises(TooManyFailedRecords):
            self.runner.sync_all()

    def validate(self) -> None:
        (letter,) = self.resource.dead_letters()
        assert letter["code"] == "missing-key" and letter["record"] == {"metric": 8214}
        assert self.resource.rows("metrics") == []


class RecordMissingRequiredProperty(sdk.TargetRecordMissingRequiredProperty):
    """The record breaks its schema (`id` is required) in a property nothing writes (the
    object's `id` is the target's own): loaded, with one warning, not dead-lettered."""

    def validate(self) -> None:
        assert self.resource.dead_letters() == []
        assert [r["metric"] for r in self.resource.rows("metrics")] == [3215]


class SchemaNoProperties(sdk.TargetSchemaNoProperties):
    def validate(self) -> None:
        stores = sorted(json.dumps(r["objectStore"]) for r in self.resource.rows("objectStores"))
        assert stores == sorted(
            json.dumps({"id": i, "metric": m}) for i, m in [(1, 187), (2, 203), (1, 1), (2, 2)]
        )


class SchemaUpdates(sdk.TargetSchemaUpdates):
    def validate(self) -> None:
        rows = sorted(self.resource.rows("schemaUpdates"), key=lambda r: r["a1"])
        assert [r["a1"] for r in rows] == [101, 102, 103, 104, 105, 106]
        assert rows[5]["a4"] == {"id": 4, "value": 444} and rows[5]["a6"] == 341
        assert rows[0]["a3"] is None and rows[1]["a3"] is True


class SpecialCharsInAttributes(sdk.TargetSpecialCharsInAttributes):
    def validate(self) -> None:
        (row,) = self.resource.rows("specialChars")
        assert row["d"] == {"env": "prod", "agent:type": "desktop", "agent:os:version": "10.13.1"}


class RecordMissingOptionalFields(sdk.TargetRecordMissingOptionalFields):
    def validate(self) -> None:
        values = sorted(r["optional"] or "" for r in self.resource.rows("missingFields"))
        assert values == ["", "now you see me"]


SUITE = SingerTestSuite(
    kind="target",
    tests=[
        ArrayData,
        CamelcaseComplexSchema,
        Camelcase,
        sdk.TargetCliPrintsTest,  # prints --version / --about: nothing to check in Twenty
        DuplicateRecords,
        EncodedStringData,
        sdk.TargetInvalidSchemaTest,  # raises before any sink exists: nothing to check
        MultipleStateMessages,
        NoPrimaryKeys,
        OptionalAttributes,
        PrimaryKeyUpdates,
        sdk.TargetRecordBeforeSchemaTest,  # raises before any sink exists: nothing to check
        RecordMissingKeyProperty,
        RecordMissingRequiredProperty,
        SchemaNoProperties,
        SchemaUpdates,
        SpecialCharsInAttributes,
        RecordMissingOptionalFields,
    ],
)

_StandardTests = get_target_test_class(
    TargetTwenty, config={}, custom_suites=[SUITE], include_target_tests=False
)


class TestTargetTwentyStandard(_StandardTests):  # type: ignore[misc, valid-type]
    """The config points at the sandbox, known only once it runs: the runner is built here."""

    @pytest.fixture
    def resource(self, standard_workspace: Workspace) -> Workspace:
        return standard_workspace

    @pytest.fixture
    def runner(self, standard_workspace: Workspace) -> TargetTestRunner:
        return TargetTestRunner(target_class=TargetTwenty, config=standard_workspace.config)
