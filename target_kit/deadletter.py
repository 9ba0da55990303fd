"""The dead-letter file: every record a target could not write, with why (JSON Lines).

A STATE moves past a dead-lettered record: the record then lives only here, so the file is
made durable (`sync`, an fsync) before each STATE that may depend on it is written.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from target_kit.files import now_text
from target_kit.serialize import dumps, open_jsonl


class DeadLetterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = None
        self._unsynced = False
        self.counts: Counter[str] = Counter()  # per stream
        self.reasons: Counter[str] = Counter()  # per error code, for the summary

    def write(
        self, stream: str, key: Any, reason: str, record: dict[str, Any], code: Any = None
    ) -> None:
        line = dumps(
            {
                "at": now_text(),
                "stream": stream,
                "key": key,
                "code": code,
                "reason": reason,
                "record": record,
            }
        )
        with self._lock:
            if self._file is None:
                self._file = open_jsonl(self.path)
            self._file.write(line + "\n")
            self._file.flush()
            self._unsynced = True
            self.counts[stream] += 1
            self.reasons[str(code)] += 1

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
