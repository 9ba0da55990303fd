"""tap-okki: OKKI (Xiaoman / 小满) CRM companies, contacts, opportunities and follow-ups as Singer
streams."""

from __future__ import annotations

import typing as t
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities

from connector_kit.cli import PlainSettingErrors
from connector_kit.http import ConfigError, check_base_url
from connector_kit.pacing import RATE_BUDGET_SETTING, RateLimiter, budget_file
from connector_kit.secrets import SecretMasking
from connector_kit.settings import SettingsFromText
from connector_kit.transport import Transport
from connector_kit.typed_settings import declared_values
from tap_okki.auth import Credentials, OkkiAuthenticator
from tap_okki.client import OkkiConnection
from tap_okki.settings import TapSettings
from tap_okki.streams import (
    CompaniesStream,
    ContactsStream,
    FollowUpsStream,
    NextFollowUpsStream,
    OpportunitiesStream,
)
from tap_okki.times import parse_setting_time

DEFAULT_BASE_URL = "https://api-sandbox.xiaoman.cn"
MAX_PAGE_SIZE = 100  # OKKI answers code 400 above it (docs/api/okki.md §5)


# The order the streams sync in: each after the streams its records link to.
SYNC_ORDER: tuple[type[Stream], ...] = (
    CompaniesStream,  # with its children: contacts, next_follow_ups
    ContactsStream,
    NextFollowUpsStream,
    OpportunitiesStream,  # link to companies and contacts
    FollowUpsStream,  # link to companies, contacts and opportunities
)


