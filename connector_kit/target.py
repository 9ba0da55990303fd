"""`PipelinedTarget`: the SDK Target with per-batch checkpoints, dead letters and a run report.

What it changes in the behaviour of singer-sdk's `Target` (0.54):
- STATE is written by the `Checkpointer` as soon as every record received before it is written
  or dead-lettered, instead of once per `drain_all` (every 5 minutes or at the end);
- sinks are drained one at a time on the main thread (`max_parallelism = 1`): the parallelism
  is in the `Dispatcher`, which keeps several API requests in flight for every stream;
- when a STATE has waited `checkpoint_seconds` for records still buffered in a sink, those are
  sent as a partial batch, so checkpoints keep coming while a slow tap trickles records or
  says nothing at all: the input is read on a thread of its own (`intake.py`) and the clock
  ticks without it; records held back longer are the subclass's to release
  (`checkpoint_overdue`);
- a schema or key change drains the stream's retired sink at once, before its successor's
  first batch (the SDK waits for the next full drain, up to 5 minutes: an older version of a
  record could then overwrite a newer one, and a STATE would wait for it);
- the records of a BATCH message are taken one by one like RECORD messages (`batches.py`);
- SIGTERM and SIGINT only set a flag, since the handler runs on the main thread, perhaps while
  it holds a lock the SDK's own handler (which drains right there) would need: the main loop
  stops reading, writes what it received and exits (non-zero after failures); a second signal
  ends the process at once;
- records that violate their schema go to the dead-letter file instead of stopping the run;
- after any failure no STATE is written, and the run fails; it also fails (non-zero exit)
  when more records were dead-lettered than `max_failed_records` allows, after writing
  everything else.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import InvalidInputLine
from singer_sdk.helpers._batch import BatchConfig  # private: see tests/test_sdk_contract.py
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.io_base import SingerReader
from singer_sdk.sinks import Sink

from connector_kit.batches import batch_records
from connector_kit.deadletter import DeadLetterFile
from connector_kit.files import DEFAULT_DIR, expire_lines
from connector_kit.http import check_base_url
from connector_kit.intake import Intake
from connector_kit.pacing import RATE_BUDGET_SETTING
from connector_kit.pipeline import Checkpointer, Dispatcher
from connector_kit.report import RunReport
from connector_kit.secrets import SecretMasking
from connector_kit.serialize import parse_json
from connector_kit.typed_settings import CommonSettings, declared_values

COMMON_SETTINGS = th.PropertiesList(
    th.Property(
        "dead_letter_path",
        th.StringType,
        description="JSON Lines file that receives every record that could not be written, "
        "with its stream, key and the reason. Created (0600: it holds personal data) on the "
        "first failure. Default: output/<target>/dead-letters.jsonl in the working directory.",
    ),
    th.Property(
        "run_report_path",
        th.StringType,
        description="JSON Lines file with one line per record: time, stream, source key, "
        "destination id and created/updated/deleted/skipped/failed. Created 0600. Not written "
        "when unset.",
    ),
    th.Property(
        "keep_days",
        th.IntegerType(minimum=1),
        description="Days a line stays in the run report and the dead-letter file: each run "
        "starts by removing older lines. Unset: kept until removed by hand.",
    ),
    th.Property(
        "max_failed_records",
        th.IntegerType,
        default=0,
        description="How many dead-lettered records the run tolerates before it exits non-zero. "
        "The other records are written either way.",
    ),
    th.Property(
        "max_in_flight",
        th.IntegerType,
        default=4,
        description="API requests sent concurrently. More hides latency; the rate limit is "
        "respected regardless.",
    ),
    th.Property(
        "checkpoint_seconds",
        th.NumberType,
        default=30,
        description="Longest time a STATE waits for records still buffered for a full batch; "
        "after it, they are sent as a smaller batch so the checkpoint can be written, also "
        "when the tap sends nothing meanwhile.",
    ),
    th.Property(
        "max_retry_after_seconds",
        th.NumberType,
        default=120,
        description="Longest wait a throttled call's `Retry-After` (or its body's retry time) "
        "may impose: a server asking for longer is waited this long, then asked again, within "
        "the bounded number of retries.",
    ),
    th.Property(
        "allow_insecure_http",
        th.BooleanType,
        default=False,
        description="Allow a plain http:// base URL to a host other than localhost. Off by "
        "default: the API key would travel in clear text.",
    ),
    RATE_BUDGET_SETTING,
)


class TooManyFailedRecords(RuntimeError):
    """More records were dead-lettered than `max_failed_records` allows."""


class OutputClosed(RuntimeError):
    """A STATE could not be written: whoever reads the target's output has gone."""


