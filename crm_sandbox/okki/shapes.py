"""OKKI's shape variety (knob `shape_variety`): open fields in other shapes, and values that no
client can convert.

Upstream pins down the types of few fields (docs/api/okki.md §10): lists of ids, of plain
names or of objects, comma-joined text, ids as text, all appear. With the knob at a share
`s` (0 < s <= 1), each open field of a rendered record takes, with probability `s`, one of the
other shapes below; ids that are numbers in the documented shape come as text; and a share
`s / 10` of records carries one documented field with a value that cannot be converted (an
amount with a thousands separator, a time in another layout, an object where text belongs).

Every draw is a hash of the record's id, its version (`update_time`) and the field, so the same
record reads the same until it changes, across list and detail calls alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
UNCONVERTIBLE_SHARE = 0.1  # of `shape_variety`: records with one value no client can convert


def company_info(info: Record, variety: float, unconvertible: float | None = None) -> Record:
    """A company/info record in other shapes (contacts included)."""
    draw = _draws(info["company_id"], info["update_time"], variety, unconvertible)
    varied = dict(info)
    if draw.vary("company_id"):  # as on its list row: the same draw
        varied["company_id"] = str(varied["company_id"])
    for name, shapes in _COMPANY_SHAPES.items():
        if name in varied and draw.vary(name):
            varied[name] = draw.pick(name, shapes)(varied[name])
    if draw.vary("user_id"):
        varied["user_id"] = draw.pick("user_id", _ID_LISTS)(varied["user_id"])
    if draw.vary("last_edit_user"):
        varied["last_edit_user"] = str(varied["last_edit_user"])
    varied["customers"] = [
        _contact(person, draw, index) for index, person in enumerate(varied["customers"])
    ]
    if draw.unconvertible():
        name = draw.pick("unconvertible", list(_UNCONVERTIBLE_COMPANY))
        varied[name] = _UNCONVERTIBLE_COMPANY[name](varied[name])
    return varied


def company_row(row: Record, variety: float) -> Record:
    """A company list row: ids as text now and then (the detail call agrees on the rest)."""
    draw = _draws(row["company_id"], row["update_time"], variety)
    varied = dict(row)
    for name in ("company_id", "create_user", "last_edit_user", "archive_type"):
        if draw.vary(name):
            varied[name] = str(varied[name])
    return varied


def opportunity_row(row: Record, variety: float, unconvertible: float | None = None) -> Record:
    draw = _draws(row["opportunity_id"], row["update_time"], variety, unconvertible)
    varied = dict(row)
    if draw.vary("user_id"):  # upstream's example: a list of owners
        varied["user_id"] = draw.pick("user_id", _ID_LISTS)([int(row["user_id"])])
    for name in ("opportunity_id", "customer_id", "stage", "company_id"):
        if draw.vary(name):
            varied[name] = str(varied[name])
    if draw.vary("amount"):
        varied["amount"] = f"{row['amount']:.2f}"  # upstream's example: amounts as text
    if draw.unconvertible():
        name = draw.pick("unconvertible", list(_UNCONVERTIBLE_OPPORTUNITY))
        varied[name] = _UNCONVERTIBLE_OPPORTUNITY[name](varied[name])
    return varied


def follow_up_row(row: Record, variety: float, unconvertible: float | None = None) -> Record:
    """A follow-up row: the contact as a list of ids (the vendor's shape), ids as text."""
    draw = _draws(row["trail_id"], row["update_time"], variety, unconvertible)
    varied = dict(row)
    if draw.vary("customer_id"):
        contact = row["customer_id"]
        varied["customer_id"] = draw.pick("customer_id", _CONTACT_IDS)(contact)
    for name in ("trail_id", "company_id", "opportunity_id", "type"):
        if draw.vary(name):
            varied[name] = str(varied[name])
    if draw.unconvertible():
        name = draw.pick("unconvertible", list(_UNCONVERTIBLE_FOLLOW_UP))
        varied[name] = _UNCONVERTIBLE_FOLLOW_UP[name](varied[name])
    return varied


# Shapes -----------------------------------------------------------------------------------------
Shape = Callable[[Any], Any]


def _ids(key: str) -> Shape:
    return lambda items: [item[key] for item in items]


def _text_ids(key: str) -> Shape:
    return lambda items: [str(item[key]) for item in items]


def _joined(key: str) -> Shape:
    return lambda items: ",".join(str(item[key]) for item in items)


_ID_LISTS: list[Shape] = [
    lambda ids: [str(i) for i in ids],
    lambda ids: ",".join(str(i) for i in ids),
    lambda ids: ids[0] if len(ids) == 1 else ids,
]
_CONTACT_IDS: list[Shape] = [  # one contact id, 0 for none: as the vendor sends it
    lambda contact: [contact] if contact else [],
    lambda contact: str(contact),
]
_OBJECT_LISTS = {  # lists of {id, name} objects: as ids, ids as text, names, joined text
    "origin_list": ("origin_id", "origin_name"),
    "tag": ("tag_id", "tag_name"),
    "client_tag_list": ("tag_id", "tag_name"),
}
_COMPANY_SHAPES: dict[str, list[Shape]] = {
    name: [_ids(key), _text_ids(key), _ids(label), _joined(label), _joined(key)]
    for name, (key, label) in _OBJECT_LISTS.items()
}
_COMPANY_SHAPES |= {
    "tel": [
        lambda tel: {"tel_area_code": tel[0], "tel": tel[1]},
        lambda tel: f"+{tel[0]} {tel[1]}" if tel[1] else "",
    ],
    "trail_status": [
        lambda status: {
            "status_id": str(status["status_id"]),
            "status_name": status["status_name"],
            "status_color": "#cccccc",
        },
        lambda status: status["status_id"],
        lambda status: status["status_name"],
    ],
    "category_ids": [
        lambda ids: [str(i) for i in ids],
        lambda ids: [[i // 100, i] for i in ids],  # category paths: [parent, child]
        lambda ids: ",".join(str(i) for i in ids),
    ],
    "product_group_ids": _ID_LISTS,
    "image_list": [
        lambda images: [image["file_preview_url"] for image in images],
        lambda images: images[0]["file_preview_url"] if images else "",
    ],
    "company": [
        # The vendor's example: ids and field types as text, a phone as an object.
        lambda groups: [
            {
                **group,
                "fields": [
                    {**f, "id": str(f["id"]), "field_type": str(f["field_type"])}
                    for f in group["fields"]
                ],
            }
            for group in groups
        ],
        # Custom fields as one map of field id → value (as on opportunities upstream).
        lambda groups: {str(f["id"]): f["value"] for group in groups for f in group["fields"]},
    ],
}
_CONTACT_SHAPES: dict[str, list[Shape]] = {
    "tel_list": [
        lambda tels: [{"tel_area_code": area, "tel": number} for area, number in tels],
        lambda tels: [f"+{area} {number}" for area, number in tels],
        lambda tels: f"+{tels[0][0]} {tels[0][1]}" if tels else "",
    ],
    "contact": [
        lambda accounts: {a["type"]: a["value"] for a in accounts},
        lambda accounts: [f"{a['type']}:{a['value']}" for a in accounts],
    ],
    "external_field_data": [
        lambda fields: {str(f["id"]): f["value"] for f in fields},
    ],
}


def _contact(person: Record, draw: _Draws, index: int) -> Record:
    varied = dict(person)
    for name, shapes in _CONTACT_SHAPES.items():
        if draw.vary(f"{name}.{index}"):
            varied[name] = draw.pick(f"{name}.{index}", shapes)(varied[name])
    if draw.vary(f"customer_id.{index}"):
        varied["customer_id"] = str(varied["customer_id"])
    return varied


# Values no client can convert ------------------------------------------------------------------
_UNCONVERTIBLE_COMPANY: dict[str, Shape] = {
    "star": lambda star: "★" * star or "none",
    "remark": lambda remark: {"text": remark},
    "order_time": lambda text: _other_layout(text),
    "intention_level": lambda level: ["high", "low"][level % 2],
    "fax": lambda fax: [fax],
    "customers": lambda people: [
        {**p, "birth": "19x0年1月1日"} if i == 0 else p for i, p in enumerate(people)
    ],
}
_UNCONVERTIBLE_OPPORTUNITY: dict[str, Shape] = {
    "amount": lambda amount: f"{float(amount):,.2f}",  # 12,000.50
    "account_date": lambda date: ".".join(reversed(date.split("-"))) if date else "soon",
    "remark": lambda remark: {"text": remark},
    "stage": lambda stage: f"stage {stage}",
}

_UNCONVERTIBLE_FOLLOW_UP: dict[str, Shape] = {
    "type": lambda kind: {101: "note", 103: "call", 104: "meeting"}.get(int(kind), "visit"),
    "create_user": lambda user: {"user_id": user},
}


def _other_layout(text: str) -> str:
    """`2025-11-06 08:00:00` as `06/11/2025 08:00`."""
    if not text or text.startswith("1970"):
        return "n/a"
    date, _, time = text.partition(" ")
    return "/".join(reversed(date.split("-"))) + " " + time[:5]


# Draws ------------------------------------------------------------------------------------------
class _Draws:
    """Deterministic coin flips for one version of one record."""

    def __init__(self, key: str, variety: float, unconvertible: float | None) -> None:
        self.key = key
        self.variety = variety
        # Knob `unconvertible_share`, else a tenth of the variety.
        self.unconvertible_share = (
            variety * UNCONVERTIBLE_SHARE if unconvertible is None else unconvertible
        )

    def _unit(self, name: str) -> float:
        # Not crc32: it is linear, so draws for similar names would move together.
        digest = hashlib.blake2b(f"{self.key}:{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest) / 2**64

    def vary(self, name: str) -> bool:
        return self._unit(name) < self.variety

    def unconvertible(self) -> bool:
        return self._unit("unconvertible?") < self.unconvertible_share

    def pick(self, name: str, options: list[Any]) -> Any:
        return options[int(self._unit(f"{name}#") * len(options))]


def _draws(
    record_id: Any, version: Any, variety: float, unconvertible: float | None = None
) -> _Draws:
    return _Draws(f"{record_id}@{version}", variety, unconvertible)
