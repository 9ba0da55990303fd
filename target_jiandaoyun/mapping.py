"""How a stream's records become rows of a Jiandaoyun form.

Widget ids (`_widget_1432728651402`) are opaque, so the `forms` setting may name a widget by its
label (客户名称), its alias (`customer_id`) or its id. Each reference is resolved once, through
`widget/list`, before anything is written; a reference that is not on the form, is ambiguous or
points at a widget the API cannot write is a setting error naming the stream, the field and the
form. Rows are written with each widget's `name` (alias when set, else id), as the API wants.

Without a `fields` entry, a stream's properties are matched to widgets by the same rule
(alias or id, then label); properties without a widget are listed once in the log.

A `fields` entry may also compute its value: `"amount_cents": {"widget": "金额", "expression":
"int(amount * 100) if amount is not None else None"}` (target_kit.expressions; the key is then a
name of your choice). An expression that fails on a record dead-letters that record.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from target_jiandaoyun.values import (
    NOT_WRITABLE,
    WRITABLE,
    ValueRejected,
    convert,
    holds,
    is_blank,
)
from target_kit.expressions import Expression, ExpressionError
from target_kit.http import ConfigError
from target_kit.sink import SDC_PREFIX

logger = logging.getLogger(__name__)

KEY_WIDGET_TYPES = frozenset({"text", "number"})  # exact values the data/list `in` filter matches


class MappingError(ConfigError):
    """The `forms` setting does not fit the form or the stream."""


@dataclass(frozen=True)
class Widget:
    name: str  # what the API reads and writes: the alias when one is set, else the widget id
    widget_id: str
    label: str
    type: str
    items: tuple[Widget, ...] = ()  # a subform's own widgets

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Widget:
        widget_id = raw.get("widgetName") or raw["name"]
        return cls(
            name=raw.get("name") or widget_id,
            widget_id=widget_id,
            label=raw.get("label") or "",
            type=raw.get("type") or "",
            items=tuple(cls.parse(item) for item in raw.get("items") or ()),
        )

    def describe(self) -> str:
        return f"'{self.label}' ({self.name}, {self.type})"


@dataclass(frozen=True)
class Form:
    app_id: str
    entry_id: str
    widgets: tuple[Widget, ...]
    system_fields: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, app_id: str, entry_id: str, body: dict[str, Any]) -> Form:
        return cls(
            app_id=app_id,
            entry_id=entry_id,
            widgets=tuple(Widget.parse(w) for w in body.get("widgets") or ()),
            system_fields=frozenset(w.get("name", "") for w in body.get("sysWidgets") or ()),
        )

    @property
    def ref(self) -> str:
        return f"{self.app_id}/{self.entry_id}"


def find_widget(ref: str, widgets: Iterable[Widget]) -> Widget:
    """The widget `ref` names: alias or id first (they are unique), then the label."""
    widgets = tuple(widgets)
    for widget in widgets:
        if ref in (widget.name, widget.widget_id):
            return widget
    labelled = [w for w in widgets if w.label == ref]
    if len(labelled) == 1:
        return labelled[0]
    if labelled:
        names = ", ".join(w.name for w in labelled)
        raise LookupError(
            f"label '{ref}' is on {len(labelled)} widgets ({names}); name it by alias or id"
        )
    labels = ", ".join(f"{w.label} ({w.name})" for w in widgets)
    raise LookupError(f"no widget with label, alias or id '{ref}'; the widgets are: {labels}")


@dataclass(frozen=True)
class FieldMapping:
    """One source field (or computed value) → one widget; a subform also maps each row's."""

    source: str
    widget: Widget
    items: tuple[FieldMapping, ...] = ()
    expression: Expression | None = None

    def value(self, record: dict[str, Any]) -> Any:
        if self.expression is None:
            return record.get(self.source)
        try:
            return self.expression(record)
        except ExpressionError as exc:
            raise ValueRejected(f"field '{self.source}': {exc}") from None

    def present(self, record: dict[str, Any]) -> bool:
        """Whether the record says anything about this field (a computed one always does)."""
        return self.expression is not None or self.source in record


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

    def row(self, record: dict[str, Any], clear: bool = False) -> dict[str, Any]:
        """The record as a row of wrapped values.

        A field the record does not have is left out. A null or blank value is left out too,
        or, with `clear` (for updates), written as `{"value": null}`, which empties the field.
        Raises `ValueRejected` naming the field and widget when a value cannot be converted.
        """
        return _row(self.fields, record, self.timezone, clear)

    def up_to_date(self, row: dict[str, Any], stored: dict[str, Any]) -> bool:
        """Whether the stored row (read shape) already holds every value `row` writes."""
        return _holds(self.fields, row, stored, whole=False)

    @property
    def widget_names(self) -> list[str]:
        return [f.widget.name for f in self.fields]

    def key_value(self, record: dict[str, Any]) -> Any:
        """The record's key as the key widget stores it (raises `ValueRejected`)."""
        assert self.key is not None
        value = self.key.value(record)
        if is_blank(value):
            raise ValueRejected(f"key field '{self.key.source}' is empty")
        try:
            return convert(self.key.widget.type, value, self.timezone)
        except ValueRejected as exc:
            raise ValueRejected(f"key field '{self.key.source}': {exc}") from None


