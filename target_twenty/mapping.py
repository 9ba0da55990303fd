"""Which Twenty object a stream loads, how its fields become Twenty fields, what it references.

The `mappings` setting, per stream (every part optional):

    {"people": {"object": "people",
                "fields": {"name.firstName": "first_name", "emails.primaryEmail": "email",
                           "phones.primaryPhoneNumber":
                               {"expression": "tel_list[0][1] if tel_list else None"}},
                "references": {"companyId": {"stream": "companies", "field": "company_id"}}}}

- `object`: the object's plural API name; default the stream name (standard and custom objects).
- `fields`: Twenty field (or `field.subField` of a composite) ← source property, or ←
  `{"expression": …}` computed from the record (`target_kit.expressions`: the properties are
  names, `record` is the whole record; None makes the field empty). Without `fields`, every
  property whose name is a field of the object is loaded under that name, and any other
  property is an error — except `_sdc_*` Singer metadata, the key properties (they make the
  record's id) and the sources of references. With `fields`, only what it lists is loaded.
- `references`: a relation's join column ← the record of another stream whose Singer key is in
  this record's `field` (a list for a compound key). The parent is written first, and the
  reference points at the id Twenty gave it.

Expressions see dates and date-times as ISO 8601 text, as the tap sent them (`"2026-03-01"`,
`"2026-03-01T09:30:00+00:00"`; `target_kit.expressions` turns the SDK's parsed objects back),
and numbers with a fraction as exact `Decimal`s (`int(amount * 1000000)`). A computed value is
checked and canonicalised like a copied one. An expression that fails on a record, or computes
a value Twenty would refuse, dead-letters that record. A computed field is left alone, like a
copied one, when the properties it reads are absent from the record (an update that does not
carry them): the expression is not evaluated then (`target_kit.presence`, the rule
target-jiandaoyun follows too).

The SDK's `stream_maps` run before this mapping and can transform records too, but they type
every computed property as non-nullable: `int(amount * 1000000) if amount is not None else
None` fails there, and is an expression here.

Everything that can be checked without data is checked before anything is written: the
settings when the run starts (expressions are parsed then), a stream's schema when its SCHEMA
message arrives (it must have every property a mapping reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from target_kit import presence
from target_kit.expressions import Expression, ExpressionError
from target_kit.http import ConfigError
from target_kit.sink import SDC_PREFIX
from target_twenty.ids import key_text
from target_twenty.metadata import READ_ONLY, MetadataError, TwentyField, TwentyObject, Workspace
from target_twenty.values import BadValue, convert, convert_sub


@dataclass(frozen=True)
class FieldMap:
    field: TwentyField
    sub: str | None  # a composite's sub-field, when the source fills only that
    source: str  # the source property, or the expression's text
    expression: Expression | None = None

    @cached_property
    def path(self) -> str:
        return f"{self.field.key}.{self.sub}" if self.sub else self.field.key

    @cached_property
    def inputs(self) -> frozenset[str]:
        """The properties it reads."""
        return self.expression.inputs if self.expression else frozenset({self.source})

    @cached_property
    def reads(self) -> frozenset[str] | None:
        """Every property it may read (None: it may read any, through `record`)."""
        return presence.reads(self.source, self.expression)

    def describe(self) -> str:
        return f"expression {self.source!r}" if self.expression else self.source


@dataclass(frozen=True)
class Reference:
    key: str  # the join column, e.g. companyId
    stream: str  # the parent stream
    sources: tuple[str, ...]  # this record's properties holding the parent's Singer key


class StreamMapping:
    def __init__(
        self,
        stream: str,
        obj: TwentyObject,
        fields: list[FieldMap] | None,
        references: list[Reference],
    ) -> None:
        self.stream = stream
        self.object = obj
        self.fields = fields  # None until the schema fills the default mapping in
        self.references = references

    # Settings -----------------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls, stream: str, settings: dict[str, Any], workspace: Workspace, mappings: dict
    ) -> StreamMapping:
        where = f"mappings.{stream}"
        try:
            obj = workspace.object(settings.get("object") or stream)
        except MetadataError as exc:
            raise ConfigError(f"Setting '{where}.object' (stream '{stream}'): {exc}.") from None
        fields = None
        if settings.get("fields") is not None:
            fields = [
                _field_map(stream, obj, path, source)
                for path, source in _flat_fields(settings["fields"]).items()
            ]
            _no_overlaps(stream, fields)
        references = [
            _reference(stream, obj, key, spec, workspace, mappings)
            for key, spec in (settings.get("references") or {}).items()
        ]
        return cls(stream, obj, fields, references)

    # Schema -------------------------------------------------------------------------------
    def for_schema(self, properties: dict[str, Any], key_properties: list[str]) -> StreamMapping:
        """This mapping checked against a stream's schema (default fields filled in)."""
        referenced = {s for r in self.references for s in r.sources}
        where = f"Stream '{self.stream}'"
        for source in sorted(referenced):
            if source not in properties:
                raise ConfigError(
                    f"{where} has no property '{source}', which setting "
                    f"'mappings.{self.stream}.references' names."
                )
        if self.fields is not None:
            for fm in self.fields:
                missing = sorted(fm.inputs - properties.keys())
                if missing:
                    uses = "reads for" if fm.expression else "maps to"
                    raise ConfigError(
                        f"{where} has no property '{missing[0]}', which setting "
                        f"'mappings.{self.stream}.fields' {uses} Twenty field '{fm.path}'."
                    )
            return self
        fields = []
        for name in properties:
            if name.startswith(SDC_PREFIX) or name == "id" or name in referenced:
                continue
            twenty_field = self.object.fields.get(name)
            if twenty_field is not None:
                fields.append(FieldMap(twenty_field, None, name))
            elif name not in key_properties:
                raise ConfigError(
                    f"{where}: property '{name}' is not a field of Twenty object "
                    f"'{self.object.plural}' (writable fields: {self.object.describe_fields()})."
                    f" Map it with setting 'mappings.{self.stream}.fields', or drop it with "
                    f"stream_maps."
                )
        return StreamMapping(self.stream, self.object, fields, self.references)

    def written_properties(self) -> frozenset[str] | None:
        """The properties the records' Twenty rows are made of (None: possibly all)."""
        if self.fields is None:
            return None
        read: set[str] = {s for r in self.references for s in r.sources}
        for fm in self.fields:
            if fm.reads is None:
                return None
            read |= fm.reads
        return frozenset(read)

    # Records ------------------------------------------------------------------------------
    def payload(self, record: dict[str, Any]) -> dict[str, Any]:
        """The Twenty record (without id and references); raises `BadValue`."""
        body: dict[str, Any] = {}
        for fm, path in self._labelled_fields:
            if not presence.carried(record, fm.source, fm.expression):
                continue  # absent is not null: an update leaves the field alone
            if fm.expression is None:
                value = record[fm.source]
            else:
                try:
                    value = fm.expression(record)
                except ExpressionError as exc:
                    raise BadValue(f"{path}: {exc}") from None
            if fm.sub is None:
                body[fm.field.key] = convert(fm.field, value, path)
            else:
                body.setdefault(fm.field.key, {})[fm.sub] = convert_sub(
                    fm.field, fm.sub, value, path
                )
        return body

    @cached_property
    def _labelled_fields(self) -> list[tuple[FieldMap, str]]:
        """Each field map with the path that names it in messages ("company.domainName")."""
        return [(fm, f"{self.object.singular}.{fm.path}") for fm in self.fields or ()]

    def parent_keys(self, record: dict[str, Any]) -> dict[str, str | None]:
        """Join column → the parent's key text (None: the record references nothing)."""
        keys = {}
        for ref in self.references:
            if not any(s in record for s in ref.sources):
                continue  # absent is not null: an update leaves the relation alone
            values = [record.get(s) for s in ref.sources]
            keys[ref.key] = None if any(v in (None, "") for v in values) else key_text(values)
        return keys

    def unique_values(self, payload: dict[str, Any]) -> list[tuple[str, Any]]:
        """The values of unique fields this record writes, as the server compares them."""
        found = []
        for f in self.object.unique_fields():
            value = payload.get(f.key)
            if f.unique_subfield and isinstance(value, dict):
                value = value.get(f.unique_subfield)
            if value not in (None, ""):
                found.append((f.key, value))
        return found


