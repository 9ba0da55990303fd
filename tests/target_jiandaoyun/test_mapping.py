"""Resolving the `forms` setting against a form's widgets, and turning records into rows."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from target_jiandaoyun.directory import Directory, Unknown
from target_jiandaoyun.mapping import MappingError, Policy, StreamMapping, resolve
from target_jiandaoyun.metadata import Form
from target_jiandaoyun.rows import row_of
from target_jiandaoyun.values import ValueRejected

WIDGETS = {
    "widgets": [
        {"name": "_widget_1000000000001", "label": "客户名称", "type": "text"},
        {
            "name": "customer_id",
            "widgetName": "_widget_1000000000002",
            "label": "客户编号",
            "type": "text",
        },
        {
            "name": "amount",
            "widgetName": "_widget_1000000000003",
            "label": "金额",
            "type": "number",
        },
        {"name": "_widget_1000000000004", "label": "备注", "type": "textarea"},
        {"name": "_widget_1000000000005", "label": "备注", "type": "text"},
        {"name": "_widget_1000000000006", "label": "流水号", "type": "sn"},
        {
            "name": "_widget_1000000000007",
            "label": "联系人",
            "type": "subform",
            "items": [
                {"name": "_widget_1000000000008", "label": "姓名", "type": "text"},
                {"name": "_widget_1000000000009", "label": "次数", "type": "number"},
            ],
        },
    ],
    "sysWidgets": [{"name": "creator"}, {"name": "createTime"}],
}
FORM = Form.parse("app", "customers", WIDGETS)
SCHEMA = {
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "amount": {"type": "number"},
        "contacts": {
            "type": "array",
            "items": {"type": "object", "properties": {"姓名": {}, "calls": {}}},
        },
        "_sdc_extracted_at": {"type": "string"},
        "extra": {"type": "string"},
    }
}


def test_fields_are_resolved_by_label_alias_or_widget_id() -> None:
    spec = {
        "app_id": "app",
        "entry_id": "customers",
        "fields": {"name": "客户名称", "id": "customer_id", "amount": "_widget_1000000000003"},
    }
    mapping = resolve("customers", spec, FORM, SCHEMA)
    assert {f.source: f.widget.name for f in mapping.fields} == {
        "name": "_widget_1000000000001",
        "id": "customer_id",
        "amount": "amount",
    }


def test_a_label_not_on_the_form_names_stream_field_and_form() -> None:
    spec = {"app_id": "app", "entry_id": "customers", "fields": {"name": "客户全称"}}
    with pytest.raises(MappingError) as error:
        resolve("customers", spec, FORM)
    message = str(error.value)
    assert "Stream 'customers'" in message and "field 'name'" in message
    assert "客户全称" in message and "app/customers" in message


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "流水号"}, "cannot be written"),
        ({"name": "备注"}, "2 widgets"),
        ({"name": "creator"}, "system field"),
        ({"_sdc_extracted_at": "客户名称"}, "Singer metadata"),
        ({"missing": "客户名称"}, "not a property"),
        ({"name": "客户名称", "id": "客户名称"}, "already fills"),
    ],
)
def test_settings_that_cannot_work_are_refused(fields: dict, problem: str) -> None:
    spec = {"app_id": "app", "entry_id": "customers", "fields": fields}
    with pytest.raises(MappingError, match=problem):
        resolve("customers", spec, FORM, SCHEMA)


def test_without_fields_properties_match_widgets_and_metadata_is_skipped() -> None:
    mapping = resolve("customers", {"app_id": "app", "entry_id": "customers"}, FORM, SCHEMA)
    assert [f.source for f in mapping.fields] == ["amount"]
    assert "_sdc_extracted_at" not in mapping.unmapped
    assert set(mapping.unmapped) >= {"id", "name", "extra"}


def test_subform_rows_map_field_by_field() -> None:
    spec = {
        "app_id": "app",
        "entry_id": "customers",
        "fields": {"id": "customer_id"},
        "subforms": {"contacts": {"widget": "联系人", "fields": {"calls": "次数"}}},
    }
    mapping = resolve("customers", spec, FORM, SCHEMA)
    row = row_of(mapping, {"id": "C1", "contacts": [{"姓名": "x", "calls": Decimal(3)}, {}]})
    assert row == {
        "customer_id": {"value": "C1"},
        "_widget_1000000000007": {"value": [{"_widget_1000000000009": {"value": 3}}, {}]},
    }


def test_a_subform_mapped_in_fields_matches_its_rows_by_label() -> None:
    spec = {"app_id": "app", "entry_id": "customers", "fields": {"contacts": "联系人"}}
    mapping = resolve("customers", spec, FORM, SCHEMA)
    row = row_of(mapping, {"contacts": [{"姓名": "x", "calls": 1}]})
    assert row == {"_widget_1000000000007": {"value": [{"_widget_1000000000008": {"value": "x"}}]}}


def test_a_bad_value_names_field_widget_and_subform_row() -> None:
    spec = {"app_id": "app", "entry_id": "customers", "fields": {"contacts": "联系人"}}
    schema = {
        "properties": {
            "contacts": {"items": {"properties": {"次数": {}}}},
        }
    }
    mapping = resolve("customers", spec, FORM, schema)
    with pytest.raises(ValueRejected, match=r"'contacts'.*row 2.*'次数'.*not a number"):
        row_of(mapping, {"contacts": [{"次数": 1}, {"次数": "many"}]})


def test_key_widget_defaults_to_the_stream_key_and_is_written() -> None:
    spec = {
        "app_id": "app",
        "entry_id": "customers",
        "fields": {"name": "客户名称"},
        "key_widget": "客户编号",
    }
    mapping = resolve("customers", spec, FORM, SCHEMA, key_properties=["id"])
    assert mapping.key is not None and mapping.key.source == "id"
    assert row_of(mapping, {"id": "C9"}) == {"customer_id": {"value": "C9"}}
    assert mapping.key_value({"id": "C9"}) == "C9"
    with pytest.raises(ValueRejected, match="empty"):
        mapping.key_value({"id": ""})


def test_key_widget_must_be_text_or_number_and_the_key_unambiguous() -> None:
    spec = {"app_id": "app", "entry_id": "customers", "key_widget": "联系人"}
    with pytest.raises(MappingError, match="text or number"):
        resolve("customers", spec, FORM, SCHEMA, key_properties=["id"])
    spec = {"app_id": "app", "entry_id": "customers", "key_widget": "客户编号"}
    with pytest.raises(MappingError, match="key_field"):
        resolve("customers", spec, FORM, SCHEMA, key_properties=["id", "name"])


def test_updates_clear_fields_the_record_sets_to_null() -> None:
    spec = {
        "app_id": "app",
        "entry_id": "customers",
        "fields": {"amount": "金额", "id": "客户编号"},
    }
    mapping = resolve("customers", spec, FORM, SCHEMA)
    assert row_of(mapping, {"id": "C1", "amount": None}) == {"customer_id": {"value": "C1"}}
    assert row_of(mapping, {"id": "C1", "amount": None}, clear=True) == {
        "customer_id": {"value": "C1"},
        "amount": {"value": None},
    }
    assert row_of(mapping, {"id": "C1"}, clear=True) == {"customer_id": {"value": "C1"}}


def test_a_computed_field_writes_its_expression_and_none_leaves_the_field_empty() -> None:
    spec = {
        "app_id": "app",
        "entry_id": "customers",
        "fields": {
            "id": "客户编号",
            "cents": {"widget": "金额", "expression": "int(amount * 100) if amount else None"},
        },
    }
    mapping = resolve("customers", spec, FORM, SCHEMA)
    assert row_of(mapping, {"id": "C1", "amount": Decimal("1.25")}) == {
        "customer_id": {"value": "C1"},
        "amount": {"value": 125},
    }
    assert row_of(mapping, {"id": "C1", "amount": None}) == {"customer_id": {"value": "C1"}}
    assert row_of(mapping, {"id": "C1", "amount": 0}, clear=True)["amount"] == {"value": None}


def test_a_computed_field_sees_dates_as_iso_text_as_in_target_twenty() -> None:
    fields = {"label": {"widget": "客户名称", "expression": "'since ' + first + ' / ' + at"}}
    mapping = resolve("customers", {"app_id": "a", "entry_id": "c", "fields": fields}, FORM)
    record = {
        "first": dt.date(2026, 3, 1),
        "at": dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.timezone.utc),
    }

    assert row_of(mapping, record) == {
        "_widget_1000000000001": {"value": "since 2026-03-01 / 2026-02-01T09:30:00+00:00"}
    }


def test_a_computed_field_that_fails_rejects_the_record_and_a_bad_one_the_setting() -> None:
    fields = {"cents": {"widget": "金额", "expression": "amount * 100"}}
    mapping = resolve("customers", {"app_id": "a", "entry_id": "c", "fields": fields}, FORM)
    with pytest.raises(ValueRejected, match=r"field 'cents'.*amount \* 100"):
        row_of(mapping, {"amount": None})
    fields = {"cents": {"widget": "金额", "expression": "amount *"}}
    with pytest.raises(MappingError, match="Stream 'customers', field 'cents': cannot parse"):
        resolve("customers", {"app_id": "a", "entry_id": "c", "fields": fields}, FORM)


def test_the_key_may_be_computed() -> None:
    spec = {
        "app_id": "app",
        "entry_id": "customers",
        "fields": {
            "code": {"widget": "客户编号", "expression": "'OKKI-' + str(id)"},
            "name": "客户名称",
        },
        "key_widget": "客户编号",
        "key_field": "code",
    }
    mapping = resolve("customers", spec, FORM, SCHEMA, key_properties=["id"])
    assert mapping.key_value({"id": 42}) == "OKKI-42"
    assert row_of(mapping, {"id": 42}) == {"customer_id": {"value": "OKKI-42"}}


# Members, departments, subform keys, deletion marks -------------------------------------------
PEOPLE = Form.parse(
    "app",
    "people",
    {
        "widgets": [
            {
                "name": "code",
                "widgetName": "_widget_1000000000021",
                "label": "编号",
                "type": "text",
            },
            {
                "name": "owner",
                "widgetName": "_widget_1000000000022",
                "label": "负责人",
                "type": "user",
            },
            {
                "name": "dept",
                "widgetName": "_widget_1000000000023",
                "label": "部门",
                "type": "dept",
            },
            {"name": "_widget_1000000000024", "label": "名称", "type": "text"},
        ]
    },
)
DIRECTORY = Directory.parse(
    [{"dept_no": 2, "name": "销售部"}, {"dept_no": 3, "name": "销售部"}],
    [
        {"username": "zs", "name": "张三", "email": "ZS@example.com"},
        {"username": "zw1", "name": "张伟"},
        {"username": "zw2", "name": "张伟"},
    ],
)


def people(fields: dict, directory: Directory | None = DIRECTORY, **spec) -> StreamMapping:
    full = {"app_id": "app", "entry_id": "people", "fields": fields, **spec}
    return resolve("people", full, PEOPLE, directory=directory)


def test_the_directory_names_members_by_username_email_or_a_display_name_nobody_shares() -> None:
    assert DIRECTORY.username("zs") == "zs"
    assert DIRECTORY.username("zs@EXAMPLE.com", "email") == "zs"
    assert DIRECTORY.username("张三", "name") == "zs"
    with pytest.raises(Unknown, match="several members have the name '张伟'"):
        DIRECTORY.username("张伟", "name")
    assert DIRECTORY.dept_no(1) == 1  # the root department, never in its own list
    with pytest.raises(Unknown, match="several departments are named '销售部'"):
        DIRECTORY.dept_no("销售部", "name")
    with pytest.raises(Unknown, match="no department of the company directory has the dept_no 9"):
        DIRECTORY.dept_no(9)


def test_values_the_api_would_blank_are_left_out_and_listed_with_skip_field() -> None:
    mapping = people({"id": "编号", "owner": "负责人", "dept": "部门"})
    skipped: list = []
    row = row_of(mapping, {"id": "P1", "owner": "nobody", "dept": 2}, skipped=skipped)
    assert row == {"code": {"value": "P1"}, "dept": {"value": 2}}
    assert [(s.field, s.value, s.setting) for s in skipped] == [
        ("owner", "nobody", "on_unknown_member")
    ]
    strict = resolve(
        "people",
        {"app_id": "app", "entry_id": "people", "fields": {"owner": "负责人"}},
        PEOPLE,
        policy=Policy(member="dead_letter"),
        directory=DIRECTORY,
    )
    with pytest.raises(ValueRejected, match="on_unknown_member: dead_letter") as refused:
        row_of(strict, {"owner": "nobody"})
    assert refused.value.code == "unknown-member"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": {"widget": "名称", "match_by": "email"}}, "is for member and department"),
        ({"owner": {"widget": "负责人", "match_by": "phone"}}, "'match_by' is one of"),
        ({"owner": {"widget": "负责人", "exprssion": "x"}}, "unknown keys ['exprssion']"),
    ],
)
def test_match_by_settings_that_cannot_work_are_refused(fields: dict, problem: str) -> None:
    with pytest.raises(MappingError, match=re.escape(problem)):
        people(fields)


def test_matching_by_email_needs_a_directory_that_lists_emails() -> None:
    no_emails = Directory.parse([], [{"username": "zs", "name": "张三"}])
    with pytest.raises(MappingError, match="lists no member's email"):
        people({"owner": {"widget": "负责人", "match_by": "email"}}, directory=no_emails)


def test_a_subform_key_must_be_one_of_its_mapped_text_or_number_fields() -> None:
    spec = {
        "app_id": "app",
        "entry_id": "customers",
        "fields": {"id": "客户编号", "name": "客户名称"},
        "subforms": {
            "contacts": {"widget": "联系人", "fields": {"calls": "次数"}, "key_field": "x"}
        },
    }
    with pytest.raises(MappingError, match="key_field 'x' is not one of the row fields"):
        resolve("customers", spec, FORM, SCHEMA)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"delete_mode": "soft"}, "delete_mode is 'delete' or 'mark'"),
        ({"delete_mode": "mark", "mark_widget": "名称", "mark_value": "x"}, "needs a key_widget"),
        ({"mark_widget": "名称"}, "are for delete_mode 'mark'"),
    ],
)
def test_delete_mode_settings_that_cannot_work_are_refused(spec: dict, problem: str) -> None:
    with pytest.raises(MappingError, match=re.escape(problem)):
        people({"id": "编号"}, **spec)
