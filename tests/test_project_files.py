"""meltano.yml and .env.example mirror what each plugin declares in its config_jsonschema."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from plugin_settings import OWN_PLUGINS, env_lines, meltano_settings  # noqa: E402


def meltano_plugin(name: str) -> dict:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    plugins = project["plugins"]["extractors"] + project["plugins"]["loaders"]
    return next(p for p in plugins if p["name"] == name)


@pytest.mark.parametrize("plugin", OWN_PLUGINS)
def test_meltano_yml_declares_every_setting_as_the_plugin_does(plugin: str) -> None:
    declared = {s["name"]: s for s in meltano_plugin(plugin)["settings"]}
    expected = {s["name"]: s for s in meltano_settings(plugin)}
    assert list(declared) == list(expected), "run scripts/plugin_settings.py and update"
    for name, setting in expected.items():
        assert declared[name].get("kind") == setting["kind"], name
        assert declared[name].get("sensitive", False) == setting.get("sensitive", False), name
        assert declared[name].get("value") == setting.get("value"), name
        assert declared[name].get("description"), f"{plugin}.{name} has no description"


@pytest.mark.parametrize("plugin", OWN_PLUGINS)
def test_env_example_lists_every_secret_and_meltano_yml_holds_none(plugin: str) -> None:
    env_example = (ROOT / ".env.example").read_text().splitlines()
    for line in env_lines(plugin):
        assert line in env_example
    project = (ROOT / "meltano.yml").read_text()
    prod = next(e for e in yaml.safe_load(project)["environments"] if e["name"] == "prod")
    secrets = [s["name"] for s in meltano_settings(plugin) if s.get("sensitive")]
    prod_configs = prod["config"]["plugins"]
    for kind in prod_configs.values():
        for entry in kind:
            assert not set(entry.get("config", {})) & set(secrets), f"a secret in prod: {entry}"


def test_meltano_yml_turns_usage_statistics_off() -> None:
    assert yaml.safe_load((ROOT / "meltano.yml").read_text())["send_anonymous_usage_stats"] is False


def test_readme_settings_tables_match_the_plugins() -> None:
    from readme_settings import README, refreshed

    current = README.read_text()
    assert refreshed(current) == current, "run scripts/readme_settings.py"
