"""`meltano config test <loader>`: the destination checked, nothing written.

Meltano 4 tests a loader by sending it a stream named `meltano_test_stream` (a SCHEMA, one
RECORD, a STATE) and counts the test passed when the loader exits 0 and prints no line holding
"error" or "exception" (`meltano/core/plugin_test_service.py`, `LoaderTestService`). It warns
that a table of that name is created; a CRM is no place for one. So a target that sees that
stream checks instead what a first run would need — the API key, the destination's metadata,
every configured mapping against it — logs what it checked, and writes nothing: no row, no
STATE, no dead letter.
"""

from __future__ import annotations

import logging
from typing import Any

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

    def _process_schema_message(self, message_dict: dict[str, Any]) -> None:
        if message_dict.get("stream") != MELTANO_TEST_STREAM:
            super()._process_schema_message(message_dict)  # type: ignore[misc]
            return
        if not self._config_tested:
            self._config_tested = True
            for line in self.check_destination():
                self.logger.info("Configuration test: %s", line)
            self.logger.info(
                "Configuration test passed (Meltano's '%s'): nothing was written.",
                MELTANO_TEST_STREAM,
            )

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        if message_dict.get("stream") != MELTANO_TEST_STREAM:
            super()._process_record_message(message_dict)  # type: ignore[misc]

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        if not self._config_tested:  # the test's STATE is no checkpoint of anything
            super()._process_state_message(message_dict)  # type: ignore[misc]
