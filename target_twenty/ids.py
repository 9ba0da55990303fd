"""Stable Twenty ids for source records, and the aliases Twenty chose instead.

Each source record gets a UUIDv5 of (id namespace, stream, Singer key), sent as `id` with
`?upsert=true`: re-runs, retries and replays update the same row. When Twenty matched the record
to a row that already existed by a unique field (a company typed in by hand with the same
domain), it answers with that row's id: an *alias*. Aliases are the only ids remembered, in a
small SQLite file, so references resolve to the right row in this run and in later ones.

The file also keeps, for this run only (temporary tables, so memory stays flat), which parent
records are known to be in Twenty, so a child batch needs no request to check its parents, and
which parent records came in this run (so a child that comes first waits for its parent); and,
across runs, which records the target deleted (until a later upsert revives them), so a child
that still references one leaves its link alone instead of failing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from json.encoder import encode_basestring  # json.dumps' own, with ensure_ascii=False
from pathlib import Path
from typing import Any

from target_kit.files import private_file
from target_kit.serialize import dumps, jsonable

_NAMESPACE = uuid.UUID("0c7c5d2e-6f5b-5e55-9a43-7477656e7479")


def key_text(values: Sequence[Any]) -> str:
    """A Singer key as text. `123` and `"123"` are one key: taps type ids differently per stream.

    The text is `json.dumps([str(v), …], ensure_ascii=False)` (ids made from it must never
    change), written out by hand: it is computed several times for every record.
    """
    texts = (str(v) if type(v) in (str, int) else str(jsonable(v)) for v in values)
    return "[" + ", ".join(map(encode_basestring, texts)) + "]"


@functools.lru_cache(maxsize=4096)  # a batch asks for each id twice: to send it, to save it
def stable_id(namespace: str, stream: str, key: str) -> str:
    """`str(uuid.uuid5(_NAMESPACE, name))`, without building a UUID object (most of its cost)."""
    name = f"{namespace}\x1f{stream}\x1f{key}".encode()
    raw = bytearray(hashlib.sha1(_NAMESPACE.bytes + name, usedforsecurity=False).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def content_key(payload: dict[str, Any]) -> str:
    """The key of a record from a stream without key properties: its content.

    Sending the same record again then updates the same row instead of adding a copy.
    """
    return "#" + hashlib.sha256(dumps(payload).encode()).hexdigest()


class IdStore:
    """Thread-safe alias store (`scope` is the object's metadata id: one per workspace)."""

    def __init__(self, path: Path, namespace: str) -> None:
        self.path = path
        self.namespace = namespace
        private_file(path)  # 0600: its keys are personal data (SQLite gives its WAL the same)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS aliases (scope TEXT, stream TEXT, key TEXT,"
            " twenty_id TEXT NOT NULL, PRIMARY KEY (scope, stream, key)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS deleted (scope TEXT, twenty_id TEXT, PRIMARY KEY"
            " (scope, twenty_id)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TEMP TABLE arrived (stream TEXT, key TEXT, PRIMARY KEY (stream, key))"
            " WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TEMP TABLE present (scope TEXT, twenty_id TEXT, PRIMARY KEY"
            " (scope, twenty_id)) WITHOUT ROWID"
        )
        # The run-only tables need no journal on disk: a journal in memory keeps ROLLBACK and
        # makes each batch's inserts several times cheaper.
        self._db.execute("PRAGMA temp.journal_mode=MEMORY")

    def ids(self, scope: str, stream: str, keys: Iterable[str]) -> dict[str, str]:
        """The Twenty id of each key: its alias if Twenty chose one, else the stable id."""
        keys = list(dict.fromkeys(keys))
        found = {k: stable_id(self.namespace, stream, k) for k in keys}
        if keys:
            marks = ",".join("?" * len(keys))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT key, twenty_id FROM aliases WHERE scope=? AND stream=?"
                    f" AND key IN ({marks})",
                    (scope, stream, *keys),
                ).fetchall()
            found.update(rows)
        return found

    def save(
        self, scope: str, stream: str, written: Sequence[tuple[str | None, str]], keep: bool
    ) -> None:
        """Remember the aliases among `written` (key, Twenty id) pairs, in one transaction.

        `keep`: also note the ids as present in Twenty for this run (records other streams
        reference).
        """
        aliases = [
            (scope, stream, k, i)
            for k, i in written
            if k is not None and i != stable_id(self.namespace, stream, k)
        ]
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO aliases VALUES (?,?,?,?)", aliases)
            if keep:
                db.executemany(
                    "INSERT OR IGNORE INTO present VALUES (?,?)", [(scope, i) for _, i in written]
                )
            # An upsert revives a soft-deleted record.
            db.executemany(
                "DELETE FROM deleted WHERE scope=? AND twenty_id=?",
                [(scope, i) for _, i in written],
            )

    def mark_present(self, scope: str, twenty_ids: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO present VALUES (?,?)", [(scope, i) for i in twenty_ids]
            )

    def mark_deleted(self, scope: str, twenty_ids: Iterable[str]) -> None:
        rows = [(scope, i) for i in twenty_ids]
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO deleted VALUES (?,?)", rows)
            db.executemany("DELETE FROM present WHERE scope=? AND twenty_id=?", rows)

    def mark_arrived(self, stream: str, keys: Iterable[str]) -> None:
        """Note records of `stream` as sent to be written in this run (whatever came of it)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO arrived VALUES (?,?)", [(stream, k) for k in keys]
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock: all of a change or none, and one commit for many
        rows (each statement outside a transaction commits on its own, at a cost per row)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def arrived(self, stream: str, keys: Iterable[str]) -> set[str]:
        """Those of `keys` whose `stream` records were sent to be written in this run."""
        keys = list(set(keys))
        if not keys:
            return set()
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows = self._db.execute(
                f"SELECT key FROM arrived WHERE stream=? AND key IN ({marks})", (stream, *keys)
            ).fetchall()
        return {r[0] for r in rows}

    def present(self, scope: str, twenty_ids: Iterable[str]) -> set[str]:
        """Those of `twenty_ids` known to be in Twenty since this run wrote or found them."""
        return self._among("present", scope, twenty_ids)

    def deleted(self, scope: str, twenty_ids: Iterable[str]) -> set[str]:
        """Those of `twenty_ids` the target soft-deleted and has not written since."""
        return self._among("deleted", scope, twenty_ids)

    def _among(self, table: str, scope: str, twenty_ids: Iterable[str]) -> set[str]:
        twenty_ids = list(set(twenty_ids))
        if not twenty_ids:
            return set()
        marks = ",".join("?" * len(twenty_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT twenty_id FROM {table} WHERE scope=? AND twenty_id IN ({marks})",
                (scope, *twenty_ids),
            ).fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
