"""The singer-sdk standard tap tests, against the OKKI sandbox.

Discovery needs no API, so the test class is built from placeholder settings; the sync the
tests inspect runs against the session's sandbox (fixture `runner` below).
"""

from __future__ import annotations

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.runners import TapTestRunner

from crm_sandbox.control import RunningSandbox
from tap_okki.tap import TapOkki
from tests.tap_okki.helpers import restore_defaults, tap_config

SUITE = SuiteConfig(max_records_limit=60)
PLACEHOLDER = {
    "client_id": "demo-client-id",
    "client_secret": "demo-client-secret",
    "base_url": "http://127.0.0.1:9",
}

StandardTapTests = get_tap_test_class(TapOkki, config=PLACEHOLDER, suite_config=SUITE)


class TestTapOkkiStandard(StandardTapTests):  # type: ignore[misc, valid-type]
    @pytest.fixture(scope="class")
    @classmethod
    def runner(cls, okki_sandbox: RunningSandbox) -> TapTestRunner:
        restore_defaults(okki_sandbox)
        runner = TapTestRunner(
            TapOkki, config=tap_config(okki_sandbox), suite_config=SUITE, parse_env_config=False
        )
        runner.sync_all()
        return runner
