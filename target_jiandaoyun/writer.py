"""Writing converted rows into one form: batch_create under a transaction_id, upsert by key.

batch_create (docs/api/jiandaoyun.md §3–4)
    At most 100 rows per call, each call under a `transaction_id` of its own: a random UUID,
    drawn for each batch. A re-send of that same batch (a retry after a lost answer, or after a
    partial failure: `success_count` below the number of rows) carries the same id, which
    creates only the rows still missing, until `success_count` covers them all; re-sends stop
    well within the hour the API remembers an id. Any other batch gets a new id, even one with
    the same rows: the API answers an id it knows by creating nothing, so an id derived from
    the content would silently drop a record created, deleted and restored with the same values,
    a form wiped and reloaded, or identical rows appended on purpose.
    `success_ids` lists only the rows that call created. When it lists fewer than
    `success_count` (the first answer was lost and a retry answered), in upsert mode the rows
    are looked up by key: a row found gives its id, a row missing is created again under a new
    id, so every created record is reported with its row. In append mode nothing can find a
    row: such rows are reported created without an id, and a crash re-run appends again what
    the last STATE did not cover (use a key_widget for exactly-once).

Upsert (when the stream has a key widget)
    The batch's keys are looked up with data/list and an `in` filter (200 values per call,
    paged by `data_id`, reading the mapped fields too); rows whose key exists are updated with
    data/update (several at once, paced at 20/s) unless they already hold the record's values
    (a re-sent record: nothing to write), the others batch-created. Within a batch the records
    of a key are applied in order as one row (a later value wins; a widget a later record does
    not carry keeps the earlier one's value). A key found on several rows updates the oldest
    and is reported.

    An update is first made whole (`StreamMapping.for_update`): keyed subforms merged with the
    stored rows, a deletion mark lifted. A row created must give every widget the form marks
    required a value, and an update must not empty one; a record that would is failed (code
    "required") without a call, unless `check_required_widgets` is off.

Delete (a record marked deleted, in a form with a key widget)
    The keys are looked up as for an upsert, and every row holding one is deleted with
    data/delete (several at once, paced at 20/s). A row that is gone by then (4001) is what was
    asked for, as is a key on no row. With `delete_mode: mark`, the rows are updated instead:
    the mark widget is set (data/update), unless it already holds that mark.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

from connector_kit.http import ApiError, RejectedError
from target_jiandaoyun.client import (
    BATCH_CREATE,
    BATCH_ROWS,
    DELETE,
    IN_VALUES,
    LIST,
    NO_SUCH_ROW,
    PAGE_ROWS,
    UPDATE,
    JiandaoyunApi,
)
from target_jiandaoyun.mapping import StreamMapping
from target_jiandaoyun.rows import missing_required, up_to_date, update_of
from target_jiandaoyun.values import holds, key_token

logger = logging.getLogger(__name__)

# A transaction_id is honoured for an hour; a re-send is never started later than this after the
# first attempt (one send, retries included, lasts at most ~8 minutes: see client.py).
RESEND_DEADLINE = 40 * 60.0
MAX_SENDS = 12  # sends of one partially failing batch before the run stops
UNNAMED = (
    "created; the API did not say which row (a re-sent batch: its first answer was lost, or "
    "part of it failed), and nothing finds a row without a key_widget"
)


class IncompleteBatch(ApiError):
    """A batch stayed partially written after every allowed re-send."""


@dataclass(frozen=True)
class RowResult:
    action: Literal["created", "updated", "deleted", "failed"]
    id: str | None = None  # the row's `_id`, when known
    reason: str | None = None  # why it failed, or a note (a key found on several rows)
    code: Any = None  # the API's error code of a failure
    status: tuple[str, ...] = ()  # beside the action: "marked" (deleted by a mark)


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FormWriter:
    def __init__(
        self, api: JiandaoyunApi, mapping: StreamMapping, update_pool: ThreadPoolExecutor
    ) -> None:
        self.api = api
        self.mapping = mapping
        self.form = mapping.form
        self.update_pool = update_pool
        self._lock = threading.Lock()
        self._types = {w.name: w.type for w in self.form.widgets}
        self.resends = 0  # re-sends after partial failures, for the summary
        self.unchanged = 0  # upserted rows that already held the record's values

    def write(self, rows: Sequence[dict[str, Any]], keys: Sequence[Any] | None) -> list[RowResult]:
        """Write `rows` (keys given: upsert); one result per row, in order."""
        if keys is None:
            return self.create(rows)
        return self.upsert(rows, keys)

    # Append ------------------------------------------------------------------------------------
    def create(self, rows: Sequence[dict[str, Any]]) -> list[RowResult]:
        # A new row needs no clearing: nulls (written by updates to empty a field) are left out.
        rows = [{k: v for k, v in row.items() if v["value"] is not None} for row in rows]
        results: list[RowResult | None] = [None] * len(rows)
        ready = []
        for index, row in enumerate(rows):
            problem = missing_required(self.mapping, row, creating=True)
            if problem:
                results[index] = RowResult("failed", reason=problem, code="required")
            else:
                ready.append(index)
        created: list[RowResult] = []
        for chunk in chunks([rows[i] for i in ready], BATCH_ROWS):
            created.extend(self._create_or_split(chunk))
        for index, result in zip(ready, created, strict=True):
            results[index] = result
        return [r for r in results if r is not None]

    def _create_or_split(self, rows: Sequence[dict[str, Any]]) -> list[RowResult]:
        """Create `rows`; when the API refuses their content, find the rows it refuses."""
        try:
            return [
                RowResult("created", row_id, None if row_id else UNNAMED)
                for row_id in self._create(rows)
            ]
        except RejectedError as exc:
            if len(rows) == 1:
                return [RowResult("failed", reason=f"{exc.code}: {exc.message}", code=exc.code)]
            logger.info(
                "Form %s refused a batch of %d rows (%s %s); splitting it to find the rows",
                self.form.ref,
                len(rows),
                exc.code,
                exc.message,
            )
            half = len(rows) // 2
            return self._create_or_split(rows[:half]) + self._create_or_split(rows[half:])

    def _create(self, rows: Sequence[dict[str, Any]]) -> list[str | None]:
        """batch_create until every row is in; the rows' ids when the API told them all."""
        body: dict[str, Any] = {
            "app_id": self.form.app_id,
            "entry_id": self.form.entry_id,
            "transaction_id": str(uuid.uuid4()),  # this batch's, for its re-sends only
            "is_start_workflow": self.mapping.is_start_workflow,
            "data_list": list(rows),
        }
        if self.mapping.data_creator:
            body["data_creator"] = self.mapping.data_creator
        started = time.monotonic()
        count = 0
        for send in range(1, MAX_SENDS + 1):
            try:
                answer = self.api.call(BATCH_CREATE, body)
            except RejectedError:
                if send == 1:
                    raise  # nothing was created: the caller may split the batch
                raise self._incomplete(body, count, send, "the API refused a re-send") from None
            count = int(answer.get("success_count") or 0)
            if count >= len(rows):
                ids = answer.get("success_ids") or []
                # Only a complete first answer tells which id belongs to which row.
                return list(ids) if send == 1 and len(ids) == len(rows) else [None] * len(rows)
            if time.monotonic() - started > RESEND_DEADLINE:
                break
            with self._lock:
                self.resends += 1
            logger.info(
                "Form %s: %d of %d rows created; re-sending the batch under transaction %s",
                self.form.ref,
                count,
                len(rows),
                body["transaction_id"],
            )
        raise self._incomplete(body, count, send, "re-sends did not complete it")

    def _incomplete(self, body: dict, count: int, sends: int, why: str) -> IncompleteBatch:
        return IncompleteBatch(
            BATCH_CREATE,
            "incomplete",
            f"stream '{self.mapping.stream}', form {self.form.ref}: only {count} of "
            f"{len(body['data_list'])} rows are in after {sends} sends of transaction "
            f"{body['transaction_id']} ({why}). No later STATE is written; a re-run re-sends "
            "these records (with a key_widget it cannot duplicate them).",
        )

    # Upsert ------------------------------------------------------------------------------------
    def upsert(self, rows: Sequence[dict[str, Any]], keys: Sequence[Any]) -> list[RowResult]:
        # The records of a key in one batch are applied in order as one row: a later value
        # wins, and what a later (partial) record does not carry stays as the earlier one set.
        last: dict[Hashable, int] = {}
        rows = list(rows)
        for index, key in enumerate(keys):
            token = key_token(key)
            if token in last:
                rows[index] = {**rows[last[token]], **rows[index]}
            last[token] = index
        winners = sorted(last.values())
        existing = self.find([keys[i] for i in winners], with_values=True)
        results: dict[int, RowResult] = {}
        updates: list[tuple[int, Future]] = []
        creates: list[int] = []
        for index in winners:
            found = existing.get(key_token(keys[index]))
            if not found:
                creates.append(index)
                continue
            oldest = found[0]["_id"]
            note = None
            if len(found) > 1:
                others = ", ".join(row["_id"] for row in found[1:])
                note = (
                    f"key {keys[index]!r} is on {len(found)} rows of form {self.form.ref}; "
                    f"wrote the oldest ({oldest}), left {others}"
                )
                logger.warning("Stream '%s': %s", self.mapping.stream, note)
            row = update_of(self.mapping, rows[index], found[0])
            problem = missing_required(self.mapping, row, creating=False)
            if problem:
                results[index] = RowResult("failed", oldest, problem, "required")
                continue
            if up_to_date(self.mapping, row, found[0]):
                # A re-sent record (crash re-run, overlapping bookmark): nothing to write.
                results[index] = RowResult("updated", oldest, note or "already up to date")
                with self._lock:
                    self.unchanged += 1
                continue
            future = self.update_pool.submit(self._update, oldest, row)
            updates.append((index, future))
            results[index] = RowResult("updated", oldest, note)
        try:
            created = self._create_found([rows[i] for i in creates], [keys[i] for i in creates])
        finally:
            failure = self._collect_updates(updates, results)
        if failure is not None:
            raise failure
        results.update(zip(creates, created, strict=True))
        return [results[last[key_token(key)]] for key in keys]

    def _create_found(self, rows: Sequence[dict], keys: Sequence[Any]) -> list[RowResult]:
        """Create rows of keys no row holds; each created one comes back with its row id.

        A row the API counted as created without naming it (a lost answer, a partial failure)
        is looked up by its key; one that is not there is created again under a new
        transaction id, once, and dead-lettered if even that does not put it in the form.
        """
        results = self.create(rows)
        for again in (True, False):
            unnamed = [n for n, r in enumerate(results) if r.action == "created" and not r.id]
            found = self.find([keys[n] for n in unnamed]) if unnamed else {}
            missing = []
            for n in unnamed:
                holding = found.get(key_token(keys[n]))
                if holding:
                    results[n] = replace(results[n], id=holding[0]["_id"], reason=None)
                else:
                    missing.append(n)
            if not missing:
                break
            if not again:
                for n in missing:
                    results[n] = RowResult(
                        "failed",
                        reason="the API counted it as created, twice, yet no row holds its key",
                        code="not-created",
                    )
                break
            logger.warning(
                "Stream '%s', form %s: %d row(s) counted as created are not in the form; "
                "creating them again under a new transaction_id",
                self.mapping.stream,
                self.form.ref,
                len(missing),
            )
            for n, result in zip(missing, self.create([rows[n] for n in missing]), strict=True):
                results[n] = result
        return results

    def _collect_updates(
        self, updates: list[tuple[int, Future]], results: dict[int, RowResult]
    ) -> BaseException | None:
        failure = None
        for index, future in updates:
            try:
                future.result()
            except RejectedError as exc:
                reason = f"{exc.code}: {exc.message}"
                results[index] = RowResult("failed", results[index].id, reason, exc.code)
            except BaseException as exc:
                failure = failure or exc
        return failure

    def _update(self, data_id: str, row: dict[str, Any]) -> None:
        body = {
            "app_id": self.form.app_id,
            "entry_id": self.form.entry_id,
            "data_id": data_id,
            "data": row,
        }
        self.api.call(UPDATE, body)

    # Delete ------------------------------------------------------------------------------------
    def delete(
        self, keys: Sequence[Any], marks: Sequence[dict[str, Any]] | None = None
    ) -> list[RowResult]:
        """Delete every row holding each key, or, given `marks` (one update per key: see
        `StreamMapping.mark_row`), mark it deleted; one result per key, in order."""
        found = self.find(keys, with_values=marks is not None)
        if marks is None:
            jobs = {
                row["_id"]: (self._delete, row["_id"]) for rows in found.values() for row in rows
            }
        else:
            jobs = {}
            for key, mark in zip(keys, marks, strict=True):
                for row in found.get(key_token(key), []):
                    if not self._holds_mark(mark, row):
                        jobs[row["_id"]] = (self._update, row["_id"], mark)
        futures = {row_id: self.update_pool.submit(*job) for row_id, job in jobs.items()}
        refused: dict[str, RejectedError] = {}
        failure = None
        for row_id, future in futures.items():
            try:
                future.result()
            except RejectedError as exc:
                refused[row_id] = exc
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        results = []
        for key in keys:
            ids = [row["_id"] for row in found.get(key_token(key), [])]
            errors = [refused[i] for i in ids if i in refused]
            if errors:
                reason = f"{errors[0].code}: {errors[0].message}"
                results.append(RowResult("failed", ids[0], reason, errors[0].code))
            elif not ids:
                reason = "no row holds this key (never written, or deleted already)"
                results.append(RowResult("deleted", None, reason))
            elif marks is None:
                note = f"deleted the {len(ids)} rows holding this key" if len(ids) > 1 else None
                results.append(RowResult("deleted", ids[0], note))
            else:
                assert self.mapping.mark is not None
                note = f"marked {self.mapping.mark.describe()}"
                note += f" on the {len(ids)} rows holding this key" if len(ids) > 1 else ""
                results.append(RowResult("deleted", ids[0], note, status=("marked",)))
        return results

    def _holds_mark(self, mark: dict[str, Any], stored: dict[str, Any]) -> bool:
        """Whether a stored row already carries this deletion mark (a deletion sent again)."""
        return all(
            holds(self._types[name], wrapped["value"], stored.get(name))
            for name, wrapped in mark.items()
        )

    def _delete(self, data_id: str) -> None:
        body = {"app_id": self.form.app_id, "entry_id": self.form.entry_id, "data_id": data_id}
        try:
            self.api.call(DELETE, body)
        except RejectedError as exc:
            if exc.code != NO_SUCH_ROW:  # a row deleted meanwhile is what was asked for
                raise

    def find(
        self, keys: Sequence[Any], with_values: bool = False
    ) -> dict[Hashable, list[dict[str, Any]]]:
        """The rows holding each key, oldest first (data/list answers in `_id` order).

        Each row has its `_id` and key; `with_values` adds every mapped field.
        """
        assert self.mapping.key is not None
        widget = self.mapping.key.widget
        fields = self.mapping.widget_names if with_values else [widget.name]
        unique = list({key_token(k): k for k in keys}.values())
        found: dict[Hashable, list[dict[str, Any]]] = defaultdict(list)
        for values in chunks(unique, IN_VALUES):
            body: dict[str, Any] = {
                "app_id": self.form.app_id,
                "entry_id": self.form.entry_id,
                "limit": PAGE_ROWS,
                "fields": fields,
                "filter": {
                    "rel": "and",
                    "cond": [
                        {
                            "field": widget.name,
                            "type": widget.type,
                            "method": "in",
                            "value": list(values),
                        }
                    ],
                },
            }
            while True:
                page = self.api.call(LIST, body).get("data") or []
                for row in page:
                    found[key_token(row.get(widget.name))].append(row)
                if len(page) < PAGE_ROWS:
                    break
                body["data_id"] = page[-1]["_id"]
        return found
