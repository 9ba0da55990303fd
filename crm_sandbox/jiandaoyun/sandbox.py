"""The Jiandaoyun (简道云) Open API v5 emulator: forms, rows, batch writes, rate limits.

Implements the contract of docs/api/jiandaoyun.md: every call is `POST /api/v5/<path>` with a
JSON body and `Authorization: Bearer <API key>`; success is HTTP 200 with the payload at the top
level, errors HTTP 400 `{"code": N, "msg": "…"}`. Value checks are in values.py, filters in
query.py, rate limits in limits.py, form definitions in forms.py.

Decisions where the contract is silent:

- Checks run in this order: concurrency (HTTP 429), API key (8301 missing or unknown, 17018
  disabled), company rate (8303), endpoint rate (8304), errors queued by `/_sandbox/fail_next`,
  form busy (4012, writes only), then the body. A refused call changes no data (a call refused
  with 8304 has still used its share of the company budget).
- A body that is not a JSON object, or a parameter of the wrong type or range (`limit` outside
  1..100, `data_list` empty or holding a non-object, a `data_id` not a string, …) → 17017.
  `app_id` unknown → 2004, then key not allowed for the app → 8302, then `entry_id` unknown →
  3000; `data_creator` not a member (values.MEMBERS) → 1010; update/delete/get of a missing row →
  4001. An invalid filter, including `in`/`nin` over 200 values → 4815.
- `transaction_id` must be a canonical UUID (8-4-4-4-12 hex); anything else → 17025. A
  transaction is remembered for `transaction_ttl` seconds (time-scaled, default 1 h, as TR says);
  afterwards the same id starts a new batch. An id already used for another form → 17026.
  Rows are matched by their position in `data_list`. `data/create` with a `transaction_id`
  follows the same rule as a one-row batch: a re-send answers the row created the first time.
- `data/create` and `data/update` answer `{"data": <row>}`, `data/delete`
  `{"status": "success"}`, `data/get` `{"data": <row>}`. `batch_update` (one `data` applied to
  every `data_ids` row, ≤ 100 else 17023, a subform in `data` → 17032) and `batch_delete`
  (≤ 100 else 17033) answer `{"status": "success", "success_count": n}`; unknown ids are skipped.
- `data/list`: `limit` defaults to 10; `fields` absent or empty = every field, `_id` always.
- `app/list` and `app/entry/list` (`limit` 1..100, default 100, `skip` ≥ 0) list what the key may
  see; an app's name is its id.
- The company directory (docs/api/jiandaoyun.md §10, directory.py): `corp/department/list` and
  `corp/department/user/list` take `dept_no` (unknown or not a number → 17017) and `has_child`,
  answer what is under that department, unpaged, and share the `directory_rate` (10/s each);
  `corp/user/get` takes `username` (unknown → 1010) and counts as a read.
- HTTP 429 (more than `max_concurrent` calls in flight, counting the one being answered and
  calls still in their injected latency) has the body `{"msg": "…"}`, without a code.
- Injected server errors (`error_rate`) answer HTTP 502 with a gateway's HTML page.
- 8303 and 8304 carry `Retry-After`: the contract's "wait at least 1 s", divided by the time
  scale, so it may be fractional ("0.2" at time_scale 5). The real API is not known to send it.
- Time scaling (`knobs.time_scale`, read at each call) divides the 1-second rate windows, that
  Retry-After and `transaction_ttl`.

Knobs in `knobs.extra` (see DEFAULT_EXTRA): `api_keys` (a list of accepted keys, or a map of key
→ list of app ids it may use, null = all), `disabled_api_keys` (→ 17018), `batch_rate`,
`single_rate`, `read_rate`, `directory_rate` (per endpoint, calls/s), `company_rate` (all calls,
calls/s), `max_concurrent`, `busy_rate` (share of writes answered 4012), `partial_failure_rate`
(share of the rows of a batch not yet created that fail on each attempt; seeded),
`transaction_ttl`.
Rates and `max_concurrent` of null or 0 mean no limit.

Control routes: `POST /_sandbox/forms` `{"app_id", "entry_id", "name", "widgets"}` adds or
replaces a form (its rows stay; they are keyed by widget id); `POST /_sandbox/fail_next`
`{"code", "msg"?, "times"?: 1, "endpoint"?: "batch_create", "status"?: 400, "headers"?: {}}`
answers the next calls (of that endpoint, or of any) with that error, e.g. 9007 or 17027, and
those headers (say a `Retry-After` of an hour). `reset()` drops every
row, transaction, counter and queued error, refills the rate buckets and restores the forms of
start-up.
"""

