"""The workspace's objects, standard and custom (docs/api/twenty.md §6).

Custom fields and objects come from the sandbox's control routes, with bodies shaped like
upstream's metadata API:

    POST /_sandbox/metadata/fields
    {"object": "company", "name": "okkiId", "type": "TEXT", "isUnique": true}

    POST /_sandbox/metadata/objects
    {"nameSingular": "deal", "namePlural": "deals",
     "fields": [{"name": "amount", "type": "CURRENCY"},
                {"name": "company", "type": "RELATION", "target": "company"}]}

A field body may also hold `label`, `isNullable` (default true), `defaultValue` (scalar types),
`options` (SELECT / MULTI_SELECT: values or `{"value", "label"}`), and for a RELATION `target`
(the related object) and `inverseName` (the ONE_TO_MANY field added to the target; default the
source object's plural). Every problem raises `ValueError` with a message saying what to fix.
"""

from __future__ import annotations

from typing import Any

from crm_sandbox.twenty.errors import ApiError
from crm_sandbox.twenty.schema import (
    COMPOSITES,
    CUSTOM_TYPES,
    MANY_TO_ONE,
    NAME_RE,
    ONE_TO_MANY,
    UNIQUE_CAPABLE,
    Field,
    ObjectType,
    Relation,
    new_object,
    now_iso,
    object_to_api,
    standard_objects,
)
from crm_sandbox.twenty.values import check_value

FIELD_KEYS = {
    "object",
    "name",
    "type",
    "label",
    "isUnique",
    "isNullable",
    "defaultValue",
    "options",
    "target",
    "inverseName",
}
OBJECT_KEYS = {"nameSingular", "namePlural", "fields"}
# Path segments of other routes: an object with such a plural could not be reached.
RESERVED_PLURALS = {"batch", "metadata", "restore", "core"}


