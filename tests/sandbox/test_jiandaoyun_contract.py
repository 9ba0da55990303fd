"""The Jiandaoyun sandbox against its contract (docs/api/jiandaoyun.md), one test per rule.

Every test talks HTTP to a `crm-sandbox serve` process (the session `sandbox` fixture); the
`jdy` fixture resets the emulator and restores its knobs around each test. Rate-limit tests
slow time down (time_scale < 1) so that a burst of calls surely lands inside one window.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from crm_sandbox.control import SandboxClient, start_sandbox

KEY = "jdy-demo-key"
APP, FORM = "demo_app", "demo_customers"
ROW_ID = re.compile(r"[0-9a-f]{24}")
# Rate-limit tests slow time 1000 times: a burst of calls surely lands in one window.
SLOW = 0.001
# Tests that retry batches in a tight loop lift the rate limits they are not about.
NO_RATE_LIMITS = {"batch_rate": 0, "company_rate": 0}

# The demo customer form (crm_sandbox/jiandaoyun/forms.py): names as widget/list gives them.
NAME = "_widget_1704067200001"  # 客户名称, text
CUSTOMER_ID = "customer_id"  # 客户编号, text with an alias
NOTE = "_widget_1704067200003"  # textarea
AMOUNT = "amount"  # 金额, number with an alias
AMOUNT_ID = "_widget_1704067200004"  # its widget id
FOLLOWED = "_widget_1704067200005"  # datetime
LEVEL = "_widget_1704067200006"  # radiogroup
SOURCE = "_widget_1704067200007"  # combo
INDUSTRY = "_widget_1704067200008"  # checkboxgroup
TAGS = "_widget_1704067200009"  # combocheck
ADDRESS = "_widget_1704067200010"  # address
PHONE = "_widget_1704067200011"  # phone
OWNER = "owner"  # user
DEPT = "_widget_1704067200013"  # dept
CONTACTS = "_widget_1704067200014"  # 联系人, subform
CONTACT_NAME = "_widget_1704067200015"  # text item
TITLE = "_widget_1704067200016"  # text item
VISITS = "_widget_1704067200017"  # number item
FIRST_CONTACT = "_widget_1704067200018"  # datetime item
SN, LINK, SIGNATURE, TOTAL = (f"_widget_17040672000{n}" for n in (19, 20, 21, 22))

# The contract's own examples use these widget ids; `example_form` installs a form with them.
EX_TEXT, EX_NUMBER = "_widget_1432728651402", "_widget_1432728651403"
EX_SUBFORM, EX_ITEM = "_widget_1528854613291", "_widget_1528854614409"


def wrap(values: dict[str, Any]) -> dict[str, Any]:
    return {name: {"value": value} for name, value in values.items()}


def tx(n: int) -> str:
    """A well-formed transaction id."""
    return f"3f0c8a1e-6d1b-4b7e-9a55-{n:012x}"


class Jdy:
    """Calls to the emulated API, plus its control routes (`.control`)."""

    def __init__(self, control: SandboxClient) -> None:
        self.control = control
        self.http = requests.Session()

    def post(self, path: str, body: Any, key: str | None = KEY) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        url = f"{self.control.base_url}/api/v5/{path}"
        return self.http.post(url, json=body, headers=headers, timeout=10)

    def call(self, path: str, **body: Any) -> requests.Response:
        return self.post(path, {"app_id": APP, "entry_id": FORM, **body})

    def ok(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.call(path, **body)
        assert response.status_code == 200, response.text
        return response.json()

    def code(self, path: str, **body: Any) -> int:
        response = self.call(path, **body)
        assert response.status_code == 400, response.text
        return response.json()["code"]

    def batch(self, rows: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
        return self.ok("app/entry/data/batch_create", data_list=rows, **body)

    def rows(self, form: str = f"{APP}/{FORM}") -> list[dict[str, Any]]:
        return self.control.records()["forms"][form]


@pytest.fixture
def jdy(sandbox) -> Iterator[Jdy]:
    control = sandbox.jiandaoyun
    control.reset()
    knobs = control.knobs()
    yield Jdy(control)
    control.knobs(**knobs)
    control.reset()


@pytest.fixture
def example_form(jdy: Jdy) -> str:
    """A form whose widget ids are those of the contract's examples (entry "example")."""
    widgets = [
        {"name": EX_TEXT, "label": "客户名称", "type": "text"},
        {"name": EX_NUMBER, "label": "金额", "type": "number"},
        {
            "name": EX_SUBFORM,
            "label": "明细",
            "type": "subform",
            "items": [{"name": EX_ITEM, "label": "品名", "type": "text"}],
        },
    ]
    jdy.control.post(
        "forms", {"app_id": APP, "entry_id": "example", "name": "示例", "widgets": widgets}
    )
    return "example"


# §1 General ------------------------------------------------------------------------------------


def test_1_1_calls_are_json_posts_with_a_bearer_api_key(jdy: Jdy) -> None:
    body = {"app_id": APP, "entry_id": FORM}
    assert jdy.post("app/entry/widget/list", body).status_code == 200
    url = f"{jdy.control.base_url}/api/v5/app/entry/widget/list"
    auth = {"Authorization": f"Bearer {KEY}"}
    assert requests.get(url, headers=auth, timeout=10).status_code == 405
    for key in (None, "wrong-key"):
        response = jdy.post("app/entry/widget/list", body, key=key)
        assert (response.status_code, response.json()["code"]) == (400, 8301)
    no_scheme = requests.post(url, json=body, headers={"Authorization": KEY}, timeout=10)
    assert no_scheme.json()["code"] == 8301
    json_type = {**auth, "Content-Type": "application/json"}
    not_json = requests.post(url, data=b"{not json", headers=json_type, timeout=10)
    assert (not_json.status_code, not_json.json()["code"]) == (400, 17017)


def test_1_2_success_is_http_200_with_the_payload_at_the_top_level(jdy: Jdy) -> None:
    widgets = jdy.call("app/entry/widget/list")
    created = jdy.call("app/entry/data/batch_create", data_list=[wrap({NAME: "ACME"})])
    for response in (widgets, created):
        assert response.status_code == 200
        assert "code" not in response.json()
    assert "widgets" in widgets.json()
    assert created.json()["status"] == "success"


