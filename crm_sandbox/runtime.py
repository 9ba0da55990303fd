"""What every emulated API shares: knobs, fault injection, gates, the request log, rate buckets.

Each emulator is a Starlette app wrapped in `SandboxMiddleware`. The middleware adds latency,
injects faults (5xx, 429 bursts, dropped connections), holds calls at gates and logs every API
call; the control routes under `/_sandbox/` are never delayed, faulted, held or logged, and need
the control token when the sandbox was given one.

Gates make an interleaving exact instead of likely: `POST /_sandbox/gates` `{"path", "method"?,
"skip"?: 0, "count"?: 1, "stage"?: "before"|"after", "drop"?: false}` stops the calls whose path
contains `path` (and whose method is `method`), after letting `skip` of them through, for the
next `count` of them: "before" they are served, or "after" (served, the answer held back); with
`drop` an "after" call's answer is never sent (the connection closes, as `drop_rate` does).
`GET /_sandbox/gates` tells how many calls wait at each gate, `POST /_sandbox/gates/{id}/open`
lets them (and any later match) go, `DELETE /_sandbox/gates` opens and removes every gate (as
`reset` does).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import random
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_sandbox"
# Required on the control routes when the sandbox serves beyond loopback (`crm-sandbox serve`).
CONTROL_TOKEN_HEADER = "X-Sandbox-Token"


@dataclass
class Knobs:
    """Behaviour switches, changeable at run time through `POST /_sandbox/knobs`."""

    latency: float = 0.0  # seconds added to every API call
    latency_jitter: float = 0.0  # plus uniform(0, jitter) seconds
    error_rate: float = 0.0  # probability that a call answers a 5xx without being processed
    drop_rate: float = (
        0.0  # probability that a processed call's response is lost (connection closed)
    )
    burst_429_rate: float = 0.0  # probability that a call starts a burst of throttled answers
    burst_429_length: int = 5  # calls answered "throttled" in one burst
    time_scale: float = 1.0  # rate-limit windows, Retry-After and token lifetimes divided by this
    spike_rate: float = 0.0  # probability of a latency spike
    spike_latency: float = 5.0  # seconds of one spike
    extra: dict[str, Any] = field(default_factory=dict)  # emulator-specific knobs

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}; known: {sorted(names)}")
        for name, value in changes.items():
            if name == "extra":
                self.extra.update(value)
            else:
                setattr(self, name, type(getattr(self, name))(value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoggedRequest:
    at: float  # wall-clock seconds (time.time()) when the call arrived
    method: str
    path: str
    status: int
    duration_ms: float
    batch_size: int | None = None  # records/rows in a write body, when the API has batches
    fault: str | None = None  # "5xx", "429-burst", "dropped", "spike" when injected
    code: int | None = None  # the API's own error code, when it has one
    query: str = ""  # the query string, decoded (filters of find calls)


@dataclass
class Gate:
    """Calls stopped on their way in ("before") or out ("after"), until the gate opens."""

    id: int
    path: str
    method: str | None = None
    skip: int = 0  # matching calls let through before the gate closes
    count: int = 1  # matching calls stopped after those
    stage: str = "before"
    drop: bool = False  # "after" only: the answer is dropped, not held
    matched: int = 0  # matching calls seen
    waiting: int = 0  # calls waiting at the gate now
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def catches(self, method: str, path: str) -> bool:
        """Whether this call stops here (each matching call is counted, caught or not)."""
        if self.path not in path or (self.method and self.method.upper() != method):
            return False
        self.matched += 1
        return self.skip < self.matched <= self.skip + self.count and not self.opened.is_set()

    async def wait(self) -> None:
        self.waiting += 1
        try:
            await self.opened.wait()
        finally:
            self.waiting -= 1

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "method": self.method,
            "skip": self.skip,
            "count": self.count,
            "stage": self.stage,
            "drop": self.drop,
            "matched": self.matched,
            "waiting": self.waiting,
            "open": self.opened.is_set(),
        }


class TokenBucket:
    """A continuously refilled bucket: `capacity` tokens per `period` seconds (time-scaled)."""

    def __init__(self, capacity: float, period: float, knobs: Knobs) -> None:
        self.capacity = capacity
        self.period = period
        self.knobs = knobs
        self.tokens = float(capacity)
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        rate = self.capacity / (self.period / self.knobs.time_scale)
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def take(self) -> float:
        """Take one token; return 0.0 on success, else the seconds until one is available."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        rate = self.capacity / (self.period / self.knobs.time_scale)
        return (1 - self.tokens) / rate

    def remaining(self) -> int:
        self._refill()
        return int(self.tokens)


