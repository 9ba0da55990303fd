"""The one retry loop of every plugin: bounded attempts, backoff with jitter, `Retry-After`.

An API's own rules live in its plugin as a `classify(answer) -> Outcome` function: which
answers are fine, which are worth sending again (and after how long), which need fresh
credentials first, which reject the request's content and which must stop the run. The loop
here only applies the outcome, the same way for the tap and both targets.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import requests

from connector_kit.secrets import redact
from connector_kit.transport import Answer

logger = logging.getLogger(__name__)

# ok: done. retry: send again after a wait. renew: the credentials were refused (a token
# expired early or was revoked): renew them and send again at once, once per call.
# reject: the request's content was refused (the caller splits or dead-letters the batch).
# fatal: stop the run.
Kind = Literal["ok", "retry", "renew", "reject", "fatal"]

# Failures after which the same request may simply be sent again: no usable answer came, and
# every call we send is a read or idempotent (stable ids, upserts, Jiandaoyun transaction ids).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,  # a gzip answer cut short
)


@dataclass
class Outcome:
    kind: Kind
    code: str | int | None = None  # the API's own error code or status
    message: str = ""
    retry_after: float | None = None  # seconds the server asked us to wait
    throttled: bool = False  # a rate-limit answer: everybody pauses, not just this call
    error: Exception | None = None  # the plugin's own exception for a final outcome


class ApiError(RuntimeError):
    """The API answered with an error that stops the run (auth, missing object, …)."""

    def __init__(self, endpoint: str, code: Any, message: str) -> None:
        self.endpoint, self.code, self.message = endpoint, code, message
        super().__init__(f"{endpoint}: {code} {message}".strip())


class RejectedError(ApiError):
    """The API refused the request's content (e.g. HTTP 400): not retried as is."""


class RetryLater(Exception):
    """Raised inside an attempt, before any answer to classify (e.g. the token request was
    throttled): this attempt failed with `outcome`, which the loop handles like any other."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(f"{outcome.code} {outcome.message}".strip())


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # tries per call, the first one, renewals and token requests included
    base_delay: float = 1.0  # seconds before the first retry (before jitter)
    max_delay: float = 60.0  # no backoff wait is longer, whatever the attempt
    max_elapsed: float = 900.0  # give up on one call after this many seconds
    # The longest wait a server's Retry-After may impose (setting `max_retry_after_seconds`):
    # one that says "an hour" (or a day) must not stall the run silently.
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before try `attempt + 1`.

        The backoff doubles per attempt and is jittered into [delay/2, delay], so calls that
        failed together do not retry together. A `Retry-After` (capped at `max_retry_after`)
        is a floor, plus up to 20 % so that threads told the same moment spread out; a server
        that keeps refusing still gets ever longer waits from the backoff.
        """
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = backoff * random.uniform(0.5, 1.0)
        if retry_after is None:
            return wait
        return max(wait, min(retry_after, self.max_retry_after) * random.uniform(1.0, 1.2))


def is_certificate_error(exc: BaseException) -> bool:
    """A server certificate that failed verification (untrusted, expired, wrong host): no
    network glitch, unlike other `SSLError`s such as a connection cut during the handshake."""
    return isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)


def retry_after_seconds(response: Answer | requests.Response) -> float | None:
    """`Retry-After` as seconds (fractional values from the time-scaled sandbox accepted)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for APIs; fall back to our own backoff


@dataclass
class RetryCounts:
    """What a client's calls went through, for reports."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0


def call_with_retries(
    attempt: Callable[[], Answer],
    classify: Callable[[Answer], Outcome],
    policy: RetryPolicy,
    endpoint: str,
    *,
    server: str = "the server",
    secrets: Iterable[str] = (),
    pause: Callable[[float], None] | None = None,
    renew: Callable[[], None] | None = None,
    counts: RetryCounts | None = None,
    log: logging.Logger = logger,
) -> Answer:
    """Send with `attempt()` until `classify` calls its answer ok; return that answer.

    `attempt` sends the request once (pacing included); it may raise a `TRANSIENT_ERRORS`
    network failure or `RetryLater`. `pause(seconds)` holds back every caller sharing the
    budget after a throttled answer; `renew()` replaces refused credentials. Errors name
    `endpoint` (and `server`, the base URL, for a certificate error) and never carry a
    secret.
    """
    counts = counts or RetryCounts()
    started = time.monotonic()
    renewed = False
    tries = 0
    while True:
        tries += 1
        counts.calls += 1
        try:
            answer = attempt()
        except TRANSIENT_ERRORS as exc:
            if is_certificate_error(exc):  # sending again cannot fix it
                raise ApiError(
                    endpoint,
                    "SSLError",
                    f"the TLS certificate of {server} failed verification; check 'base_url' "
                    f"and the server's certificate. {redact(str(exc), secrets)}",
                ) from None
            outcome = Outcome("retry", code=type(exc).__name__, message="network error")
            failure = f"network error {type(exc).__name__}"  # no answer came
        except RetryLater as later:
            outcome = later.outcome
            failure = f"answered {outcome.code} {outcome.message}".strip()
        else:
            outcome = classify(answer)
            if outcome.kind == "ok":
                return answer
            failure = f"answered {outcome.code} {outcome.message}".strip()
        message = redact(outcome.message, secrets)
        kind = outcome.kind
        if kind == "renew" and (renewed or renew is None):
            kind = "fatal"  # fresh credentials were refused too
        if kind in ("reject", "fatal"):
            if outcome.error is not None:
                raise outcome.error
            raise (RejectedError if kind == "reject" else ApiError)(endpoint, outcome.code, message)
        elapsed = time.monotonic() - started
        if tries >= policy.max_attempts or elapsed >= policy.max_elapsed:
            raise ApiError(
                endpoint,
                outcome.code,
                f"still failing after {tries} attempts in {elapsed:.0f}s: {message}",
            )
        counts.retries += 1
        if kind == "renew":
            assert renew is not None
            renewed = True
            renew()
            continue
        delay = policy.delay(tries, outcome.retry_after)
        if outcome.retry_after is not None and outcome.retry_after > delay:
            log.warning(
                "%s asked to wait %gs before the next call; waiting %.1fs "
                "(max_retry_after_seconds)",
                endpoint,
                outcome.retry_after,
                delay,
            )
        if outcome.throttled:
            counts.throttled += 1
            if pause is not None:
                # The server's wait holds for every caller; this call's own (jittered, perhaps
                # longer) wait stays with it, so callers do not all come back at once.
                asked = outcome.retry_after
                pause(delay if asked is None else min(asked, policy.max_retry_after, delay))
        log.warning(
            "%s %s; retry %d/%d in %.1fs",
            endpoint,
            redact(failure, secrets),
            tries,
            policy.max_attempts - 1,
            delay,
        )
        time.sleep(delay)
