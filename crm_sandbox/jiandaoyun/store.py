"""The rows of every form, and the batch transactions (docs/api/jiandaoyun.md §3–§6).

Rows are stored by widget id (`widgetName`), so renaming an alias keeps the data, and read by
`name`. Row ids are 24 hex digits, increasing in creation order, so ascending `_id` is
creation order.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crm_sandbox.jiandaoyun.forms import Form
from crm_sandbox.jiandaoyun.values import Issue, format_time, member, render, write_row


@dataclass
class Row:
    id: str
    values: dict[str, Any]  # by widget id, in read shape
    creator: str
    updater: str
    created: str
    updated: str


@dataclass
class Transaction:
    """What one `transaction_id` created: rows by their position in `data_list`."""

    form: str
    started: float  # time.monotonic() of the first attempt
    created: dict[int, str] = field(default_factory=dict)


class TransactionConflict(ValueError):
    """The transaction id was already used for another form."""


class Table:
    """One form's rows, in ascending `_id`."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.ids: list[str] = []  # sorted, for the cursor
        self.serial = 0  # last serial number (`sn` widgets) handed out

    def add(self, row: Row) -> None:
        self.rows[row.id] = row
        self.ids.append(row.id)  # ids only grow, so the list stays sorted

    def remove(self, row_id: str) -> None:
        del self.rows[row_id]
        self.ids.pop(bisect.bisect_left(self.ids, row_id))

    def after(self, cursor: str | None) -> Iterator[Row]:
        start = bisect.bisect_right(self.ids, cursor) if cursor else 0
        for row_id in self.ids[start:]:
            yield self.rows[row_id]


class Store:
    def __init__(self, seed: int) -> None:
        # ObjectId-like: a fixed timestamp (2024-01-01), then seeded random bits, then a counter.
        rng = random.Random(f"jiandaoyun-ids-{seed}")
        self._last_id = (0x65920080 << 64) | (rng.getrandbits(40) << 24)
        self.tables: dict[str, Table] = {}
        self.transactions: dict[str, Transaction] = {}

    def new_id(self) -> str:
        self._last_id += 1
        return f"{self._last_id:024x}"

    def table(self, form: Form) -> Table:
        return self.tables.setdefault(form.key, Table())

    # Writes -----------------------------------------------------------------------------------

    def create(self, form: Form, data: dict[str, Any], creator: str) -> tuple[Row, list[Issue]]:
        row_id = self.new_id()  # before its subform rows' ids
        values, issues = write_row(form.widgets, data, self.new_id)
        table = self.table(form)
        for widget in form.widgets:
            if widget["type"] == "sn":
                table.serial += 1
                values[widget["widgetName"]] = f"{table.serial:06d}"
        now = _now()
        row = Row(row_id, values, creator, creator, now, now)
        table.add(row)
        return row, issues

    def create_batch(
        self,
        form: Form,
        data_list: list[dict[str, Any]],
        creator: str,
        transaction: Transaction | None,
        fails: Callable[[], bool],
    ) -> tuple[list[str], int, list[Issue]]:
        """Create the rows not yet created under `transaction` (all without one).

        Returns the ids created now, the success count (rows created under the transaction so
        far, or now when there is none) and what was not kept of the values.
        """
        created: list[str] = []
        issues: list[Issue] = []
        for position, data in enumerate(data_list):
            if transaction is not None and position in transaction.created:
                continue
            if fails():
                continue
            row, row_issues = self.create(form, data, creator)
            created.append(row.id)
            issues.extend(row_issues)
            if transaction is not None:
                transaction.created[position] = row.id
        count = len(transaction.created) if transaction is not None else len(created)
        return created, count, issues

    def update(
        self, form: Form, row_id: str, data: dict[str, Any], updater: str
    ) -> tuple[Row, list[Issue]]:
        """Change the written fields (a subform is replaced whole); KeyError if no such row."""
        row = self.table(form).rows[row_id]
        values, issues = write_row(form.widgets, data, self.new_id, old=row.values)
        row.values.update(values)
        row.updater = updater
        row.updated = _now()
        return row, issues

    def delete(self, form: Form, row_id: str) -> None:
        """KeyError if there is no such row."""
        self.table(form).remove(row_id)

    def transaction(self, transaction_id: str, form: Form, ttl: float | None) -> Transaction:
        """The transaction of this id; a new one when unknown or older than `ttl` seconds."""
        now = time.monotonic()
        known = self.transactions.get(transaction_id)
        if known is not None and (ttl is None or now - known.started < ttl):
            if known.form != form.key:
                raise TransactionConflict(f"transaction_id already used for form {known.form}")
            return known
        self.transactions[transaction_id] = Transaction(form.key, now)
        return self.transactions[transaction_id]

    # Reads ------------------------------------------------------------------------------------

    def read(self, form: Form, row: Row) -> dict[str, Any]:
        """A row in read shape: `_id`, every widget by name, the system fields."""
        return {
            "_id": row.id,
            **render(form.widgets, row.values),
            "appId": form.app_id,
            "entryId": form.entry_id,
            "creator": member(row.creator),
            "updater": member(row.updater),
            "deleter": None,
            "createTime": row.created,
            "updateTime": row.updated,
            "deleteTime": None,
        }

    def rows(self, form: Form, cursor: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows in read shape and ascending `_id`, after `cursor` when given."""
        for row in self.table(form).after(cursor):
            yield self.read(form, row)


def _now() -> str:
    return format_time(datetime.now(UTC))
