"""The three OKKI streams.

- `companies`: `/v1/company/list` rows in the window, each merged with its `/v1/company/info`
  record (fetched concurrently, emitted in list order) — its `customers[]` included, for targets
  that load contacts inside the company (a Jiandaoyun subform); then the `removed=1` rows of
  the same window, emitted with `_sdc_deleted_at`.
- `contacts`: the `customers[]` of each company/info record: no calls of its own.
- `opportunities`: `/v1/opportunity/list` rows in the window.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

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

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # The last company's customers[]: the SDK syncs the child stream right after each
        # record, so one slot is enough and memory stays flat.
        self._contacts: tuple[int, list[dict]] | None = None
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
                    if row["company_id"] not in live.seen:  # restored since: the live row wins
                        yield _Removed(row)
                yield _Checkpoint(part.end)

        workers = int(self.config.get("detail_concurrency", 4))
        emitted = deleted = gone = 0
        for item, info in ordered_map(
            rows(), self._details, lambda i: isinstance(i, _Live), workers
        ):
            if isinstance(item, _Checkpoint):
                self.save_bookmark(context, item.moment)
            elif isinstance(item, _Removed):
                deleted += 1
                yield self._deleted_record(item.row)
            elif info is None:
                gone += 1
            else:
                emitted += 1
                yield self._merged_record(item.row, info)
        self.logger.info(
            "companies: %d emitted, %d deleted, %d gone before their details were read; "
            "%d list pages, %d re-scans",
            emitted,
            deleted,
            gone,
            live.pages + removed.pages,
            live.rescans + removed.rescans,
        )

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
        record = self.typed(merged)
        self._contacts = (record["company_id"], info.get("customers") or [])
        return record

    def _deleted_record(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        record = self.typed(row)
        record["_sdc_deleted_at"] = record.get("update_time")  # deleting set update_time
        return record

    # The SDK syncs a record's children before it writes the record itself. Targets that link
    # children to parents (a person to its company) want the parent first, so when companies
    # are written, each company's contacts are synced right after its RECORD message.
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

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"company_id": record["company_id"]}

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[Context | None]:
        if record.get("_sdc_deleted_at") is None:  # a deleted company has no contacts to read
            yield self.get_child_context(record, context)

    def take_contacts(self, company_id: int) -> list[dict]:
        held, self._contacts = self._contacts, None
        return held[1] if held and held[0] == company_id else []


class ContactsStream(OkkiStream):
    """Contacts of the companies read in this run (from their company/info records)."""

    name = "contacts"
    parent_stream_type = CompaniesStream
    primary_keys = ("customer_id",)
    schema = StreamSchema(SCHEMAS)
    state_partitioning_keys: t.ClassVar[list[str]] = []  # one state, not one per company

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: set[int] = set()
        self._schema_written = False

    def _write_schema_message(self) -> None:
        # The SDK announces a child stream's schema before each parent record's children;
        # once per run says the same (and spares targets thousands of identical messages).
        if not self._schema_written:
            super()._write_schema_message()
            self._schema_written = True

    @property
    def emit_activate_version_messages(self) -> bool:
        # Each company's contacts are synced on their own: a version per company would tell
        # targets to delete every other company's contacts.
        return False

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        companies = t.cast(CompaniesStream, self._tap.streams["companies"])
        for person in companies.take_contacts(context["company_id"]):
            record = self.typed({**person, "company_id": context["company_id"]})
            if record["customer_id"] not in self._seen:  # a contact moved between companies
                self._seen.add(record["customer_id"])
                yield record


class OpportunitiesStream(OkkiListStream):
    name = "opportunities"
    path = "/v1/opportunity/list"
    primary_keys = ("opportunity_id",)
    schema = StreamSchema(SCHEMAS)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        window = self.run_window(context)
        reader = self.reader(context)
        emitted = 0
        for part, first_page in reader.parts(window):
            for row in reader.rows(part, first_page):
                record = self.typed(row)
                if not record.get("customer_id"):
                    record["customer_id"] = None  # OKKI's 0: no main contact
                emitted += 1
                yield record
            self.save_bookmark(context, part.end)
        self.logger.info(
            "opportunities: %d emitted; %d list pages, %d re-scans",
            emitted,
            reader.pages,
            reader.rescans,
        )
