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


@dataclasses.dataclass(frozen=True)
class CommonSettings(Settings):
    """The settings every target has (`connector_kit.target.COMMON_SETTINGS`; a target may
    declare other defaults, e.g. its own `max_in_flight`: its schema's default is the one
    taken)."""

    dead_letter_path: str | None
    run_report_path: str | None
    keep_days: int | None
    max_failed_records: int
    max_in_flight: int
    checkpoint_seconds: float
    max_retry_after_seconds: float
    allow_insecure_http: bool
    rate_budget_dir: str | None
