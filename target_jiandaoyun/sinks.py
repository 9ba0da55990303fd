"""`JiandaoyunSink`: one stream's records → rows of its form, 100 per batch, several in flight.

A record marked deleted (`_sdc_deleted_at`, see `connector_kit.sink`) deletes or marks the rows
holding its key; in a form without a key widget nothing can find them, so it is skipped (never
appended). A value the API would blank that the mapping left out of its row (`skip_field`) makes
its record `partial` in the run report, with the field and value, and is logged once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

from connector_kit.sink import PipelinedSink
from target_jiandaoyun.mapping import StreamMapping
from target_jiandaoyun.rows import Skipped, row_of
from target_jiandaoyun.values import OPTION_TYPES, ValueRejected, key_token
from target_jiandaoyun.writer import BATCH_ROWS, FormWriter, RowResult

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from connector_kit.report import RunReport
    from target_jiandaoyun.client import JiandaoyunApi
    from target_jiandaoyun.settings import JiandaoyunSettings


class SinkHost(Protocol):
    """What a sink takes from its target (`TargetJiandaoyun`), which it never imports."""

    api: JiandaoyunApi
    update_pool: ThreadPoolExecutor
    writers: list[FormWriter]
    settings: JiandaoyunSettings
    report: RunReport

    def stream_mapping(
        self, stream: str, schema: dict[str, Any], key_properties: Any
    ) -> StreamMapping: ...


class JiandaoyunSink(PipelinedSink):
    target: SinkHost  # type: ignore[assignment]

    # One batch_create call per batch; the Dispatcher keeps several in flight. Overridden here
    # (not `max_size`) so that `batch_size_rows` still works.
    MAX_SIZE_DEFAULT = BATCH_ROWS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mapping: StreamMapping = self.target.stream_mapping(
            self.stream_name, self.schema, self.key_properties
        )
        self.writer = FormWriter(self.target.api, self.mapping, self.target.update_pool)
        self.target.writers.append(self.writer)
        self._skipped_lock = threading.Lock()
        self._skipped_logged: set[tuple[str, str]] = set()
        self._log_start()

    # What this stream will do, said once at start ------------------------------------------------
    def _log_start(self) -> None:
        mapping, stream, form = self.mapping, self.stream_name, self.mapping.form.ref
        mode = (
            f"upsert on '{mapping.key.source}' → {mapping.key.widget.describe()}"
            if mapping.key
            else "append"
        )
        self.logger.info(
            "Stream '%s' → form %s (%s): %s",
            stream,
            form,
            mode,
            ", ".join(f"{f.source} → {f.widget.label or f.widget.name}" for f in mapping.fields)
            or "no fields",
        )
        if mapping.key is None:
            self.logger.warning(
                "Stream '%s' → form %s appends (no key_widget): a retried batch is never "
                "created twice, but a record sent again in a later run (the tap's look-back, a "
                "re-run, a full refresh) creates another row, unless its whole batch comes "
                "again unchanged within the hour. Set forms.%s.key_widget to update rows instead",
                stream,
                form,
                stream,
            )
        self.logger.info(
            "Stream '%s': records marked deleted (_sdc_deleted_at) %s", stream, self._deletions()
        )
        if mapping.unmapped:
            self.logger.warning(
                "Stream '%s': properties %s match no widget of form %s and are not written; "
                "map them in forms.%s.fields if they should be",
                stream,
                mapping.unmapped,
                form,
                stream,
            )
        for subform, columns in mapping.wiped_columns() if mapping.key is not None else ():
            if subform.key is None:
                self.logger.warning(
                    "Stream '%s': subform '%s' has no key_field, so an update replaces its "
                    "rows: they get new _ids and their columns %s, which no mapping writes, "
                    "are emptied. Set forms.%s.subforms.%s.key_field to keep them",
                    stream,
                    subform.widget.label,
                    columns,
                    stream,
                    subform.source,
                )
            else:
                self.logger.warning(
                    "Stream '%s': subform '%s' columns %s cannot be written back (no write "
                    "shape), so an update empties them in the rows it keeps",
                    stream,
                    subform.widget.label,
                    columns,
                )
        unchecked = [
            m.widget.describe()
            for m in mapping.widgets_of(OPTION_TYPES)
            if m.widget.options is None
        ]
        if unchecked:
            self.logger.warning(
                "Stream '%s': widget/list gives no options for %s, so their values are sent "
                "unchecked (Jiandaoyun may save a text outside the options as empty)",
                stream,
                ", ".join(unchecked),
            )

    def _deletions(self) -> str:
        if not self.process_deletes:
            return "are written like any other record (process_deletes is off)"
        if self.mapping.key is None:
            return "are skipped: the form has no key_widget to find their rows by"
        if self.mapping.mark is not None:
            return f"mark their rows deleted: {self.mapping.mark.describe()} (delete_mode: mark)"
        return f"delete their rows from form {self.mapping.form.ref} (delete_mode: delete)"

    # Validation covers what is written -----------------------------------------------------------
    def written_properties(self) -> frozenset[str] | None:
        return self.mapping.written_properties()

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: Any) -> None:
        """Left to values.py, which reads datetime text itself: a bad or zone-less value then
        dead-letters its record (with the reason) instead of stopping the run."""

    def batch_keys(self, records: list[dict]) -> list[Hashable]:
        """In upsert mode, a later batch holding the same key waits for this one, so two
        batches never both find a key missing and create it twice."""
        if self.mapping.key is None:
            return super().batch_keys(records)
        keys = []
        for record in records:
            try:
                value = self.mapping.key_value(record)
            except ValueRejected:
                continue  # dead-lettered when the batch is written
            keys.append((self.mapping.form.ref, self.mapping.key.widget.name, key_token(value)))
        return keys

    # Writing -------------------------------------------------------------------------------------
    def write_records(self, records: list[dict]) -> None:
        ready: list[dict] = []
        rows: list[dict] = []
        keys: list[Any] = []
        skips: list[list[Skipped]] = []
        for record in records:
            skipped: list[Skipped] = []
            try:
                row = row_of(
                    self.mapping, record, clear=self.mapping.key is not None, skipped=skipped
                )
                if self.mapping.key is not None:
                    keys.append(self.mapping.key_value(record))
            except ValueRejected as exc:
                self.reject(record, str(exc), exc.code)
                continue
            self._log_skipped(skipped)
            ready.append(record)
            rows.append(row)
            skips.append(skipped)
        if not rows:
            return
        upsert = (
            self.mapping.key is not None and self.target.settings.load_method != "append-only"
        )  # load_method
        results = self.writer.write(rows, keys if upsert else None)
        self._report(ready, results, skips)

    def delete_records(self, records: list[dict]) -> None:
        if self.mapping.key is None:
            for record in records:
                self.skip(
                    record,
                    f"records marked deleted are not deleted: form {self.mapping.form.ref} has "
                    "no key_widget to find their rows by (nor are they appended); set "
                    f"forms.{self.stream_name}.key_widget to delete them",
                )
            return
        ready: list[dict] = []
        keys: list[Any] = []
        marks: list[dict] = []
        for record in records:
            try:
                key = self.mapping.key_value(record)
                mark = self.mapping.mark_row(record) if self.mapping.mark is not None else {}
            except ValueRejected as exc:
                self.reject(record, str(exc), exc.code)
                continue
            ready.append(record)
            keys.append(key)
            marks.append(mark)
        if ready:
            results = self.writer.delete(keys, marks if self.mapping.mark is not None else None)
            self._report(ready, results)

    def _report(
        self,
        records: list[dict],
        results: list[RowResult],
        skips: list[list[Skipped]] | None = None,
    ) -> None:
        for index, (record, result) in enumerate(zip(records, results, strict=True)):
            if result.action == "failed":
                self.reject(record, result.reason or "refused by the API", result.code)
                continue
            skipped = skips[index] if skips else []
            status = [*result.status, *(["partial"] if skipped else [])]
            details = {"skipped": [s.detail() for s in skipped]} if skipped else None
            self.target.report.record(
                self.stream_name,
                self.key_of(record),
                result.action,
                result.id,
                result.reason,
                status=status,
                details=details,
            )

    def _log_skipped(self, skipped: list[Skipped]) -> None:
        """One WARNING per field and value left out (any thread); the report has every record."""
        for one in skipped:
            seen = (re.sub(r"\[\d+\]", "[]", one.field), repr(one.value))  # any subform row
            with self._skipped_lock:
                if seen in self._skipped_logged:
                    continue
                self._skipped_logged.add(seen)
            self.logger.warning(
                "Stream '%s': %s; field '%s' → widget '%s' is left out of the rows that hold "
                "%r (%s: skip_field; the run report marks them partial)",
                self.stream_name,
                one.reason,
                one.field,
                one.widget,
                one.value,
                one.setting,
            )
