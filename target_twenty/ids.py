"""Stable Twenty ids for source records, and what the target remembers of its rows.

Each source record gets a UUIDv5 of (id namespace, stream, Singer key), sent as `id` with
`?upsert=true`: re-runs, retries and replays update the same row. A record the target wrote
into a row that existed before (a company typed in by hand with the same domain: *adopted*, or
another record's row under `on_unique_conflict: merge`) is written under that row's id: an
*alias*, remembered in a small SQLite file (`id_map_path`) so references resolve to the right
row in this run and in later ones.

The file also remembers which source key holds each unique value the target wrote (a domain,
an email) and which records wait for a value another key holds (a conflict), so later runs need
no lookup for records whose values did not move, and a value a record releases goes to the one
waiting for it. All of it is a cache: Twenty's rows say which source key owns them
(`target_twenty.identity`), so losing the file costs lookups, never a duplicate or a merge.

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
from typing import Any, NamedTuple

from connector_kit.files import private_file
from connector_kit.serialize import dumps, jsonable

_NAMESPACE = uuid.UUID("0c7c5d2e-6f5b-5e55-9a43-7477656e7479")


class Holder(NamedTuple):
    """A source record holding (or waiting for) a unique value, and its row."""

    stream: str
    key: str
    twenty_id: str


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
        # A new file knows nothing of earlier runs: every record is looked up in Twenty.
        self.fresh = not path.exists()
        private_file(path)  # 0600: its keys are personal data (SQLite gives its WAL the same)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process
        # A small page cache: the file grows with the workspace, memory must not (invariant 13).
        self._db.execute("PRAGMA cache_size=-256")
        self._db.execute("PRAGMA temp.cache_size=-256")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS aliases (scope TEXT, stream TEXT, key TEXT,"
            " twenty_id TEXT NOT NULL, PRIMARY KEY (scope, stream, key)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS deleted (scope TEXT, twenty_id TEXT, PRIMARY KEY"
            " (scope, twenty_id)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS holders (scope TEXT, field TEXT, value TEXT, stream TEXT,"
            " key TEXT, twenty_id TEXT, PRIMARY KEY (scope, field, value)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS holders_by_key ON holders (scope, stream, key)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS junction_rows (scope TEXT, owner TEXT, column TEXT,"
            " twenty_id TEXT, PRIMARY KEY (scope, twenty_id)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS junction_rows_by_owner ON junction_rows (scope, owner)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS conflicts (scope TEXT, field TEXT, value TEXT,"
            " stream TEXT, key TEXT, twenty_id TEXT, since INTEGER,"
            " PRIMARY KEY (scope, field, value, stream, key)) WITHOUT ROWID"
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

    def _select_in(self, query: str, fixed: tuple[Any, ...], values: Iterable[str]) -> list[Any]:
        """`query` ending in `IN ({marks})`, for `fixed` parameters and each distinct value."""
        values = list(dict.fromkeys(values))
        if not values:
            return []
        marks = ",".join("?" * len(values))
        with self._lock:
            return self._db.execute(query.format(marks=marks), (*fixed, *values)).fetchall()

    def ids(self, scope: str, stream: str, keys: Iterable[str]) -> dict[str, str]:
        """The Twenty id of each key: its alias if Twenty chose one, else the stable id."""
        keys = list(dict.fromkeys(keys))
        found = {k: stable_id(self.namespace, stream, k) for k in keys}
        found.update(
            self._select_in(
                "SELECT key, twenty_id FROM aliases WHERE scope=? AND stream=?"
                " AND key IN ({marks})",
                (scope, stream),
                keys,
            )
        )
        return found

    def save(
        self, scope: str, stream: str, written: Sequence[tuple[str | None, str]], keep: bool
    ) -> None:
        """Remember where keys were written, among `written` (key, Twenty id) pairs, in one
        transaction: an id other than the key's stable id is its alias; the stable id ends one.

        `keep`: also note the ids as present in Twenty for this run (records other streams
        reference).
        """
        aliases, own = [], []
        for k, i in written:
            if k is not None:
                (own if i == stable_id(self.namespace, stream, k) else aliases).append((k, i))
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO aliases VALUES (?,?,?,?)",
                [(scope, stream, k, i) for k, i in aliases],
            )
            if own:
                db.executemany(
                    "DELETE FROM aliases WHERE scope=? AND stream=? AND key=?",
                    [(scope, stream, k) for k, _ in own],
                )
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
        query = "SELECT key FROM arrived WHERE stream=? AND key IN ({marks})"
        return {r[0] for r in self._select_in(query, (stream,), keys)}

    def present(self, scope: str, twenty_ids: Iterable[str]) -> set[str]:
        """Those of `twenty_ids` known to be in Twenty since this run wrote or found them."""
        return self._among("present", scope, twenty_ids)

    def deleted(self, scope: str, twenty_ids: Iterable[str]) -> set[str]:
        """Those of `twenty_ids` the target soft-deleted and has not written since."""
        return self._among("deleted", scope, twenty_ids)

    def _among(self, table: str, scope: str, twenty_ids: Iterable[str]) -> set[str]:
        query = f"SELECT twenty_id FROM {table} WHERE scope=? AND twenty_id IN ({{marks}})"
        return {r[0] for r in self._select_in(query, (scope,), twenty_ids)}

    # Aliases ------------------------------------------------------------------------------
    def keys_at(self, scope: str, twenty_id: str) -> list[tuple[str, str]]:
        """The (stream, key) pairs aliased to a row."""
        with self._lock:
            return self._db.execute(
                "SELECT stream, key FROM aliases WHERE scope=? AND twenty_id=?", (scope, twenty_id)
            ).fetchall()

    # Unique values ------------------------------------------------------------------------
    def holders(
        self, scope: str, values: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], Holder]:
        """Who the target last gave each (field, value) to."""
        by_field: dict[str, list[str]] = {}
        for field_name, value in values:
            by_field.setdefault(field_name, []).append(value)
        found: dict[tuple[str, str], Holder] = {}
        query = (
            "SELECT value, stream, key, twenty_id FROM holders WHERE scope=? AND field=?"
            " AND value IN ({marks})"
        )
        for field_name, texts in by_field.items():  # one query a field, not one a value
            for value, *holder in self._select_in(query, (scope, field_name), texts):
                found[field_name, value] = Holder(*holder)
        return found

    def held_by(
        self, scope: str, stream: str, keys: Iterable[str]
    ) -> dict[str, list[tuple[str, str]]]:
        """The (field, value) pairs each key holds."""
        found: dict[str, list[tuple[str, str]]] = {}
        query = (
            "SELECT key, field, value FROM holders WHERE scope=? AND stream=? AND key IN ({marks})"
        )
        for key, field_name, value in self._select_in(query, (scope, stream), keys):
            found.setdefault(key, []).append((field_name, value))
        return found

    def remember(
        self,
        scope: str,
        stream: str,
        outcomes: Sequence[tuple[str, str, Sequence[tuple[str, str]], Sequence[tuple[str, str]]]],
    ) -> None:
        """After a batch: each (key, Twenty id, values it holds, values it waits for), in one
        transaction. A key's earlier holdings and waits are replaced."""
        keys = [(scope, stream, key) for key, _, _, _ in outcomes]
        with self._transaction() as db:
            db.executemany("DELETE FROM holders WHERE scope=? AND stream=? AND key=?", keys)
            db.executemany("DELETE FROM conflicts WHERE scope=? AND stream=? AND key=?", keys)
            db.executemany(
                "INSERT OR REPLACE INTO holders VALUES (?,?,?,?,?,?)",
                [
                    (scope, f, v, stream, key, twenty_id)
                    for key, twenty_id, holds, _ in outcomes
                    for f, v in holds
                ],
            )
            db.executemany(
                "DELETE FROM conflicts WHERE scope=? AND field=? AND value=? AND stream=?"
                " AND key=?",
                [(scope, f, v, stream, key) for key, _, holds, _ in outcomes for f, v in holds],
            )
            waits = [
                (scope, f, v, stream, key, twenty_id)
                for key, twenty_id, _, waits in outcomes
                for f, v in waits
            ]
            for row in waits:  # few: conflicts are rare
                db.execute(
                    "INSERT OR REPLACE INTO conflicts VALUES (?,?,?,?,?,?,"
                    " (SELECT coalesce(max(since), 0) + 1 FROM conflicts))",
                    row,
                )

    def add_hold(self, scope: str, holder: Holder, value: tuple[str, str]) -> None:
        """A record kept apart from `value` was given it: it holds it, waits no more."""
        field_name, text = value
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO holders VALUES (?,?,?,?,?,?)",
                (scope, field_name, text, holder.stream, holder.key, holder.twenty_id),
            )
            db.execute(
                "DELETE FROM conflicts WHERE scope=? AND field=? AND value=? AND stream=?"
                " AND key=?",
                (scope, field_name, text, holder.stream, holder.key),
            )

    def release(self, scope: str, stream: str, keys: Iterable[str]) -> None:
        """These keys hold and wait for no unique value any more (deleted or unlinked)."""
        rows = [(scope, stream, key) for key in keys]
        with self._transaction() as db:
            db.executemany("DELETE FROM holders WHERE scope=? AND stream=? AND key=?", rows)
            db.executemany("DELETE FROM conflicts WHERE scope=? AND stream=? AND key=?", rows)

    def unalias(self, scope: str, stream: str, keys: Iterable[str]) -> None:
        rows = [(scope, stream, key) for key in keys]
        with self._transaction() as db:
            db.executemany("DELETE FROM aliases WHERE scope=? AND stream=? AND key=?", rows)

    def aliased_rows(self, scope: str, twenty_ids: Iterable[str]) -> dict[str, str]:
        """Row id → the key text of a record aliased to it (any stream), for these rows."""
        query = "SELECT twenty_id, key FROM aliases WHERE scope=? AND twenty_id IN ({marks})"
        return dict(self._select_in(query, (scope,), twenty_ids))

    # Junction rows ------------------------------------------------------------------------
    def note_links(
        self, scope: str, written: Iterable[tuple[str, str, str]], forget: Iterable[str]
    ) -> None:
        """Junction rows the target wrote, as (record row, column, junction row), and those it
        removed."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO junction_rows VALUES (?,?,?,?)",
                [(scope, o, c, i) for o, c, i in written],
            )
            db.executemany(
                "DELETE FROM junction_rows WHERE scope=? AND twenty_id=?",
                [(scope, i) for i in forget],
            )

    def links_of(self, scope: str, owners: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """Each record row's junction rows the target wrote: (column, junction row id)."""
        found: dict[str, list[tuple[str, str]]] = {}
        query = (
            "SELECT owner, column, twenty_id FROM junction_rows WHERE scope=?"
            " AND owner IN ({marks})"
        )
        for owner, column, twenty_id in self._select_in(query, (scope,), owners):
            found.setdefault(owner, []).append((column, twenty_id))
        return found

    def waiting(self, scope: str, field_name: str, value: str) -> list[Holder]:
        """Records kept apart from (field, value), longest waiting first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT stream, key, twenty_id FROM conflicts WHERE scope=? AND field=?"
                " AND value=? ORDER BY since",
                (scope, field_name, value),
            ).fetchall()
        return [Holder(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
