"""The Jiandaoyun v5 API as the target uses it: seven endpoints, paced and retried.

Limits and errors: docs/api/jiandaoyun.md §8–9.

Every endpoint has its own rate limit (batch_create 10/s, data/update and data/delete 20/s each,
reads 30/s, the two directory lists 10/s) and all calls of a company share 50/s; each endpoint
gets a `RateLimiter` whose parent is the company budget, so neither is ever exceeded. Answers
are classified by the contract's retry policy: rate-limit codes and HTTP 429 wait and retry,
transient codes and 5xx back off and retry, auth and missing app/form codes stop the run with a
message naming the setting to fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from connector_kit.http import ApiClient, Outcome, RetryPolicy, retry_after_seconds
from connector_kit.pacing import RateLimiter, budget_file
from connector_kit.transport import Answer

logger = logging.getLogger(__name__)

WIDGETS = "app/entry/widget/list"
LIST = "app/entry/data/list"
BATCH_CREATE = "app/entry/data/batch_create"
UPDATE = "app/entry/data/update"
DELETE = "app/entry/data/delete"
DEPARTMENTS = "corp/department/list"  # the company directory (§10)
MEMBERS = "corp/department/user/list"
ROOT_DEPARTMENT = 1  # the company itself: listing under it with has_child lists everything

BATCH_ROWS = 100  # batch_create's limit (§3.1)
IN_VALUES = 200  # the `in` filter's limit (§5.2)
PAGE_ROWS = 100  # data/list's page limit (§5.1)

THROTTLED = {
    8303,
    8304,
}  # company / endpoint rate limit: wait at least 1 s (§8)
TRANSIENT = {4012, 9004, 9007, 17027}  # form busy, queue/lock failures, file upload failed
NO_SUCH_ROW = 4001  # "data does not exist"
# Codes that stop the run, with what the user should check.
FATAL = {
    8301: "the API key was refused: check the 'api_key' setting",
    8302: "the API key lacks permission for this app, form or endpoint: check 'api_key'",
    17018: "the API key is invalid or disabled: check the 'api_key' setting",
    2004: "the app does not exist: check the stream's 'app_id' in 'forms'",
    3000: "the form does not exist: check the stream's 'entry_id' in 'forms'",
    1010: "the member does not exist: check the 'data_creator' setting",
    17024: "a batch of more than 100 rows was sent (a bug in the target, please report it)",
    17025: "the transaction_id was refused as malformed (a bug in the target, please report it)",
    # Never split and re-sent under new ids: if the API means "this batch was already applied",
    # new ids would create its rows again.
    17026: "the transaction_id is already in use; the batch may have been applied already",
    17052: "this machine's IP address is not on the API key's whitelist",
    17053: "the API key is not authorised for this app: check 'api_key' and 'app_id'",
    17054: "the API key is not authorised for this endpoint: check 'api_key'",
    7103: "the company's API usage limit is exceeded",
    7206: "the company (tenant) is suspended",
    7212: "the company's monthly data quota is used up",
    7221: "the company's plan limit for data created through the API is reached",
    8017: "the company does not exist or was dissolved",
}
THROTTLE_WAIT = 1.0  # seconds, when a rate-limit answer has no Retry-After


@dataclass(frozen=True)
class Rates:
    """Requests per second (§8); lower them when other integrations share the key."""

    batch: float = 10
    single_write: float = 20
    read: float = 30
    directory: float = 10
    company: float = 50


def api_code(response: Answer) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


def api_message(response: Answer) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("msg", "")) if isinstance(body, dict) else ""


def classify(response: Answer) -> Outcome:
    """Sort an answer by the contract's retry policy (§9)."""
    status = response.status_code
    if status == 200:
        return Outcome("ok")
    if status == 429:
        return Outcome(
            "retry",
            code=429,
            message="too many concurrent requests",
            retry_after=retry_after_seconds(response),
            throttled=True,
        )
    if status >= 500:
        return Outcome("retry", code=status, message=f"server error {response.reason}")
    code = api_code(response)
    message = api_message(response)
    if code in THROTTLED:
        wait = retry_after_seconds(response)
        return Outcome(
            "retry",
            code=code,
            message=message or "rate limit",
            retry_after=THROTTLE_WAIT if wait is None else wait,
            throttled=True,
        )
    if code in TRANSIENT:
        return Outcome("retry", code=code, message=message)
    if code in FATAL:
        return Outcome("fatal", code=code, message=f"{FATAL[code]} (API said: {message})")
    if status in (401, 403):
        return Outcome("fatal", code=status, message="access denied: check the 'api_key' setting")
    if status in (404, 405):
        return Outcome(
            "fatal",
            code=status,
            message=f"no such endpoint at this address: check the 'base_url' setting ({status})",
        )
    # Any other code concerns this request's content (§9: "any other code" is not
    # worth retrying): the caller splits the batch to find and dead-letter the culprit rows.
    return Outcome("reject", code=code if code is not None else status, message=message)


