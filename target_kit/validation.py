"""Record validation at compiled speed, with the SDK's verdicts and messages.

The SDK validates each record with `jsonschema`, which walks the schema anew for every record:
a fifth of a target's CPU. `fastjsonschema` compiles the schema to Python code once and checks
a valid record several times faster. It answers only the first question (valid or not); when it
says no, the SDK's validator decides and words the error, so a record is refused exactly when
the SDK would refuse it, with the SDK's message.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator


class CompiledValidator(BaseJSONSchemaValidator):
    def __init__(self, schema: dict[str, Any]) -> None:
        super().__init__(schema)
        self.reference = JSONSchemaValidator(schema)  # checks the schema itself, too
        # String formats are not checked (the SDK's default): `use_formats=False`. Defaults
        # must not be written into records: `use_default=False`.
        self.check = fastjsonschema.compile(schema, use_default=False, use_formats=False)

    def validate(self, record: dict) -> None:
        try:
            self.check(record)
        except fastjsonschema.JsonSchemaValueException:
            self.reference.validate(record)  # raises InvalidRecord unless the SDK accepts it


def compiled_validator(schema: dict[str, Any]) -> BaseJSONSchemaValidator:
    """A `CompiledValidator`, or the SDK's own for a schema fastjsonschema cannot compile."""
    try:
        return CompiledValidator(schema)
    except fastjsonschema.JsonSchemaException:
        return JSONSchemaValidator(schema)
