"""Workspace metadata: the objects and fields `GET /rest/metadata/objects` describes.

As in docs/api/twenty.md §6 and §7.

Objects and fields are plain dataclasses. The standard workspace holds company, person and
opportunity with the upstream field set (including a deprecated, inactive field each and the
ONE_TO_MANY sides of their relations) plus `workspaceMember`, a system object clients skip.
Custom fields and objects are added at run time through the sandbox's control routes.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Kinds of composite sub-fields (what `values` checks them as).
TEXT = "text"
NUMBER = "number"
INTEGER = "integer"
STRINGS = "strings"  # a list of strings
LINK_LIST = "links"  # a list of {url, label}
PHONE_LIST = "phones"  # a list of {number, countryCode, callingCode}
JSON_OBJECT = "json"


@dataclass(frozen=True)
class SubField:
    kind: str
    default: Any = ""
    pattern: str | None = None  # a regular expression non-empty text must match
    hint: str = ""  # what the pattern means, for error messages


COMPOSITES: dict[str, dict[str, SubField]] = {
    "LINKS": {
        "primaryLinkUrl": SubField(TEXT),
        "primaryLinkLabel": SubField(TEXT),
        "secondaryLinks": SubField(LINK_LIST, []),
    },
    "EMAILS": {"primaryEmail": SubField(TEXT), "additionalEmails": SubField(STRINGS, [])},
    "PHONES": {
        "primaryPhoneNumber": SubField(TEXT),
        "primaryPhoneCountryCode": SubField(
            TEXT, "", r"[A-Z]{2}", 'an ISO 3166 alpha-2 code ("FR")'
        ),
        "primaryPhoneCallingCode": SubField(TEXT, "", r"\+[0-9]{1,4}", 'a calling code ("+33")'),
        "additionalPhones": SubField(PHONE_LIST, []),
    },
    "FULL_NAME": {"firstName": SubField(TEXT), "lastName": SubField(TEXT)},
    "ADDRESS": {
        "addressStreet1": SubField(TEXT),
        "addressStreet2": SubField(TEXT),
        "addressCity": SubField(TEXT),
        "addressState": SubField(TEXT),
        "addressPostcode": SubField(TEXT),
        "addressCountry": SubField(TEXT),
        "addressLat": SubField(NUMBER, None),
        "addressLng": SubField(NUMBER, None),
    },
    "CURRENCY": {
        "amountMicros": SubField(INTEGER, None),
        "currencyCode": SubField(TEXT, "", r"[A-Z]{3}", 'an ISO 4217 code ("USD")'),
    },
    # A note's or task's body: `markdown` alone is enough to write (upstream fills the other).
    "RICH_TEXT_V2": {"blocknote": SubField(TEXT, None), "markdown": SubField(TEXT, None)},
    "ACTOR": {
        "source": SubField(TEXT, "MANUAL"),
        "workspaceMemberId": SubField(TEXT, None),
        "name": SubField(TEXT),
        "context": SubField(JSON_OBJECT, {}),
    },
}

# The sub-field a unique composite is compared on (upstream `isIncludedInUniqueConstraint`).
UNIQUE_SUBFIELD = {
    "LINKS": "primaryLinkUrl",
    "EMAILS": "primaryEmail",
    "PHONES": "primaryPhoneNumber",
    "FULL_NAME": "firstName",
}

SCALAR_TYPES = {
    "UUID",
    "TEXT",
    "NUMBER",
    "BOOLEAN",
    "DATE_TIME",
    "DATE",
    "SELECT",
    "MULTI_SELECT",
    "RAW_JSON",
    "POSITION",
    "TS_VECTOR",
    "RELATION",
}
# What the control route `POST /_sandbox/metadata/fields` can add.
CUSTOM_TYPES = (SCALAR_TYPES | set(COMPOSITES)) - {"ACTOR", "POSITION", "TS_VECTOR"}
UNIQUE_CAPABLE = {"UUID", "TEXT", "NUMBER", "DATE_TIME", "DATE", "SELECT", *UNIQUE_SUBFIELD}

MANY_TO_ONE, ONE_TO_MANY = "MANY_TO_ONE", "ONE_TO_MANY"
NAME_RE = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# Fixed, so metadata ids are the same in every run (they differ per workspace upstream).
_NAMESPACE = uuid.UUID("5b0f6c1e-8d1a-4e0b-9a55-7477656e7479")
STANDARD_CREATED_AT = "2025-01-01T00:00:00.000Z"


def now_iso() -> str:
    """The current time as the server writes it: `2025-03-01T09:30:00.000Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, ":".join(parts)))


def label_of(name: str) -> str:
    """`annualRecurringRevenue` → `Annual Recurring Revenue`."""
    spaced = re.sub(r"(?<!^)(?=[A-Z])", " ", name)
    return spaced[:1].upper() + spaced[1:]


@dataclass
class Relation:
    kind: str  # MANY_TO_ONE (holds a join column) or ONE_TO_MANY (the inverse list)
    target: str  # nameSingular of the object on the other side
    inverse: str  # name of the field on the other side


@dataclass
class Field:
    name: str
    type: str
    nullable: bool = True
    default: Any = None  # value stored when a record omits the field (composites: per sub-field)
    unique: bool = False
    custom: bool = False
    active: bool = True
    system: bool = False
    read_only: bool = False  # set by the server only (createdAt, createdBy…)
    options: tuple[str, ...] = ()  # SELECT / MULTI_SELECT values
    relation: Relation | None = None
    label: str = ""
    created_at: str = STANDARD_CREATED_AT

    @property
    def join_column(self) -> str | None:
        """The key a MANY_TO_ONE relation is written and read under (`companyId`)."""
        if self.relation and self.relation.kind == MANY_TO_ONE:
            return f"{self.name}Id"
        return None

    @property
    def column(self) -> str | None:
        """The key this field has in a stored record, or None when records do not hold it."""
        if not self.active or self.type == "TS_VECTOR":
            return None
        if self.relation:
            return self.join_column
        return self.name

    @property
    def unique_path(self) -> str:
        """What upsert compares, as named in messages: `domainName.primaryLinkUrl`."""
        sub = UNIQUE_SUBFIELD.get(self.type)
        return f"{self.name}.{sub}" if sub else self.name


@dataclass
class ObjectType:
    singular: str
    plural: str
    fields: dict[str, Field] = field(default_factory=dict)
    custom: bool = False
    system: bool = False
    created_at: str = STANDARD_CREATED_AT

    @property
    def id(self) -> str:
        return stable_id("object", self.singular)

    def add(self, *new: Field) -> None:
        for f in new:
            f.label = f.label or label_of(f.name)
            self.fields[f.name] = f

    def columns(self) -> dict[str, Field]:
        """Keys of a stored record → their field, in metadata order (`id` first)."""
        return {f.column: f for f in self.fields.values() if f.column}

    def writable(self) -> dict[str, Field]:
        return {key: f for key, f in self.columns().items() if not f.read_only}

    def unique_fields(self) -> list[Field]:
        """`id` and every active unique field: the keys upsert matches on (§2)."""
        return [f for f in self.columns().values() if f.unique or f.name == "id"]


def _system_fields() -> list[Field]:
    return [
        Field("createdAt", "DATE_TIME", nullable=False, read_only=True, label="Creation date"),
        Field("updatedAt", "DATE_TIME", nullable=False, read_only=True, label="Last update"),
        Field("deletedAt", "DATE_TIME", read_only=True, label="Deleted at"),
        Field("createdBy", "ACTOR", nullable=False, read_only=True),
        Field("updatedBy", "ACTOR", nullable=False, read_only=True),
        Field("position", "POSITION", nullable=False, default=0, system=True),
        Field("searchVector", "TS_VECTOR", system=True, read_only=True),
    ]


def new_object(singular: str, plural: str, *own: Field, custom: bool = False) -> ObjectType:
    obj = ObjectType(singular, plural, custom=custom)
    obj.add(Field("id", "UUID", nullable=False, system=True, label="Id"), *own, *_system_fields())
    return obj


def _many_to_one(name: str, target: str, inverse: str) -> Field:
    return Field(name, "RELATION", relation=Relation(MANY_TO_ONE, target, inverse))


def _one_to_many(name: str, target: str, inverse: str) -> Field:
    return Field(name, "RELATION", relation=Relation(ONE_TO_MANY, target, inverse))


STAGES = ("NEW", "SCREENING", "MEETING", "PROPOSAL", "CUSTOMER")


TASK_STATUSES = ("TODO", "IN_PROGRESS", "DONE")
# The relation names of noteTarget/taskTarget differ between Twenty versions: `company`
# (joinColumnName companyId) in one, `targetCompany` (targetCompanyId) in another.
JUNCTION_STYLES = {"plain": "", "morph": "target"}


def standard_objects(junction_style: str = "plain") -> list[ObjectType]:
    """A fresh copy of the standard workspace (§7), as upstream Twenty v1 defines it, with
    notes and tasks and the junction objects that link them to companies, people and
    opportunities (named as `junction_style` says)."""
    company = new_object(
        "company",
        "companies",
        Field("name", "TEXT", default=""),
        Field("domainName", "LINKS", unique=True, label="Domain Name"),
        Field("employees", "NUMBER"),
        Field("linkedinLink", "LINKS", label="Linkedin"),
        Field("xLink", "LINKS", label="X"),
        Field("annualRecurringRevenue", "CURRENCY", label="ARR"),
        Field("address", "ADDRESS"),
        Field("idealCustomerProfile", "BOOLEAN", nullable=False, default=False, label="ICP"),
        _many_to_one("accountOwner", "workspaceMember", "accountOwnerForCompanies"),
        _one_to_many("people", "person", "company"),
        _one_to_many("opportunities", "opportunity", "company"),
        Field("addressOld", "TEXT", active=False, label="Address (deprecated)"),
    )
    person = new_object(
        "person",
        "people",
        Field("name", "FULL_NAME"),
        Field("emails", "EMAILS", unique=True),
        Field("linkedinLink", "LINKS", label="Linkedin"),
        Field("xLink", "LINKS", label="X"),
        Field("jobTitle", "TEXT", default=""),
        Field("phones", "PHONES"),
        Field("city", "TEXT", default=""),
        Field("avatarUrl", "TEXT", default="", system=True),
        _many_to_one("company", "company", "people"),
        _one_to_many("pointOfContactForOpportunities", "opportunity", "pointOfContact"),
        Field("phone", "TEXT", active=False, label="Phone (deprecated)"),
    )
    opportunity = new_object(
        "opportunity",
        "opportunities",
        Field("name", "TEXT", nullable=False, default=""),
        Field("amount", "CURRENCY"),
        Field("closeDate", "DATE_TIME"),
        Field("stage", "SELECT", nullable=False, default="NEW", options=STAGES),
        _many_to_one("company", "company", "opportunities"),
        _many_to_one("pointOfContact", "person", "pointOfContactForOpportunities"),
        _many_to_one("owner", "workspaceMember", "ownedOpportunities"),
        Field("probability", "TEXT", active=False, label="Probability (deprecated)"),
    )
    member = new_object(
        "workspaceMember",
        "workspaceMembers",
        Field("name", "FULL_NAME", nullable=False),
        Field("userEmail", "TEXT", default=""),
        Field("locale", "TEXT", nullable=False, default="en"),
        _one_to_many("accountOwnerForCompanies", "company", "accountOwner"),
        _one_to_many("ownedOpportunities", "opportunity", "owner"),
    )
    member.system = True
    prefix = JUNCTION_STYLES[junction_style]
    note = new_object(
        "note",
        "notes",
        Field("title", "TEXT", default=""),
        Field("bodyV2", "RICH_TEXT_V2", label="Body"),
        _one_to_many("noteTargets", "noteTarget", "note"),
    )
    task = new_object(
        "task",
        "tasks",
        Field("title", "TEXT", default=""),
        Field("bodyV2", "RICH_TEXT_V2", label="Body"),
        Field("dueAt", "DATE_TIME", label="Due Date"),
        Field("status", "SELECT", default="TODO", options=TASK_STATUSES),
        _many_to_one("assignee", "workspaceMember", "assignedTasks"),
        _one_to_many("taskTargets", "taskTarget", "task"),
    )
    member.add(_one_to_many("assignedTasks", "task", "assignee"))
    junctions = []
    for kind, parent in (("noteTarget", note), ("taskTarget", task)):
        links = {"company": company, "person": person, "opportunity": opportunity}
        junction = new_object(
            kind,
            f"{kind}s",
            _many_to_one(parent.singular, parent.singular, f"{kind}s"),
            *(_many_to_one(_named(prefix, name), name, f"{kind}s") for name in links),
        )
        for name, target in links.items():
            target.add(_one_to_many(f"{kind}s", kind, _named(prefix, name)))
        junctions.append(junction)
    return [company, person, opportunity, member, note, task, *junctions]


def _named(prefix: str, name: str) -> str:
    """`company`, or `targetCompany` with the prefix `target`."""
    return f"{prefix}{name[:1].upper()}{name[1:]}" if prefix else name


# The one workspace member every sandbox workspace has (upstream demo login).
DEMO_MEMBER = {
    "id": stable_id("row", "workspaceMember", "tim"),
    "name": {"firstName": "Tim", "lastName": "Apple"},
    "userEmail": "tim@apple.dev",
}


# Rendering, as `GET /rest/metadata/objects` answers ------------------------------------------


def api_default(value: Any) -> Any:
    """Upstream's `defaultValue` notation: strings are SQL-quoted (`"'NEW'"`, `"''"`)."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return {k: api_default(v) for k, v in value.items()}
    return value


def field_to_api(obj: ObjectType, f: Field, objects: dict[str, ObjectType]) -> dict[str, Any]:
    field_id = stable_id("field", obj.singular, f.name)
    default = f.default
    if f.type in COMPOSITES:
        default = {name: sub.default for name, sub in COMPOSITES[f.type].items()}
    options = None
    if f.options:
        options = [
            {
                "id": stable_id("option", obj.singular, f.name, value),
                "value": value,
                "label": value.replace("_", " ").title(),
                "position": position,
            }
            for position, value in enumerate(f.options)
        ]
    body: dict[str, Any] = {
        "id": field_id,
        "objectMetadataId": obj.id,
        "type": f.type,
        "name": f.name,
        "label": f.label,
        "description": None,
        "isCustom": f.custom,
        "isActive": f.active,
        "isSystem": f.system,
        "isNullable": f.nullable,
        "isUnique": f.unique,
        "defaultValue": api_default(default),
        "options": options,
        "settings": None,
        "createdAt": f.created_at,
        "updatedAt": f.created_at,
    }
    if f.relation:
        target = objects[f.relation.target]
        settings: dict[str, Any] = {"relationType": f.relation.kind}
        if f.join_column:
            settings |= {"onDelete": "SET_NULL", "joinColumnName": f.join_column}
        body["settings"] = settings
        body["relation"] = {
            "type": f.relation.kind,
            "sourceObjectMetadata": _object_ref(obj),
            "targetObjectMetadata": _object_ref(target),
            "sourceFieldMetadata": {"id": field_id, "name": f.name},
            "targetFieldMetadata": {
                "id": stable_id("field", target.singular, f.relation.inverse),
                "name": f.relation.inverse,
            },
        }
    return body


def _object_ref(obj: ObjectType) -> dict[str, str]:
    return {"id": obj.id, "nameSingular": obj.singular, "namePlural": obj.plural}


def object_to_api(obj: ObjectType, objects: dict[str, ObjectType]) -> dict[str, Any]:
    return {
        "id": obj.id,
        "nameSingular": obj.singular,
        "namePlural": obj.plural,
        "labelSingular": label_of(obj.singular),
        "labelPlural": label_of(obj.plural),
        "description": None,
        "isCustom": obj.custom,
        "isActive": True,
        "isSystem": obj.system,
        "isRemote": False,
        "createdAt": obj.created_at,
        "updatedAt": obj.created_at,
        "labelIdentifierFieldMetadataId": stable_id("field", obj.singular, "name"),
        "fields": [field_to_api(obj, f, objects) for f in obj.fields.values()],
    }
