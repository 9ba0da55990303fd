"""Fixtures shared by every test: a running crm-sandbox process on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm_sandbox.control import RunningSandbox, start_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningSandbox]:
    """One sandbox per test session (per xdist worker), 200 companies, no faults.

    Tests that change knobs or data restore them or call `reset()`; tests that need a
    differently seeded sandbox start their own with `start_sandbox(...)`.
    """
    running = start_sandbox("--companies", "200", "--seed", "7")
    yield running
    running.stop()
