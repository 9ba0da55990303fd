"""Rate limits (docs/api/jiandaoyun.md §8): one bucket per endpoint, one for the whole company.

A bucket of `rate` holds `rate` calls and refills `rate` per second (divided by the time
scale), so a client that never sends more than `rate` calls in any one-second window is never
refused. Rates are read from the knobs on every call; a changed rate starts a full bucket.

Knob `company_used_by_others` (calls per second, 0): another client of the same company spends
that much of the company budget all along, so its bucket refills only at the rest.
"""

from __future__ import annotations

from crm_sandbox.runtime import Knobs, TokenBucket

COMPANY_RATE = "company_rate"
USED_BY_OTHERS = "company_used_by_others"
# Endpoint group → the knob holding its per-endpoint rate (calls per second).
GROUP_RATES = {
    "batch": "batch_rate",
    "single": "single_rate",
    "read": "read_rate",
    "directory": "directory_rate",
}
DEFAULT_RATES = {
    "batch_rate": 10,
    "single_rate": 20,
    "read_rate": 30,
    "directory_rate": 10,  # the two directory lists (§10)
    "company_rate": 50,
    "company_used_by_others": 0,
}

RATE_LIMIT_COMPANY = 8303
RATE_LIMIT_ENDPOINT = 8304


class RateLimits:
    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self._buckets: dict[str, tuple[float, TokenBucket]] = {}

    def check(self, endpoint: str, group: str) -> int | None:
        """Count one call; the error code when it is over a limit, else None.

        Every call counts against the company budget, even one its endpoint then refuses.
        """
        company = self.knobs.extra.get(COMPANY_RATE)
        others = float(self.knobs.extra.get(USED_BY_OTHERS) or 0)
        if company and others:
            company = max(float(company) - others, 0.001)
        if not self._take("company", company):
            return RATE_LIMIT_COMPANY
        if not self._take(endpoint, self.knobs.extra.get(GROUP_RATES[group])):
            return RATE_LIMIT_ENDPOINT
        return None

    def _take(self, key: str, rate: float | None) -> bool:
        if not rate:  # null or 0: no limit
            return True
        known = self._buckets.get(key)
        if known is None or known[0] != rate:
            capacity = max(float(rate), 1.0)  # below 1/s: one call per 1/rate seconds
            known = (rate, TokenBucket(capacity, capacity / rate, self.knobs))
            self._buckets[key] = known
        return known[1].take() == 0.0
