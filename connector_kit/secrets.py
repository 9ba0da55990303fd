"""Keep secrets out of every log line, error message, report and dead-letter entry.

`SecretMasking` gives an SDK plugin (tap or target) the masking as soon as its settings are
known: before they are validated, since the validator quotes a wrongly typed value
(`987654321987 is not of type 'string' in config['api_key']`). The filter masks the message,
its arguments and the traceback of `logger.exception`, which the formatters would otherwise
write from the live exception after every filter has run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from singer_sdk.exceptions import ConfigValidationError

MASK = "********"


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def secret_values(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The values of the settings `schema` marks `secret`, as text, whatever their type: a
    number given as an API key is still the key. Longest first, so that a secret holding
    another is masked whole."""
    found: set[str] = set()
    for name, spec in (schema.get("properties") or {}).items():
        if spec.get("secret") and config.get(name) not in (None, ""):
            found.update(_texts(config[name]))
    return sorted(found, key=len, reverse=True)


def _texts(value: Any) -> list[str]:
    """`value` as text, and the scalars inside a list or an object (each may be quoted alone)."""
    texts = [str(value)]
    if isinstance(value, Mapping):
        for item in value.values():
            texts += _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            texts += _texts(item)
    return [t for t in texts if t]


class RedactingFilter(logging.Filter):
    """A logging filter that masks the given secrets in every record, whatever its level."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info or record.exc_text:
            # Formatters print `exc_text`, or format `exc_info` themselves (the SDK's
            # structured one reads the exception's message and its causes): the traceback
            # is made text here, masked, and becomes part of the message.
            traceback = record.exc_text or logging.Formatter().formatException(record.exc_info)
            message = f"{message}\n{traceback}"
            record.exc_info, record.exc_text = None, None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        record.msg, record.args = redact(message, self.secrets), ()
        return True


_FILTER = RedactingFilter()


def install_redaction(secrets: Iterable[str]) -> None:
    """Mask `secrets` in everything logged through the root logger's handlers (one filter per
    process; installing again adds the new secrets to it)."""
    _FILTER.secrets = sorted({*_FILTER.secrets, *(s for s in secrets if s)}, key=len, reverse=True)
    root = logging.getLogger()
    for each in (root, *root.handlers):
        if _FILTER not in each.filters:
            each.addFilter(_FILTER)


class SecretMasking:
    """Mixin for a singer-sdk `Tap` or `Target` (listed before it): secrets masked in every
    log line from the moment the settings are read, validation errors included."""

    _config: dict[str, Any]
    config_jsonschema: dict[str, Any]

    def secrets(self) -> list[str]:
        """Setting values that must never be printed (the `secret=True` ones)."""
        return secret_values(self._config, self.config_jsonschema)

    # Private SDK API (tests/test_sdk_contract.py): where the SDK validates `_config`, the
    # settings as given; no public hook runs before the validator quotes a value.
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        secrets = self.secrets()
        install_redaction(secrets)
        try:
            errors = super()._validate_config(raise_errors=raise_errors)  # type: ignore[misc]
        except ConfigValidationError as exc:
            raise ConfigValidationError(
                redact(str(exc), secrets),
                errors=[redact(e, secrets) for e in exc.errors],
                schema=exc.schema,
            ) from None
        return [redact(e, secrets) for e in errors]
