"""The masking filter with the SDK's own formatters: plain console lines and structured JSON."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from singer_sdk.logging import ConsoleFormatter, StructuredFormatter

from connector_kit.secrets import install_redaction, secret_values

SECRET = "key-Xq81LmZ"


@pytest.fixture(params=[ConsoleFormatter, StructuredFormatter])
def output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(request.param())
    root = logging.getLogger()
    root.addHandler(handler)
    install_redaction([SECRET])
    yield stream
    root.removeHandler(handler)


def test_logger_exception_masks_the_secret_in_the_traceback_and_its_causes(
    output: io.StringIO,
) -> None:
    logger = logging.getLogger("test-secrets")
    try:
        try:
            raise KeyError(f"no such key {SECRET}")
        except KeyError as inner:
            raise RuntimeError(f"request with Bearer {SECRET} failed") from inner
    except RuntimeError:
        logger.exception("call failed for %s", SECRET)

    text = output.getvalue()
    assert "call failed for ********" in text
    assert "Traceback" in text and "RuntimeError" in text and "KeyError" in text
    assert SECRET not in text


def test_a_secret_of_the_wrong_type_or_inside_an_object_is_still_a_secret() -> None:
    schema = {
        "properties": {
            "api_key": {"type": "string", "secret": True},
            "oauth": {"type": "object", "secret": True},
            "base_url": {"type": "string"},
        }
    }
    config = {"api_key": 987654321987, "oauth": {"token": "tok-1"}, "base_url": "https://x"}

    found = secret_values(config, schema)

    assert "987654321987" in found and "tok-1" in found
    assert "https://x" not in found
