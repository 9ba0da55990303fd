"""Seeded customer records that fill every writable widget of the demo customer form.

`expected(record)` is the row the sandbox should hold for a record, in read shape, so a test can
compare every value the target wrote. Used by the tests and the benchmark.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from crm_sandbox.jiandaoyun.forms import DEMO_CUSTOMERS, INDUSTRIES, LEVELS, SOURCES
from crm_sandbox.jiandaoyun.forms import TAGS as FORM_TAGS
from crm_sandbox.jiandaoyun.values import department, member

STREAM = "customers"
TIMEZONE = "Asia/Shanghai"

SCHEMA = {
    "id": {"type": "string"},
    "name": {"type": "string"},
    "note": {"type": ["string", "null"]},
    "amount": {"type": ["number", "null"]},
    "last_contact": {"type": ["string", "null"], "format": "date-time"},
    "level": {"type": ["string", "null"]},
    "source": {"type": ["string", "null"]},
    "industries": {"type": ["array", "null"], "items": {"type": "string"}},
    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
    "address": {
        "type": ["object", "null"],
        "properties": {k: {"type": "string"} for k in ("province", "city", "district", "detail")},
    },
    "phone": {"type": ["string", "null"]},
    "owner": {"type": ["string", "null"]},
    "dept": {"type": ["integer", "null"]},
    "contacts": {
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "title": {"type": ["string", "null"]},
                "calls": {"type": ["integer", "null"]},
                "first_contact": {"type": ["string", "null"], "format": "date-time"},
            },
        },
    },
    "_sdc_extracted_at": {"type": ["string", "null"], "format": "date-time"},
}

# Widgets named every way the setting allows: label, alias and widget id.
FIELDS = {
    "id": "customer_id",  # alias
    "name": "客户名称",  # label
    "note": "_widget_1704067200003",  # widget id
    "amount": "金额",
    "last_contact": "最近跟进时间",
    "level": "客户等级",
    "source": "客户来源",
    "industries": "所属行业",
    "tags": "标签",
    "address": "地址",
    "phone": "电话",
    "owner": "负责人",
    "dept": "所属部门",
}
SUBFORMS = {
    "contacts": {
        "widget": "联系人",
        "fields": {
            "name": "姓名",
            "title": "职务",
            "calls": "联系次数",
            "first_contact": "首次联系时间",
        },
    }
}

TAGS = FORM_TAGS[:4]  # the demo form's options (crm_sandbox/jiandaoyun/forms.py)
PLACES = [
    ("浙江省", "杭州市", "西湖区"),
    ("广东省", "深圳市", "南山区"),
    ("北京市", "北京市", "朝阳区"),
]
OWNERS = ["zhangsan", "lisi", "wangwu", "jdy-admin"]
OFFSETS = ["Z", "+08:00", "-05:00", "+05:30", ""]  # "" = no zone: read in TIMEZONE


def form_spec(form: tuple[str, str], **more: Any) -> dict[str, Any]:
    return {
        "app_id": form[0],
        "entry_id": form[1],
        "fields": FIELDS,
        "subforms": SUBFORMS,
        **more,
    }


def _moment(rng: random.Random) -> str:
    base = dt.datetime(2020, 1, 1) + dt.timedelta(seconds=rng.randrange(4 * 365 * 86400))
    millis = rng.randrange(1000)
    text = base.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}" if rng.random() < 0.5 else "")
    return text + rng.choice(OFFSETS)


def customers(count: int, seed: int = 1, version: int = 0) -> list[dict[str, Any]]:
    """`count` records; another `version` changes every value but the key."""
    rng = random.Random(f"{seed}-{version}")
    out = []
    for i in range(count):
        province, city, district = rng.choice(PLACES)
        out.append(
            {
                "id": f"C{i:06d}",
                "name": f"客户 {i} · {rng.choice(['有限公司', 'GmbH', 'Ltd.', 'Σ'])} v{version}",
                "note": rng.choice([None, f"第一行\n第二行 {rng.random()}", '引号 " 和 \\ 反斜杠']),
                "amount": rng.choice([None, rng.randrange(10**8) / 100, rng.randrange(-500, 500)]),
                "last_contact": rng.choice([None, _moment(rng)]),
                "level": rng.choice(LEVELS),
                "source": rng.choice([None, *SOURCES]),
                "industries": rng.sample(INDUSTRIES, rng.randrange(0, 4)),
                "tags": rng.choice([None, rng.sample(TAGS, rng.randrange(1, 3))]),
                "address": {
                    "province": province,
                    "city": city,
                    "district": district,
                    "detail": f"{rng.randrange(1, 999)} 号",
                },
                "phone": rng.choice(
                    [None, f"+86 1{rng.randrange(10**9, 10**10)}", "0571-8888 0000"]
                ),
                "owner": rng.choice(OWNERS),
                "dept": rng.choice([None, 1, 2, 3]),
                "contacts": [
                    {
                        "name": f"联系人 {i}-{n}",
                        "title": rng.choice([None, "经理", "CEO"]),
                        "calls": rng.randrange(0, 50),
                        "first_contact": _moment(rng),
                    }
                    for n in range(rng.randrange(0, 4))
                ],
                "_sdc_extracted_at": "2024-06-01T00:00:00Z",
            }
        )
    return out


# What the sandbox should hold ---------------------------------------------------------------------
_NAMES = {w["label"]: w["name"] for w in DEMO_CUSTOMERS}
_ITEMS = {w["label"]: w["name"] for w in DEMO_CUSTOMERS[13]["items"]}


def utc(text: str | None) -> str | None:
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))  # Asia/Shanghai
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expected(rec: dict[str, Any]) -> dict[str, Any]:
    """The record's row as data/list returns it (subform rows without their `_id`)."""
    amount = rec["amount"]
    return {
        "customer_id": rec["id"],
        _NAMES["客户名称"]: rec["name"],
        _NAMES["备注"]: rec["note"] or "",
        "amount": None if amount is None else float(amount),
        _NAMES["最近跟进时间"]: utc(rec["last_contact"]),
        _NAMES["客户等级"]: rec["level"],
        _NAMES["客户来源"]: rec["source"] or "",
        _NAMES["所属行业"]: rec["industries"],
        _NAMES["标签"]: rec["tags"] or [],
        _NAMES["地址"]: rec["address"],
        _NAMES["电话"]: {"phone": rec["phone"], "verified": False} if rec["phone"] else {},
        "owner": member(rec["owner"]),
        _NAMES["所属部门"]: department(rec["dept"]) if rec["dept"] else None,
        _NAMES["联系人"]: [
            {
                _ITEMS["姓名"]: c["name"],
                _ITEMS["职务"]: c["title"] or "",
                _ITEMS["联系次数"]: c["calls"],
                _ITEMS["首次联系时间"]: utc(c["first_contact"]),
                _ITEMS["联系人编号"]: "",  # not mapped
            }
            for c in rec["contacts"]
        ],
    }


def actual(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row, reduced to what `expected` describes."""
    keys = expected_keys()
    out = {k: row.get(k) for k in keys}
    out[_NAMES["联系人"]] = [
        {k: v for k, v in item.items() if k != "_id"} for item in row[_NAMES["联系人"]]
    ]
    if out["amount"] is not None:
        out["amount"] = float(out["amount"])
    return out


def expected_keys() -> list[str]:
    return list(expected(customers(1)[0]))