def _field_map(stream: str, obj: TwentyObject, path: Any, source: Any) -> FieldMap:
    where = f"Setting 'mappings.{stream}.fields'"
    expression = None
    if isinstance(source, dict) and source.keys() == {"expression"}:
        source = source["expression"]
        if not isinstance(source, str):
            raise ConfigError(f"{where}: expression of '{path}' must be a text, got {source!r}.")
        try:
            expression = Expression(source)
        except ExpressionError as exc:
            raise ConfigError(f"{where} (stream '{stream}'), field '{path}': {exc}.") from None
    elif not isinstance(source, str) or not source:
        raise ConfigError(
            f"{where}: '{path}' must name a source property or be "
            f'{{"expression": "…"}}, got {source!r}.'
        )
    name, _, sub = str(path).partition(".")
    twenty_field = obj.fields.get(name)
    if twenty_field is None:
        if name == "id" or name in READ_ONLY:
            problem = "which Twenty sets itself"
        else:
            problem = f"which Twenty object '{obj.plural}' does not have"
        raise ConfigError(
            f"{where} (stream '{stream}') maps '{source}' to field '{name}', {problem} "
            f"(writable fields: {obj.describe_fields()})."
        )
    if sub:
        subfields = twenty_field.subfields
        if subfields is None or sub not in subfields:
            known = ", ".join(subfields) if subfields else "none: it is not a composite field"
            raise ConfigError(
                f"{where} (stream '{stream}') maps '{source}' to '{path}', but "
                f"{obj.singular}.{name} ({twenty_field.type}) has no sub-field '{sub}' "
                f"(sub-fields: {known})."
            )
    return FieldMap(twenty_field, sub or None, source, expression)