class NumberingReader(SingerReader):
    """The SDK's reader; a line that is not JSON stops the run naming its line number."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def deserialize_json(self, line: str) -> dict:
        self.lines += 1
        try:
            return parse_json(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputLine(
                f"Unable to parse line {self.lines} of the input as JSON ({exc}): {line.rstrip()}"
            ) from None


class PipelinedTarget(SecretMasking, Target):
    """Base for our targets. Subclasses create `self.client` and implement their sinks."""

    message_reader_class = NumberingReader
    # The SDK's target capabilities, and BATCH messages (read like RECORD messages).
    capabilities: Sequence[Any] = [*Target.capabilities, PluginCapabilities.BATCH]

    #: records per minute the API's limits allow at most, for progress lines (set in setup)
    ceiling_per_minute: float = 0.0
    #: the settings object's class; a target extends `CommonSettings` with its own fields
    settings_class: type[CommonSettings] = CommonSettings
    #: the termination signal received (set by the handler, read by the main loop)
    _stop_signal: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_parallelism = 1
        self.sinks: dict[str, Sink] = {}  # the current sink of each stream (`get_sink`)
        self.logger.addFilter(self._drain_notice_at_debug)
        self._stdout_lock = threading.Lock()
        self._finished = False
        # Every setting as declared (its default when unset), and the typed settings object.
        self.declared = declared_values(self.config, self.config_jsonschema)
        self.settings = self.settings_class.from_config(self.config, self.config_jsonschema)
        settings = self.settings
        self.checkpoint_seconds = settings.checkpoint_seconds
        # How often the checkpoint clock ticks while the input is silent.
        self._tick = max(0.05, min(0.5, self.checkpoint_seconds / 4))
        self._overdue_checked = 0.0
        self.max_retry_after = settings.max_retry_after_seconds
        dead_letter = Path(
            settings.dead_letter_path or DEFAULT_DIR / self.name / "dead-letters.jsonl"
        )
        report_path = settings.run_report_path
        self._expire([dead_letter, *([Path(report_path)] if report_path else [])])
        self.dead_letters = DeadLetterFile(dead_letter)
        # A STATE moves past dead-lettered records: they are on disk for good before it.
        self.checkpointer = Checkpointer(self._emit_state, before_write=self.dead_letters.sync)
        self.dispatcher = Dispatcher(self.checkpointer, settings.max_in_flight)
        self.report = RunReport(
            self.logger, Path(report_path) if report_path else None, self.ceiling_per_minute
        )

    def _expire(self, paths: list[Path]) -> None:
        """Lines older than `keep_days` leave the report and dead-letter files."""
        keep_days = self.settings.keep_days
        if not keep_days:
            return
        for path in paths:
            removed = expire_lines(path, float(keep_days))
            if removed:
                self.logger.info(
                    "Removed %d line(s) older than %s days from %s (keep_days)",
                    removed,
                    keep_days,
                    path,
                )

    def _drain_notice_at_debug(self, record: logging.LogRecord) -> bool:
        """The SDK's "Target sink for 'x' is full… Draining" comes before every batch (60
        records for Twenty): shown at debug level only, like the batch itself."""
        if record.levelno == logging.INFO and str(record.msg).startswith("Target sink for "):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.logger.isEnabledFor(logging.DEBUG)
        return True

    def checked_base_url(self, default: str | None = None) -> str:
        """The `base_url` setting (or its declared default), refused if plain http to a remote
        host. (`default`: for a target whose schema declares none.)"""
        return check_base_url(
            self.declared.get("base_url") or default,
            "base_url",
            self.settings.allow_insecure_http,
        )

    # STATE ------------------------------------------------------------------------------------
    # Private SDK API, like the other `_process_*_message` handlers and `_write_state_message`
    # (tests/test_sdk_contract.py): the SDK offers no public hook per message type.
    def _process_state_message(self, message_dict: dict) -> None:
        self.message_reader.assert_line_requires(message_dict, requires={"value"})
        self.checkpointer.add_state(message_dict["value"])
        self._flush_for_checkpoint()

    def _process_record_message(self, message_dict: dict) -> None:
        super()._process_record_message(message_dict)
        self._flush_for_checkpoint()

    def _process_batch_message(self, message_dict: dict) -> None:
        """Each record of the BATCH's files as if it came in a RECORD message (`batches.py`)."""
        required = {"stream", "encoding", "manifest"}
        self.message_reader.assert_line_requires(message_dict, requires=required)
        stream = message_dict["stream"]
        raw = self.config.get("batch_config")
        storage = BatchConfig(**raw).storage if raw else None
        for record in batch_records(message_dict, storage):
            self._process_record_message({"type": "RECORD", "stream": stream, "record": record})

    def _write_state_message(self, state: dict) -> None:
        """The SDK's own end-of-drain STATE: ignored, the checkpointer writes acknowledged ones."""

    def _emit_state(self, state: dict) -> None:
        with self._stdout_lock:
            try:
                sys.stdout.write(json.dumps(state) + "\n")
                sys.stdout.flush()
            except BrokenPipeError:
                # Nothing reads our output any more: what is buffered goes nowhere, and
                # Python's own flush at exit must not fail again over it.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise OutputClosed(
                    "A STATE could not be written: the output pipe is closed (the process "
                    "reading the target's output, Meltano or the next command, has gone). "
                    "Nothing after the last STATE it received counts as written; a re-run "
                    "sends those records again."
                ) from None

    def _flush_for_checkpoint(self) -> None:
        if self.checkpointer.oldest_pending_age() < self.checkpoint_seconds:
            return
        # Records a sink holds back count as submitted (their batch's ticket covers them): a
        # STATE waiting for them sends nothing here; `checkpoint_overdue` decides about them.
        for sink in list(self.sinks.values()):
            if self.checkpointer.unsubmitted(sink.checkpoint_name):
                self.drain_one(sink)
        now = time.monotonic()
        if now - self._overdue_checked >= self._tick:
            self._overdue_checked = now
            self.checkpoint_overdue(self.checkpoint_seconds)

    def checkpoint_overdue(self, seconds: float) -> None:
        """A STATE has waited `seconds`: release records held back that long, if the target
        holds any back (nothing by default). Main thread."""

    # Sinks ------------------------------------------------------------------------------------
    def get_sink(
        self,
        stream_name: str,
        *,
        record: dict | None = None,
        schema: dict | None = None,
        key_properties: Sequence[str] | None = None,
    ) -> Sink:
        previous = self.sinks.get(stream_name)
        sink = super().get_sink(
            stream_name, record=record, schema=schema, key_properties=key_properties
        )
        self.sinks[stream_name] = sink
        # A schema or key change retired the stream's sink: its records are sent before the
        # new sink's first batch (which then waits for them, key by key), not at the SDK's
        # next full drain.
        if previous is not None and previous is not sink:
            self.drain_one(previous)
        return sink

    # Signals ----------------------------------------------------------------------------------
    # Private SDK API (tests/test_sdk_contract.py): the handler the SDK installs for SIGTERM and
    # SIGINT; no public hook replaces it.
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT. The SDK's handler drains every sink right here, on the main
        thread, on top of whatever it was doing: inside a lock (the checkpointer's, the
        dispatcher's, a rate limiter's), which it then waits for forever. This one only sets a
        flag, which the main loop reads between two messages (and every tick while the input
        is silent); no lock, no logging (the logging module locks). A second signal ends the
        process at once."""
        if self._stop_signal is None:
            self._stop_signal = signum
            return
        os.write(
            2,
            f"{self.name}: a second signal ({signum}): stopping at once. Batches in flight are "
            "abandoned and no further STATE is written; the next run sends their records "
            "again.\n".encode(),
        )
        os._exit(128 + signum)

    # End of input and failures ----------------------------------------------------------------
    def listen(self, file_input: Any = None) -> None:
        intake = Intake(
            file_input or sys.stdin,
            self._tick,
            on_idle=self._flush_for_checkpoint,
            stopping=lambda: self._stop_signal is not None,
        )
        try:
            super().listen(intake)  # ends with process_endofpipe(), which finishes the run
        except BaseException as exc:
            # No STATE from now on: the records before the failure may not all be written.
            # Batches already sent may finish (no request is cut short); then report and stop
            # with the original error.
            self.checkpointer.fail()
            self.logger.error(
                "Stopping after an error (%s): %d batch(es) in flight may finish, no further "
                "STATE is written.",
                type(exc).__name__,
                self.dispatcher.in_flight(),
            )
            self._finish(raise_failures=False)
            raise

    def process_endofpipe(self) -> None:
        # Finishing here rather than in `listen` also covers the SDK's test runner, which calls
        # process_lines() and process_endofpipe() without listen().
        if self._stop_signal is not None:
            self.logger.warning(
                "Received signal %d: reading no more input; writing what was received, then "
                "stopping (a second signal stops at once).",
                self._stop_signal,
            )
        super().process_endofpipe()
        if self._stop_signal is None:
            self.end_of_input()
        elif self.held_back():
            self.logger.warning(
                "%d record(s) waiting for their parent are not written, nor the STATEs after "
                "them: the next run sends them again.",
                self.held_back(),
            )
        self._finish(raise_failures=True)

    def end_of_input(self) -> None:
        """Every sink is drained: send what the target still holds back (nothing by default)."""

    def held_back(self) -> int:
        """Records the target holds back (none by default)."""
        return 0

    def _finish(self, raise_failures: bool) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            self.dispatcher.join()
        except BaseException:
            if raise_failures:
                raise
        finally:
            self.dispatcher.shutdown()
            self.report.summary()
            self.dead_letters.close()
            checkpoints = self.checkpointer
            self.logger.info(
                "STATE: %d message(s) received, %d written (those acknowledged together are "
                "written once, the latest); at most %d waited at once.",
                checkpoints.received_states,
                checkpoints.emitted,
                checkpoints.most_waiting,
            )
        failed = self.dead_letters.total
        if failed:
            reasons = ", ".join(f"{code}: {n}" for code, n in self.dead_letters.reasons.items())
            self.logger.error(
                "%d record(s) could not be written (by code: %s); see %s",
                failed,
                reasons,
                self.dead_letters.path,
            )
        tolerated = self.settings.max_failed_records
        if raise_failures and failed > tolerated:
            raise TooManyFailedRecords(
                f"{failed} record(s) were dead-lettered to {self.dead_letters.path}, more than "
                f"max_failed_records={tolerated}"
            )
