"""Bounded exponential backoff with jitter that honours `Retry-After` (docs/api/okki.md §4)."""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass

import requests

# Failures where the request never got a usable answer: sending it again is safe, every call
# the tap makes is a read (or the idempotent token request).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # tries per request, the first one included
    base_delay: float = 1.0  # seconds before the first retry (before jitter)
    max_delay: float = 60.0  # no single wait is longer, whatever the attempt

    def waits(self) -> Generator[float, BaseException | None, None]:
        """A `backoff`-style wait generator: send it the exception, get the seconds to wait.

        The wait doubles per attempt and is jittered into [delay/2, delay] ("equal jitter"),
        so threads that failed together do not retry together. A `Retry-After` is a floor
        (plus up to 20 %): never sooner than the server asked, and still longer each time if
        it keeps refusing.
        """
        exception = yield 0.0  # primed by `backoff` with None
        attempt = 0
        while True:
            attempt += 1
            delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            wait = random.uniform(delay / 2, delay)
            retry_after = getattr(exception, "retry_after", None)
            if retry_after is not None:
                wait = max(wait, retry_after * random.uniform(1.0, 1.2))
            exception = yield wait
