"""OKKI's wall-clock times and our ISO-8601 timestamps.

OKKI writes times as `YYYY-MM-DD HH:MM:SS` with no offset, in one configured time zone
(Asia/Shanghai), and marks "unset" with `1970-01-01 00:00:00`, `0000-00-00 00:00:00` or `""`.
Records and bookmarks carry ISO-8601 with the offset, e.g. `2025-11-06T00:08:47+08:00`.
Other ISO-8601 text (a user's `start_date`, a time from elsewhere) is read by pendulum, which
reads every ISO-8601 form on every Python we support and puts a zone-less time in OKKI's zone.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pendulum

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
        try:
            moment = dt.datetime.strptime(text, OKKI_FORMAT)  # e.g. `2025-1-6 8:00:00`
        except ValueError:
            return _iso_elsewhere(text, tz).isoformat()  # e.g. `…Z` on Python 3.10
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
    return _iso_elsewhere(value.strip(), tz)


def _iso_elsewhere(text: str, tz: ZoneInfo) -> dt.datetime:
    """Any ISO-8601 date or date-time (pendulum's parser); zone-less ones in `tz`. A plain
    datetime in the end: window arithmetic stays the standard library's."""
    try:
        parsed = pendulum.parse(text, tz=pendulum.timezone(tz.key), exact=True)
    except Exception as exc:  # pendulum's ParserError, or worse for odd text
        raise ValueError(f"not an ISO-8601 date or date-time: {text!r}") from exc
    if isinstance(parsed, dt.datetime):
        offset = parsed.utcoffset()
        naive = dt.datetime(*parsed.timetuple()[:6], parsed.microsecond)
        if parsed.tzinfo is not None and getattr(parsed.tzinfo, "name", None) == tz.key:
            return naive.replace(tzinfo=tz)
        return naive.replace(tzinfo=dt.timezone(offset)) if offset is not None else naive
    if isinstance(parsed, dt.date):
        return dt.datetime.combine(parsed, dt.time(), tzinfo=tz)
    raise ValueError(f"not an ISO-8601 date or date-time: {text!r}")
