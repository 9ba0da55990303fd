"""How a plugin stops on a setting error: one line that says what to fix.

The SDK logs every uncaught exception with its traceback (`SingerCommand.excepthook`): 40–60
lines under a message like "Setting 'base_url' uses plain http:// …", which is all a person
needs. A setting error (`ConfigError`, and the SDK's `ConfigValidationError`, whose problems
the SDK would log one per line) is logged as one ERROR line; its traceback goes to the DEBUG
level (`<PLUGIN>_LOGLEVEL=debug` shows it). Every other failure keeps the SDK's full report.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from singer_sdk.exceptions import ConfigValidationError

from connector_kit.http import ConfigError

SETTING_ERRORS: tuple[type[BaseException], ...] = (ConfigError, ConfigValidationError)


def _plain_hook(logger: logging.Logger, fallback: Any) -> Any:
    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not issubclass(exc_type, SETTING_ERRORS):
            fallback(exc_type, exc, tb)
            return
        message = str(exc.args[0]) if exc.args else exc_type.__name__
        logger.error("%s", " ".join(message.split("\n")))
        logger.debug("Where the setting error was raised", exc_info=(exc_type, exc, tb))

    return hook


class PlainSettingErrors:
    """Mixin for a singer-sdk `Tap` or `Target`: setting errors end the run as one line."""

    logger: logging.Logger

    @classmethod
    def get_singer_command(cls) -> Any:
        command = super().get_singer_command()  # type: ignore[misc]
        command.excepthook = _plain_hook(cls.logger, command.excepthook)
        run = command.callback

        def callback(*args: Any, **kwargs: Any) -> Any:
            # The SDK logs a line per schema problem and a closing "Config validation failed";
            # made one `ConfigError`, the problems end as one line too.
            try:
                return run(*args, **kwargs)
            except ConfigValidationError as exc:
                problems = "; ".join(str(e) for e in exc.errors) or str(exc)
                raise ConfigError(problems) from None

        command.callback = callback
        return command
