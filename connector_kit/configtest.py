"""`meltano config test <loader>`: the destination checked, nothing written.

Meltano 4 tests a loader by sending it a stream named `meltano_test_stream` (a SCHEMA, one
RECORD, a STATE) and counts the test passed when the loader exits 0 and prints no line holding
"error" or "exception" (`meltano/core/plugin_test_service.py`, `LoaderTestService`). It warns
that a table of that name is created; a CRM is no place for one. So a target that sees that
stream checks instead what a first run would need — the API key, the destination's metadata,
every configured mapping against it — logs what it checked, and writes nothing: no row, no
STATE, no dead letter.

The same check runs as `<target> --test` (`meltano invoke <target> --test`): Meltano 4.4.1's
loader test itself ends in a `ProcessLookupError` after a loader that passed has exited, on
CPython 3.11 (it calls `terminate()` on the finished process, whose transport asyncio has
already closed: `plugin_test_service.py`, `LoaderTestService.validate`, `finally:`). The
target's own lines say whether the check passed: "Configuration test passed".
"""

from __future__ import annotations

import logging
from typing import Any

import click
from singer_sdk.plugin_base import _ConfigInput

MELTANO_TEST_STREAM = "meltano_test_stream"


class MeltanoConfigTest:
    """Mixin for a `PipelinedTarget` (listed before it). Subclasses implement
    `check_destination()`, which raises `ConfigError` naming the setting at fault."""

    logger: logging.Logger
    _config_tested = False

    def check_destination(self) -> list[str]:
        """Read what a run would read first and check the settings against it; the facts
        found, one line each. Writes nothing."""
        raise NotImplementedError

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()  # type: ignore[misc]
        command.params.append(
            click.Option(
                ["--test", "config_test"],
                is_flag=True,
                help="Check the settings against the destination (key, metadata, mappings) "
                "and exit; writes nothing.",
            )
        )
        return command

    @classmethod
    def invoke(cls, *, config_test: bool = False, **kwargs: Any) -> None:  # type: ignore[override]
        if not config_test or kwargs.get("about"):
            super().invoke(**kwargs)  # type: ignore[misc]
            return
        cls.print_version(print_fn=cls.logger.info)  # type: ignore[attr-defined]
        config = kwargs.get("config") or _ConfigInput()
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)  # type: ignore[call-arg]
        target._run_check()

    def _run_check(self) -> None:
        self._config_tested = True
        for line in self.check_destination():
            self.logger.info("Configuration test: %s", line)
        self.logger.info("Configuration test passed: nothing was written.")

    # Private SDK API (tests/test_sdk_contract.py): the SDK's message handlers, the only place
    # to stop before a sink is made.
    def _process_schema_message(self, message_dict: dict[str, Any]) -> None:
        if message_dict.get("stream") != MELTANO_TEST_STREAM:
            super()._process_schema_message(message_dict)  # type: ignore[misc]
            return
        if not self._config_tested:
            self._run_check()

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        if message_dict.get("stream") != MELTANO_TEST_STREAM:
            super()._process_record_message(message_dict)  # type: ignore[misc]

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        if not self._config_tested:  # the test's STATE is no checkpoint of anything
            super()._process_state_message(message_dict)  # type: ignore[misc]
