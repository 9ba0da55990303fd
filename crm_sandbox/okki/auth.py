"""Access tokens of the `client_credentials` grant: issue, check, expire, revoke."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

# Module names a token may be scoped to (upstream's list, plus `supplier` and `report` seen in a
# sample token).
KNOWN_SCOPES = frozenset(
    {
        "company",
        "lead",
        "opportunity",
        "product",
        "invoices",
        "user",
        "costInvoice",
        "paymentInvoice",
        "purchaseOrder",
        "warehouse",
        "capitalAccount",
        "webhook",
        "supplier",
        "report",
    }
)


@dataclass(frozen=True)
class Token:
    client_id: str
    scopes: frozenset[str]
    expires_at: float  # time.monotonic() deadline


class TokenRegistry:
    """Live tokens. A revoked or expired token is simply no longer known."""

    def __init__(self) -> None:
        self._live: dict[str, Token] = {}
        self.issued = 0

    def issue(self, client_id: str, scopes: frozenset[str], lifetime: float) -> str:
        now = time.monotonic()
        self._live = {k: t for k, t in self._live.items() if t.expires_at > now}
        access_token = _jwt_like(client_id, scopes, lifetime)
        self._live[access_token] = Token(client_id, scopes, now + lifetime)
        self.issued += 1
        return access_token

    def check(self, authorization: str | None) -> Token | None:
        """The token of an `Authorization: Bearer <token>` header, if it is live."""
        scheme, _, value = (authorization or "").partition(" ")
        token = self._live.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is not None and token.expires_at <= time.monotonic():
            del self._live[value.strip()]
            return None
        return token

    def revoke_all(self) -> int:
        revoked = len(self._live)
        self._live.clear()
        return revoked


def _jwt_like(client_id: str, scopes: frozenset[str], lifetime: float) -> str:
    """Shaped like upstream's JWTs (`eyJ0eXAiOiJKV1Qi…`); only the registry gives it meaning."""
    issued = int(time.time())
    header = {"typ": "JWT", "alg": "RS256"}
    claims = {
        "aud": client_id,
        "jti": secrets.token_hex(20),
        "iat": issued,
        "exp": issued + max(1, round(lifetime)),
        "scopes": sorted(scopes),
    }
    parts = [_b64(json.dumps(p, separators=(",", ":"))) for p in (header, claims)]
    return ".".join([*parts, secrets.token_urlsafe(64)])


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
