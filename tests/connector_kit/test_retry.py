"""The one retry loop (`connector_kit.retry`) on its own: what each outcome makes it do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import requests

from connector_kit.retry import (
    ApiError,
    Outcome,
    RejectedError,
    RetryCounts,
    RetryLater,
    RetryPolicy,
    call_with_retries,
)
from connector_kit.transport import Answer

QUICK = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002)


def answer(status: int) -> Answer:
    return Answer(status, "", {}, b"{}", "https://api.example/x", dt.timedelta(0))


def by_status(response: Answer) -> Outcome:
    status = response.status_code
    if status == 200:
        return Outcome("ok")
    if status == 401:
        return Outcome("renew", status, "token refused")
    if status == 429:
        return Outcome("retry", status, "slow down", retry_after=0.001, throttled=True)
    if status == 400:
        return Outcome("reject", status, "bad field")
    if status >= 500:
        return Outcome("retry", status, "server error")
    return Outcome("fatal", status, "no")


def script(*steps: int | Exception) -> Callable[[], Answer]:
    """An attempt that answers (or raises) each step in turn."""
    remaining: Iterator[int | Exception] = iter(steps)

    def attempt() -> Answer:
        step = next(remaining)
        if isinstance(step, Exception):
            raise step
        return answer(step)

    return attempt


def test_failures_worth_another_try_are_retried_until_an_answer_is_ok() -> None:
    counts = RetryCounts()
    attempt = script(
        503, requests.exceptions.ContentDecodingError("cut gzip"), requests.ConnectionError(), 200
    )
    assert call_with_retries(attempt, by_status, QUICK, "GET /x", counts=counts).status_code == 200
    assert (counts.calls, counts.retries) == (4, 3)


def test_attempts_are_bounded_and_the_error_names_the_endpoint() -> None:
    with pytest.raises(ApiError, match=r"GET /x: 503 still failing after 4 attempts"):
        call_with_retries(script(503, 503, 503, 503, 200), by_status, QUICK, "GET /x")


def test_a_refused_token_is_renewed_once_as_one_attempt_of_the_same_call() -> None:
    renewals: list[int] = []
    attempt = script(401, 200)
    result = call_with_retries(
        attempt, by_status, QUICK, "GET /x", renew=lambda: renewals.append(1)
    )
    assert result.status_code == 200 and renewals == [1]


def test_a_fresh_token_refused_too_stops_with_the_plugins_own_error() -> None:
    refused = PermissionError("refused a freshly issued token too")

    def classify(response: Answer) -> Outcome:
        return Outcome("renew", 401, "token refused", error=refused)

    renewals: list[int] = []
    with pytest.raises(PermissionError) as raised:
        call_with_retries(
            script(401, 401, 200), classify, QUICK, "GET /x", renew=lambda: renewals.append(1)
        )
    assert raised.value is refused and renewals == [1]


def test_a_failed_token_request_is_an_attempt_of_the_call_not_a_loop_of_its_own() -> None:
    token_throttled = RetryLater(Outcome("retry", 429, "token", retry_after=0.001, throttled=True))
    paused: list[float] = []
    with pytest.raises(ApiError, match="after 4 attempts"):
        call_with_retries(
            script(*[token_throttled] * 10), by_status, QUICK, "GET /x", pause=paused.append
        )
    assert len(paused) == 3  # every caller held back after each throttled answer


def test_rejected_and_fatal_answers_are_not_retried() -> None:
    with pytest.raises(RejectedError, match="bad field"):
        call_with_retries(script(400, 200), by_status, QUICK, "POST /x")
    with pytest.raises(ApiError, match="404 no"):
        call_with_retries(script(404, 200), by_status, QUICK, "POST /x")


def test_a_certificate_error_is_not_retried_and_secrets_never_show() -> None:
    failure = requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED for key s3cr3t")
    with pytest.raises(ApiError, match=r"certificate of https://api\.example") as raised:
        call_with_retries(
            script(failure, 200),
            by_status,
            QUICK,
            "GET /x",
            server="https://api.example",
            secrets=["s3cr3t"],
        )
    assert "s3cr3t" not in str(raised.value)
