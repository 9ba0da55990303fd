"""`TwentySandbox`: the routes, authentication and inspection hooks of the Twenty emulator."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_sandbox.runtime import CONTROL_PREFIX, Knobs, Sandbox
from crm_sandbox.twenty.errors import ApiError, bad_request, error_response, show
from crm_sandbox.twenty.limits import (
    DEFAULTS,
    RateLimiter,
    Verdict,
    limit_headers,
    throttled_response,
)
from crm_sandbox.twenty.schema import ObjectType, field_to_api, object_to_api
from crm_sandbox.twenty.store import Store
from crm_sandbox.twenty.workspace import Workspace

DEMO_KEY = "twenty-demo-key"
DEFAULT_LIMIT = 60  # rows per page when a client sends no `limit` (upstream default varies)
Handler = Callable[[Request], Awaitable[Response]]


class TwentySandbox(Sandbox):
    name = "twenty"

    def __init__(self, seed: int = 0, knobs: Knobs | None = None) -> None:
        super().__init__(seed, knobs)
        defaults = {
            **DEFAULTS,
            "api_keys": [DEMO_KEY],
            "metadata_writes": True,
            "junction_style": "plain",
        }
        for key, value in defaults.items():
            self.knobs.extra.setdefault(key, value)
        self.limiter = RateLimiter(self.knobs)
        self.reset()

    # Sandbox hooks ------------------------------------------------------------------------------

    def demo_credentials(self) -> dict[str, str]:
        return {"api_key": DEMO_KEY}

    def reset(self) -> None:
        """Empty workspace: standard metadata only, no records, fresh rate buckets."""
        # Faults replay from the seed, as in the other emulators: a test's faults do not
        # depend on which tests ran before it.
        self.rng = random.Random(self.seed)
        self._burst_left = 0
        self.workspace = Workspace(str(self.knobs.extra["junction_style"]))
        self.store = Store(self.workspace, random.Random(self.seed))
        self.limiter.clear()
        self.rejected_batches = 0
        self.throttled = 0

    def records(self) -> dict[str, Any]:
        return self.store.records()

    def stats(self) -> dict[str, Any]:
        return {
            **self.store.counts(),
            "rejected_batches": self.rejected_batches,
            "throttled": self.throttled,
        }

    def throttled_response(self, retry_after: float) -> Response:
        # Injected 429 bursts look like the per-minute bucket running dry.
        limit = int(self.knobs.extra["limit_per_minute"])
        return self._throttled(Verdict(limit, 60.0, 0, retry_after, retry_after))

    def server_error_response(self) -> Response:
        return error_response(503, "Service Unavailable (injected by the sandbox).")

    def api_routes(self) -> list[Route]:
        api = self._endpoint
        return [
            Route("/rest/metadata/objects", api(self._metadata_objects), methods=["GET"]),
            Route("/rest/metadata/objects/{id}", api(self._metadata_object), methods=["GET"]),
            Route("/rest/metadata/fields", api(self._metadata_fields), methods=["GET"]),
            Route(
                "/rest/metadata/fields",
                self._endpoint(self._create_field, throttled=False),
                methods=["POST"],
            ),
            Route("/rest/batch/{plural}", api(self._create_many), methods=["POST"]),
            Route("/rest/{plural}", api(self._find_many), methods=["GET"]),
            Route("/rest/{plural}", api(self._create_one), methods=["POST"]),
            Route("/rest/{plural}/{id}", api(self._find_one), methods=["GET"]),
            Route("/rest/{plural}/{id}", api(self._update_one), methods=["PATCH", "PUT"]),
            Route("/rest/{plural}/{id}", api(self._delete_one), methods=["DELETE"]),
            Route(
                "/rest/{path:path}",
                api(self._no_route),
                methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            ),
        ]

    def control_routes(self) -> list[Route]:
        return [
            Route(f"{CONTROL_PREFIX}/metadata/fields", self._add_field, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/metadata/objects", self._add_object, methods=["POST"]),
        ]

    # Authentication and rate limits -------------------------------------------------------------

    def _endpoint(self, handler: Handler, throttled: bool = True) -> Handler:
        """`handler` behind authentication and, for record calls, the rate limit.

        docs/api/twenty.md §8; metadata writes are not throttled like record calls (§6).
        """

        async def endpoint(request: Request) -> Response:
            try:
                api_key = self._authenticate(request)
            except ApiError as error:
                return error.response()
            verdict = self.limiter.take(api_key) if throttled else self.limiter.peek(api_key)
            if verdict.retry_after:
                return self._throttled(verdict)
            try:
                response = await handler(request)
            except ApiError as error:
                response = error.response()
            if self.knobs.extra["announce_limits"]:
                response.headers.update(limit_headers(verdict, self.knobs.time_scale))
            return response

        return endpoint

    def _authenticate(self, request: Request) -> str:
        """The caller's API key; 401 when it is missing, unknown or also in the query string."""
        accepted = self.knobs.extra["api_keys"]
        if any(value in accepted for value in request.query_params.values()):
            raise ApiError(401, "API keys go in the Authorization header, never in the URL.")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Missing authentication token: send 'Authorization: Bearer <key>'.")
        if token.strip() not in accepted:
            raise ApiError(401, "Token invalid.")  # never echo what was sent: it is a secret
        return token.strip()

    def _throttled(self, verdict: Verdict) -> Response:
        self.throttled += 1
        style = self.knobs.extra["rate_limit_style"]
        return throttled_response(verdict, style, self.knobs.time_scale)

    # Records ------------------------------------------------------------------------------------

    async def _create_many(self, request: Request) -> Response:
        try:
            body = await _json(request)
            if isinstance(body, list):
                request.state.batch_size = len(body)
            obj = self._object(request)
            rows = self.store.write_batch(obj, body, _upsert(request))
        except ApiError:
            self.rejected_batches += 1
            raise
        return JSONResponse({"data": {f"create{_cap(obj.plural)}": rows}}, status_code=201)

    async def _create_one(self, request: Request) -> Response:
        body = await _json(request)
        request.state.batch_size = 1
        obj = self._object(request)
        if not isinstance(body, dict):
            raise bad_request(f"The body must be one {obj.singular} record (a JSON object).")
        [row] = self.store.write_batch(obj, [body], _upsert(request))
        return JSONResponse({"data": {f"create{_cap(obj.singular)}": row}}, status_code=201)

    async def _find_many(self, request: Request) -> Response:
        obj = self._object(request)
        params = request.query_params
        rows, page_info, total = self.store.find(
            obj, params.get("filter"), _limit(params.get("limit")), params.get("starting_after")
        )
        return JSONResponse(
            {"data": {obj.plural: rows}, "pageInfo": page_info, "totalCount": total}
        )

    async def _find_one(self, request: Request) -> Response:
        obj = self._object(request)
        row = self.store.get(obj, request.path_params["id"])
        return JSONResponse({"data": {obj.singular: row}})

    async def _update_one(self, request: Request) -> Response:
        body = await _json(request)
        request.state.batch_size = 1
        obj = self._object(request)
        row = self.store.update(obj, request.path_params["id"], body)
        return JSONResponse({"data": {f"update{_cap(obj.singular)}": row}})

    async def _delete_one(self, request: Request) -> Response:
        obj = self._object(request)
        deleted = self.store.delete(obj, request.path_params["id"])
        return JSONResponse({"data": {f"delete{_cap(obj.singular)}": deleted}})

    async def _no_route(self, request: Request) -> Response:
        raise ApiError(404, f"Cannot {request.method} {request.url.path}")

    def _object(self, request: Request) -> ObjectType:
        plural = request.path_params["plural"]
        obj = self.workspace.by_plural(plural)
        if obj is None:
            singular = self.workspace.objects.get(plural)
            hint = f" Paths use the plural name: /rest/{singular.plural}." if singular else ""
            raise bad_request(f"Object '{plural}' not found.{hint}")
        return obj

    # Metadata -----------------------------------------------------------------------------------

    async def _metadata_objects(self, request: Request) -> Response:
        return _metadata_page("objects", self.workspace.to_api())

    async def _metadata_object(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        for obj in self.workspace.to_api():
            if obj["id"] == wanted:
                return JSONResponse({"data": {"object": obj}})
        raise ApiError(404, f"No object found with id {show(wanted)}.")

    async def _metadata_fields(self, request: Request) -> Response:
        fields = [f for obj in self.workspace.to_api() for f in obj["fields"]]
        return _metadata_page("fields", fields)

    async def _create_field(self, request: Request) -> Response:
        """`POST /rest/metadata/fields` (§6): a custom field on the object `objectMetadataId`
        names; 403 when the key may not change the data model (knob `metadata_writes`)."""
        if not self.knobs.extra["metadata_writes"]:
            raise ApiError(403, "This API key's role may not change the data model.")
        body = await _json(request)
        if not isinstance(body, dict):
            raise bad_request("The body must be a JSON object.")
        wanted = body.get("objectMetadataId")
        obj = next((o for o in self.workspace.objects.values() if o.id == wanted), None)
        if obj is None:
            raise bad_request(f"No object found with id {show(wanted)}.")
        definition = {k: v for k, v in body.items() if k != "objectMetadataId"}
        try:
            obj, new = self.workspace.new_field({**definition, "object": obj.singular})
            self.store.add_column(obj, new)
        except ValueError as error:
            raise bad_request(str(error)) from None
        self.workspace.add_field(obj, new)
        created = field_to_api(obj, new, self.workspace.objects)
        return JSONResponse({"data": {"createOneField": created}}, status_code=201)

    async def _add_field(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            obj, new = self.workspace.new_field(body)
            self.store.add_column(obj, new)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        self.workspace.add_field(obj, new)
        return JSONResponse(field_to_api(obj, new, self.workspace.objects), status_code=201)

    async def _add_object(self, request: Request) -> Response:
        try:
            obj = self.workspace.add_object(json.loads(await request.body()))
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(object_to_api(obj, self.workspace.objects), status_code=201)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise bad_request("The request body must be valid JSON.") from None


def _upsert(request: Request) -> bool:
    raw = request.query_params.get("upsert", "false")
    if raw.lower() not in ("true", "false"):
        raise bad_request(f"Invalid upsert {show(raw)}: expected true or false.")
    return raw.lower() == "true"


def _limit(raw: str | None) -> int:
    """Rows per page; more than 200 is clamped by the store, not refused (§3)."""
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit():
        raise bad_request(f"Invalid limit {show(raw)}: expected a whole number, at most 200.")
    return int(raw)


def _cap(name: str) -> str:
    """`companies` → `Companies`, as in `createCompanies` (camelCase kept)."""
    return name[:1].upper() + name[1:]


def _metadata_page(kind: str, items: list[dict[str, Any]]) -> JSONResponse:
    page_info = {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": items[0]["id"] if items else None,
        "endCursor": items[-1]["id"] if items else None,
    }
    return JSONResponse({"data": {kind: items}, "pageInfo": page_info, "totalCount": len(items)})
