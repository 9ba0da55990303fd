"""The OKKI emulator against docs/api/okki.md (the project's contract, sections numbered alike):
one test per numbered rule, then its knobs, control routes and data generator. Everything goes
over real HTTP to a `crm-sandbox serve` process of this module's own (fixed seed, fixed OKKI
port)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from crm_sandbox.control import RunningSandbox, SandboxClient, start_sandbox
from crm_sandbox.okki import OkkiSandbox

SEED = "11"
COMPANIES = 300
SHANGHAI = timezone(timedelta(hours=8))
TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
LIST, INFO, OPPORTUNITIES = "/v1/company/list", "/v1/company/info", "/v1/opportunity/list"
TOKEN = "/v1/oauth2/access_token"
TRAILS = "/v1/dynamic/trail/list"
TRAIL_FIELDS = {
    "trail_id": int,
    "type": int,
    "content": str,
    "company_id": int,
    "customer_id": int,
    "opportunity_id": int,
    "create_user": int,
    "create_time": str,
    "update_time": str,
    "enable_flag": int,
    "delete_flag": int,
}
ROW_FIELDS = {
    "company_id": int,
    "user_id": str,
    "name": str,
    "short_name": str,
    "serial_id": str,
    "order_time": str,
    "create_time": str,
    "update_time": str,
    "create_user": int,
    "last_edit_user": int,
    "archive_type": int,
    "edit_time": str,
}
OPPORTUNITY_FIELDS = {
    "opportunity_id": int,
    "serial_id": str,
    "name": str,
    "company_id": int,
    "customer_id": int,
    "amount": float,
    "currency": str,
    "stage": int,
    "stage_name": str,
    "stage_type": int,
    "account_date": str,
    "user_id": str,
    "create_time": str,
    "update_time": str,
    "remark": str,
    "enable_flag": int,  # on every row of the vendor's example (docs/api/okki.md §8)
}
DEFAULT_EXTRA = {
    "rate_per_second": 10,
    "token_ttl": 28_800,
    "revoke_tokens_after_requests": None,
    "churn": None,
    "success_code": 200,
    "force_error": None,
    "clients": {},
    "shape_variety": 0,
    "unconvertible_share": None,
    "opportunity_deletes": "hidden",
    "trail_churn": None,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def okki_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def running(okki_port: int) -> Iterator[RunningSandbox]:
    sandbox = start_sandbox(
        "--companies", str(COMPANIES), "--seed", SEED, "--okki-port", str(okki_port)
    )
    yield sandbox
    sandbox.stop()


@pytest.fixture
def control(running: RunningSandbox) -> SandboxClient:
    """Fresh seeded data and default knobs, except no rate limit (tests that need it set it)."""
    client = running.okki
    client.knobs(
        time_scale=1.0,
        error_rate=0.0,
        burst_429_rate=0.0,
        extra={**DEFAULT_EXTRA, "rate_per_second": None},
    )
    client.reset()
    return client


class Api:
    """A bare-hands OKKI client: the tests see exactly what goes over the wire."""

    def __init__(self, control: SandboxClient) -> None:
        self.base_url = control.base_url
        self.credentials = control.credentials
        self.http = requests.Session()
        self.headers: dict[str, str] = {}

    def token(self, **body: Any) -> requests.Response:
        body = {
            "grant_type": "client_credentials",
            **self.credentials,
            "scope": "company opportunity user",
            **body,
        }
        return self.http.post(self.base_url + TOKEN, json=body, timeout=10)

    def login(self, **body: Any) -> Api:
        response = self.token(**body)
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base_url + path, params=params, headers=self.headers, timeout=10)

    def envelope(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, path: str, **params: Any) -> Any:
        body = self.envelope(path, **params)
        assert body["code"] == 200, body
        return body["data"]

    def ids(self, path: str = LIST, key: str = "company_id", **params: Any) -> list[int]:
        """Every row of a listing, page by page (count 100)."""
        ids: list[int] = []
        for page in range(1, 1000):
            data = self.data(path, start_index=page, count=100, **params)
            ids += [row[key] for row in data["list"]]
            if len(data["list"]) < 100:
                return ids
        raise AssertionError("listing did not end")


@pytest.fixture
def api(control: SandboxClient) -> Api:
    return Api(control).login()


def _shift(text: str, seconds: int) -> str:
    moved = datetime.strptime(text, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=seconds)
    return moved.strftime("%Y-%m-%d %H:%M:%S")


def _newest(records: list[dict[str, Any]]) -> str:
    return max(r["update_time"] for r in records)


# 1. General ---------------------------------------------------------------------------------


def test_1_1_base_url_is_the_configured_host_and_port(control: SandboxClient, okki_port: int):
    assert control.base_url == f"http://127.0.0.1:{okki_port}"
    assert Api(control).token().status_code == 200


def test_1_2_reads_are_get_with_query_parameters_and_answer_utf8_json(
    api: Api, control: SandboxClient
):
    chinese = next(
        c for c in control.records()["companies"] if re.search(r"[\u4e00-\u9fff]", c["name"])
    )
    response = api.get(INFO, company_id=chinese["company_id"])
    assert response.headers["content-type"].startswith("application/json")
    assert chinese["name"].encode("utf-8") in response.content  # raw UTF-8, not \\u escapes
    assert api.http.post(api.base_url + LIST, headers=api.headers, timeout=10).status_code == 405


@pytest.mark.parametrize("path", [LIST, INFO, OPPORTUNITIES])
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "RAW", "Basic abc"])
def test_1_3_data_calls_without_a_live_bearer_token_get_401_access_denied(
    api: Api, path: str, header: str | None
):
    token = api.headers["Authorization"].removeprefix("Bearer ")
    api.headers = {} if header is None else {"Authorization": token if header == "RAW" else header}
    response = api.get(path, company_id=1)
    assert (response.status_code, response.json()) == (401, {"error": "access_denied"})


def test_1_4_times_are_shanghai_wall_time_strings_and_windows_use_the_same_format(
    api: Api, control: SandboxClient
):
    body = api.envelope(LIST, count=5)
    now = datetime.strptime(body["now"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    assert abs((now - datetime.now(SHANGHAI)).total_seconds()) < 5
    records = control.records()
    stamps = [r[k] for r in records["companies"] for k in ROW_FIELDS if k.endswith("_time")]
    stamps += [r[k] for r in records["opportunities"] for k in ("create_time", "update_time")]
    assert all(TIME.fullmatch(s) for s in stamps)
    assert "1970-01-01 00:00:00" in stamps  # unset
    assert all(DATE.fullmatch(o["account_date"]) for o in records["opportunities"])
    for bad in ("2025-11-06", "2025/11/06 00:00:00", "2025-13-01 00:00:00", "yesterday"):
        for path in (LIST, OPPORTUNITIES):
            assert api.envelope(path, start_time=bad)["code"] == 400, bad
            assert api.envelope(path, end_time=bad)["code"] == 400, bad


# 2. Token -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, error",
    [
        ({}, 200, None),
        ({"scope": "company"}, 200, None),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"client_id": None}, 400, "invalid_request"),
        ({"client_secret": None}, 400, "invalid_request"),
        ({"scope": None}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"scope": "company spaceships"}, 400, "invalid_scope"),
    ],
)
def test_2_1_token_request_is_a_json_body_with_four_required_fields(
    control: SandboxClient, body: dict[str, Any], status: int, error: str | None
):
    api = Api(control)
    full = {"grant_type": "client_credentials", **api.credentials, "scope": "company user"}
    full.update(body)
    sent = {k: v for k, v in full.items() if v is not None}
    response = api.http.post(api.base_url + TOKEN, json=sent, timeout=10)
    assert response.status_code == status
    if error:
        assert response.json() == {"error": error}
    as_form = api.http.post(api.base_url + TOKEN, data=full, timeout=10)  # not JSON
    assert (as_form.status_code, as_form.json()) == (400, {"error": "invalid_request"})


def test_2_2_token_is_bearer_and_lives_28800_seconds(control: SandboxClient):
    body = Api(control).token().json()
    assert set(body) == {"token_type", "expires_in", "access_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 28_800
    assert body["access_token"].startswith("eyJ0eXAiOiJKV1Qi")


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_secret": "wrong"},
        {"client_id": "someone-else"},
    ],
)
def test_2_3_bad_credentials_get_401_invalid_client(
    control: SandboxClient, credentials: dict[str, str]
):
    response = Api(control).token(**credentials)
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_2_4_revoked_or_expired_token_gets_401_access_denied_and_a_new_token_works(
    control: SandboxClient, how: str
):
    if how == "expired":
        control.knobs(time_scale=10.0, extra={"token_ttl": 8})  # lives 0.8 s
    api = Api(control).login()
    assert api.envelope(LIST, count=1)["code"] == 200
    if how == "revoked":
        assert control.post("tokens/revoke") == {"revoked": 1}
    else:
        assert api.token().json()["expires_in"] == 0.8
        time.sleep(1.0)
    response = api.get(LIST, count=1)
    assert (response.status_code, response.json()) == (401, {"error": "access_denied"})
    assert api.login().envelope(LIST, count=1)["code"] == 200


# 3. Envelope ----------------------------------------------------------------------------------


def test_3_1_every_data_endpoint_answers_the_envelope(api: Api, control: SandboxClient):
    company_id = control.records()["companies"][0]["company_id"]
    for path, params in ((LIST, {}), (INFO, {"company_id": company_id}), (OPPORTUNITIES, {})):
        body = api.envelope(path, **params)
        assert set(body) == {"code", "message", "now", "data"}
        assert (body["code"], body["message"]) == (200, "success")
        assert TIME.fullmatch(body["now"])


def test_3_2_success_is_http_200_with_code_200_or_code_0(api: Api, control: SandboxClient):
    first = api.envelope(LIST, count=3)
    control.knobs(extra={"success_code": 0})
    second = api.envelope(LIST, count=3)
    assert (first["code"], second["code"]) == (200, 0)
    assert first["data"] == second["data"]


def test_3_3_business_errors_are_http_200_with_their_own_code(api: Api, control: SandboxClient):
    assert api.envelope(INFO, company_id=1)["code"] == 404
    assert api.envelope(LIST, count=101)["code"] == 400
    control.knobs(
        extra={"force_error": {"path": LIST, "code": -1, "message": "系统错误", "times": 2}}
    )
    for _ in range(2):
        body = api.envelope(LIST, count=1)
        assert (body["code"], body["message"]) == (-1, "系统错误")
    assert api.envelope(OPPORTUNITIES, count=1)["code"] == 200  # another path is untouched
    assert api.envelope(LIST, count=1)["code"] == 200  # `times` used up
    assert control.knobs()["extra"]["force_error"] is None
    logged = [(r["path"], r["status"], r["code"]) for r in control.requests()]
    assert (INFO, 200, 404) in logged and (LIST, 200, -1) in logged


# 4. Throttling and errors ---------------------------------------------------------------------


def test_4_1_over_the_per_client_rate_answers_429_with_retry_after(
    api: Api, control: SandboxClient
):
    control.knobs(extra={"rate_per_second": 10, "clients": {"other-id": "other-secret"}})
    started = time.monotonic()
    answers = [api.get(LIST, count=1) for _ in range(30)]
    elapsed = time.monotonic() - started
    passed = [a for a in answers if a.status_code == 200]
    throttled = [a for a in answers if a.status_code == 429]
    assert 10 <= len(passed) <= 10 + elapsed * 10 + 1
    assert throttled and all(
        a.json() == {"code": 429, "message": "请求过于频繁"} for a in throttled
    )
    assert throttled[0].headers["Retry-After"] == "1"
    assert control.stats()["throttled"] == len(throttled)
    other = Api(control).login(client_id="other-id", client_secret="other-secret")
    assert other.get(LIST, count=1).status_code == 200  # its own bucket

    # Scaled: 1 call/s becomes 1 call per 0.2 s, and Retry-After says so.
    control.knobs(time_scale=5.0, extra={"rate_per_second": 1})
    assert api.get(LIST, count=1).status_code == 200
    answer = api.get(LIST, count=1)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "0.2")
    time.sleep(0.2)
    assert api.get(LIST, count=1).status_code == 200


def test_4_2_the_sandbox_produces_every_outcome_of_the_handling_table(
    api: Api, control: SandboxClient
):
    control.knobs(error_rate=1.0)
    failed = api.get(LIST, count=1)
    assert failed.status_code == 502 and "Bad Gateway" in failed.text  # a gateway's HTML page
    control.knobs(error_rate=0.0, burst_429_rate=1.0, burst_429_length=1)
    burst = api.get(LIST, count=1)
    assert (burst.status_code, burst.json()["code"]) == (429, 429)
    control.knobs(burst_429_rate=0.0, extra={"force_error": {"path": LIST, "code": 429}})
    assert api.envelope(LIST, count=1)["code"] == 429  # envelope 429 on HTTP 200
    assert api.envelope(INFO, company_id=1)["code"] == 404
    assert api.envelope(LIST, count=101)["code"] == 400
    control.knobs(extra={"force_error": {"path": INFO, "code": -1, "message": "x"}})
    assert api.envelope(INFO, company_id=1)["code"] == -1
    assert Api(control).token(client_secret="no").json() == {"error": "invalid_client"}
    control.post("tokens/revoke")
    assert api.get(LIST).json() == {"error": "access_denied"}


# 5. company/list ------------------------------------------------------------------------------


def test_5_1_query_parameters_filter_and_page_as_documented(api: Api, control: SandboxClient):
    companies = control.records()["companies"]  # newest update first, like the list
    every = [c["company_id"] for c in companies]
    data = api.data(LIST)  # defaults: page 1 of 20, live companies, all pools
    assert [r["company_id"] for r in data["list"]] == every[:20]
    assert data["totalItem"] == COMPANIES
    assert [r["company_id"] for r in api.data(LIST, start_index=3, count=7)["list"]] == every[14:21]
    assert api.ids(group_id=2) == [c["company_id"] for c in companies if c["group_id"] == 2]
    assert api.ids(all=0) == [c["company_id"] for c in companies if c["owner"]]
    assert api.ids(all=2) == [c["company_id"] for c in companies if not c["owner"]]
    assert api.ids(all=1) == every
    # time_type 2 windows on create_time; both ends inclusive
    low, high = sorted(c["create_time"] for c in companies)[100:200:99]
    expected = [c["company_id"] for c in companies if low <= c["create_time"] <= high]
    assert len(expected) >= 100
    assert api.ids(time_type=2, start_time=low, end_time=high) == expected
    deleted = control.post("companies/delete", {"count": 3})["company_ids"]
    assert sorted(api.ids(removed=1)) == sorted(deleted)
    assert api.data(LIST, removed=0)["totalItem"] == COMPANIES - 3
    for bad in (
        {"count": 101},
        {"count": 0},
        {"count": "ten"},
        {"start_index": 0},
        {"removed": 2},
        {"time_type": 3},
        {"all": 5},
    ):
        assert api.envelope(LIST, **bad)["code"] == 400, bad


def test_5_2_data_carries_list_total_item_and_count(api: Api):
    data = api.data(LIST, count=7)
    assert set(data) == {"list", "totalItem", "count"}
    assert (len(data["list"]), data["count"], data["totalItem"]) == (7, 7, COMPANIES)
    last = api.data(LIST, start_index=COMPANIES // 7 + 1, count=7)
    assert (last["count"], last["totalItem"]) == (COMPANIES % 7, COMPANIES)
    beyond = api.data(LIST, start_index=1000, count=7)
    assert (beyond["list"], beyond["count"], beyond["totalItem"]) == ([], 0, COMPANIES)


def test_5_3_rows_are_thin_with_the_documented_fields(api: Api):
    for row in api.data(LIST, count=100)["list"]:
        assert {k: type(v) for k, v in row.items()} == ROW_FIELDS


def test_5_4_rows_come_newest_update_first_and_each_call_is_evaluated_afresh(
    api: Api, control: SandboxClient
):
    rows = [r for page in (1, 2, 3) for r in api.data(LIST, start_index=page, count=100)["list"]]
    keys = [(r["update_time"], r["company_id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)  # ties: the higher id first
    assert len({r["update_time"] for r in rows}) < len(rows)  # there are ties
    oldest = rows[-1]["company_id"]
    control.post("companies/update", {"company_ids": [oldest]})
    assert api.data(LIST, count=1)["list"][0]["company_id"] == oldest  # no snapshot


@pytest.mark.parametrize("how", ["control route", "churn knob"])
def test_5_5_a_company_updated_while_paging_shifts_the_next_page_by_one_row(
    api: Api, control: SandboxClient, how: str
):
    companies = control.records()["companies"]
    window = {"start_time": companies[-1]["update_time"], "end_time": _newest(companies)}
    before = [c["company_id"] for c in companies]
    if how == "churn knob":
        control.knobs(extra={"churn": {"after_list_requests": 1, "update": 1}})
    page1 = [r["company_id"] for r in api.data(LIST, start_index=1, count=10, **window)["list"]]
    assert page1 == before[:10]
    if how == "control route":
        control.post("companies/update", {"company_ids": [page1[3]]})
    page2 = [r["company_id"] for r in api.data(LIST, start_index=2, count=10, **window)["list"]]
    assert page2 == before[11:21]  # before[10] moved onto page 1: a page-number reader skips it
    assert control.knobs()["extra"]["churn"] is None


def test_5_6_totalitem_drops_and_the_moved_company_is_found_after_the_bookmark(
    api: Api, control: SandboxClient
):
    companies = control.records()["companies"]
    bookmark = _newest(companies)
    window = {"start_time": companies[-1]["update_time"], "end_time": bookmark}
    assert api.data(LIST, count=10, **window)["totalItem"] == COMPANIES
    moved = control.post("companies/update", {"count": 1})["company_ids"][0]
    assert api.data(LIST, count=10, **window)["totalItem"] == COMPANIES - 1  # re-check reveals it
    after = api.ids(start_time=_shift(bookmark, 1))
    assert after == [moved]


def test_5_7_the_documented_example_request_works(api: Api, control: SandboxClient):
    day = _newest(control.records()["companies"])[:10]
    body = api.envelope(
        LIST,
        start_index=1,
        count=100,
        removed=0,
        time_type=1,
        start_time=f"{day} 00:00:00",
        end_time=f"{day} 23:59:59",
    )
    assert body["code"] == 200 and body["data"]["totalItem"] >= 1
    example = {
        "company_id": 56657420945678,
        "user_id": "55280038",
        "name": "buxiangshangban",
        "short_name": "",
        "serial_id": "A01",
        "order_time": "2025-11-07 16:03:38",
        "create_time": "2025-07-30 09:43:47",
        "update_time": "2025-11-06 00:08:47",
        "create_user": 55280040,
        "last_edit_user": 55280038,
        "archive_type": 1,
        "edit_time": "2025-09-05 15:19:15",
    }
    for row in body["data"]["list"]:
        assert {k: type(v) for k, v in row.items()} == {k: type(v) for k, v in example.items()}
        assert row["update_time"].startswith(day)


# 6. company/info ------------------------------------------------------------------------------


def test_6_1_company_info_returns_the_full_record(api: Api, control: SandboxClient):
    row = api.data(LIST, count=1)["list"][0]
    info = api.data(INFO, company_id=row["company_id"])
    for name in ("country", "province", "city", "address", "homepage", "fax", "remark"):
        assert isinstance(info[name], str)
    for name in ("star", "intention_level", "scale_id", "group_id"):
        assert isinstance(info[name], int)
    assert len(info["tel"]) == 2 and all(isinstance(part, str) for part in info["tel"])
    assert set(info["trail_status"]) == {"status_id", "status_name"}
    assert isinstance(info["origin_list"], list) and isinstance(info["tag"], list)
    assert all(set(owner) == {"user_id", "nickname"} for owner in info["owner"])
    for name in ("create_time", "update_time", "next_follow_up_time"):
        assert TIME.fullmatch(info[name])
    assert {k: info[k] for k in row if k != "user_id"} == {
        k: v for k, v in row.items() if k != "user_id"
    }
    countries = {c["country"] for c in control.records()["companies"]}
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in countries) and len(countries) > 5


def test_6_2_custom_fields_are_grouped_under_company(api: Api, control: SandboxClient):
    company_id = control.records()["companies"][0]["company_id"]
    groups = api.data(INFO, company_id=company_id)["company"]
    assert groups and all(set(g) == {"group_id", "name", "fields"} for g in groups)
    fields = [f for g in groups for f in g["fields"]]
    assert all(set(f) == {"id", "name", "field_type", "value"} for f in fields)
    assert {f["field_type"] for f in fields} >= {2, 3, 4, 5, 7}


def test_6_3_contacts_are_in_customers_with_the_documented_fields(api: Api, control: SandboxClient):
    company = next(c for c in control.records()["companies"] if len(c["customers"]) >= 2)
    customers = api.data(INFO, company_id=company["company_id"])["customers"]
    for person in customers:
        assert set(person) == {
            "customer_id", "company_id", "name", "email", "tel_list", "post", "post_grade",
            "gender", "birth", "remark", "main_customer_flag", "contact", "image_list",
            "external_field_data",
        }  # fmt: skip
        assert person["company_id"] == company["company_id"]
        assert all(len(tel) == 2 for tel in person["tel_list"])
        assert all(set(c) == {"type", "value"} for c in person["contact"])
    assert [p["main_customer_flag"] for p in customers].count(1) == 1


def test_6_4_an_unknown_company_gets_code_404_not_found_resource(api: Api):
    body = api.envelope(INFO, company_id=12345678901234)
    assert (body["code"], body["message"]) == (404, "Not Found Resource")
    assert api.envelope(INFO)["code"] == 400  # company_id missing
    assert api.envelope(INFO, company_id="abc")["code"] == 400


def test_6_5_company_info_has_the_documented_example_shape(api: Api, control: SandboxClient):
    example = {
        "company_id": 1, "name": "", "short_name": "", "serial_id": "", "country": "",
        "province": "", "city": "", "address": "", "homepage": "", "tel": [], "fax": "",
        "remark": "", "star": 3, "intention_level": 2, "scale_id": 2, "group_id": 0,
        "trail_status": {}, "origin_list": [], "tag": [], "owner": [], "create_time": "",
        "update_time": "", "next_follow_up_time": "", "company": [], "customers": [],
    }  # fmt: skip
    for company in control.records()["companies"][:20]:
        info = api.data(INFO, company_id=company["company_id"])
        assert {k: type(info[k]) for k in example} == {k: type(v) for k, v in example.items()}


def test_6_6_company_info_carries_the_vendors_further_fields(api: Api, control: SandboxClient):
    """Beyond the contract's example: fields the vendor documents, in the vendor's shapes."""
    infos = _infos(api, control)[:60]
    for info in infos:
        assert isinstance(info["tel_area_code"], str) and isinstance(info["pool_id"], int)
        assert info["client_tag_list"] == info["tag"]
        assert all(isinstance(i, int) for i in info["category_ids"] + info["product_group_ids"])
        assert all(
            set(image) == {"file_path", "file_preview_url", "file_name", "file_size"}
            for image in info["image_list"]
        )
        assert info["archive_time"] == info["create_time"]
        assert TIME.fullmatch(info["recent_follow_up_time"])
        for person in info["customers"]:
            assert person["image_list"] == []
            assert [set(f) for f in person["external_field_data"]] == [
                {"id", "name", "field_type", "value"}
            ]
    assert {i["pool_id"] for i in infos} == {0, 1}  # 1: the public pool, for ownerless ones
    assert any(i["image_list"] for i in infos) and any(i["category_ids"] for i in infos)


# 7. opportunity/list --------------------------------------------------------------------------


def test_7_1_opportunities_page_and_window_on_update_time(api: Api, control: SandboxClient):
    opportunities = control.records()["opportunities"]
    every = [o["opportunity_id"] for o in opportunities]
    assert api.ids(OPPORTUNITIES, "opportunity_id") == every
    assert api.envelope(OPPORTUNITIES, count=101)["code"] == 400
    assert api.envelope(OPPORTUNITIES, start_index=0)["code"] == 400
    page = api.data(OPPORTUNITIES, start_index=2, count=5)
    assert [o["opportunity_id"] for o in page["list"]] == every[5:10]
    low, high = opportunities[60]["update_time"], opportunities[20]["update_time"]
    expected = [o["opportunity_id"] for o in opportunities if low <= o["update_time"] <= high]
    assert len(expected) >= 41  # inclusive at both ends
    assert api.ids(OPPORTUNITIES, "opportunity_id", start_time=low, end_time=high) == expected


def test_7_2_opportunities_come_newest_first_and_shift_like_companies(
    api: Api, control: SandboxClient
):
    opportunities = control.records()["opportunities"]
    window = {"start_time": opportunities[-1]["update_time"], "end_time": _newest(opportunities)}
    data = api.data(OPPORTUNITIES, count=5, **window)
    assert set(data) == {"list", "totalItem", "count"}
    keys = [(o["update_time"], o["opportunity_id"]) for o in opportunities]
    assert keys == sorted(keys, reverse=True)
    before = [o["opportunity_id"] for o in opportunities]
    assert [o["opportunity_id"] for o in data["list"]] == before[:5]
    control.post("opportunities/update", {"opportunity_ids": [before[1]]})
    page2 = api.data(OPPORTUNITIES, start_index=2, count=5, **window)
    assert [o["opportunity_id"] for o in page2["list"]] == before[6:11]
    assert page2["totalItem"] == len(before) - 1


def test_7_3_opportunity_rows_have_the_documented_fields(api: Api):
    rows = api.data(OPPORTUNITIES, count=100)["list"]
    for row in rows:
        assert {k: type(v) for k, v in row.items()} == OPPORTUNITY_FIELDS
        assert DATE.fullmatch(row["account_date"])
    assert {r["stage_type"] for r in rows} == {1, 2, 3}


def test_7_4_opportunity_rows_match_the_documented_example(api: Api):
    example = {
        "opportunity_id": 880001, "serial_id": "OP-001", "name": "Q4 order",
        "company_id": 56657420945678, "customer_id": 7001, "amount": 12000.5, "currency": "USD",
        "stage": 3, "stage_name": "Negotiation", "stage_type": 1, "account_date": "2025-12-31",
        "user_id": "55280038", "create_time": "2025-10-01 09:00:00",
        "update_time": "2025-11-06 10:12:00", "remark": "",
        "enable_flag": 1,  # not in the contract's example; on every row of the vendor's
    }  # fmt: skip
    data = api.data(OPPORTUNITIES, count=3)
    assert set(data) >= {"list", "totalItem"}
    assert all(set(row) == set(example) for row in data["list"])


# 8. Deletions ---------------------------------------------------------------------------------


def test_8_1_removed_1_lists_deleted_companies_windowed_on_deletion_time(
    api: Api, control: SandboxClient
):
    companies = control.records()["companies"]
    deleted = control.post(
        "companies/delete", {"company_ids": [c["company_id"] for c in companies[5:8]]}
    )
    assert api.ids(removed=1) != [] and sorted(api.ids(removed=1)) == sorted(deleted["company_ids"])
    removed = control.records()["removed"]
    assert {k: type(v) for k, v in removed[0].items()} == ROW_FIELDS
    deleted_at = removed[0]["update_time"]
    assert deleted_at > _newest(companies)  # update_time = deletion time
    assert api.ids(removed=1, end_time=_shift(deleted_at, -2)) == []
    assert len(api.ids(removed=1, start_time=_shift(deleted_at, -2))) == 3
    assert not set(deleted["company_ids"]) & set(api.ids())


def test_8_2_company_info_for_a_deleted_company_answers_404(api: Api, control: SandboxClient):
    company_id = control.post("companies/delete", {"count": 1})["company_ids"][0]
    body = api.envelope(INFO, company_id=company_id)
    assert (body["code"], body["message"]) == (404, "Not Found Resource")


@pytest.mark.parametrize("mode", ["hidden", "listed"])
def test_8_3_a_deleted_opportunity_leaves_the_list_or_stays_with_enable_flag_0(
    api: Api, control: SandboxClient, mode: str
):
    control.knobs(extra={"opportunity_deletes": mode})
    before = control.records()["opportunities"]
    deleted = control.post("opportunities/delete", {"count": 2})["opportunity_ids"]
    listed = {o["opportunity_id"]: o for o in api.data(OPPORTUNITIES, count=100)["list"]}
    listed.update(
        {o["opportunity_id"]: o for o in api.data(OPPORTUNITIES, count=100, start_index=2)["list"]}
    )
    if mode == "hidden":  # no `removed` filter upstream: the row is gone
        assert not set(deleted) & set(listed)
        assert api.data(OPPORTUNITIES, count=1)["totalItem"] == len(before) - 2
        removed = control.records()["removed_opportunities"]
        assert {o["opportunity_id"] for o in removed} == set(deleted)
    else:  # still listed, flagged, moved to the deletion time
        newest = api.data(OPPORTUNITIES, count=2)["list"]
        assert {o["opportunity_id"] for o in newest} == set(deleted)
        assert all(o["enable_flag"] == 0 and o["update_time"] > _newest(before) for o in newest)
    again = requests.post(
        f"{control.base_url}/_sandbox/opportunities/delete",
        json={"opportunity_ids": deleted[:1]},
        timeout=10,
    )
    assert again.status_code == 400  # a deleted opportunity cannot be deleted again


# 9. Follow-ups ----------------------------------------------------------------------------------


def test_9_1_follow_ups_page_window_on_create_time_and_filter_by_one_id(
    api: Api, control: SandboxClient
):
    follow_ups = control.records()["follow_ups"]
    every = [f["trail_id"] for f in follow_ups]
    assert len(every) > 300
    assert api.ids(TRAILS, "trail_id") == every  # no filter: the whole account
    assert api.envelope(TRAILS, count=101)["code"] == 400
    page = api.data(TRAILS, start_index=2, count=5)
    assert set(page) == {"list", "totalItem"} and page["totalItem"] == len(every)
    assert [f["trail_id"] for f in page["list"]] == every[5:10]
    low, high = follow_ups[80]["create_time"], follow_ups[20]["create_time"]
    expected = [f["trail_id"] for f in follow_ups if low <= f["create_time"] <= high]
    assert api.ids(TRAILS, "trail_id", start_time=low, end_time=high) == expected
    company = follow_ups[0]["company_id"]
    assert api.ids(TRAILS, "trail_id", company_id=company) == [
        f["trail_id"] for f in follow_ups if f["company_id"] == company
    ]
    opportunity = next(f["opportunity_id"] for f in follow_ups if f["opportunity_id"])
    assert api.ids(TRAILS, "trail_id", opportunity_id=opportunity) == [
        f["trail_id"] for f in follow_ups if f["opportunity_id"] == opportunity
    ]
    assert api.ids(TRAILS, "trail_id", lead_id=5) == []
    both = api.envelope(TRAILS, company_id=company, opportunity_id=opportunity)
    assert both["code"] == 400  # one filter at a time
    assert api.envelope(TRAILS, start_time="yesterday")["code"] == 400


def test_9_2_newest_created_first_and_an_edit_stays_in_its_creation_window(
    api: Api, control: SandboxClient
):
    follow_ups = control.records()["follow_ups"]
    keys = [(f["create_time"], f["trail_id"]) for f in follow_ups]
    assert keys == sorted(keys, reverse=True)
    old = follow_ups[-5]
    control.post("follow_ups/update", {"trail_ids": [old["trail_id"]]})
    window = {"start_time": old["create_time"], "end_time": old["create_time"]}
    edited = next(f for f in api.data(TRAILS, **window)["list"] if f["trail_id"] == old["trail_id"])
    assert (
        edited["update_time"] > old["update_time"] and edited["create_time"] == old["create_time"]
    )
    assert edited["content"] != old["content"]
    assert [f["trail_id"] for f in control.records()["follow_ups"]] == [t for _, t in keys]


def test_9_3_rows_have_the_contract_fields_and_name_companies_contacts_and_opportunities(
    api: Api, control: SandboxClient
):
    rows = api.data(TRAILS, count=100)["list"]
    for row in rows:
        assert {k: type(v) for k, v in row.items()} == TRAIL_FIELDS
        assert TIME.fullmatch(row["create_time"]) and row["create_time"] <= row["update_time"]
        assert (row["enable_flag"], row["delete_flag"]) == (1, 0)
    records = control.records()
    follow_ups = records["follow_ups"]
    contacts = {
        p["customer_id"]: c["company_id"] for c in records["companies"] for p in c["customers"]
    }
    opportunities = {o["opportunity_id"]: o["company_id"] for o in records["opportunities"]}
    named = [f for f in follow_ups if f["customer_id"]]
    assert 0.2 < len(named) / len(follow_ups) < 0.6
    assert all(contacts[f["customer_id"]] == f["company_id"] for f in named)
    linked = [f for f in follow_ups if f["opportunity_id"]]
    assert linked and all(opportunities[f["opportunity_id"]] == f["company_id"] for f in linked)
    assert {f["type"] for f in follow_ups} >= {101, 102, 103, 104}
    contents = [f["content"] for f in follow_ups]
    assert any("\n" in c for c in contents) and any("<p>" in c for c in contents)
    assert any(f["update_time"] > f["create_time"] for f in follow_ups)  # edited or written late


def test_9_4_a_deleted_follow_up_stays_listed_with_delete_flag_1(api: Api, control: SandboxClient):
    follow_ups = control.records()["follow_ups"]
    doomed = follow_ups[3]
    assert control.post("follow_ups/delete", {"trail_ids": [doomed["trail_id"]]}) == {
        "trail_ids": [doomed["trail_id"]]
    }
    listed = {f["trail_id"]: f for f in api.data(TRAILS, count=10)["list"]}
    assert (
        listed[doomed["trail_id"]]["delete_flag"],
        listed[doomed["trail_id"]]["enable_flag"],
    ) == (1, 0)
    assert listed[doomed["trail_id"]]["update_time"] > doomed["update_time"]
    assert api.data(TRAILS, count=1)["totalItem"] == len(follow_ups)
    company = control.records()["companies"][0]["company_id"]
    control.post("companies/delete", {"company_ids": [company]})
    assert api.ids(TRAILS, "trail_id", company_id=company) == [
        f["trail_id"] for f in follow_ups if f["company_id"] == company
    ]  # a deleted company's follow-ups stay


def test_9_5_a_follow_up_written_while_paging_shifts_the_later_pages(
    api: Api, control: SandboxClient
):
    before = [f["trail_id"] for f in control.records()["follow_ups"]]
    first = api.data(TRAILS, count=10)
    assert [f["trail_id"] for f in first["list"]] == before[:10]
    company = control.records()["companies"][0]["company_id"]
    control.post("follow_ups/create", {"company_ids": [company]})  # happened just now
    second = api.data(TRAILS, start_index=2, count=10)
    assert second["totalItem"] == first["totalItem"] + 1
    assert [f["trail_id"] for f in second["list"]] == before[9:19]  # one row read twice


def test_9_6_knob_trail_churn_writes_backdated_edits_and_deletes_once(
    api: Api, control: SandboxClient
):
    before = {f["trail_id"] for f in control.records()["follow_ups"]}
    control.knobs(
        extra={
            "trail_churn": {
                "after_list_requests": 2,
                "create": 3,
                "backdate_minutes": 120,
                "update": 2,
                "delete": 1,
            }
        }
    )
    served = [f["trail_id"] for f in api.data(TRAILS, count=10)["list"]]
    served += [f["trail_id"] for f in api.data(TRAILS, start_index=2, count=10)["list"]]
    assert control.knobs()["extra"]["trail_churn"] is None
    after = control.records()["follow_ups"]
    new = [f for f in after if f["trail_id"] not in before]
    assert len(new) == 3 and sum(f["delete_flag"] for f in after) == 1
    # Written now, but happened up to two hours ago: inside a window a client is paging.
    earliest = (datetime.now(SHANGHAI) - timedelta(minutes=121)).strftime("%Y-%m-%d %H:%M:%S")
    assert all(earliest <= f["create_time"] <= f["update_time"] for f in new)
    touched = {f["trail_id"] for f in after if f["trail_id"] in served} & {
        f["trail_id"] for f in after if "(edited" in f["content"] or f["delete_flag"]
    }
    assert len(touched) == 3  # the edits and the deletion hit rows the client already read


def test_9_7_companies_update_plans_or_clears_the_next_follow_up(api: Api, control: SandboxClient):
    companies = control.records()["companies"]
    nexts = [c["next_follow_up_time"] for c in companies]
    now = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert any(n > now for n in nexts) and any("1971" < n < now for n in nexts)  # planned, passed
    assert "1970-01-01 00:00:00" in nexts  # none
    company = companies[0]["company_id"]
    control.post(
        "companies/update", {"company_ids": [company], "next_follow_up_time": "2030-01-02 09:30:00"}
    )
    assert api.data(INFO, company_id=company)["next_follow_up_time"] == "2030-01-02 09:30:00"
    control.post("companies/update", {"company_ids": [company], "next_follow_up_time": ""})
    assert api.data(INFO, company_id=company)["next_follow_up_time"] == "1970-01-01 00:00:00"


# 10. Open shapes (knob shape_variety) -----------------------------------------------------------
OPEN_COMPANY_FIELDS = (
    "tel", "trail_status", "origin_list", "tag", "client_tag_list", "category_ids",
    "product_group_ids", "image_list", "company",
)  # fmt: skip
OPEN_CONTACT_FIELDS = ("tel_list", "contact", "external_field_data")


def _shape(value: Any) -> str:
    """A value's shape: its JSON type, and for lists the type of its first item."""
    if isinstance(value, list) and value:
        return f"list of {_shape(value[0])}"
    return type(value).__name__


