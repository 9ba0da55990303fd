"""The OKKI (Xiaoman) Open API emulator: token, company list/info, opportunity list, follow-ups.

Implements OKKI as docs/api/okki.md describes it (the project's contract with the vendor's
facts). Decisions where the documents are silent:

- Token endpoint: a body that is not a JSON object, or lacks a field → 400 `invalid_request`;
  a `grant_type` other than `client_credentials` → 400 `unsupported_grant_type`; a scope that is
  not a known module name → 400 `invalid_scope`. Every request mints a new token.
- A data call without a live `Authorization: Bearer <token>` (missing, garbage, no `Bearer `,
  expired, revoked) → HTTP 401 `{"error":"access_denied"}`. A token lacking the endpoint's
  module in its scope (`company`, `opportunity`) → envelope code 403
  `no permission <module> scopes`, as upstream words it.
- Paging: `count` defaults to 20 and must be 1..100; `start_index` defaults to 1 and must be
  >= 1; `start_time`/`end_time` must be `YYYY-MM-DD HH:MM:SS` (empty = no bound); `removed`
  0/1, `time_type` 1/2, `all` 0/1/2 (0 = private pool: companies with an owner, 2 = public
  pool: without). Anything else → envelope code 400. `group_id` 0 means any group.
  Ties in `update_time` are ordered by the higher id first.
- Business-error envelopes carry `"data": {}`.
- Deleting a company leaves its opportunities in place. Companies created later have none.
- Follow-ups (`/v1/dynamic/trail/list`): `company_id`, `opportunity_id` and `lead_id` filter, at
  most one of them (more → code 400); without any, the whole account is listed. The window is on
  `create_time` (when the follow-up happened, which users may set in the past and which never
  changes), newest first, ties by the higher `trail_id`; `data` is `{"list", "totalItem"}`.
  A deleted follow-up stays listed with `delete_flag` 1, `enable_flag` 0 and update_time = the
  deletion. Deleting a company leaves its follow-ups in place. There are no leads: a `lead_id`
  filter lists nothing. The module scope is `company`.
- Deleting an opportunity (upstream: `POST /v1/opportunity/remove`): the opportunity list has no
  `removed` filter, so by default the row is simply gone (knob `opportunity_deletes` "hidden");
  with "listed" it stays in the list with `enable_flag` 0 and its update_time moved to the
  deletion (docs/api/okki.md §8 says which upstream behaviour each stands for).
- Injected 5xx answers look like a gateway's: HTTP 502 with an HTML body.

Time scaling (`knobs.time_scale`, read at call time): the 1-second rate window, `Retry-After`
and token lifetimes are divided by it. Retry-After is whole seconds of unscaled time, so when
scaled it may be fractional (time_scale 5 → "0.2"); `expires_in` is the scaled lifetime too.

Knobs in `knobs.extra` (defaults in DEFAULT_EXTRA; a one-shot knob fires once, counting from
when its value last changed, then sets itself to null):

- `rate_per_second`: a token bucket per client_id over data calls (the token endpoint is not
  limited); null or 0 = no limit.
- `token_ttl`: token lifetime in seconds.
- `revoke_tokens_after_requests` (one-shot): after that many more data calls, revoke every token.
- `churn` (one-shot), e.g. `{"after_list_requests": 3, "update": 20, "delete": 0, "create": 0}`:
  after that many more company-list calls, update/delete/create that many companies. Updated
  and deleted ones are drawn first from the rows the last company list already served, so a
  paging client really is disturbed.
- `success_code`: 200, or 0 for success envelopes with `code` 0.
- `force_error`, e.g. `{"path": "/v1/company/list", "code": -1, "message": "系统错误", "times": 1}`:
  answer the next `times` calls to `path` with HTTP 200 and that envelope.
- `clients`: extra client_id → client_secret pairs beside the demo client.
- `shape_variety` (0..1, default 0; `crm-sandbox serve --okki-shape-variety`): the share of open
  fields served in another shape than the documented one, and a tenth of it the share of
  records with one value no client can convert (`shapes.py`). `/_sandbox/records` shows the
  records as they are served.
- `unconvertible_share` (0..1, default null = a tenth of `shape_variety`): that share of records,
  while `shape_variety` is on, instead (tests that must meet every kind of such value set 1).
- `opportunity_deletes`: "hidden" (default) or "listed", see above.
- `trail_churn` (one-shot), e.g. `{"after_list_requests": 2, "create": 5,
  "backdate_minutes": 60, "update": 2, "delete": 1}`: after that many more follow-up list calls,
  write follow-ups that happened up to `backdate_minutes` ago (they enter a window a client may
  be paging through: the paging hazard of §9), edit and delete some (drawn first from the rows
  the last follow-up list served).

Control routes (POST, JSON): `/_sandbox/companies/update` and `/_sandbox/companies/delete` take
`{"count": N}` or `{"company_ids": [...]}`, `/_sandbox/companies/create` `{"count": N}`,
`/_sandbox/opportunities/update` and `/_sandbox/opportunities/delete` `{"count": N}` or
`{"opportunity_ids": [...]}`; `/_sandbox/follow_ups/update` and `/_sandbox/follow_ups/delete`
`{"count": N}` or `{"trail_ids": [...]}`, `/_sandbox/follow_ups/create` `{"count": N}` with
optional `"company_ids"` and `"backdate_minutes"`; each sets the records' update_time to now and
answers the ids. `companies/update` also takes `"next_follow_up_time"`: a
`YYYY-MM-DD HH:MM:SS` time to plan the next follow-up, or `""` to clear it.
`/_sandbox/tokens/revoke` revokes every token.
"""

