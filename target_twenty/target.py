"""`target-twenty`: batched upserts of any Singer stream into Twenty CRM.

Every record is upserted on a stable id, whatever the SDK's `load_method` says; a record the tap
marks deleted (`_sdc_deleted_at`) soft-deletes its Twenty record (`process_deletes`), and nothing
else is ever deleted. Built on `target_kit.PipelinedTarget` (several batches in flight, STATE per
acknowledged batch, dead letters, run report). What is Twenty's own is here and in the sibling
modules: the settings, the workspace metadata every mapping is checked against, stable ids and
aliases.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from singer_sdk import typing as th

from target_kit.target import COMMON_SETTINGS, PipelinedTarget
from target_twenty.client import MAX_BATCH, TwentyClient
from target_twenty.held import Held, HeldRecords, Parent
from target_twenty.ids import IdStore
from target_twenty.mapping import StreamMapping
from target_twenty.metadata import TwentyObject, Workspace
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
        "batch_size",
        th.IntegerType(minimum=1, maximum=MAX_BATCH),
        default=MAX_BATCH,
        description="Records per API call, at most 60 (Twenty's limit).",
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
        description="SQLite file remembering the ids of records Twenty matched to rows that "
        "already existed (by domain or email), so later runs and references use them. Keep "
        "it between runs. Created 0600 (it holds source keys).",
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
        "max_held_records",
        th.IntegerType(minimum=0),
        default=10000,
        description="A record whose parent (see `references`) has not come yet and is not in "
        "Twenty is held in memory until the parent comes, then written after it; at the end of "
        "the input, those whose parent never came are dead-lettered. At most this many are "
        "held: beyond it, the oldest are sent at once and dead-lettered if their parent is "
        "still missing. STATE messages after a held record wait until it is written.",
    ),
    th.Property(
        "max_in_flight",
        th.IntegerType(minimum=1),
        default=8,
        description="Batches sent concurrently, or prepared and waiting for their turn. Reaching "
        "100 calls a minute takes 2 when a call lasts a second; 8 also absorbs slow calls and "
        "pauses in the tap's output. The rate limit is respected regardless.",
    ),
    # The shared settings, but for Twenty's own `max_in_flight` default above.
    *(p for name, p in COMMON_SETTINGS.wrapped.items() if name != "max_in_flight"),
)


class TargetTwenty(PipelinedTarget):
    """Upserts any Singer stream into Twenty CRM, linked, at the rate ceiling, no duplicates."""

    name = "target-twenty"
    config_jsonschema = SETTINGS.to_dict()
    default_sink_class = TwentySink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        base_url = self.checked_base_url("https://api.twenty.com")
        self.batch_size = int(cfg.get("batch_size", MAX_BATCH))
        window = float(cfg.get("rate_limit_window_seconds", 60))
        per_window = int(cfg.get("max_requests_per_window", 100))
        self.client = TwentyClient(
            base_url,
            cfg["api_key"],
            per_window,
            window,
            pool_size=int(cfg.get("max_in_flight", 8)) + 2,
            on_limit=self._set_ceiling,
        )
        self._set_ceiling(per_window)
        if cfg.get("load_method") == "overwrite":
            self.logger.warning(
                "load_method 'overwrite' is not supported: records are upserted and rows that "
                "are not in the stream stay in Twenty."
            )
        self.ids = IdStore(
            Path(cfg.get("id_map_path") or "output/target-twenty/ids.sqlite3"),
            str(cfg.get("id_namespace", "")),
        )
        self._workspace: Workspace | None = None
        self._mappings: dict[str, StreamMapping] = {}
        # Streams other streams reference: their written ids are noted for this run.
        self.parent_streams = {
            ref.get("stream")
            for spec in (cfg.get("mappings") or {}).values()
            for ref in ((spec or {}).get("references") or {}).values()
            if isinstance(ref, dict)
        }
        self.held = HeldRecords()
        self.max_held = int(cfg.get("max_held_records", 10000))
        self._overflow_logged = False

    def _set_ceiling(self, per_window: int) -> None:
        window = float(self.config.get("rate_limit_window_seconds", 60))
        self.report.ceiling_per_minute = per_window * self.batch_size * 60 / window

    # Workspace and mappings ---------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        """The metadata, read when the first stream arrives; every mapping is checked then."""
        if self._workspace is None:
            self._workspace = Workspace.from_api(self.client.objects())
            settings = self.config.get("mappings") or {}
            for stream, spec in settings.items():
                self._mappings[stream] = StreamMapping.from_settings(
                    stream, spec or {}, self._workspace, settings
                )
            for stream in self.parent_streams - set(settings):
                self.mapping(stream)  # a parent loaded with the default mapping: check it too
        return self._workspace

    def mapping(self, stream: str) -> StreamMapping:
        """The stream's mapping as configured (default fields not filled in yet)."""
        workspace = self.workspace
        if stream not in self._mappings:
            self._mappings[stream] = StreamMapping.from_settings(
                stream, {}, workspace, self.config.get("mappings") or {}
            )
        return self._mappings[stream]

    def object_of(self, stream: str) -> TwentyObject:
        return self.mapping(stream).object

    def sinks_of(self, stream: str) -> list[TwentySink]:
        """The sink of `stream`, and older ones a schema change retired but not drained yet."""
        sinks = [s for s in self._sinks_to_clear if s.stream_name == stream]
        active = self._sinks_active.get(stream)
        return [*sinks, active] if active is not None else sinks

    # Children that came before their parent (main thread) -------------------------------
    def hold(self, entries: Iterable[Held]) -> None:
        for entry in entries:
            self.held.add(entry)
        excess = len(self.held) - self.max_held
        if excess > 0:
            if not self._overflow_logged:
                self._overflow_logged = True
                self.logger.warning(
                    "More than max_held_records=%d records wait for their parent: the oldest "
                    "are sent now, and dead-lettered if their parent is not in Twenty.",
                    self.max_held,
                )
            # A batch's worth at once, not one lookup per record from here on.
            self._resend(self.held.oldest(max(excess, self.batch_size)))

    def parents_sent(self, parents: list[Parent]) -> None:
        self._resend(self.held.arrived(parents))

    def _resend(self, entries: list[Held]) -> None:
        by_sink: dict[TwentySink, list[Held]] = {}
        for entry in entries:
            by_sink.setdefault(entry.sink, []).append(entry)
        for sink, held in by_sink.items():
            for start in range(0, len(held), sink.max_size):
                sink.resend(held[start : start + sink.max_size])

    def end_of_input(self) -> None:
        # Parents that never came: send their children anyway (their batch looks the parent up
        # in Twenty once more). A child of a held record goes once that record is sent.
        while len(self.held):
            self._resend(self.held.unblocked() or self.held.oldest(len(self.held)))

    # End of run ---------------------------------------------------------------------------
    def _finish(self, raise_failures: bool) -> None:
        if self._finished:
            return
        try:
            super()._finish(raise_failures)
        finally:
            self.ids.close()
            for stream, held, released, orphans in self.held.summary():
                self.logger.info(
                    "Stream '%s': %d record(s) came before their parent and waited for it; "
                    "%d followed it once it came, %d dead-lettered because it never did.",
                    stream,
                    held,
                    released,
                    orphans,
                )
            self.logger.info(
                "Twenty: %d API calls, %d retried, %d throttled (429).",
                self.client.calls,
                self.client.api.retries,
                self.client.api.throttled,
            )
