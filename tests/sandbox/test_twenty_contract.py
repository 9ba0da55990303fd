"""The Twenty emulator against its contract (docs/api/twenty.md), over real HTTP.

One test per numbered rule (`test_<section>_<rule>_…`), then the emulator's own knobs and
control routes. Each test starts from an empty workspace with fresh rate buckets and the
initial knobs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from crm_sandbox.control import RunningSandbox, SandboxClient, start_sandbox

DEMO_KEY = "twenty-demo-key"
UUID_NS = uuid.UUID("6f1c2a9e-0000-4000-8000-000000000000")


def uid(name: str) -> str:
    """A stable client-side id, as target-twenty derives them."""
    return str(uuid.uuid5(UUID_NS, name))


class Twenty:
    """A bare REST client: what a target sends, nothing more."""

    def __init__(self, base_url: str, api_key: str | None = DEMO_KEY) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        if api_key:
            self.http.headers["Authorization"] = f"Bearer {api_key}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base_url}{path}", timeout=30, **kwargs)

    def batch(self, plural: str, records: Any, upsert: bool = False) -> requests.Response:
        params = {"upsert": "true"} if upsert else {}
        return self.call("POST", f"/rest/batch/{plural}", params=params, json=records)

    def created(self, plural: str, records: list[dict[str, Any]], upsert: bool = False) -> list:
        response = self.batch(plural, records, upsert)
        assert response.status_code == 201, response.text
        return response.json()["data"][f"create{plural[0].upper()}{plural[1:]}"]

    def find(self, plural: str, **params: Any) -> requests.Response:
        return self.call("GET", f"/rest/{plural}", params=params)

    def rows(self, plural: str, filter: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 200, **({"filter": filter} if filter else {})}
        response = self.find(plural, **params)
        assert response.status_code == 200, response.text
        return response.json()["data"][plural]

    def metadata(self) -> dict[str, dict[str, Any]]:
        response = self.call("GET", "/rest/metadata/objects")
        assert response.status_code == 200, response.text
        return {o["nameSingular"]: o for o in response.json()["data"]["objects"]}


def company(name: str, domain: str | None = None, **more: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"name": name, **more}
    if domain:
        record["domainName"] = {"primaryLinkUrl": domain}
    return record


def person(first: str, email: str, **more: Any) -> dict[str, Any]:
    return {
        "name": {"firstName": first, "lastName": "Doe"},
        "emails": {"primaryEmail": email},
        **more,
    }


def message(response: requests.Response) -> str:
    return " ".join(response.json()["messages"])


def field_of(meta: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in meta["fields"] if f["name"] == name)


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSandbox]:
    sandbox = start_sandbox("--seed", "7", "--companies", "5")
    yield sandbox
    sandbox.stop()


@pytest.fixture
def control(running: RunningSandbox) -> Iterator[SandboxClient]:
    """The emulator's control routes; data, buckets and knobs are restored after each test."""
    initial = running.twenty.knobs()
    running.twenty.reset()
    yield running.twenty
    running.twenty.knobs(**initial)
    running.twenty.reset()


@pytest.fixture
def api(control: SandboxClient) -> Twenty:
    return Twenty(control.base_url)


def exhaust(client: Twenty, calls: int = 1000) -> requests.Response:
    """Call until throttled; the 429 answer."""
    for _ in range(calls):
        response = client.find("companies", limit=1)
        if response.status_code == 429:
            return response
        assert response.status_code == 200, response.text
    raise AssertionError(f"no 429 after {calls} calls")


# §1 General ----------------------------------------------------------------------------------


def test_1_1_api_lives_under_rest_of_the_configurable_base_url(api: Twenty) -> None:
    assert api.base_url.startswith("http://127.0.0.1:")
    assert api.find("companies", limit=1).status_code == 200
    # One upstream doc shows /rest/core/{plural}; the contract (and the code) has no such alias.
    assert api.call("GET", "/rest/core/companies").status_code == 400


def test_1_2_calls_without_a_valid_bearer_key_get_401(control: SandboxClient, api: Twenty) -> None:
    anonymous = Twenty(control.base_url, api_key=None)
    for response in (
        anonymous.find("companies", limit=1),
        Twenty(control.base_url, "not-a-key").find("companies", limit=1),
        anonymous.call("GET", "/rest/companies", headers={"Authorization": DEMO_KEY}),
        anonymous.find("companies", limit=1, apiKey=DEMO_KEY),
        api.find("companies", limit=1, token=DEMO_KEY),  # a key in a URL is refused too
    ):
        assert response.status_code == 401
        assert response.json()["error"] == "UnauthorizedException"
        assert DEMO_KEY not in response.text and "not-a-key" not in response.text

    control.knobs(extra={"api_keys": [DEMO_KEY, "second-key"]})
    assert Twenty(control.base_url, "second-key").find("companies", limit=1).status_code == 200
    control.knobs(extra={"api_keys": ["second-key"]})
    assert api.find("companies", limit=1).status_code == 401


def test_1_3_paths_use_the_plural_api_name_and_bodies_are_json(api: Twenty) -> None:
    for plural in ("companies", "people", "opportunities"):
        assert api.find(plural, limit=1).status_code == 200
    singular = api.find("person", limit=1)
    assert singular.status_code == 400
    assert "/rest/people" in message(singular)
    not_json = api.call("POST", "/rest/batch/companies", data="name=Acme")
    assert not_json.status_code == 400
    assert "JSON" in message(not_json)


