"""Fixtures of the reliability tests; each module gives its own `sandbox` (`sandbox_fixture`)."""

from __future__ import annotations

import pytest

from crm_sandbox.control import RunningSandbox


@pytest.fixture
def empty(sandbox: RunningSandbox) -> RunningSandbox:
    """The module's sandbox with both destinations emptied."""
    sandbox.twenty.reset()
    sandbox.jiandaoyun.reset()
    return sandbox
