"""`target-twenty`: batched upserts of any Singer stream into Twenty CRM.

Every record is upserted on a stable id (`load_method` admits `upsert` only); a record the tap
marks deleted (`_sdc_deleted_at`) soft-deletes its Twenty record (`process_deletes`), and nothing
else is ever deleted. Built on `connector_kit.ConnectorTarget` (several batches in flight, STATE per
acknowledged batch, dead letters, run report). What is Twenty's own is in the sibling
modules, the same rooms as target-jiandaoyun's: settings (`settings.py`), the sink (`sinks.py`)
and its writer (`writer.py`), the workspace's metadata (`metadata.py`, read through
`destination.py`), mappings (`mapping.py`) and values (`values.py`); besides them stable ids and
aliases (`ids.py`), identity (`identity.py`, `ownership.py`), deletions (`removal.py`) and
parents before children (`parents.py`).
"""

from __future__ import annotations

from typing import Any

from connector_kit.connector_target import ConnectorTarget
from connector_kit.http import ApiError, ConfigError
from connector_kit.plan import scratch_copy
from target_twenty.client import TwentyClient
from target_twenty.destination import Destination
from target_twenty.ids import IdStore
from target_twenty.parents import ParentOrder
from target_twenty.plan import PlanClient
from target_twenty.settings import SETTINGS, TwentySettings
from target_twenty.sinks import TwentySink


class TargetTwenty(ConnectorTarget):
    """Upserts any Singer stream into Twenty CRM, linked, at the rate ceiling, no duplicates."""

    name = "target-twenty"
    config_jsonschema = SETTINGS.to_dict()
    settings_class = TwentySettings
    settings: TwentySettings
    default_sink_class = TwentySink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.settings
        base_url = self.checked_base_url(settings.base_url)
        per_window = settings.max_requests_per_window
        client_args = (base_url, settings.api_key, per_window, settings.rate_limit_window_seconds)
        client_options: dict[str, Any] = {
            "pool_size": settings.max_in_flight + 2,
            "on_limit": self._set_ceiling,
            "max_retry_after": self.max_retry_after,
            "budget_dir": settings.rate_budget_dir,
        }
        self.client = (
            PlanClient(*client_args, changes=self.changes, **client_options)
            if self.dry_run
            else TwentyClient(*client_args, **client_options)
        )
        self._set_ceiling(per_window)
        id_map = settings.id_map_path
        # A plan works on a copy of the id map: what it notes was never written.
        self.ids = IdStore(scratch_copy(id_map) if self.dry_run else id_map, settings.id_namespace)
        self.parent_order = ParentOrder(
            self.ids,
            self.drain_one,
            max_held=settings.max_held_records,
            batch_size=settings.batch_size,
            on_missing_parent=settings.on_missing_parent,
            logger=self.logger,
        )
        self.destination = Destination(self.client, self.ids, self.report, settings, self.logger)

    def _set_ceiling(self, per_window: int) -> None:
        window = self.settings.rate_limit_window_seconds
        self.report.ceiling_per_minute = per_window * self.settings.batch_size * 60 / window
        self.report.meaningful_seconds = window  # a rate over less can outrun the ceiling

    def check_destination(self) -> list[str]:
        """`meltano config test`: the key, the workspace's metadata, every mapping."""
        try:
            workspace = self.destination.workspace
        except ApiError as exc:
            raise ConfigError(f"Reading Twenty's metadata failed: {exc}") from None
        lines = [
            f"the API key reads the metadata of {self.client.api.base_url}: "
            f"{len(workspace.objects)} objects"
        ]
        for stream, mapping in sorted(self.destination.mappings.items()):
            lines.append(
                f"stream '{stream}' → {mapping.object.plural}: mapping checked"
                + (
                    f"; fields to create on the first run: {sorted(mapping.missing)}"
                    if mapping.missing
                    else ""
                )
            )
        return lines

    # Children that came before their parent (`parents.py`) --------------------------------
    def checkpoint_overdue(self, seconds: float) -> None:
        self.parent_order.checkpoint_overdue(seconds)

    def held_back(self) -> int:
        return len(self.parent_order)

    def end_of_input(self) -> None:
        self.parent_order.end_of_input()

    # End of run ---------------------------------------------------------------------------
    def _finish(self, raise_failures: bool) -> None:
        if self._finished:
            return
        try:
            super()._finish(raise_failures)
        finally:
            self.ids.close()
            self.parent_order.log_summary()
            if self.destination.conflicts_said > 20:
                self.logger.warning(
                    "%d unique-value conflicts in all (the first 20 are above); each is in the "
                    "run report with both keys and the value (status 'conflict').",
                    self.destination.conflicts_said,
                )
            self.logger.info(
                "Twenty: %d API calls, %d retried, %d throttled (429).",
                self.client.calls,
                self.client.api.retries,
                self.client.api.throttled,
            )