def test_1_4_errors_have_status_code_error_and_messages(api: Twenty) -> None:
    bad = api.batch("companies", [{"foo": 1}])
    assert bad.status_code == 400
    assert bad.json() == {
        "statusCode": 400,
        "error": "BadRequestException",
        "messages": ['Object company doesn\'t have any "foo" field.'],
    }
    missing = api.call("GET", f"/rest/companies/{uid('nobody')}")
    assert missing.status_code == 404
    assert missing.json()["statusCode"] == 404
    assert missing.json()["error"] == "NotFoundException"
    assert isinstance(missing.json()["messages"], list)


# §2 Batch create / upsert --------------------------------------------------------------------


def test_2_1_batch_of_61_records_is_rejected_with_400(control: SandboxClient, api: Twenty) -> None:
    records = [company(f"Co {i}", f"https://co{i}.example") for i in range(61)]
    too_many = api.batch("companies", records)
    assert too_many.status_code == 400
    assert "Maximum number of records" in message(too_many)
    assert control.records()["companies"] == []

    assert len(api.created("companies", records[:60])) == 60


def test_2_2_created_records_come_back_in_input_order_with_ids(
    control: SandboxClient, api: Twenty
) -> None:
    names = ["Zeta", "Alpha", "Mu", "Beta"]
    rows = api.created("companies", [company(n) for n in names])
    assert [r["name"] for r in rows] == names
    assert all(uuid.UUID(r["id"]) for r in rows)
    assert len({r["id"] for r in rows}) == len(names)
    assert [r["name"] for r in control.records()["companies"]] == names

    people = api.batch("people", [person("Ann", "ann@example.com")])
    assert people.status_code == 201 and list(people.json()["data"]) == ["createPeople"]
    deals = api.batch("opportunities", [{"name": "Deal"}])
    assert deals.status_code == 201 and list(deals.json()["data"]) == ["createOpportunities"]


def test_2_3_client_ids_are_kept_and_existing_or_repeated_keys_reject_the_batch(
    control: SandboxClient, api: Twenty
) -> None:
    acme_id = uid("acme")
    [acme] = api.created("companies", [company("Acme", "https://acme.com", id=acme_id)])
    assert acme["id"] == acme_id

    fresh = company("Fresh", "https://fresh.com")
    for batch in (
        [fresh, company("Acme again", id=acme_id)],  # existing id
        [fresh, company("Acme twin", "https://acme.com")],  # existing unique domain
    ):
        response = api.batch("companies", batch)
        assert response.status_code == 400
        assert "Duplicate company." in message(response)
    assert [r["name"] for r in control.records()["companies"]] == ["Acme"]

    for upsert in (False, True):  # a new key twice in one batch fails in both modes
        twins = [company("One", "https://new.com"), company("Two", "https://NEW.com/")]
        response = api.batch("companies", twins, upsert=upsert)
        assert response.status_code == 400
        assert 'company.domainName.primaryLinkUrl "https://new.com"' in message(response)
        same_id = [company("One", id=uid("x")), company("Two", id=uid("x"))]
        assert api.batch("companies", same_id, upsert=upsert).status_code == 400
    emails = [person("Ann", "ann@example.com"), person("Anna", "ANN@example.com")]
    assert api.batch("people", emails).status_code == 400
    assert [r["name"] for r in control.records()["companies"]] == ["Acme"]
    assert control.records()["people"] == []


def test_2_4_upsert_matches_ids_and_normalised_unique_keys(
    control: SandboxClient, api: Twenty
) -> None:
    [acme] = api.created("companies", [company("Acme", "https://acme.com")])
    [ann] = api.created("people", [person("Ann", "ann@example.com")])

    [by_domain, no_scheme] = api.created(
        "companies",
        [company("Acme Corp", "HTTPS://Acme.com/"), company("Bare", "acme.com")],
        upsert=True,
    )
    assert by_domain["id"] == acme["id"]
    assert by_domain["name"] == "Acme Corp"
    assert by_domain["domainName"]["primaryLinkUrl"] == "https://acme.com"
    assert no_scheme["id"] != acme["id"]  # no scheme is added: a different key

    [by_email] = api.created("people", [person("Annie", "Ann@Example.COM")], upsert=True)
    assert by_email["id"] == ann["id"] and by_email["name"]["firstName"] == "Annie"
    [by_id] = api.created("people", [{"id": ann["id"], "jobTitle": "CEO"}], upsert=True)
    assert by_id["jobTitle"] == "CEO" and by_id["name"]["firstName"] == "Annie"

    stats = control.stats()
    assert stats["companies"] == {"created": 2, "updated": 1, "deleted": 0}
    assert stats["people"] == {"created": 1, "updated": 2, "deleted": 0}


def test_2_4_upsert_revives_a_soft_deleted_match_and_keeps_its_id(api: Twenty) -> None:
    [acme] = api.created("companies", [company("Acme", "https://acme.com", id=uid("acme"))])
    assert api.call("DELETE", f"/rest/companies/{acme['id']}").status_code == 200
    time.sleep(0.01)

    # A client id that matches nothing while the domain matches: the existing row wins.
    [revived] = api.created(
        "companies", [company("Acme", "https://acme.com/", id=uid("other"))], upsert=True
    )
    assert revived["id"] == acme["id"]
    assert revived["deletedAt"] is None
    assert revived["createdAt"] == acme["createdAt"]
    assert revived["updatedAt"] > acme["updatedAt"]
    assert [r["id"] for r in api.rows("companies")] == [acme["id"]]