def _no_overlaps(stream: str, fields: list[FieldMap]) -> None:
    whole = {fm.field.key for fm in fields if fm.sub is None}
    for fm in fields:
        if fm.sub is not None and fm.field.key in whole:
            raise ConfigError(
                f"Setting 'mappings.{stream}.fields' maps both '{fm.field.key}' and "
                f"'{fm.path}': map the whole field or its sub-fields, not both."
            )


def _reference(
    stream: str,
    obj: TwentyObject,
    key: str,
    spec: Any,
    workspace: Workspace,
    mappings: dict[str, Any],
) -> Reference:
    where = f"Setting 'mappings.{stream}.references.{key}'"
    twenty_field = obj.fields.get(key)
    if twenty_field is None or twenty_field.type != "RELATION":
        relations = ", ".join(k for k, f in obj.fields.items() if f.type == "RELATION")
        raise ConfigError(
            f"{where}: Twenty object '{obj.plural}' has no relation '{key}' "
            f"(relations: {relations or 'none'})."
        )
    if not isinstance(spec, dict) or not spec.get("stream") or not spec.get("field"):
        raise ConfigError(f'{where} needs {{"stream": …, "field": …}}, got {spec!r}.')
    parent_stream = spec["stream"]
    sources = spec["field"]
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    parent_object = (mappings.get(parent_stream) or {}).get("object") or parent_stream
    target = workspace.by_singular(twenty_field.target) if twenty_field.target else None
    if target is not None and target.plural != parent_object:
        raise ConfigError(
            f"{where}: '{key}' points to {target.plural}, but stream '{parent_stream}' loads "
            f"'{parent_object}'."
        )
    return Reference(key, parent_stream, sources)


def _flat_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`{"domainName": {"primaryLinkUrl": "homepage"}}` → `{"domainName.primaryLinkUrl": …}`.

    Both spellings mean the same; the nested one is what Meltano makes of dotted keys in
    `meltano.yml` (it expands them into objects).
    """
    flat: dict[str, Any] = {}
    for path, source in fields.items():
        if isinstance(source, dict) and "expression" not in source and "." not in path:
            for sub, sub_source in source.items():
                flat[f"{path}.{sub}"] = sub_source
        else:
            flat[path] = source
    return flat
