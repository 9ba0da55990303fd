"""The base OKKI streams: URL, token, pacing, the response envelope, retries, windows.

Every call goes through `OkkiStream.get_data()`: paced under the run's shared rate, sent with
the shared token, retried with backoff on throttling, server errors and lost connections, and
unwrapped from OKKI's envelope (`{"code", "message", "now", "data"}`), whose `code` decides
success or failure even on HTTP 200 (docs/api/okki.md §3–4).

`OkkiListStream` adds the incremental window: [bookmark − look-back, run start], read with
`windows.WindowReader` and bookmarked at the window's end, never at the newest row seen.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import typing as t
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

from singer_sdk import Tap
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream

from connector_kit.pacing import RateLimiter
from connector_kit.retry import Outcome, RetryPolicy, call_with_retries, retry_after_seconds
from connector_kit.serialize import parse_json
from connector_kit.transport import Answer, Transport
from tap_okki.auth import Call, OkkiAuthenticator
from tap_okki.conform import UNCONVERTED, ConformError, compile_schema
from tap_okki.errors import CompanyNotFound, OkkiApiError, OkkiAuthError, OkkiKeyError
from tap_okki.settings import TapSettings
from tap_okki.times import format_okki_time, parse_okki_time
from tap_okki.windows import Page, Window, WindowReader

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

COMPANY_INFO_PATH = "/v1/company/info"
_POSITION = re.compile(r"\[\d+\]")  # `customers[2].birth` → `customers[].birth`
SUCCESS_CODES = (200, 0)  # docs/api/okki.md §3: both mean success
_HINTS = {
    400: "OKKI refused a request tap-okki built; please report this as a tap-okki bug.",
    403: "The token lacks a module: check the 'scope' setting and the app's permissions.",
}


@dataclass
class OkkiConnection:
    """What every stream of one run shares: settings, one connection pool, pace, token and
    clock."""

    settings: TapSettings
    base_url: str
    transport: Transport
    pacer: RateLimiter
    authenticator: OkkiAuthenticator
    retry: RetryPolicy
    _run_end: dt.datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run_end(self, ask_server: Callable[[], str | None]) -> dt.datetime:
        """The end of every window of this run: OKKI's `now` from the run's first answer.

        The server's clock, not ours: a skewed local clock must not push the bookmark past
        what OKKI has actually written.
        """
        with self._lock:
            if self._run_end is None:
                now = ask_server()
                if now:
                    self._run_end = parse_okki_time(now, self.settings.tz)
                else:  # not seen from OKKI, but then our clock minus a margin is the best bet
                    self._run_end = dt.datetime.now(self.settings.tz).replace(microsecond=0)
                    self._run_end -= dt.timedelta(minutes=2)
                    logging.getLogger(__name__).warning(
                        "OKKI's answer carried no 'now'; the window ends at %s (local clock)",
                        self._run_end.isoformat(),
                    )
            return self._run_end


@dataclass
class CallTimes:
    """Successful calls to an endpoint called once per record, summed up for the run log."""

    count: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float) -> None:
        with self._lock:
            self.count += 1
            self.seconds += seconds

    def __str__(self) -> str:
        mean = self.seconds / self.count * 1000 if self.count else 0.0
        return f"{self.count} calls, {mean:.0f} ms each on average"


class OkkiStream(RESTStream):
    """An OKKI endpoint: everything about talking to the API, nothing about one entity."""

    # Paging is done by `windows.WindowReader`, not by the SDK's paginators (see there).
    records_jsonpath = "$.data.list[*]"
    # Called once per record (N+1): instead of a METRIC line per successful call (a tenth of
    # the tap's CPU, and a line per record), their count and mean time go in the run log.
    summed_endpoint: str | None = None

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(tap, *args, **kwargs)
        self.okki = tap  # a TapOkki; ours: the SDK keeps its tap in a private attribute
        self._unmapped_fields: set[str] = set()  # reported once each
        self.summed_calls = CallTimes()
        # Values kept under `_okki_unconverted`, per field (array positions as `[]`).
        self.unconverted: Counter[str] = Counter()

    @property
    def connection(self) -> OkkiConnection:
        return self.okki.connection  # type: ignore[attr-defined]

    @property
    def settings(self) -> TapSettings:
        return self.connection.settings

    @property
    def url_base(self) -> str:
        return self.connection.base_url

    @property
    def authenticator(self) -> OkkiAuthenticator:
        return self.connection.authenticator

    def get_new_paginator(self) -> None:
        return None

    @cached_property
    def _conform(self) -> t.Callable[[dict[str, t.Any]], dict[str, t.Any]]:
        # The catalog's schema when it brings one (a user may retype a field), else ours.
        return compile_schema(self.effective_schema, self.settings.tz)

    @cached_property
    def _known_fields(self) -> frozenset[str]:
        return frozenset(self.schema["properties"])

    def typed(
        self, record: dict[str, t.Any], endpoint: str, company_id: t.Any = None
    ) -> dict[str, t.Any]:
        """`record` typed as the schema says; fields OKKI added since are dropped (said once).

        A value that cannot take its field's type makes that field null and is kept under
        `_okki_unconverted` (see `conform.py`): warned once per field, counted for the run's
        summary. Only a key that is no id stops the run: the record could not be identified.
        """
        if not self._known_fields.issuperset(record):
            unknown = set(record) - self._known_fields - self._unmapped_fields
            if unknown:
                self._unmapped_fields |= unknown
                self.logger.info(
                    "%s: ignoring fields OKKI sent that the schema lacks: %s",
                    self.name,
                    sorted(unknown),
                )
        try:
            converted = self._conform(record)
        except ConformError as error:
            company = record.get("company_id") if company_id is None else company_id
            raise OkkiKeyError(endpoint, company, str(error)) from None
        unconverted = converted.get(UNCONVERTED)
        if unconverted:
            self._count_unconverted(unconverted)
        return converted

    def _count_unconverted(self, unconverted: dict[str, t.Any]) -> None:
        for path, value in unconverted.items():
            field_name = _POSITION.sub("[]", path)
            if field_name not in self.unconverted:
                self.logger.warning(
                    "%s: field '%s': OKKI sent %s, which tap-okki cannot read as %s; the field "
                    "is emitted as null and the value kept in %s (further values of this field "
                    "are counted in the stream summary, not logged)",
                    self.name,
                    field_name,
                    _shown(value),
                    self._expected(field_name),
                    UNCONVERTED,
                )
            self.unconverted[field_name] += 1

    def _expected(self, field_name: str) -> str:
        """The type a field's schema declares, for log lines."""
        schema: dict[str, t.Any] = self.effective_schema
        for part in field_name.split("."):
            name, _, arrays = part.partition("[")
            schema = schema.get("properties", {}).get(name, {})
            for _ in range(arrays.count("]")):
                schema = schema.get("items", {})
        declared = schema.get("type", [])
        types = [declared] if isinstance(declared, str) else declared
        return schema.get("format") or "/".join(x for x in types if x != "null") or "its type"

    def unconverted_summary(self) -> str:
        """For the stream's summary line: values kept unconverted, per field."""
        if not self.unconverted:
            return ""
        counts = ", ".join(f"{name} {n}" for name, n in sorted(self.unconverted.items()))
        return f"; values kept in {UNCONVERTED} (field: count): {counts}"

    # `typed()` already gives the effective schema's types. The SDK's own pass would only
    # repeat that, and it cannot take open fields: on `{}` holding a list it raises.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    # Calls --------------------------------------------------------------------------------------
    def get_data(self, path: str, params: dict[str, t.Any], context: Context | None) -> dict:
        """GET `path`, paced and retried (`connector_kit.retry`); the whole envelope of a
        successful answer (its `data`, `now`…)."""
        query = urlencode([(key, value) for key, value in params.items() if value is not None])
        call = Call(f"{self.url_base}{path}?{query}" if query else f"{self.url_base}{path}", {})
        answer = call_with_retries(
            lambda: self._send(call, context),
            classify,
            self.connection.retry,
            f"OKKI {path}",
            server=self.url_base,
            pause=self.connection.pacer.pause,
            # Expired early or revoked (docs/api/okki.md §2): a new token, then this call again.
            renew=lambda: self.authenticator.renew(call),
            log=self.logger,
        )
        return _envelope(answer) or {}

    @cached_property
    def _headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent, **self.http_headers}

    def _send(self, call: Call, context: Context | None) -> Answer:
        """One attempt: paced, with the current token (fetched first if need be)."""
        self.connection.pacer.acquire()
        call.headers = dict(self._headers)
        self.authenticator(call)
        response = self.connection.transport.request("GET", call.url, headers=call.headers)
        endpoint = _endpoint(response)
        if endpoint == self.summed_endpoint and response.status_code == 200:
            self.summed_calls.add(response.elapsed.total_seconds())
        else:
            # Private SDK API: the SDK's METRIC line for a request, which honours the
            # `metrics` settings; no public hook writes it (tests/test_sdk_contract.py).
            self._write_request_duration_log(
                endpoint=endpoint, response=response, context=context, extra_tags=None
            )
        return response


