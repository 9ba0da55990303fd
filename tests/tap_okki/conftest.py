"""OKKI sandboxes for the tap tests, time-scaled so 10 requests/s become 1000/s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm_sandbox.control import RunningSandbox, start_sandbox
from tests.tap_okki.helpers import restore_defaults


def _start(companies: int, seed: int) -> RunningSandbox:
    return start_sandbox("--companies", str(companies), "--seed", str(seed), "--time-scale", "100")


@pytest.fixture(scope="session")
def okki_sandbox() -> Iterator[RunningSandbox]:
    """200 companies: most behaviour tests."""
    running = _start(200, 5)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def okki_big_sandbox() -> Iterator[RunningSandbox]:
    """2,000 companies: the full-run and incremental tests."""
    running = _start(2000, 11)
    yield running
    running.stop()


@pytest.fixture
def okki(okki_sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """The 200-company sandbox with fresh data and default knobs, restored afterwards."""
    restore_defaults(okki_sandbox)
    yield okki_sandbox
    restore_defaults(okki_sandbox)
