"""`crm-sandbox serve` beyond loopback (issue 18, item 9): a loud warning, and the control
routes (`/_sandbox/…`: every record, the accepted keys, reset) need the control token; the
emulated APIs answer as before. On loopback nothing changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from crm_sandbox.control import RunningSandbox, start_sandbox

CONTROL_TOKEN_HEADER = "X-Sandbox-Token"  # documented in the README

API_CALL = ("/rest/companies", {"Authorization": "Bearer twenty-demo-key"})


@pytest.fixture(scope="module")
def exposed() -> Iterator[RunningSandbox]:
    running = start_sandbox("--host", "0.0.0.0", "--companies", "1")
    yield running
    running.stop()


def test_serving_beyond_loopback_warns_loudly_and_prints_the_control_token(
    exposed: RunningSandbox,
) -> None:
    assert "WARNING: crm-sandbox is listening on 0.0.0.0, not on loopback only" in exposed.output
    token = exposed.summary["twenty"]["control_token"]
    assert len(token) >= 24
    assert f"{CONTROL_TOKEN_HEADER}: {token}" in exposed.output


@pytest.mark.parametrize("given", [None, "wrong-token"])
def test_beyond_loopback_the_control_routes_refuse_calls_without_the_token(
    exposed: RunningSandbox, given: str | None
) -> None:
    headers = {CONTROL_TOKEN_HEADER: given} if given else {}
    for api in (exposed.okki, exposed.twenty, exposed.jiandaoyun):
        for method, route in (("GET", "records"), ("GET", "knobs"), ("POST", "reset")):
            answer = requests.request(
                method, f"{api.base_url}/_sandbox/{route}", headers=headers, timeout=10
            )
            assert answer.status_code == 401, (api.base_url, route)
            assert CONTROL_TOKEN_HEADER in answer.json()["error"]


def test_beyond_loopback_the_token_opens_the_control_routes_and_the_api_needs_none(
    exposed: RunningSandbox,
) -> None:
    assert "companies" in exposed.twenty.records()  # the client sends the token it was given
    path, headers = API_CALL
    assert requests.get(f"{exposed.twenty.base_url}{path}", headers=headers, timeout=10).ok


def test_on_loopback_the_control_routes_need_no_token() -> None:
    running = start_sandbox("--companies", "1")
    try:
        assert "WARNING" not in running.output
        assert "control_token" not in running.summary["twenty"]
        answer = requests.get(f"{running.twenty.base_url}/_sandbox/records", timeout=10)
        assert answer.status_code == 200
    finally:
        running.stop()
