"""Form definitions: the widget lists `widget/list` answers, and the demo forms.

Widget lists as docs/api/jiandaoyun.md §2 describes them.

A form file has the shape `{"<app_id>": {"<entry_id>": {"name": "…", "widgets": [...]}}}`, the
widgets exactly as `widget/list` returns them. `widgetName` may be left out when `name` is the
widget id itself. Beside the documented keys a widget may carry `"required": true` (the form
marks it required; the API does not enforce it) and, on an option widget, `"options"`: the
option texts it offers (values outside them are saved empty). Both are our choices where the
vendor's pages are silent: see §2.

Widget types are those of §7 plus the non-writable sn, linkdata, signature and
aggregation; others (image, upload, usergroup, …) are refused, as is a subform
inside a subform.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_sandbox.jiandaoyun.values import (
    OPTION_TYPES,
    READ_ONLY_TYPES,
    SYSTEM_FIELDS,
    WRITABLE_TYPES,
)

WIDGET_ID = re.compile(r"_widget_\d{13}")
# Returned by widget/list beside the widgets, as in §2.1. Rows carry the first three
# (store.py); flowState belongs to workflow forms, which the sandbox does not run.
SYS_WIDGETS = [{"name": n} for n in ("creator", "createTime", "updateTime", "flowState")]


@dataclass
class Form:
    app_id: str
    entry_id: str
    name: str
    widgets: list[dict[str, Any]]
    modified: str = ""  # dataModifyTime: when the definition last changed

    @property
    def key(self) -> str:
        return f"{self.app_id}/{self.entry_id}"

    def widget_list(self) -> dict[str, Any]:
        return {"widgets": self.widgets, "sysWidgets": SYS_WIDGETS, "dataModifyTime": self.modified}


@dataclass
class Forms:
    """Every app and form the sandbox knows, by app id then entry id."""

    apps: dict[str, dict[str, Form]] = field(default_factory=dict)

    def add(self, form: Form) -> None:
        self.apps.setdefault(form.app_id, {})[form.entry_id] = form

    def all(self) -> list[Form]:
        return [form for forms in self.apps.values() for form in forms.values()]


def parse_form(app_id: Any, entry_id: Any, name: Any, widgets: Any, modified: str) -> Form:
    """Check a form definition; raise ValueError saying what is wrong."""
    for label, value in (("app_id", app_id), ("entry_id", entry_id), ("name", name)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"form {label} must be a non-empty string, got {value!r}")
    return Form(app_id, entry_id, name, _widgets(widgets, f"{app_id}/{entry_id}", True), modified)


def _widgets(widgets: Any, where: str, top_level: bool) -> list[dict[str, Any]]:
    if not isinstance(widgets, list) or not all(isinstance(w, dict) for w in widgets):
        raise ValueError(f"{where}: widgets must be a list of objects")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    ids: set[str] = set()
    for widget in widgets:
        name, kind, label = widget.get("name"), widget.get("type"), widget.get("label")
        widget_id = widget.get("widgetName", name)
        if not isinstance(name, str) or not name or name in SYSTEM_FIELDS:
            raise ValueError(f"{where}: widget name {name!r} must be a string, not a system field")
        if not isinstance(widget_id, str) or not WIDGET_ID.fullmatch(widget_id):
            raise ValueError(f"{where}/{name}: widgetName must be _widget_<13 digits>")
        if not isinstance(label, str):
            raise ValueError(f"{where}/{name}: label must be a string")
        if kind not in WRITABLE_TYPES | READ_ONLY_TYPES:
            known = sorted(WRITABLE_TYPES | READ_ONLY_TYPES)
            raise ValueError(f"{where}/{name}: type {kind!r} is not one of {known}")
        if name in names or widget_id in ids:
            raise ValueError(f"{where}/{name}: duplicate widget name or id")
        names.add(name)
        ids.add(widget_id)
        clean = {"name": name, "widgetName": widget_id, "label": label, "type": kind}
        if widget.get("required", False) is not False:
            if widget["required"] is not True:
                raise ValueError(f"{where}/{name}: required must be true or false")
            clean["required"] = True
        if "options" in widget:
            options = widget["options"]
            if kind not in OPTION_TYPES:
                raise ValueError(f"{where}/{name}: only option widgets list options")
            if not isinstance(options, list) or not all(isinstance(o, str) and o for o in options):
                raise ValueError(f"{where}/{name}: options must be a list of texts")
            clean["options"] = list(options)
        if kind == "subform":
            if not top_level:
                raise ValueError(f"{where}/{name}: a subform cannot hold a subform")
            clean["items"] = _widgets(widget.get("items"), f"{where}/{name}", False)
        out.append(clean)
    return out


def load_forms(path: Path | None, modified: str) -> Forms:
    """The forms of `path` (a JSON form file), or the demo forms when there is none."""
    raw = json.loads(path.read_text(encoding="utf-8")) if path else DEMO_FORMS
    if not isinstance(raw, dict) or not all(isinstance(f, dict) for f in raw.values()):
        raise ValueError("a form file maps app ids to {entry_id: form} objects")
    forms = Forms()
    for app_id, entries in raw.items():
        for entry_id, form in entries.items():
            if not isinstance(form, dict):
                raise ValueError(f"{app_id}/{entry_id}: a form must be an object")
            forms.add(parse_form(app_id, entry_id, form.get("name"), form.get("widgets"), modified))
    return forms


def _w(widget_id: int, label: str, kind: str, alias: str | None = None, **more: Any) -> dict:
    name = f"_widget_{widget_id}"
    return {"name": alias or name, "widgetName": name, "label": label, "type": kind, **more}


# The demo customer form has every widget type of §7, plus the read-only ones.
LEVELS = ["A 级", "B 级", "C 级"]
SOURCES = ["展会", "官网", "转介绍", "Cold call"]
INDUSTRIES = ["制造", "零售", "IT", "医疗", "教育"]
# The tests' tags, then tap-okki's (crm_sandbox/okki/records.py TAGS).
TAGS = ["重点", "新客", "海外", "VIP", "Distributor", "展会客户", "Price sensitive", "复购"]
STATUSES = ["正常", "已删除"]

DEMO_CUSTOMERS = [
    _w(1704067200001, "客户名称", "text"),
    _w(1704067200002, "客户编号", "text", "customer_id"),
    _w(1704067200003, "备注", "textarea"),
    _w(1704067200004, "金额", "number", "amount"),
    _w(1704067200005, "最近跟进时间", "datetime"),
    _w(1704067200006, "客户等级", "radiogroup", options=LEVELS),
    _w(1704067200007, "客户来源", "combo", options=SOURCES),
    _w(1704067200008, "所属行业", "checkboxgroup", options=INDUSTRIES),
    _w(1704067200009, "标签", "combocheck", options=TAGS),
    _w(1704067200010, "地址", "address"),
    _w(1704067200011, "电话", "phone"),
    _w(1704067200012, "负责人", "user", "owner"),
    _w(1704067200013, "所属部门", "dept"),
    _w(
        1704067200014,
        "联系人",
        "subform",
        items=[
            _w(1704067200015, "姓名", "text"),
            _w(1704067200016, "职务", "text"),
            _w(1704067200017, "联系次数", "number"),
            _w(1704067200018, "首次联系时间", "datetime"),
            _w(1704067200025, "联系人编号", "text", "contact_id"),  # a key for the rows
        ],
    ),
    _w(1704067200019, "流水号", "sn"),
    _w(1704067200020, "关联订单", "linkdata"),
    _w(1704067200021, "签名", "signature"),
    _w(1704067200022, "订单总额", "aggregation"),
    # Where deletions can be marked instead of done (target-jiandaoyun's delete_mode: mark).
    _w(1704067200023, "客户状态", "radiogroup", "status", options=STATUSES),
    _w(1704067200024, "删除时间", "datetime", "deleted_at"),
]

DEMO_ORDERS = [
    _w(1704067300001, "订单编号", "text", "order_no"),
    _w(1704067300002, "客户编号", "text"),
    _w(1704067300003, "金额", "number", "amount"),
    _w(1704067300004, "下单时间", "datetime"),
    _w(1704067300005, "订单状态", "radiogroup"),
]

# OKKI's follow-ups (跟进动态), one row each: what a production 跟进记录 form needs.
FOLLOW_UP_TYPES = ["快速记录", "邮件", "电话", "会面", "社交", "拜访"]
DEMO_FOLLOW_UPS = [
    _w(1704067400001, "跟进编号", "text", "trail_id"),
    _w(1704067400002, "客户编号", "text"),
    _w(1704067400003, "跟进类型", "radiogroup", options=FOLLOW_UP_TYPES),
    _w(1704067400004, "跟进内容", "textarea"),
    _w(1704067400005, "跟进时间", "datetime"),
    _w(1704067400006, "联系人编号", "text"),
    _w(1704067400007, "商机编号", "text"),
    _w(1704067400008, "删除时间", "datetime", "deleted_at"),
]

DEMO_FORMS = {
    "demo_app": {
        "demo_customers": {"name": "客户", "widgets": DEMO_CUSTOMERS},
        "demo_orders": {"name": "订单", "widgets": DEMO_ORDERS},
        "demo_follow_ups": {"name": "跟进记录", "widgets": DEMO_FOLLOW_UPS},
    }
}
