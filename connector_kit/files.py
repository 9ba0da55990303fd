"""Files that can hold records (dead letters, run reports, target-twenty's id map): personal
data at rest, so readable by their owner only, and kept no longer than asked.

- `private_file` creates a file 0600 in a directory made 0700 (and tightens one an earlier
  version left 0644): names, emails and phone numbers must not be readable by every user of
  the machine.
- `expire_lines` removes the lines older than `keep_days` from a JSON Lines file whose lines
  carry their time (`"at"`), oldest first, at the start of a run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

PRIVATE = 0o600
PRIVATE_DIR = 0o700
# Where the targets write by default (relative to the working directory, the project root
# under Meltano); git-ignored.
DEFAULT_DIR = Path("output")


def private_file(path: Path) -> None:
    """Make sure `path` exists, readable and writable by its owner only."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=PRIVATE_DIR)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE))
    if path.stat().st_mode & 0o077:
        path.chmod(PRIVATE)


def now_text() -> str:
    """The time written on each line, in the form `expire_lines` compares."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expire_lines(path: Path, keep_days: float) -> int:
    """Remove the lines of `path` written more than `keep_days` ago; return how many.

    Lines are appended in time order, so the file is rewritten only when its oldest line has
    expired. A line without a readable time (one a killed run cut short, or from a version
    that wrote none) is kept.
    """
    if not path.exists():
        return 0
    cutoff = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=keep_days)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    with path.open(encoding="utf-8") as file:
        oldest = next((at for at in map(_time, file) if at is not None), None)
    if oldest is None or oldest >= cutoff:
        return 0
    removed = 0
    kept = path.with_name(path.name + ".keep")
    private_file(kept)
    with path.open(encoding="utf-8") as source, kept.open("w", encoding="utf-8") as target:
        for line in source:
            if _expired(line, cutoff):
                removed += 1
            else:
                target.write(line)
    kept.replace(path)
    return removed


def _expired(line: str, cutoff: str) -> bool:
    at = _time(line)
    return at is not None and at < cutoff


def _time(line: str) -> str | None:
    try:
        at = json.loads(line).get("at")
    except (ValueError, AttributeError):
        return None
    return at if isinstance(at, str) else None
