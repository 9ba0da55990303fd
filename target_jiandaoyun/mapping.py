"""How a stream's records become rows of a Jiandaoyun form.

Widget ids (`_widget_1432728651402`) are opaque, so the `forms` setting may name a widget by its
label (客户名称), its alias (`customer_id`) or its id. Each reference is resolved once, through
`widget/list`, before anything is written; a reference that is not on the form, is ambiguous or
points at a widget the API cannot write is a setting error naming the stream, the field and the
form. Rows are written with each widget's `name` (alias when set, else id), as the API wants.

Without a `fields` entry, a stream's properties are matched to widgets by the same rule
(alias or id, then label); properties without a widget are listed once in the log.

A `fields` entry may also compute its value: `"amount_cents": {"widget": "金额", "expression":
"int(amount * 100) if amount is not None else None"}` (connector_kit.expressions; the key is then a
name of your choice). An expression that fails on a record dead-letters that record. A member
or department field may say how its values name members (`"match_by": "email"`).

Nothing the API would blank is sent (docs/api/jiandaoyun.md §7.2): a member or department not in
the company directory, an option text the widget does not offer. Such a value is left out of the
row and reported (`skip_field`), or its record is dead-lettered (`dead_letter`), per setting.
A property absent from the record leaves its widget as it is (`connector_kit.presence`). How
records become rows, value by value, is in rows.py.

A subform may name a key column (`key_field`): an update then keeps the rows whose key the
record still holds — their `_id` and the columns no mapping writes — removes those whose key it
no longer holds, and appends the new ones. Without a key, an update replaces the subform's rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from connector_kit import presence
from connector_kit.expressions import Expression, ExpressionError
from connector_kit.http import ConfigError
from connector_kit.sink import DELETED_AT, SDC_PREFIX
from target_jiandaoyun.directory import DEPARTMENT_KEYS, MEMBER_KEYS, Directory
from target_jiandaoyun.metadata import Form, Widget, find_widget
from target_jiandaoyun.values import (
    DEPARTMENT_TYPES,
    MEMBER_TYPES,
    NOT_WRITABLE,
    WRITABLE,
    ValueRejected,
    convert,
    is_blank,
)

logger = logging.getLogger(__name__)

KEY_WIDGET_TYPES = frozenset({"text", "number"})  # exact values the data/list `in` filter matches
MARK_TYPES = frozenset({"datetime", "text", "radiogroup", "combo"})
FIELD_KEYS = frozenset({"widget", "expression", "match_by"})


SKIP_FIELD, DEAD_LETTER = "skip_field", "dead_letter"  # the on_unknown_* settings
DELETE = "delete"  # `delete_mode` when unset (its declared default)


class MappingError(ConfigError):
    """The `forms` setting does not fit the form or the stream."""


@dataclass(frozen=True)
class FieldMapping:
    """One source field (or computed value) → one widget; a subform also maps each row's."""

    source: str
    widget: Widget
    items: tuple[FieldMapping, ...] = ()
    expression: Expression | None = None
    match_by: str | None = None  # how member / department values are named (default: stored)
    key: FieldMapping | None = None  # a subform's key column (its `key_field`)

    def value(self, record: dict[str, Any]) -> Any:
        if self.expression is None:
            return record.get(self.source)
        try:
            return self.expression(record)
        except ExpressionError as exc:
            raise ValueRejected(f"field '{self.source}': {exc}") from None

    def carried(self, record: dict[str, Any]) -> bool:
        """Whether the record says anything about this field (absent is not null)."""
        return presence.carried(record, self.source, self.expression)

    def reads(self) -> frozenset[str] | None:
        return presence.reads(self.source, self.expression)


@dataclass(frozen=True)
class Policy:
    """What happens to a value the API would blank: `skip_field` or `dead_letter`."""

    member: str = SKIP_FIELD
    department: str = SKIP_FIELD
    option: str = SKIP_FIELD
    required: bool = True  # dead-letter records that leave a required widget empty


@dataclass(frozen=True)
class Mark:
    """`delete_mode: mark`: the widget a deletion sets, and to what (None: the deletion time)."""

    widget: Widget
    value: str | None

    def describe(self) -> str:
        shown = "the deletion time" if self.value is None else repr(self.value)
        return f"{self.widget.label or self.widget.name} = {shown}"

    def on(self, stored: dict[str, Any]) -> bool:
        """Whether a stored row (read shape) carries this mark."""
        current = stored.get(self.widget.name)
        if self.value is None:
            return current not in (None, "")
        return current == self.value