from __future__ import annotations

import gc
import json
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Container, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crm_sandbox.okki import shapes
from crm_sandbox.okki.auth import KNOWN_SCOPES, TokenRegistry
from crm_sandbox.okki.generator import Generator
from crm_sandbox.okki.records import (
    Company,
    FollowUp,
    Opportunity,
    company_info,
    company_row,
    follow_up_row,
    format_time,
    now_epoch,
    opportunity_row,
    parse_time,
)
from crm_sandbox.okki.store import CompanyQuery, Store, TrailQuery
from crm_sandbox.runtime import CONTROL_PREFIX, Knobs, Sandbox, TokenBucket

TOKEN_PATH = "/v1/oauth2/access_token"
COMPANY_LIST = "/v1/company/list"
COMPANY_INFO = "/v1/company/info"
OPPORTUNITY_LIST = "/v1/opportunity/list"
TRAIL_LIST = "/v1/dynamic/trail/list"

DEMO_CLIENT = {"client_id": "demo-client-id", "client_secret": "demo-client-secret"}
DEFAULT_EXTRA: dict[str, Any] = {
    "rate_per_second": 10,
    "token_ttl": 28_800,
    "revoke_tokens_after_requests": None,
    "churn": None,
    "success_code": 200,
    "force_error": None,
    "clients": {},
    "shape_variety": 0,
    "unconvertible_share": None,
    "opportunity_deletes": "hidden",
    "trail_churn": None,
}
OPPORTUNITY_DELETES = ("hidden", "listed")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_ANY_POSITIVE = range(1, 2**63)


class ApiError(Exception):
    """A business error: HTTP 200 with this envelope `code` and `message`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OneShot:
    """A knob that fires once, after `after(value)` more calls, then sets itself to null."""

    def __init__(self, knobs: Knobs, name: str, after: Callable[[Any], int]) -> None:
        self.knobs = knobs
        self.name = name
        self.after = after
        self._armed: Any = None
        self._left = 0

    def rearm(self) -> None:
        self._armed = None

    def tick(self) -> Any:
        """Count one call; return the knob's value when this call makes it fire."""
        value = self.knobs.extra.get(self.name)
        if value is None:
            self._armed = None
            return None
        if value != self._armed:
            self._armed, self._left = value, self.after(value)
        self._left -= 1
        if self._left > 0:
            return None
        self.knobs.extra[self.name] = None
        self._armed = None
        return value


