"""Datetimes without an offset: read in `default_timezone`, else refused.

`2024-03-01T09:30:00` names a moment only with a zone. Guessing one shifts it by hours (Twenty
would read it as UTC, Jiandaoyun as UTC+8), so both targets dead-letter a record carrying such
a datetime (or a bare date where a datetime is expected) unless the `default_timezone` setting
names the zone its source writes in.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from singer_sdk import typing as th

from connector_kit.http import ConfigError

DEFAULT_TIMEZONE_SETTING = th.Property(
    "default_timezone",
    th.StringType,
    description="IANA time zone (e.g. Asia/Shanghai) in which datetimes and dates without a time "
    "zone are read. Unset: a record carrying one is dead-lettered, not guessed.",
)


def default_timezone(name: str | None) -> dt.tzinfo | None:
    """The zone the setting names (None when unset); ConfigError if it names none."""
    if not name:
        return None
    try:
        return pendulum.timezone(name)
    except ValueError:  # pendulum's InvalidTimezone, or a name that is no zone key at all
        raise ConfigError(
            f"Setting 'default_timezone' is {name!r}, not an IANA time zone such as "
            "'Asia/Shanghai' or 'UTC'."
        ) from None


def with_zone(value: dt.date, zone: dt.tzinfo | None) -> dt.datetime:
    """`value` as a datetime with an offset: its own, else `zone`'s (a date: midnight there).

    ValueError, saying to set `default_timezone`, when it has none and `zone` is None.
    """
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.utcoffset() is not None:
        return value
    if zone is None:
        raise ValueError(
            f"datetime {value.isoformat()} has no time zone; "
            "set 'default_timezone' to say how to read it"
        )
    return value.replace(tzinfo=zone)