from __future__ import annotations

import json
import random
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crm_sandbox.jiandaoyun import directory, params
from crm_sandbox.jiandaoyun.forms import Form, Forms, load_forms, parse_form
from crm_sandbox.jiandaoyun.limits import DEFAULT_RATES, RATE_LIMIT_ENDPOINT, RateLimits
from crm_sandbox.jiandaoyun.params import MAX_BATCH, ApiError, Body, bad_parameter
from crm_sandbox.jiandaoyun.query import FilterError, compile_filter
from crm_sandbox.jiandaoyun.store import Store, Transaction, TransactionConflict
from crm_sandbox.jiandaoyun.values import COMPANY_CREATOR, Issue, format_time
from crm_sandbox.runtime import CONTROL_PREFIX, Knobs, Sandbox

API_PREFIX = "/api/v5/"
DEMO_KEY = "jdy-demo-key"
DEFAULT_EXTRA: dict[str, Any] = {
    "api_keys": [DEMO_KEY],
    "disabled_api_keys": [],
    **DEFAULT_RATES,
    "max_concurrent": 20,
    "busy_rate": 0.0,
    "partial_failure_rate": 0.0,
    "transaction_ttl": 3600,
}
DEFAULT_LIST_LIMIT = 10
KEPT_ISSUES = 100  # stats keep the last this many blanked / ignored values
MESSAGES = {
    8303: "超出请求频率限制",
    8304: "接口请求频率超出限制",
    4012: "表单正在执行其他批量任务,请稍后重试",
}
BAD_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)