def test_1_3_errors_are_http_400_with_code_and_msg_and_gateway_errors_502(jdy: Jdy) -> None:
    response = jdy.post("app/entry/widget/list", {"app_id": "nope", "entry_id": FORM})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "msg"} and body["code"] == 2004 and body["msg"]
    jdy.control.knobs(error_rate=1.0)
    gateway = jdy.call("app/entry/widget/list")
    assert gateway.status_code == 502 and "Bad Gateway" in gateway.text


def test_1_4_fields_are_named_by_alias_or_widget_id_in_reads_and_writes(jdy: Jdy) -> None:
    widgets = jdy.ok("app/entry/widget/list")["widgets"]
    names = {w["label"]: w["name"] for w in widgets}
    assert names["金额"] == AMOUNT and names["客户名称"] == NAME
    jdy.batch([wrap({NAME: "ACME", AMOUNT: 100, AMOUNT_ID: 5})])
    (row,) = jdy.rows()
    assert row[NAME] == "ACME" and row[AMOUNT] == 100
    assert AMOUNT_ID not in row  # an aliased widget reads and writes by its alias only
    ignored = jdy.control.stats()["ignored"]
    assert [(i["field"], i["reason"]) for i in ignored] == [(AMOUNT_ID, "unknown field")]


# §2 widget/list --------------------------------------------------------------------------------


def test_2_1_widget_list_answers_widgets_sys_widgets_and_data_modify_time(jdy: Jdy) -> None:
    body = jdy.ok("app/entry/widget/list")
    assert set(body) == {"widgets", "sysWidgets", "dataModifyTime"}
    name = {"name": NAME, "widgetName": NAME, "label": "客户名称", "type": "text"}
    amount = {"name": AMOUNT, "widgetName": AMOUNT_ID, "label": "金额", "type": "number"}
    assert name in body["widgets"] and amount in body["widgets"]
    assert [w["name"] for w in body["sysWidgets"]] == [
        "creator",
        "createTime",
        "updateTime",
        "flowState",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["dataModifyTime"])
    types = {w["type"] for w in body["widgets"]}
    every_type = {"text", "textarea", "number", "datetime", "radiogroup", "combo"}
    every_type |= {"checkboxgroup", "combocheck", "address", "phone", "user", "dept", "subform"}
    assert types == every_type | {"sn", "linkdata", "signature", "aggregation"}
    assert all(re.search(r"[\u4e00-\u9fff]", w["label"]) for w in body["widgets"])


def test_2_2_widget_name_is_the_widget_id_and_only_subforms_have_items(jdy: Jdy) -> None:
    widgets = jdy.ok("app/entry/widget/list")["widgets"]
    for widget in widgets:
        assert re.fullmatch(r"_widget_\d{13}", widget["widgetName"])
        assert widget["name"] == widget["widgetName"] or not widget["name"].startswith("_widget_")
        assert ("items" in widget) == (widget["type"] == "subform")
    (contacts,) = (w for w in widgets if w["type"] == "subform")
    assert contacts["label"] == "联系人"
    assert {i["type"] for i in contacts["items"]} == {"text", "number", "datetime"}
    assert all(set(i) == {"name", "widgetName", "label", "type"} for i in contacts["items"])


def test_2_3_option_widgets_list_their_options_and_required_widgets_say_so(jdy: Jdy) -> None:
    widgets = [
        {"name": "_widget_1700000000001", "label": "名称", "type": "text", "required": True},
        {"name": "_widget_1700000000002", "label": "等级", "type": "radiogroup", "options": ["A"]},
        {"name": "_widget_1700000000003", "label": "备注", "type": "text", "required": False},
    ]
    form = {"app_id": APP, "entry_id": "required", "name": "必填", "widgets": widgets}
    jdy.control.post("forms", form)

    listed = jdy.ok("app/entry/widget/list", entry_id="required")["widgets"]

    assert [(w["label"], w.get("required"), w.get("options")) for w in listed] == [
        ("名称", True, None),
        ("等级", None, ["A"]),
        ("备注", None, None),  # "required" only when true
    ]
    jdy.ok("app/entry/data/create", entry_id="required", data=wrap({"_widget_1700000000003": "x"}))
    assert jdy.control.stats()["blanked_values"] == 0  # the API does not enforce required
    demo = jdy.ok("app/entry/widget/list")["widgets"]
    assert {w["label"]: w["options"] for w in demo if "options" in w}["客户等级"] == [
        "A 级",
        "B 级",
        "C 级",
    ]
    bad = {**form, "widgets": [{**widgets[0], "options": ["A"]}]}
    response = requests.post(f"{jdy.control.base_url}/_sandbox/forms", json=bad, timeout=10)
    assert response.status_code == 400 and "options" in response.json()["error"]


# §3 batch_create -------------------------------------------------------------------------------


def test_3_1_batch_of_101_rows_is_rejected_with_17024_and_100_are_created(jdy: Jdy) -> None:
    rows = [wrap({NAME: f"c{i}"}) for i in range(101)]
    assert jdy.code("app/entry/data/batch_create", data_list=rows) == 17024
    assert jdy.rows() == []
    body = jdy.batch(
        rows[:100], transaction_id=tx(1), data_creator="zhangsan", is_start_workflow=False
    )
    assert body["success_count"] == 100
    assert {r["creator"]["username"] for r in jdy.rows()} == {"zhangsan"}
    code = jdy.code("app/entry/data/batch_create", data_list=rows[:1], data_creator="nobody")
    assert code == 1010  # not a member
    requests_log = jdy.control.requests()
    assert [(r["batch_size"], r["code"]) for r in requests_log if "batch" in r["path"]] == [
        (101, 17024),
        (100, None),
        (1, 1010),
    ]


def test_3_2_values_and_subform_rows_are_wrapped_as_value_objects(jdy: Jdy) -> None:
    contacts = [wrap({CONTACT_NAME: "张三", VISITS: 2}), wrap({CONTACT_NAME: "李四"})]
    jdy.batch([{**wrap({NAME: "ACME", CONTACTS: contacts}), CUSTOMER_ID: "C-1"}])
    (row,) = jdy.rows()
    assert row[NAME] == "ACME"
    assert [(c[CONTACT_NAME], c[VISITS]) for c in row[CONTACTS]] == [("张三", 2), ("李四", None)]
    assert row[CUSTOMER_ID] == ""  # not wrapped: saved empty and counted
    (blanked,) = jdy.control.stats()["blanked"]
    assert (blanked["field"], blanked["value"]) == (CUSTOMER_ID, "C-1")


