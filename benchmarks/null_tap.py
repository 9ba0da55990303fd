"""A singer-sdk tap that emits records read from files: the framework's own cost of conforming
and writing records (the floor the CPU benchmark compares tap-okki with).

Config: `{"streams": {"<name>": {"path": "<records.jsonl>", "schema": {...},
"key_properties": [...]}}}`: one JSON record per line, as another tap emitted them.

    .venv/bin/python benchmarks/null_tap.py --config config.json > output.singer
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

ANY_JSON = {
    "type": ["array", "object", "string", "number", "integer", "boolean", "null"],
    "items": {},
}


def walkable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its open properties (`{}`: any JSON, passed through) as the union of
    every JSON type: the SDK's conformance passes those values through too, but raises on a
    property that declares no type."""
    if "properties" in schema:
        schema = {
            **schema,
            "properties": {
                name: ANY_JSON
                if not prop.keys() & {"type", "format", "properties"}
                else walkable(prop)
                for name, prop in schema["properties"].items()
            },
        }
    if isinstance(schema.get("items"), dict) and schema["items"]:
        schema = {**schema, "items": walkable(schema["items"])}
    return schema


class FileStream(Stream):
    def __init__(self, tap: Tap, name: str, spec: dict[str, Any]) -> None:
        super().__init__(tap, schema=walkable(spec["schema"]), name=name)
        self.primary_keys = spec.get("key_properties") or []
        self.path = spec["path"]

    def get_records(self, context: dict | None) -> Iterable[dict]:
        with open(self.path, encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)


class NullTap(Tap):
    name = "tap-null"
    config_jsonschema = th.PropertiesList(
        th.Property("streams", th.ObjectType(), required=True)
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [FileStream(self, name, spec) for name, spec in self.config["streams"].items()]


if __name__ == "__main__":
    NullTap.cli()
