"""Record validation at compiled speed, with the SDK's verdicts and messages.

The SDK validates each record with `jsonschema`, which walks the schema anew for every record:
a fifth of a target's CPU. `fastjsonschema` compiles the schema to Python code once and checks
a valid record several times faster. It answers only the first question (valid or not); when it
says no, the SDK's validator decides and words the error, so a record is refused exactly when
the SDK would refuse it, with the SDK's message.

An incoming schema is the tap's text: both validators would follow a `$ref` to an `http://` URL
or a `file://` path (fetching it, reading it). `check_references` refuses any reference that
does not point inside the schema itself (`#/…`) before either validator sees it, and
fastjsonschema is given handlers that refuse to fetch, should a reference still lead outside.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fastjsonschema
from singer_sdk.exceptions import InvalidJSONSchema
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def check_references(schema: Any, stream: str) -> None:
    """Refuse a schema holding a reference to anything outside it (`InvalidJSONSchema`)."""
    for reference in _references(schema):
        if not (isinstance(reference, str) and reference.startswith("#")):
            raise InvalidJSONSchema(
                f"Stream '{stream}': the schema refers to {reference!r}; only references "
                "inside the schema itself ('#/…') are followed, never a URL or a file. Inline "
                "the referenced schema (or its definitions under '$defs') in the tap's SCHEMA."
            )


def _references(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in REFERENCE_KEYWORDS:
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _never_fetch(uri: str) -> Any:
    raise InvalidJSONSchema(f"the schema refers to {uri!r}, outside itself: not fetched")


# fastjsonschema fetches with urllib for any scheme it has no handler for: these are the ones
# urllib opens.
NO_FETCHING = dict.fromkeys(("http", "https", "file", "ftp", "data"), _never_fetch)


class CompiledValidator(BaseJSONSchemaValidator):
    def __init__(self, schema: dict[str, Any]) -> None:
        super().__init__(schema)
        self.reference = JSONSchemaValidator(schema)  # checks the schema itself, too
        # String formats are not checked (the SDK's default): `use_formats=False`. Defaults
        # must not be written into records: `use_default=False`.
        self.check = fastjsonschema.compile(
            schema, handlers=NO_FETCHING, use_default=False, use_formats=False
        )

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


def violations(validator: BaseJSONSchemaValidator, record: dict) -> list[tuple[str, str]]:
    """Every way `record` breaks its schema, as (top-level property, message) pairs.

    The property is "" for a problem of the record as a whole. A missing required property is
    that property's problem.
    """
    reference = getattr(validator, "reference", validator)
    checker = getattr(reference, "validator", None)
    if checker is None:  # a validator without jsonschema underneath: one problem, unplaced
        try:
            validator.validate(record)
        except Exception as exc:  # whatever it raises is the verdict
            return [("", str(getattr(exc, "error_message", exc)))]
        return []
    found = []
    for error in checker.iter_errors(record):
        path = list(error.absolute_path)
        if path:
            where = ".".join(str(p) for p in path)
            found.append((str(path[0]), f"property '{where}': {error.message}"))
        elif error.validator == "required":
            missing = next(iter(_missing(error.validator_value, record)), "")
            found.append((missing, error.message))
        else:
            found.append(("", error.message))
    return found


def _missing(required: Any, record: dict) -> list[str]:
    return [name for name in required or () if name not in record]
