"""Transport security of all three plugins (issue 8).

- A base URL is read as urllib3, which sends the requests, reads it: one that hides its real
  host behind a backslash is refused before any request.
- A plain `http://` base URL to a host that is not loopback is refused before any request,
  naming the setting, unless `allow_insecure_http` is set; with it, the run works. The sandbox
  is served on this machine's own non-loopback address for that.
- TLS certificates are verified: an `https://` base URL to a local server whose certificate is
  self-signed (made with the `openssl` command; the `cryptography` package is not installed)
  stops the run at once with a certificate error, without retrying it as a network glitch.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox
from tests.reliability.pipelines import accept_test_credentials, start_secret_sandbox
from tests.reliability.plugins import (
    COMPANY_SCHEMA,
    PLUGINS,
    company,
    config,
    held_keys,
    lines_of,
    run_plugin,
    state,
)

INPUT = {
    "tap-okki": [],
    "target-twenty": lines_of(COMPANY_SCHEMA, company(1), state()),
    "target-jiandaoyun": lines_of(COMPANY_SCHEMA, company(1), state()),
}
API = {"tap-okki": "okki", "target-twenty": "twenty", "target-jiandaoyun": "jiandaoyun"}


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # TEST-NET-1: routing only
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture(scope="module")
def remote_sandbox() -> Iterator[RunningSandbox]:
    """The emulators on a non-loopback address of this machine."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve the sandbox on")
    running = start_secret_sandbox(companies=3, seed=2, host=address)
    yield running
    running.stop()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_plain_http_to_a_non_loopback_host_is_refused_before_any_request_unless_allowed(
    remote_sandbox: RunningSandbox, tmp_path: Path, plugin: str
) -> None:
    api = getattr(remote_sandbox, API[plugin])
    assert api.base_url.startswith("http://") and "127.0.0.1" not in api.base_url
    api.reset()
    accept_test_credentials(remote_sandbox)
    settings = config(remote_sandbox, plugin, tmp_path, base_url=api.base_url)

    refused = run_plugin(plugin, settings, INPUT[plugin], tmp_path)

    assert refused.returncode != 0
    assert "'base_url'" in refused.stderr and "allow_insecure_http" in refused.stderr
    assert api.requests() == []
    assert refused.leaked_secrets() == []

    allowed = run_plugin(plugin, {**settings, "allow_insecure_http": True}, INPUT[plugin], tmp_path)

    assert allowed.returncode == 0, allowed.stderr[-3000:]
    if plugin == "tap-okki":
        assert any(m["type"] == "RECORD" for m in allowed.messages)
    else:
        assert held_keys(remote_sandbox, plugin) == {"c1"}
    assert allowed.leaked_secrets() == []


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_base_url_hiding_its_real_host_behind_a_backslash_is_refused_before_any_request(
    remote_sandbox: RunningSandbox, tmp_path: Path, plugin: str
) -> None:
    api = getattr(remote_sandbox, API[plugin])
    api.reset()
    accept_test_credentials(remote_sandbox)
    # `urlsplit` reads loopback 127.0.0.1:9 here; urllib3, which sends, reads the sandbox's
    # non-loopback address: a check by the former let the secrets go there in clear text.
    disguised = f"{api.base_url}\\@127.0.0.1:9"
    settings = config(remote_sandbox, plugin, tmp_path, base_url=disguised)

    refused = run_plugin(plugin, settings, INPUT[plugin], tmp_path)

    assert refused.returncode != 0
    assert "Setting 'base_url' must not contain a backslash" in refused.stderr
    assert api.requests() == []
    assert refused.leaked_secrets() == []


# TLS ---------------------------------------------------------------------------------------------
class CountingServer(http.server.ThreadingHTTPServer):
    """Counts connection attempts (each one a TLS handshake)."""

    attempts = 0

    def get_request(self) -> tuple[socket.socket, object]:
        self.attempts += 1
        return super().get_request()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def self_signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountingServer]:
    """https://127.0.0.1:PORT, with a certificate for 127.0.0.1 that no authority signed."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    made = subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr[-500:]}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = CountingServer(("127.0.0.1", 0), AnswerEverything)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


class AnswerEverything(http.server.BaseHTTPRequestHandler):
    """Never reached when the client verifies certificates."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_secret_sandbox(companies=1, seed=1)
    yield running
    running.stop()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_self_signed_certificate_stops_the_run_at_once_with_a_certificate_error(
    sandbox: RunningSandbox, self_signed_server: CountingServer, tmp_path: Path, plugin: str
) -> None:
    settings = config(sandbox, plugin, tmp_path, base_url=self_signed_server.url)
    before = self_signed_server.attempts

    outcome = run_plugin(plugin, settings, INPUT[plugin], tmp_path)

    assert outcome.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.stderr
    assert self_signed_server.attempts - before == 1, "a certificate error was retried"
    assert outcome.leaked_secrets() == []
