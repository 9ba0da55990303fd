"""OKKI records as the sandbox stores them, and the JSON shapes the API renders them in.

Records are compact slotted objects holding epoch seconds and ids; the API's JSON (list rows,
company/info, opportunity rows) is built per request, so 100,000 companies stay cheap to hold.
The tenant's configuration (users, trail statuses, tags, custom fields, stages) is fixed here.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass, field
from typing import Any

# Asia/Shanghai has had no daylight saving time since 1991, so a fixed UTC+8 offset is exact.
SHANGHAI_OFFSET = 8 * 3600
UNSET_TIME = "1970-01-01 00:00:00"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def now_epoch() -> int:
    """The current second: the sandbox runs on the real clock."""
    return int(time.time())


def format_time(epoch: int) -> str:
    """Epoch seconds as Shanghai wall time; 0 means unset."""
    if epoch == 0:
        return UNSET_TIME
    return time.strftime(_TIME_FORMAT, time.gmtime(epoch + SHANGHAI_OFFSET))


def format_date(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch + SHANGHAI_OFFSET)) if epoch else ""


def parse_time(text: str) -> int:
    """`YYYY-MM-DD HH:MM:SS` Shanghai wall time as epoch seconds; ValueError when malformed."""
    if not _TIME_PATTERN.fullmatch(text):
        raise ValueError(f"not YYYY-MM-DD HH:MM:SS: {text!r}")
    return calendar.timegm(time.strptime(text, _TIME_FORMAT)) - SHANGHAI_OFFSET


# The tenant's configuration ---------------------------------------------------------------------

USERS = {  # user_id -> nickname
    55280038: "李娜",
    55280040: "王伟",
    55280041: "Kevin Zhang",
    55280043: "陈静",
    55280047: "Lucy Liu",
    55280052: "赵磊",
    55280058: "Amy Wu",
    55280061: "孙浩",
}
TRAIL_STATUSES = {1: "New", 2: "Contacted", 3: "Quoted", 4: "Sample sent", 5: "Won", 6: "Lost"}
TAGS = {101: "VIP", 102: "Distributor", 103: "展会客户", 104: "Price sensitive", 105: "复购"}
ORIGINS = {1: "Trade show", 2: "Alibaba", 3: "Website inquiry", 4: "Referral", 5: "Cold email"}
CONTACT_TYPES = ("linkedin", "whatsapp", "wechat", "skype", "facebook")
CATEGORIES = {  # category id -> name; the id // 100 is its parent category
    101: "LED lighting",
    102: "Lamps",
    201: "Hand tools",
    202: "Power tools",
    301: "Textiles",
    401: "Packaging",
}
PRODUCT_GROUPS = {11: "Lighting", 12: "Tools", 13: "Home"}
PUBLIC_POOL = (1, "公共公海分组")  # where companies without an owner sit
CONTACT_FIELD = (16664800173, "Preferred language", 3)  # (id, name, field_type) of contacts

# field_type: 1 single-line text, 2 multi-line text, 3 single select, 4 date, 5 number,
# 7 multi-select (its value is a list of options).
CUSTOM_FIELD_GROUPS: tuple[tuple[int, str, tuple[tuple[int, str, int], ...]], ...] = (
    (1, "Basic", ((3001, "Industry", 3), (3002, "Annual revenue (USD)", 5), (3003, "Founded", 4))),
    (2, "Trade", ((3101, "Main products", 2), (3102, "Incoterm", 3), (3103, "Certifications", 7))),
)

TRAIL_TYPES = {  # follow-up types (docs/api/okki.md §9); upstream has returned 101 for all
    101: "quick note",
    102: "email",
    103: "call",
    104: "meeting",
    105: "social",
    106: "visit",
}

STAGES = {  # stage id -> (name, stage_type: 1 in progress, 2 won, 3 lost)
    1: ("Initial contact", 1),
    2: ("Needs analysis", 1),
    3: ("Negotiation", 1),
    4: ("Won", 2),
    5: ("Lost", 3),
}


# Stored records -------------------------------------------------------------------------------


@dataclass(slots=True)
class Contact:
    customer_id: int
    name: str
    email: str  # "" when the contact has none
    tel: tuple[tuple[str, str], ...]  # (area code, number) pairs
    post: str
    post_grade: int
    gender: int  # 0 unknown, 1 male, 2 female
    birth: str  # YYYY-MM-DD or ""
    remark: str
    main: bool
    contact: tuple[tuple[str, str], ...]  # (type, value) pairs
    language: str  # the custom contact field CONTACT_FIELD; "" when unset


@dataclass(slots=True)
class Company:
    company_id: int
    serial_id: str
    name: str
    short_name: str
    country: str  # ISO-2
    province: str
    city: str
    address: str
    homepage: str
    tel: tuple[str, str]  # (area code, number); ("", "") when missing
    fax: str
    remark: str
    star: int
    intention_level: int
    scale_id: int
    group_id: int
    trail_status: int
    origins: tuple[int, ...]
    tags: tuple[int, ...]
    owners: tuple[int, ...]  # no owner = the company sits in the public pool
    create_user: int
    last_edit_user: int
    archive_type: int
    create_time: int  # epoch seconds; 0 = unset
    update_time: int
    edit_time: int
    order_time: int
    next_follow_up_time: int
    custom: tuple[Any, ...]  # values in CUSTOM_FIELD_GROUPS order
    categories: tuple[int, ...]  # CATEGORIES ids
    product_groups: tuple[int, ...]  # PRODUCT_GROUPS ids
    images: int  # how many pictures
    customers: list[Contact] = field(default_factory=list)


@dataclass(slots=True)
class Opportunity:
    opportunity_id: int
    serial_id: str
    name: str
    company_id: int
    customer_id: int  # the main contact, 0 when the company has none
    amount: float
    currency: str
    stage: int
    account_date: str  # expected close date, YYYY-MM-DD
    user_id: int
    create_time: int
    update_time: int
    remark: str
    deleted: bool = False  # listed with enable_flag 0 (knob `opportunity_deletes`)


@dataclass(slots=True)
class FollowUp:
    """A follow-up (跟进动态) of a company, maybe naming a contact and an opportunity."""

    trail_id: int
    type: int
    content: str  # may hold line breaks and HTML
    company_id: int
    customer_id: int  # the contact, 0 when none
    opportunity_id: int  # 0 when none
    create_user: int
    create_time: int  # when it happened: users may set it in the past; never changes
    update_time: int  # when it was last written
    deleted: bool = False  # still listed, with delete_flag 1


# Rendering ------------------------------------------------------------------------------------


def company_row(c: Company) -> dict[str, Any]:
    """A thin `/v1/company/list` row (user_id is a string there, an array on company/info)."""
    return {
        "company_id": c.company_id,
        "user_id": ",".join(str(u) for u in c.owners),
        "name": c.name,
        "short_name": c.short_name,
        "serial_id": c.serial_id,
        "order_time": format_time(c.order_time),
        "create_time": format_time(c.create_time),
        "update_time": format_time(c.update_time),
        "create_user": c.create_user,
        "last_edit_user": c.last_edit_user,
        "archive_type": c.archive_type,
        "edit_time": format_time(c.edit_time),
    }


def company_info(c: Company) -> dict[str, Any]:
    """The full `/v1/company/info` record, contacts and custom fields included.

    Open fields (docs/api/okki.md §10) in one shape each: the documented one, or for fields
    documented without a shape, the vendor's example's (`shapes.py` serves the others).
    """
    values = iter(c.custom)
    tags = [{"tag_id": t, "tag_name": TAGS[t]} for t in c.tags]
    pool_id, pool_name = (0, "") if c.owners else PUBLIC_POOL
    return {
        "company_id": c.company_id,
        "name": c.name,
        "short_name": c.short_name,
        "serial_id": c.serial_id,
        "country": c.country,
        "province": c.province,
        "city": c.city,
        "address": c.address,
        "homepage": c.homepage,
        "tel": list(c.tel),
        "tel_area_code": c.tel[0],
        "fax": c.fax,
        "remark": c.remark,
        "star": c.star,
        "intention_level": c.intention_level,
        "scale_id": c.scale_id,
        "group_id": c.group_id,
        "pool_id": pool_id,
        "pool_name": pool_name,
        "trail_status": {
            "status_id": c.trail_status,
            "status_name": TRAIL_STATUSES[c.trail_status],
        },
        "origin_list": [{"origin_id": o, "origin_name": ORIGINS[o]} for o in c.origins],
        "tag": tags,
        "client_tag_list": list(tags),
        "category_ids": list(c.categories),
        "product_group_ids": list(c.product_groups),
        "image_list": [_image(c.company_id, n) for n in range(1, c.images + 1)],
        "user_id": list(c.owners),
        "owner": [{"user_id": u, "nickname": USERS[u]} for u in c.owners],
        "create_user": c.create_user,
        "last_edit_user": c.last_edit_user,
        "archive_type": c.archive_type,
        "create_time": format_time(c.create_time),
        "update_time": format_time(c.update_time),
        "edit_time": format_time(c.edit_time),
        "order_time": format_time(c.order_time),
        "archive_time": format_time(c.create_time),
        "recent_follow_up_time": format_time(c.order_time),
        "next_follow_up_time": format_time(c.next_follow_up_time),
        "company": [
            {
                "group_id": group_id,
                "name": group_name,
                "fields": [
                    {"id": fid, "name": fname, "field_type": ftype, "value": next(values)}
                    for fid, fname, ftype in group_fields
                ],
            }
            for group_id, group_name, group_fields in CUSTOM_FIELD_GROUPS
        ],
        "customers": [contact_info(person, c.company_id) for person in c.customers],
    }


def contact_info(person: Contact, company_id: int) -> dict[str, Any]:
    return {
        "customer_id": person.customer_id,
        "company_id": company_id,
        "name": person.name,
        "email": person.email,
        "tel_list": [list(t) for t in person.tel],
        "post": person.post,
        "post_grade": person.post_grade,
        "gender": person.gender,
        "birth": person.birth,
        "remark": person.remark,
        "main_customer_flag": 1 if person.main else 0,
        "contact": [{"type": kind, "value": value} for kind, value in person.contact],
        "image_list": [],
        "external_field_data": [
            {
                "id": CONTACT_FIELD[0],
                "name": CONTACT_FIELD[1],
                "field_type": CONTACT_FIELD[2],
                "value": person.language,
            }
        ],
    }


def _image(company_id: int, number: int) -> dict[str, Any]:
    return {
        "file_path": f"company/{company_id}/{number}.jpg",
        "file_preview_url": f"https://files.example.com/company/{company_id}/{number}.jpg",
        "file_name": f"photo-{number}.jpg",
        "file_size": 20_000 + company_id % 50_000 + number,
    }


def opportunity_row(o: Opportunity) -> dict[str, Any]:
    stage_name, stage_type = STAGES[o.stage]
    return {
        "opportunity_id": o.opportunity_id,
        "serial_id": o.serial_id,
        "name": o.name,
        "company_id": o.company_id,
        "customer_id": o.customer_id,
        "amount": o.amount,
        "currency": o.currency,
        "stage": o.stage,
        "stage_name": stage_name,
        "stage_type": stage_type,
        "account_date": o.account_date,
        "user_id": str(o.user_id),
        "create_time": format_time(o.create_time),
        "update_time": format_time(o.update_time),
        "remark": o.remark,
        "enable_flag": 0 if o.deleted else 1,
    }


def follow_up_row(f: FollowUp) -> dict[str, Any]:
    """A `/v1/dynamic/trail/list` row, in the contract's shape (docs/api/okki.md §9)."""
    return {
        "trail_id": f.trail_id,
        "type": f.type,
        "content": f.content,
        "company_id": f.company_id,
        "customer_id": f.customer_id,
        "opportunity_id": f.opportunity_id,
        "create_user": f.create_user,
        "create_time": format_time(f.create_time),
        "update_time": format_time(f.update_time),
        "enable_flag": 0 if f.deleted else 1,
        "delete_flag": 1 if f.deleted else 0,
    }
