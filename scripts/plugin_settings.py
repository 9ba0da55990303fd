"""Print a plugin's settings as `meltano.yml` and `.env.example` want them, from `--about`.

The plugin's `config_jsonschema` is where a setting is declared; `meltano.yml` and `.env.example`
mirror it. `tests/test_project_files.py` fails when they drift; this prints what to paste.

    .venv/bin/python scripts/plugin_settings.py tap-okki [--env]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

# Built-in SDK settings worth declaring in meltano.yml (the rest stay at their defaults).
BUILTINS_KEPT = {
    "stream_maps",
    "stream_map_config",
    "batch_size_rows",
    "validate_records",
    "load_method",
}
OWN_PLUGINS = ("tap-okki", "target-twenty", "target-jiandaoyun")


def about(plugin: str) -> dict[str, Any]:
    executable = Path(sys.executable).parent / plugin
    output = subprocess.run(
        [str(executable), "--about", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output)


def own_setting_names(plugin: str, info: dict[str, Any]) -> list[str]:
    """Settings the plugin declares itself, plus the built-ins we document."""
    names = []
    for name in info["settings"]["properties"]:
        if name in _sdk_builtins(plugin) and name not in BUILTINS_KEPT:
            continue
        names.append(name)
    return names


def _sdk_builtins(plugin: str) -> set[str]:
    from singer_sdk import Target
    from singer_sdk.helpers.capabilities import BATCH_CONFIG

    if plugin.startswith("tap-"):
        return {
            "stream_maps",
            "stream_map_config",
            "faker_config",
            "flattening_enabled",
            "flattening_max_depth",
            "flattening_max_key_length",
            "flattening_separator",
            "batch_config",
        }
    schema: dict[str, Any] = {"properties": {}}
    Target.append_builtin_config(schema)
    # Our targets read BATCH messages (the `batch` capability): the SDK adds `batch_config`.
    return set(schema["properties"]) | set(BATCH_CONFIG["properties"])


def kind(spec: dict[str, Any]) -> str:
    """The Meltano `kind` of a setting.

    A fractional number is `string`, not `decimal`: Meltano 4.4.1 reads a `decimal` from
    `.env` or the environment as a `Decimal` it cannot serialize (`TypeError: Object of type
    Decimal is not JSON serializable`); the plugins read numbers given as text
    (`connector_kit/settings.py`).
    """
    if spec.get("enum"):
        return "options"
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else types
    for json_type, meltano_kind in (
        ("boolean", "boolean"),
        ("integer", "integer"),
        ("number", "string"),
        ("object", "object"),
        ("array", "array"),
    ):
        if json_type in types:
            return meltano_kind
    if spec.get("format") in ("date-time", "date"):
        return "date_iso8601"
    return "string"


def meltano_settings(plugin: str) -> list[dict[str, Any]]:
    info = about(plugin)
    props = info["settings"]["properties"]
    settings = []
    for name in own_setting_names(plugin, info):
        spec = props[name]
        entry: dict[str, Any] = {"name": name, "kind": kind(spec)}
        if spec.get("description"):
            entry["description"] = " ".join(spec["description"].split())
        if spec.get("enum"):
            entry["options"] = [{"label": v, "value": v} for v in spec["enum"] if v is not None]
        if spec.get("secret"):
            entry["sensitive"] = True
        if "default" in spec and spec["default"] is not None:
            entry["value"] = spec["default"]
        settings.append(entry)
    return settings


def required_settings(plugin: str) -> list[str]:
    """For `settings_group_validation` in meltano.yml."""
    return list(about(plugin)["settings"].get("required", []))


def env_lines(plugin: str) -> list[str]:
    """The secrets: they belong in `.env`, never in meltano.yml."""
    prefix = plugin.upper().replace("-", "_")
    props = about(plugin)["settings"]["properties"]
    return [f"{prefix}_{name.upper()}=" for name, spec in props.items() if spec.get("secret")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plugin", choices=OWN_PLUGINS)
    parser.add_argument("--env", action="store_true", help="print .env.example lines instead")
    args = parser.parse_args()
    if args.env:
        print("\n".join(env_lines(args.plugin)))
    else:
        print(yaml.safe_dump(meltano_settings(args.plugin), allow_unicode=True, sort_keys=False))


if __name__ == "__main__":
    main()