def classify(response: Answer) -> Outcome:
    """Sort an OKKI answer into success, retry, a token to renew, skip (a missing company) or
    stop. The outcomes and their handling: docs/api/okki.md §2-4.
    """
    endpoint = _endpoint(response)
    status = response.status_code
    if status in (408, 429) or status >= 500:
        return Outcome(
            "retry",
            f"HTTP {status}",
            retry_after=retry_after_seconds(response),
            throttled=status == 429,
        )
    body = _envelope(response)
    if status == 401:
        # OKKI says `{"error":"access_denied"}`; upstream's exact shape is undocumented, so any
        # 401 on a data call gets the one renewal.
        message = str((body or {}).get("error") or "access_denied")
        refused = OkkiAuthError(
            endpoint,
            "HTTP 401",
            message,
            "OKKI refused a freshly issued token too; check the app's permissions.",
        )
        return Outcome("renew", "HTTP 401", message, error=refused)
    if status != 200:
        message = str((body or {}).get("error") or (body or {}).get("message") or "")
        error = OkkiApiError(endpoint, f"HTTP {status}", message or response.reason)
        return Outcome("fatal", f"HTTP {status}", message, error=error)
    if body is None:  # cut short by a proxy or the network: worth another try
        return Outcome("retry", "HTTP 200", "the answer was not JSON")
    code = _code(body.get("code"))
    message = str(body.get("message") or "")
    if code in SUCCESS_CODES:
        return Outcome("ok")
    if code == 429:
        return Outcome(
            "retry",
            "code 429",
            message,
            retry_after=retry_after_seconds(response),
            throttled=True,
        )
    if code == 404 and endpoint == COMPANY_INFO_PATH:
        company_id = parse_qs(urlsplit(response.url).query).get("company_id", ["?"])[0]
        return Outcome("fatal", code, message, error=CompanyNotFound(company_id, message))
    error = OkkiApiError(endpoint, code, message, _HINTS.get(code or 0, ""))
    return Outcome("fatal", code, message, error=error)


