"""target-twenty's settings: declared once (`SETTINGS`, the config_jsonschema, where each default
is given), and read once into a frozen `TwentySettings`.

The SDK validates the config against `SETTINGS` and fills in the declared defaults before the
target starts, so `TwentySettings.from_config` reads every setting as it is and repeats no
default. The settings every target shares are `connector_kit.target.COMMON_SETTINGS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from singer_sdk import typing as th

from connector_kit.datetimes import DEFAULT_TIMEZONE_SETTING, default_timezone
from connector_kit.deadletter import dead_letter_setting
from connector_kit.http import ConfigError
from connector_kit.plan import DRY_RUN_SETTING
from connector_kit.target import COMMON_SETTINGS
from connector_kit.typed_settings import CommonSettings
from target_twenty.client import MAX_BATCH
from target_twenty.mapping import KEEP

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
        default=KEEP,
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


@dataclass(frozen=True)
class TwentySettings(CommonSettings):
    """target-twenty's own settings, typed (see `SETTINGS` for what each means)."""

    api_key: str
    base_url: str
    batch_size: int  # `batch_size_rows`, or `batch_size` (its name before)
    max_requests_per_window: int
    rate_limit_window_seconds: float
    mappings: dict[str, Any]
    id_map_path: Path
    id_namespace: str
    on_unique_conflict: str
    adopted_rows: str
    delete_adopted_rows: bool
    on_missing_parent: str
    create_missing_fields: bool
    max_held_records: int
    default_timezone: dt.tzinfo | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], schema: Mapping[str, Any]) -> TwentySettings:
        """From the config as the SDK validated it (declared defaults filled in)."""
        common = CommonSettings.from_config(config, schema)
        return cls(
            **{f.name: getattr(common, f.name) for f in fields(CommonSettings)},
            api_key=str(config["api_key"]),
            base_url=str(config["base_url"]),
            batch_size=_batch_size(config),
            max_requests_per_window=int(config["max_requests_per_window"]),
            rate_limit_window_seconds=float(config["rate_limit_window_seconds"]),
            mappings=dict(config["mappings"] or {}),
            id_map_path=Path(config["id_map_path"]),
            id_namespace=str(config["id_namespace"]),
            on_unique_conflict=str(config["on_unique_conflict"]),
            adopted_rows=str(config["adopted_rows"]),
            delete_adopted_rows=bool(config["delete_adopted_rows"]),
            on_missing_parent=str(config["on_missing_parent"]),
            create_missing_fields=bool(config["create_missing_fields"]),
            max_held_records=int(config["max_held_records"]),
            default_timezone=default_timezone(config.get("default_timezone")),  # no default
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
    return int(config["batch_size_rows"])