def test_3_3_batch_create_answers_status_success_count_and_success_ids(jdy: Jdy) -> None:
    body = jdy.batch([wrap({NAME: "A"}), wrap({NAME: "B"})], transaction_id=tx(2))
    assert set(body) == {"status", "success_count", "success_ids"}
    assert body["status"] == "success" and body["success_count"] == 2
    assert all(ROW_ID.fullmatch(i) for i in body["success_ids"])
    assert body["success_ids"] == [r["_id"] for r in jdy.rows()]


def test_3_4_the_contracts_example_batch_creates_two_rows(jdy: Jdy, example_form: str) -> None:
    request = {
        "app_id": APP,
        "entry_id": example_form,
        "transaction_id": "3f0c8a1e-6d1b-4b7e-9a55-1c2d3e4f5a6b",
        "is_start_workflow": False,
        "data_list": [
            {
                EX_TEXT: {"value": "ACME Ltd"},
                EX_NUMBER: {"value": 100},
                EX_SUBFORM: {"value": [{EX_ITEM: {"value": "row 1"}}]},
            },
            {EX_TEXT: {"value": "Foo GmbH"}, EX_NUMBER: {"value": 200}},
        ],
    }
    response = jdy.post("app/entry/data/batch_create", request)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success" and body["success_count"] == 2
    assert len(body["success_ids"]) == 2
    rows = jdy.rows(f"{APP}/{example_form}")
    assert [(r[EX_TEXT], r[EX_NUMBER]) for r in rows] == [("ACME Ltd", 100), ("Foo GmbH", 200)]
    assert [i[EX_ITEM] for i in rows[0][EX_SUBFORM]] == ["row 1"] and rows[1][EX_SUBFORM] == []


# §4 transaction_id -----------------------------------------------------------------------------


def test_4_1_a_resend_with_the_same_transaction_id_creates_only_the_missing_rows(jdy: Jdy) -> None:
    jdy.control.knobs(extra={"partial_failure_rate": 0.4, **NO_RATE_LIMITS})
    rows = [wrap({NAME: f"customer {i}", AMOUNT: i}) for i in range(10)]
    first = jdy.batch(rows, transaction_id=tx(41))
    assert 0 < first["success_count"] < 10
    for _ in range(8):
        again = jdy.batch(rows, transaction_id=tx(41))
        if again["success_count"] == 10:
            break
    assert again["success_count"] == 10
    stored = jdy.rows()
    assert sorted(r[AMOUNT] for r in stored) == list(range(10))  # each row exactly once
    assert jdy.control.stats()["transactions"] == 1
    assert jdy.batch(rows, transaction_id=tx(41)) == {
        "status": "success",
        "success_count": 10,
        "success_ids": [],
    }
    assert len(jdy.rows()) == 10


def test_4_2_success_count_is_the_transactions_total_success_ids_this_requests(jdy: Jdy) -> None:
    jdy.control.knobs(extra={"partial_failure_rate": 0.5, **NO_RATE_LIMITS})
    rows = [wrap({NAME: f"c{i}"}) for i in range(8)]
    seen: list[str] = []
    for _ in range(10):
        body = jdy.batch(rows, transaction_id=tx(42))
        assert not set(body["success_ids"]) & set(seen)  # only rows created by this request
        seen += body["success_ids"]
        assert body["success_count"] == len(seen)  # every row created under the id so far
        if body["success_count"] == len(rows):
            break
    assert sorted(seen) == sorted(r["_id"] for r in jdy.rows())


def test_4_3_a_partial_failure_shows_as_success_count_below_the_batch_size(jdy: Jdy) -> None:
    jdy.control.knobs(extra={"partial_failure_rate": 0.5, **NO_RATE_LIMITS})
    rows = [wrap({NAME: f"c{i}"}) for i in range(6)]
    answers = [jdy.batch(rows, transaction_id=tx(43))]
    while answers[-1]["success_count"] < len(rows) and len(answers) < 10:
        answers.append(jdy.batch(rows, transaction_id=tx(43)))
    assert answers[0]["success_count"] < len(rows)
    assert answers[-1]["success_count"] == len(rows)
    assert len(answers[-1]["success_ids"]) < len(rows)  # why clients must not count the ids
    assert len(jdy.rows()) == len(rows)


def test_4_4_two_row_example_first_creates_one_then_the_resend_the_other(jdy: Jdy) -> None:
    jdy.control.knobs(extra={"partial_failure_rate": 0.5, **NO_RATE_LIMITS})
    rows = [wrap({NAME: "ACME"}), wrap({NAME: "Foo"})]
    for n in range(30):  # the seeded failures: find a first attempt that created exactly one row
        first = jdy.batch(rows, transaction_id=tx(440 + n))
        if first["success_count"] == 1:
            break
    assert first["success_count"] == 1 and len(first["success_ids"]) == 1
    jdy.control.knobs(extra={"partial_failure_rate": 0.0})
    again = jdy.batch(rows, transaction_id=tx(440 + n))
    assert again["status"] == "success" and again["success_count"] == 2
    assert len(again["success_ids"]) == 1 and again["success_ids"] != first["success_ids"]


@pytest.mark.parametrize(
    "transaction_id",
    ["not-a-uuid", "${batch_id}", "$(uuidgen)", "3f0c8a1e-6d1b-4b7e-9a55-${seq}", "", 42],
)
def test_4_5_a_malformed_transaction_id_is_rejected_with_17025(jdy: Jdy, transaction_id) -> None:
    rows = [wrap({NAME: "ACME"})]
    code = jdy.code("app/entry/data/batch_create", data_list=rows, transaction_id=transaction_id)
    assert code == 17025
    assert jdy.rows() == []
    jdy.batch(rows)
    jdy.batch(rows)  # without an id a re-send creates the rows again
    assert len(jdy.rows()) == 2


# §5 data/list ----------------------------------------------------------------------------------