def _infos(api: Api, control: SandboxClient) -> list[dict[str, Any]]:
    return [api.data(INFO, company_id=c["company_id"]) for c in control.records()["companies"]]


def test_10_without_the_knob_open_fields_come_in_one_documented_shape(
    api: Api, control: SandboxClient
):
    infos = _infos(api, control)[:100]
    for name in OPEN_COMPANY_FIELDS:
        shapes = {_shape(info[name]) for info in infos} - {"list"}  # empty lists aside
        assert len(shapes) == 1, (name, shapes)
    assert {_shape(i["tag"]) for i in infos} >= {"list of dict"}
    assert {_shape(i["category_ids"]) for i in infos} >= {"list of int"}
    assert {_shape(i["image_list"]) for i in infos} >= {"list of dict"}
    assert all(isinstance(i["company_id"], int) for i in infos)


def test_10_shape_variety_serves_every_open_field_in_several_shapes_and_ids_as_text(
    api: Api, control: SandboxClient
):
    control.knobs(extra={"shape_variety": 0.6})  # the documented shape stays among them
    infos = _infos(api, control)
    for name in OPEN_COMPANY_FIELDS:
        assert len({_shape(info[name]) for info in infos}) >= 2, name
    people = [p for info in infos for p in info["customers"]]
    for name in OPEN_CONTACT_FIELDS:
        assert len({_shape(p[name]) for p in people}) >= 2, name
    tags = {_shape(i["tag"]) for i in infos}
    assert {"list of int", "list of str", "str"} <= tags  # ids, ids as text or names, joined
    rows = api.data(LIST, count=100)["list"]
    assert {type(r["company_id"]) for r in rows} == {int, str}
    assert {type(i["user_id"]) for i in infos} >= {list, str}
    opportunities = api.data(OPPORTUNITIES, count=100)["list"]
    assert {type(o["user_id"]) for o in opportunities} >= {int, list, str}
    assert {type(o["amount"]) for o in opportunities} >= {float, str}
    follow_ups = api.data(TRAILS, count=100)["list"]
    assert {type(f["customer_id"]) for f in follow_ups} >= {int, list, str}  # list: upstream's
    assert {type(f["trail_id"]) for f in follow_ups} == {int, str}


