"""The tap's settings as one frozen object, built once from the validated config.

Every default is the one `TapOkki.config_jsonschema` declares (`Settings.from_config`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cached_property
from zoneinfo import ZoneInfo

from connector_kit.retry import RetryPolicy
from connector_kit.typed_settings import Settings
from tap_okki.times import parse_setting_time


@dataclasses.dataclass(frozen=True)
class TapSettings(Settings):
    client_id: str
    client_secret: str = dataclasses.field(repr=False)  # never shown, even in a traceback
    base_url: str
    allow_insecure_http: bool
    start_date: str | None
    scope: str
    timezone: str
    page_size: int
    lookback_minutes: int
    follow_ups_lookback_days: int
    max_requests_per_second: float
    rate_budget_dir: str | None
    detail_concurrency: int
    max_rows_per_window: int
    request_timeout: float
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def start(self) -> dt.datetime | None:
        """`start_date` as a moment (read in `timezone` when it has no offset)."""
        return parse_setting_time(self.start_date, self.tz) if self.start_date else None

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.backoff_base_seconds,
            max_delay=self.backoff_max_seconds,
        )