class JiandaoyunSandbox(Sandbox):
    name = "jiandaoyun"

    def __init__(
        self, seed: int = 0, knobs: Knobs | None = None, forms_file: Path | None = None
    ) -> None:
        super().__init__(seed, knobs)
        for name, default in DEFAULT_EXTRA.items():
            self.knobs.extra.setdefault(name, default)
        self.forms_file = forms_file
        self.endpoints: dict[str, tuple[str, Callable[[Request, Body], Body]]] = {
            "app/list": ("read", self._app_list),
            "app/entry/list": ("read", self._entry_list),
            "app/entry/widget/list": ("read", self._widget_list),
            "app/entry/data/list": ("read", self._data_list),
            "app/entry/data/get": ("read", self._data_get),
            "app/entry/data/create": ("single", self._data_create),
            "app/entry/data/update": ("single", self._data_update),
            "app/entry/data/delete": ("single", self._data_delete),
            "app/entry/data/batch_create": ("batch", self._batch_create),
            "app/entry/data/batch_update": ("batch", self._batch_update),
            "app/entry/data/batch_delete": ("batch", self._batch_delete),
            "corp/department/list": ("directory", self._department_list),
            "corp/department/user/list": ("directory", self._department_users),
            "corp/user/get": ("read", self._user_get),
        }
        self.reset()

    def reset(self) -> None:
        self.rng = random.Random(self.seed)  # the middleware's faults
        self.behaviour = random.Random(f"jiandaoyun-{self.seed}")  # busy, partial failures
        self.forms: Forms = load_forms(self.forms_file, _now())
        self.store = Store(self.seed)
        self.limits = RateLimits(self.knobs)
        self.forced: list[dict[str, Any]] = []
        self.blanked: deque[dict[str, Any]] = deque(maxlen=KEPT_ISSUES)
        self.ignored: deque[dict[str, Any]] = deque(maxlen=KEPT_ISSUES)
        self.counts: Counter[str] = Counter()

    def demo_credentials(self) -> dict[str, str]:
        return {"api_key": DEMO_KEY, "app_id": "demo_app", "entry_id": "demo_customers"}

    def throttled_response(self, retry_after: float) -> Response:
        return _rate_limited(RATE_LIMIT_ENDPOINT, retry_after).response()

    def server_error_response(self) -> Response:
        return HTMLResponse(BAD_GATEWAY, status_code=502)

    def records(self) -> dict[str, Any]:
        return {"forms": {f.key: list(self.store.rows(f)) for f in self.forms.all()}}

    def stats(self) -> dict[str, Any]:
        c = self.counts
        return {
            "blanked_values": c["blanked"],
            "blanked": list(self.blanked),
            "ignored_fields": c["ignored"],
            "ignored": list(self.ignored),
            "transactions": len(self.store.transactions),
            "rate_limited": {"8303": c["8303"], "8304": c["8304"], "429": c["429"]},
            "busy": c["4012"],
            "failed_rows": c["failed_rows"],
            "rows": {key: len(table.rows) for key, table in self.store.tables.items()},
        }

    # Routes -------------------------------------------------------------------------------------

    def api_routes(self) -> list[Route]:
        return [
            Route(API_PREFIX + path, self._endpoint(path, group, handler), methods=["POST"])
            for path, (group, handler) in self.endpoints.items()
        ]

    def control_routes(self) -> list[Route]:
        async def add_form(request: Request) -> Response:
            try:
                body = json.loads(await request.body())
                if not isinstance(body, dict):
                    raise ValueError("expected {app_id, entry_id, name, widgets}")
                fields = (body.get(k) for k in ("app_id", "entry_id", "name", "widgets"))
                form = parse_form(*fields, modified=_now())
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            self.forms.add(form)
            return JSONResponse({"form": form.key, "widgets": len(form.widgets)})

        async def fail_next(request: Request) -> Response:
            try:
                body = json.loads(await request.body())
            except ValueError:
                body = None
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("code"), int)
                or not isinstance(body.get("times", 1), int)
                or not isinstance(body.get("status", 400), int)
                or not isinstance(body.get("endpoint", ""), str | None)
                or not isinstance(body.get("headers", {}), dict)
            ):
                usage = "expected {code, msg?, times?, endpoint?, status?, headers?}"
                return JSONResponse({"error": usage}, status_code=400)
            code = body["code"]
            self.forced.append(
                {
                    "code": code,
                    "msg": str(body.get("msg", f"injected error {code}")),
                    "times": body.get("times", 1),
                    "endpoint": body.get("endpoint"),
                    "status": body.get("status", 400),
                    "headers": {str(k): str(v) for k, v in body.get("headers", {}).items()},
                }
            )
            return JSONResponse({"queued": len(self.forced)})

        return [
            Route(f"{CONTROL_PREFIX}/forms", add_form, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/fail_next", fail_next, methods=["POST"]),
        ]

    def _endpoint(
        self, path: str, group: str, handler: Callable[[Request, Body], Body]
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            # From here on nothing awaits: every check and change happens in one step.
            try:
                key = self._admit(request, path, group)
                body = params.json_object(raw)
                request.state.api_key = key
                payload = handler(request, body)
            except ApiError as error:
                request.state.api_code = error.code
                return error.response()
            return JSONResponse(payload)

        return endpoint

    def _admit(self, request: Request, path: str, group: str) -> str:
        """Concurrency, key, rate limits, queued and busy errors; return the API key."""
        extra = self.knobs.extra
        if extra.get("max_concurrent") and self.in_flight > int(extra["max_concurrent"]):
            self.counts["429"] += 1
            raise ApiError(None, "too many concurrent requests", status=429)
        key = self._api_key(request)
        code = self.limits.check(path, group)
        if code is not None:
            self.counts[str(code)] += 1
            raise _rate_limited(code, 1.0 / self.knobs.time_scale)
        for forced in self.forced:
            if forced["endpoint"] is None or path.endswith(forced["endpoint"]):
                forced["times"] -= 1
                if forced["times"] <= 0:
                    self.forced.remove(forced)
                raise ApiError(
                    forced["code"], forced["msg"], forced["status"], forced["headers"] or None
                )
        busy = float(extra.get("busy_rate") or 0)
        if group != "read" and busy and self.behaviour.random() < busy:
            self.counts["4012"] += 1
            raise ApiError(4012, MESSAGES[4012])
        return key

    def _api_key(self, request: Request) -> str:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key not in (self.knobs.extra.get("api_keys") or []):
            raise ApiError(8301, "API key authentication failed (missing or unknown key)")
        if key in (self.knobs.extra.get("disabled_api_keys") or []):
            raise ApiError(17018, "API key is invalid or disabled")
        return key

    def _may_use(self, key: str, app_id: str) -> bool:
        keys = self.knobs.extra.get("api_keys")
        apps = keys.get(key) if isinstance(keys, dict) else None
        return apps is None or app_id in apps

    def _app(self, request: Request, app_id: Any) -> dict[str, Form]:
        """The forms of an app the key may use."""
        if not isinstance(app_id, str):
            raise bad_parameter("app_id must be a string")
        if app_id not in self.forms.apps:
            raise ApiError(2004, f"app {app_id} does not exist")
        if not self._may_use(request.state.api_key, app_id):
            raise ApiError(8302, f"API key has no permission for app {app_id}")
        return self.forms.apps[app_id]

    def _form(self, request: Request, body: Body) -> Form:
        forms = self._app(request, body.get("app_id"))
        entry_id = body.get("entry_id")
        if not isinstance(entry_id, str):
            raise bad_parameter("entry_id must be a string")
        if entry_id not in forms:
            raise ApiError(3000, f"form {entry_id} does not exist")
        return forms[entry_id]

    def _record(self, form: Form, issues: list[Issue]) -> None:
        for issue in issues:
            kind = "ignored" if issue.ignored else "blanked"
            self.counts[kind] += 1
            entry = {"form": form.key, "field": issue.field, "value": issue.value}
            (self.ignored if issue.ignored else self.blanked).append(
                entry | {"reason": issue.reason}
            )

    # Apps and forms -----------------------------------------------------------------------------

    def _app_list(self, request: Request, body: Body) -> Body:
        limit, skip = params.limit(body, 100), params.skip(body)
        apps = [a for a in self.forms.apps if self._may_use(request.state.api_key, a)]
        return {"apps": [{"name": a, "app_id": a} for a in apps[skip : skip + limit]]}

    def _entry_list(self, request: Request, body: Body) -> Body:
        forms = list(self._app(request, body.get("app_id")).values())
        limit, skip = params.limit(body, 100), params.skip(body)
        return {
            "forms": [
                {"name": f.name, "app_id": f.app_id, "entry_id": f.entry_id}
                for f in forms[skip : skip + limit]
            ]
        }

    def _widget_list(self, request: Request, body: Body) -> Body:
        return self._form(request, body).widget_list()

    # The company directory -----------------------------------------------------------------------

    def _department_list(self, request: Request, body: Body) -> Body:
        dept_no, recursive = params.department(body)
        return {
            "departments": [
                directory.listed_department(n) for n in directory.under(dept_no, recursive)
            ]
        }

    def _department_users(self, request: Request, body: Body) -> Body:
        dept_no, recursive = params.department(body)
        departments = {dept_no, *(directory.under(dept_no, True) if recursive else ())}
        return {"users": [directory.listed_member(u) for u in directory.members_in(departments)]}

    def _user_get(self, request: Request, body: Body) -> Body:
        username = body.get("username")
        if not isinstance(username, str) or username not in directory.MEMBERS:
            raise ApiError(1010, f"member {username!r} does not exist")
        return {"user": directory.listed_member(username)}

    # Reads --------------------------------------------------------------------------------------

    def _data_list(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        limit = params.limit(body, DEFAULT_LIST_LIMIT)
        cursor = body.get("data_id")
        if cursor is not None and not isinstance(cursor, str):
            raise bad_parameter("data_id must be a string")
        fields = body.get("fields")
        if fields is not None and (
            not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
        ):
            raise bad_parameter("fields must be a list of field names")
        try:
            matches = compile_filter(body.get("filter"), form.widgets)
        except FilterError as exc:
            raise ApiError(4815, f"invalid filter: {exc}") from exc
        rows = []
        for row in self.store.rows(form, cursor):
            if matches(row):
                rows.append(row if not fields else _pick(row, fields))
                if len(rows) == limit:
                    break
        return {"data": rows}

    def _data_get(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        row = self.store.table(form).rows.get(params.data_id(body))
        if row is None:
            raise ApiError(4001, "data does not exist")
        return {"data": self.store.read(form, row)}

    # Single-row writes --------------------------------------------------------------------------

    def _data_create(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        data = params.data(body)
        creator = params.creator(body)
        params.flags(body)
        transaction_id = params.transaction_id(body)
        request.state.batch_size = 1
        transaction = self._transaction(transaction_id, form)
        created, _, issues = self.store.create_batch(
            form, [data], creator, transaction, lambda: False
        )
        self._record(form, issues)
        # Nothing created: a re-send of a create that succeeded under this transaction_id.
        row_id = created[0] if created else transaction.created[0]
        row = self.store.table(form).rows.get(row_id)
        return {"data": self.store.read(form, row) if row else {"_id": row_id}}

    def _data_update(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        row_id, data = params.data_id(body), params.data(body)
        params.flags(body)
        params.transaction_id(body)
        request.state.batch_size = 1
        try:
            row, issues = self.store.update(form, row_id, data, COMPANY_CREATOR)
        except KeyError:
            raise ApiError(4001, "data does not exist") from None
        self._record(form, issues)
        return {"data": self.store.read(form, row)}

    def _data_delete(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        row_id = params.data_id(body)
        params.flags(body)
        request.state.batch_size = 1
        try:
            self.store.delete(form, row_id)
        except KeyError:
            raise ApiError(4001, "data does not exist") from None
        return {"status": "success"}

    # Batch writes -------------------------------------------------------------------------------

    def _batch_create(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        data_list = body.get("data_list")
        if not isinstance(data_list, list) or not data_list:
            raise bad_parameter("data_list must be a non-empty list")
        request.state.batch_size = len(data_list)
        if len(data_list) > MAX_BATCH:
            raise ApiError(17024, f"data_list holds {len(data_list)} rows, at most {MAX_BATCH}")
        if not all(isinstance(row, dict) for row in data_list):
            raise bad_parameter("every row of data_list must be an object")
        creator = params.creator(body)
        params.flags(body)
        transaction = self._transaction(params.transaction_id(body), form)
        rate = float(self.knobs.extra.get("partial_failure_rate") or 0)

        def fails() -> bool:
            failed = bool(rate) and self.behaviour.random() < rate
            self.counts["failed_rows"] += failed
            return failed

        created, count, issues = self.store.create_batch(
            form, data_list, creator, transaction, fails
        )
        self._record(form, issues)
        return {"status": "success", "success_count": count, "success_ids": created}

    def _batch_update(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        ids = params.data_ids(body, 17023)
        data = params.data(body)
        request.state.batch_size = len(ids)
        subforms = {w["name"] for w in form.widgets if w["type"] == "subform"}
        if subforms & set(data):
            raise ApiError(17032, "batch_update cannot write subform fields")
        params.transaction_id(body)
        rows = self.store.table(form).rows
        updated = 0
        for row_id in dict.fromkeys(ids):
            if row_id in rows:
                _, issues = self.store.update(form, row_id, data, COMPANY_CREATOR)
                self._record(form, issues)
                updated += 1
        return {"status": "success", "success_count": updated}

    def _batch_delete(self, request: Request, body: Body) -> Body:
        form = self._form(request, body)
        ids = params.data_ids(body, 17033)
        request.state.batch_size = len(ids)
        table = self.store.table(form)
        deleted = [row_id for row_id in dict.fromkeys(ids) if row_id in table.rows]
        for row_id in deleted:
            table.remove(row_id)
        return {"status": "success", "success_count": len(deleted)}

    def _transaction(self, transaction_id: str | None, form: Form) -> Transaction | None:
        if transaction_id is None:
            return None
        ttl = self.knobs.extra.get("transaction_ttl")
        scaled = float(ttl) / self.knobs.time_scale if ttl else None
        try:
            return self.store.transaction(transaction_id, form, scaled)
        except TransactionConflict as exc:
            raise ApiError(17026, str(exc)) from None


def _pick(row: Body, fields: list[str]) -> Body:
    return {"_id": row["_id"], **{f: row[f] for f in fields if f in row}}


def _rate_limited(code: int, retry_after: float) -> ApiError:
    headers = {"Retry-After": format(round(retry_after, 3), "g")}
    return ApiError(code, MESSAGES[code], headers=headers)


def _now() -> str:
    return format_time(datetime.now(UTC))
