"""The private singer-sdk API our code overrides or calls, and what we rely on it to do.

singer-sdk may change its `_`-prefixed API in any release. Each place we still use one (no
public hook does the job; the comment at the override says why) is pinned here: the
method or attribute exists with the signature we override or call, and the SDK still uses it
the way we rely on. A failure here means: read the SDK's new code before upgrading.

Where the private API is used:
- connector_kit/target.py: `_process_state_message`, `_process_record_message`,
  `_process_batch_message`, `_write_state_message`, `_handle_termination`;
  `singer_sdk.helpers._batch.BatchConfig`
- connector_kit/configtest.py: `_process_schema_message`, `_process_record_message`,
  `_process_state_message`
- connector_kit/sink.py: `_remove_sdc_metadata_from_schema`, `_remove_sdc_metadata_from_record`,
  `_validate_and_parse`, `_parse_timestamps_in_record`, `_singer_validate_message`;
  `singer_sdk.helpers._typing.get_datelike_property_type`
- connector_kit/secrets.py, connector_kit/settings.py, tap_okki/tap.py: `_validate_config`,
  `_config`
- tap_okki/client.py: `_increment_stream_state`, `_write_state_message`,
  `_write_request_duration_log`
- tap_okki/streams.py: `_process_record`, `_write_record_message`, `_sync_children`,
  `_write_schema_message`, `_check_max_record_limit`, `_increment_stream_state`,
  `_write_state_message`
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from typing import Any

import pytest
from singer_sdk import Stream, Tap, Target
from singer_sdk.helpers._batch import BatchConfig
from singer_sdk.helpers._typing import get_datelike_property_type
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.plugin_base import PluginBase
from singer_sdk.sinks import Sink
from singer_sdk.streams import RESTStream


def parameters(function: Any) -> list[str]:
    """Parameter names, `self` first, as `name`, `*name` (keyword-only) or `**name`."""
    shown = []
    for p in inspect.signature(function).parameters.values():
        prefix = {p.KEYWORD_ONLY: "*", p.VAR_KEYWORD: "**", p.VAR_POSITIONAL: "*args:"}.get(
            p.kind, ""
        )
        shown.append(prefix + p.name)
    return shown


def source(function: Any) -> str:
    return inspect.getsource(function)


# Overridden methods: they exist with the parameters our overrides take ---------------------------
@pytest.mark.parametrize(
    ("owner", "name", "expected"),
    [
        (Target, "_process_state_message", ["self", "message_dict"]),
        (Target, "_process_record_message", ["self", "message_dict"]),
        (Target, "_process_schema_message", ["self", "message_dict"]),
        (Target, "_process_batch_message", ["self", "message_dict"]),
        (Target, "_write_state_message", ["self", "state"]),
        (Target, "_handle_termination", ["self", "signum", "frame"]),
        (Sink, "_remove_sdc_metadata_from_schema", ["self"]),
        (Sink, "_remove_sdc_metadata_from_record", ["self", "record"]),
        (Sink, "_validate_and_parse", ["self", "record"]),
        (Sink, "_parse_timestamps_in_record", ["self", "record", "schema", "treatment"]),
        (Sink, "_singer_validate_message", ["self", "record"]),
        (PluginBase, "_validate_config", ["self", "*raise_errors"]),
        (Stream, "_process_record", ["self", "record", "child_context", "partition_context"]),
        (Stream, "_write_record_message", ["self", "record"]),
        (Stream, "_sync_children", ["self", "child_context"]),
        (Stream, "_increment_stream_state", ["self", "latest_record", "*context"]),
        (Stream, "_write_state_message", ["self"]),
        (Stream, "_write_schema_message", ["self"]),
        (Stream, "_check_max_record_limit", ["self", "current_record_index"]),
        (
            RESTStream,
            "_write_request_duration_log",
            ["self", "endpoint", "response", "context", "extra_tags"],
        ),
    ],
)
def test_each_private_method_we_use_exists_with_our_parameters(
    owner: type, name: str, expected: list[str]
) -> None:
    assert parameters(getattr(owner, name)) == expected


# … and the SDK still calls them where we rely on it ---------------------------------------------
def test_the_target_hands_each_record_to_the_sinks_private_steps_in_order() -> None:
    # sink.py: the deletion mark is kept, invalid records are dead-lettered, keys checked.
    code = source(Target._process_record_message)
    steps = ["_remove_sdc_metadata_from_record", "_validate_and_parse", "_singer_validate_message"]
    positions = [code.index(f"sink.{step}(") for step in steps]
    assert positions == sorted(positions)
    assert "sink.process_record(" in code[positions[-1] :]


def test_a_sink_drops_sdc_schema_properties_in_its_private_method() -> None:
    assert "self._remove_sdc_metadata_from_schema()" in source(Sink.__init__)


def test_the_targets_own_state_is_written_only_through_write_state_message() -> None:
    # target.py suppresses the SDK's end-of-drain STATE by overriding this one method.
    assert "self._write_state_message(" in source(Target.drain_all)


def test_the_sdk_installs_handle_termination_for_sigterm_and_sigint() -> None:
    assert "self._setup_signal_handlers()" in source(PluginBase.__init__)
    code = source(PluginBase._setup_signal_handlers)
    for name in ("SIGTERM", "SIGINT"):
        assert f"signal.signal(signal.{name}, self._handle_termination)" in code


def test_settings_are_validated_in_validate_config_from_the_mutable_config() -> None:
    # secrets.py and settings.py read and replace `_config` before the SDK validates it.
    code = source(PluginBase.__init__)
    assert "self._config = config_dict" in code
    assert code.index("self._config = config_dict") < code.index("self._validate_config(")
    assert "self._config" in source(PluginBase._validate_config)


def test_the_config_validator_fills_declared_defaults_into_the_config() -> None:
    class Defaults(Tap):
        name = "tap-defaults"
        config_jsonschema = {"properties": {"n": {"type": "integer", "default": 3}}}

        def discover_streams(self) -> list[Stream]:
            return []

    assert Defaults(config={}).config["n"] == 3


def test_a_stream_syncs_children_in_process_record_then_writes_the_record() -> None:
    # streams.py holds a company's children until its RECORD is written.
    assert "self._sync_children(" in source(Stream._process_record)
    code = source(Stream._sync_records)
    assert code.index("self._process_record(") < code.index("self._write_record_message(")
    assert "self._increment_stream_state(" in code


def test_the_request_metric_honours_the_sdks_switch() -> None:
    assert "_LOG_REQUEST_METRICS" in source(RESTStream._write_request_duration_log)
    assert RESTStream._LOG_REQUEST_METRICS is True


# Private modules we import ----------------------------------------------------------------------
def test_batch_config_reads_a_batch_config_setting() -> None:
    raw = {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///tmp"}}
    assert BatchConfig(**raw).storage.root == "file:///tmp"


def test_date_like_properties_are_found_by_type_and_format() -> None:
    assert get_datelike_property_type({"type": "string", "format": "date-time"}) == "date-time"
    assert get_datelike_property_type({"type": ["string", "null"], "format": "date"}) == "date"
    assert get_datelike_property_type({"type": "string"}) is None


def test_timestamp_parsing_changes_the_record_in_place_and_raises_on_a_bad_date() -> None:
    # sink.py parses a stream's date fields with it and dead-letters what it raises on.
    class Parsing(Sink):
        logger = logging.getLogger("contract")

        def process_record(self, record: dict, context: dict) -> None: ...

        def process_batch(self, context: dict) -> None: ...

    sink = Parsing.__new__(Parsing)
    sink._warned_missing_fields = set()  # what `Sink.__init__` would set
    schema = {"properties": {"at": {"type": "string", "format": "date-time"}}}
    record = {"at": "2025-01-02T03:04:05+00:00"}
    sink._parse_timestamps_in_record(record, schema, DatetimeErrorTreatmentEnum.ERROR)
    assert record["at"] == dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    with pytest.raises(ValueError):
        sink._parse_timestamps_in_record(
            {"at": "not a date"}, schema, DatetimeErrorTreatmentEnum.ERROR
        )