class JiandaoyunApi:
    """One `ApiClient` per endpoint, each paced by its own limit and the company budget."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        rates: Rates = Rates(),
        concurrency: int = 16,
        timeout: float = 120.0,
        max_retry_after: float = 120.0,
        budget_dir: str | None = None,
    ) -> None:
        # Every process of this machine on the same key shares the company's and each
        # endpoint's budget (the key stands for the company).
        self.company = RateLimiter(
            [(rates.company, 1.0)], ledger=budget_file(budget_dir, base_url, api_key, "company")
        )
        self.max_retry_after = max_retry_after
        limits = {WIDGETS: rates.read, LIST: rates.read, BATCH_CREATE: rates.batch}
        limits[UPDATE] = limits[DELETE] = rates.single_write
        limits[DEPARTMENTS] = limits[MEMBERS] = min(rates.directory, rates.read)
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.clients = {
            endpoint: ApiClient(
                base_url,
                headers,
                RateLimiter(
                    [(rate, 1.0)],
                    parent=self.company,
                    ledger=budget_file(budget_dir, base_url, api_key, endpoint),
                ),
                classify,
                secrets=[api_key],
                pool_size=concurrency,
                timeout=(10.0, timeout),
                # Bounded so that a batch's retries end well within the hour its
                # transaction_id is valid (see writer.py).
                retry=RetryPolicy(
                    max_attempts=8,
                    base_delay=1.0,
                    max_delay=30.0,
                    max_elapsed=300,
                    max_retry_after=max_retry_after,
                ),
                on_response=self._watch_company_budget,
            )
            for endpoint, rate in limits.items()
        }

    def _watch_company_budget(self, response: Answer) -> None:
        # 8303 is the company-wide budget: every endpoint holds back, not only the one that hit it.
        if response.status_code == 400 and api_code(response) == 8303:
            wait = retry_after_seconds(response)
            self.company.pause(min(THROTTLE_WAIT if wait is None else wait, self.max_retry_after))

    def call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return (
            self.clients[endpoint].send("POST", f"/api/v5/{endpoint}", endpoint, json_body=body)
            or {}
        )

    def widgets(self, app_id: str, entry_id: str) -> dict[str, Any]:
        return self.call(WIDGETS, {"app_id": app_id, "entry_id": entry_id})

    def departments(self) -> list[dict[str, Any]]:
        """Every department under the root (not the root itself)."""
        body = {"dept_no": ROOT_DEPARTMENT, "has_child": True}
        return list(self.call(DEPARTMENTS, body).get("departments") or [])

    def members(self) -> list[dict[str, Any]]:
        """Every member of the company."""
        body = {"dept_no": ROOT_DEPARTMENT, "has_child": True}
        return list(self.call(MEMBERS, body).get("users") or [])

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            endpoint: {"calls": c.calls, "retries": c.retries, "throttled": c.throttled}
            for endpoint, c in self.clients.items()
        }
