"""`target-twenty`: batched upserts of any Singer stream into Twenty CRM.

Every record is upserted on a stable id (`load_method` admits `upsert` only); a record the tap
marks deleted (`_sdc_deleted_at`) soft-deletes its Twenty record (`process_deletes`), and nothing
else is ever deleted. Built on `target_kit.PipelinedTarget` (several batches in flight, STATE per
acknowledged batch, dead letters, run report). What is Twenty's own is here and in the sibling
modules: the settings, the workspace metadata every mapping is checked against, stable ids and
aliases.
"""

from __future__ import annotations

import threading
from typing import Any

from target_kit.cli import PlainSettingErrors
from target_kit.configtest import MeltanoConfigTest
from target_kit.http import ApiError, ConfigError
from target_kit.plan import DryRun, scratch_copy
from target_kit.replay import DeadLetterReplay
from target_kit.settings import SettingsFromText
from target_kit.target import PipelinedTarget
from target_twenty.client import WITH_DELETED, TwentyClient
from target_twenty.ids import IdStore
from target_twenty.mapping import Reference, StreamMapping
from target_twenty.metadata import TwentyObject, Workspace
from target_twenty.ownership import Ownership
from target_twenty.parents import ParentOrder
from target_twenty.plan import PlanClient
from target_twenty.settings import SETTINGS, TwentySettings
from target_twenty.sinks import TwentySink