def test_2_4_keys_matching_two_different_rows_are_rejected(
    control: SandboxClient, api: Twenty
) -> None:
    acme, globex = api.created(
        "companies", [company("Acme", "https://acme.com"), company("Globex", "https://globex.com")]
    )
    clash = company("Clash", "https://globex.com", id=acme["id"])
    response = api.batch("companies", [company("Fine", "https://fine.com"), clash], upsert=True)
    assert response.status_code == 400
    assert message(response).startswith("Multiple records found")
    assert acme["id"] in message(response) and globex["id"] in message(response)
    assert [r["name"] for r in control.records()["companies"]] == ["Acme", "Globex"]


def test_2_5_relations_to_missing_rows_reject_the_whole_batch(
    control: SandboxClient, api: Twenty
) -> None:
    [acme, gone] = api.created("companies", [company("Acme"), company("Gone")])
    api.call("DELETE", f"/rest/companies/{gone['id']}")
    [ann] = api.created("people", [person("Ann", "ann@example.com", companyId=acme["id"])])
    assert ann["companyId"] == acme["id"]

    ghost = uid("ghost")
    for plural, bad in (
        ("people", person("Bob", "bob@example.com", companyId=ghost)),
        ("people", person("Cid", "cid@example.com", companyId=gone["id"])),  # soft-deleted
        ("opportunities", {"name": "Deal", "companyId": ghost}),
        ("opportunities", {"name": "Deal", "pointOfContactId": ghost}),
    ):
        good = person("Eve", "eve@example.com") if plural == "people" else {"name": "Good"}
        response = api.batch(plural, [good, bad])
        assert response.status_code == 400
        assert ghost in message(response) or gone["id"] in message(response)
    assert [r["name"]["firstName"] for r in control.records()["people"]] == ["Ann"]
    assert control.records()["opportunities"] == []

    deal = {"name": "Deal", "companyId": acme["id"], "pointOfContactId": ann["id"]}
    assert api.created("opportunities", [deal])[0]["pointOfContactId"] == ann["id"]


def test_2_6_any_invalid_record_rejects_the_whole_batch(
    control: SandboxClient, api: Twenty
) -> None:
    cases = [
        ("companies", {"foo": 1}, 'Object company doesn\'t have any "foo" field.'),
        ("companies", {"domainName": "https://acme.com"}, "company.domainName (LINKS)"),
        ("companies", {"domainName": {"url": "x"}}, 'unknown sub-field "url"'),
        (
            "companies",
            {"employees": "120"},
            'company.employees (NUMBER): expected a number, got "120"',
        ),
        ("companies", {"idealCustomerProfile": "yes"}, "company.idealCustomerProfile (BOOLEAN)"),
        ("opportunities", {"stage": "WON"}, "opportunity.stage (SELECT): expected one of NEW"),
        (
            "people",
            {"companyId": "acme"},
            'person.companyId (RELATION): expected a UUID, got "acme"',
        ),
        ("people", {"company": {"name": "Acme"}}, 'join column "companyId"'),
        ("companies", {"people": []}, "one-to-many"),
    ]
    for plural, bad, expected in cases:
        good = {"name": "Valid"} if plural != "people" else person("Val", "val@example.com")
        response = api.batch(plural, [good, bad], upsert=True)
        assert response.status_code == 400, bad
        assert expected in message(response)
    assert all(rows == [] for rows in control.records().values())
    assert control.stats()["rejected_batches"] == len(cases)


def test_2_7_contract_example_request_gets_the_example_response(api: Twenty) -> None:
    acme_id = "0b5e6a52-5c1f-5d7e-9d0a-3f1f6a2b9c11"
    body = [
        {
            "id": acme_id,
            "name": "Acme",
            "domainName": {
                "primaryLinkUrl": "https://acme.com",
                "primaryLinkLabel": "",
                "secondaryLinks": [],
            },
            "employees": 120,
            "annualRecurringRevenue": {"amountMicros": 2500000000000, "currencyCode": "USD"},
            "address": {"addressCity": "Paris", "addressCountry": "France"},
        },
        {"name": "Globex", "domainName": {"primaryLinkUrl": "https://globex.com"}},
    ]
    response = api.batch("companies", body, upsert=True)
    assert response.status_code == 201
    acme, globex = response.json()["data"]["createCompanies"]
    assert acme["id"] == acme_id and acme["name"] == "Acme" and acme["employees"] == 120
    assert acme["domainName"] == body[0]["domainName"]
    assert acme["address"]["addressCity"] == "Paris" and acme["address"]["addressStreet1"] == ""
    assert acme["createdAt"].endswith("Z")
    assert uuid.UUID(globex["id"]) and globex["name"] == "Globex"
    assert globex["domainName"] == {
        "primaryLinkUrl": "https://globex.com",
        "primaryLinkLabel": "",
        "secondaryLinks": [],
    }


# §3 Find many --------------------------------------------------------------------------------


def seed_companies(api: Twenty, count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, count, 60):
        chunk = range(start, min(start + 60, count))
        rows += api.created("companies", [company(f"Co {i:03}", employees=i) for i in chunk])
    return rows


def test_3_1_limit_above_200_is_clamped(api: Twenty) -> None:
    seed_companies(api, 230)
    page = api.find("companies", limit=1000).json()
    assert len(page["data"]["companies"]) == 200
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 230
    assert len(api.find("companies", limit=7).json()["data"]["companies"]) == 7
    assert api.find("companies", limit="many").status_code == 400


