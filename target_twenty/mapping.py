"""Which Twenty object a stream loads, how its fields become Twenty fields, what it references.

The `mappings` setting, per stream (every part optional):

    {"people": {"object": "people",
                "fields": {"name.firstName": "first_name", "emails.primaryEmail": "email",
                           "phones.primaryPhoneNumber":
                               {"expression": "tel_list[0][1] if tel_list else None"}},
                "references": {"companyId": {"stream": "companies", "field": "company_id"}}}}

- `object`: the object's plural API name; default the stream name (standard and custom objects).
- `fields`: Twenty field (or `field.subField` of a composite) ← source property, or ←
  `{"expression": …}` computed from the record (`connector_kit.expressions`: the properties are
  names, `record` is the whole record; None makes the field empty). Without `fields`, every
  property whose name is a field of the object is loaded under that name, and any other
  property is an error — except `_sdc_*` Singer metadata, the key properties (they make the
  record's id) and the sources of references. With `fields`, only what it lists is loaded.
- `references`: a relation's join column ← the record of another stream whose Singer key is in
  this record's `field` (a list for a compound key). The parent is written first, and the
  reference points at the id Twenty gave it. `on_parent_delete` (`keep`, `unlink` or
  `cascade`) says what happens to this stream's rows in Twenty when their parent is deleted at
  the source, and `listed_in_parent` (`"customers[].customer_id"`) names where the parent's
  record lists all of its children of this stream: a child row the parent no longer lists
  follows the same rule at the parent's next write.
- `links`: records that attach to others through a junction object (a note or task to the
  companies, people and opportunities it is about, through `noteTargets` / `taskTargets`):
  `{"through": "noteTargets", "to": [{"stream": "companies", "field": "company_id"}, …]}`.
  The record is written first (after what it links to, like any child), then one junction row
  per linked record, under a stable id, so re-runs never duplicate a link. The junction's
  columns are read from the workspace metadata (`settings.joinColumnName`), never assumed.
- `create_when`: an expression; a record for which it is false only updates its row if the row
  exists, and is never created (a task for a follow-up date that was cleared: marked done if
  it exists, not made).
- `source_key_field`: a text field of the object that receives the record's source key (e.g.
  `okkiId`), so people can find a row by it, and the target can tell which source record owns
  a row (`target_twenty.identity`) without its id map.

Expressions see dates and date-times as ISO 8601 text, as the tap sent them (`"2026-03-01"`,
`"2026-03-01T09:30:00+00:00"`; `connector_kit.expressions` turns the SDK's parsed objects back),
and numbers with a fraction as exact `Decimal`s (`int(amount * 1000000)`). A computed value is
checked and canonicalised like a copied one. An expression that fails on a record, or computes
a value Twenty would refuse, dead-letters that record. A computed field is left alone, like a
copied one, when the properties it reads are absent from the record (an update that does not
carry them): the expression is not evaluated then (`connector_kit.presence`, the rule
target-jiandaoyun follows too).

The SDK's `stream_maps` run before this mapping and can transform records too, but they type
every computed property as non-nullable: `int(amount * 1000000) if amount is not None else
None` fails there, and is an expression here.

Everything that can be checked without data is checked before anything is written: the
settings when the run starts (expressions are parsed then), a stream's schema when its SCHEMA
message arrives (it must have every property a mapping reads).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from connector_kit import presence
from connector_kit.expressions import Expression, ExpressionError
from connector_kit.http import ConfigError
from connector_kit.sink import SDC_PREFIX
from target_twenty.identity import unique_values
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


ParentDeleteRule = Literal["keep", "unlink", "cascade"]
KEEP: ParentDeleteRule = "keep"  # `on_parent_delete` when unset (its declared default)
SLOT = "\x1f"  # between a link's column and one of the keys its list names


@dataclass(frozen=True)
class Reference:
    key: str  # the join column, e.g. companyId
    stream: str  # the parent stream
    sources: tuple[str, ...]  # this record's properties holding the parent's Singer key
    on_parent_delete: ParentDeleteRule = KEEP
    # The parent record's list of its children of this stream: (list property, key property).
    listed_in_parent: tuple[str, str] | None = None
    # A link through a junction object (`links`): `key` is the junction's column, not this
    # object's; the record is written without it, the junction row after.
    via_junction: bool = False

    def listed_children(self, parent: dict[str, Any]) -> set[str] | None:
        """Key texts of the children `parent` lists; None when it does not carry the list."""
        if self.listed_in_parent is None:
            return None
        prop, key = self.listed_in_parent
        if not isinstance(parent.get(prop), list):
            return None  # absent, null or a shape the tap could not read: nothing is known
        return {
            key_text([child[key]])
            for child in parent[prop]
            if isinstance(child, dict) and child.get(key) not in (None, "")
        }


class StreamMapping:
    def __init__(
        self,
        stream: str,
        obj: TwentyObject,
        fields: list[FieldMap] | None,
        references: list[Reference],
        source_key_field: str | None = None,
        missing: dict[str, Any] | None = None,
        junction: Junction | None = None,
        create_when: Expression | None = None,
        timezone: dt.tzinfo | None = None,
    ) -> None:
        self.stream = stream
        self.object = obj
        self.fields = fields  # None until the schema fills the default mapping in
        self.references = references
        self.source_key_field = source_key_field
        # Field name → what fills it, for fields the object lacks: created at the first SCHEMA
        # (setting `create_missing_fields`).
        self.missing = missing or {}
        self.junction = junction
        self.create_when = create_when
        self.timezone = timezone  # `default_timezone`: how datetimes without an offset are read

    def _copy(self, fields: list[FieldMap] | None) -> StreamMapping:
        return StreamMapping(
            self.stream,
            self.object,
            fields,
            self.references,
            self.source_key_field,
            None,
            self.junction,
            self.create_when,
            self.timezone,
        )

    # Settings -----------------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        stream: str,
        settings: dict[str, Any],
        workspace: Workspace,
        mappings: dict,
        create_missing: bool = False,
        timezone: dt.tzinfo | None = None,
    ) -> StreamMapping:
        where = f"mappings.{stream}"
        try:
            obj = workspace.object(settings.get("object") or stream)
        except MetadataError as exc:
            raise ConfigError(f"Setting '{where}.object' (stream '{stream}'): {exc}.") from None
        missing: dict[str, Any] = {}
        source_key_field = settings.get("source_key_field") or None
        if source_key_field is not None:
            known = obj.fields.get(source_key_field)
            if known is None and create_missing:
                missing[source_key_field] = None  # a text field
            elif known is None or known.type != "TEXT":
                problem = "is not a field of" if known is None else f"is a {known.type} field of"
                raise ConfigError(
                    f"Setting '{where}.source_key_field': {source_key_field!r} {problem} Twenty "
                    f"object '{obj.plural}'; it needs a TEXT field (create one, or set "
                    "create_missing_fields)."
                )
        fields = None
        if settings.get("fields") is not None:
            fields = []
            for path, source in _flat_fields(settings["fields"]).items():
                name = str(path).partition(".")[0]
                if create_missing and name not in obj.fields and name not in READ_ONLY:
                    if "." in str(path):
                        raise ConfigError(
                            f"Setting '{where}.fields' maps to '{path}', a sub-field of "
                            f"'{name}', which object '{obj.plural}' lacks: "
                            "create_missing_fields creates plain fields only."
                        )
                    missing[name] = source
                    continue
                fields.append(_field_map(stream, obj, path, source))
            _no_overlaps(stream, fields)
        references = [
            _reference(stream, obj, key, spec, workspace, mappings)
            for key, spec in (settings.get("references") or {}).items()
        ]
        junction = None
        if settings.get("links"):
            junction, links = _links(stream, obj, settings["links"], workspace, mappings)
            references += links
        create_when = None
        if settings.get("create_when"):
            try:
                create_when = Expression(str(settings["create_when"]))
            except ExpressionError as exc:
                raise ConfigError(f"Setting '{where}.create_when': {exc}.") from None
        return cls(
            stream,
            obj,
            fields,
            references,
            source_key_field,
            missing,
            junction,
            create_when,
            timezone,
        )

    def with_created_fields(self) -> StreamMapping:
        """This mapping once the fields it lacked exist on its object."""
        fields = list(self.fields or [])
        for name, source in self.missing.items():
            if source is not None:
                fields.append(_field_map(self.stream, self.object, name, source))
        return self._copy(fields if self.fields is not None else None)

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
            self._check_create_when(properties)
            return self
        self._check_create_when(properties)
        fields = []
        for name in properties:
            if name == self.source_key_field:
                continue
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
        return self._copy(fields)

    def _check_create_when(self, properties: dict[str, Any]) -> None:
        missing = sorted(
            (self.create_when.inputs if self.create_when else set()) - properties.keys()
        )
        if missing:
            raise ConfigError(
                f"Stream '{self.stream}' has no property '{missing[0]}', which setting "
                f"'mappings.{self.stream}.create_when' reads."
            )

    def creates(self, record: dict[str, Any]) -> bool:
        """Whether a record may create its row (`create_when`), not only update it."""
        if self.create_when is None:
            return True
        try:
            return bool(self.create_when(record))
        except ExpressionError:
            return False  # it cannot say yes: update only

    def field_types(self, properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """A definition for each field the object lacks, typed from the stream's schema:
        NUMBER, SELECT or MULTI_SELECT where the schema says so, else TEXT."""
        return {name: _field_type(properties, source) for name, source in self.missing.items()}

    def written_properties(self) -> frozenset[str] | None:
        """The properties the records' Twenty rows are made of (None: possibly all)."""
        if self.fields is None:
            return None
        read: set[str] = {s for r in self.references for s in r.sources}
        if self.create_when is not None:
            if self.create_when.reads_all:
                return None
            read |= self.create_when.inputs | self.create_when.record_keys
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
            self._put(body, fm, path, record)
        return body

    def _put(self, body: dict[str, Any], fm: FieldMap, path: str, record: dict[str, Any]) -> None:
        if not presence.carried(record, fm.source, fm.expression):
            return  # absent is not null: an update leaves the field alone
        if fm.expression is None:
            value = record[fm.source]
        else:
            try:
                value = fm.expression(record)
            except ExpressionError as exc:
                raise BadValue(f"{path}: {exc}") from None
        if fm.sub is None:
            body[fm.field.key] = convert(fm.field, value, path, self.timezone)
        else:
            body.setdefault(fm.field.key, {})[fm.sub] = convert_sub(fm.field, fm.sub, value, path)

    @cached_property
    def _labelled_fields(self) -> list[tuple[FieldMap, str]]:
        """Each field map with the path that names it in messages ("company.domainName")."""
        return [(fm, f"{self.object.singular}.{fm.path}") for fm in self.fields or ()]

    def parent_keys(self, record: dict[str, Any]) -> dict[str, str | None]:
        """Slot → the parent's key text (None: the record references nothing there).

        A reference's slot is its join column. A link whose field holds a list (a follow-up
        naming several contacts) has a slot per listed record, `<column>␟<key text>`
        (`reference_of` finds the link again); an empty list is the column with None.
        """
        keys: dict[str, str | None] = {}
        for ref in self.references:
            if not any(s in record for s in ref.sources):
                continue  # absent is not null: an update leaves the relation alone
            values = [record.get(s) for s in ref.sources]
            if ref.via_junction and len(values) == 1 and isinstance(values[0], list):
                listed = [key_text([v]) for v in values[0] if v not in (None, "")]
                keys.update((f"{ref.key}{SLOT}{k}", k) for k in listed)
                if not listed:
                    keys[ref.key] = None
                continue
            keys[ref.key] = None if any(v in (None, "") for v in values) else key_text(values)
        return keys

    def reference_of(self, slot: str) -> Reference:
        column = slot.partition(SLOT)[0]
        return next(r for r in self.references if r.key == column)

    @cached_property
    def _unique_field_maps(self) -> list[tuple[FieldMap, str]]:
        unique = {f.key for f in self.object.unique_fields()}
        return [(fm, path) for fm, path in self._labelled_fields if fm.field.key in unique]

    def unique_values_of(self, record: dict[str, Any]) -> list[tuple[str, str]]:
        """The unique values a record would write (its other fields are not computed)."""
        if not self._unique_field_maps:
            return []
        body: dict[str, Any] = {}
        for fm, path in self._unique_field_maps:
            try:
                self._put(body, fm, path, record)
            except BadValue:
                continue  # dead-lettered when the batch is written
        return unique_values(self.object, body)


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
    rule = spec.get("on_parent_delete") or KEEP
    if rule not in ("keep", "unlink", "cascade"):
        raise ConfigError(
            f"{where}.on_parent_delete must be keep, unlink or cascade, got {rule!r}."
        )
    listed = None
    if spec.get("listed_in_parent"):
        prop, sep, child_key = str(spec["listed_in_parent"]).partition("[].")
        if not sep or not prop or not child_key:
            raise ConfigError(
                f"{where}.listed_in_parent names the parent's list and the key in it, like "
                f"'customers[].customer_id'; got {spec['listed_in_parent']!r}."
            )
        listed = (prop, child_key)
    parent_object = (mappings.get(parent_stream) or {}).get("object") or parent_stream
    target = workspace.by_singular(twenty_field.target) if twenty_field.target else None
    if target is not None and target.plural != parent_object:
        raise ConfigError(
            f"{where}: '{key}' points to {target.plural}, but stream '{parent_stream}' loads "
            f"'{parent_object}'."
        )
    return Reference(key, parent_stream, sources, rule, listed)


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


