"""The singer-sdk standard tap tests, against the OKKI sandbox serving OKKI's shape variety.

Discovery needs no API, so the test class is built from placeholder settings; the sync the
tests inspect runs against the session's sandbox (fixture `runner` below), with its
`shape_variety` knob on: open fields in every shape, some documented fields unconvertible.

One curation, as target-postgres does with its suite: the SDK's attribute tests (is_integer,
not_null, …) run on every property that declares a type, not on the open fields (`{}`, any
JSON by design). Their evaluators assume a declared type: on `{}`, the date-time one raises
while the test class is built and the not-null one would require a value in every record.
"""

from __future__ import annotations

from typing import Any

import pytest
from singer_sdk.streams import Stream
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.runners import TapTestRunner
from singer_sdk.testing.suites import SingerTestSuite, tap_stream_attribute_tests
from singer_sdk.testing.templates import AttributeTestTemplate

from crm_sandbox.control import RunningSandbox
from tap_okki.tap import TapOkki
from tests.tap_okki.helpers import restore_defaults, tap_config

SUITE = SuiteConfig(max_records_limit=60)
PLACEHOLDER = {
    "client_id": "demo-client-id",
    "client_secret": "demo-client-secret",
    "base_url": "http://127.0.0.1:9",
}


def on_typed_properties(test: type[AttributeTestTemplate]) -> type[AttributeTestTemplate]:
    """The SDK's attribute test, for properties that declare a type."""

    class OnTypedProperties(test):  # type: ignore[valid-type, misc]
        @classmethod
        def evaluate(cls, stream: Stream, property_name: str, property_schema: dict) -> bool:
            if "type" not in property_schema:
                return False
            return bool(
                super().evaluate(
                    stream=stream, property_name=property_name, property_schema=property_schema
                )
            )

    OnTypedProperties.__name__ = OnTypedProperties.__qualname__ = test.__name__
    return OnTypedProperties


ATTRIBUTE_TESTS = SingerTestSuite(
    kind="tap_stream_attribute",
    tests=[on_typed_properties(test) for test in tap_stream_attribute_tests.tests],
)
StandardTapTests = get_tap_test_class(
    TapOkki,
    config=PLACEHOLDER,
    suite_config=SUITE,
    include_stream_attribute_tests=False,
    custom_suites=[ATTRIBUTE_TESTS],
)


class TestTapOkkiStandard(StandardTapTests):  # type: ignore[misc, valid-type]
    @pytest.fixture(scope="class")
    @classmethod
    def runner(cls, okki_sandbox: RunningSandbox) -> TapTestRunner:
        restore_defaults(okki_sandbox)
        okki_sandbox.okki.knobs(extra={"shape_variety": 1.0})
        runner = TapTestRunner(
            TapOkki, config=tap_config(okki_sandbox), suite_config=SUITE, parse_env_config=False
        )
        try:
            runner.sync_all()
        finally:
            restore_defaults(okki_sandbox)
        return runner


def test_the_curated_suite_runs_every_sdk_attribute_test_on_typed_properties() -> None:
    """Nothing is skipped but the open fields: each SDK attribute test still applies."""
    tap = TapOkki(config=PLACEHOLDER)
    applied: dict[str, Any] = {}
    for test in ATTRIBUTE_TESTS.tests:
        applied[test.name] = [
            f"{stream.name}.{name}"
            for stream in tap.streams.values()
            for name, schema in stream.schema["properties"].items()
            if test.evaluate(stream=stream, property_name=name, property_schema=schema)
        ]
    assert "companies.update_time" in applied["is_datetime"]
    assert "opportunities.amount" in applied["is_numeric"]
    assert "contacts.customer_id" in applied["not_null"]
    assert "companies.star" in applied["is_integer"]
    assert not any(name.split(".")[1] == "tag" for names in applied.values() for name in names)
