"""Production keys in `.env` never reach a local port (issue 18, item 1).

A copy of this repository's meltano.yml in a temporary project, with a `.env` holding
production-like keys (and one more exported in the shell), run with `meltano` as users run it.
What listens on the loopback port is a recorder: it keeps every request whole (headers and
body, where the keys travel) and refuses it. Without an environment, `meltano run` stops
before any request; in `dev`, only the sandboxes' demo credentials are sent.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.meltano_project import MELTANO, ROOT, install_plugins, meltano_missing

PRODUCTION = {
    "TAP_OKKI_CLIENT_ID": "prod-client-id-7Hq",
    "TAP_OKKI_CLIENT_SECRET": "prod-okki-secret-Wd93K",
    "TARGET_TWENTY_API_KEY": "prod-twenty-key-Lx52P",
}
EXPORTED = {"TARGET_JIANDAOYUN_API_KEY": "prod-jdy-key-Ru47M"}  # in the shell, not in .env
DEV = {"tap-okki": "demo-client-secret", "target-twenty": "twenty-demo-key"}
DEV["target-jiandaoyun"] = "jdy-demo-key"
SCHEMA = {
    "type": "SCHEMA",
    "stream": "companies",
    "key_properties": ["company_id"],
    "schema": {"type": "object", "properties": {"company_id": {"type": "string"}}},
}
RECORD = {"type": "RECORD", "stream": "companies", "record": {"company_id": "c1"}}


class Recorder(http.server.ThreadingHTTPServer):
    """Whatever listens on a loopback port: keeps each request whole, answers 401."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Record)
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Record(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(f"{self.requestline}\n{self.headers}\n{body.decode()}")  # type: ignore[attr-defined]
        payload = b'{"error": "unauthorized", "code": 8301}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """meltano.yml copied into a project of its own, with production keys in its .env."""
    if problem := meltano_missing():
        pytest.fail(problem)
    install_plugins()
    shutil.copy(ROOT / "meltano.yml", tmp_path / "meltano.yml")
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in PRODUCTION.items()))
    (tmp_path / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):  # the installed plugins, shared
        (tmp_path / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    return tmp_path


def meltano(project: Path, recorder: Recorder, *args: str, stdin: str = "") -> str:
    """`meltano ARGS…` in `project`, every base URL pointed at the recorder."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_OKKI", "TARGET_"))},
        **EXPORTED,
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_OKKI_BASE_URL": recorder.url,
        "TARGET_TWENTY_BASE_URL": recorder.url,
        "TARGET_JIANDAOYUN_BASE_URL": recorder.url,
    }
    env.pop("MELTANO_ENVIRONMENT", None)
    done = subprocess.run(
        [str(MELTANO), *args],
        cwd=project,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done.stdout + done.stderr


def production_keys_seen(recorder: Recorder) -> list[str]:
    secrets = [*PRODUCTION.values(), *EXPORTED.values()]
    return [s for s in secrets for request in recorder.seen if s in request]


def test_without_an_environment_meltano_run_sends_nothing(
    project: Path, recorder: Recorder
) -> None:
    output = meltano(project, recorder, "run", "tap-okki", "target-twenty")

    assert "A Meltano environment must be specified" in output
    assert recorder.seen == []


def test_in_dev_production_keys_from_dotenv_or_the_shell_never_reach_the_local_port(
    project: Path, recorder: Recorder
) -> None:
    lines = "".join(json.dumps(m) + "\n" for m in (SCHEMA, RECORD))

    meltano(project, recorder, "--environment=dev", "run", "tap-okki", "target-twenty")
    for target in ("target-twenty", "target-jiandaoyun"):
        meltano(project, recorder, "--environment=dev", "invoke", target, stdin=lines)

    # Each plugin called the port with dev's demo credentials, and with nothing else.
    for plugin, demo_secret in DEV.items():
        assert any(demo_secret in request for request in recorder.seen), plugin
    assert production_keys_seen(recorder) == []
