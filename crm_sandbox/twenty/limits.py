"""Rate limits per API key: two token buckets, 100 calls per 60 s and 100 per second.

As docs/api/twenty.md §8 describes them.

One token per call, whatever its record count; a refused call costs nothing. Knobs, in
`Knobs.extra` and read at every call:

- `limit_per_minute` (100; some cloud plans have 50) and `limit_per_second` (100);
- `rate_limit_style`: "headers" (default) answers 429 with `Retry-After`, `X-RateLimit-Limit`,
  `-Remaining`, `-Reset` (epoch seconds at which the bucket is full again) and the RATE_LIMITED
  body; "legacy" answers the older 429: no headers, `Limit reached (100 tokens per 60000 ms)`;
- `announce_limits` (false): also send the `X-RateLimit-*` headers on every call that passes
  (with `limit_per_minute` 50: a plan's lower limit that a client learns only from headers);
- `start_spent` (false): a key's buckets start empty, as after another job spent them.

Windows, `Retry-After`, `retryAfterSeconds` and `X-RateLimit-Reset` are divided by
`Knobs.time_scale`. Unscaled they are whole seconds, like the real server; scaled they are
fractional ("0.2"). Messages quote the configured, unscaled limit, as the server words it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from crm_sandbox.runtime import Knobs, TokenBucket

DEFAULTS: dict[str, Any] = {
    "limit_per_minute": 100,
    "limit_per_second": 100,
    "rate_limit_style": "headers",
    "announce_limits": False,
    "start_spent": False,
}


@dataclass
class Verdict:
    """The state of the bucket a call is judged by (the per-minute one when it passes)."""

    limit: int
    window: float  # seconds, unscaled
    remaining: int
    full_in: float  # seconds (scaled) until the bucket is full again
    retry_after: float  # seconds (scaled) to wait; 0.0 when the call may proceed


class RateLimiter:
    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.buckets: dict[str, list[TokenBucket]] = {}

    def clear(self) -> None:
        self.buckets.clear()

    def take(self, api_key: str) -> Verdict:
        """Spend one of `api_key`'s tokens, or say how long to wait for one."""
        buckets = self._buckets(api_key)
        taken, short = [], []
        for bucket in buckets:
            wait = bucket.take()
            (short if wait else taken).append((wait, bucket))
        if short:
            for _, bucket in taken:
                bucket.tokens += 1  # give back: a refused call costs nothing
            wait, bucket = max(short, key=lambda pair: pair[0])
            return self._verdict(bucket, wait)
        return self._verdict(buckets[0], 0.0)

    def peek(self, api_key: str) -> Verdict:
        """The state of `api_key`'s per-minute bucket, spending nothing."""
        return self._verdict(self._buckets(api_key)[0], 0.0)

    def _buckets(self, api_key: str) -> list[TokenBucket]:
        extra = self.knobs.extra
        sizes = [(int(extra["limit_per_minute"]), 60.0), (int(extra["limit_per_second"]), 1.0)]
        buckets = self.buckets.get(api_key)
        # A changed limit starts afresh, with a full bucket of the new size.
        if buckets is None or [(b.capacity, b.period) for b in buckets] != sizes:
            buckets = [TokenBucket(size, period, self.knobs) for size, period in sizes]
            if extra.get("start_spent"):
                for bucket in buckets:
                    bucket.tokens = 0.0
            self.buckets[api_key] = buckets
        return buckets

    def _verdict(self, bucket: TokenBucket, wait: float) -> Verdict:
        remaining = bucket.remaining()
        per_second = bucket.capacity * self.knobs.time_scale / bucket.period
        full_in = (bucket.capacity - bucket.tokens) / per_second
        return Verdict(bucket.capacity, bucket.period, remaining, full_in, wait)


def limit_headers(verdict: Verdict, time_scale: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(verdict.limit),
        "X-RateLimit-Remaining": str(verdict.remaining),
        "X-RateLimit-Reset": _seconds(time.time() + verdict.full_in, time_scale, at_least=0),
    }


def throttled_response(verdict: Verdict, style: str, time_scale: float) -> JSONResponse:
    """Twenty's 429, in the newer ("headers") or the older ("legacy") form."""
    if style == "legacy":
        window_ms = f"{verdict.window * 1000:g}"
        message = f"Limit reached ({verdict.limit} tokens per {window_ms} ms)"
        body = {"statusCode": 429, "error": "TooManyRequestsException", "messages": [message]}
        return JSONResponse(body, status_code=429)
    retry_after = _seconds(verdict.retry_after, time_scale, at_least=1)
    message = f"Rate limit exceeded for apiKey: {verdict.limit} requests per {verdict.window:g}s."
    body = {
        "statusCode": 429,
        "error": "RATE_LIMITED",
        "messages": [message],
        "retryAfterSeconds": float(retry_after) if time_scale != 1 else int(retry_after),
    }
    headers = {"Retry-After": retry_after, **limit_headers(verdict, time_scale)}
    return JSONResponse(body, status_code=429, headers=headers)


def _seconds(value: float, time_scale: float, at_least: int) -> str:
    """Whole seconds, rounded up, when time is real; milliseconds precision when scaled."""
    if time_scale == 1:
        return str(max(at_least, math.ceil(value)))
    return f"{max(value, 0.001):.3f}".rstrip("0").rstrip(".")
