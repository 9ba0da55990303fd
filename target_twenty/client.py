"""Twenty's REST API as the target uses it: metadata, batch upserts, deletes, existence checks.

Pacing is proactive and shared by every request (100 calls per 60 s and 100 per second, as
documented, or less when the server announces less in `X-RateLimit-Limit`). How each answer is
handled (docs/api/twenty.md §9):

- 429: everybody waits `Retry-After`, else the body's `retryAfterSeconds`, else (the older
  "Limit reached" form has neither) an exponential backoff from one second;
- 5xx, timeouts and dropped connections: retried with backoff (the writes are idempotent);
- 400: the batch's content was refused; the sink splits it to find the record at fault;
- 401, 402, 403, 404 and other 4xx: the run stops with the server's message — but a 404 to a
  DELETE means the record is gone already.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from connector_kit.http import ApiClient, ApiError, Outcome, RetryPolicy, retry_after_seconds
from connector_kit.pacing import RateLimiter, budget_file
from connector_kit.transport import Answer

logger = logging.getLogger("target_twenty")

MAX_BATCH = 60  # records per batch call (§2)
MAX_PAGE = 200  # rows per find-many page (§3)


class _Upserted(msgspec.Struct):
    """What the target reads of a row Twenty returns for a batch upsert."""

    id: str | None = None
    createdAt: str | None = None  # Twenty's names
    updatedAt: str | None = None


_UPSERT_ANSWER = msgspec.json.Decoder(dict[str, dict[str, list[_Upserted]]])


_ENCODER = msgspec.json.Encoder()


def encode_batch(records: Any) -> bytes:
    """The batch as JSON by msgspec (an eighth of `json.dumps`'s time). Text msgspec cannot
    write as UTF-8 (a lone surrogate, which the SDK's reader lets through) goes by `json` as
    `\\uXXXX` escapes. Payloads hold JSON values only, numbers finite (`values.py`)."""
    try:
        return _ENCODER.encode(records)
    except (msgspec.EncodeError, OverflowError, TypeError, ValueError):
        return json.dumps(records, allow_nan=False).encode()


def _decode_upserted(content: bytes) -> Any:
    """`{"data": {"createCompanies": [rows]}}` with each row reduced to its id and times.

    Twenty sends every field of every row back; decoding only these three costs a tenth of
    what decoding it all does (the largest share of the target's CPU after the SDK's own). An
    answer of another shape is decoded in full, for the caller's checks to report.
    """
    try:
        return msgspec.to_builtins(_UPSERT_ANSWER.decode(content))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return json.loads(content)


# Twenty lists soft-deleted rows when the filter names deletedAt; an upsert matches them too.
WITH_DELETED = "or(deletedAt[is]:NULL,deletedAt[is]:NOT_NULL)"


def quoted(values: list[str]) -> str:
    """Values for an `in` filter: each double-quoted, quotes inside escaped."""
    return ",".join(json.dumps(v, ensure_ascii=False) for v in values)


def classify(response: Answer) -> Outcome:
    status = response.status_code
    if status < 300:
        return Outcome("ok")
    body = _json(response)
    message = _message(body) or response.text[:300]
    if status == 429:
        retry_after = retry_after_seconds(response)
        if retry_after is None and isinstance(body.get("retryAfterSeconds"), int | float):
            retry_after = float(body["retryAfterSeconds"])
        return Outcome("retry", 429, message, retry_after=retry_after, throttled=True)
    if status >= 500 or status == 408:
        return Outcome("retry", status, message)
    if status == 400:
        return Outcome("reject", 400, message)
    if status == 401:
        message = f"{message} — check the setting 'api_key'"
    return Outcome("fatal", status, message)


def _json(response: Answer) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        return "; ".join(str(m) for m in messages)
    return str(body.get("message") or body.get("error") or "")


class TwentyClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        requests_per_window: int,
        window_seconds: float,
        pool_size: int,
        on_limit: Callable[[int], None] | None = None,
        max_retry_after: float = 120.0,
        budget_dir: str | None = None,
    ) -> None:
        self.window_seconds = window_seconds
        self.requests_per_window = requests_per_window
        # Twenty's buckets are per API key: every process of this machine on the key shares one.
        ledger = budget_file(budget_dir, base_url, api_key, "twenty")
        self.limiter = RateLimiter(
            [(requests_per_window, window_seconds), (100, 1.0)], ledger=ledger
        )
        self._on_limit = on_limit
        self._announced: int | None = None
        self.api = ApiClient(
            base_url,
            {"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            self.limiter,
            classify,
            secrets=[api_key],
            pool_size=pool_size,
            # A throttled answer counts as an attempt: leave room for 429 bursts and faults.
            retry=RetryPolicy(max_attempts=10, max_retry_after=max_retry_after),
            on_response=self._read_limits,
        )

    def _read_limits(self, response: Answer) -> None:
        """Pace to what the server announces (cloud plans differ: 50 per minute was seen)."""
        try:
            limit = int(response.headers["X-RateLimit-Limit"])
        except (KeyError, ValueError):
            return
        if (
            limit < self.requests_per_window
            and limit != self._announced
            and self.limiter.announce(limit, self.window_seconds)
        ):
            self._announced = limit
            logger.warning(
                "Twenty announces %d requests per %gs (X-RateLimit-Limit), fewer than the "
                "%d configured: pacing to %d.",
                limit,
                self.window_seconds,
                self.requests_per_window,
                limit,
            )
            if self._on_limit:
                self._on_limit(limit)
        remaining = response.headers.get("X-RateLimit-Remaining")
        if remaining is not None and remaining.isdigit() and response.status_code < 300:
            # Someone else spends this key's budget too when it runs dry under our pace.
            self.limiter.observe(int(remaining))

    # Endpoints ------------------------------------------------------------------------------
    def objects(self) -> list[dict[str, Any]]:
        """Every object of the workspace, with its fields (§6)."""
        objects: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1000}
        while True:
            body = self.api.send("GET", "/rest/metadata/objects", params=params) or {}
            data = body.get("data") or {}
            objects += data.get("objects", []) if isinstance(data, dict) else data
            page = body.get("pageInfo") or {}
            if not page.get("hasNextPage") or not page.get("endCursor"):
                return objects
            params["starting_after"] = page["endCursor"]

    def upsert(self, plural: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or update up to 60 records; their rows come back in input order."""
        if not 0 < len(records) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} records, not {len(records)}")
        body = self.api.send(
            "POST",
            f"/rest/batch/{plural}",
            endpoint=f"POST /rest/batch/{plural}",
            params={"upsert": "true"},
            body=encode_batch(records),
            headers={"Content-Type": "application/json"},
            decode=_decode_upserted,
        )
        rows = next(iter(((body or {}).get("data") or {}).values()), None)
        if not isinstance(rows, list) or len(rows) != len(records):
            raise RuntimeError(
                f"POST /rest/batch/{plural}: expected {len(records)} records back, got "
                f"{len(rows) if isinstance(rows, list) else 'none'}"
            )
        return rows

    def delete(self, plural: str, twenty_id: str) -> bool:
        """Soft-delete one record; False when Twenty has no live record of that id (404)."""
        try:
            self.api.send(
                "DELETE", f"/rest/{plural}/{twenty_id}", endpoint=f"DELETE /rest/{plural}"
            )
        except ApiError as exc:
            if exc.code == 404:  # never written, or deleted already: what was asked for
                return False
            raise
        return True

    def existing(self, plural: str, ids: list[str]) -> set[str]:
        """Those of `ids` that are rows of `plural` (soft-deleted ones do not count)."""
        found: set[str] = set()
        for start in range(0, len(ids), MAX_BATCH):  # 60 ids keep the URL short
            chunk = ids[start : start + MAX_BATCH]
            rows = self.find(plural, f"id[in]:[{quoted(chunk)}]")
            found.update(row["id"] for row in rows if "id" in row)
        return found

    def find(self, plural: str, filter_text: str) -> list[dict[str, Any]]:
        """Every row of `plural` matching `filter_text`, page after page (§3)."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {"filter": filter_text, "limit": MAX_PAGE}
        while True:
            body = self.api.send(
                "GET", f"/rest/{plural}", endpoint=f"GET /rest/{plural}", params=params
            )
            page = ((body or {}).get("data") or {}).get(plural) or []
            rows += [row for row in page if isinstance(row, dict)]
            info = (body or {}).get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor") or not page:
                return rows
            params["starting_after"] = info["endCursor"]

    def update(self, plural: str, twenty_id: str, values: dict[str, Any]) -> bool:
        """Change some fields of one live row (§4); False when it is not live (404)."""
        try:
            self.api.send(
                "PATCH",
                f"/rest/{plural}/{twenty_id}",
                endpoint=f"PATCH /rest/{plural}",
                body=encode_batch(values),
                headers={"Content-Type": "application/json"},
            )
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    def create_field(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Add a custom field to an object (§6); the new field's metadata."""
        body = self.api.send(
            "POST",
            "/rest/metadata/fields",
            body=json.dumps(definition).encode(),
            headers={"Content-Type": "application/json"},
        )
        data = (body or {}).get("data", body) if isinstance(body, dict) else body
        return data if isinstance(data, dict) else {}

    @property
    def calls(self) -> int:
        return self.api.calls
