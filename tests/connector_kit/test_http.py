"""The HTTP transport both targets and the tap share: what it takes from the environment, and
how it behaves against real servers on 127.0.0.1 (a forward proxy, a closed port, a slow
answer, a gzip answer)."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

from connector_kit.http import (
    ApiClient,
    ApiError,
    ConfigError,
    Outcome,
    RetryPolicy,
    check_base_url,
)
from connector_kit.pacing import RateLimiter
from connector_kit.transport import Environment, Transport


def client(base_url: str, **kwargs: Any) -> ApiClient:
    return ApiClient(
        base_url,
        {"Authorization": "Bearer k"},
        RateLimiter([(1000, 1.0)]),
        lambda r: Outcome("ok") if r.status_code == 200 else Outcome("fatal", r.status_code),
        [],
        **kwargs,
    )


@pytest.fixture(autouse=True)
def no_proxy_from_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_proxy_and_ca_bundle_settings_of_the_environment_are_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    environment = client("https://api.twenty.com").transport.environment
    assert environment == Environment("http://proxy.example:3128", "/etc/company-ca.pem")


def test_no_proxy_keeps_the_api_host_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.twenty.com")
    assert client("https://api.twenty.com").transport.environment.proxy is None


def test_without_a_bundle_setting_certifi_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert Environment.for_url("https://api.twenty.com").ca_bundle == requests.certs.where()


# Against real servers ----------------------------------------------------------------------------
class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with what it saw; as a proxy, the request line is a full URL."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, Any]]] = []
    delay: ClassVar[float] = 0.0
    compress: ClassVar[bool] = False

    def answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append({"line": self.requestline, "headers": dict(self.headers), "body": body})
        time.sleep(self.delay)
        content = json.dumps({"path": self.path, "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.compress:
            content = gzip.compress(content)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.seen.clear()
    Recorder.delay, Recorder.compress = 0.0, False
    running = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=running.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{running.server_address[1]}"
    running.shutdown()


def test_a_call_carries_headers_query_and_json_body_and_decodes_the_answer(server: str) -> None:
    answer = client(server).send("POST", "/rest/x", params={"a": "1 2", "b": None}, json_body=[1])
    assert answer == {"path": "/rest/x?a=1+2", "body": "[1]"}
    headers = Recorder.seen[0]["headers"]
    assert headers["Authorization"] == "Bearer k"
    assert headers["Content-Type"] == "application/json"


def test_gzip_answers_are_decoded(server: str) -> None:
    Recorder.compress = True
    assert client(server).send("GET", "/y") == {"path": "/y", "body": ""}


def test_a_proxy_from_the_environment_carries_the_call(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server)  # the recorder plays the proxy
    assert client("http://api.example.invalid:8080").send("GET", "/rest/people") is not None
    assert Recorder.seen[0]["line"] == "GET http://api.example.invalid:8080/rest/people HTTP/1.1"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_retried_then_reported_as_a_network_error() -> None:
    retry = RetryPolicy(max_attempts=3, base_delay=0.01)
    api = client(f"http://127.0.0.1:{closed_port()}", retry=retry)
    with pytest.raises(ApiError, match="still failing after 3 attempts") as failed:
        api.send("GET", "/x")
    assert failed.value.code == "ConnectionError"
    assert api.calls == 3


def test_a_slow_answer_is_a_read_timeout(server: str) -> None:
    Recorder.delay = 1.0
    transport = Transport(server, {}, timeout=(1.0, 0.2))
    with pytest.raises(requests.exceptions.ReadTimeout):
        transport.request("GET", f"{server}/slow")


# The base URL check ------------------------------------------------------------------------------
@pytest.mark.parametrize("allow_insecure_http", [False, True])
def test_a_backslash_cannot_make_the_check_see_loopback_while_urllib3_sends_elsewhere(
    allow_insecure_http: bool,
) -> None:
    # urllib3, which sends the request, reads host 192.0.2.2 here; urlsplit reads 127.0.0.1.
    with pytest.raises(ConfigError, match="'base_url' must not contain a backslash"):
        check_base_url("http://192.0.2.2:18555\\@127.0.0.1:9", "base_url", allow_insecure_http)


@pytest.mark.parametrize(
    "url", ["http://admin:hunter2@127.0.0.1:9", "https://hunter2@api.twenty.com"]
)
def test_a_base_url_holding_a_user_or_password_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError, match="user name or password") as refused:
        check_base_url(url, "base_url", True)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9?@x.com", "http://127.0.0.1:9#@x.com", "http://127.0.0.1:9 ", "http:x.com"],
)
def test_a_base_url_with_a_query_fragment_space_or_no_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="'base_url'"):
        check_base_url(url, "base_url", True)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8701/", "http://127.0.0.1:8701"),
        ("http://localhost:8701", "http://localhost:8701"),
        ("http://[::1]:8701", "http://[::1]:8701"),
        ("https://api.twenty.com", "https://api.twenty.com"),
    ],
)
def test_https_and_plain_http_to_loopback_are_accepted(url: str, allowed: str) -> None:
    assert check_base_url(url, "base_url", False) == allowed


def test_plain_http_to_another_host_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match=r"non-loopback host \(192\.0\.2\.2\)"):
        check_base_url("http://192.0.2.2:18555", "base_url", False)
    assert check_base_url("http://192.0.2.2:18555", "base_url", True) == "http://192.0.2.2:18555"