def test_5_1_list_pages_by_data_id_with_limit_fields_and_filter(jdy: Jdy) -> None:
    jdy.batch([wrap({NAME: f"c{i:02}", AMOUNT: i % 3}) for i in range(25)])
    assert len(jdy.ok("app/entry/data/list")["data"]) == 10  # default limit
    pages, cursor = [], None
    while True:
        page = jdy.ok("app/entry/data/list", data_id=cursor, limit=10)["data"]
        pages.append(page)
        if len(page) < 10:
            break
        cursor = page[-1]["_id"]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [r[NAME] for p in pages for r in p] == [f"c{i:02}" for i in range(25)]
    assert jdy.code("app/entry/data/list", limit=101) == 17017
    picked = jdy.ok("app/entry/data/list", limit=100, fields=[NAME])["data"]
    assert all(set(r) == {"_id", NAME} for r in picked)
    cond = [{"field": AMOUNT, "type": "number", "method": "eq", "value": [2]}]
    filtered = jdy.ok("app/entry/data/list", limit=100, filter={"rel": "and", "cond": cond})
    assert [r[NAME] for r in filtered["data"]] == [f"c{i:02}" for i in range(25) if i % 3 == 2]


def test_5_2_filters_eq_in_ne_empty_not_empty_and_at_most_200_in_values(jdy: Jdy) -> None:
    jdy.batch(
        [
            wrap({NAME: "ACME", CUSTOMER_ID: "C-1", OWNER: "zhangsan", AMOUNT: 10}),
            wrap({NAME: "Foo", CUSTOMER_ID: "C-2", AMOUNT: 20}),
            wrap({NAME: "Bar"}),
        ]
    )

    def names(rel: str, *cond: tuple[str, str, list]) -> list[str]:
        conds = [{"field": f, "type": "text", "method": m, "value": v} for f, m, v in cond]
        body = jdy.ok("app/entry/data/list", filter={"rel": rel, "cond": conds})
        return [r[NAME] for r in body["data"]]

    assert names("and", (CUSTOMER_ID, "eq", ["C-2"])) == ["Foo"]
    assert names("and", (CUSTOMER_ID, "in", ["C-1", "C-2", "C-9"])) == ["ACME", "Foo"]
    assert names("and", (CUSTOMER_ID, "ne", ["C-1"])) == ["Foo", "Bar"]
    assert names("and", (CUSTOMER_ID, "empty", [])) == ["Bar"]
    assert names("and", (CUSTOMER_ID, "not_empty", [])) == ["ACME", "Foo"]
    assert names("and", (OWNER, "eq", ["zhangsan"])) == ["ACME"]
    assert names("or", (NAME, "eq", ["Bar"]), (CUSTOMER_ID, "eq", ["C-1"])) == ["ACME", "Bar"]
    assert names("and", (NAME, "in", ["ACME", "Foo"]), (CUSTOMER_ID, "nin", ["C-1"])) == ["Foo"]
    assert names("and", (AMOUNT, "range", [15, None])) == ["Foo"]
    assert names("and", ("createTime", "range", ["2000-01-01", None])) == ["ACME", "Foo", "Bar"]
    assert len(names("and", (CUSTOMER_ID, "in", [f"C-{i}" for i in range(200)]))) == 2
    over = {
        "rel": "and",
        "cond": [{"field": CUSTOMER_ID, "method": "in", "value": list(range(201))}],
    }
    assert jdy.code("app/entry/data/list", filter=over) == 4815
    unknown = {"rel": "and", "cond": [{"field": "nope", "method": "eq", "value": [1]}]}
    assert jdy.code("app/entry/data/list", filter=unknown) == 4815


def test_5_3_rows_come_in_ascending_id_and_a_short_page_is_the_last(jdy: Jdy) -> None:
    first = jdy.batch([wrap({NAME: f"a{i}"}) for i in range(5)])["success_ids"]
    jdy.ok("app/entry/data/delete", data_id=first[2])
    jdy.ok("app/entry/data/create", data=wrap({NAME: "later"}))
    jdy.batch([wrap({NAME: f"b{i}"}) for i in range(3)])
    ids = [r["_id"] for r in jdy.ok("app/entry/data/list", limit=100)["data"]]
    assert len(ids) == 8 and ids == sorted(ids) and all(ROW_ID.fullmatch(i) for i in ids)
    last = jdy.ok("app/entry/data/list", data_id=ids[4], limit=5)["data"]
    assert [r["_id"] for r in last] == ids[5:]  # 3 < 5: the last page
    assert jdy.ok("app/entry/data/list", data_id=ids[-1])["data"] == []


def test_5_4_the_contracts_example_list_request(jdy: Jdy, example_form: str) -> None:
    rows = [wrap({EX_TEXT: "ACME Ltd"}), wrap({EX_TEXT: "Foo GmbH"}), wrap({EX_TEXT: "Other"})]
    created = jdy.ok("app/entry/data/batch_create", entry_id=example_form, data_list=rows)
    acme, foo, _ = created["success_ids"]
    request = {
        "app_id": APP,
        "entry_id": example_form,
        "data_id": acme,
        "limit": 100,
        "fields": [EX_TEXT],
        "filter": {
            "rel": "and",
            "cond": [
                {
                    "field": EX_TEXT,
                    "type": "text",
                    "method": "in",
                    "value": ["ACME Ltd", "Foo GmbH"],
                }
            ],
        },
    }
    response = jdy.post("app/entry/data/list", request)
    assert response.status_code == 200
    assert response.json() == {"data": [{"_id": foo, EX_TEXT: "Foo GmbH"}]}


# §6 single-row writes --------------------------------------------------------------------------


def test_6_1_create_update_and_delete_one_row(jdy: Jdy) -> None:
    created = jdy.ok(
        "app/entry/data/create",
        data=wrap({NAME: "ACME", AMOUNT: 1}),
        data_creator="lisi",
        is_start_workflow=False,
        is_start_trigger=False,
        transaction_id=tx(61),
    )
    row_id = created["data"]["_id"]
    resent = jdy.ok("app/entry/data/create", data=wrap({NAME: "ACME"}), transaction_id=tx(61))
    assert resent["data"]["_id"] == row_id  # the same transaction: no second row
    jdy.ok("app/entry/data/update", data_id=row_id, data=wrap({AMOUNT: 2}), is_start_trigger=False)
    assert [(r[NAME], r[AMOUNT], r["creator"]["username"]) for r in jdy.rows()] == [
        ("ACME", 2, "lisi")
    ]
    jdy.ok("app/entry/data/delete", data_id=row_id, is_start_trigger=False)
    assert jdy.rows() == []
    assert jdy.code("app/entry/data/update", data_id=row_id, data={}) == 4001
    assert jdy.code("app/entry/data/delete", data_id=row_id) == 4001