def _row(
    mappings: Iterable[FieldMapping],
    record: dict[str, Any],
    tz: dt.tzinfo | None,
    clear: bool = False,
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for mapping in mappings:
        value = mapping.value(record)
        if is_blank(value):
            if clear and mapping.present(record):
                row[mapping.widget.name] = {"value": None}
            continue
        widget = mapping.widget
        try:
            if widget.type == "subform":
                converted = _subform_rows(mapping, value, tz)
            else:
                converted = convert(widget.type, value, tz)
        except ValueRejected as exc:
            raise ValueRejected(
                f"field '{mapping.source}' → widget {widget.describe()}: {exc}"
            ) from None
        row[widget.name] = {"value": converted}
    return row


def _holds(
    mappings: Iterable[FieldMapping], row: dict[str, Any], stored: dict[str, Any], whole: bool
) -> bool:
    """`whole`: the row replaces everything (a subform row), so a field it leaves out must
    read empty; otherwise a left-out field is not written and not compared."""
    for mapping in mappings:
        widget = mapping.widget
        if widget.name not in row and not whole:
            continue
        written = row.get(widget.name, {}).get("value")
        current = stored.get(widget.name)
        if widget.type != "subform":
            if not holds(widget.type, written, current):
                return False
            continue
        written = written or []
        if not isinstance(current, list) or len(current) != len(written):
            return False
        for new, old in zip(written, current, strict=True):
            if not isinstance(old, dict) or not _holds(mapping.items, new, old, whole=True):
                return False
    return True


def _subform_rows(mapping: FieldMapping, value: Any, tz: dt.tzinfo | None) -> list[dict]:
    if not isinstance(value, list | tuple):
        raise ValueRejected("a subform takes a list of objects")
    rows = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise ValueRejected(f"subform row {number} is not an object")
        try:
            rows.append(_row(mapping.items, item, tz))
        except ValueRejected as exc:
            raise ValueRejected(f"subform row {number}: {exc}") from None
    return rows


# Resolving the `forms` setting -----------------------------------------------------------------
def resolve(
    stream: str,
    spec: dict[str, Any],
    form: Form,
    schema: dict[str, Any] | None = None,
    key_properties: list[str] | None = None,
    timezone: dt.tzinfo | None = None,
    defaults: dict[str, Any] | None = None,
) -> StreamMapping:
    """Check `forms.<stream>` against the form (and, once known, the stream's schema).

    Called at start-up without a schema (every explicit reference is checked before anything is
    written) and again when the stream's SCHEMA arrives, to match properties and key fields.
    Raises `MappingError` listing every problem found.
    """
    resolver = _Resolver(stream, form, schema)
    fields = resolver.fields(spec)
    key = resolver.key(spec, fields, key_properties)
    if key is not None and key.source and all(f.source != key.source for f in fields):
        fields.append(key)
    if schema is not None and not fields and not resolver.errors:
        resolver.error(
            None,
            "none of the stream's properties match a widget of the form; "
            f"map them in forms.{stream}.fields",
        )
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
        is_start_workflow=bool(
            spec.get("is_start_workflow", defaults.get("is_start_workflow", False))
        ),
        unmapped=resolver.unmapped,
    )


class _Resolver:
    def __init__(self, stream: str, form: Form, schema: dict[str, Any] | None) -> None:
        self.stream = stream
        self.form = form
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
        if isinstance(ref, dict):
            if not isinstance(ref.get("widget"), str) or not isinstance(ref.get("expression"), str):
                self.error(label, 'a computed field is {"widget": …, "expression": …}')
                return None
            try:
                expression = Expression(ref["expression"])
            except ExpressionError as exc:
                self.error(label, str(exc))
                return None
            ref = ref["widget"]
        elif source.startswith(SDC_PREFIX):
            self.error(label, "is Singer metadata (_sdc_*), not data; it is never written")
            return None
        elif properties is not None and properties and source not in properties:
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
        if widget.type == "subform":
            if in_subform:
                self.error(label, "a subform cannot hold another subform")
                return None
            if expression is not None:
                self.error(label, "a subform is filled from a field, not computed")
                return None
            return self.subform_items(source, widget, None)
        return FieldMapping(source, widget, expression=expression)

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
        return self.subform_items(source, widget, sub.get("fields"))

    def subform_items(
        self, source: str, widget: Widget, explicit: dict[str, Any] | None
    ) -> FieldMapping | None:
        row_properties = _array_item_properties(self.properties, source)
        if explicit is not None:
            items = [
                self.field(sub_source, ref, widget.items, row_properties, in_subform=source)
                for sub_source, ref in explicit.items()
            ]
            mapped = [i for i in items if i is not None]
        elif row_properties is None:
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
        return FieldMapping(source, widget, tuple(mapped))

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
                mapping = self.subform_items(source, widget, None)
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
