"""A target process the test feeds line by line: it decides when input comes, when it ends and
when a signal arrives, and reads each STATE the moment the target writes it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.reliability.plugins import BIN, DEBUG


class LiveTarget:
    def __init__(
        self, plugin: str, settings: dict[str, Any], workdir: Path, debug: bool = False
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        config_file = workdir / f"{plugin}-config.json"
        config_file.write_text(json.dumps(settings, ensure_ascii=False))
        self.stderr_path = workdir / f"{plugin}-stderr.log"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [str(BIN / plugin), "--config", str(config_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(DEBUG if debug else {})},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, *lines: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(line + "\n" for line in lines))
        self.process.stdin.flush()

    def end_input(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def next_state(self, timeout: float = 60.0) -> Any:
        """The next STATE the target writes (TimeoutError if none comes in `timeout` s,
        EOFError if its output ends)."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no STATE in {timeout} s") from None
        if line is None:
            self._lines.put(None)
            raise EOFError("the target's output ended")
        return json.loads(line)

    def remaining_states(self) -> list[Any]:
        """The STATEs written until the output ended (call after the process ended)."""
        states = []
        while (line := self._lines.get(timeout=10)) is not None:
            states.append(json.loads(line))
        self._lines.put(None)
        return states

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout=timeout)

    @property
    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if self.process.poll() is not None and text not in self.stderr:
                raise AssertionError(f"the target ended without logging {text!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not logged in {timeout} s")
            time.sleep(0.01)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stderr.close()