def test_10_shape_variety_is_stable_for_a_record_until_it_changes(api: Api, control: SandboxClient):
    control.knobs(extra={"shape_variety": 0.5})
    row = api.data(LIST, count=1)["list"][0]
    first = api.data(INFO, company_id=row["company_id"])
    assert api.data(INFO, company_id=row["company_id"]) == first
    assert type(first["company_id"]) is type(row["company_id"])  # list and detail agree
    control.post("companies/update", {"company_ids": [int(row["company_id"])]})
    changed = [
        api.data(INFO, company_id=c["company_id"]) for c in control.records()["companies"][:1]
    ]
    assert changed[0]["update_time"] > first["update_time"]


def _unconvertible(info: dict[str, Any]) -> bool:
    return (
        not isinstance(info["star"], int)
        or isinstance(info["remark"], dict)
        or isinstance(info["fax"], list)
        or isinstance(info["intention_level"], str)
        or not TIME.fullmatch(info["order_time"])
        or any(p["birth"] and not DATE.fullmatch(p["birth"]) for p in info["customers"])
    )


def test_10_shape_variety_makes_a_tenth_of_its_share_unconvertible(
    api: Api, control: SandboxClient
):
    control.knobs(extra={"shape_variety": 1.0})
    infos = _infos(api, control)

    share = sum(map(_unconvertible, infos)) / len(infos)
    assert 0.04 < share < 0.18


