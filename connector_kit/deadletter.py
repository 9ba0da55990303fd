"""The dead-letter file: every record a target could not write, with why (JSON Lines).

A STATE moves past a dead-lettered record: the record then lives only here, so the file is
made durable (`sync`, an fsync) before each STATE that may depend on it is written.

Each line: `at`, `run` (the run id), `stream`, `key`, `code`, `reason`, `record`, and `schema`:
the id of the stream's SCHEMA (its JSON schema and key properties) in the file beside it,
`<file>.schemas.jsonl`, written once per schema. With both, the records can be sent again as
Singer messages once the cause is fixed (`connector_kit/replay.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from singer_sdk import typing as th

from connector_kit.files import now_text
from connector_kit.serialize import dumps, open_jsonl

# A stream's schema and key properties, as its sink holds them (None: unknown).
Describe = Callable[[str], tuple[dict[str, Any], list[str]] | None]


def dead_letter_setting(target: str) -> th.Property:
    """The `dead_letter_path` setting, with the default the target really uses."""
    return th.Property(
        "dead_letter_path",
        th.StringType,
        default=f"output/{target}/dead-letters.jsonl",
        description="JSON Lines file that receives every record that could not be written, "
        "with its stream, key and the reason, and beside it `<file>.schemas.jsonl` with the "
        "streams' schemas, so `--replay FILE` can send them again. Created (0600: it holds "
        "personal data) on the first failure; relative to the working directory.",
    )


def schemas_path(path: Path) -> Path:
    return path.with_name(path.name + ".schemas.jsonl")


def schema_id(schema: dict[str, Any], key_properties: list[str]) -> str:
    text = json.dumps([schema, key_properties], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DeadLetterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = None
        self._unsynced = False
        self.counts: Counter[str] = Counter()  # per stream
        self.reasons: Counter[str] = Counter()  # per error code, for the summary
        self.run_id: str | None = None
        self.describe: Describe = lambda stream: None
        self._schemas_written: set[str] | None = None

    def write(
        self, stream: str, key: Any, reason: str, record: dict[str, Any], code: Any = None
    ) -> None:
        described = self.describe(stream)
        line: dict[str, Any] = {
            "at": now_text(),
            "run": self.run_id,
            "stream": stream,
            "key": key,
            "code": code,
            "reason": reason,
            "record": record,
        }
        with self._lock:
            if described is not None:
                line["schema"] = self._schema(stream, *described)
            if self._file is None:
                self._file = open_jsonl(self.path)
            self._file.write(dumps(line) + "\n")
            self._file.flush()
            self._unsynced = True
            self.counts[stream] += 1
            self.reasons[str(code)] += 1

    def _schema(self, stream: str, schema: dict[str, Any], key_properties: list[str]) -> str:
        """The schema's id, written to the schemas file the first time (lock held)."""
        ident = schema_id(schema, key_properties)
        path = schemas_path(self.path)
        if self._schemas_written is None:
            self._schemas_written = {s["id"] for s in read_schemas(path).values()}
        if ident not in self._schemas_written:
            entry = {
                "id": ident,
                "stream": stream,
                "schema": schema,
                "key_properties": key_properties,
            }
            with open_jsonl(path) as file:
                file.write(dumps(entry) + "\n")
            self._schemas_written.add(ident)
        return ident

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def sync(self) -> None:
        """Make every line written so far durable (a no-op when nothing new was written)."""
        with self._lock:
            if self._file is not None and self._unsynced:
                os.fsync(self._file.fileno())
                self._unsynced = False

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_schemas(path: Path) -> dict[str, dict[str, Any]]:
    """The schemas file: id → {"id", "stream", "schema", "key_properties"}."""
    if not path.exists():
        return {}
    entries = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {entry["id"]: entry for entry in entries}
