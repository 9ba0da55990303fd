"""Settings given as text read as the type their schema declares, whoever wrote the text.

Every setting can come from `meltano.yml`, from `.env` or the environment through Meltano, or
from the environment through the SDK's `--config=ENV`; the run must behave the same. Text
arrives where a number or an object is declared when:

- Meltano passes numbers as text: `meltano.yml` and our plugin definitions declare the
  fractional settings `kind: string`, because Meltano 4.4.1 turns a `kind: decimal` value from
  `.env` or the environment into a `Decimal` it then cannot write as JSON (`TypeError: Object
  of type Decimal is not JSON serializable` from `meltano run`, `invoke` and `config print`);
- `meltano config set <plugin> <setting> 30` stores "30" for a `kind: string` setting;
- the SDK's `--config=ENV` converts integers and booleans only: a number or an object given in
  an environment variable reaches the plugin as text.

So before the settings are validated, text in a setting declared as a number, an integer, a
boolean, an object or an array is converted (objects and arrays are JSON). Text that does not
convert is left alone, and validation names the setting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


def _types(spec: Mapping[str, Any]) -> set[str]:
    """The JSON types a setting's schema admits (`anyOf` branches included)."""
    declared = spec.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    for branch in spec.get("anyOf", []) or []:
        types |= _types(branch)
    return types


def from_text(value: str, spec: Mapping[str, Any]) -> Any:
    """`value` as the first of the setting's declared types it reads as, else unchanged."""
    types = _types(spec)
    if "string" in types:
        return value  # text is a valid value: never guess
    text = value.strip()
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return int(number) if number.is_integer() and "." not in text else number
    if "boolean" in types and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    if types & {"object", "array"} and text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    if "null" in types and text == "":
        return None
    return value


def settings_from_text(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with each top-level text value converted as its setting declares."""
    properties = schema.get("properties") or {}
    converted = dict(config)
    for name, value in config.items():
        if isinstance(value, str) and name in properties:
            converted[name] = from_text(value, properties[name])
    return converted


class SettingsFromText:
    """Mixin for a singer-sdk `Tap` or `Target` (listed first): text settings converted before
    the SDK validates them, so "30" from `.env` is the number 30 everywhere after."""

    _config: dict[str, Any]
    config_jsonschema: dict[str, Any]

    # Private SDK API (tests/test_sdk_contract.py): the settings (`_config`) must be converted
    # before the SDK validates them, and no public hook runs before that.
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        schema = dict(self.config_jsonschema)
        self.append_builtin_config(schema)  # type: ignore[attr-defined]
        self._config = settings_from_text(self._config, schema)
        return super()._validate_config(raise_errors=raise_errors)  # type: ignore[misc]
