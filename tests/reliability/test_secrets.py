"""Secrets stay masked on the paths where a plugin prints what it did not write itself (issue
18, item 5): the settings validator quoting a wrongly typed secret, and an API whose error
message quotes the request (credentials included) ending in a logged traceback.

Each plugin runs as a process with debug logging; everything it printed or wrote is searched.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sandbox.control import RunningSandbox
from tests.reliability.pipelines import start_secret_sandbox
from tests.reliability.plugins import (
    COMPANY_SCHEMA,
    PLUGINS,
    company,
    config,
    lines_of,
    run_plugin,
    state,
)

SECRET_SETTING = {
    "tap-okki": "client_secret",
    "target-twenty": "api_key",
    "target-jiandaoyun": "api_key",
}
INPUT = {
    "tap-okki": [],
    "target-twenty": lines_of(COMPANY_SCHEMA, company(1), state()),
    "target-jiandaoyun": lines_of(COMPANY_SCHEMA, company(1), state()),
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_secret_sandbox(companies=1, seed=3)
    yield running
    running.stop()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_wrongly_typed_secret_is_named_in_the_error_but_its_value_never_printed(
    sandbox: RunningSandbox, tmp_path: Path, plugin: str
) -> None:
    setting = SECRET_SETTING[plugin]
    settings = config(sandbox, plugin, tmp_path, **{setting: 987654321987})

    run = run_plugin(plugin, settings, INPUT[plugin], tmp_path)

    assert run.returncode != 0
    assert f"is not of type 'string' in config['{setting}']" in run.stderr
    assert "987654321987" not in run.stdout + run.stderr
    assert not (tmp_path / "dead-letters.jsonl").exists()


class EchoingApi(http.server.ThreadingHTTPServer):
    """Answers every request 400 with an error message quoting the whole request, headers
    (the API key) and body (OKKI's client secret) included, in the fields each API's error
    messages come in."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = f"{self.requestline} {dict(self.headers)} {self.rfile.read(length).decode()}"
        body = {
            "code": 4000,
            "error": request,
            "message": request,
            "messages": [request],
            "msg": request,
        }
        payload = json.dumps(body).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echoing_api() -> Iterator[EchoingApi]:
    server = EchoingApi(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_secrets_an_api_error_quotes_are_masked_in_the_logged_traceback(
    sandbox: RunningSandbox, echoing_api: EchoingApi, tmp_path: Path, plugin: str
) -> None:
    settings = config(sandbox, plugin, tmp_path, base_url=echoing_api.url)

    run = run_plugin(plugin, settings, INPUT[plugin], tmp_path)

    assert run.returncode != 0
    # The run stopped on the API's answer, logged with its traceback.
    assert "Traceback (most recent call last)" in run.stderr
    assert "********" in run.stderr
    assert run.leaked_secrets() == []
