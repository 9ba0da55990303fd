"""The token cache: one token per run, renewed before it expires or once when refused."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest

from connector_kit.pacing import RateLimiter
from connector_kit.retry import RetryLater, RetryPolicy, call_with_retries
from connector_kit.transport import Answer
from tap_okki import auth
from tap_okki.auth import Call, Credentials, OkkiAuthenticator
from tap_okki.client import classify
from tap_okki.errors import OkkiAuthError


class FakeTokenEndpoint:
    """Stands in for the transport: answers token requests, counting them."""

    def __init__(self, expires_in: float = 28_800, status: int = 200, body: Any = None) -> None:
        self.expires_in, self.status, self.body = expires_in, status, body
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def request(self, method: str, url: str, json_body: dict[str, Any]) -> Answer:
        with self.lock:
            self.calls.append(json_body)
            number = len(self.calls)
        time.sleep(0.01)  # long enough for concurrent callers to pile up
        body = self.body or {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "access_token": f"token-{number}",
        }
        return Answer(self.status, "", {}, _dumps(body), url, dt.timedelta(0))


def _dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def authenticator(endpoint: FakeTokenEndpoint) -> OkkiAuthenticator:
    return OkkiAuthenticator(
        "https://okki.example",
        Credentials("id", "the-secret", "company"),
        endpoint,  # type: ignore[arg-type]
        RateLimiter([(1000, 1.0)], headroom=1.0),
    )


def request_with(token: str) -> Call:
    return Call("https://okki.example/v1/company/list", {"Authorization": f"Bearer {token}"})


def test_the_token_is_fetched_once_with_a_json_client_credentials_body() -> None:
    endpoint = FakeTokenEndpoint()
    tokens = authenticator(endpoint)
    for _ in range(5):
        assert tokens.token() == "token-1"
    assert endpoint.calls == [
        {
            "grant_type": "client_credentials",
            "client_id": "id",
            "client_secret": "the-secret",
            "scope": "company",
        }
    ]


def test_the_token_is_renewed_shortly_before_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    endpoint = FakeTokenEndpoint(expires_in=28_800)
    tokens = authenticator(endpoint)
    assert tokens.token() == "token-1"
    clock[0] += 28_800 - 301  # more than 5 minutes left: still good
    assert tokens.token() == "token-1"
    clock[0] += 2  # less than 5 minutes left: renewed before OKKI would refuse it
    assert tokens.token() == "token-2"


def test_a_refused_token_is_replaced_once_however_many_threads_report_it() -> None:
    endpoint = FakeTokenEndpoint()
    tokens = authenticator(endpoint)
    stale = tokens.token()
    threads = [threading.Thread(target=tokens.renew, args=(request_with(stale),)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tokens.token() == "token-2"
    assert len(endpoint.calls) == 2
    tokens.renew(request_with(stale))  # a late report about the old token changes nothing
    assert len(endpoint.calls) == 2


def test_refused_credentials_are_fatal_and_name_the_settings_without_the_secret() -> None:
    endpoint = FakeTokenEndpoint(status=401, body={"error": "invalid_client"})
    with pytest.raises(OkkiAuthError) as raised:
        authenticator(endpoint).token()
    message = str(raised.value)
    assert "'client_id'/'client_secret'" in message and "invalid_client" in message
    assert "the-secret" not in message and "the-secret" not in repr(raised.value)
    assert len(endpoint.calls) == 1  # not retried
    assert "the-secret" not in repr(Credentials("id", "the-secret", "company"))


@pytest.mark.parametrize(
    ("status", "body", "throttled"),
    [(503, {"error": "busy"}, False), (429, {"error": "slow down"}, True), (200, "cut", False)],
)
def test_a_failed_token_answer_is_a_failed_attempt_of_the_call_that_needed_it(
    status: int, body: Any, throttled: bool
) -> None:
    """No retry loop of its own: the data call's loop retries it (`connector_kit.retry`)."""
    endpoint = FakeTokenEndpoint(status=status, body=body)
    if body == "cut":
        endpoint.request = lambda *a, **k: Answer(200, "", {}, b'{"access', "u", dt.timedelta(0))  # type: ignore[method-assign]
    with pytest.raises(RetryLater) as failed:
        authenticator(endpoint).token()
    assert failed.value.outcome.kind == "retry"
    assert failed.value.outcome.throttled is throttled
    assert len(endpoint.calls) <= 1


def test_a_refused_token_in_the_retry_loop_is_renewed_once_within_the_same_attempts() -> None:
    """401 → the token is dropped, the next attempt fetches a new one: one loop, bounded."""
    endpoint = FakeTokenEndpoint()
    tokens = authenticator(endpoint)
    sent: list[str] = []

    def attempt() -> Answer:
        call = request_with("")
        tokens.authenticate_request(call)
        sent.append(call.headers["Authorization"])
        status = 401 if len(sent) == 1 else 200
        return Answer(status, "", {}, b'{"code": 200}', call.url, dt.timedelta(0))

    def renew() -> None:
        tokens.renew(request_with(sent[-1].removeprefix("Bearer ")))

    policy = RetryPolicy(max_attempts=3, base_delay=0.0)
    answer = call_with_retries(attempt, classify, policy, "OKKI /v1/company/list", renew=renew)
    assert answer.status_code == 200
    assert sent == ["Bearer token-1", "Bearer token-2"]
    assert len(endpoint.calls) == 2