def test_10_unconvertible_share_sets_that_share_of_records_with_one_such_value(
    api: Api, control: SandboxClient
):
    control.knobs(extra={"shape_variety": 1.0, "unconvertible_share": 1.0})
    infos = _infos(api, control)

    # All but those whose unconvertible value would be a contact's birth and have no contact.
    missed = [i for i in infos if not _unconvertible(i)]
    assert all(not i["customers"] for i in missed)
    assert len(missed) < len(infos) / 4


def test_10_shape_variety_can_be_set_when_the_sandbox_starts():
    running = start_sandbox("--companies", "5", "--okki-shape-variety", "0.25")
    try:
        assert running.okki.knobs()["extra"]["shape_variety"] == 0.25
    finally:
        running.stop()


# Knobs ----------------------------------------------------------------------------------------


def test_knob_rate_per_second_null_disables_the_limit(api: Api, control: SandboxClient):
    assert control.knobs()["extra"]["rate_per_second"] is None
    assert {api.get(LIST, count=1).status_code for _ in range(40)} == {200}


def test_knob_revoke_tokens_after_requests_fires_once_then_clears(api: Api, control: SandboxClient):
    control.knobs(extra={"revoke_tokens_after_requests": 3})
    assert [api.get(LIST, count=1).status_code for _ in range(4)] == [200, 200, 200, 401]
    assert control.knobs()["extra"]["revoke_tokens_after_requests"] is None
    api.login()
    assert {api.get(LIST, count=1).status_code for _ in range(5)} == {200}


