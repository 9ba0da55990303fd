"""`ConnectorTarget`: every capability the two targets share, in the order they stack.

Reading from the left: setting errors as one plain line (`cli.py`), settings given as text by
Meltano or the environment (`settings.py`), `--test` that checks settings against the API
(`configtest.py`), plan mode (`plan.py`), dead-letter replay (`replay.py`), then the pipelined
SDK target itself (`target.py`). A target adds only what is its API's own.
"""

from __future__ import annotations

from connector_kit.cli import PlainSettingErrors
from connector_kit.configtest import MeltanoConfigTest
from connector_kit.plan import DryRun
from connector_kit.replay import DeadLetterReplay
from connector_kit.settings import SettingsFromText
from connector_kit.target import PipelinedTarget


class ConnectorTarget(
    PlainSettingErrors,
    SettingsFromText,
    MeltanoConfigTest,
    DryRun,
    DeadLetterReplay,
    PipelinedTarget,
):
    """A target of this project: batched, checkpointed, replayable, with a plan mode."""

    package_name = "okki-crm-sync"  # the distribution that ships it (its version in --about)
