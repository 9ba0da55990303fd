"""Absent is not null: the one rule both targets use to decide whether a record touches a field."""

from __future__ import annotations

import pytest

from connector_kit.expressions import Expression
from connector_kit.presence import carried, reads


def test_a_copied_property_is_carried_when_present_even_as_null() -> None:
    assert carried({"name": "Acme"}, "name")
    assert carried({"name": None}, "name")  # an explicit null clears the field
    assert not carried({"id": 1}, "name")  # absent: the field is left as it is


@pytest.mark.parametrize(
    ("expression", "record", "expected"),
    [
        ("int(amount * 100) if amount else None", {"amount": None}, True),
        ("int(amount * 100) if amount else None", {"id": 1}, False),
        ("name + ' ' + city", {"name": "x"}, False),  # one of its names is absent
        ("record.get('tel') or None", {"id": 1}, False),
        ("record.get('tel') or None", {"tel": None}, True),
        ("{'p': record.get('province'), 'c': record.get('city')}", {"city": "杭州"}, True),
        ("amount * record.get('rate', 1)", {"amount": 2}, True),  # .get may fill in a default
        ("'CNY'", {}, True),  # a constant says the same for every record
        ("len(record)", {}, True),  # reads the record whole: always evaluated
    ],
)
def test_a_computed_field_is_carried_when_the_properties_it_reads_are(
    expression: str, record: dict, expected: bool
) -> None:
    assert carried(record, "", Expression(expression)) is expected


def test_reads_lists_what_a_field_may_read_or_none_for_the_whole_record() -> None:
    assert reads("name") == {"name"}
    assert reads("", Expression("a + record['b'] + record.get('c', '')")) == {"a", "b", "c"}
    assert reads("", Expression("len(record)")) is None
