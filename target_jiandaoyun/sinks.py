"""`JiandaoyunSink`: one stream's records → rows of its form, 100 per batch, several in flight.

A record marked deleted (`_sdc_deleted_at`, see `target_kit.sink`) deletes the rows holding its
key; in a form without a key widget nothing can find them, so it is skipped (never appended).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from target_jiandaoyun.mapping import StreamMapping
from target_jiandaoyun.values import ValueRejected
from target_jiandaoyun.writer import BATCH_ROWS, FormWriter, RowResult, key_token
from target_kit.sink import PipelinedSink

if TYPE_CHECKING:
    from target_jiandaoyun.target import TargetJiandaoyun


class JiandaoyunSink(PipelinedSink):
    target: TargetJiandaoyun

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
        mode = (
            f"upsert on '{self.mapping.key.source}' → {self.mapping.key.widget.describe()}"
            if self.mapping.key
            else "append"
        )
        self.logger.info(
            "Stream '%s' → form %s (%s): %s",
            self.stream_name,
            self.mapping.form.ref,
            mode,
            ", ".join(
                f"{f.source} → {f.widget.label or f.widget.name}" for f in self.mapping.fields
            )
            or "no fields",
        )
        if self.mapping.unmapped:
            self.logger.warning(
                "Stream '%s': properties %s match no widget of form %s and are not written; "
                "map them in forms.%s.fields if they should be",
                self.stream_name,
                self.mapping.unmapped,
                self.mapping.form.ref,
                self.stream_name,
            )

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

    def write_records(self, records: list[dict]) -> None:
        ready: list[dict] = []
        rows: list[dict] = []
        keys: list[Any] = []
        for record in records:
            try:
                row = self.mapping.row(record, clear=self.mapping.key is not None)
                if self.mapping.key is not None:
                    keys.append(self.mapping.key_value(record))
            except ValueRejected as exc:
                self.reject(record, str(exc), "value")
                continue
            ready.append(record)
            rows.append(row)
        if not rows:
            return
        results = self.writer.write(rows, keys if self.mapping.key is not None else None)
        self._report(ready, results)

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
        for record in records:
            try:
                keys.append(self.mapping.key_value(record))
            except ValueRejected as exc:
                self.reject(record, str(exc), "value")
                continue
            ready.append(record)
        if ready:
            self._report(ready, self.writer.delete(keys))

    def _report(self, records: list[dict], results: list[RowResult]) -> None:
        for record, result in zip(records, results, strict=True):
            if result.action == "failed":
                self.reject(record, result.reason or "refused by the API", result.code)
            else:
                self.target.report.record(
                    self.stream_name, self.key_of(record), result.action, result.id, result.reason
                )
