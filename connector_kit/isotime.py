"""ISO 8601 text read the same on every supported Python.

Python 3.11's `datetime.fromisoformat` reads most of ISO 8601 (a `Z` offset, fractions of any
length, the basic format `20240101T100000+0800`); 3.10's reads only what `isoformat()` writes,
so a tap's `2024-01-01T10:00:00Z` would be refused there. On 3.10 what it refuses goes through
pendulum's ISO 8601 parser, which reads what 3.11 reads.
"""

from __future__ import annotations

import datetime as dt
import sys

import pendulum


def fromisoformat(text: str) -> dt.datetime:
    """`datetime.fromisoformat(text)` as Python 3.11 and later read it; ValueError if no time."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        if sys.version_info >= (3, 11):
            raise
    try:
        parsed = pendulum.parse(text, tz=None, exact=True)
    except Exception as exc:  # pendulum's ParserError, or worse for odd text
        raise ValueError(f"Invalid isoformat string: {text!r}") from exc
    if not isinstance(parsed, dt.datetime):
        raise ValueError(f"Invalid isoformat string: {text!r}")
    offset = parsed.utcoffset()
    return dt.datetime(
        *parsed.timetuple()[:6],
        parsed.microsecond,
        tzinfo=dt.timezone(offset) if offset is not None else None,
    )
