"""Input written to make a target work for someone else (issue 18): run directly with crafted
stdin, debug logging and the secret keys, as in test_bad_input.py.

- A SCHEMA whose `$ref` points at a URL or a file stops the run before anything is fetched or
  read; references inside the schema (`#/…`) still validate records.
- A number beyond what the destination stores (`1e2000000`: nine bytes of JSON, minutes of
  big-integer work) is dead-lettered at once with the reason, and so is a record on which a
  mapping expression would build a huge text.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox
from tests.reliability.plugins import (  # noqa: F401 (empty is a fixture)
    COMPANY_SCHEMA,
    TARGETS,
    PluginRun,
    company,
    config,
    held_keys,
    lines_of,
    run_plugin,
    run_target,
    sandbox_fixture,
    state,
)

sandbox = sandbox_fixture(seed=4)


run = run_target


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


# Bounds ----------------------------------------------------------------------------------------
HUGE_NUMBER = "1e2000000"  # 9 bytes of JSON; as an int, 2,000,001 digits (minutes to build)
# Small enough for decimal arithmetic (which overflows past 1e999999), not for an int.
LARGE_NUMBER = "1e200000"
NUMBERS_SCHEMA = {
    **COMPANY_SCHEMA,
    "schema": {
        **COMPANY_SCHEMA["schema"],
        "properties": {
            **COMPANY_SCHEMA["schema"]["properties"],
            "revenue": {"type": ["number", "null"]},
            "arr": {"type": ["number", "null"]},
        },
    },
}
NUMBER_MAPPINGS = {
    # revenue → a number field; arr → through an expression (Twenty) or into a text (Jiandaoyun)
    "target-twenty": {
        "mappings": {
            "companies": {
                "object": "companies",
                "fields": {
                    "name": "name",
                    "employees": "revenue",
                    "annualRecurringRevenue.amountMicros": {
                        "expression": "int(arr * 1000000) if arr is not None else None"
                    },
                },
            }
        }
    },
    "target-jiandaoyun": {
        "forms": {
            "companies": {
                "app_id": "demo_app",
                "entry_id": "demo_customers",
                "key_field": "company_id",
                "key_widget": "客户编号",
                "fields": {"name": "客户名称", "revenue": "金额", "arr": "备注"},
            }
        }
    },
}


def raw_record(key: str, **numbers: str) -> str:
    """A RECORD line with numbers written as they are (json.dumps would expand them)."""
    fields = "".join(f', "{name}": {text}' for name, text in numbers.items())
    return (
        '{"type": "RECORD", "stream": "companies", "record": '
        f'{{"company_id": "{key}", "name": "Company {key[1:]}", "homepage": null{fields}}}}}'
    )


@pytest.mark.parametrize("target", TARGETS)
def test_a_number_beyond_what_the_destination_stores_is_dead_lettered_at_once(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    lines = lines_of(
        NUMBERS_SCHEMA,
        raw_record("c1", revenue="12", arr="2.5"),
        raw_record("c2", revenue=HUGE_NUMBER),
        raw_record("c3", arr=LARGE_NUMBER),
        state(),
    )
    settings = {**NUMBER_MAPPINGS[target], "max_failed_records": 2}

    # Before the bounds, converting 1e2000000 to an int took minutes, 1e200000 a second.
    outcome = run_plugin(
        target, config(empty, target, tmp_path, **settings), lines, tmp_path, timeout=60
    )

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert held_keys(empty, target) == {"c1"}
    reasons = {d["key"]: d["reason"] for d in outcome.dead_letters}
    assert set(reasons) == {"c2", "c3"}
    if target == "target-twenty":
        assert "employees expects a finite number within ±1.8e308" in reasons["c2"]
        assert "int() of a number of more than 4300 digits" in reasons["c3"]
    else:
        assert "1E+2000000" in reasons["c2"]
        assert "has more than 4300 digits" in reasons["c3"]
    # The dead letter keeps the number as its text, not expanded.
    records = {d["key"]: d["record"] for d in outcome.dead_letters}
    assert records["c2"]["revenue"] == "1E+2000000"
    assert outcome.leaked_secrets() == []


@pytest.mark.parametrize("target", TARGETS)
def test_an_expression_that_would_build_a_huge_text_is_dead_lettered_at_once(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    # 2,000 copies of a 100,000-character name: 200 million characters.
    expression = {"expression": "''.join([name] * 2000)"}
    if target == "target-twenty":
        settings: dict[str, Any] = {
            "mappings": {"companies": {"object": "companies", "fields": {"name": expression}}}
        }
    else:
        settings = {
            "forms": {
                "companies": {
                    **NUMBER_MAPPINGS[target]["forms"]["companies"],
                    "fields": {"remark": {"widget": "备注", **expression}, "name": "客户名称"},
                }
            }
        }
    lines = lines_of(COMPANY_SCHEMA, company(1, name="x" * 100_000), state())

    outcome = run_plugin(
        target,
        config(empty, target, tmp_path, max_failed_records=1, **settings),
        lines,
        tmp_path,
        timeout=60,
    )

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert [d["key"] for d in outcome.dead_letters] == ["c1"]
    assert "join() would build 200,000,000 characters" in outcome.dead_letters[0]["reason"]
    assert held_keys(empty, target) == set()
