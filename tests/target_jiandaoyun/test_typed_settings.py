"""target-jiandaoyun's typed settings: read once, every default the declared one."""

from __future__ import annotations

import dataclasses

from target_jiandaoyun.target import TargetJiandaoyun


def test_typed_settings_take_every_default_from_the_declared_settings() -> None:
    forms = {"s": {"app_id": "a", "entry_id": "e"}}
    target = TargetJiandaoyun(config={"api_key": "typed-settings-key-7Qz4", "forms": forms})
    declared = TargetJiandaoyun.config_jsonschema["properties"]
    settings = dataclasses.asdict(target.settings)
    compared = {n: v for n, v in settings.items() if "default" in declared.get(n, {})}
    assert len(compared) >= 12
    for name, value in compared.items():
        assert value == declared[name]["default"], name
    assert target.settings.default_timezone is None and target.settings.load_method is None