@dataclass
class StreamMapping:
    stream: str
    form: Form
    fields: list[FieldMapping]
    key: FieldMapping | None = None  # set in upsert mode: the source key and its widget
    timezone: dt.tzinfo | None = None
    data_creator: str | None = None
    is_start_workflow: bool = False
    unmapped: list[str] = field(default_factory=list)  # properties no widget receives
    policy: Policy = Policy()
    directory: Directory | None = None  # set by the target when a field writes members/departments
    mark: Mark | None = None  # set when deletions are marked instead of done

    # Keys and marks ------------------------------------------------------------------------------
    def key_value(self, record: dict[str, Any]) -> Any:
        """The record's key as the key widget stores it (raises `ValueRejected`)."""
        assert self.key is not None
        value = self.key.value(record)
        if is_blank(value):
            raise ValueRejected(f"key field '{self.key.source}' is empty")
        try:
            return convert(self.key.widget.type, value, self.timezone)
        except ValueRejected as exc:
            raise exc.within(f"key field '{self.key.source}'") from None

    def mark_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """The update that marks a row deleted (raises `ValueRejected`)."""
        assert self.mark is not None
        value = self.mark.value
        if value is None:
            try:
                value = convert("datetime", record.get(DELETED_AT), self.timezone)
            except ValueRejected as exc:
                raise exc.within(f"'{DELETED_AT}' for {self.mark.describe()}") from None
        return {self.mark.widget.name: {"value": value}}

    # What the mapping touches --------------------------------------------------------------------
    @property
    def widget_names(self) -> list[str]:
        """The widgets an upsert reads back to compare and merge."""
        names = [f.widget.name for f in self.fields]
        if self.mark is not None:
            names.append(self.mark.widget.name)
        return names

    def written_properties(self) -> frozenset[str] | None:
        """The record properties rows are made of (None: possibly all)."""
        read: set[str] = set()
        for mapping in self.fields:
            reads = mapping.reads()
            if reads is None:
                return None
            read |= reads
        return frozenset(read)

    def widgets_of(self, types: frozenset[str]) -> list[FieldMapping]:
        """The field mappings (subform items included) writing widgets of these types."""
        found = []
        for mapping in self.fields:
            found += [m for m in (mapping, *mapping.items) if m.widget.type in types]
        return found

    def wiped_columns(self) -> list[tuple[FieldMapping, list[str]]]:
        """The subform columns an update empties: with no key, those no mapping writes; with a
        key, those whose stored values cannot be written back (images, attachments, …)."""
        wiped = []
        for mapping in self.fields:
            if mapping.widget.type != "subform":
                continue
            mapped = {item.widget.name for item in mapping.items}
            lost = [
                w.label or w.name
                for w in mapping.widget.items
                if w.name not in mapped
                and w.type not in NOT_WRITABLE
                and (mapping.key is None or w.type not in WRITABLE)
            ]
            if lost:
                wiped.append((mapping, lost))
        return wiped


# Resolving the `forms` setting -----------------------------------------------------------------
def resolve(
    stream: str,
    spec: dict[str, Any],
    form: Form,
    schema: dict[str, Any] | None = None,
    key_properties: list[str] | None = None,
    timezone: dt.tzinfo | None = None,
    defaults: dict[str, Any] | None = None,
    policy: Policy = Policy(),
    directory: Directory | None = None,
) -> StreamMapping:
    """Check `forms.<stream>` against the form (and, once known, the stream's schema).

    Called at start-up without a schema (every explicit reference is checked before anything is
    written) and again when the stream's SCHEMA arrives, to match properties and key fields and
    check the names expressions read. Raises `MappingError` listing every problem found.
    """
    resolver = _Resolver(stream, form, schema, directory)
    fields = resolver.fields(spec)
    key = resolver.key(spec, fields, key_properties)
    if key is not None and key.source and all(f.source != key.source for f in fields):
        fields.append(key)
    mark = resolver.mark(spec, fields, key)
    written = [f for f in fields if f is not key]
    if not written and not resolver.errors and (schema is not None or spec.get("fields") == {}):
        what = f"only the key '{key.source}'" if key is not None else "nothing"
        resolver.error(
            None,
            f"the mapping writes {what}: no property of the stream fills a widget of the form; "
            f"map them in forms.{stream}.fields",
        )
    if policy.required and (schema is not None or spec.get("fields") is not None):
        resolver.required(fields)
    if resolver.errors:
        raise MappingError("\n".join(resolver.errors))
    defaults = defaults or {}
    return StreamMapping(
        stream=stream,
        form=form,
        fields=fields,
        key=key,
        timezone=timezone,
        data_creator=spec.get("data_creator", defaults.get("data_creator")),
        is_start_workflow=bool(spec.get("is_start_workflow", defaults.get("is_start_workflow"))),
        unmapped=resolver.unmapped,
        policy=policy,
        directory=directory,
        mark=mark,
    )