def test_6_2_each_single_write_endpoint_is_limited_to_20_per_second(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=SLOW)
    answers = [jdy.call("app/entry/data/create", data=wrap({NAME: f"c{i}"})) for i in range(21)]
    assert [a.status_code for a in answers[:20]] == [200] * 20
    assert (answers[20].status_code, answers[20].json()["code"]) == (400, 8304)
    row_id = answers[0].json()["data"]["_id"]
    assert jdy.call("app/entry/data/update", data_id=row_id, data={}).status_code == 200
    assert jdy.call("app/entry/data/delete", data_id=row_id).status_code == 200
    assert jdy.control.stats()["rate_limited"]["8304"] == 1


def test_6_3_the_contracts_example_update_changes_only_the_sent_field(
    jdy: Jdy, example_form: str
) -> None:
    rows = [wrap({EX_TEXT: "ACME Ltd", EX_NUMBER: 100})]
    created = jdy.ok("app/entry/data/batch_create", entry_id=example_form, data_list=rows)
    (row_id,) = created["success_ids"]
    request = {
        "app_id": APP,
        "entry_id": example_form,
        "data_id": row_id,
        "data": {EX_NUMBER: {"value": 150}},
    }
    assert jdy.post("app/entry/data/update", request).status_code == 200
    (row,) = jdy.rows(f"{APP}/{example_form}")
    assert (row[EX_TEXT], row[EX_NUMBER]) == ("ACME Ltd", 150)


def test_6_4_single_writes_answer_http_200_with_small_bodies(jdy: Jdy) -> None:
    created = jdy.call("app/entry/data/create", data=wrap({NAME: "ACME"}))
    assert created.status_code == 200
    row = created.json()["data"]
    assert row[NAME] == "ACME" and ROW_ID.fullmatch(row["_id"])
    updated = jdy.call("app/entry/data/update", data_id=row["_id"], data=wrap({NAME: "ACME Ltd"}))
    assert updated.status_code == 200 and updated.json()["data"][NAME] == "ACME Ltd"
    deleted = jdy.call("app/entry/data/delete", data_id=row["_id"])
    assert deleted.status_code == 200 and deleted.json() == {"status": "success"}


def test_6_5_update_replaces_a_subform_and_rows_without_their_id_get_new_ids(jdy: Jdy) -> None:
    contacts = [wrap({CONTACT_NAME: "张三"}), wrap({CONTACT_NAME: "李四"})]
    row_id = jdy.ok("app/entry/data/create", data=wrap({CONTACTS: contacts}))["data"]["_id"]
    (before,) = jdy.rows()
    keep, drop = before[CONTACTS]
    new_rows = [
        {"_id": keep["_id"], **wrap({CONTACT_NAME: "张三 (new title)", TITLE: "CEO"})},
        wrap({CONTACT_NAME: "王五"}),
        {"_id": {"value": "0" * 24}, **wrap({CONTACT_NAME: "赵六"})},
    ]
    jdy.ok("app/entry/data/update", data_id=row_id, data=wrap({CONTACTS: new_rows}))
    (after,) = jdy.rows()
    first, second, third = after[CONTACTS]
    assert (first["_id"], first[CONTACT_NAME], first[TITLE]) == (
        keep["_id"],
        "张三 (new title)",
        "CEO",
    )
    assert [second[CONTACT_NAME], third[CONTACT_NAME]] == ["王五", "赵六"]
    ids = {first["_id"], second["_id"], third["_id"], drop["_id"], "0" * 24}
    assert len(ids) == 5  # new ids for the rows without their own; 李四 is gone


# §7 value formats ------------------------------------------------------------------------------


def test_7_valid_values_of_every_widget_type_are_stored_and_read_back(jdy: Jdy) -> None:
    address = {
        "province": "广东省",
        "city": "深圳市",
        "district": "南山区",
        "detail": "科技园 1 号",
    }
    contact = wrap({CONTACT_NAME: "张三", VISITS: 3.5, FIRST_CONTACT: "2024-03-01T08:00:00Z"})
    values = {
        NAME: "深圳某某科技有限公司",
        CUSTOMER_ID: "C-1",
        NOTE: "第一行\n第二行",
        AMOUNT: 1234.5,
        FOLLOWED: 1704067200000,
        LEVEL: "A 级",
        SOURCE: "展会",
        INDUSTRY: ["制造", "零售"],
        TAGS: [],
        ADDRESS: address,
        PHONE: {"phone": "13800000000"},
        OWNER: "zhangsan",
        DEPT: 2,
        CONTACTS: [contact],
    }
    jdy.batch([wrap(values), wrap({FOLLOWED: "2024-01-02T03:04:05.6Z", DEPT: "3", AMOUNT: 0})])
    first, second = jdy.rows()
    for name in (NAME, CUSTOMER_ID, NOTE, AMOUNT, LEVEL, SOURCE, INDUSTRY, TAGS, ADDRESS):
        assert first[name] == values[name]
    assert first[FOLLOWED] == "2024-01-01T00:00:00.000Z"
    assert first[PHONE] == {"phone": "13800000000", "verified": False}
    assert (first[OWNER]["username"], first[OWNER]["name"]) == ("zhangsan", "张三")
    assert (first[DEPT]["dept_no"], first[DEPT]["name"]) == (2, "销售部")
    (row,) = first[CONTACTS]
    assert (row[CONTACT_NAME], row[VISITS], row[FIRST_CONTACT]) == (
        "张三",
        3.5,
        "2024-03-01T08:00:00.000Z",
    )
    assert ROW_ID.fullmatch(row["_id"])
    assert (second[FOLLOWED], second[DEPT]["dept_no"], second[AMOUNT]) == (
        "2024-01-02T03:04:05.600Z",
        3,
        0,
    )
    assert second[NAME] == "" and second[INDUSTRY] == [] and second[OWNER] is None  # never written
    assert jdy.control.stats()["blanked_values"] == 0


