"""What the benchmarks share: running a plugin as a process and measuring it, lifting limits."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from crm_sandbox.control import RunningSandbox

UNLIMITED = 1_000_000_000  # calls per window: far beyond what a plugin can send


@dataclass
class ProcessRun:
    """One plugin process: wall time, CPU time (user + system) and peak resident memory."""

    wall: float
    cpu: float
    peak_rss_mb: float
    returncode: int


def run_process(
    command: list[str],
    stderr_file: Path,
    stdin_lines: Iterable[str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ProcessRun:
    """Run `command` with `stdin_lines` as its input and hand every stdout line to `on_line`.

    The input is written to a file first and the output read from one afterwards (next to
    `stderr_file`), never held in memory: while the plugin runs, nothing else of ours does, since
    on two cores a feeding or parsing process beside it inflates its CPU time by a quarter.
    CPU time is the process's own, from `wait4`. Peak RSS is the kernel's high-water mark of
    the process (`VmHWM` in /proc/PID/status), read every 0.1 s until it exits: `ru_maxrss`
    would report at least the benchmark's own size, which Linux carries over through exec.
    """
    stdin_file = stderr_file.with_suffix(".stdin")
    stdout_file = stderr_file.with_suffix(".stdout")
    if stdin_lines is not None:
        with stdin_file.open("w") as file:
            file.writelines(stdin_lines)
    with (
        stderr_file.open("w") as stderr,
        stdin_file.open() if stdin_lines is not None else open(os.devnull) as stdin,
        stdout_file.open("w") if on_line else open(os.devnull, "w") as stdout,
    ):
        started = time.monotonic()
        process = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr)
        peak = _PeakWatcher(process.pid)
        peak.wait_for_exit()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    stdin_file.unlink(missing_ok=True)
    if on_line is not None:
        with stdout_file.open() as lines:
            for line in lines:
                on_line(line)
        stdout_file.unlink()
    return ProcessRun(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak.kilobytes / 1024,
        returncode=process.returncode,
    )


class _PeakWatcher:
    """Follows a process's `VmHWM` (peak resident set, kB) while it runs."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.kilobytes = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _read(self) -> bool:
        """Note the current peak; False once the process has exited (no memory left)."""
        try:
            text = self.status.read_text()
        except OSError:
            return False
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                self.kilobytes = max(self.kilobytes, int(line.split()[1]))
                return True
        return False  # a zombie: exited, not reaped yet

    def _watch(self) -> None:
        while self._read():
            time.sleep(0.1)

    def wait_for_exit(self) -> None:
        """Wait until the process has exited (without reaping it: its status stays readable)."""
        self._thread.join()


def check(run: ProcessRun, name: str, stderr_file: Path) -> None:
    if run.returncode != 0:
        raise SystemExit(
            f"{name} failed (exit {run.returncode}):\n{stderr_file.read_text()[-3000:]}"
        )


def lift_limits(sandbox: RunningSandbox) -> None:
    """No rate limit, no concurrency limit and no latency in any of the three emulators."""
    sandbox.okki.knobs(latency=0, extra={"rate_per_second": UNLIMITED})
    sandbox.twenty.knobs(
        latency=0, extra={"limit_per_minute": UNLIMITED, "limit_per_second": UNLIMITED}
    )
    sandbox.jiandaoyun.knobs(
        latency=0,
        extra={
            "batch_rate": 0,
            "single_rate": 0,
            "read_rate": 0,
            "company_rate": 0,
            "max_concurrent": 0,
        },
    )


def bench_executable(name: str) -> str:
    """A console script of this virtual environment (tap-okki, target-twenty, …)."""
    import sys

    return str(Path(sys.executable).with_name(name))