def test_knob_churn_updates_deletes_and_creates_once_after_n_list_calls(
    api: Api, control: SandboxClient
):
    control.knobs(
        extra={"churn": {"after_list_requests": 2, "update": 2, "delete": 1, "create": 3}}
    )
    served = [r["company_id"] for r in api.data(LIST, count=10)["list"]]
    assert control.stats()["removed"] == 0
    served += [r["company_id"] for r in api.data(LIST, start_index=2, count=10)["list"]]
    stats = control.stats()
    assert (stats["companies"], stats["removed"]) == (COMPANIES - 1 + 3, 1)
    assert control.knobs()["extra"]["churn"] is None
    newest = api.data(LIST, count=5)["list"]  # 3 created + 2 updated, all at "now"
    assert sum(r["company_id"] in served for r in newest) == 2  # updated ones were already read
    assert api.ids(removed=1)[0] in served


def test_scope_missing_the_module_gets_code_403(control: SandboxClient):
    api = Api(control).login(scope="company")
    assert api.envelope(LIST, count=1)["code"] == 200
    body = api.envelope(OPPORTUNITIES, count=1)
    assert (body["code"], body["message"]) == (403, "no permission opportunity scopes")


# Control routes, records, stats, reset -------------------------------------------------------


def test_control_routes_change_companies_and_opportunities(api: Api, control: SandboxClient):
    records = control.records()
    first = records["companies"][-1]
    updated = control.post("companies/update", {"company_ids": [first["company_id"]]})
    assert updated == {"company_ids": [first["company_id"]], "dropped_contacts": []}
    after = api.data(INFO, company_id=first["company_id"])
    assert after["update_time"] > first["update_time"] and after["remark"] != first["remark"]
    # Renames, homepages and contacts removed, as users change them.
    with_contacts = next(c for c in records["companies"] if len(c["customers"]) >= 2)
    changed = control.post(
        "companies/update",
        {
            "company_ids": [with_contacts["company_id"]],
            "rename": True,
            "homepage": "HTTP://Shared.example/",
            "drop_contacts": 1,
        },
    )
    after = api.data(INFO, company_id=with_contacts["company_id"])
    assert changed["dropped_contacts"] == [with_contacts["customers"][-1]["customer_id"]]
    assert after["name"] == with_contacts["name"] + " (renamed)"
    assert after["homepage"] == "HTTP://Shared.example/"
    assert len(after["customers"]) == len(with_contacts["customers"]) - 1
    assert len(control.post("companies/update", {"count": 4})["company_ids"]) == 4
    created = control.post("companies/create", {"count": 2})["company_ids"]
    assert all(api.data(INFO, company_id=i)["create_time"] for i in created)
    assert control.stats()["companies"] == COMPANIES + 2
    opportunity = records["opportunities"][-1]["opportunity_id"]
    moved = control.post("opportunities/update", {"opportunity_ids": [opportunity]})
    assert moved == {"opportunity_ids": [opportunity]}
    assert api.data(OPPORTUNITIES, count=1)["list"][0]["opportunity_id"] == opportunity
    assert len(control.post("opportunities/update", {"count": 3})["opportunity_ids"]) == 3
    for path, body in (
        ("companies/update", {"company_ids": [1]}),
        ("companies/delete", {}),
        ("opportunities/update", {"opportunity_ids": ["x"]}),
    ):
        answer = requests.post(f"{control.base_url}/_sandbox/{path}", json=body, timeout=10)
        assert answer.status_code == 400 and "error" in answer.json()


