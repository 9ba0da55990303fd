"""OKKI access tokens: fetched once, shared by every thread, renewed shortly before expiry.

`POST /v1/oauth2/access_token` with a JSON `client_credentials` body (docs/api/okki.md §2). A
data call answered HTTP 401 `access_denied` (token expired early or revoked) calls
`renew(failed)`: the first thread to report a token drops it, and the call's next attempt
fetches a new one that the other threads simply pick up.

A token request is one step of the data call that needs it: it is paced like any call, and a
throttled, failed or lost token answer is a failed attempt of that call (`RetryLater`), retried
by the same loop within the same attempt count (`connector_kit.retry`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from singer_sdk.authenticators import APIAuthenticatorBase

from connector_kit.pacing import RateLimiter
from connector_kit.retry import Outcome, RetryLater, retry_after_seconds
from connector_kit.transport import Answer, Transport
from tap_okki.errors import OkkiApiError, OkkiAuthError

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """One GET: its URL and headers (the authenticator adds the token to them)."""

    url: str
    headers: dict[str, str]


TOKEN_PATH = "/v1/oauth2/access_token"
DEFAULT_LIFETIME = 28_800  # seconds; upstream may omit `expires_in` (docs/api/okki.md §2)
MAX_RENEWAL_MARGIN = 300.0  # renew this long before expiry (ARK's observed practice) …
RENEWAL_SHARE = 0.1  # … or a tenth of the lifetime, for short-lived tokens


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    scope: str

    def __repr__(self) -> str:  # never show the secret, even in a debugger or a traceback
        return f"Credentials(client_id={self.client_id!r}, scope={self.scope!r})"


class OkkiAuthenticator(APIAuthenticatorBase):
    """Adds `Authorization: Bearer <token>` to every request; thread-safe."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        transport: Transport,
        pacer: RateLimiter,
    ) -> None:
        super().__init__()
        self._url = f"{base_url}{TOKEN_PATH}"
        self._credentials = credentials
        self._transport = transport
        self._pacer = pacer
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0  # time.monotonic() after which the cached token is not used

    def __repr__(self) -> str:
        return f"OkkiAuthenticator(url={self._url!r})"

    # Used by singer-sdk for every request ---------------------------------------------------
    def authenticate_request(self, request: Call) -> Call:  # type: ignore[override]
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    # Token cache ----------------------------------------------------------------------------
    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def renew(self, failed_request: Call) -> None:
        """OKKI refused the token this request carried: drop it, unless done already (the
        next `token()` fetches a new one)."""
        failed = failed_request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            if self._token is not None and self._token == failed:
                logger.info(
                    "OKKI refused the access token (expired or revoked); fetching a new one"
                )
                self._token = None

    def _fetch(self) -> None:
        """Fetch a token (lock held): one paced request; `RetryLater` if worth another."""
        started = time.monotonic()
        body = self._request_token()
        lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME)
        margin = min(MAX_RENEWAL_MARGIN, lifetime * RENEWAL_SHARE)
        self._token = str(body["access_token"])
        self._renew_at = started + lifetime - margin
        logger.info("Fetched an OKKI access token (valid for %.0f s)", lifetime)

    def _request_token(self) -> dict:
        c = self._credentials
        self._pacer.acquire()
        response = self._transport.request(
            "POST",
            self._url,
            json_body={
                "grant_type": "client_credentials",
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "scope": c.scope,
            },
        )
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise RetryLater(
                Outcome(
                    "retry",
                    f"HTTP {status}",
                    f"from {TOKEN_PATH}",
                    retry_after=retry_after_seconds(response),
                    throttled=status == 429,
                )
            )
        body = _json_or_none(response)
        if status == 200 and isinstance(body, dict) and body.get("access_token"):
            return body
        if status == 200 and body is None:  # cut short on the way: worth another try
            raise RetryLater(Outcome("retry", "HTTP 200", f"{TOKEN_PATH}: the answer was not JSON"))
        error = str(body.get("error") or body.get("message") or "") if body else ""
        if error == "invalid_scope" or "scope" in error:
            raise OkkiAuthError(
                TOKEN_PATH,
                f"HTTP {status}",
                error,
                "Check the 'scope' setting (space-separated modules).",
            )
        if status in (400, 401, 403):
            raise OkkiAuthError(
                TOKEN_PATH,
                f"HTTP {status}",
                error or "credentials refused",
                "OKKI refused the 'client_id'/'client_secret' settings: check both.",
            )
        raise OkkiApiError(TOKEN_PATH, f"HTTP {status}", error or "no access_token in the answer")


def _json_or_none(response: Answer) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
