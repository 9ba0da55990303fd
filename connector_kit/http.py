"""One HTTP client for a destination API: pacing, bounded retries, clear and secret-free errors.

The API-specific part is a `classify(response) -> Outcome` function (see `retry.py`): each
target says which answers are fine, which are worth retrying (and after how long), which
reject the request's content (the caller splits or dead-letters the batch) and which must stop
the run.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from connector_kit.pacing import RateLimiter
from connector_kit.retry import (
    ApiError,
    Outcome,
    RejectedError,
    RetryCounts,
    RetryPolicy,
    call_with_retries,
    is_certificate_error,
    retry_after_seconds,
)
from connector_kit.transport import Answer, Transport

# The plugins' clients import these from here, beside `ApiClient`.
__all__ = [
    "ApiClient",
    "ApiError",
    "ConfigError",
    "Outcome",
    "RejectedError",
    "RetryPolicy",
    "check_base_url",
    "is_certificate_error",
    "retry_after_seconds",
]


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the setting."""


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
        self.counts = RetryCounts()

    @property
    def calls(self) -> int:
        return self.counts.calls

    @property
    def retries(self) -> int:
        return self.counts.retries

    @property
    def throttled(self) -> int:
        return self.counts.throttled

    def send(
        self,
        method: str,
        path: str,
        endpoint: str | None = None,
        decode: Callable[[bytes], Any] = json.loads,
        **kwargs: Any,
    ) -> Any:
        """Send with pacing and retries; return the body of a successful answer, `decode`d."""
        url = f"{self.base_url}{path}"

        def attempt() -> Answer:
            self.limiter.acquire()
            answer = self.transport.request(method, url, **kwargs)
            if self.on_response:
                self.on_response(answer)
            return answer

        answer = call_with_retries(
            attempt,
            self.classify,
            self.retry,
            endpoint or path,
            server=self.base_url,
            secrets=self.secrets,
            pause=self.limiter.pause,
            counts=self.counts,
        )
        return decode(answer.content) if answer.content else None
