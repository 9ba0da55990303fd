"""Plan mode (`dry_run: true`): the whole run, against the real destination, with no write.

The target runs as it always does — mappings checked, records converted, parents resolved,
identities planned, conflicts found — with one difference: its API client is a *plan client*
(one per target: `target_twenty/plan.py`, `target_jiandaoyun/plan.py`) that sends every read
and refuses every write. For each write it would have sent it reads the rows concerned (unless
an earlier read of the run already holds them), notes what would change, and answers as the API
would have, so the target carries on as if the write had happened. What that costs is in each
target's README ("Plan mode").

What stays untouched besides the destination:
- no STATE is emitted, so Meltano keeps its bookmark and the real run reads the same records;
- the dead-letter file is not written: would-be dead letters are in the plan, with the reason;
- target-twenty's id map is copied, and the copy is used and dropped (`scratch_copy`).

The plan is the run report (`run_report_path`, else `output/<target>/plan.jsonl`), one line
per record with `"dry_run": true` and as `"action"` what would happen: create (with the
`values` it would write), update (with `changes`: field → {"from", "to"}), unchanged, delete,
skip or dead-letter (with the reason and code), and the statuses (conflict, adopted,
partial…); and a summary per stream in the log.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from singer_sdk import typing as th

from connector_kit.deadletter import DeadLetterFile
from connector_kit.files import DEFAULT_DIR
from connector_kit.report import RunReport

DRY_RUN_SETTING = th.Property(
    "dry_run",
    th.BooleanType,
    default=False,
    description="Plan mode: read the destination, write nothing. The run report (default "
    "output/<target>/plan.jsonl) says per record what a real run would do: create, update "
    "(with the fields that would change), conflict, delete, dead letter with the reason. No "
    "STATE is emitted, so the next real run reads the same records. Reads count against the "
    "API's rate limit (see the target's README).",
)

_PLANNED = {"created": "create", "updated": "update", "deleted": "delete", "skipped": "skip"}


class Changes:
    """What the plan client found each write would change, by destination id (thread-safe).

    An entry is taken when the record it belongs to is reported, so it lives only between a
    batch's write and its report.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, dict[str, Any]] = {}

    def note(self, row_id: str, changes: dict[str, Any]) -> None:
        with self._lock:
            self._by_id.setdefault(row_id, {}).update(changes)

    def take(self, row_id: str | None) -> dict[str, Any] | None:
        if row_id is None:
            return None
        with self._lock:
            return self._by_id.pop(row_id, None)


