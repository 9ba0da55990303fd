"""Typed settings: one frozen object per plugin, and every default only where it is declared."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import connector_kit
import tap_okki
from connector_kit.target import COMMON_SETTINGS
from connector_kit.typed_settings import CommonSettings, declared_values
from tap_okki.settings import TapSettings
from tap_okki.tap import TapOkki

REQUIRED = {"client_id": "id", "client_secret": "s3cr3t"}


def test_an_unset_setting_takes_its_declared_default_and_a_set_one_its_value() -> None:
    schema = {"properties": {"a": {"default": 1}, "b": {"default": "x"}, "c": {}}}
    assert declared_values({}, schema) == {"a": 1, "b": "x", "c": None}
    assert declared_values({"a": None, "b": ""}, schema) == {"a": 1, "b": "x", "c": None}
    assert declared_values({"a": 0, "b": "y", "c": False}, schema) == {"a": 0, "b": "y", "c": False}


def test_the_taps_settings_default_to_what_its_schema_declares() -> None:
    settings = TapOkki(config=REQUIRED).settings
    declared = TapOkki.config_jsonschema["properties"]
    for field in dataclasses.fields(TapSettings):
        if "default" in declared[field.name]:
            assert getattr(settings, field.name) == declared[field.name]["default"], field.name
    assert settings.scope == "company opportunity user"  # not the `company` a read site had


def test_the_taps_settings_are_frozen_typed_and_never_show_the_secret() -> None:
    settings = TapOkki(config={**REQUIRED, "request_timeout": 30, "scope": None}).settings
    assert settings.request_timeout == 30.0 and isinstance(settings.request_timeout, float)
    assert settings.scope == "company opportunity user"
    assert "s3cr3t" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.page_size = 5  # type: ignore[misc]


def test_the_taps_retry_policy_comes_from_its_settings() -> None:
    config = {**REQUIRED, "max_attempts": 3, "backoff_base_seconds": 0.5}
    policy = TapOkki(config=config).settings.retry_policy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (3, 0.5, 60.0)


def test_common_settings_take_the_targets_own_declared_defaults() -> None:
    schema = COMMON_SETTINGS.to_dict()
    schema["properties"]["max_in_flight"]["default"] = 8  # as target-twenty declares it
    settings = CommonSettings.from_config({"checkpoint_seconds": 5}, schema)
    assert settings.max_in_flight == 8
    assert settings.checkpoint_seconds == 5.0 and isinstance(settings.checkpoint_seconds, float)
    assert settings.max_retry_after_seconds == 120.0
    assert (settings.dead_letter_path, settings.keep_days) == (None, None)


def test_a_target_extends_common_settings_with_its_own_fields() -> None:
    @dataclasses.dataclass(frozen=True)
    class Extended(CommonSettings):
        base_url: str

    schema = COMMON_SETTINGS.to_dict()
    schema["properties"]["base_url"] = {"type": "string", "default": "https://api.example"}
    assert Extended.from_config({}, schema).base_url == "https://api.example"
    with pytest.raises(KeyError, match="no declared setting"):
        Extended.from_config({}, COMMON_SETTINGS.to_dict())


def config_reads_with_a_default(package: Path) -> list[str]:
    """`….config.get("name", default)` calls: a default repeated away from the schema."""
    found = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and len(node.args) == 2
                and ast.unparse(node.func.value).endswith("config")
            ):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("package", [tap_okki, connector_kit], ids=lambda p: p.__name__)
def test_no_read_site_repeats_a_declared_default(package: object) -> None:
    assert config_reads_with_a_default(Path(package.__file__).parent) == []  # type: ignore[attr-defined]
