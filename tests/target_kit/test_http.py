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

from target_kit.http import ApiClient, ApiError, Outcome, RetryPolicy
from target_kit.pacing import RateLimiter
from target_kit.transport import Environment, Transport


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
