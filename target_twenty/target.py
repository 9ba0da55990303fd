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
from pathlib import Path
from typing import Any

from singer_sdk import typing as th

from target_kit.cli import PlainSettingErrors
from target_kit.configtest import MeltanoConfigTest
from target_kit.datetimes import DEFAULT_TIMEZONE_SETTING, default_timezone
from target_kit.deadletter import dead_letter_setting
from target_kit.http import ApiError, ConfigError
from target_kit.plan import DRY_RUN_SETTING, DryRun, scratch_copy
from target_kit.replay import DeadLetterReplay
from target_kit.settings import SettingsFromText
from target_kit.target import COMMON_SETTINGS, PipelinedTarget
from target_twenty.client import MAX_BATCH, WITH_DELETED, TwentyClient
from target_twenty.ids import IdStore
from target_twenty.mapping import Reference, StreamMapping
from target_twenty.metadata import TwentyObject, Workspace
from target_twenty.ownership import Ownership
from target_twenty.parents import ParentOrder
from target_twenty.plan import PlanClient
from target_twenty.sinks import TwentySink

EXPRESSION = th.ObjectType(
    th.Property("expression", th.StringType, required=True), additional_properties=False
)
REFERENCE = th.ObjectType(
    th.Property("stream", th.StringType, required=True, description="The parent stream."),
    th.Property(
        "field",
        th.CustomType({"type": ["string", "array"], "items": {"type": "string"}}),
        required=True,
        description="This record's property holding the parent's Singer key (for a compound "
        "key, a list of properties in the order of the parent's key properties).",
    ),
    th.Property(
        "on_parent_delete",
        th.StringType(allowed_values=["keep", "unlink", "cascade"]),
        default="keep",
        description="What happens to this stream's rows in Twenty (those a source record "
        "owns) when their parent is deleted at the source: keep them as they are, unlink "
        "them (the join column emptied), or cascade (soft-delete them too).",
    ),
    th.Property(
        "listed_in_parent",
        th.StringType,
        description="Where the parent's record lists all of its children of this stream, as "
        "'<list property>[].<key property>' (tap-okki: 'customers[].customer_id'). A child row "
        "the parent no longer lists follows `on_parent_delete` when the parent is next "
        "written (one extra read per batch of parents).",
    ),
)
STREAM_MAPPING = th.ObjectType(
    th.Property(
        "object",
        th.StringType,
        description="Plural API name of the Twenty object (standard or custom) the stream "
        "loads. Default: the stream name.",
    ),
    th.Property(
        "fields",
        th.ObjectType(
            additional_properties=th.AnyOf(
                th.StringType,
                EXPRESSION,
                # A composite's sub-fields nested instead of dotted (what Meltano makes of
                # dotted keys): {"domainName": {"primaryLinkUrl": "website"}}.
                th.ObjectType(additional_properties=th.AnyOf(th.StringType, EXPRESSION)),
            )
        ),
        description='Twenty field ← source property, e.g. {"name.firstName": "first_name", '
        '"domainName.primaryLinkUrl": "website"}, or ← a value computed from the record, e.g. '
        '{"amount.amountMicros": {"expression": "int(amount * 1000000) if amount is not None '
        'else None"}} (simpleeval, as in stream_maps: properties are names, `record` is the '
        "whole record, dates are ISO 8601 text, None empties the field; a record the "
        "expression fails on is dead-lettered). Default: properties load into the fields of "
        "the same name. A composite's sub-fields may also be nested: "
        '{"domainName": {"primaryLinkUrl": "website"}} (Meltano turns dotted keys into that).',
    ),
    th.Property(
        "source_key_field",
        th.StringType,
        description="A text field of the object that receives each record's source key (its "
        "Singer key properties, e.g. an OKKI id in 'okkiId'): people find rows by it, and the "
        "target reads from it which source record owns a row, so a lost `id_map_path` costs "
        "lookups, never a duplicate or a merge.",
    ),
    th.Property(
        "references",
        th.ObjectType(additional_properties=REFERENCE),
        description='Join column ← parent record, e.g. {"companyId": {"stream": "companies", '
        '"field": "company_id"}}. Parents are written before their children, whatever order '
        "the tap sends them in (see `max_held_records`).",
    ),
)