class TapOkki(PlainSettingErrors, SettingsFromText, SecretMasking, Tap):
    """Reads OKKI's Open API incrementally (window and bookmark rules: `windows.py`)."""

    name = "tap-okki"
    package_name = "okki-crm-sync"  # the distribution that ships this tap
    # The SDK's msgspec writer: the same JSON as its default writer (non-ASCII text as UTF-8
    # rather than \u escapes), serialized in a fraction of the CPU.
    message_writer_class = MsgSpecWriter

    # Not `batch`: bookmarks are saved as windows complete, which BATCH files would outrun.
    # Not `activate-version`: every stream is incremental (contacts follow their company).
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        TapCapabilities.TEST,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "client_id",
            th.StringType(min_length=1),
            required=True,
            description="OKKI Open API client id (企业管理 → 外部对接 → API对接).",
        ),
        th.Property(
            "client_secret",
            th.StringType(min_length=1),
            required=True,
            secret=True,
            description="OKKI Open API client secret. Never logged.",
        ),
        th.Property(
            "base_url",
            th.StringType,
            default=DEFAULT_BASE_URL,
            description=(
                "OKKI API root. The default, despite its name, is OKKI's production host. "
                "Must be https:// unless the host is loopback or `allow_insecure_http` is true."
            ),
        ),
        th.Property(
            "allow_insecure_http",
            th.BooleanType,
            default=False,
            description="Allow a plain http:// `base_url` to a non-loopback host (not advised).",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description=(
                "ISO-8601 date or date-time: the first run reads changes from here on (later "
                "runs from their bookmark). Without an offset it is read in `timezone`. "
                "Unset: the whole history."
            ),
        ),
        th.Property(
            "scope",
            th.StringType,
            default="company opportunity user",
            description="Space-separated OKKI modules the token asks for.",
        ),
        th.Property(
            "timezone",
            th.StringType,
            default="Asia/Shanghai",
            description="IANA time zone of OKKI's zone-less times (UTC+8 for OKKI accounts).",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
            default=MAX_PAGE_SIZE,
            description="Rows per list page (`count`), at most 100.",
        ),
        th.Property(
            "lookback_minutes",
            th.IntegerType(minimum=0),
            default=10,
            description=(
                "Each run re-reads this many minutes before its bookmark, for changes OKKI "
                "makes visible late. Re-read rows are emitted again (targets upsert)."
            ),
        ),
        th.Property(
            "follow_ups_lookback_days",
            th.IntegerType(minimum=0),
            default=7,
            description=(
                "Follow-ups are listed by when they happened, which users may set in the past "
                "and which editing or deleting one does not move: each run re-reads this many "
                "days of them (list pages only) and emits what was written since the last run. "
                "Changes to older follow-ups need a full refresh."
            ),
        ),
        th.Property(
            "max_requests_per_second",
            th.NumberType(exclusive_minimum=0),
            default=9.5,
            description=(
                "Pace of all requests together (all threads). OKKI's limit is 10/s per client; "
                "the default stays just under it."
            ),
        ),
        RATE_BUDGET_SETTING,
        th.Property(
            "detail_concurrency",
            th.IntegerType(minimum=1, maximum=32),
            default=4,
            description=(
                "Company detail calls (`/v1/company/info`) in flight at once, once calls prove "
                "slow (over 20 ms; quicker ones go one by one, where threads would only cost "
                "CPU). Needed to reach the rate limit: about rate × latency, plus one."
            ),
        ),
        th.Property(
            "max_rows_per_window",
            th.IntegerType(minimum=1),
            default=2000,
            description=(
                "Time windows holding more rows than this are split (oldest part first), so "
                "re-scans after page shifts stay short and the bookmark advances per part."
            ),
        ),
        th.Property(
            "request_timeout",
            th.NumberType(exclusive_minimum=0),
            default=60,
            description="Seconds to wait for a connection and for an answer (OKKI documents 60).",
        ),
        th.Property(
            "max_attempts",
            th.IntegerType(minimum=1),
            default=8,
            description=(
                "Tries per request for throttled (429), failed (5xx) or lost answers before the "
                "run stops."
            ),
        ),
        th.Property(
            "backoff_base_seconds",
            th.NumberType(minimum=0),
            default=1.0,
            description=(
                "First retry wait; it doubles per attempt, with jitter. A `Retry-After` from "
                "OKKI is honoured instead when given."
            ),
        ),
        th.Property(
            "backoff_max_seconds",
            th.NumberType(minimum=0),
            default=60.0,
            description="Longest wait between two tries (unless `Retry-After` asks for more).",
        ),
    ).to_dict()

    # Settings checks the JSON schema cannot express -------------------------------------------
    # Private SDK API (tests/test_sdk_contract.py): the SDK's settings check, extended with the
    # checks a JSON schema cannot express; no public hook adds errors to it.
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's schema check (secrets masked by `SecretMasking`), plus our own checks."""
        errors = super()._validate_config(raise_errors=False)
        errors += _setting_errors(self._config)
        if errors and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return errors

    @cached_property
    def settings(self) -> TapSettings:
        """The validated settings, each unset one at its declared default."""
        return TapSettings.from_config(self.config, self.config_jsonschema)

    @cached_property
    def connection(self) -> OkkiConnection:
        """The run's shared HTTP connections, pace, token and clock (made on first use)."""
        settings = self.settings
        base_url = settings.base_url.rstrip("/")
        # One pooled connection per concurrent caller, so keep-alive is never starved.
        pool = settings.detail_concurrency + 2
        transport = Transport(base_url, {}, pool_size=pool, timeout=settings.request_timeout)
        # OKKI counts calls per client: every process of this machine on one client shares it.
        ledger = budget_file(settings.rate_budget_dir, base_url, settings.client_id, "okki")
        pacer = RateLimiter([(settings.max_requests_per_second, 1.0)], headroom=1.0, ledger=ledger)
        credentials = Credentials(settings.client_id, settings.client_secret, settings.scope)
        authenticator = OkkiAuthenticator(base_url, credentials, transport, pacer)
        return OkkiConnection(
            settings, base_url, transport, pacer, authenticator, settings.retry_policy()
        )

    def discover_streams(self) -> list[Stream]:
        return [stream_class(self) for stream_class in SYNC_ORDER]

    def load_streams(self) -> list[Stream]:
        """`SYNC_ORDER` instead of the SDK's order by name, which syncs follow-ups before the
        opportunities they link to: a target then holds every such follow-up until the
        opportunities come, and an account's worth exceeds any bound it keeps on that
        (target-twenty's `max_held_records`)."""
        order = [stream_class.name for stream_class in SYNC_ORDER]
        return sorted(super().load_streams(), key=lambda stream: order.index(stream.name))


def _setting_errors(config: dict) -> list[str]:
    """Messages naming each wrong setting (values shown only for non-secret settings)."""
    errors = []
    values = declared_values(config, TapOkki.config_jsonschema)
    timezone = values["timezone"]
    try:
        tz = ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"Setting 'timezone' must be an IANA time zone name, got {timezone!r}")
        tz = ZoneInfo("UTC")  # only to read `start_date` for its own check
    start_date = values["start_date"]
    if start_date is not None:
        try:
            parse_setting_time(str(start_date), tz)
        except ValueError:
            errors.append(
                "Setting 'start_date' must be an ISO-8601 date or date-time "
                f"(e.g. 2025-01-01 or 2025-01-01T00:00:00+08:00), got {start_date!r}"
            )
    errors += _base_url_errors(str(values["base_url"]), bool(values["allow_insecure_http"]))
    if not str(values["scope"]).split():
        errors.append("Setting 'scope' must name at least one OKKI module, e.g. 'company'")
    return errors


def _base_url_errors(url: str, allow_insecure_http: bool) -> list[str]:
    try:
        check_base_url(url, "base_url", allow_insecure_http)
    except ConfigError as exc:
        return [str(exc)]
    return []


if __name__ == "__main__":
    TapOkki.cli()