class OkkiListStream(OkkiStream):
    """A list endpoint read incrementally, window by window (see `windows.py`)."""

    replication_key = "update_time"
    is_sorted = False  # newest first, and re-scans repeat rows: never resumable by record
    extra_list_params: t.ClassVar[dict[str, t.Any]] = {}

    # The window and the bookmark ----------------------------------------------------------------
    def lookback(self) -> dt.timedelta:
        """How far before the bookmark a run starts reading again."""
        return dt.timedelta(minutes=self.settings.lookback_minutes)

    def bookmark(self, context: Context | None) -> dt.datetime | None:
        """The end of the last window read completely; None before the first run."""
        state = self.get_context_state(context)
        value = state.get("replication_key_value")
        if not value or state.get("replication_key") != self.replication_key:
            return None
        return dt.datetime.fromisoformat(value).astimezone(self.settings.tz)

    def run_window(self, context: Context | None) -> Window:
        """[bookmark − look-back, run start], or [start_date, run start] on the first run."""
        bookmark = self.bookmark(context)
        start_date = self.settings.start
        start = None
        if bookmark:
            start = bookmark - self.lookback()
        if start_date and (start is None or start < start_date):
            start = start_date
        end = self.connection.run_end(self._ask_server_time)
        if start is not None and start > end:
            self.logger.warning(
                "%s: the bookmark %s is after OKKI's clock (%s); reading nothing",
                self.name,
                bookmark.isoformat() if bookmark else None,
                end.isoformat(),
            )
            start = end + dt.timedelta(seconds=1)
        self.logger.info(
            "%s: reading updates from %s to %s",
            self.name,
            start.isoformat() if start else "the beginning",
            end.isoformat(),
        )
        return Window(start, end)

    def save_bookmark(self, context: Context | None, moment: dt.datetime) -> None:
        """Everything up to `moment` is emitted: bookmark it and emit STATE now."""
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = moment.isoformat()
        self.state_manager.is_flushed = False
        self._write_state_message()  # private SDK API: STATE now (tests/test_sdk_contract.py)

    # Private SDK API (tests/test_sdk_contract.py): the SDK bookmarks every record; no public
    # hook turns that off.
    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None):
        """Not from records: the bookmark is the window end (`save_bookmark`), because rows
        come newest first, are re-read after shifts, and the newest row seen says nothing
        about rows not yet read."""

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        return None  # the window end from OKKI's clock plays that role

    def get_batch_config(self, config: t.Mapping) -> None:
        return None  # BATCH files would be written after the STATE of their window

    # Reading ------------------------------------------------------------------------------------
    def reader(
        self, context: Context | None, label: str | None = None, **params: t.Any
    ) -> WindowReader:
        """A reader of this list, with extra filter parameters (e.g. `removed=1`)."""
        page_size = self.settings.page_size

        def fetch(window: Window, number: int) -> Page:
            query = {
                **self.extra_list_params,
                **params,
                "start_index": number,
                "count": page_size,
                "start_time": _okki(window.start, self.settings.tz),
                "end_time": _okki(window.end, self.settings.tz),
            }
            data = self.get_data(self.path, query, context).get("data") or {}
            rows = data.get("list") or []
            return Page(rows=list(rows), total=int(data.get("totalItem") or 0))

        return WindowReader(
            fetch=fetch,
            page_size=page_size,
            key=self.primary_keys[0],
            label=label or self.name,
            logger=self.logger,
            max_rows=self.settings.max_rows_per_window,
        )

    def _ask_server_time(self) -> str | None:
        """The cheapest call that shows OKKI's clock: one row of this list."""
        body = self.get_data(self.path, {"start_index": 1, "count": 1}, None)
        return body.get("now")


# Helpers --------------------------------------------------------------------------------------
def _envelope(response: Answer) -> dict | None:
    """The decoded JSON object of an answer (cached on it), or None when it is not one."""
    cached = response.__dict__.get("_okki_body", ...)
    if cached is not ...:
        return cached
    try:
        body = parse_json(response.content)
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else None
    response.__dict__["_okki_body"] = body
    return body


def _code(value: t.Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _endpoint(response: Answer) -> str:
    return urlsplit(response.url).path


def _okki(moment: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return format_okki_time(moment, tz) if moment else None


def _shown(value: t.Any) -> str:
    """A value for a log line: short, and with its JSON type when that is the point."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    kind = {dict: "an object", list: "a list", str: "text"}.get(type(value), type(value).__name__)
    return f"{shown} ({kind})"
