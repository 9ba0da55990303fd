"""The workspace model's shortcuts (computed once, read for every record) stay true."""

from __future__ import annotations

import uuid

from target_twenty.identity import is_source_row
from target_twenty.metadata import TwentyField, TwentyObject


def test_unique_fields_follow_fields_added_later() -> None:
    """`create_missing_fields` adds fields to an object whose unique fields were read."""
    obj = TwentyObject("o1", "company", "companies", {"name": TwentyField("name", "TEXT")})
    assert obj.unique_fields() == ()
    obj.add_fields({"domainName": TwentyField("domainName", "LINKS", unique=True)})
    assert [f.key for f in obj.unique_fields()] == ["domainName"]
    assert obj.unique_fields()[0].unique_subfield == "primaryLinkUrl"


def test_a_source_row_is_a_uuid5_however_it_is_written() -> None:
    five = uuid.uuid5(uuid.NAMESPACE_URL, "okki")
    assert is_source_row(str(five))
    assert is_source_row(str(five).upper()) and is_source_row(five.hex)
    assert not is_source_row(str(uuid.uuid4()))
    assert not is_source_row("not-a-uuid") and not is_source_row("")
