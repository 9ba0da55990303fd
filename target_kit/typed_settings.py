"""Settings as one frozen, typed object per plugin, built once from the validated config.

Every default lives in the plugin's settings schema (`config_jsonschema`), which the SDK shows
in `--about` and Meltano in its docs: `Settings.from_config` fills an unset setting (missing,
null or empty text) with its declared default, so no read site repeats one. A plugin extends
`CommonSettings` (targets) or `Settings` (the tap) with its own fields, each named as its
setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from singer_sdk import typing as th

_S = TypeVar("_S", bound="Settings")

# Field annotations (text, as `from __future__ import annotations` keeps them) whose values
# are converted: an integer where a number is declared becomes a float, and so on.
_CONVERT: dict[str, Any] = {"float": float, "int": int, "bool": bool, "str": str}


def declared_values(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Each setting `schema` declares: its configured value, or else its declared default."""
    values = {}
    for name, spec in (schema.get("properties") or {}).items():
        value = config.get(name)
        values[name] = spec.get("default") if value is None or value == "" else value
    return values


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of a plugin's settings object: one field per setting, named as the setting."""

    @classmethod
    def from_config(cls: type[_S], config: Mapping[str, Any], schema: Mapping[str, Any]) -> _S:
        values = declared_values(config, schema)
        kwargs = {}
        for field in dataclasses.fields(cls):
            if field.name not in values:
                raise KeyError(f"{cls.__name__}.{field.name} is no declared setting")
            value = values[field.name]
            convert = _CONVERT.get(str(field.type).split(" | ")[0])
            kwargs[field.name] = convert(value) if convert and value is not None else value
        return cls(**kwargs)


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
)


@dataclasses.dataclass(frozen=True)
class CommonSettings(Settings):
    """The settings every target has (`COMMON_SETTINGS`; a target may declare other defaults,
    e.g. its own `max_in_flight`: its schema's default is the one taken)."""

    dead_letter_path: str | None
    run_report_path: str | None
    keep_days: int | None
    max_failed_records: int
    max_in_flight: int
    checkpoint_seconds: float
    max_retry_after_seconds: float
    allow_insecure_http: bool