class TargetTwenty(
    PlainSettingErrors,
    SettingsFromText,
    MeltanoConfigTest,
    DryRun,
    DeadLetterReplay,
    PipelinedTarget,
):
    """Upserts any Singer stream into Twenty CRM, linked, at the rate ceiling, no duplicates."""

    name = "target-twenty"
    package_name = "okki-crm-sync"  # the distribution that ships it (its version in --about)
    config_jsonschema = SETTINGS.to_dict()
    default_sink_class = TwentySink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings = TwentySettings.from_config(self.config)
        base_url = self.checked_base_url(settings.base_url)
        per_window = settings.max_requests_per_window
        client_args = (base_url, settings.api_key, per_window, settings.rate_limit_window_seconds)
        client_options: dict[str, Any] = {
            "pool_size": settings.max_in_flight + 2,
            "on_limit": self._set_ceiling,
            "max_retry_after": self.max_retry_after,
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
        self._workspace: Workspace | None = None
        self._mappings: dict[str, StreamMapping] = {}
        # Streams other streams reference: their written ids are noted for this run.
        self.parent_streams = {
            ref.get("stream")
            for spec in settings.mappings.values()
            for ref in [
                *((spec or {}).get("references") or {}).values(),
                *(((spec or {}).get("links") or {}).get("to") or []),
            ]
            if isinstance(ref, dict)
        }
        self.parent_order = ParentOrder(
            self.ids,
            self.drain_one,
            max_held=settings.max_held_records,
            batch_size=settings.batch_size,
            on_missing_parent=settings.on_missing_parent,
            logger=self.logger,
        )
        self.conflicts_said = 0  # unique-value conflicts warned about (the first 20 are)
        self._empty: dict[str, bool] = {}  # object id → it held no row when the run began
        self._empty_lock = threading.Lock()

    def _set_ceiling(self, per_window: int) -> None:
        window = self.settings.rate_limit_window_seconds
        self.report.ceiling_per_minute = per_window * self.settings.batch_size * 60 / window
        self.report.meaningful_seconds = window  # a rate over less can outrun the ceiling

    def check_destination(self) -> list[str]:
        """`meltano config test`: the key, the workspace's metadata, every mapping."""
        try:
            workspace = self.workspace
        except ApiError as exc:
            raise ConfigError(f"Reading Twenty's metadata failed: {exc}") from None
        lines = [
            f"the API key reads the metadata of {self.client.api.base_url}: "
            f"{len(workspace.objects)} objects"
        ]
        for stream, mapping in sorted(self._mappings.items()):
            lines.append(
                f"stream '{stream}' → {mapping.object.plural}: mapping checked"
                + (
                    f"; fields to create on the first run: {sorted(mapping.missing)}"
                    if mapping.missing
                    else ""
                )
            )
        return lines

    # Workspace and mappings ---------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        """The metadata, read when the first stream arrives; every mapping is checked then."""
        if self._workspace is None:
            self._workspace = Workspace.from_api(self.client.objects())
            settings = self.settings.mappings
            for stream, spec in settings.items():
                self._mappings[stream] = StreamMapping.from_settings(
                    stream,
                    spec or {},
                    self._workspace,
                    settings,
                    self.settings.create_missing_fields,
                    self.settings.default_timezone,
                )
            for stream in self.parent_streams - set(settings):
                self.mapping(stream)  # a parent loaded with the default mapping: check it too
        return self._workspace

    def mapping(self, stream: str) -> StreamMapping:
        """The stream's mapping as configured (default fields not filled in yet)."""
        workspace = self.workspace
        if stream not in self._mappings:
            self._mappings[stream] = StreamMapping.from_settings(
                stream,
                {},
                workspace,
                self.settings.mappings,
                timezone=self.settings.default_timezone,
            )
        return self._mappings[stream]

    def object_of(self, stream: str) -> TwentyObject:
        return self.mapping(stream).object

    def create_fields(self, mapping: StreamMapping, properties: dict[str, Any]) -> StreamMapping:
        """Create the fields `mapping` names that its object lacks (`create_missing_fields`);
        the mapping with them. Runs when the stream's SCHEMA arrives, before its records."""
        obj = mapping.object
        for name, definition in mapping.field_types(properties).items():
            if name in obj.fields:
                continue  # another stream of the same object created it
            body = {
                "objectMetadataId": obj.id,
                "name": name,
                "label": _label(name),
                "isNullable": True,
                **definition,
            }
            if "options" in body:
                body["options"] = [
                    {"value": v, "label": v, "position": n} for n, v in enumerate(body["options"])
                ]
            try:
                self.client.create_field(body)
            except ApiError as exc:
                raise ConfigError(
                    f"Setting 'create_missing_fields': Twenty refused to create field {name!r} "
                    f"on '{obj.plural}' (stream '{mapping.stream}'): {exc.code} {exc.message}"
                ) from None
            self.logger.info(
                "Created field %s.%s (%s) for stream '%s'.",
                obj.plural,
                name,
                definition["type"],
                mapping.stream,
            )
        fresh = Workspace.from_api(self.client.objects()).object(obj.plural)
        obj.fields.update(fresh.fields)  # every mapping of the object sees them
        updated = mapping.with_created_fields()
        self._mappings[mapping.stream] = updated
        return updated

    def dependants(self, stream: str) -> list[tuple[StreamMapping, Reference]]:
        """The mappings with references to `stream`'s records, and those references."""
        self.workspace  # noqa: B018 - loads every configured mapping
        return [
            (mapping, ref)
            for mapping in list(self._mappings.values())
            for ref in mapping.references
            if ref.stream == stream
        ]

    def started_empty(self, obj: TwentyObject) -> bool:
        """Whether `obj` held no row at all (soft-deleted ones included) before this run wrote
        to it: asked once per object, before its first write (`ownership.py`)."""
        with self._empty_lock:
            if obj.id not in self._empty:
                rows = self.client.api.send(
                    "GET",
                    f"/rest/{obj.plural}",
                    endpoint=f"GET /rest/{obj.plural}",
                    params={"filter": WITH_DELETED, "limit": 1},
                )
                found = ((rows or {}).get("data") or {}).get(obj.plural) or []
                self._empty[obj.id] = not found
            return self._empty[obj.id]

    def ownership_of(self, mapping: StreamMapping) -> Ownership:
        return Ownership(self, mapping)

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
            if self.conflicts_said > 20:
                self.logger.warning(
                    "%d unique-value conflicts in all (the first 20 are above); each is in the "
                    "run report with both keys and the value (status 'conflict').",
                    self.conflicts_said,
                )
            self.logger.info(
                "Twenty: %d API calls, %d retried, %d throttled (429).",
                self.client.calls,
                self.client.api.retries,
                self.client.api.throttled,
            )


def _label(name: str) -> str:
    """`okkiId` → `Okki Id`: a field label people read in Twenty."""
    words, word = [], ""
    for char in name:
        if char.isupper() and word:
            words.append(word)
            word = char
        else:
            word += char
    words.append(word)
    return " ".join(w[:1].upper() + w[1:] for w in words)