def test_records_and_stats_report_what_is_stored_and_served(api: Api, control: SandboxClient):
    api.data(LIST, count=1)
    api.data(LIST, count=1)
    api.get(LIST, count=1, start_time="bad")
    control.post("companies/delete", {"count": 1})
    records = control.records()
    assert set(records) == {
        "companies", "removed", "opportunities", "removed_opportunities", "follow_ups"
    }  # fmt: skip
    assert (len(records["companies"]), len(records["removed"])) == (COMPANIES - 1, 1)
    assert "customers" in records["companies"][0]
    stats = control.stats()
    assert stats["tokens_issued"] == 1 and stats["throttled"] == 0
    assert stats["calls"] == {TOKEN: 1, LIST: 3}
    assert stats["opportunities"] == len(records["opportunities"])


def test_reset_regenerates_the_same_seeded_data(api: Api, control: SandboxClient):
    before = control.records()
    control.post("companies/update", {"count": 5})
    control.post("companies/delete", {"count": 5})
    control.reset()
    assert control.records() == before
    assert control.stats()["tokens_issued"] == 0
    assert api.get(LIST).status_code == 401  # tokens are forgotten too


# The data generator ---------------------------------------------------------------------------


def test_generated_data_is_seeded_realistic_and_messy(control: SandboxClient):
    records = control.records()
    companies, opportunities = records["companies"], records["opportunities"]
    started = datetime.now(SHANGHAI).replace(tzinfo=None)
    oldest = (started - timedelta(days=30, minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    assert all(
        oldest <= c["update_time"] and c["create_time"] < c["update_time"] for c in companies
    )
    assert len({c["company_id"] for c in companies}) == COMPANIES
    assert all(len(str(c["company_id"])) == 14 for c in companies)
    names = [c["name"] for c in companies]
    assert any(re.search(r"[\u4e00-\u9fff]", n) for n in names)
    assert any(re.fullmatch(r"[A-Za-z .,&]+", n) for n in names)
    homepages = [c["homepage"] for c in companies]
    assert "" in homepages
    for pattern in (r"HTTPS://[A-Z]\S+/", r"www\.\S+", r"http://\S+"):
        assert any(re.fullmatch(pattern, h) for h in homepages), pattern
    contacts = [p for c in companies for p in c["customers"]]
    assert {len(c["customers"]) for c in companies} == {0, 1, 2, 3, 4}
    assert len({p["customer_id"] for p in contacts}) == len(contacts)
    emails = [p["email"] for p in contacts]
    assert "" in emails
    shared = {e for e in emails if e and emails.count(e) > 1}
    assert any(
        len({c["company_id"] for c in companies for p in c["customers"] if p["email"] == e}) > 1
        for e in shared
    )
    with_opportunities = {o["company_id"] for o in opportunities}
    assert 0.3 < len(with_opportunities) / COMPANIES < 0.5
    assert len({o["opportunity_id"] for o in opportunities}) == len(opportunities)
    assert all(o["create_time"] < o["update_time"] for o in opportunities)


def test_generating_1000_companies_is_fast():
    started = time.perf_counter()
    sandbox = OkkiSandbox(seed=3, companies=1000)
    assert time.perf_counter() - started < 1.0
    assert len(sandbox.records()["companies"]) == 1000
    started = time.perf_counter()
    start_sandbox("--companies", "1000").stop()
    assert time.perf_counter() - started < 5.0


def _domain(homepage: str) -> str | None:
    """What makes two homepages one site: host without `www.`, any case, scheme or path."""
    text = homepage.strip().lower()
    if not text:
        return None
    host = text.split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.") or None


def test_generated_companies_share_homepage_domains_in_a_measured_share(control: SandboxClient):
    companies = control.records()["companies"]
    by_domain: dict[str, list[str]] = {}
    for company in companies:
        if domain := _domain(company["homepage"]):
            by_domain.setdefault(domain, []).append(company["homepage"])
    shared = [pages for pages in by_domain.values() if len(pages) > 1]
    share = sum(map(len, shared)) / len(companies)
    assert 0.03 <= share <= 0.12, share
    # Written differently: in letter case, scheme, `www.` or a path.
    pairs = [(a, b) for pages in shared for a in pages for b in pages if a < b]
    differences = {
        "case": any(a != b and any(ch.isupper() for ch in a + b) for a, b in pairs),
        "scheme": any(("http://" in a) != ("http://" in b) for a, b in pairs),
        "www": any(("www." in a) != ("www." in b) for a, b in pairs),
        "path": any(a.rstrip("/").count("/") != b.rstrip("/").count("/") for a, b in pairs),
    }
    assert all(differences.values()), differences


def test_generated_contacts_share_emails_in_a_measured_share(control: SandboxClient):
    companies = control.records()["companies"]
    people = [(c["company_id"], p) for c in companies for p in c["customers"]]
    holders: dict[str, set[str]] = {}
    for _, person in people:
        if person["email"]:
            holders.setdefault(person["email"].lower(), set()).add(person["email"])
    shared = [p for _, p in people if p["email"] and _count(people, p["email"]) > 1]
    share = len(shared) / len(people)
    assert 0.05 <= share <= 0.15, share
    assert any(len(spellings) > 1 for spellings in holders.values())  # only the case differs
    across = {
        e.lower(): {c for c, p in people if p["email"].lower() == e.lower()}
        for e in (p["email"] for p in shared)
    }
    assert any(len(companies_) > 1 for companies_ in across.values())


def _count(people: list[tuple[int, dict[str, Any]]], email: str) -> int:
    return sum(1 for _, p in people if p["email"].lower() == email.lower())
