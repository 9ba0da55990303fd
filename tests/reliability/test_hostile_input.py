"""Input written to make a target work for someone else (issue 18): run directly with crafted
stdin, debug logging and the secret keys, as in test_bad_input.py.

- A SCHEMA whose `$ref` points at a URL or a file stops the run before anything is fetched or
  read; references inside the schema (`#/…`) still validate records.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox
from tests.reliability.pipelines import start_secret_sandbox
from tests.reliability.plugins import (
    COMPANY_SCHEMA,
    TARGETS,
    PluginRun,
    company,
    config,
    held_keys,
    lines_of,
    run_plugin,
    state,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_secret_sandbox(companies=1, seed=4)
    yield running
    running.stop()


@pytest.fixture
def empty(sandbox: RunningSandbox) -> RunningSandbox:
    sandbox.twenty.reset()
    sandbox.jiandaoyun.reset()
    return sandbox


def run(
    sandbox: RunningSandbox, target: str, lines: list[str], tmp_path: Path, **settings: Any
) -> PluginRun:
    outcome = run_plugin(target, config(sandbox, target, tmp_path, **settings), lines, tmp_path)
    assert outcome.leaked_secrets() == []
    return outcome


def schema_with(name_schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The companies SCHEMA with `name` described by `name_schema`."""
    schema = {**COMPANY_SCHEMA["schema"], **extra}
    schema["properties"] = {**schema["properties"], "name": name_schema}
    return {**COMPANY_SCHEMA, "schema": schema}


# Schema references ---------------------------------------------------------------------------
class SchemaServer(http.server.ThreadingHTTPServer):
    """Serves a schema to whoever asks, and counts the asking."""

    fetched = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/name.json"


class ServeSchema(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.fetched += 1  # type: ignore[attr-defined]
        body = b'{"type": ["string", "null"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def schema_server() -> Iterator[SchemaServer]:
    server = SchemaServer(("127.0.0.1", 0), ServeSchema)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("where", ["http", "file"])
@pytest.mark.parametrize("target", TARGETS)
def test_a_schema_referring_to_a_url_or_a_file_stops_the_run_and_nothing_is_fetched(
    empty: RunningSandbox, schema_server: SchemaServer, tmp_path: Path, target: str, where: str
) -> None:
    local = tmp_path / "name.json"
    local.write_text('{"type": ["string", "null"]}')
    reference = schema_server.url if where == "http" else local.as_uri()
    before = schema_server.fetched
    lines = lines_of(schema_with({"$ref": reference}), company(1), state())

    outcome = run(empty, target, lines, tmp_path)

    assert outcome.returncode != 0
    assert f"Stream 'companies': the schema refers to '{reference}'" in outcome.stderr
    assert schema_server.fetched == before
    assert held_keys(empty, target) == set()
    assert outcome.states == []


@pytest.mark.parametrize("target", TARGETS)
def test_references_inside_the_schema_still_validate_records(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    schema = schema_with({"$ref": "#/$defs/name"}, **{"$defs": {"name": {"type": "string"}}})
    lines = lines_of(schema, company(1), company(2, name=17), state())

    outcome = run(empty, target, lines, tmp_path, max_failed_records=1)

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert held_keys(empty, target) == {"c1"}
    assert [(d["key"], d["code"]) for d in outcome.dead_letters] == [("c2", "schema")]
    assert "17 is not of type 'string'" in outcome.dead_letters[0]["reason"]