class Sandbox:
    """State every emulator has: knobs, a request log and a random source for faults."""

    name = "sandbox"

    def __init__(self, seed: int = 0, knobs: Knobs | None = None) -> None:
        self.seed = seed
        self.knobs = knobs or Knobs()
        self.rng = random.Random(seed)
        self.requests: list[LoggedRequest] = []
        self._burst_left = 0
        self.in_flight = 0  # API calls being served right now (for concurrency limits)
        self.gates: list[Gate] = []
        self._gate_ids = itertools.count(1)

    # Hooks an emulator overrides ------------------------------------------------------------
    def api_routes(self) -> list[Route]:
        """The emulated API's own routes."""
        raise NotImplementedError

    def demo_credentials(self) -> dict[str, str]:
        """Credentials the sandbox accepts out of the box (printed by `crm-sandbox serve`)."""
        return {}

    def throttled_response(self, retry_after: float) -> Response:
        """The API's own answer when it is over its rate limit."""
        return JSONResponse({"error": "rate limited"}, status_code=429)

    def server_error_response(self) -> Response:
        return JSONResponse({"error": "injected server error"}, status_code=503)

    def records(self) -> dict[str, Any]:
        """Everything stored, for tests and benchmarks (`GET /_sandbox/records`)."""
        return {}

    def stats(self) -> dict[str, Any]:
        """Emulator-specific counters (`GET /_sandbox/stats`)."""
        return {}

    def reset(self) -> None:
        """Drop everything stored (`POST /_sandbox/reset`)."""

    def control_routes(self) -> list[Route]:
        """Emulator-specific routes under /_sandbox/ (mutations, revocations…)."""
        return []

    # Fault decisions, used by the middleware ---------------------------------------------------
    def pick_fault(self) -> str | None:
        k = self.knobs
        if self._burst_left > 0:
            self._burst_left -= 1
            return "429-burst"
        if k.burst_429_rate and self.rng.random() < k.burst_429_rate:
            self._burst_left = max(0, k.burst_429_length - 1)
            return "429-burst"
        if k.error_rate and self.rng.random() < k.error_rate:
            return "5xx"
        return None

    def delay(self) -> tuple[float, bool]:
        k = self.knobs
        seconds = k.latency + (self.rng.uniform(0, k.latency_jitter) if k.latency_jitter else 0.0)
        spike = bool(k.spike_rate) and self.rng.random() < k.spike_rate
        if spike:
            seconds += k.spike_latency
        return seconds, spike

    def drop_response(self) -> bool:
        return bool(self.knobs.drop_rate) and self.rng.random() < self.knobs.drop_rate

    def gate_for(self, method: str, path: str) -> Gate | None:
        """The first gate that stops this call (before it is served, or after)."""
        caught = None
        for gate in self.gates:  # every gate counts the call, so each gate's `skip` holds
            if gate.catches(method, path) and caught is None:
                caught = gate
        return caught

    def add_gate(self, gate: Gate) -> Gate:
        gate.id = next(self._gate_ids)
        self.gates.append(gate)
        return gate

    def open_gates(self) -> None:
        for gate in self.gates:
            gate.opened.set()
        self.gates.clear()


