"""target-jiandaoyun's settings: declared once (`SETTINGS`, the config_jsonschema, where each
default is given), and read once into a frozen `JiandaoyunSettings`.

The SDK validates the config against `SETTINGS` and fills in the declared defaults before the
target starts, so `JiandaoyunSettings.from_config` reads every setting as it is and repeats no
default. The settings every target shares are `connector_kit.target.COMMON_SETTINGS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from singer_sdk import typing as th

from connector_kit.datetimes import DEFAULT_TIMEZONE_SETTING, default_timezone
from connector_kit.deadletter import dead_letter_setting
from connector_kit.http import ConfigError
from connector_kit.plan import DRY_RUN_SETTING
from connector_kit.target import COMMON_SETTINGS
from connector_kit.typed_settings import CommonSettings
from target_jiandaoyun.client import BATCH_ROWS
from target_jiandaoyun.mapping import DEAD_LETTER, DELETE, SKIP_FIELD

SUBFORM = th.ObjectType(
    th.Property(
        "widget",
        th.StringType,
        description="The subform widget: label, alias or widget id (default: the source "
        "field's name).",
    ),
    th.Property(
        "fields",
        th.ObjectType(additional_properties=th.AnyOf(th.StringType, th.ObjectType())),
        description="Field of each source row → widget inside the subform (label, alias or "
        "id), or a computed value as in the form's 'fields'. Default: each row property goes "
        "to the subform widget of the same alias, id or label.",
    ),
    th.Property(
        "key_field",
        th.StringType,
        description="A row field (of 'fields', filling a text or number widget) that "
        "identifies a row. Updates then keep the stored rows whose key the record still has "
        "(their _id and the columns no mapping writes), remove those whose key it no longer "
        "has, and append new ones. Without it an update replaces every row of the subform.",
    ),
)

FIELD = th.ObjectType(
    th.Property("widget", th.StringType, required=True),
    th.Property(
        "expression",
        th.StringType,
        description="A value computed from the record (simpleeval, as in stream maps).",
    ),
    th.Property(
        "match_by",
        th.StringType,
        allowed_values=["username", "email", "name", "dept_no"],
        description="How the field's values name members (username, the default; email; "
        "display name, when unique) or departments (dept_no, the default; name).",
    ),
)

FORM = th.ObjectType(
    th.Property("app_id", th.StringType, required=True, description="The app (应用) id."),
    th.Property("entry_id", th.StringType, required=True, description="The form (表单) id."),
    th.Property(
        "fields",
        th.ObjectType(additional_properties=th.AnyOf(th.StringType, FIELD)),
        description="Source field → widget, named by its label (客户名称), alias or widget id "
        "(_widget_1432728651402), resolved through widget/list when the target starts; or "
        'name → {"widget": …, "expression": …} for a value computed from the record '
        "(simpleeval, as in stream maps; None empties the widget); a member or department "
        'field may add "match_by". Default: every property goes to the widget whose alias, '
        "id or label equals its name; properties without one are logged and not written.",
    ),
    th.Property(
        "subforms",
        th.ObjectType(additional_properties=SUBFORM),
        description="Source field holding an array of objects → a subform widget and how the "
        "objects' fields map to the subform's widgets.",
    ),
    th.Property(
        "key_widget",
        th.StringType,
        description="A text or number widget that holds the source key. When set, records "
        "whose key is already in the form update that row and the others are created "
        "(upsert), so re-runs never duplicate. Without it, records are appended.",
    ),
    th.Property(
        "key_field",
        th.StringType,
        description="The source field written to key_widget. Default: the stream's single "
        "key property.",
    ),
    th.Property(
        "delete_mode",
        th.StringType,
        default=DELETE,
        allowed_values=[DELETE, "mark"],
        description="What a record marked deleted (_sdc_deleted_at) does to the rows holding "
        "its key: delete them, or mark them (mark_widget), keeping the row and what people "
        "typed into it. Needs key_widget.",
    ),
    th.Property(
        "mark_widget",
        th.StringType,
        description="delete_mode mark: a datetime widget (set to the deletion time), or a "
        "text, radiogroup or combo widget (set to mark_value). A later record of the key "
        "clears the mark.",
    ),
    th.Property(
        "mark_value",
        th.StringType,
        description="delete_mode mark: the text a status mark_widget is set to (e.g. 已删除).",
    ),
    th.Property(
        "data_creator",
        th.StringType,
        description="Overrides the top-level data_creator for this form.",
    ),
    th.Property(
        "is_start_workflow",
        th.BooleanType,
        description="Overrides the top-level is_start_workflow for this form.",
    ),
)

SETTINGS = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        description="Jiandaoyun API key (开放平台 → 密钥管理), sent as a Bearer token.",
    ),
    th.Property(
        "base_url",
        th.StringType,
        default="https://api.jiandaoyun.com",
        description="API address; change it for a private deployment. Requests go to "
        "<base_url>/api/v5/….",
    ),
    th.Property(
        "forms",
        th.ObjectType(additional_properties=FORM),
        required=True,
        description="Stream name → the form its records are written to and how its fields "
        "map to the form's widgets. Every stream the tap sends must have an entry.",
    ),
    th.Property(
        "data_creator",
        th.StringType,
        description="Member username (成员编号) recorded as the creator of new rows. Default: "
        "the company creator.",
    ),
    th.Property(
        "is_start_workflow",
        th.BooleanType,
        default=False,
        description="Start the form's workflow for rows created by the target.",
    ),
    DEFAULT_TIMEZONE_SETTING,
    th.Property(
        "process_deletes",
        th.BooleanType,
        default=True,
        description="Propagate deletions: a record whose `_sdc_deleted_at` is set (a tap's mark "
        "for a record deleted at the source; tap-okki sets it on deleted companies) deletes the "
        "rows holding its key in the form's key_widget (or marks them: the form's delete_mode), "
        "instead of being written. Without a "
        "key_widget such a record cannot be found: it is skipped (logged, and counted in the run "
        "report), never appended. Off: such records are written like any other.",
    ),
    *(
        th.Property(
            f"on_unknown_{kind}",
            th.StringType,
            default=SKIP_FIELD,
            allowed_values=[SKIP_FIELD, DEAD_LETTER],
            description=f"A value naming {what}, which Jiandaoyun would save as empty: "
            "skip_field writes the row without that value (a WARNING once per value, the run "
            "report marks the record partial with the field and value); dead_letter sends "
            "the record to the dead-letter file instead.",
        )
        for kind, what in (
            ("member", "no member of the company directory"),
            ("department", "no department of the company directory"),
            ("option", "no option of its radio, checkbox or select widget"),
        )
    ),
    th.Property(
        "check_required_widgets",
        th.BooleanType,
        default=True,
        description="Dead-letter a record that would create a row without a value for a "
        "widget the form marks required, or empty one in an update (the API does not check "
        "required widgets). A required widget no field writes is then a setting error.",
    ),
    th.Property(
        "batch_requests_per_second",
        th.NumberType,
        default=10,
        description="batch_create calls per second (the API allows 10).",
    ),
    th.Property(
        "single_write_requests_per_second",
        th.NumberType,
        default=20,
        description="data/update calls per second, used by upserts, and as many data/delete "
        "calls, used by deletions (the API allows 20 each).",
    ),
    th.Property(
        "read_requests_per_second",
        th.NumberType,
        default=30,
        description="widget/list and data/list calls per second (the API allows 30).",
    ),
    th.Property(
        "company_requests_per_second",
        th.NumberType,
        default=50,
        description="All calls together per second. The API allows 50 per company across "
        "every key: lower it when other integrations of the company run at the same time.",
    ),
    th.Property(
        "request_timeout",
        th.NumberType,
        default=120,
        description="Seconds to wait for one answer before retrying the call.",
    ),
    th.Property(
        "batch_size_rows",
        th.IntegerType(minimum=1, maximum=BATCH_ROWS),
        default=BATCH_ROWS,
        description="Rows per batch_create call, at most 100 (the API's limit).",
    ),
    th.Property(
        "load_method",
        th.StringType(allowed_values=["upsert", "append-only"]),
        description="Unset: each form upserts when it has a key_widget and appends when it has "
        "none. upsert: every form must have a key_widget. append-only: rows are appended even "
        "where a key_widget could find them (a re-sent record adds a row). There is no "
        "overwrite: the target never deletes rows the stream does not send.",
    ),
    DRY_RUN_SETTING,
    *(
        th.Property(
            "max_in_flight",
            th.IntegerType,
            default=8,
            description="Batches written concurrently (each one a batch_create, in upsert "
            "mode also a data/list). The API's rates are respected regardless; at 300 ms per "
            "call, 4 saturate appends and 8 upserts. Upserts send as many data/update calls at "
            "once besides.",
        )
        if prop.name == "max_in_flight"
        else dead_letter_setting("target-jiandaoyun")
        if prop.name == "dead_letter_path"
        else prop
        for prop in COMMON_SETTINGS.wrapped.values()
    ),
)


@dataclass(frozen=True)
class JiandaoyunSettings(CommonSettings):
    """target-jiandaoyun's own settings, typed (see `SETTINGS` for what each means)."""

    api_key: str
    base_url: str
    forms: dict[str, dict[str, Any]]
    data_creator: str | None
    is_start_workflow: bool
    default_timezone: dt.tzinfo | None
    on_unknown_member: str
    on_unknown_department: str
    on_unknown_option: str
    check_required_widgets: bool
    batch_requests_per_second: float
    single_write_requests_per_second: float
    read_requests_per_second: float
    company_requests_per_second: float
    request_timeout: float
    load_method: str | None

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], schema: Mapping[str, Any]
    ) -> JiandaoyunSettings:
        """From the config as the SDK validated it (declared defaults filled in)."""
        common = CommonSettings.from_config(config, schema)
        forms = _form_specs(config.get("forms"))
        load_method = config.get("load_method")  # no default: it depends on each form
        if load_method == "upsert":
            missing = [s for s, spec in forms.items() if not spec.get("key_widget")]
            if missing:
                raise ConfigError(
                    f"Setting 'load_method' is 'upsert' but forms {missing} have no "
                    "'key_widget' to find existing rows by."
                )
        return cls(
            **{f.name: getattr(common, f.name) for f in fields(CommonSettings)},
            api_key=str(config["api_key"]),
            base_url=str(config["base_url"]),
            forms=forms,
            data_creator=config.get("data_creator"),  # no default: the company creator
            is_start_workflow=bool(config["is_start_workflow"]),
            default_timezone=default_timezone(config.get("default_timezone")),
            on_unknown_member=str(config["on_unknown_member"]),
            on_unknown_department=str(config["on_unknown_department"]),
            on_unknown_option=str(config["on_unknown_option"]),
            check_required_widgets=bool(config["check_required_widgets"]),
            batch_requests_per_second=_positive(config, "batch_requests_per_second"),
            single_write_requests_per_second=_positive(config, "single_write_requests_per_second"),
            read_requests_per_second=_positive(config, "read_requests_per_second"),
            company_requests_per_second=_positive(config, "company_requests_per_second"),
            request_timeout=_positive(config, "request_timeout"),
            load_method=load_method,
        )


def _form_specs(forms: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(forms, dict) or not forms:
        raise ConfigError(
            "Setting 'forms' must map each stream to a form: "
            '{"<stream>": {"app_id": "…", "entry_id": "…"}}.'
        )
    for stream, spec in forms.items():
        for name in ("app_id", "entry_id"):
            if not isinstance(spec, dict) or not spec.get(name):
                raise ConfigError(f"Setting 'forms.{stream}.{name}' is missing.")
    return forms


def _positive(config: Any, name: str) -> float:
    value = config[name]  # the SDK reads a fractional number of the config as a Decimal
    if not isinstance(value, int | float | Decimal) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"Setting '{name}' must be a positive number, got {value!r}.")
    return float(value)