WRONG_VALUES = [  # (field, wrongly typed value, what it reads back as)
    (NAME, 42, ""),
    (NOTE, ["a"], ""),
    (AMOUNT, "100", None),
    (AMOUNT, True, None),
    (FOLLOWED, "2024-01-01 10:00:00", None),  # naive: forbidden
    (FOLLOWED, "2024-01-01T10:00:00+08:00", None),  # not UTC Z
    (FOLLOWED, 1704067200, None),  # epoch seconds
    (LEVEL, ["A 级"], ""),
    (LEVEL, "Z 级", ""),  # not one of the widget's options
    (INDUSTRY, "制造", []),
    (TAGS, ["a", 1], []),
    (TAGS, ["VIP", "no such tag"], []),  # one text outside the options blanks the list
    (ADDRESS, {"province": "广东省", "zip": "518000"}, {}),
    (PHONE, "13800000000", {}),
    (OWNER, "nobody", None),  # not in the directory
    (DEPT, 99, None),
    (CONTACTS, {"not": "a list"}, []),
]


def test_7_1_wrongly_typed_values_are_saved_empty_and_counted_never_rejected(jdy: Jdy) -> None:
    rows = [
        wrap({NAME: f"row {i}", field: value}) for i, (field, value, _) in enumerate(WRONG_VALUES)
    ]
    contact = wrap({CONTACT_NAME: 7, VISITS: "2", FIRST_CONTACT: "2024-03-01"})
    rows.append(wrap({CONTACTS: [contact, "not a row"]}))
    rows.append({NAME: "not wrapped"})
    body = jdy.batch(rows, transaction_id=tx(71))
    assert body["success_count"] == len(rows)  # nothing is rejected
    stored = jdy.rows()
    for row, (field, _, empty) in zip(stored, WRONG_VALUES, strict=False):
        assert row[field] == empty, field
    (subform_row,) = stored[-2][CONTACTS]
    assert (subform_row[CONTACT_NAME], subform_row[VISITS], subform_row[FIRST_CONTACT]) == (
        "",
        None,
        None,
    )
    assert stored[-1][NAME] == ""
    stats = jdy.control.stats()
    assert stats["blanked_values"] == len(WRONG_VALUES) + 4 + 1
    fields = [b["field"] for b in stats["blanked"]]
    assert f"{CONTACTS}[0].{FIRST_CONTACT}" in fields and f"{CONTACTS}[1]" in fields
    naive = next(b for b in stats["blanked"] if b["value"] == "2024-01-01 10:00:00")
    assert naive["form"] == f"{APP}/{FORM}" and "Z" in naive["reason"]


def test_7_2_non_writable_widgets_and_system_fields_are_ignored_and_counted(jdy: Jdy) -> None:
    forbidden = {SN: "X-1", LINK: {"id": "1"}, SIGNATURE: "s", TOTAL: 1, "_id": "0" * 24}
    forbidden |= {"creator": "zhangsan", "createTime": "2024-01-01T00:00:00Z", "nope": 1}
    jdy.batch([wrap({NAME: "ACME", **forbidden}), wrap({NAME: "Foo"})])
    first, second = jdy.rows()
    assert first[NAME] == "ACME" and first["_id"] != "0" * 24
    assert (first[SN], second[SN]) == ("000001", "000002")  # serial numbers are the form's
    assert first[LINK] is None and first[TOTAL] is None
    assert first["creator"]["username"] == "jdy-admin"
    stats = jdy.control.stats()
    assert stats["ignored_fields"] == len(forbidden) and stats["blanked_values"] == 0
    assert {i["field"] for i in stats["ignored"]} == set(forbidden)


def test_7_3_an_option_text_outside_the_widgets_options_is_saved_empty_and_counted(
    jdy: Jdy,
) -> None:
    jdy.batch([wrap({LEVEL: "B 级", TAGS: ["VIP", "复购"]}), wrap({LEVEL: "Gold", TAGS: ["x"]})])
    kept, blanked = jdy.rows()
    assert (kept[LEVEL], kept[TAGS]) == ("B 级", ["VIP", "复购"])
    assert (blanked[LEVEL], blanked[TAGS]) == ("", [])
    stats = jdy.control.stats()
    assert stats["blanked_values"] == 2
    assert "not one of the widget's options" in stats["blanked"][0]["reason"]


# §8 rate limits --------------------------------------------------------------------------------


