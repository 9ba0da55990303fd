"""`PipelinedSink`: a BatchSink whose batches go to the target's Dispatcher.

Subclasses implement `write_batch(records)` (runs on a worker thread: send, then report every
record as written or dead-lettered) and may override `batch_keys` / `batch_needs` to declare
ordering constraints.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink

if TYPE_CHECKING:
    from target_kit.target import PipelinedTarget

_sink_numbers = itertools.count(1)

# Singer metadata columns a tap may add (tap-jsonl adds `_sdc_filename`, …): never data.
SDC_PREFIX = "_sdc_"


class PipelinedSink(BatchSink):
    target: PipelinedTarget

    def __init__(self, target: PipelinedTarget, *args: Any, **kwargs: Any) -> None:
        self.target = target  # the SDK's Sink does not keep it
        super().__init__(target, *args, **kwargs)
        # A stream whose schema changes gets a new sink; each keeps its own record positions.
        self.checkpoint_name = f"{self.stream_name}#{next(_sink_numbers)}"

    # Invalid records are dead-lettered, not fatal --------------------------------------------
    def _validate_and_parse(self, record: dict) -> dict:
        try:
            if self._validator is not None:
                self._validator.validate(record)
        except InvalidRecord as exc:
            self.reject(record, f"record does not match the stream's schema: {exc}", "schema")
            record["__rejected__"] = True
            return record
        self._parse_timestamps_in_record(record, self.schema, self.datetime_error_treatment)
        return record

    def _singer_validate_message(self, record: dict) -> None:
        if record.get("__rejected__"):
            return
        missing = [k for k in self.key_properties if record.get(k) in (None, "")]
        if missing:
            self.reject(record, f"key properties {missing} are missing or empty", "missing-key")
            record["__rejected__"] = True

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
        if not records:
            return
        self.target.dispatcher.submit(
            self.checkpoint_name,
            len(records),
            lambda: self.write_batch(records),
            holds=self.batch_keys(records),
            needs=self.batch_needs(records),
        )

    def batch_keys(self, records: list[dict]) -> list[Hashable]:
        """Keys this batch writes: a later batch with the same key waits for this one."""
        return [
            (self.stream_name, _hashable(self.key_of(r))) for r in records if self.key_properties
        ]

    def batch_needs(self, records: list[dict]) -> list[Hashable]:
        """Keys of other streams' records this batch references (written first)."""
        return []

    def write_batch(self, records: list[dict]) -> None:
        raise NotImplementedError


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value
