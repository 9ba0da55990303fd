"""target-twenty's typed settings: read once, every default the declared one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from target_twenty.target import TargetTwenty


def test_typed_settings_take_every_default_from_the_declared_settings(tmp_path: Path) -> None:
    target = TargetTwenty(
        config={"api_key": "typed-settings-key-7Qz4", "id_map_path": str(tmp_path / "ids.sqlite3")}
    )
    declared = TargetTwenty.config_jsonschema["properties"]
    settings = dataclasses.asdict(target.settings)
    defaulted = {n for n, p in declared.items() if "default" in p} - {"id_map_path"}
    compared = {name: value for name, value in settings.items() if name in defaulted}
    assert len(compared) >= 12
    for name, value in compared.items():
        assert value == declared[name]["default"], name
    assert target.settings.batch_size == declared["batch_size_rows"]["default"]
    assert target.settings.default_timezone is None  # declared without a default