def test_8_batch_create_over_10_per_second_answers_8304(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=SLOW)
    answers = [
        jdy.call("app/entry/data/batch_create", data_list=[wrap({NAME: f"c{i}"})])
        for i in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    over = answers[10]
    assert over.status_code == 400 and over.json() == {"code": 8304, "msg": over.json()["msg"]}
    assert over.headers["Retry-After"] == "1000"  # "wait at least 1 s", slowed down 1000 times
    assert len(jdy.rows()) == 10


def test_8_reads_over_30_per_second_per_endpoint_answer_8304(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=SLOW)
    codes = [jdy.call("app/entry/widget/list").status_code for _ in range(30)]
    assert codes == [200] * 30
    assert jdy.code("app/entry/widget/list") == 8304
    assert jdy.call("app/entry/data/list").status_code == 200  # another endpoint, another bucket
    assert jdy.control.stats()["rate_limited"] == {"8303": 0, "8304": 1, "429": 0}


def test_8_all_calls_together_over_50_per_second_answer_8303(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=SLOW)
    paths = ["app/entry/widget/list"] * 25 + ["app/entry/data/list"] * 25
    assert [jdy.call(p).status_code for p in paths] == [200] * 50
    response = jdy.call("app/entry/data/get", data_id="0" * 24)
    assert response.status_code == 400 and response.json()["code"] == 8303
    assert response.json()["msg"] == "超出请求频率限制"
    assert jdy.control.stats()["rate_limited"]["8303"] == 1


def test_8_knob_company_used_by_others_leaves_only_the_rest_of_the_budget(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=SLOW, extra={"company_used_by_others": 25})
    paths = ["app/entry/widget/list"] * 25
    assert [jdy.call(p).status_code for p in paths] == [200] * 25
    assert jdy.code("app/entry/data/list") == 8303  # 25 a second are somebody else's


def test_8_more_calls_in_flight_than_max_concurrent_answer_429(jdy: Jdy) -> None:
    jdy.control.knobs(latency=0.4, extra={"max_concurrent": 2})
    url = f"{jdy.control.base_url}/api/v5/app/list"
    headers = {"Authorization": f"Bearer {KEY}"}
    with ThreadPoolExecutor(6) as pool:  # one connection each: six calls at once
        calls = [
            pool.submit(requests.post, url, json={}, headers=headers, timeout=10) for _ in range(6)
        ]
        answers = [call.result() for call in calls]
    assert {a.status_code for a in answers} <= {200, 429}
    assert 429 in {a.status_code for a in answers}
    assert jdy.control.stats()["rate_limited"]["429"] >= 1
    assert jdy.post("app/list", {}).status_code == 200  # alone again: admitted


def test_8_a_limited_call_succeeds_after_the_scaled_retry_after(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=20, extra={"batch_rate": 1})  # 1 call per 0.05 s
    for _ in range(50):
        response = jdy.call("app/entry/data/batch_create", data_list=[wrap({NAME: "x"})])
        if response.status_code == 400:
            break
    assert response.json()["code"] == 8304
    assert response.headers["Retry-After"] == "0.05"
    time.sleep(0.05)
    assert jdy.call("app/entry/data/batch_create", data_list=[wrap({NAME: "x"})]).status_code == 200


def test_8_notes_endpoints_data_get_app_entry_list_batch_update_and_delete(jdy: Jdy) -> None:
    ids = jdy.batch([wrap({NAME: f"c{i}", AMOUNT: i}) for i in range(3)])["success_ids"]
    got = jdy.ok("app/entry/data/get", data_id=ids[0])["data"]
    assert (got["_id"], got[NAME]) == (ids[0], "c0")
    assert jdy.ok("app/list")["apps"] == [{"name": APP, "app_id": APP}]
    forms = jdy.ok("app/entry/list")["forms"]
    assert {"name": "客户", "app_id": APP, "entry_id": FORM} in forms
    updated = jdy.ok(
        "app/entry/data/batch_update", data_ids=[*ids[:2], "f" * 24], data=wrap({AMOUNT: 9})
    )
    assert updated == {"status": "success", "success_count": 2}
    assert [r[AMOUNT] for r in jdy.rows()] == [9, 9, 2]
    subform = wrap({CONTACTS: []})
    assert jdy.code("app/entry/data/batch_update", data_ids=ids, data=subform) == 17032
    assert jdy.code("app/entry/data/batch_update", data_ids=["a"] * 101, data={}) == 17023
    assert jdy.ok("app/entry/data/batch_delete", data_ids=ids[1:]) == {
        "status": "success",
        "success_count": 2,
    }
    assert jdy.code("app/entry/data/batch_delete", data_ids=["a"] * 101) == 17033
    assert [r["_id"] for r in jdy.rows()] == ids[:1]


# §9 error codes --------------------------------------------------------------------------------


def test_9_key_errors_8301_8302_17018_are_answered_before_anything_runs(jdy: Jdy) -> None:
    body = {"app_id": APP, "entry_id": FORM}
    assert jdy.post("app/entry/widget/list", body, key="other").json()["code"] == 8301
    jdy.control.knobs(extra={"api_keys": {KEY: None, "other": ["another_app"]}})
    assert jdy.post("app/entry/widget/list", body, key="other").json()["code"] == 8302
    assert jdy.post("app/list", {}, key="other").json() == {"apps": []}
    jdy.control.knobs(extra={"disabled_api_keys": ["other"]})
    assert jdy.post("app/entry/widget/list", body, key="other").json()["code"] == 17018
    assert jdy.post("app/entry/widget/list", body).status_code == 200


def test_9_unknown_app_2004_and_unknown_form_3000(jdy: Jdy) -> None:
    no_app = jdy.post("app/entry/widget/list", {"app_id": "nope", "entry_id": FORM})
    assert no_app.json()["code"] == 2004
    assert jdy.post("app/entry/list", {"app_id": "nope"}).json()["code"] == 2004
    assert jdy.code("app/entry/data/batch_create", entry_id="nope", data_list=[{}]) == 3000


def test_9_form_busy_4012_answers_writes_only(jdy: Jdy) -> None:
    jdy.control.knobs(extra={"busy_rate": 1.0})
    assert jdy.code("app/entry/data/batch_create", data_list=[wrap({NAME: "x"})]) == 4012
    assert jdy.code("app/entry/data/create", data=wrap({NAME: "x"})) == 4012
    assert jdy.call("app/entry/data/list").status_code == 200
    assert jdy.rows() == [] and jdy.control.stats()["busy"] == 2


def test_9_queued_errors_such_as_9007_answer_the_next_calls_then_stop(jdy: Jdy) -> None:
    jdy.control.post("fail_next", {"code": 9007, "times": 2, "endpoint": "batch_create"})
    rows = [wrap({NAME: "x"})]
    assert jdy.call("app/entry/data/list").status_code == 200  # another endpoint
    assert jdy.code("app/entry/data/batch_create", data_list=rows, transaction_id=tx(9)) == 9007
    assert jdy.code("app/entry/data/batch_create", data_list=rows, transaction_id=tx(9)) == 9007
    assert jdy.batch(rows, transaction_id=tx(9))["success_count"] == 1
    jdy.control.post("fail_next", {"code": 17027, "msg": "文件上传失败"})
    response = jdy.call("app/entry/widget/list")
    assert response.json() == {"code": 17027, "msg": "文件上传失败"}


# Knobs, control routes, records and stats ------------------------------------------------------


# §10 the company directory ---------------------------------------------------------------------


def test_10_1_department_list_answers_the_departments_under_one_recursively_with_has_child(
    jdy: Jdy,
) -> None:
    direct = jdy.post("corp/department/list", {"dept_no": 1}).json()["departments"]
    every = jdy.post("corp/department/list", {"dept_no": 1, "has_child": True}).json()
    assert [d["dept_no"] for d in direct] == [2, 3]  # the root itself is not listed
    assert [d["dept_no"] for d in every["departments"]] == [2, 3, 4]
    assert every["departments"][2] == {
        "dept_no": 4,
        "name": "华东销售组",
        "parent_no": 2,
        "type": 0,
        "status": 1,
    }
    assert jdy.post("corp/department/list", {"dept_no": 99}).json()["code"] == 17017


def test_10_2_department_members_with_has_child_are_the_whole_company(jdy: Jdy) -> None:
    sales = jdy.post("corp/department/user/list", {"dept_no": 2}).json()["users"]
    assert [u["username"] for u in sales] == ["zhangsan", "lisi"]
    users = jdy.post("corp/department/user/list", {"dept_no": 1, "has_child": True}).json()
    assert len(users["users"]) == 7
    assert [u["username"] for u in users["users"] if u["name"] == "张伟"] == [
        "zhangwei",
        "zhangwei2",
    ]
    assert set(users["users"][0]) == {"username", "name", "departments", "type", "status", "email"}
    got = jdy.post("corp/user/get", {"username": "lisi"}).json()["user"]
    assert (got["name"], got["departments"], got["email"]) == ("李四", [2], "lisi@example.com")
    assert jdy.post("corp/user/get", {"username": "nobody"}).json()["code"] == 1010


def test_10_3_directory_lists_are_limited_to_10_per_second(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=SLOW)
    answers = [jdy.post("corp/department/list", {"dept_no": 1}) for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert answers[10].json()["code"] == 8304


def test_knob_time_scale_makes_an_injected_throttle_retry_after_fractional(jdy: Jdy) -> None:
    jdy.control.knobs(time_scale=5, burst_429_rate=1.0, burst_429_length=1)
    response = jdy.call("app/entry/widget/list")
    assert response.status_code == 400 and response.json()["code"] == 8304
    assert response.headers["Retry-After"] == "0.2"
    (logged,) = jdy.control.requests()
    assert (logged["fault"], logged["code"], logged["status"]) == ("429-burst", 8304, 400)


def test_knob_partial_failure_rate_is_seeded_and_reset_replays_it(jdy: Jdy) -> None:
    jdy.control.knobs(extra={"partial_failure_rate": 0.5, **NO_RATE_LIMITS})
    rows = [wrap({NAME: f"c{i}"}) for i in range(20)]

    def run() -> list[int]:
        return [jdy.batch(rows, transaction_id=tx(100 + i))["success_count"] for i in range(3)]

    first = run()
    assert all(0 < count < 20 for count in first)
    assert jdy.control.stats()["failed_rows"] == 60 - sum(first)
    jdy.control.reset()
    assert run() == first


def test_knob_transaction_ttl_forgets_old_transaction_ids(jdy: Jdy) -> None:
    jdy.control.knobs(extra={"transaction_ttl": 0.3})
    rows = [wrap({NAME: "ACME"})]
    assert jdy.batch(rows, transaction_id=tx(7))["success_ids"]
    assert jdy.batch(rows, transaction_id=tx(7))["success_ids"] == []
    time.sleep(0.4)
    assert jdy.batch(rows, transaction_id=tx(7))["success_count"] == 1
    assert len(jdy.rows()) == 2
    other = jdy.call(
        "app/entry/data/batch_create", entry_id="demo_orders", data_list=rows, transaction_id=tx(7)
    )
    assert other.json()["code"] == 17026  # the id belongs to the customer form


def test_control_forms_adds_and_replaces_forms_keeping_rows_by_widget_id(jdy: Jdy) -> None:
    widgets = [
        {"name": "title", "widgetName": "_widget_1700000000001", "label": "标题", "type": "text"}
    ]
    form = {"app_id": "crm", "entry_id": "leads", "name": "线索", "widgets": widgets}
    assert jdy.control.post("forms", form) == {"form": "crm/leads", "widgets": 1}
    jdy.ok("app/entry/data/create", app_id="crm", entry_id="leads", data=wrap({"title": "hello"}))
    widgets[0]["name"] = "subject"  # a new alias for the same widget
    jdy.control.post("forms", form)
    assert [r["subject"] for r in jdy.rows("crm/leads")] == ["hello"]
    listed = jdy.ok("app/entry/widget/list", app_id="crm", entry_id="leads")["widgets"]
    assert [w["name"] for w in listed] == ["subject"]
    bad = {**form, "widgets": [{"name": "_widget_1700000000002", "label": "X", "type": "hologram"}]}
    response = requests.post(f"{jdy.control.base_url}/_sandbox/forms", json=bad, timeout=10)
    assert response.status_code == 400 and "hologram" in response.json()["error"]
    jdy.control.reset()  # back to the forms of start-up
    assert jdy.post("app/entry/list", {"app_id": "crm"}).json()["code"] == 2004


def test_forms_file_replaces_the_demo_forms(tmp_path: Path) -> None:
    forms = {
        "sales": {
            "deals": {
                "name": "商机",
                "widgets": [{"name": "_widget_1700000000009", "label": "名称", "type": "text"}],
            }
        }
    }
    path = tmp_path / "forms.json"
    path.write_text(json.dumps(forms, ensure_ascii=False), encoding="utf-8")
    running = start_sandbox("--jiandaoyun-forms", str(path))
    try:
        jdy = Jdy(running.jiandaoyun)
        assert jdy.post("app/list", {}).json() == {"apps": [{"name": "sales", "app_id": "sales"}]}
        listed = jdy.post("app/entry/widget/list", {"app_id": "sales", "entry_id": "deals"}).json()
        assert listed["widgets"][0]["widgetName"] == "_widget_1700000000009"
        assert running.jiandaoyun.records() == {"forms": {"sales/deals": []}}
    finally:
        running.stop()


def test_records_stats_and_reset(jdy: Jdy) -> None:
    assert jdy.control.credentials == {"api_key": KEY, "app_id": APP, "entry_id": FORM}
    jdy.batch([wrap({NAME: "ACME", AMOUNT: "1"}), {"nope": 1}], transaction_id=tx(1))
    records = jdy.control.records()
    assert set(records["forms"]) == {
        f"{APP}/{FORM}",
        f"{APP}/demo_orders",
        f"{APP}/demo_follow_ups",
    }
    (row, _) = records["forms"][f"{APP}/{FORM}"]
    for system in ("_id", "creator", "updater", "createTime", "updateTime", "appId", "entryId"):
        assert system in row
    assert row["createTime"].endswith("Z")
    stats = jdy.control.stats()
    assert stats["blanked_values"] == 1 and stats["ignored_fields"] == 1
    assert stats["blanked"] == [
        {"form": f"{APP}/{FORM}", "field": AMOUNT, "value": "1", "reason": "expected a JSON number"}
    ]
    assert stats["transactions"] == 1
    assert stats["rate_limited"] == {"8303": 0, "8304": 0, "429": 0}
    jdy.control.reset()
    assert jdy.rows() == []
    stats = jdy.control.stats()
    assert (stats["blanked_values"], stats["ignored_fields"], stats["transactions"]) == (0, 0, 0)
