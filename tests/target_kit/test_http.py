"""The HTTP client both targets share: what it takes from the environment."""

from __future__ import annotations

import pytest

from target_kit.http import ApiClient, Outcome
from target_kit.pacing import RateLimiter


def client(base_url: str) -> ApiClient:
    return ApiClient(base_url, {}, RateLimiter([(100, 1.0)]), lambda r: Outcome("ok"), [])


def test_proxy_and_ca_bundle_settings_of_the_environment_are_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = client("https://api.twenty.com").session
    assert session.proxies.get("https") == "http://proxy.example:3128"
    assert session.verify == "/etc/company-ca.pem"


def test_no_proxy_keeps_the_api_host_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.twenty.com")
    assert "https" not in client("https://api.twenty.com").session.proxies