def control_app_routes(sandbox: Sandbox) -> list[Route]:
    """The inspection and steering routes common to all emulators."""

    async def get_knobs(request: Request) -> Response:
        return JSONResponse(sandbox.knobs.as_dict())

    async def set_knobs(request: Request) -> Response:
        try:
            sandbox.knobs.update(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(sandbox.knobs.as_dict())

    async def get_requests(request: Request) -> Response:
        since = float(request.query_params.get("since", "0"))
        rows = [asdict(r) for r in sandbox.requests if r.at >= since]
        return JSONResponse({"requests": rows})

    async def clear_requests(request: Request) -> Response:
        sandbox.requests.clear()
        return JSONResponse({"cleared": True})

    async def get_records(request: Request) -> Response:
        return JSONResponse(sandbox.records())

    async def get_stats(request: Request) -> Response:
        return JSONResponse(sandbox.stats())

    async def reset(request: Request) -> Response:
        sandbox.open_gates()
        sandbox.reset()
        sandbox.requests.clear()
        return JSONResponse({"reset": True})

    async def add_gate(request: Request) -> Response:
        try:
            body = await request.json()
            gate = Gate(
                id=0,
                path=str(body["path"]),
                method=body.get("method"),
                skip=int(body.get("skip", 0)),
                count=int(body.get("count", 1)),
                stage=str(body.get("stage", "before")),
                drop=bool(body.get("drop", False)),
            )
            if gate.stage not in ("before", "after") or (gate.drop and gate.stage != "after"):
                raise ValueError("stage is 'before' or 'after'; drop goes with 'after'")
        except (ValueError, TypeError, KeyError) as exc:
            usage = "expected {path, method?, skip?, count?, stage?, drop?}"
            return JSONResponse({"error": f"{usage}: {exc}"}, status_code=400)
        return JSONResponse({"gate": sandbox.add_gate(gate).id})

    async def get_gates(request: Request) -> Response:
        return JSONResponse({"gates": [g.describe() for g in sandbox.gates]})

    async def open_gate(request: Request) -> Response:
        wanted = int(request.path_params["gate"])
        for gate in sandbox.gates:
            if gate.id == wanted:
                gate.opened.set()
                return JSONResponse(gate.describe())
        return JSONResponse({"error": f"no gate {wanted}"}, status_code=404)

    async def remove_gates(request: Request) -> Response:
        sandbox.open_gates()
        return JSONResponse({"removed": True})

    p = CONTROL_PREFIX
    return [
        Route(f"{p}/knobs", get_knobs, methods=["GET"]),
        Route(f"{p}/knobs", set_knobs, methods=["POST"]),
        Route(f"{p}/requests", get_requests, methods=["GET"]),
        Route(f"{p}/requests", clear_requests, methods=["DELETE"]),
        Route(f"{p}/records", get_records, methods=["GET"]),
        Route(f"{p}/stats", get_stats, methods=["GET"]),
        Route(f"{p}/reset", reset, methods=["POST"]),
        Route(f"{p}/gates", add_gate, methods=["POST"]),
        Route(f"{p}/gates", get_gates, methods=["GET"]),
        Route(f"{p}/gates", remove_gates, methods=["DELETE"]),
        Route(f"{p}/gates/{{gate:int}}/open", open_gate, methods=["POST"]),
        *sandbox.control_routes(),
    ]


class SandboxMiddleware:
    """Latency, injected faults and the request log around every API call; the control token
    (when there is one) in front of the control routes."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox, control_token: str | None = None) -> None:
        self.app = app
        self.sandbox = sandbox
        self.control_token = control_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            if self.control_token is not None and not self._token_given(scope):
                refused = JSONResponse(
                    {"error": f"the control routes need the header {CONTROL_TOKEN_HEADER}"},
                    status_code=401,
                )
                await refused(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        sb = self.sandbox
        sb.in_flight += 1
        try:
            await self._serve(scope, receive, send)
        finally:
            sb.in_flight -= 1

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        sb = self.sandbox
        started = time.time()
        scope.setdefault("state", {})
        gate = sb.gate_for(scope["method"], scope["path"])
        if gate is not None and gate.stage == "before":
            await gate.wait()
        seconds, spike = sb.delay()
        if seconds:
            await asyncio.sleep(seconds)
        fault = sb.pick_fault()
        entry = LoggedRequest(started, scope["method"], scope["path"], 0, 0.0)
        entry.query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
        if fault == "429-burst":
            response = sb.throttled_response(retry_after=1.0 / sb.knobs.time_scale)
        elif fault == "5xx":
            response = sb.server_error_response()
        else:
            response = None
        if response is not None:
            entry.fault = fault
            entry.status = response.status_code
            entry.code = _code_of(response)
            await response(scope, receive, send)
            self._log(entry, started)
            return

        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        state = scope["state"]
        entry.batch_size = state.get("batch_size")
        entry.code = state.get("api_code")
        entry.status = next(m["status"] for m in captured if m["type"] == "http.response.start")
        if spike:
            entry.fault = "spike"
        if gate is not None and gate.stage == "after":
            if gate.drop:
                entry.fault = "dropped"
                self._log(entry, started)
                _close_connection(send)
                return
            await gate.wait()
        if sb.drop_response():
            entry.fault = "dropped"
            self._log(entry, started)
            _close_connection(send)
            return
        for message in captured:
            await send(message)
        self._log(entry, started)

    def _token_given(self, scope: Scope) -> bool:
        header = CONTROL_TOKEN_HEADER.lower().encode()
        given = next((v for k, v in scope["headers"] if k == header), b"")
        return hmac.compare_digest(given, (self.control_token or "").encode())

    def _log(self, entry: LoggedRequest, started: float) -> None:
        entry.duration_ms = round((time.time() - started) * 1000, 2)
        self.sandbox.requests.append(entry)


def _code_of(response: Response) -> int | None:
    import json

    try:
        body = json.loads(response.body)
    except (ValueError, AttributeError):
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


def _close_connection(send: Send) -> None:
    """Close the client's TCP connection without an answer (the write was already applied)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not running under uvicorn: fail loudly rather than pretend
        raise RuntimeError("dropped-connection fault needs uvicorn's transport")
    transport.close()
    # Tell uvicorn the client is gone, so it neither logs nor tries to answer 500.
    cycle.disconnected = True


def build_app(
    sandbox: Sandbox, api_routes: list[Route], control_token: str | None = None
) -> ASGIApp:
    """The emulator's routes plus the common control routes, wrapped in the middleware; with
    a `control_token`, the control routes answer 401 without it."""
    from starlette.applications import Starlette

    app = Starlette(routes=[*control_app_routes(sandbox), *api_routes])
    return SandboxMiddleware(app, sandbox, control_token)