class Workspace:
    def __init__(self, junction_style: str = "plain") -> None:
        self.objects: dict[str, ObjectType] = {
            o.singular: o for o in standard_objects(junction_style)
        }

    def by_plural(self, plural: str) -> ObjectType | None:
        return next((o for o in self.objects.values() if o.plural == plural), None)

    def named(self, name: Any) -> ObjectType | None:
        """An object by its singular or plural name."""
        if not isinstance(name, str):
            return None
        return self.objects.get(name) or self.by_plural(name)

    def to_api(self) -> list[dict[str, Any]]:
        return [object_to_api(o, self.objects) for o in self.objects.values()]

    # Custom fields and objects ----------------------------------------------------------------

    def new_field(self, body: Any) -> tuple[ObjectType, Field]:
        """Check a custom field body; the field is added by `add_field` (after data checks)."""
        _check_keys(body, FIELD_KEYS, "field")
        obj = self.named(body.get("object"))
        if obj is None:
            raise ValueError(f"Unknown object {body.get('object')!r}; known: {self._names()}.")
        return obj, self._build_field(obj, body)

    def add_field(self, obj: ObjectType, f: Field) -> None:
        obj.add(f)
        self._add_inverse(obj, f)

    def _add_inverse(self, obj: ObjectType, f: Field) -> None:
        """A relation's ONE_TO_MANY side, on the related object, as upstream adds it."""
        if f.relation:
            inverse = Field(f.relation.inverse, "RELATION", custom=True, created_at=f.created_at)
            inverse.relation = Relation(ONE_TO_MANY, obj.singular, f.name)
            self.objects[f.relation.target].add(inverse)

    def add_object(self, body: Any) -> ObjectType:
        _check_keys(body, OBJECT_KEYS, "object")
        singular, plural = body.get("nameSingular"), body.get("namePlural")
        for key, name in (("nameSingular", singular), ("namePlural", plural)):
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise ValueError(f"{key} must be a camelCase name like 'deal', got {name!r}.")
            if self.named(name) or name in RESERVED_PLURALS:
                raise ValueError(f"{key} {name!r} is already used by the workspace.")
        if singular == plural:
            raise ValueError("nameSingular and namePlural must differ.")
        field_bodies = body.get("fields", [])
        if not isinstance(field_bodies, list):
            raise ValueError("fields must be a list of field definitions.")
        obj = new_object(singular, plural, custom=True)
        obj.created_at = now_iso()
        if not any(isinstance(b, dict) and b.get("name") == "name" for b in field_bodies):
            obj.add(Field("name", "TEXT", default="", custom=True))
        self.objects[singular] = obj  # so relations may point at the object itself
        try:
            fields = []
            for field_body in field_bodies:
                _check_keys(field_body, FIELD_KEYS - {"object"}, "field")
                fields.append(self._build_field(obj, field_body))
                obj.add(fields[-1])
            inverses = [(f.relation.target, f.relation.inverse) for f in fields if f.relation]
            if len(set(inverses)) < len(inverses):
                raise ValueError("Two relations would add the same inverseName; set inverseName.")
        except ValueError:
            del self.objects[singular]
            raise
        for f in fields:
            self._add_inverse(obj, f)
        return obj

    def _build_field(self, obj: ObjectType, body: dict[str, Any]) -> Field:
        name, type_ = body.get("name"), body.get("type")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ValueError(f"Field name must be a camelCase name like 'okkiId', got {name!r}.")
        if type_ not in CUSTOM_TYPES:
            raise ValueError(
                f"Field type {type_!r} is not supported; use one of {_list(CUSTOM_TYPES)}."
            )
        f = Field(name, type_, custom=True, created_at=now_iso())
        f.label = body.get("label") or ""
        f.unique = _flag(body, "isUnique", False)
        f.nullable = _flag(body, "isNullable", True)
        if f.unique and type_ not in UNIQUE_CAPABLE:
            raise ValueError(
                f"A {type_} field cannot be unique; use one of {_list(UNIQUE_CAPABLE)}."
            )
        if type_ in ("SELECT", "MULTI_SELECT"):
            f.options = _options(body.get("options"))
        elif "options" in body:
            raise ValueError("options are only for SELECT and MULTI_SELECT fields.")
        if type_ == "RELATION":
            f.relation = self._relation(obj, name, body)
        taken = set(obj.fields) | set(obj.columns())
        if name in taken or f.join_column in taken:
            raise ValueError(f"Object {obj.singular} already has a field {name!r}.")
        if "defaultValue" in body:
            if type_ in COMPOSITES or type_ == "RELATION":
                raise ValueError("defaultValue is only supported for scalar fields.")
            try:
                f.default = check_value(obj, f, body["defaultValue"])
            except ApiError as error:
                raise ValueError(f"defaultValue: {error.message}") from None
        return f

    def _relation(self, obj: ObjectType, name: str, body: dict[str, Any]) -> Relation:
        target = self.named(body.get("target"))
        if target is None:
            raise ValueError(f"A RELATION needs a target object; known: {self._names()}.")
        inverse = body.get("inverseName", obj.plural)
        if not isinstance(inverse, str) or not NAME_RE.match(inverse):
            raise ValueError(f"inverseName must be a camelCase name, got {inverse!r}.")
        taken = set(target.fields) | set(target.columns())
        if inverse in taken or (target is obj and inverse == name):
            raise ValueError(
                f"Object {target.singular} already has a field {inverse!r}; "
                "set another inverseName."
            )
        return Relation(MANY_TO_ONE, target.singular, inverse)

    def _names(self) -> str:
        return ", ".join(o.singular for o in self.objects.values())


def _check_keys(body: Any, allowed: set[str], what: str) -> None:
    if not isinstance(body, dict):
        raise ValueError(f"A {what} definition must be a JSON object.")
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(f"Unknown {what} keys {_list(unknown)}; known: {_list(allowed)}.")


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}.")
    return value


def _options(raw: Any) -> tuple[str, ...]:
    values = [item.get("value") if isinstance(item, dict) else item for item in raw or []]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError('options must be a non-empty list of values or {"value": …} objects.')
    if len(set(values)) < len(values):
        raise ValueError("options must not repeat a value.")
    return tuple(values)


def _list(names: set[str]) -> str:
    return ", ".join(sorted(names))
