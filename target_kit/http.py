"""One HTTP client for a destination API: pacing, bounded retries, clear and secret-free errors.

The API-specific part is a `classify(response) -> Outcome` function: each target says which
answers are fine, which are worth retrying (and after how long), which reject the request's
content (the caller splits or dead-letters the batch) and which must stop the run.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from target_kit.pacing import RateLimiter
from target_kit.secrets import redact
from target_kit.transport import Answer, Transport

logger = logging.getLogger(__name__)

Kind = Literal["ok", "retry", "reject", "fatal"]

# Network failures after which the same request may simply be sent again: every write we send
# is idempotent (stable ids, upserts, Jiandaoyun transaction ids).
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass
class Outcome:
    kind: Kind
    code: str | int | None = None  # the API's own error code or status
    message: str = ""
    retry_after: float | None = None  # seconds the server asked us to wait
    throttled: bool = False  # a rate-limit answer: everybody pauses, not just this call


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the setting."""


class ApiError(RuntimeError):
    """The API answered with an error that stops the run (auth, missing object, …)."""

    def __init__(self, endpoint: str, code: Any, message: str) -> None:
        self.endpoint, self.code, self.message = endpoint, code, message
        super().__init__(f"{endpoint}: {code} {message}".strip())


class RejectedError(ApiError):
    """The API refused the request's content (e.g. HTTP 400): not retried as is."""


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_elapsed: float = 900.0  # give up on one request after this many seconds
    # The longest wait a server's Retry-After may impose (setting `max_retry_after_seconds`):
    # one that says "an hour" (or a day) must not stall the run silently.
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        jittered = backoff * random.uniform(0.5, 1.0)
        if retry_after is None:
            return jittered
        return max(jittered, min(retry_after, self.max_retry_after))


def check_base_url(url: str, setting: str, allow_insecure_http: bool) -> str:
    """`url` as a base URL the credentials may be sent to, or a `ConfigError` naming `setting`.

    It is read with urllib3's parser, the one that sends the requests: a check that read it
    otherwise could see one host while the credentials went to another
    (`http://192.0.2.2:18555\\@127.0.0.1:9` is loopback to `urlsplit`, 192.0.2.2 to urllib3).
    A user name or password, a backslash, white space, a query or a fragment have no place in
    a base URL: refused rather than interpreted. Plain http is refused to anything but
    loopback, unless the user explicitly allows it.
    """
    if not isinstance(url, str) or not url:
        raise ConfigError(f"Setting '{setting}' must be an http(s) URL.")
    if "\\" in url or any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigError(
            f"Setting '{setting}' must not contain a backslash, white space or control "
            f"characters, got {_shown(url)}."
        )
    try:
        parts = parse_url(url)
    except LocationParseError as exc:
        raise ConfigError(f"Setting '{setting}' is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.host:
        raise ConfigError(f"Setting '{setting}' must be an http(s) URL, got {_shown(url)}.")
    if parts.auth is not None:
        # Never echoed: the user-info part may be a password.
        raise ConfigError(
            f"Setting '{setting}' must not hold a user name or password (user@host); "
            "credentials have settings of their own."
        )
    if parts.query is not None or parts.fragment is not None:
        raise ConfigError(
            f"Setting '{setting}' must not have a query or fragment, got {_shown(url)}."
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.host):
        raise ConfigError(
            f"Setting '{setting}' uses plain http:// to a non-loopback host ({parts.host}); "
            "use https://, or set 'allow_insecure_http' to true if you really mean it."
        )
    return url.rstrip("/")


def _shown(url: str) -> str:
    """The URL for an error message, unless it may hold a password (`user:password@host`)."""
    return "a URL holding '@' (not shown)" if "@" in url else repr(url)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()  # urllib3 keeps an IPv6 address in its brackets
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


class ApiClient:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        limiter: RateLimiter,
        classify: Callable[[Answer], Outcome],
        secrets: list[str],
        pool_size: int = 10,
        timeout: tuple[float, float] = (10.0, 120.0),
        retry: RetryPolicy | None = None,
        on_response: Callable[[Answer], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.classify = classify
        self.secrets = [s for s in secrets if s]
        self.retry = retry or RetryPolicy()
        self.on_response = on_response
        self.transport = Transport(self.base_url, headers, pool_size, timeout)
        self.calls = 0
        self.retries = 0
        self.throttled = 0

    def send(
        self,
        method: str,
        path: str,
        endpoint: str | None = None,
        decode: Callable[[bytes], Any] = json.loads,
        **kwargs: Any,
    ) -> Any:
        """Send with pacing and retries; return the body of a successful answer, `decode`d."""
        endpoint = endpoint or path
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            self.calls += 1
            try:
                response = self.transport.request(method, f"{self.base_url}{path}", **kwargs)
            except TRANSIENT_ERRORS as exc:
                if is_certificate_error(exc):  # sending again cannot fix it
                    reason = redact(str(exc), self.secrets)
                    raise ApiError(
                        endpoint,
                        "SSLError",
                        f"the TLS certificate of {self.base_url} failed verification; check "
                        f"'base_url' and the server's certificate. {reason}",
                    ) from None
                outcome = Outcome("retry", code=type(exc).__name__, message="network error")
            else:
                if self.on_response:
                    self.on_response(response)
                outcome = self.classify(response)
                if outcome.kind == "ok":
                    return decode(response.content) if response.content else None
            message = redact(outcome.message, self.secrets)
            if outcome.kind == "reject":
                raise RejectedError(endpoint, outcome.code, message)
            if outcome.kind == "fatal":
                raise ApiError(endpoint, outcome.code, message)
            if outcome.throttled:
                self.throttled += 1
            elapsed = time.monotonic() - started
            if attempt >= self.retry.max_attempts or elapsed >= self.retry.max_elapsed:
                raise ApiError(
                    endpoint,
                    outcome.code,
                    f"still failing after {attempt} attempts in {elapsed:.0f}s: {message}",
                )
            delay = self.retry.delay(attempt, outcome.retry_after)
            if outcome.retry_after is not None and outcome.retry_after > delay:
                logger.warning(
                    "%s asked to wait %gs before the next call; waiting %.1fs "
                    "(max_retry_after_seconds)",
                    endpoint,
                    outcome.retry_after,
                    delay,
                )
            if outcome.throttled:
                self.limiter.pause(delay)
            self.retries += 1
            logger.warning(
                "%s answered %s %s; retry %d/%d in %.1fs",
                endpoint,
                outcome.code,
                message,
                attempt,
                self.retry.max_attempts - 1,
                delay,
            )
            time.sleep(delay)