def test_3_2_cursor_paging_visits_every_row_once(api: Twenty) -> None:
    created = seed_companies(api, 130)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 60}
    while True:
        page = api.find("companies", **params).json()
        seen += [r["id"] for r in page["data"]["companies"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        params["starting_after"] = page["pageInfo"]["endCursor"]
    assert seen == [r["id"] for r in created]
    assert api.find("companies", limit=60, starting_after="bogus").status_code == 400


def test_3_3_find_many_answers_data_page_info_and_total_without_deleted_rows(
    api: Twenty,
) -> None:
    acme, _globex, gone = api.created(
        "companies", [company("Acme", "https://acme.com"), company("Globex"), company("Gone")]
    )
    api.call("DELETE", f"/rest/companies/{gone['id']}")
    body = api.find("companies", limit=2).json()
    assert set(body) == {"data", "pageInfo", "totalCount"}
    assert [r["name"] for r in body["data"]["companies"]] == ["Acme", "Globex"]
    assert body["data"]["companies"][0]["domainName"]["primaryLinkUrl"] == "https://acme.com"
    assert body["totalCount"] == 2
    info = body["pageInfo"]
    assert info["hasNextPage"] is False and info["startCursor"] and info["endCursor"]
    # Upstream shows soft-deleted rows when the filter asks about deletedAt.
    deleted = api.rows("companies", "deletedAt[is]:NOT_NULL")
    assert [r["id"] for r in deleted] == [gone["id"]]
    assert (
        api.call("GET", f"/rest/companies/{acme['id']}").json()["data"]["company"]["name"] == "Acme"
    )


def test_3_4_filters_support_eq_in_sub_fields_and_commas(api: Twenty) -> None:
    api.created(
        "companies",
        [
            company("Acme", "https://a.com", employees=120),
            company("Foo, Inc.", "https://b.com", employees=5),
            company("Acme", "https://c.com"),
        ],
    )

    def names(filter: str) -> list[str]:
        return [r["domainName"]["primaryLinkUrl"] for r in api.rows("companies", filter)]

    assert names('name[eq]:"Acme"') == ["https://a.com", "https://c.com"]
    assert names('domainName.primaryLinkUrl[in]:["https://a.com","https://b.com"]') == [
        "https://a.com",
        "https://b.com",
    ]
    assert names('name[eq]:"Acme",employees[eq]:120') == ["https://a.com"]
    assert names('name[eq]:"Foo, Inc."') == ["https://b.com"]
    assert names("employees[gte]:100") == ["https://a.com"]
    assert names("employees[is]:NULL") == ["https://c.com"]
    assert names('or(employees[lt]:10,domainName.primaryLinkUrl[eq]:"https://c.com")') == [
        "https://b.com",
        "https://c.com",
    ]
    for bad, expected in (
        ('nme[eq]:"Acme"', 'doesn\'t have any "nme" field'),
        ('domainName[eq]:"https://a.com"', "name a sub-field of domainName"),
        ('name[equals]:"Acme"', 'unknown comparator "equals"'),
        ('name[eq]:"Acme', "unterminated string"),
    ):
        response = api.find("companies", limit=10, filter=bad)
        assert response.status_code == 400, bad
        assert expected in message(response)


# §4 Update one -------------------------------------------------------------------------------


def test_4_1_patch_merges_the_given_fields_and_validates_them(api: Twenty) -> None:
    [acme] = api.created("companies", [company("Acme")])
    [ann, bob] = api.created(
        "people",
        [
            person("Ann", "ann@example.com", jobTitle="Engineer", city="Paris"),
            person("Bob", "bob@example.com"),
        ],
    )
    time.sleep(0.01)
    path = f"/rest/people/{ann['id']}"
    patched = api.call("PATCH", path, json={"jobTitle": "CTO", "name": {"firstName": "Annie"}})
    row = patched.json()["data"]["updatePerson"]
    assert row["jobTitle"] == "CTO" and row["city"] == "Paris"  # untouched fields kept
    assert row["name"] == {"firstName": "Annie", "lastName": ""}  # a composite is replaced whole
    assert row["createdAt"] == ann["createdAt"] and row["updatedAt"] > ann["updatedAt"]

    for bad in (
        {"foo": 1},
        {"companyId": uid("ghost")},
        {"emails": {"primaryEmail": "BOB@example.com"}},  # bob's key
        {"id": bob["id"]},
    ):
        assert api.call("PATCH", path, json=bad).status_code == 400, bad
    linked = api.call("PATCH", path, json={"companyId": acme["id"]}).json()["data"]["updatePerson"]
    assert linked["companyId"] == acme["id"] and linked["jobTitle"] == "CTO"


def test_4_2_patch_answers_the_full_record_and_404_for_an_unknown_id(api: Twenty) -> None:
    [deal] = api.created("opportunities", [{"name": "Deal", "amount": {"amountMicros": 1000000}}])
    response = api.call("PATCH", f"/rest/opportunities/{deal['id']}", json={"stage": "MEETING"})
    assert response.status_code == 200
    row = response.json()["data"]["updateOpportunity"]
    assert row["stage"] == "MEETING" and row["name"] == "Deal"
    assert set(row) == set(deal)
    assert api.call("PATCH", f"/rest/opportunities/{uid('none')}", json={}).status_code == 404
    assert api.call("PATCH", "/rest/opportunities/not-a-uuid", json={}).status_code == 400


# §5 Delete one -------------------------------------------------------------------------------


def test_5_1_delete_is_soft_and_an_upsert_match_revives_the_row(
    control: SandboxClient, api: Twenty
) -> None:
    [ann] = api.created("people", [person("Ann", "ann@example.com")])
    assert api.call("DELETE", f"/rest/people/{ann['id']}").status_code == 200
    [stored] = control.records()["people"]
    assert stored["id"] == ann["id"] and stored["deletedAt"] is not None
    assert api.call("GET", f"/rest/people/{ann['id']}").status_code == 404
    assert api.rows("people") == []
    # Soft-deleted rows keep their keys: a plain create collides, an upsert revives.
    assert api.batch("people", [person("Ann", "ann@example.com")]).status_code == 400
    [back] = api.created("people", [person("Ann", "ANN@example.com")], upsert=True)
    assert back["id"] == ann["id"] and back["deletedAt"] is None
    assert [r["id"] for r in api.rows("people")] == [ann["id"]]


def test_5_2_delete_answers_the_deleted_id(api: Twenty) -> None:
    [acme] = api.created("companies", [company("Acme")])
    response = api.call("DELETE", f"/rest/companies/{acme['id']}")
    assert response.json() == {"data": {"deleteCompany": {"id": acme["id"]}}}
    assert api.call("DELETE", f"/rest/companies/{acme['id']}").status_code == 404


# §6 Metadata ---------------------------------------------------------------------------------


def test_6_1_metadata_lists_objects_with_their_fields(api: Twenty) -> None:
    objects = api.metadata()
    assert {"company", "person", "opportunity"} <= set(objects)
    assert objects["person"]["namePlural"] == "people"
    for obj in objects.values():
        for f in obj["fields"]:
            assert {
                "name",
                "type",
                "isNullable",
                "isUnique",
                "isCustom",
                "isActive",
                "isSystem",
                "options",
                "settings",
            } <= set(f)
    domain = field_of(objects["company"], "domainName")
    assert domain["type"] == "LINKS" and domain["isUnique"] is True
    assert field_of(objects["person"], "emails")["isUnique"] is True
    assert field_of(objects["company"], "name")["isUnique"] is False


def test_6_2_custom_fields_and_objects_are_written_like_standard_ones(
    control: SandboxClient, api: Twenty
) -> None:
    created = control.post(
        "metadata/fields", {"object": "company", "name": "okkiId", "type": "TEXT", "isUnique": True}
    )
    assert created["isCustom"] is True and created["isUnique"] is True
    okki_id = field_of(api.metadata()["company"], "okkiId")
    assert okki_id["type"] == "TEXT" and okki_id["isCustom"] is True

    # A custom unique field takes part in upsert matching and uniqueness checks.
    [acme] = api.created("companies", [company("Acme", okkiId="OK-1")])
    [again] = api.created("companies", [company("Acme SA", okkiId="OK-1")], upsert=True)
    assert again["id"] == acme["id"] and again["okkiId"] == "OK-1"
    assert api.batch("companies", [company("Copy", okkiId="OK-1")]).status_code == 400
    assert api.rows("companies", 'okkiId[eq]:"OK-1"')[0]["name"] == "Acme SA"

    control.post(
        "metadata/objects",
        {
            "nameSingular": "deal",
            "namePlural": "deals",
            "fields": [
                {"name": "value", "type": "CURRENCY"},
                {"name": "kind", "type": "SELECT", "options": ["NEW", "RENEWAL"]},
                {"name": "company", "type": "RELATION", "target": "company"},
            ],
        },
    )
    deal = api.metadata()["deal"]
    assert deal["isCustom"] is True and deal["namePlural"] == "deals"
    assert field_of(deal, "company")["settings"]["joinColumnName"] == "companyId"
    assert field_of(api.metadata()["company"], "deals")["settings"]["relationType"] == "ONE_TO_MANY"
    [row] = api.created(
        "deals", [{"name": "Big", "kind": "RENEWAL", "companyId": acme["id"]}], upsert=True
    )
    assert row["kind"] == "RENEWAL" and row["value"] == {"amountMicros": None, "currencyCode": ""}
    assert api.batch("deals", [{"kind": "LOST"}]).status_code == 400
    assert api.batch("deals", [{"companyId": uid("ghost")}]).status_code == 400
    assert control.records()["deals"] == [row]
    assert control.stats()["deals"] == {"created": 1, "updated": 0, "deleted": 0}


def test_6_3_metadata_answers_like_the_contract_example(api: Twenty) -> None:
    body = api.call("GET", "/rest/metadata/objects").json()
    assert body["pageInfo"]["hasNextPage"] is False
    assert body["totalCount"] == len(body["data"]["objects"])
    opportunity = next(o for o in body["data"]["objects"] if o["nameSingular"] == "opportunity")
    assert opportunity["isCustom"] is False and opportunity["isActive"] is True
    stage = field_of(opportunity, "stage")
    assert stage["type"] == "SELECT" and stage["isNullable"] is False
    assert [o["value"] for o in stage["options"]] == [
        "NEW",
        "SCREENING",
        "MEETING",
        "PROPOSAL",
        "CUSTOMER",
    ]
    assert stage["defaultValue"] == "'NEW'"  # upstream quotes string defaults


def test_6_4_metadata_marks_what_clients_skip(api: Twenty) -> None:
    objects = api.metadata()
    assert objects["workspaceMember"]["isSystem"] is True
    company_meta = objects["company"]
    assert field_of(company_meta, "addressOld")["isActive"] is False
    vector = field_of(company_meta, "searchVector")
    assert vector["type"] == "TS_VECTOR" and vector["isSystem"] is True
    assert field_of(company_meta, "id")["isSystem"] is True
    assert field_of(company_meta, "people")["settings"] == {"relationType": "ONE_TO_MANY"}
    owner = field_of(company_meta, "accountOwner")["settings"]
    assert owner["relationType"] == "MANY_TO_ONE" and owner["joinColumnName"] == "accountOwnerId"
    # What clients skip cannot be written either.
    for bad in ({"addressOld": "x"}, {"searchVector": "x"}, {"opportunities": []}):
        assert api.batch("companies", [bad]).status_code == 400


# §7 Standard shapes --------------------------------------------------------------------------


def test_7_1_company_has_the_standard_fields(api: Twenty) -> None:
    types = {f["name"]: f["type"] for f in api.metadata()["company"]["fields"]}
    assert {
        "name": "TEXT",
        "domainName": "LINKS",
        "address": "ADDRESS",
        "employees": "NUMBER",
        "linkedinLink": "LINKS",
        "xLink": "LINKS",
        "annualRecurringRevenue": "CURRENCY",
        "idealCustomerProfile": "BOOLEAN",
    }.items() <= types.items()
    full = {
        "name": "Acme",
        "domainName": {
            "primaryLinkUrl": "https://acme.com",
            "primaryLinkLabel": "Site",
            "secondaryLinks": [{"url": "https://acme.fr", "label": "FR"}],
        },
        "address": {
            "addressStreet1": "1 rue de la Paix",
            "addressStreet2": "",
            "addressCity": "Paris",
            "addressState": "IDF",
            "addressPostcode": "75002",
            "addressCountry": "France",
            "addressLat": 48.87,
            "addressLng": 2.33,
        },
        "employees": 120,
        "linkedinLink": {"primaryLinkUrl": "https://linkedin.com/company/acme"},
        "xLink": {"primaryLinkUrl": "https://x.com/acme"},
        "annualRecurringRevenue": {"amountMicros": 2_500_000_000_000, "currencyCode": "EUR"},
        "idealCustomerProfile": True,
    }
    [row] = api.created("companies", [full])
    assert {k: row[k] for k in full if k not in ("linkedinLink", "xLink")} == {
        k: v for k, v in full.items() if k not in ("linkedinLink", "xLink")
    }
    assert row["xLink"]["primaryLinkUrl"] == "https://x.com/acme"


def test_7_2_person_has_the_standard_fields(api: Twenty) -> None:
    [acme] = api.created("companies", [company("Acme")])
    full = {
        "name": {"firstName": "Ann", "lastName": "Lee"},
        "emails": {"primaryEmail": "ann@acme.com", "additionalEmails": ["ann@home.net"]},
        "phones": {
            "primaryPhoneNumber": "612345678",
            "primaryPhoneCountryCode": "FR",
            "primaryPhoneCallingCode": "+33",
            "additionalPhones": [
                {"number": "712345678", "countryCode": "FR", "callingCode": "+33"}
            ],
        },
        "jobTitle": "CTO",
        "city": "Lyon",
        "companyId": acme["id"],
    }
    [row] = api.created("people", [full])
    assert {k: row[k] for k in full} == full
    types = {f["name"]: f["type"] for f in api.metadata()["person"]["fields"]}
    assert (types["name"], types["emails"], types["phones"]) == ("FULL_NAME", "EMAILS", "PHONES")


def test_7_3_opportunity_has_the_standard_fields_and_accepts_a_client_id(api: Twenty) -> None:
    [acme] = api.created("companies", [company("Acme")])
    [ann] = api.created("people", [person("Ann", "ann@acme.com")])
    full = {
        "id": uid("deal-1"),
        "name": "Big deal",
        "amount": {"amountMicros": 1_500_000_000, "currencyCode": "USD"},
        "closeDate": "2025-06-30T00:00:00.000Z",
        "stage": "PROPOSAL",
        "companyId": acme["id"],
        "pointOfContactId": ann["id"],
    }
    [row] = api.created("opportunities", [full])
    assert {k: row[k] for k in full} == full
    stage = field_of(api.metadata()["opportunity"], "stage")
    assert [o["value"] for o in stage["options"]] == [
        "NEW",
        "SCREENING",
        "MEETING",
        "PROPOSAL",
        "CUSTOMER",
    ]


def test_7_4_value_formats_defaults_and_read_only_fields(api: Twenty) -> None:
    [deal] = api.created(
        "opportunities", [{"name": "Deal", "closeDate": "2025-06-30T12:00:00+02:00"}]
    )
    assert deal["closeDate"] == "2025-06-30T10:00:00.000Z"
    assert deal["stage"] == "NEW"  # non-null with a default
    [acme] = api.created("companies", [company("Acme")])
    assert acme["idealCustomerProfile"] is False
    [nulls] = api.created("opportunities", [{"name": "Other", "stage": None}])
    assert nulls["stage"] == "NEW"

    for plural, bad, expected in (
        ("opportunities", {"amount": {"amountMicros": 1.5}}, "expected an integer"),
        ("opportunities", {"amount": {"currencyCode": "usd"}}, "ISO 4217"),
        ("opportunities", {"closeDate": "next friday"}, "ISO 8601"),
        ("people", {"phones": {"primaryPhoneCountryCode": "France"}}, "alpha-2"),
        ("people", {"phones": {"primaryPhoneCallingCode": "33"}}, "calling code"),
        ("people", {"emails": {"additionalEmails": "a@b.c"}}, "list of strings"),
        ("companies", {"createdAt": "2020-01-01T00:00:00Z"}, "read-only"),
        ("companies", {"createdBy": {"source": "IMPORT"}}, "read-only"),
        ("companies", {"id": "123"}, "expected a UUID"),
    ):
        response = api.batch(plural, [bad])
        assert response.status_code == 400, bad
        assert expected in message(response)


# §8 Rate limits ------------------------------------------------------------------------------


def test_8_1_the_101st_call_in_a_minute_is_throttled_whatever_its_record_count(
    control: SandboxClient,
) -> None:
    # time_scale 0.01 stretches the minute to 6000 s: no token comes back during the test.
    control.knobs(
        time_scale=0.01, extra={"api_keys": [DEMO_KEY, "key-a"], "limit_per_second": 1000}
    )
    client = Twenty(control.base_url, "key-a")
    big = [company(f"Co {i}") for i in range(60)]
    assert client.batch("companies", big).status_code == 201  # 60 records, one token
    for _ in range(99):
        assert client.find("companies", limit=1).status_code == 200
    throttled = client.find("companies", limit=1)
    assert throttled.status_code == 429
    assert float(throttled.headers["Retry-After"]) > 0
    # The buckets are per API key.
    assert Twenty(control.base_url).find("companies", limit=1).status_code == 200


def test_8_1_the_per_second_bucket_also_limits(control: SandboxClient) -> None:
    control.knobs(
        time_scale=0.01,
        extra={"api_keys": [DEMO_KEY, "key-b"], "limit_per_minute": 10_000, "limit_per_second": 5},
    )
    client = Twenty(control.base_url, "key-b")
    assert [client.find("companies", limit=1).status_code for _ in range(6)] == [200] * 5 + [429]
    throttled = client.find("companies", limit=1)
    assert "5 requests per 1s" in message(throttled)


def test_8_knob_start_spent_starts_a_keys_buckets_empty(control: SandboxClient) -> None:
    """As after another job on the same key: the first call waits for a refilled token."""
    control.knobs(time_scale=0.01, extra={"api_keys": [DEMO_KEY, "key-s"], "start_spent": True})
    assert Twenty(control.base_url, "key-s").find("companies", limit=1).status_code == 429


def test_8_knob_a_lower_plan_limit_is_announced_only_in_headers(control: SandboxClient) -> None:
    control.knobs(
        time_scale=0.01,
        extra={"api_keys": [DEMO_KEY, "key-p"], "limit_per_minute": 50, "announce_limits": True},
    )
    client = Twenty(control.base_url, "key-p")
    answers = [client.find("companies", limit=1) for _ in range(51)]
    assert [a.status_code for a in answers] == [200] * 50 + [429]
    assert answers[0].headers["X-RateLimit-Limit"] == "50"  # on a success too
    assert answers[0].headers["X-RateLimit-Remaining"] == "49"


def test_8_2_throttled_calls_get_retry_after_rate_limit_headers_and_body(
    control: SandboxClient,
) -> None:
    # Scaled 60×, 5 calls per minute become 5 per second, and Retry-After fractional seconds.
    control.knobs(time_scale=60, extra={"limit_per_minute": 5})
    client = Twenty(control.base_url)
    throttled = exhaust(client)
    retry_after = float(throttled.headers["Retry-After"])
    assert 0 < retry_after <= 0.2
    assert throttled.headers["X-RateLimit-Limit"] == "5"
    assert throttled.headers["X-RateLimit-Remaining"] == "0"
    assert time.time() - 1 < float(throttled.headers["X-RateLimit-Reset"]) < time.time() + 2
    assert throttled.json() == {
        "statusCode": 429,
        "error": "RATE_LIMITED",
        "messages": ["Rate limit exceeded for apiKey: 5 requests per 60s."],
        "retryAfterSeconds": retry_after,
    }
    time.sleep(retry_after)
    assert client.find("companies", limit=1).status_code == 200

    control.knobs(time_scale=1)  # unscaled, the waits are whole seconds
    unscaled = exhaust(client)
    assert unscaled.headers["Retry-After"].isdigit()
    assert isinstance(unscaled.json()["retryAfterSeconds"], int)


def test_8_3_legacy_style_429_has_no_headers(control: SandboxClient) -> None:
    control.knobs(time_scale=0.01, extra={"rate_limit_style": "legacy", "limit_per_minute": 3})
    throttled = exhaust(Twenty(control.base_url), calls=4)
    assert throttled.json()["messages"] == ["Limit reached (3 tokens per 60000 ms)"]
    assert "Retry-After" not in throttled.headers
    assert not any(h.lower().startswith("x-ratelimit") for h in throttled.headers)


def test_8_4_limits_are_settings(control: SandboxClient) -> None:
    control.knobs(time_scale=0.01, extra={"limit_per_minute": 50, "announce_limits": True})
    client = Twenty(control.base_url)
    first = client.find("companies", limit=1)
    assert first.headers["X-RateLimit-Limit"] == "50"
    assert first.headers["X-RateLimit-Remaining"] == "49"
    assert client.find("companies", limit=1).headers["X-RateLimit-Remaining"] == "48"
    for _ in range(48):
        client.find("companies", limit=1)
    throttled = client.find("companies", limit=1)
    assert throttled.status_code == 429
    assert "50 requests per 60s" in message(throttled)

    control.knobs(extra={"announce_limits": False, "limit_per_minute": 100})
    assert "X-RateLimit-Limit" not in client.find("companies", limit=1).headers
    assert control.stats()["throttled"] == 1


def test_8_4_injected_429_bursts_look_like_real_throttling(control: SandboxClient) -> None:
    control.knobs(time_scale=10, burst_429_rate=1.0, burst_429_length=2)
    response = Twenty(control.base_url).find("companies", limit=1)
    assert response.status_code == 429
    assert response.json()["error"] == "RATE_LIMITED"
    assert float(response.headers["Retry-After"]) == pytest.approx(0.1)
    control.knobs(burst_429_rate=0.0, extra={"rate_limit_style": "legacy"})
    legacy = Twenty(control.base_url).find("companies", limit=1)  # the burst's second call
    assert legacy.status_code == 429 and "Retry-After" not in legacy.headers
    assert control.stats()["throttled"] == 2
    assert [r["fault"] for r in control.requests()] == ["429-burst", "429-burst"]


# §9 Errors and retries -----------------------------------------------------------------------


def test_9_injected_server_errors_answer_503_and_write_nothing(
    control: SandboxClient, api: Twenty
) -> None:
    control.knobs(error_rate=1.0)
    response = api.batch("companies", [company("Acme")])
    assert response.status_code == 503
    assert response.json()["error"] == "ServiceUnavailableException"
    control.knobs(error_rate=0.0)
    assert control.records()["companies"] == []


# Knobs and control routes --------------------------------------------------------------------


def test_knobs_show_the_twenty_defaults(control: SandboxClient) -> None:
    assert control.credentials == {"api_key": DEMO_KEY}
    assert control.knobs()["extra"] == {
        "limit_per_minute": 100,
        "limit_per_second": 100,
        "rate_limit_style": "headers",
        "announce_limits": False,
        "start_spent": False,
        "metadata_writes": True,
        "junction_style": "plain",
        "api_keys": [DEMO_KEY],
    }


def test_records_stats_and_request_log(control: SandboxClient, api: Twenty) -> None:
    acme, globex = api.created("companies", [company("Acme"), company("Globex")])
    api.call("DELETE", f"/rest/companies/{globex['id']}")
    api.batch("companies", [{"foo": 1}, {}, {}])
    records = control.records()
    objects = ["companies", "people", "opportunities", "notes", "tasks"]
    objects += ["noteTargets", "taskTargets"]
    assert set(records) == set(objects)
    assert [r["id"] for r in records["companies"]] == [acme["id"], globex["id"]]
    assert records["companies"][1]["deletedAt"] is not None
    untouched = {"created": 0, "updated": 0, "deleted": 0}
    assert control.stats() == {
        "companies": {"created": 2, "updated": 0, "deleted": 1},
        **{plural: untouched for plural in objects[1:]},
        "rejected_batches": 1,
        "throttled": 0,
    }
    log = control.requests()
    assert [(r["method"], r["status"], r["batch_size"]) for r in log] == [
        ("POST", 201, 2),
        ("DELETE", 200, None),
        ("POST", 400, 3),
    ]


def test_reset_restores_standard_metadata_and_repeats_seeded_ids(
    control: SandboxClient, api: Twenty
) -> None:
    control.post("metadata/fields", {"object": "person", "name": "wechat", "type": "TEXT"})
    first = [r["id"] for r in api.created("companies", [company("A"), company("B")])]
    control.reset()
    assert "wechat" not in {f["name"] for f in api.metadata()["person"]["fields"]}
    assert control.records()["companies"] == []
    assert [r["id"] for r in api.created("companies", [company("A"), company("B")])] == first


def test_custom_metadata_is_checked(control: SandboxClient, api: Twenty) -> None:
    [acme] = api.created("companies", [company("Acme")])
    bad_bodies = [
        ("fields", {"object": "nothing", "name": "x", "type": "TEXT"}),
        ("fields", {"object": "company", "name": "Bad Name", "type": "TEXT"}),
        ("fields", {"object": "company", "name": "x", "type": "BLOB"}),
        ("fields", {"object": "company", "name": "employees", "type": "NUMBER"}),
        ("fields", {"object": "company", "name": "vip", "type": "BOOLEAN", "isUnique": True}),
        ("fields", {"object": "company", "name": "tier", "type": "SELECT"}),
        ("fields", {"object": "company", "name": "x", "type": "TEXT", "colour": "red"}),
        ("fields", {"object": "company", "name": "n", "type": "NUMBER", "defaultValue": "1"}),
        ("objects", {"nameSingular": "company", "namePlural": "firms"}),
        ("objects", {"nameSingular": "batchItem", "namePlural": "batch"}),
    ]
    for route, body in bad_bodies:
        with pytest.raises(requests.HTTPError) as raised:
            control.post(f"metadata/{route}", body)
        assert raised.value.response.status_code == 400, body
        assert raised.value.response.json()["error"]

    # A required custom field without a default: creates must give it; old rows hold null.
    control.post(
        "metadata/fields",
        {
            "object": "company",
            "name": "tier",
            "type": "SELECT",
            "options": ["A", "B"],
            "isNullable": False,
        },
    )
    assert (
        api.call("GET", f"/rest/companies/{acme['id']}").json()["data"]["company"]["tier"] is None
    )
    missing = api.batch("companies", [company("New")])
    assert missing.status_code == 400
    assert "company.tier (SELECT): a value is required" in message(missing)
    assert api.created("companies", [company("New", tier="B")])[0]["tier"] == "B"
