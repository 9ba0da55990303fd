"""Start `crm-sandbox serve` as a process and steer it: for tests, benchmarks and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from crm_sandbox.runtime import CONTROL_TOKEN_HEADER

READY_LINE = "crm-sandbox ready"


class SandboxClient:
    """The control routes (`/_sandbox/...`) of one running emulator."""

    def __init__(
        self, base_url: str, credentials: dict[str, str], control_token: str | None = None
    ) -> None:
        self.base_url = base_url
        self.credentials = credentials
        self.http = requests.Session()
        if control_token:  # required when the sandbox serves beyond loopback
            self.http.headers[CONTROL_TOKEN_HEADER] = control_token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(
            method, f"{self.base_url}/_sandbox/{path}", timeout=30, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def knobs(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "knobs", json=changes) if changes else self._call("GET", "knobs")

    def records(self) -> dict[str, Any]:
        return self._call("GET", "records")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def requests(self, since: float = 0.0) -> list[dict[str, Any]]:
        return self._call("GET", "requests", params={"since": since})["requests"]

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def reset(self) -> None:
        self._call("POST", "reset")

    def post(self, path: str, body: Any = None) -> Any:
        """An emulator-specific control route, e.g. `post("companies/update", {...})`."""
        return self._call("POST", path, json=body if body is not None else {})

    # Gates: calls stopped until a test lets them go (see crm_sandbox.runtime) ----------------
    def gate(self, path: str, **options: Any) -> int:
        """Stop the calls whose path contains `path` (options: method, skip, count, stage,
        drop); return the gate's id."""
        return self._call("POST", "gates", json={"path": path, **options})["gate"]

    def gates(self) -> dict[int, dict[str, Any]]:
        return {g["id"]: g for g in self._call("GET", "gates")["gates"]}

    def open_gate(self, gate: int) -> None:
        self._call("POST", f"gates/{gate}/open")

    def remove_gates(self) -> None:
        self._call("DELETE", "gates")

    def wait_at_gate(self, gate: int, calls: int = 1, timeout: float = 60.0) -> None:
        """Return once `calls` calls wait at the gate (TimeoutError after `timeout` s)."""
        deadline = time.monotonic() + timeout
        while self.gates()[gate]["waiting"] < calls:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {calls} call(s) at gate {gate} in {timeout} s")
            time.sleep(0.01)


class RunningSandbox:
    def __init__(
        self, process: subprocess.Popen, summary: dict[str, dict[str, str]], output: str = ""
    ) -> None:
        self.process = process
        self.summary = summary
        self.output = output  # what it printed until it was ready
        self.okki = self._client("okki")
        self.twenty = self._client("twenty")
        self.jiandaoyun = self._client("jiandaoyun")

    def _client(self, name: str) -> SandboxClient:
        info = dict(self.summary[name])
        return SandboxClient(info.pop("base_url"), info, info.pop("control_token", None))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_sandbox(*args: str, timeout: float = 30.0) -> RunningSandbox:
    """Start `crm-sandbox serve ARGS…` on free ports and wait until it is ready."""
    urls_file = Path(tempfile.mkstemp(prefix="crm-sandbox-", suffix=".json")[1])
    command = [
        sys.executable,
        "-m",
        "crm_sandbox.cli",
        "serve",
        "--urls-file",
        str(urls_file),
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    deadline = time.monotonic() + timeout
    output = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if line.strip() == READY_LINE:
            break
        if time.monotonic() > deadline:
            break
    else:
        pass
    if process.poll() is not None or not output or output[-1].strip() != READY_LINE:
        process.kill()
        raise RuntimeError("crm-sandbox did not start:\n" + "".join(output))
    # Keep draining its output so a chatty sandbox never blocks on a full pipe.
    _drain_in_background(process)
    summary = json.loads(urls_file.read_text())
    urls_file.unlink(missing_ok=True)
    return RunningSandbox(process, summary, "".join(output))


def _drain_in_background(process: subprocess.Popen) -> None:
    import threading

    def drain() -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            pass

    threading.Thread(target=drain, daemon=True).start()


@contextmanager
def running_sandbox(*args: str) -> Iterator[RunningSandbox]:
    sandbox = start_sandbox(*args)
    try:
        yield sandbox
    finally:
        sandbox.stop()