def differences(wanted: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Field → {"from", "to"} for each value of `wanted` that `current` does not hold; the
    sub-fields of an object (a composite field) are compared one by one."""
    changed: dict[str, Any] = {}
    for name, value in wanted.items():
        old = current.get(name)
        if isinstance(value, dict) and isinstance(old, dict):
            for sub, sub_value in value.items():
                if not _same(sub_value, old.get(sub)):
                    changed[f"{name}.{sub}"] = {"from": old.get(sub), "to": sub_value}
        elif not _same(value, old):
            changed[name] = {"from": old, "to": value}
    return changed


def _same(new: Any, old: Any) -> bool:
    if new in (None, "") and old in (None, "", [], {}):
        return True
    if isinstance(new, int | float) and isinstance(old, int | float):
        return float(new) == float(old)
    return new == old


class PlanReport(RunReport):
    """The run report of a plan: actions said as what would happen, with the changes."""

    def __init__(self, *args: Any, changes: Changes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changes = changes
        self.fields_changed: dict[str, Counter[str]] = defaultdict(Counter)
        self.dead_codes: dict[str, Counter[str]] = defaultdict(Counter)

    def record(
        self,
        stream: str,
        key: Any,
        action: Any,
        destination_id: str | None = None,
        reason: str | None = None,
        status: Iterable[str] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        details = dict(details or {})
        plan = _PLANNED.get(action, "dead-letter")
        if action in ("created", "updated"):
            changes = self.changes.take(destination_id)
            if action == "created" and changes:
                details["values"] = {name: change["to"] for name, change in changes.items()}
            elif action == "updated" and not changes:
                plan = "unchanged"
            elif changes:
                details["changes"] = changes
                with self._lock:
                    self.fields_changed[stream].update(changes.keys())
        if action == "created":
            destination_id = None  # the plan client's placeholder: no row exists
        details["action"] = plan  # what would happen, in place of what happened
        details["dry_run"] = True
        status = list(status)
        if plan == "unchanged":
            status.append("unchanged")
        super().record(stream, key, action, destination_id, reason, status, details)

    def dead_letter(self, stream: str, code: Any) -> None:
        with self._lock:
            self.dead_codes[stream][str(code)] += 1

    def _rate(self, records: int, seconds: float) -> str:
        return f"planned at {records / seconds * 60 if seconds > 0 else 0:,.0f} records/min"

    def summary(self) -> list[str]:
        lines = []
        with self._lock:
            for stream, t in sorted(self.tallies.items()):
                unchanged = t.statuses["unchanged"]
                parts = [f"{t.created} to create", f"{t.updated - unchanged} to update"]
                if self.fields_changed[stream]:
                    fields = ", ".join(
                        f"{f} {n}" for f, n in self.fields_changed[stream].most_common(8)
                    )
                    parts[-1] += f" ({fields})"
                parts.append(f"{unchanged} unchanged")
                parts += [
                    f"{n} {what}"
                    for what, n in (("to delete", t.deleted), ("skipped", t.skipped))
                    if n
                ]
                parts += [f"{n} {s}" for s, n in sorted(t.statuses.items()) if s != "unchanged"]
                codes = ", ".join(f"{c}: {n}" for c, n in sorted(self.dead_codes[stream].items()))
                parts.append(f"{t.failed} to dead-letter" + (f" ({codes})" if codes else ""))
                lines.append(
                    f"Plan for stream '{stream}': {t.records} records: " + ", ".join(parts)
                )
            if self._file is not None:
                self._file.close()
                self._file = None
        for line in lines:
            self.logger.info("%s", line)
        if self.path is not None:
            self.logger.info(
                "Plan mode: nothing was written; the plan per record is in %s", self.path
            )
        return lines


class PlanDeadLetters(DeadLetterFile):
    """Counts would-be dead letters (the plan has them, with the reason); writes no file."""

    def __init__(self, path: Path, report: PlanReport) -> None:
        super().__init__(path)
        self.report = report

    def write(
        self, stream: str, key: Any, reason: str, record: dict[str, Any], code: Any = None, **_: Any
    ) -> None:
        with self._lock:
            self.counts[stream] += 1
            self.reasons[str(code)] += 1
        self.report.dead_letter(stream, code)

    @property
    def total(self) -> int:
        """None failed: a plan fails no record (the summary counts those it would)."""
        return 0


def scratch_copy(path: Path) -> Path:
    """A copy of `path` (a SQLite file, with its WAL) in a temporary folder, for a plan to use
    and drop; the folder's path when `path` does not exist."""
    folder = Path(tempfile.mkdtemp(prefix="plan-"))
    copy = folder / path.name
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            shutil.copy2(source, copy.with_name(copy.name + suffix))
    return copy


class DryRun:
    """Mixin for a `PipelinedTarget` (listed before it): `dry_run: true` swaps the run report
    and the dead-letter file for the plan's and emits no STATE. The target swaps its client for
    its plan client itself (`self.changes` collects what the writes would change)."""

    config: Any
    declared: dict[str, Any]
    logger: logging.Logger
    name: str
    report: RunReport
    dead_letters: DeadLetterFile

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dry_run = bool(self.declared.get("dry_run"))
        if not self.dry_run:
            return
        self.changes = Changes()
        path = self.report.path or DEFAULT_DIR / self.name / "plan.jsonl"
        if self.report.path is None:
            self._expire([path])  # type: ignore[attr-defined]  # keep_days, as for a report
        self.report = PlanReport(
            self.logger, path, self.report.ceiling_per_minute, changes=self.changes
        )
        self.dead_letters = PlanDeadLetters(self.dead_letters.path, self.report)
        self.logger.warning(
            "Plan mode (dry_run): the destination is read, nothing is written; no STATE is "
            "emitted. The plan goes to %s",
            path,
        )

    def _emit_state(self, state: dict) -> None:
        if not self.dry_run:
            super()._emit_state(state)  # type: ignore[misc]
