"""`PipelinedSink`: a BatchSink whose batches go to the target's Dispatcher.

Subclasses implement `write_records(records)` and `delete_records(records)` (run on a worker
thread: send, then report every record as written, deleted, skipped or dead-lettered) and may
override `batch_keys` / `batch_needs` / `batch_clears` to declare ordering constraints.

A record whose `_sdc_deleted_at` is set (the Singer mark of a record deleted at the source) goes
to `delete_records` unless the setting `process_deletes` is false; then it is written like any
other record.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers._typing import get_datelike_property_type  # private: see test_sdk_contract
from singer_sdk.sinks import BatchSink

from connector_kit.validation import check_references, compiled_validator, violations

if TYPE_CHECKING:
    from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
    from singer_sdk.sinks.core import BaseJSONSchemaValidator

    from connector_kit.pipeline import Ticket
    from connector_kit.target import PipelinedTarget

_sink_numbers = itertools.count(1)

# Singer metadata columns a tap may add (tap-jsonl adds `_sdc_filename`, …): never data.
SDC_PREFIX = "_sdc_"
DELETED_AT = "_sdc_deleted_at"


def is_deleted(record: dict[str, Any]) -> bool:
    return record.get(DELETED_AT) not in (None, "")


class PipelinedSink(BatchSink):
    target: PipelinedTarget
    record_validator: BaseJSONSchemaValidator | None = None  # the one `get_validator` made

    def __init__(self, target: PipelinedTarget, *args: Any, **kwargs: Any) -> None:
        self.target = target  # the SDK's Sink does not keep it
        super().__init__(target, *args, **kwargs)
        # A stream whose schema changes gets a new sink; each keeps its own record positions.
        self.checkpoint_name = f"{self.stream_name}#{next(_sink_numbers)}"
        self._skips_logged: set[str] = set()
        self._ignored_logged: set[str] = set()
        # At debug level the SDK logs the whole pending batch, every record of it, on this
        # logger for each record it takes ("Processed record: {...}"): a batch of 60 people's
        # names and emails printed 60 times. INFO unless a logging config sets its level.
        if self.logger.level == logging.NOTSET:
            self.logger.setLevel(logging.INFO)

    def get_batch_processing_timer(self) -> Any:
        # The SDK times `process_batch`, which here only hands the batch to the dispatcher: a
        # METRIC line per batch (60 records for Twenty) that measures nothing. The run report's
        # progress lines say how the writing goes.
        return contextlib.nullcontext()

    @functools.cached_property
    def process_deletes(self) -> bool:
        # A target that does not declare the setting processes deletions.
        return bool(self.target.declared.get("process_deletes", True))

    # The deletion mark survives the SDK -------------------------------------------------------
    # Without `add_record_metadata` the SDK drops every `_sdc_*` property from schema and
    # records; the deletion mark says what to do with the record, so it is kept.
    # Private SDK API (tests/test_sdk_contract.py): the SDK's only place that drops them.
    def _remove_sdc_metadata_from_schema(self) -> None:
        kept = self.schema["properties"].get(DELETED_AT)
        super()._remove_sdc_metadata_from_schema()
        if kept is not None:
            self.schema["properties"][DELETED_AT] = kept

    # Private SDK API (tests/test_sdk_contract.py): as above, for each record.
    def _remove_sdc_metadata_from_record(self, record: dict) -> None:
        deleted_at = record.get(DELETED_AT)
        super()._remove_sdc_metadata_from_record(record)
        if deleted_at is not None:
            record[DELETED_AT] = deleted_at

    # Invalid records are dead-lettered, not fatal --------------------------------------------
    def get_validator(self) -> BaseJSONSchemaValidator | None:
        check_references(self.schema, self.stream_name)  # before any validator follows one
        if self.validate_schema and not self.validate_field_string_format:
            self.record_validator = compiled_validator(self.schema)
        else:
            self.record_validator = super().get_validator()
        return self.record_validator

    def written_properties(self) -> frozenset[str] | None:
        """The record properties this sink writes (or reads to decide what to write); None: all.

        A schema violation in any other property is reported once and ignored: taps' records
        are not always perfectly valid, and a field nobody writes must not cost the record.
        """
        return None

    @functools.cached_property
    def _checked_properties(self) -> frozenset[str] | None:
        written = self.written_properties()
        if written is None:
            return None
        return written | set(self.key_properties or ()) | {DELETED_AT}

    # Private SDK API (tests/test_sdk_contract.py): the SDK's per-record check raises on an
    # invalid record; no public hook lets us dead-letter it instead.
    def _validate_and_parse(self, record: dict) -> dict:
        if self.record_validator is not None:
            try:
                self.record_validator.validate(record)
            except InvalidRecord as exc:
                problem = self._written_problem(record, exc)
                if problem is not None:
                    self._reject_early(
                        record, f"record does not match the stream's schema: {problem}"
                    )
                    return record
        self._parse_timestamps_in_record(record, self.schema, self.datetime_error_treatment)
        return record

    def _written_problem(self, record: dict, exc: InvalidRecord) -> str | None:
        """The first violation in a written property (None: all are in ignored ones)."""
        checked = self._checked_properties
        if checked is None:
            return _schema_problem(exc)
        found = violations(self.record_validator, record) or [("", _schema_problem(exc))]
        for prop, message in found:
            if prop == "" or prop in checked:
                return message
        for prop, message in dict(reversed(found)).items():  # each property once, its first
            self._ignore_problem(prop, message)
        return None

    def _ignore_problem(self, prop: str, message: str) -> None:
        """A problem in a property nothing writes: said once per property, counted always."""
        self.target.report.note_ignored(self.stream_name, prop)
        if prop not in self._ignored_logged:
            self._ignored_logged.add(prop)
            self.logger.warning(
                "Stream '%s': property '%s' does not match the stream's schema (%s); it is not "
                "written, so the records are loaded anyway (counted in the summary)",
                self.stream_name,
                prop,
                message,
            )

    def _reject_early(self, record: dict, reason: str, code: str = "schema") -> None:
        self.reject(record, reason, code)
        record["__rejected__"] = True

    # The SDK's timestamp parsing looks up the type of every property of every record; the
    # date-like properties of a stream's schema are found once instead. A value that is no
    # date dead-letters its record when the property is written, else it stays text (the SDK
    # would stop the run).
    @functools.cached_property
    def _properties(self) -> frozenset[str]:
        return frozenset(self.schema.get("properties") or {})

    @functools.cached_property
    def _datelike_properties(self) -> tuple[str, ...]:
        properties = self.schema.get("properties") or {}
        return tuple(k for k, p in properties.items() if get_datelike_property_type(p))

    # Private SDK API (tests/test_sdk_contract.py): the SDK's per-record date parsing, which
    # has no public hook; it is also what a bad date is dead-lettered from.
    def _parse_timestamps_in_record(
        self, record: dict, schema: dict, treatment: DatetimeErrorTreatmentEnum
    ) -> None:
        if schema is not self.schema:
            super()._parse_timestamps_in_record(record, schema, treatment)
            return
        if not record.keys() <= self._properties:
            # Fields the schema lacks: the SDK warns about each (and parses nothing of them).
            extra = {k: v for k, v in record.items() if k not in self._properties}
            super()._parse_timestamps_in_record(extra, schema, treatment)
        dates = {k: record[k] for k in self._datelike_properties if record.get(k) is not None}
        if not dates:
            return
        try:
            super()._parse_timestamps_in_record(dates, schema, treatment)
        except (ValueError, TypeError):
            dates = self._parse_one_by_one(record, dates, schema, treatment)
        record.update(dates)

    def _parse_one_by_one(
        self, record: dict, dates: dict, schema: dict, treatment: DatetimeErrorTreatmentEnum
    ) -> dict:
        parsed = {}
        for name, value in dates.items():
            one = {name: value}
            try:
                super()._parse_timestamps_in_record(one, schema, treatment)
            except (ValueError, TypeError) as exc:
                checked = self._checked_properties
                if checked is None or name in checked:
                    self._reject_early(record, f"property '{name}': {exc}", "invalid-value")
                    return {}
                self._ignore_problem(name, str(exc))
                continue
            parsed[name] = one[name]
        return parsed

    # Private SDK API (tests/test_sdk_contract.py): the SDK's key check, which raises; a record
    # without its key is dead-lettered instead (no public hook sees it first).
    def _singer_validate_message(self, record: dict) -> None:
        if record.get("__rejected__"):
            return
        missing = [k for k in self.key_properties if record.get(k) in (None, "")]
        if missing:
            reason = f"key properties {missing} are missing or empty"
            self._reject_early(record, reason, "missing-key")

    def process_record(self, record: dict, context: dict) -> None:
        if record.pop("__rejected__", False):
            return
        super().process_record(record, context)
        self.target.checkpointer.received(self.checkpoint_name)

    def key_of(self, record: dict) -> Any:
        """The record's Singer key: a value, a tuple for compound keys, None without keys."""
        keys = self.key_properties
        if not keys:
            return None
        values = tuple(record.get(k) for k in keys)
        return values[0] if len(values) == 1 else list(values)

    def skip(self, record: dict, reason: str) -> None:
        """Count a record there is nothing to do for in the run report; log each reason once."""
        self.target.report.record(self.stream_name, self.key_of(record), "skipped", reason=reason)
        if reason not in self._skips_logged:
            self._skips_logged.add(reason)
            self.logger.warning("Stream '%s': %s", self.stream_name, reason)

    def reject(self, record: dict, reason: str, code: Any = None) -> None:
        """Dead-letter one record (any thread) and count it in the run report."""
        key = self.key_of(record)
        self.target.dead_letters.write(self.stream_name, key, reason, record, code)
        self.target.report.record(self.stream_name, key, "failed", reason=reason)
        self.logger.warning(
            "Stream '%s': record %s dead-lettered (%s): %s", self.stream_name, key, code, reason
        )

    # Batches -----------------------------------------------------------------------------------
    def process_batch(self, context: dict) -> None:
        records = context.get("records", [])
        if records:
            self.submit(records, len(records))

    def submit(
        self,
        records: list[dict],
        count: int,
        held: int = 0,
        settles: Iterable[Ticket] = (),
        needs: Iterable[Hashable] | None = None,
    ) -> Ticket:
        """Send `records` to be written (`count`, `held`, `settles`: see `Dispatcher.submit`;
        `needs`: the keys they reference, when the caller knows them already, else
        `batch_needs`)."""
        return self.target.dispatcher.submit(
            self.checkpoint_name,
            count,
            lambda: self.write_batch(records),
            holds=self.batch_keys(records),
            needs=self.batch_needs(records) if needs is None else needs,
            held=held,
            settles=settles,
            clears=self.batch_clears(records),
        )

    def batch_keys(self, records: list[dict]) -> list[Hashable]:
        """Keys this batch writes: a later batch with the same key waits for this one."""
        return [
            (self.stream_name, _hashable(self.key_of(r))) for r in records if self.key_properties
        ]

    def batch_needs(self, records: list[dict]) -> list[Hashable]:
        """Keys of other streams' records this batch references (written first)."""
        return []

    def batch_clears(self, records: list[dict]) -> list[Hashable]:
        """Keys whose records this batch may delete: it waits for in-flight batches that
        reference them (by default, the keys of the records marked deleted)."""
        if not self.process_deletes:
            return []
        deleted = [r for r in records if is_deleted(r)]
        return self.batch_keys(deleted) if deleted else []

    def write_batch(self, records: list[dict]) -> None:
        for live, deleted in self._parts(records):
            if live:
                self.write_records(live)
            if deleted:
                self.delete_records(deleted)

    def _parts(self, records: list[dict]) -> list[tuple[list[dict], list[dict]]]:
        """The batch as (live, deleted) parts in which no key is both, in the tap's order.

        Within a part, records of one key are all live (the last one wins) or all deleted; a
        record deleted and then restored in one batch is deleted, then written again.
        """
        if not self.process_deletes or not any(map(is_deleted, records)):
            return [(records, [])]
        parts: list[tuple[list[dict], list[dict]]] = [([], [])]
        seen: dict[Hashable, bool] = {}  # key → deleted, in the current part
        for record in records:
            deleted = is_deleted(record)
            keys = self.batch_keys([record])
            if any(seen.get(k, deleted) != deleted for k in keys):
                parts.append(([], []))
                seen = {}
            seen.update((k, deleted) for k in keys)
            live, gone = parts[-1]
            (gone if deleted else live).append(record)
        return parts

    def write_records(self, records: list[dict]) -> None:
        """Write live records (on a worker thread)."""
        raise NotImplementedError

    def delete_records(self, records: list[dict]) -> None:
        """Delete what records marked deleted were written to (on a worker thread)."""
        raise NotImplementedError


def _schema_problem(exc: InvalidRecord) -> str:
    """The SDK's validation error with the property it is about: "property 'name': 17 is not
    of type 'string', 'null'" (the SDK's message leaves the property out)."""
    path = ".".join(str(part) for part in getattr(exc.__cause__, "absolute_path", ()))
    return f"property '{path}': {exc.error_message}" if path else exc.error_message


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value