def _field_type(properties: dict[str, Any], source: Any) -> dict[str, Any]:
    """A custom field definition for what fills it: a source property or an expression."""
    prop = properties.get(source) if isinstance(source, str) else None
    if not isinstance(prop, dict):
        return {"type": "TEXT"}
    types = prop.get("type", [])
    types = {types} if isinstance(types, str) else set(types)
    if prop.get("enum") and types <= {"string", "null"}:
        options = [v for v in prop["enum"] if isinstance(v, str) and v]
        return {"type": "SELECT", "options": options} if options else {"type": "TEXT"}
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    if "array" in types and items.get("enum"):
        options = [v for v in items["enum"] if isinstance(v, str) and v]
        return {"type": "MULTI_SELECT", "options": options} if options else {"type": "TEXT"}
    if types - {"null"} and types - {"null"} <= {"integer", "number"}:
        return {"type": "NUMBER"}
    return {"type": "TEXT"}


@dataclass(frozen=True)
class Junction:
    """The junction object a stream's records link through, and its column for them."""

    object: TwentyObject
    own_column: str  # e.g. noteId


def _links(
    stream: str, obj: TwentyObject, spec: Any, workspace: Workspace, mappings: dict[str, Any]
) -> tuple[Junction, list[Reference]]:
    where = f"Setting 'mappings.{stream}.links'"
    if not isinstance(spec, dict) or not spec.get("through") or not spec.get("to"):
        raise ConfigError(
            f'{where} needs {{"through": <junction object>, "to": [{{"stream", "field"}}, …]}}, '
            f"got {spec!r}."
        )
    try:
        junction = workspace.object(spec["through"])
    except MetadataError as exc:
        raise ConfigError(f"{where}.through: {exc}.") from None

    def column_to(singular: str) -> str:
        found = [
            f.key for f in junction.fields.values() if f.type == "RELATION" and f.target == singular
        ]
        if not found:
            relations = ", ".join(
                f"{f.key} → {f.target}" for f in junction.fields.values() if f.type == "RELATION"
            )
            raise ConfigError(
                f"{where}: '{junction.plural}' has no relation to {singular} (its relations: "
                f"{relations or 'none'})."
            )
        return found[0]

    own = column_to(obj.singular)
    links = []
    for target in spec["to"]:
        if not isinstance(target, dict) or not target.get("stream") or not target.get("field"):
            raise ConfigError(f'{where}.to: each needs {{"stream", "field"}}, got {target!r}.')
        parent_object = (mappings.get(target["stream"]) or {}).get("object") or target["stream"]
        try:
            parent = workspace.object(parent_object)
        except MetadataError as exc:
            raise ConfigError(f"{where}.to (stream '{target['stream']}'): {exc}.") from None
        sources = target["field"]
        sources = (sources,) if isinstance(sources, str) else tuple(sources)
        links.append(
            Reference(column_to(parent.singular), target["stream"], sources, via_junction=True)
        )
    return Junction(junction, own), links