class OkkiSandbox(Sandbox):
    name = "okki"

    def __init__(self, seed: int = 0, knobs: Knobs | None = None, companies: int = 200) -> None:
        super().__init__(seed, knobs)
        for name, default in DEFAULT_EXTRA.items():
            self.knobs.extra.setdefault(name, default)
        self.company_count = companies
        self.started = now_epoch()  # generated update_times lead up to this second
        self._revoke = OneShot(self.knobs, "revoke_tokens_after_requests", int)
        self._churn = OneShot(self.knobs, "churn", lambda v: int(v.get("after_list_requests", 1)))
        self._trail_churn = OneShot(
            self.knobs, "trail_churn", lambda v: int(v.get("after_list_requests", 1))
        )
        self.reset()

    def reset(self) -> None:
        """Regenerate the same seeded data; forget tokens, counters and armed one-shot knobs."""
        self.rng = random.Random(self.seed)
        self.generator = Generator(self.seed)
        with _gc_paused():
            self.store = Store(*self.generator.initial(self.company_count, self.started))
        # The records live until the next reset (then refcounting frees them: they hold no
        # cycles). Freezing keeps full collections from rescanning them: with 100,000
        # companies each such scan stalls a request for about half a second.
        gc.freeze()
        self.tokens = TokenRegistry()
        self._buckets: dict[str, tuple[float, TokenBucket]] = {}
        self.calls: Counter[str] = Counter()
        self.throttled = 0
        self._last_listed: tuple[CompanyQuery, int] | None = None  # (live query, rows served)
        self._last_trails: tuple[TrailQuery, int] | None = None  # the same for follow-ups
        self._revoke.rearm()
        self._churn.rearm()
        self._trail_churn.rearm()

    def demo_credentials(self) -> dict[str, str]:
        return dict(DEMO_CLIENT)

    # Routes -------------------------------------------------------------------------------------

    def api_routes(self) -> list[Route]:
        return [
            Route(TOKEN_PATH, self._token, methods=["POST"]),
            Route(COMPANY_LIST, self._data_call(self._company_list, "company"), methods=["GET"]),
            Route(COMPANY_INFO, self._data_call(self._company_info, "company"), methods=["GET"]),
            Route(
                OPPORTUNITY_LIST,
                self._data_call(self._opportunity_list, "opportunity"),
                methods=["GET"],
            ),
            Route(TRAIL_LIST, self._data_call(self._trail_list, "company"), methods=["GET"]),
        ]

    def control_routes(self) -> list[Route]:
        p = CONTROL_PREFIX
        routes = {
            "companies/update": self._update_companies,
            "companies/delete": self._delete_companies,
            "companies/create": self._create_companies,
            "opportunities/update": self._update_opportunities,
            "opportunities/delete": self._delete_opportunities,
            "follow_ups/create": self._create_follow_ups,
            "follow_ups/update": self._update_follow_ups,
            "follow_ups/delete": self._delete_follow_ups,
            "tokens/revoke": lambda body: {"revoked": self.tokens.revoke_all()},
        }
        return [Route(f"{p}/{path}", _control(fn), methods=["POST"]) for path, fn in routes.items()]

    # Token --------------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.calls[TOKEN_PATH] += 1
        fields = ("grant_type", "client_id", "client_secret", "scope")
        if not isinstance(body, dict) or not isinstance(body.get("grant_type"), str):
            return _oauth_error("invalid_request", 400)
        if body["grant_type"] != "client_credentials":
            return _oauth_error("unsupported_grant_type", 400)
        if not all(isinstance(body.get(f), str) and body[f] for f in fields):
            return _oauth_error("invalid_request", 400)
        clients = {DEMO_CLIENT["client_id"]: DEMO_CLIENT["client_secret"]}
        clients.update(self.knobs.extra.get("clients") or {})
        if clients.get(body["client_id"]) != body["client_secret"]:
            return _oauth_error("invalid_client", 401)
        scopes = frozenset(body["scope"].split())
        if not scopes <= KNOWN_SCOPES:
            return _oauth_error("invalid_scope", 400)
        lifetime = float(self.knobs.extra.get("token_ttl") or 28_800) / self.knobs.time_scale
        access_token = self.tokens.issue(body["client_id"], scopes, lifetime)
        return JSONResponse(
            {"token_type": "Bearer", "expires_in": _number(lifetime), "access_token": access_token}
        )

    # Data calls: authentication, rate limit, scope, forced errors, one-shot knobs -------------

    def _data_call(
        self, handler: Callable[[QueryParams], dict[str, Any]], module: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return self._serve(request, handler, module)

        return endpoint

    def _serve(
        self, request: Request, handler: Callable[[QueryParams], dict[str, Any]], module: str
    ) -> Response:
        token = self.tokens.check(request.headers.get("authorization"))
        if token is None:
            return _oauth_error("access_denied", 401)
        wait = self._take_rate_token(token.client_id)
        if wait:
            request.state.api_code = 429
            return self.throttled_response(wait)
        path = request.url.path
        self.calls[path] += 1
        try:
            if module not in token.scopes:
                raise ApiError(403, f"no permission {module} scopes")
            self._raise_forced_error(path)
            data = handler(request.query_params)
        except ApiError as error:
            request.state.api_code = error.code
            response = self._envelope(error.code, error.message, {})
        else:
            response = self._envelope(
                int(self.knobs.extra.get("success_code", 200)), "success", data
            )
        if self._revoke.tick() is not None:
            self.tokens.revoke_all()
        if path == COMPANY_LIST and (churn := self._churn.tick()) is not None:
            self._apply_churn(churn)
        if path == TRAIL_LIST and (churn := self._trail_churn.tick()) is not None:
            self._apply_trail_churn(churn)
        return response

    def _take_rate_token(self, client_id: str) -> float:
        """0.0 when the call may go ahead, else the seconds until it could."""
        rate = float(self.knobs.extra.get("rate_per_second") or 0)
        if rate <= 0:
            return 0.0
        held = self._buckets.get(client_id)
        if held is None or held[0] != rate:
            capacity = max(1.0, rate)  # a rate below 1/s still lets one call through
            held = self._buckets[client_id] = (
                rate,
                TokenBucket(capacity, capacity / rate, self.knobs),
            )
        return held[1].take()

    def _raise_forced_error(self, path: str) -> None:
        spec = self.knobs.extra.get("force_error")
        if not spec or spec.get("path") != path:
            return
        times = int(spec.get("times", 1)) - 1
        self.knobs.extra["force_error"] = {**spec, "times": times} if times > 0 else None
        raise ApiError(int(spec["code"]), str(spec.get("message", "系统错误")))

    def _envelope(self, code: int, message: str, data: Any) -> JSONResponse:
        now = format_time(now_epoch())
        return JSONResponse({"code": code, "message": message, "now": now, "data": data})

    def throttled_response(self, retry_after: float) -> Response:
        self.throttled += 1
        # Whole seconds of unscaled time, then scaled: "1" normally, "0.2" at time_scale 5.
        scale = self.knobs.time_scale
        seconds = max(1, math.ceil(retry_after * scale - 1e-9)) / scale
        return JSONResponse(
            {"code": 429, "message": "请求过于频繁"},
            status_code=429,
            headers={"Retry-After": str(_number(seconds))},
        )

    def server_error_response(self) -> Response:
        return HTMLResponse(
            "<html><head><title>502 Bad Gateway</title></head><body>"
            "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
            status_code=502,
        )

    # Endpoints ----------------------------------------------------------------------------------

    def _company_list(self, params: QueryParams) -> dict[str, Any]:
        offset, count = _paging(params)
        query = CompanyQuery(
            removed=_int_param(params, "removed", 0, (0, 1)) == 1,
            start=_time_param(params, "start_time"),
            end=_time_param(params, "end_time"),
            time_type=_int_param(params, "time_type", 1, (1, 2)),
            pool=_int_param(params, "all", 1, (0, 1, 2)),
            group_id=_int_param(params, "group_id", 0, range(2**63)),
        )
        total, page = self.store.list_companies(query, offset, count)
        if not query.removed:
            self._last_listed = (query, offset + len(page))
        return {"list": [self._row(c) for c in page], "totalItem": total, "count": len(page)}

    def _company_info(self, params: QueryParams) -> dict[str, Any]:
        if not params.get("company_id"):
            raise ApiError(400, "company_id is required")
        company = self.store.companies.get(_int_param(params, "company_id", 0, _ANY_POSITIVE))
        if company is None:
            raise ApiError(404, "Not Found Resource")
        return self._info(company)

    def _opportunity_list(self, params: QueryParams) -> dict[str, Any]:
        offset, count = _paging(params)
        start, end = _time_param(params, "start_time"), _time_param(params, "end_time")
        total, page = self.store.list_opportunities(start, end, offset, count)
        rows = [self._opportunity(o) for o in page]
        return {"list": rows, "totalItem": total, "count": len(page)}

    def _trail_list(self, params: QueryParams) -> dict[str, Any]:
        offset, count = _paging(params)
        ids = {
            name: _int_param(params, name, 0, range(2**63))
            for name in ("company_id", "opportunity_id", "lead_id")
        }
        if sum(1 for value in ids.values() if value) > 1:
            raise ApiError(400, "give one of company_id, opportunity_id, lead_id")
        query = TrailQuery(
            start=_time_param(params, "start_time"), end=_time_param(params, "end_time"), **ids
        )
        total, page = self.store.list_follow_ups(query, offset, count)
        self._last_trails = (query, offset + len(page))
        return {"list": [self._follow_up(f) for f in page], "totalItem": total}

    # Rendering, in the shapes the knob `shape_variety` asks for -------------------------------

    def _variety(self) -> tuple[float, float | None]:
        share = self.knobs.extra.get("unconvertible_share")
        return float(self.knobs.extra.get("shape_variety") or 0), share

    def _row(self, company: Company) -> dict[str, Any]:
        row, (variety, _) = company_row(company), self._variety()
        return shapes.company_row(row, variety) if variety else row

    def _info(self, company: Company) -> dict[str, Any]:
        info, (variety, share) = company_info(company), self._variety()
        return shapes.company_info(info, variety, share) if variety else info

    def _opportunity(self, opportunity: Opportunity) -> dict[str, Any]:
        row, (variety, share) = opportunity_row(opportunity), self._variety()
        return shapes.opportunity_row(row, variety, share) if variety else row

    def _follow_up(self, follow_up: FollowUp) -> dict[str, Any]:
        row, (variety, share) = follow_up_row(follow_up), self._variety()
        return shapes.follow_up_row(row, variety, share) if variety else row

    # Changes: control routes and the churn knob ------------------------------------------------

    def _update_companies(self, body: dict[str, Any]) -> dict[str, Any]:
        """Edit companies as a salesperson would; optionally also `rename` them (true),
        remove `drop_contacts` contacts from each, set their `homepage`, or plan their
        `next_follow_up_time` (a time, or "" to clear it)."""
        now = now_epoch()
        changed = self._chosen_companies(body)
        planned = body.get("next_follow_up_time")
        if planned is not None and not isinstance(planned, str):
            raise ValueError('"next_follow_up_time" is a YYYY-MM-DD HH:MM:SS time or ""')
        next_follow_up = parse_time(planned) if planned else 0
        dropped = []
        for company in changed:
            self.generator.edit_company(company, now)
            if planned is not None:
                company.next_follow_up_time = next_follow_up
            if body.get("rename"):
                company.name = f"{company.name} (renamed)"
            if "homepage" in body:
                company.homepage = str(body["homepage"])
            for _ in range(min(int(body.get("drop_contacts") or 0), len(company.customers))):
                dropped.append(company.customers.pop().customer_id)
            self.store.touch_company(company, now)
        return {"company_ids": [c.company_id for c in changed], "dropped_contacts": dropped}

    def _delete_companies(self, body: dict[str, Any]) -> dict[str, Any]:
        now = now_epoch()
        deleted = self._chosen_companies(body)
        for company in deleted:
            self.store.remove_company(company, now)
        return {"company_ids": [c.company_id for c in deleted]}

    def _create_companies(self, body: dict[str, Any]) -> dict[str, Any]:
        now = now_epoch()
        created = [self.generator.company(now, now, now) for _ in range(_count(body))]
        for company in created:
            self.store.add_company(company)
        return {"company_ids": [c.company_id for c in created]}

    def _update_opportunities(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = self._chosen_opportunities(body)
        now = now_epoch()
        for opportunity_id in ids:
            opportunity = self.store.opportunities[opportunity_id]
            self.generator.edit_opportunity(opportunity)
            self.store.touch_opportunity(opportunity, now)
        return {"opportunity_ids": ids}

    def _delete_opportunities(self, body: dict[str, Any]) -> dict[str, Any]:
        listed = self.knobs.extra.get("opportunity_deletes") == "listed"
        ids = self._chosen_opportunities(body)
        now = now_epoch()
        for opportunity_id in ids:
            self.store.remove_opportunity(self.store.opportunities[opportunity_id], now, listed)
        return {"opportunity_ids": ids}

    def _chosen_opportunities(self, body: dict[str, Any]) -> list[int]:
        """The live opportunities named by `opportunity_ids`, or `count` random ones."""
        live = {i: o for i, o in self.store.opportunities.items() if not o.deleted}
        if "opportunity_ids" in body:
            return _known_ids(body["opportunity_ids"], live, "live opportunity")
        return self.generator.rng.sample(list(live), min(_count(body), len(live)))

    def _create_follow_ups(self, body: dict[str, Any]) -> dict[str, Any]:
        """Follow-ups of the named (or `count` random live) companies, each written now but
        happened up to `backdate_minutes` ago."""
        now = now_epoch()
        backdate = body.get("backdate_minutes", 0)
        if not isinstance(backdate, int) or backdate < 0:
            raise ValueError('"backdate_minutes" is an integer >= 0')
        if "company_ids" in body:
            ids = _known_ids(body["company_ids"], self.store.companies, "live company")
            owners = [self.store.companies[i] for i in ids]
        else:
            owners = self._random_companies(_count(body))
        created = []
        for company in owners:
            at = now - self.generator.rng.randint(0, backdate * 60)
            theirs = [
                o for o in self.store.opportunities.values() if o.company_id == company.company_id
            ]
            follow_up = self.generator.follow_up(company, theirs, at, now)
            self.store.add_follow_up(follow_up)
            created.append(follow_up.trail_id)
        return {"trail_ids": created}

    def _update_follow_ups(self, body: dict[str, Any]) -> dict[str, Any]:
        now = now_epoch()
        chosen = self._chosen_follow_ups(body)
        for follow_up in chosen:
            self.generator.edit_follow_up(follow_up)
            follow_up.update_time = now
        return {"trail_ids": [f.trail_id for f in chosen]}

    def _delete_follow_ups(self, body: dict[str, Any]) -> dict[str, Any]:
        now = now_epoch()
        chosen = self._chosen_follow_ups(body)
        for follow_up in chosen:
            follow_up.deleted = True
            follow_up.update_time = now
        return {"trail_ids": [f.trail_id for f in chosen]}

    def _chosen_follow_ups(
        self, body: dict[str, Any], prefer: list[int] | None = None
    ) -> list[FollowUp]:
        """Live follow-ups named by `trail_ids`, or `count` random ones (from `prefer` first)."""
        live = {i: f for i, f in self.store.follow_ups.items() if not f.deleted}
        if "trail_ids" in body:
            ids = _known_ids(body["trail_ids"], live, "live follow-up")
        else:
            count, rng = _count(body), self.generator.rng
            preferred = [i for i in prefer or [] if i in live]
            ids = rng.sample(preferred, min(count, len(preferred)))
            taken = set(ids)
            others = [i for i in live if i not in taken]
            ids += rng.sample(others, min(count - len(ids), len(others)))
        return [live[i] for i in ids]

    def _apply_trail_churn(self, spec: dict[str, Any]) -> None:
        served: list[int] = []
        if self._last_trails is not None:  # rows a paging client has already read
            query, rows = self._last_trails
            served = [f.trail_id for f in self.store.list_follow_ups(query, 0, rows)[1]]
        updated = self._update_follow_ups(
            {
                "trail_ids": [
                    f.trail_id
                    for f in self._chosen_follow_ups({"count": int(spec.get("update", 0))}, served)
                ]
            }
        )["trail_ids"]
        rest = [i for i in served if i not in set(updated)]
        doomed = self._chosen_follow_ups({"count": int(spec.get("delete", 0))}, rest)
        self._delete_follow_ups({"trail_ids": [f.trail_id for f in doomed]})
        self._create_follow_ups(
            {
                "count": int(spec.get("create", 0)),
                "backdate_minutes": int(spec.get("backdate_minutes", 0)),
            }
        )

    def _chosen_companies(self, body: dict[str, Any]) -> list[Company]:
        """The companies named by `company_ids`, or `count` random live ones."""
        if "company_ids" in body:
            ids = _known_ids(body["company_ids"], self.store.companies, "live company")
            return [self.store.companies[i] for i in ids]
        return self._random_companies(_count(body))

    def _random_companies(self, count: int, prefer: list[int] | None = None) -> list[Company]:
        """`count` distinct live companies, drawn from `prefer` first."""
        rng = self.generator.rng
        prefer = prefer or []
        ids = rng.sample(prefer, min(count, len(prefer)))
        if len(ids) < count:
            taken = set(ids)
            others = [i for i in self.store.companies if i not in taken]
            ids += rng.sample(others, min(count - len(ids), len(others)))
        return [self.store.companies[i] for i in ids]

    def _apply_churn(self, spec: dict[str, Any]) -> None:
        now = now_epoch()
        updates, deletes = int(spec.get("update", 0)), int(spec.get("delete", 0))
        served: list[int] = []
        if self._last_listed is not None:  # rows a paging client has already read
            query, rows = self._last_listed
            served = [c.company_id for c in self.store.list_companies(query, 0, rows)[1]]
        chosen = self._random_companies(updates + deletes, served)
        for company in chosen[:updates]:
            self.generator.edit_company(company, now)
            self.store.touch_company(company, now)
        for company in chosen[updates:]:
            self.store.remove_company(company, now)
        self._create_companies({"count": int(spec.get("create", 0))})

    # Inspection ---------------------------------------------------------------------------------

    def records(self) -> dict[str, Any]:
        """Live companies as company/info records, deleted ones as list rows, opportunities as
        listed (deleted ones the list no longer shows apart); newest first, as served."""
        with _gc_paused():
            return {
                "companies": [self._info(c) for c in self.store.live_companies()],
                "removed": [self._row(c) for c in self.store.removed_companies()],
                "opportunities": [self._opportunity(o) for o in self.store.all_opportunities()],
                "removed_opportunities": [
                    opportunity_row(o) for o in self.store.removed_opportunities.values()
                ],
                "follow_ups": [self._follow_up(f) for f in self.store.all_follow_ups()],
            }

    def stats(self) -> dict[str, Any]:
        """`calls` counts the calls that passed authentication and the rate limit, per path."""
        return {
            "tokens_issued": self.tokens.issued,
            "calls": dict(self.calls),
            "throttled": self.throttled,
            "companies": len(self.store.companies),
            "removed": len(self.store.removed),
            "opportunities": len(self.store.opportunities),
            "follow_ups": len(self.store.follow_ups),
        }


# Helpers ------------------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building 100,000 records allocates millions of objects and frees none: collecting
    meanwhile is wasted work that grows with the heap (generation: 5.6 s with, 3.4 s without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _oauth_error(error: str, status: int) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


def _number(seconds: float) -> int | float:
    """An int when whole, else rounded to milliseconds."""
    return int(seconds) if float(seconds).is_integer() else round(seconds, 3)


def _int_param(params: QueryParams, name: str, default: int, allowed: Container[int]) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if value not in allowed:
        raise ApiError(400, f"{name} out of range: {value}")
    return value


def _time_param(params: QueryParams, name: str) -> int | None:
    raw = params.get(name, "")
    if raw == "":
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be YYYY-MM-DD HH:MM:SS") from None


def _paging(params: QueryParams) -> tuple[int, int]:
    """(offset, count) from the 1-based page number `start_index` and the page size `count`."""
    page = _int_param(params, "start_index", 1, _ANY_POSITIVE)
    size = _int_param(params, "count", DEFAULT_PAGE_SIZE, range(1, MAX_PAGE_SIZE + 1))
    return (page - 1) * size, size


def _count(body: dict[str, Any]) -> int:
    count = body.get("count")
    if not isinstance(count, int) or count < 0:
        raise ValueError('give "count" (an integer >= 0) or a list of ids')
    return count


def _known_ids(ids: Any, table: dict[int, Any], kind: str) -> list[int]:
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ValueError("ids must be a list of integers")
    unknown = [i for i in ids if i not in table]
    if unknown:
        raise ValueError(f"not a {kind} id: {unknown}")
    return list(dict.fromkeys(ids))


def _control(action: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    """A control route: JSON object in, JSON out, 400 `{"error": …}` on a bad body."""

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            return JSONResponse(action(body))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint
