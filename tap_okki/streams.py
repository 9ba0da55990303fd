"""The five OKKI streams.

- `companies`: `/v1/company/list` rows in the window, each merged with its `/v1/company/info`
  record (fetched concurrently, emitted in list order) — its `customers[]` included, for targets
  that load contacts inside the company (a Jiandaoyun subform); then the `removed=1` rows of
  the same window, emitted with `_sdc_deleted_at`.
- `contacts`: the `customers[]` of each company/info record: no calls of its own. A contact
  that moves between companies during a run is emitted under each (the later one is newer).
- `next_follow_ups`: each company's planned next follow-up, one record per company read (no
  calls of its own), so a target can make it a task beside the company.
- `opportunities`: `/v1/opportunity/list` rows in the window; a row OKKI marks deleted
  (`enable_flag` 0) is emitted with `_sdc_deleted_at` (what OKKI shows of deleted
  opportunities, and what it does not: docs/api/okki.md §8).

- `follow_ups`: `/v1/dynamic/trail/list` rows of the whole account, one list over the window
  (see `FollowUpsStream`); deleted ones with `_sdc_deleted_at`.

Every record is typed by its stream's schema (`OkkiStream.typed`): open fields pass through as
OKKI sent them, and a value that cannot be converted is kept under `_okki_unconverted`.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from logging import ERROR
from pathlib import Path

from singer_sdk import metrics
from singer_sdk.exceptions import AbortedSyncFailedException, AbortedSyncPausedException
from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_okki.client import COMPANY_INFO_PATH, OkkiListStream, OkkiStream
from tap_okki.errors import CompanyNotFound
from tap_okki.pipeline import ordered_map

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

SCHEMAS = SchemaDirectory(Path(__file__).parent / "schemas")  # <stream name>.json


@dataclass(frozen=True)
class _Live:
    row: dict[str, t.Any]


@dataclass(frozen=True)
class _Removed:
    row: dict[str, t.Any]
    window_end: dt.datetime  # it was deleted by then


@dataclass(frozen=True)
class _Checkpoint:
    """Every row up to `moment` has been handed on: the bookmark may move there."""

    moment: dt.datetime


class CompaniesStream(OkkiListStream):
    name = "companies"
    path = "/v1/company/list"
    primary_keys = ("company_id",)
    schema = StreamSchema(SCHEMAS)
    extra_list_params: t.ClassVar[dict[str, t.Any]] = {"all": 1, "time_type": 1}
    summed_endpoint = COMPANY_INFO_PATH

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # The last company read, for the child streams: the SDK syncs them right after each
        # record, so one slot is enough and memory stays flat. (id, typed record, customers[])
        self._last: tuple[int, dict[str, t.Any], list[dict]] | None = None
        self._children_of: tuple[dict, Context | None, Context | None] | None = None

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        window = self.run_window(context)
        live = self.reader(context, removed=0)
        removed = self.reader(context, label="deleted companies", removed=1)

        def rows() -> Iterator[_Live | _Removed | _Checkpoint]:
            for part, first_page in live.parts(window):
                for row in live.rows(part, first_page):
                    yield _Live(row)
                for row in removed.rows(part):
                    if live.key_of(row) not in live.seen:  # restored since: the live row wins
                        yield _Removed(row, part.end)
                yield _Checkpoint(part.end)

        workers = self.settings.detail_concurrency
        emitted = deleted = gone = 0
        for item, info in ordered_map(
            rows(), self._details, lambda i: isinstance(i, _Live), workers
        ):
            if isinstance(item, _Checkpoint):
                self.save_bookmark(context, item.moment)
            elif isinstance(item, _Removed):
                deleted += 1
                yield self._deleted_record(item)
            elif info is None:
                gone += 1
            else:
                emitted += 1
                yield self._merged_record(item.row, info)
        self.logger.info(
            "companies: %d emitted, %d deleted, %d gone before their details were read; "
            "%d list pages, %d re-scans; details: %s%s",
            emitted,
            deleted,
            gone,
            live.pages + removed.pages,
            live.rescans + removed.rescans,
            self.summed_calls,
            self.unconverted_summary(),
        )
        for child in self.child_streams:
            t.cast(CompanyChildStream, child).log_run_total()

    def _details(self, item: _Live) -> dict[str, t.Any] | None:
        company_id = item.row["company_id"]
        try:
            body = self.get_data(COMPANY_INFO_PATH, {"company_id": company_id}, None)
        except CompanyNotFound as missing:
            # Deleted after the list was read: the next run sees it in the removed list.
            self.logger.warning("companies: skipping %s (OKKI: code 404)", missing)
            return None
        return body.get("data") or {}

    def _merged_record(self, row: dict[str, t.Any], info: dict[str, t.Any]) -> dict[str, t.Any]:
        merged = {**row, **info, "_sdc_deleted_at": None}
        record = self.typed(merged, COMPANY_INFO_PATH, row["company_id"])
        self._last = (record["company_id"], record, info.get("customers") or [])
        return record

    def _deleted_record(self, removed: _Removed) -> dict[str, t.Any]:
        record = self.typed(removed.row, self.path)
        # Deleting set update_time; if OKKI sent it in a layout we cannot read, the deletion
        # still happened inside the window.
        deleted_at = record.get("update_time") or removed.window_end.isoformat()
        record["_sdc_deleted_at"] = deleted_at
        return record

    # The SDK syncs a record's children before it writes the record itself. Targets that link
    # children to parents (a person to its company) want the parent first, so when companies
    # are written, each company's contacts are synced right after its RECORD message.
    # Private SDK API, with `_write_record_message` and `_sync_children`
    # (tests/test_sdk_contract.py): the SDK has no public hook around a record's children.
    def _process_record(
        self,
        record: dict,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        if self.selected:
            self._children_of = (record, child_context, partition_context)
        else:
            super()._process_record(record, child_context, partition_context)

    def _write_record_message(self, record: dict) -> None:
        super()._write_record_message(record)
        held, self._children_of = self._children_of, None
        if held is not None:
            super()._process_record(*held)

    def _sync_children(self, child_context: Context | None) -> None:
        # Instead of the SDK's `child.sync(context)` for every company (see `sync_company`).
        for child in self.child_streams:
            if child_context is not None and child.selected:
                t.cast(CompanyChildStream, child).sync_company(child_context)

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"company_id": record["company_id"]}

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[Context | None]:
        if record.get("_sdc_deleted_at") is None:  # a deleted company has no contacts to read
            yield self.get_child_context(record, context)

    def last_company(self, company_id: int) -> tuple[dict[str, t.Any], list[dict]]:
        """The typed record and the raw `customers[]` of the company just read, if it is the
        one asked for; else nothing."""
        if self._last is None or self._last[0] != company_id:
            return {}, []
        return self._last[1], self._last[2]


class CompanyChildStream(OkkiStream):
    """Records made from each company/info record the companies stream reads: no calls."""

    parent_stream_type = CompaniesStream
    state_partitioning_keys: t.ClassVar[list[str]] = []  # one state, not one per company

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._counter: metrics.Counter | None = None  # of the whole run
        self._companies = 0

    def sync_company(self, context: Context) -> None:
        """What `Stream.sync(context)` does for one company's records, less its per-call costs.

        The SDK's child sync builds a timer and a counter and logs three lines (a start line,
        two METRIC lines) for every company: more work than the records themselves, and
        thousands of lines of no use. Here the SCHEMA and the start line go out once, records
        and STATE as `Stream.sync` writes them, and the count once at the end of the run
        (`log_run_total`). No ACTIVATE_VERSION: a version per company would tell targets to
        delete every other company's records.
        """
        # Private SDK API below (`_write_schema_message`, `_check_max_record_limit`,
        # `_write_record_message`, `_increment_stream_state`, `_write_state_message`): the
        # steps of `Stream.sync`, which has no public part per step (tests/test_sdk_contract.py).
        if self._counter is None:
            self.log("Beginning sync of '%s' with each company's details", self.name)
            self._write_schema_message()
            self._counter = self.get_record_counter()
            self._counter.__enter__()  # left in `log_run_total`
        self._companies += 1
        written = 0
        try:
            for record in self.get_records(context):
                self._check_max_record_limit(written)  # a dry run's limit, per company as before
                processed = self.post_process(record, context)
                if processed is None:
                    continue
                self._write_record_message(processed)
                self._increment_stream_state(processed, context=context)
                self._counter.increment()
                written += 1
        except (AbortedSyncFailedException, AbortedSyncPausedException):
            pass  # the dry-run limit: the next company goes on, as in `Stream._sync_children`
        except Exception:
            self.log("An unhandled error occurred while syncing '%s'", self.name, level=ERROR)
            raise
        self._write_state_message()

    def log_run_total(self) -> None:
        """One record count for the run (the SDK's METRIC line), and the same for people."""
        if self._counter is not None:
            emitted = self._counter.value
            self._counter.__exit__(None, None, None)
            self.logger.info(
                "%s: %d emitted from %d companies%s",
                self.name,
                emitted,
                self._companies,
                self.unconverted_summary(),
            )
            self._counter = None

    @property
    def companies(self) -> CompaniesStream:
        return t.cast(CompaniesStream, self.okki.streams["companies"])


class ContactsStream(CompanyChildStream):
    """Contacts of the companies read in this run (from their company/info records)."""

    name = "contacts"
    primary_keys = ("customer_id",)
    schema = StreamSchema(SCHEMAS)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        company_id = context["company_id"]
        for person in self.companies.last_company(company_id)[1]:
            yield self.typed({**person, "company_id": company_id}, COMPANY_INFO_PATH, company_id)


class NextFollowUpsStream(CompanyChildStream):
    """Each live company's next planned follow-up, one record per company read.

    The company record already carries `next_follow_up_time`; as a stream of its own it can
    become a task (Twenty's `tasks`, keyed by the company) beside the company itself. Null when
    none is planned (OKKI's `1970-01-01 00:00:00`); a time in the past when the plan passed.
    """

    name = "next_follow_ups"
    primary_keys = ("company_id",)
    schema = StreamSchema(SCHEMAS)
    FIELDS = ("company_id", "name", "next_follow_up_time", "user_id", "update_time")

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        company = self.companies.last_company(context["company_id"])[0]
        if company:  # already typed by the companies stream
            yield {name: company.get(name) for name in self.FIELDS}


class OpportunitiesStream(OkkiListStream):
    name = "opportunities"
    path = "/v1/opportunity/list"
    primary_keys = ("opportunity_id",)
    schema = StreamSchema(SCHEMAS)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        window = self.run_window(context)
        reader = self.reader(context)
        emitted = deleted = 0
        for part, first_page in reader.parts(window):
            for row in reader.rows(part, first_page):
                record = self.typed(row, self.path)
                if not record.get("customer_id"):
                    record["customer_id"] = None  # OKKI's 0: no main contact
                # listed, but deleted (docs/api/okki.md §8)
                if _mark_deleted(record, record.get("enable_flag") == 0, part.end):
                    deleted += 1
                else:
                    emitted += 1
                yield record
            self.save_bookmark(context, part.end)
        self.logger.info(
            "opportunities: %d emitted, %d deleted; %d list pages, %d re-scans%s",
            emitted,
            deleted,
            reader.pages,
            reader.rescans,
            self.unconverted_summary(),
        )


class FollowUpsStream(OkkiListStream):
    """Follow-ups (跟进动态: calls, meetings, emails, notes) of the whole account.

    One list over the window, without a company filter: the endpoint takes none (its filters
    are optional, docs/api/okki.md §9), so a page of 100 follow-ups costs one call, where
    reading per changed company would cost a call per company at least, and would miss
    follow-ups whose company did not change.

    OKKI lists follow-ups by when they happened (`create_time`), which a user may set in the
    past and which editing or deleting one does not move. So each run re-reads
    `follow_ups_lookback_days` before its bookmark (pages only), and emits from it what was
    written since the last run (update time from the bookmark minus `lookback_minutes` on):
    new, backdated, edited and deleted follow-ups, not the unchanged ones again. Changes to
    follow-ups that happened before the look-back are seen by a full refresh.
    """

    name = "follow_ups"
    path = "/v1/dynamic/trail/list"
    primary_keys = ("trail_id",)
    replication_key = "create_time"
    schema = StreamSchema(SCHEMAS)

    def lookback(self) -> dt.timedelta:
        days = dt.timedelta(days=self.settings.follow_ups_lookback_days)
        return max(super().lookback(), days)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        bookmark = self.bookmark(context)
        since = bookmark - super().lookback() if bookmark else None  # None: emit them all
        window = self.run_window(context)
        reader = self.reader(context)
        emitted = deleted = unchanged = 0
        for part, first_page in reader.parts(window):
            for row in reader.rows(part, first_page):
                record = self.typed(row, self.path, row.get("company_id"))
                if since and not _written_since(record, since):
                    unchanged += 1
                    continue
                record["customer_id"] = [c for c in record.get("customer_id") or [] if c]
                for reference in ("opportunity_id", "lead_id"):
                    if not record.get(reference):
                        record[reference] = None  # OKKI's 0: none
                gone = record.get("delete_flag") == 1 or record.get("enable_flag") == 0
                if _mark_deleted(record, gone, part.end):
                    deleted += 1
                else:
                    emitted += 1
                yield record
            self.save_bookmark(context, part.end)
        self.logger.info(
            "follow_ups: %d emitted, %d deleted, %d read again unchanged (look-back); "
            "%d list pages, %d re-scans%s",
            emitted,
            deleted,
            unchanged,
            reader.pages,
            reader.rescans,
            self.unconverted_summary(),
        )


def _mark_deleted(record: dict[str, t.Any], gone: bool, window_end: dt.datetime) -> bool:
    """Set `_sdc_deleted_at` (OKKI's last update, else the window's end) on a row OKKI lists as
    deleted, None on a live one; whether it is deleted."""
    record["_sdc_deleted_at"] = (
        (record.get("update_time") or window_end.isoformat()) if gone else None
    )
    return gone


def _written_since(record: dict[str, t.Any], since: dt.datetime) -> bool:
    """Whether a follow-up was written (or happened) at or after `since`; when OKKI's times
    cannot tell, it counts as written (sending it again is harmless, missing it is not)."""
    times = [record.get("update_time"), record.get("create_time")]
    if any(moment is None for moment in times):
        return True
    return any(dt.datetime.fromisoformat(moment) >= since for moment in times)
