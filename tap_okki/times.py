"""OKKI's wall-clock times and our ISO-8601 timestamps.

OKKI writes times as `YYYY-MM-DD HH:MM:SS` with no offset, in one configured time zone
(Asia/Shanghai), and marks "unset" with `1970-01-01 00:00:00`, `0000-00-00 00:00:00` or `""`.
Records and bookmarks carry ISO-8601 with the offset, e.g. `2025-11-06T00:08:47+08:00`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

OKKI_FORMAT = "%Y-%m-%d %H:%M:%S"
_UNSET_PREFIXES = ("1970-01-01", "0000-00-00")


def is_unset(value: object) -> bool:
    return value is None or (
        isinstance(value, str) and (not value.strip() or value.startswith(_UNSET_PREFIXES))
    )


def parse_okki_time(value: str, tz: ZoneInfo) -> dt.datetime:
    """`2025-11-06 00:08:47` in OKKI's zone → an aware datetime."""
    return dt.datetime.strptime(value.strip(), OKKI_FORMAT).replace(tzinfo=tz)


def format_okki_time(moment: dt.datetime, tz: ZoneInfo) -> str:
    """An aware datetime → OKKI's `start_time`/`end_time` format in OKKI's zone."""
    return moment.astimezone(tz).strftime(OKKI_FORMAT)


def okki_time_to_iso(value: object, tz: ZoneInfo) -> str | None:
    """An OKKI time → ISO-8601 with offset; unset → None; ValueError if it is no time."""
    if is_unset(value):
        return None
    text = str(value).strip()
    try:
        # OKKI's format is ISO-8601 with a space (fast to parse); ISO text from elsewhere keeps
        # its instant, and gets the zone when it has none.
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = dt.datetime.strptime(text, OKKI_FORMAT)  # e.g. `2025-1-6 8:00:00`
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.isoformat()


def okki_date(value: object) -> str | None:
    """An OKKI date (`YYYY-MM-DD`, sometimes with a time part) → `YYYY-MM-DD`; unset → None."""
    if is_unset(value):
        return None
    text = str(value).strip()
    return dt.date.fromisoformat(text[:10]).isoformat()


def parse_setting_time(value: str, tz: ZoneInfo) -> dt.datetime:
    """A user's ISO-8601 date or datetime; one without an offset is read in OKKI's zone.

    Raises ValueError when it is not a date.
    """
    moment = dt.datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)