SETTINGS = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        description="Twenty API key (Settings → APIs & Webhooks). Sent as a Bearer token only.",
    ),
    th.Property(
        "base_url",
        th.StringType,
        default="https://api.twenty.com",
        description="Twenty's address: the cloud API or your self-hosted server.",
    ),
    th.Property(
        "batch_size_rows",
        th.IntegerType(minimum=1, maximum=MAX_BATCH),
        default=MAX_BATCH,
        description="Records per API call, at most 60 (Twenty's limit). The SDK's setting of "
        "that name; `batch_size`, its name before, is still read.",
    ),
    th.Property(
        "load_method",
        th.StringType(allowed_values=["upsert"]),
        default="upsert",
        description="Always upsert: each record updates the row its key was written to, or "
        "creates it. Appending would duplicate a customer on every re-sent record, and "
        "overwriting would delete rows people made in Twenty, so neither is offered.",
    ),
    th.Property(
        "max_requests_per_window",
        th.IntegerType(minimum=1),
        default=100,
        description="API calls allowed per rate-limit window (Twenty documents 100 per minute). "
        "The target paces itself to stay under it, and to the server's own figure when "
        "`X-RateLimit-Limit` announces fewer.",
    ),
    th.Property(
        "rate_limit_window_seconds",
        th.NumberType(exclusive_minimum=0),
        default=60,
        description="Length of that window in seconds (60 for Twenty; self-hosted servers can "
        "configure theirs).",
    ),
    th.Property(
        "mappings",
        th.ObjectType(additional_properties=STREAM_MAPPING),
        default={},
        description="Per stream: the Twenty object it loads, how source properties become "
        "(or compute) Twenty fields, and which fields reference records of another stream. "
        "Streams not listed load into the object named like the stream, field by field.",
    ),
    th.Property(
        "id_map_path",
        th.StringType,
        default="output/target-twenty/ids.sqlite3",
        description="SQLite file where the target remembers its rows: the row each source key "
        "was written to when it is not the key's own (a row made in Twenty that the record "
        "adopted), which key holds each unique value and which records wait for one. A cache: "
        "with `source_key_field` Twenty itself says which record owns a row, so losing the "
        "file costs lookups, never a duplicate or a merge. Created 0600 (it holds source "
        "keys).",
    ),
    th.Property(
        "id_namespace",
        th.StringType,
        default="",
        description="Part of every record's stable Twenty id. Give each tap its own value when "
        "several taps load streams with the same names into one workspace.",
    ),
    th.Property(
        "process_deletes",
        th.BooleanType,
        default=True,
        description="Propagate deletions: a record whose `_sdc_deleted_at` is set (a tap's mark "
        "for a record deleted at the source; tap-okki sets it on deleted companies) soft-deletes "
        "the Twenty record its key was written to, instead of being upserted. A later record "
        "of the key restores it. Off: such records are upserted like any other.",
    ),
    th.Property(
        "on_unique_conflict",
        th.StringType(allowed_values=["keep_apart", "merge", "dead_letter"]),
        default="keep_apart",
        description="A record whose unique value (a company domain, a person's primary email, "
        "a custom unique field) is held by a row another source record owns: keep_apart "
        "writes it as its own row with the value moved to the field's non-unique part "
        "(secondaryLinks, additionalEmails); merge writes it into that row (Twenty's own "
        "upsert behaviour); dead_letter refuses it. Each conflict is reported either way.",
    ),
    th.Property(
        "adopted_rows",
        th.StringType(allowed_values=["update", "fill_empty", "link_only"]),
        default="fill_empty",
        description="A row made in Twenty (no source record owns it) that holds a record's "
        "unique value is adopted by the record instead of duplicated. What the record may "
        "change in it: update (every mapped field), fill_empty (only fields that are empty), "
        "link_only (only `source_key_field`).",
    ),
    th.Property(
        "delete_adopted_rows",
        th.BooleanType,
        default=False,
        description="Whether a deletion at the source soft-deletes an adopted row (one made in "
        "Twenty). Off: the row stays and is only unlinked from the deleted record.",
    ),
    th.Property(
        "on_missing_parent",
        th.StringType(allowed_values=["dead_letter", "skip", "load_unlinked"]),
        default="dead_letter",
        description="A record whose parent (see `references`) never came and is not in "
        "Twenty (a stream map filtered it out, say): dead_letter it, skip it (counted and "
        "reported), or load it with the link empty.",
    ),
    th.Property(
        "create_missing_fields",
        th.BooleanType,
        default=False,
        description="Create the fields a mapping names that the object lacks (plain fields "
        "and `source_key_field`), through the metadata API, before any record is written: "
        "TEXT, or NUMBER, SELECT or MULTI_SELECT as the stream's schema says. Needs a key "
        "whose role may change the data model.",
    ),
    th.Property(
        "max_held_records",
        th.IntegerType(minimum=0),
        default=10000,
        description="A record whose parent (see `references`) has not come yet and is not in "
        "Twenty is held in memory until the parent comes, then written after it. At the end "
        "of the input, and once a STATE has waited `checkpoint_seconds` for it, a record whose "
        "parent has not come is sent anyway and `on_missing_parent` applies (a parent coming "
        "after that does not link it). At most this many are held: beyond it, the oldest are "
        "sent at once the same way. STATE messages after a held record wait until it is "
        "written.",
    ),
    th.Property(
        "max_in_flight",
        th.IntegerType(minimum=1),
        default=8,
        description="Batches sent concurrently, or prepared and waiting for their turn. Reaching "
        "100 calls a minute takes 2 when a call lasts a second; 8 also absorbs slow calls and "
        "pauses in the tap's output. The rate limit is respected regardless.",
    ),
    DEFAULT_TIMEZONE_SETTING,
    DRY_RUN_SETTING,
    # The shared settings, but for Twenty's own `max_in_flight` default above.
    *(
        dead_letter_setting("target-twenty") if name == "dead_letter_path" else p
        for name, p in COMMON_SETTINGS.wrapped.items()
        if name != "max_in_flight"
    ),
)


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
        cfg = self.config
        base_url = self.checked_base_url("https://api.twenty.com")
        self.batch_size = _batch_size(cfg)
        window = float(cfg.get("rate_limit_window_seconds", 60))
        per_window = int(cfg.get("max_requests_per_window", 100))
        client_args = (base_url, cfg["api_key"], per_window, window)
        client_options: dict[str, Any] = {
            "pool_size": int(cfg.get("max_in_flight", 8)) + 2,
            "on_limit": self._set_ceiling,
            "max_retry_after": self.max_retry_after,
        }
        self.client = (
            PlanClient(*client_args, changes=self.changes, **client_options)
            if self.dry_run
            else TwentyClient(*client_args, **client_options)
        )
        self._set_ceiling(per_window)
        id_map = Path(cfg.get("id_map_path") or "output/target-twenty/ids.sqlite3")
        # A plan works on a copy of the id map: what it notes was never written.
        self.ids = IdStore(
            scratch_copy(id_map) if self.dry_run else id_map, str(cfg.get("id_namespace", ""))
        )
        self._workspace: Workspace | None = None
        self._mappings: dict[str, StreamMapping] = {}
        # Streams other streams reference: their written ids are noted for this run.
        self.parent_streams = {
            ref.get("stream")
            for spec in (cfg.get("mappings") or {}).values()
            for ref in [
                *((spec or {}).get("references") or {}).values(),
                *(((spec or {}).get("links") or {}).get("to") or []),
            ]
            if isinstance(ref, dict)
        }
        self.on_unique_conflict = str(cfg.get("on_unique_conflict") or "keep_apart")
        self.adopted_rows = str(cfg.get("adopted_rows") or "fill_empty")
        self.delete_adopted_rows = bool(cfg.get("delete_adopted_rows", False))
        self.on_missing_parent = str(cfg.get("on_missing_parent") or "dead_letter")
        self.create_missing_fields = bool(cfg.get("create_missing_fields", False))
        self.timezone = default_timezone(cfg.get("default_timezone"))
        self.parent_order = ParentOrder(
            self.ids,
            self.drain_one,
            max_held=int(cfg.get("max_held_records", 10000)),
            batch_size=self.batch_size,
            on_missing_parent=self.on_missing_parent,
            logger=self.logger,
        )
        self.conflicts_said = 0  # unique-value conflicts warned about (the first 20 are)
        self._empty: dict[str, bool] = {}  # object id → it held no row when the run began
        self._empty_lock = threading.Lock()

    def _set_ceiling(self, per_window: int) -> None:
        window = float(self.config.get("rate_limit_window_seconds", 60))
        self.report.ceiling_per_minute = per_window * self.batch_size * 60 / window
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
            settings = self.config.get("mappings") or {}
            for stream, spec in settings.items():
                self._mappings[stream] = StreamMapping.from_settings(
                    stream,
                    spec or {},
                    self._workspace,
                    settings,
                    self.create_missing_fields,
                    self.timezone,
                )
            for stream in self.parent_streams - set(settings):
                self.mapping(stream)  # a parent loaded with the default mapping: check it too
        return self._workspace

    def mapping(self, stream: str) -> StreamMapping:
        """The stream's mapping as configured (default fields not filled in yet)."""
        workspace = self.workspace
        if stream not in self._mappings:
            self._mappings[stream] = StreamMapping.from_settings(
                stream, {}, workspace, self.config.get("mappings") or {}, timezone=self.timezone
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


def _batch_size(config: Any) -> int:
    """`batch_size_rows`, or `batch_size` (its name before) when only that is set."""
    old = config.get("batch_size")
    if old is not None and config.get("batch_size_rows") in (None, MAX_BATCH):
        if not isinstance(old, int) or not 1 <= old <= MAX_BATCH:
            raise ConfigError(
                f"Setting 'batch_size' (now 'batch_size_rows') must be 1 to {MAX_BATCH}, "
                f"got {old!r}."
            )
        return old
    return int(config.get("batch_size_rows") or MAX_BATCH)


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
