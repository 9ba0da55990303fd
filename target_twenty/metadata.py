"""The workspace's objects and the fields a client may write, from `GET /rest/metadata/objects`.

Standard and custom objects look the same here. What is left out (docs/api/twenty.md §6):
system objects, inactive and system fields, search vectors, v1 rich text, the ONE_TO_MANY side
of relations, and fields only the server sets (`createdAt`, `createdBy`…). A MANY_TO_ONE
relation is written under its join column (`companyId`), so that is its key here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# Set by the server only (§7).
READ_ONLY = frozenset({"createdAt", "updatedAt", "deletedAt", "createdBy", "updatedBy"})
SKIPPED_TYPES = frozenset({"TS_VECTOR", "RICH_TEXT", "POSITION", "ACTOR"})

# Sub-fields of the composite types (§7), and the one a unique composite is
# compared on (upstream `isIncludedInUniqueConstraint`).
COMPOSITES: dict[str, tuple[str, ...]] = {
    "LINKS": ("primaryLinkUrl", "primaryLinkLabel", "secondaryLinks"),
    "EMAILS": ("primaryEmail", "additionalEmails"),
    "PHONES": (
        "primaryPhoneNumber",
        "primaryPhoneCountryCode",
        "primaryPhoneCallingCode",
        "additionalPhones",
    ),
    "FULL_NAME": ("firstName", "lastName"),
    "ADDRESS": (
        "addressStreet1",
        "addressStreet2",
        "addressStreet3",
        "addressCity",
        "addressState",
        "addressPostcode",
        "addressCountry",
        "addressLat",
        "addressLng",
    ),
    "CURRENCY": ("amountMicros", "currencyCode"),
    "RICH_TEXT_V2": ("blocknote", "markdown"),
}
UNIQUE_SUBFIELD = {
    "LINKS": "primaryLinkUrl",
    "EMAILS": "primaryEmail",
    "PHONES": "primaryPhoneNumber",
    "FULL_NAME": "firstName",
}


class MetadataError(ValueError):
    """The workspace metadata does not have what a setting or a stream needs."""


@dataclass(frozen=True)
class TwentyField:
    key: str  # what a record holds it under: the field name, or the join column of a relation
    type: str
    nullable: bool = True
    unique: bool = False
    options: tuple[str, ...] = ()  # SELECT / MULTI_SELECT values
    target: str | None = None  # nameSingular of the object a relation points to

    # Cached: read several times for every record written.
    @cached_property
    def subfields(self) -> tuple[str, ...] | None:
        return COMPOSITES.get(self.type)

    @cached_property
    def unique_subfield(self) -> str | None:
        """The sub-field upsert matches on, for a unique composite."""
        return UNIQUE_SUBFIELD.get(self.type) if self.unique else None


@dataclass
class TwentyObject:
    id: str  # the object's metadata id: differs between workspaces
    singular: str
    plural: str
    fields: dict[str, TwentyField] = field(default_factory=dict)  # writable, by key
    _unique: tuple[TwentyField, ...] | None = field(default=None, repr=False, compare=False)

    def unique_fields(self) -> tuple[TwentyField, ...]:
        # Computed once per set of fields (read several times for every record written).
        if self._unique is None:
            self._unique = tuple(f for f in self.fields.values() if f.unique)
        return self._unique

    def add_fields(self, fields: dict[str, TwentyField]) -> None:
        self.fields.update(fields)
        self._unique = None

    def describe_fields(self) -> str:
        return ", ".join(sorted(self.fields))


class Workspace:
    def __init__(self, objects: list[TwentyObject]) -> None:
        self.objects = {o.plural: o for o in objects}
        self._by_singular = {o.singular: o for o in objects}

    def object(self, plural: str) -> TwentyObject:
        found = self.objects.get(plural)
        if found is None:
            raise MetadataError(
                f"the workspace has no object named {plural!r} (plural API name); "
                f"objects: {', '.join(sorted(self.objects))}"
            )
        return found

    def by_singular(self, singular: str) -> TwentyObject | None:
        return self._by_singular.get(singular)

    @classmethod
    def from_api(cls, objects: list[dict[str, Any]]) -> Workspace:
        """Objects as the metadata endpoint lists them, each with its `fields` embedded."""
        found = []
        for raw in objects:
            if raw.get("isSystem") or raw.get("isActive") is False:
                continue
            obj = TwentyObject(
                str(raw.get("id", raw["namePlural"])), raw["nameSingular"], raw["namePlural"]
            )
            parsed = (_field(raw_field) for raw_field in raw.get("fields") or [])
            obj.add_fields({f.key: f for f in parsed if f is not None})
            found.append(obj)
        return cls(found)


def _field(raw: dict[str, Any]) -> TwentyField | None:
    name, type_ = raw.get("name"), raw.get("type")
    if (
        not name
        or name in READ_ONLY
        or type_ in SKIPPED_TYPES
        or raw.get("isActive") is False
        or raw.get("isSystem")
    ):
        return None
    options = tuple(o["value"] for o in raw.get("options") or [] if isinstance(o, dict))
    if type_ != "RELATION":
        return TwentyField(
            name,
            type_,
            nullable=raw.get("isNullable", True) is not False,
            unique=bool(raw.get("isUnique")),
            options=options,
        )
    settings = raw.get("settings") or {}
    relation = raw.get("relation") or {}
    kind = settings.get("relationType") or relation.get("type")
    if kind != "MANY_TO_ONE":
        return None  # the inverse list: written from the other side
    target = (relation.get("targetObjectMetadata") or {}).get("nameSingular")
    join_column = settings.get("joinColumnName") or f"{name}Id"
    return TwentyField(join_column, "RELATION", target=target)
