"""Gates (`/_sandbox/gates`, every emulator): calls stopped before or after they are served until
a test lets them go, so a test can make an interleaving exact instead of likely."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from crm_sandbox.control import RunningSandbox, SandboxClient

KEY = "jdy-demo-key"


@pytest.fixture
def jdy(sandbox: RunningSandbox) -> Iterator[SandboxClient]:
    control = sandbox.jiandaoyun
    control.reset()
    yield control
    control.reset()


def create(control: SandboxClient, name: str, transaction: str | None = None) -> requests.Response:
    body = {
        "app_id": "demo_app",
        "entry_id": "demo_customers",
        "data_list": [{"_widget_1704067200001": {"value": name}}],
        **({"transaction_id": transaction} if transaction else {}),
    }
    return requests.post(
        f"{control.base_url}/api/v5/app/entry/data/batch_create",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )


def names(control: SandboxClient) -> list[str]:
    rows = control.records()["forms"]["demo_app/demo_customers"]
    return [row["_widget_1704067200001"] for row in rows]


def test_a_gate_holds_the_matching_call_before_it_is_served_until_opened(
    jdy: SandboxClient,
) -> None:
    gate = jdy.gate("batch_create", skip=1)
    with ThreadPoolExecutor(2) as pool:
        assert create(jdy, "first").status_code == 200  # skipped: let through
        held = pool.submit(create, jdy, "second")
        jdy.wait_at_gate(gate)
        assert create(jdy, "third").status_code == 200  # count 1: only the second waits
        assert names(jdy) == ["first", "third"]  # the held call changed nothing yet
        jdy.open_gate(gate)
        assert held.result().status_code == 200
    assert names(jdy) == ["first", "third", "second"]
    after = jdy.gates()[gate]
    assert (after["matched"], after["waiting"], after["open"]) == (3, 0, True)


def test_an_after_gate_serves_the_call_and_holds_its_answer(jdy: SandboxClient) -> None:
    gate = jdy.gate("batch_create", stage="after")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(create, jdy, "applied")
        jdy.wait_at_gate(gate)
        assert names(jdy) == ["applied"]  # written, not answered
        assert not held.done()
        jdy.open_gate(gate)
        assert held.result().json()["success_count"] == 1


def test_a_dropping_gate_applies_the_call_and_closes_the_connection_unanswered(
    jdy: SandboxClient,
) -> None:
    jdy.gate("batch_create", stage="after", drop=True)
    transaction = "3f0c8a1e-6d1b-4b7e-9a55-000000000001"
    with pytest.raises(requests.ConnectionError):
        create(jdy, "applied", transaction)
    again = create(jdy, "applied", transaction).json()  # the client's retry
    assert (again["success_count"], again["success_ids"]) == (1, [])
    assert names(jdy) == ["applied"]
    [dropped, _] = jdy.requests()
    assert dropped["fault"] == "dropped"


def test_reset_opens_and_removes_every_gate(jdy: SandboxClient) -> None:
    gate = jdy.gate("batch_create")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(create, jdy, "held")
        jdy.wait_at_gate(gate)
        jdy.reset()
        assert held.result().status_code == 200
    assert jdy.gates() == {}


def test_a_wrong_gate_is_refused_with_its_usage(jdy: SandboxClient) -> None:
    with pytest.raises(requests.HTTPError) as refused:
        jdy.gate("batch_create", stage="before", drop=True)
    assert "drop goes with 'after'" in refused.value.response.json()["error"]