class _Resolver:
    def __init__(
        self,
        stream: str,
        form: Form,
        schema: dict[str, Any] | None,
        directory: Directory | None,
    ) -> None:
        self.stream = stream
        self.form = form
        self.directory = directory
        self.properties: dict[str, Any] | None = (
            schema.get("properties") or {} if schema is not None else None
        )
        self.errors: list[str] = []
        self.unmapped: list[str] = []

    def error(self, source: str | None, problem: str) -> None:
        where = f"Stream '{self.stream}'" + (f", field '{source}'" if source else "")
        self.errors.append(f"{where}: {problem} (form {self.form.ref})")

    def fields(self, spec: dict[str, Any]) -> list[FieldMapping]:
        explicit: dict[str, str | dict[str, str]] | None = spec.get("fields")
        subforms: dict[str, dict[str, Any]] = spec.get("subforms") or {}
        mappings: list[FieldMapping] = []
        if explicit is not None:
            for source, ref in explicit.items():
                if source in subforms:
                    self.error(source, "is in both 'fields' and 'subforms'; keep one")
                    continue
                mapping = self.field(source, ref, self.form.widgets, self.properties)
                if mapping is not None:
                    mappings.append(mapping)
        elif self.properties is not None:
            mappings.extend(self.auto(self.properties, self.form.widgets, set(subforms)))
        for source, sub in subforms.items():
            mapping = self.subform(source, sub)
            if mapping is not None:
                mappings.append(mapping)
        self.check_unique_targets(mappings)
        return mappings

    def field(
        self,
        source: str,
        ref: str | dict[str, str],
        widgets: tuple[Widget, ...],
        properties: dict[str, Any] | None,
        in_subform: str | None = None,
    ) -> FieldMapping | None:
        label = f"{in_subform}.{source}" if in_subform else source
        expression = None
        match_by = None
        if isinstance(ref, dict):
            unknown = sorted(set(ref) - FIELD_KEYS)
            if unknown or not isinstance(ref.get("widget"), str):
                self.error(
                    label,
                    'a field given as an object is {"widget": …, "expression"?: …, "match_by"?: …}'
                    + (f"; unknown keys {unknown}" if unknown else ""),
                )
                return None
            if "expression" in ref:
                expression = self.expression(label, ref["expression"], properties)
                if expression is None:
                    return None
            match_by = ref.get("match_by")
            ref = ref["widget"]
        if expression is None:
            if source.startswith(SDC_PREFIX):
                self.error(label, "is Singer metadata (_sdc_*), not data; it is never written")
                return None
            if properties is not None and properties and source not in properties:
                self.error(label, "is not a property of the stream's schema")
                return None
        if not in_subform and ref in self.form.system_fields:
            self.error(label, f"'{ref}' is a system field; the API does not write it")
            return None
        try:
            widget = find_widget(ref, widgets)
        except LookupError as exc:
            self.error(label, f"{exc} (in subform '{in_subform}')" if in_subform else str(exc))
            return None
        if not self.writable(label, widget):
            return None
        if match_by is not None and not self.match_by(label, widget, match_by):
            return None
        if widget.type == "subform":
            if in_subform:
                self.error(label, "a subform cannot hold another subform")
                return None
            if expression is not None:
                self.error(label, "a subform is filled from a field, not computed")
                return None
            return self.subform_items(source, widget, None, None)
        return FieldMapping(source, widget, expression=expression, match_by=match_by)

    def expression(
        self, label: str, text: Any, properties: dict[str, Any] | None
    ) -> Expression | None:
        if not isinstance(text, str):
            self.error(label, f"an expression is a text, got {text!r}")
            return None
        try:
            expression = Expression(text)
        except ExpressionError as exc:
            self.error(label, str(exc))
            return None
        missing = sorted(expression.inputs - set(properties or ())) if properties else []
        if missing:
            self.error(
                label,
                f"expression {text!r} reads '{missing[0]}', which is not a property of the "
                "stream's schema",
            )
            return None
        return expression

    def match_by(self, label: str, widget: Widget, match_by: Any) -> bool:
        keys = MEMBER_KEYS if widget.type in MEMBER_TYPES else DEPARTMENT_KEYS
        if widget.type not in MEMBER_TYPES | DEPARTMENT_TYPES:
            self.error(
                label, f"'match_by' is for member and department widgets, not {widget.describe()}"
            )
            return False
        if match_by not in keys:
            self.error(
                label,
                f"'match_by' is one of {list(keys)} for widget {widget.describe()}, "
                f"got {match_by!r}",
            )
            return False
        if match_by == "email" and self.directory is not None and not self.directory.has("email"):
            self.error(
                label,
                "'match_by' is 'email' but the company directory lists no member's email "
                "(docs/api/jiandaoyun.md §10.5); match by 'username' or 'name'",
            )
            return False
        return True

    def writable(self, label: str, widget: Widget) -> bool:
        if widget.type in NOT_WRITABLE:
            self.error(label, f"widget {widget.describe()} cannot be written through the API")
            return False
        if widget.type not in WRITABLE:
            supported = ", ".join(sorted(WRITABLE))
            self.error(
                label,
                f"widget {widget.describe()} has a type this target does not write "
                f"(supported: {supported})",
            )
            return False
        return True

    def subform(self, source: str, sub: dict[str, Any]) -> FieldMapping | None:
        ref = sub.get("widget", source)
        if source.startswith(SDC_PREFIX):
            self.error(source, "is Singer metadata (_sdc_*), not data; it is never written")
            return None
        if self.properties and source not in self.properties:
            self.error(source, "is not a property of the stream's schema")
            return None
        try:
            widget = find_widget(ref, self.form.widgets)
        except LookupError as exc:
            self.error(source, str(exc))
            return None
        if widget.type != "subform":
            self.error(source, f"widget {widget.describe()} is not a subform")
            return None
        return self.subform_items(source, widget, sub.get("fields"), sub.get("key_field"))

    def subform_items(
        self, source: str, widget: Widget, explicit: dict[str, Any] | None, key_field: Any
    ) -> FieldMapping | None:
        row_properties = _array_item_properties(self.properties, source)
        if explicit is not None:
            items = [
                self.field(sub_source, ref, widget.items, row_properties, in_subform=source)
                for sub_source, ref in explicit.items()
            ]
            mapped = [i for i in items if i is not None]
        elif row_properties is None:
            if key_field is not None:
                self.error(source, "a subform 'key_field' needs the subform's 'fields'")
            return FieldMapping(source, widget)  # checked again once the schema is known
        else:
            mapped = self.auto(row_properties, widget.items, set(), in_subform=source)
            if not mapped and self.properties is not None:
                self.error(
                    source,
                    f"no property of its rows matches a widget of subform {widget.describe()}; "
                    f"map them in forms.{self.stream}.subforms.{source}.fields",
                )
        self.check_unique_targets(mapped, in_subform=source)
        key = None
        if key_field is not None:
            key = next((m for m in mapped if m.source == key_field), None)
            if key is None:
                self.error(
                    source,
                    f"subform key_field '{key_field}' is not one of the row fields it maps "
                    f"({', '.join(m.source for m in mapped)})",
                )
            elif key.widget.type not in KEY_WIDGET_TYPES:
                self.error(
                    source,
                    f"subform key_field '{key_field}' fills {key.widget.describe()}; a key "
                    "must be a text or number widget",
                )
                key = None
        return FieldMapping(source, widget, tuple(mapped), key=key)

    def auto(
        self,
        properties: dict[str, Any],
        widgets: tuple[Widget, ...],
        skip: set[str],
        in_subform: str | None = None,
    ) -> list[FieldMapping]:
        mappings = []
        for source in properties:
            if source.startswith(SDC_PREFIX) or source in skip:
                continue
            try:
                widget = find_widget(source, widgets)
            except LookupError:
                self.unmapped.append(f"{in_subform}.{source}" if in_subform else source)
                continue
            if widget.type == "subform" and in_subform is None:
                mapping = self.subform_items(source, widget, None, None)
            elif self.writable(source, widget):
                mapping = FieldMapping(source, widget)
            else:
                mapping = None
            if mapping is not None:
                mappings.append(mapping)
        return mappings

    def check_unique_targets(
        self, mappings: list[FieldMapping], in_subform: str | None = None
    ) -> None:
        seen: dict[str, str] = {}
        for mapping in mappings:
            other = seen.setdefault(mapping.widget.name, mapping.source)
            if other != mapping.source:
                label = f"{in_subform}.{mapping.source}" if in_subform else mapping.source
                self.error(
                    label,
                    f"maps to widget {mapping.widget.describe()}, which '{other}' already fills",
                )

    def key(
        self, spec: dict[str, Any], fields: list[FieldMapping], key_properties: list[str] | None
    ) -> FieldMapping | None:
        ref = spec.get("key_widget")
        source = spec.get("key_field")
        if ref is None:
            if source is not None:
                self.error(source, "'key_field' is set but 'key_widget' is not")
            return None
        try:
            widget = find_widget(ref, self.form.widgets)
        except LookupError as exc:
            self.error(source, f"key_widget: {exc}")
            return None
        if widget.type not in KEY_WIDGET_TYPES:
            self.error(
                source,
                f"key_widget {widget.describe()} must be a text or number widget "
                "(the only types looked up exactly)",
            )
            return None
        if source is None:
            if key_properties is None:
                return FieldMapping("", widget)  # the key field is the stream's key: known later
            if len(key_properties) != 1:
                self.error(
                    None,
                    f"key_widget is set but the stream has key properties {key_properties}; "
                    f"set forms.{self.stream}.key_field to the one field that holds the key",
                )
                return None
            source = key_properties[0]
        for mapping in fields:
            if mapping.source != source:
                continue
            if mapping.widget.name != widget.name:
                self.error(
                    source,
                    f"is the key field but is mapped to {mapping.widget.describe()}, "
                    f"not to the key widget {widget.describe()}",
                )
                return None
            return mapping  # may be computed
        if self.properties and source not in self.properties:
            self.error(source, "key_field is not a property of the stream's schema")
            return None
        return FieldMapping(source, widget)

    def mark(
        self, spec: dict[str, Any], fields: list[FieldMapping], key: FieldMapping | None
    ) -> Mark | None:
        mode = spec.get("delete_mode", DELETE)
        ref, value = spec.get("mark_widget"), spec.get("mark_value")
        if mode not in ("delete", "mark"):
            self.error(None, f"delete_mode is 'delete' or 'mark', got {mode!r}")
            return None
        if mode == "delete":
            if ref is not None or value is not None:
                self.error(None, "mark_widget and mark_value are for delete_mode 'mark'")
            return None
        if key is None:
            self.error(None, "delete_mode 'mark' needs a key_widget to find the rows to mark")
            return None
        if ref is None:
            self.error(None, "delete_mode 'mark' needs mark_widget: a status or datetime widget")
            return None
        try:
            widget = find_widget(ref, self.form.widgets)
        except LookupError as exc:
            self.error(None, f"mark_widget: {exc}")
            return None
        if widget.type not in MARK_TYPES:
            self.error(
                None,
                f"mark_widget {widget.describe()} must be a datetime (set to the deletion "
                "time), or a text, radiogroup or combo widget set to mark_value",
            )
            return None
        if any(f.widget.name == widget.name for f in fields):
            self.error(None, f"mark_widget {widget.describe()} is also written by a field")
            return None
        if widget.type == "datetime":
            if value is not None:
                self.error(None, "mark_value is not used with a datetime mark_widget")
                return None
            return Mark(widget, None)
        if not isinstance(value, str) or not value:
            self.error(None, f"mark_widget {widget.describe()} needs a mark_value text")
            return None
        if widget.options is not None and value not in widget.options:
            self.error(
                None,
                f"mark_value {value!r} is not one of the options of {widget.describe()}: "
                f"{', '.join(widget.options)}",
            )
            return None
        return Mark(widget, value)

    def required(self, fields: list[FieldMapping]) -> None:
        """Every required widget must be written: else every row created would lack it."""
        written = {f.widget.name: f for f in fields}
        for widget in self.form.widgets:
            if widget.required and widget.type not in NOT_WRITABLE and widget.name not in written:
                self.error(
                    None,
                    f"widget {widget.describe()} is required by the form but no field writes "
                    f"it; map it in forms.{self.stream}.fields, or set check_required_widgets "
                    "to false",
                )
        for mapping in fields:
            if mapping.widget.type != "subform" or not mapping.items:
                continue
            items = {i.widget.name for i in mapping.items}
            for item in mapping.widget.items:
                if item.required and item.type not in NOT_WRITABLE and item.name not in items:
                    self.error(
                        mapping.source,
                        f"subform widget {item.describe()} is required by the form but no row "
                        "field writes it; map it, or set check_required_widgets to false",
                    )


def _array_item_properties(properties: dict[str, Any] | None, source: str) -> dict[str, Any] | None:
    """The properties of the objects in array property `source`, when the schema says."""
    if properties is None:
        return None
    schema = properties.get(source) or {}
    items = schema.get("items")
    if not isinstance(items, dict):
        for option in schema.get("anyOf") or ():
            if isinstance(option, dict) and isinstance(option.get("items"), dict):
                items = option["items"]
                break
    if not isinstance(items, dict):
        return {}
    return items.get("properties") or {}
