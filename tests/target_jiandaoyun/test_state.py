"""STATE follows acknowledged batches: soon, in order, never ahead of the rows (invariant 8)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import (
    config,
    new_form,
    record,
    rows_of,
    schema,
    singer_lines,
    start_target,
    state,
)


def tap(records: list[dict], every: int) -> str:
    messages = [schema(c.STREAM, c.SCHEMA)]
    for n, rec in enumerate(records, start=1):
        messages.append(record(c.STREAM, rec))
        if n % every == 0:
            messages.append(state({"sent": n}))
    return singer_lines(messages)


def timed_states(process: subprocess.Popen, text: str) -> tuple[list[tuple[float, dict]], float]:
    """The STATE lines with the moment each arrived, and the moment the process ended."""
    assert process.stdin is not None and process.stdout is not None
    started = time.monotonic()

    def feed() -> None:
        process.stdin.write(text)
        process.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    lines = [(time.monotonic() - started, json.loads(line)) for line in process.stdout]
    process.wait(timeout=60)
    return lines, time.monotonic() - started


def test_state_is_written_after_each_acknowledged_batch_in_order_not_only_at_the_end(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(
        jdy, {c.STREAM: c.form_spec(form)}, tmp_path, default_timezone=c.TIMEZONE, max_in_flight=2
    )
    process = start_target(settings, tmp_path, stdin=subprocess.PIPE)
    jdy.knobs(latency=0.1)  # 20 batches, 2 at a time: about a second of writing
    try:
        states, ended = timed_states(process, tap(c.customers(2000, seed=21), every=100))
    finally:
        jdy.knobs(latency=0.0)

    assert process.returncode == 0
    # In order, to the last; STATEs acknowledged at the same moment (two batches finishing
    # together) are written once, the latest (issue 19).
    sent = [{"sent": n} for n in range(100, 2001, 100)]
    values = [value for _, value in states]
    assert values == [state for state in sent if state in values] and values[-1] == sent[-1]
    # The first batches' STATEs are out while later batches still wait for their turn.
    assert ended - states[0][0] > 0.6
    assert len({round(moment, 1) for moment, _ in states}) >= 6


def test_no_state_is_written_beyond_the_rows_in_the_form_when_a_batch_fails(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    settings = config(
        jdy,
        {c.STREAM: c.form_spec(form)},
        tmp_path,
        default_timezone=c.TIMEZONE,
        batch_requests_per_second=10,
    )
    process = start_target(settings, tmp_path, stdin=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(tap(c.customers(2000, seed=22), every=100))
    process.stdin.close()
    states = [json.loads(process.stdout.readline())]
    # The company's data quota runs out: a fatal answer to the next batch_create.
    jdy.post("fail_next", {"code": 7212, "msg": "本月数据量已用完", "endpoint": "batch_create"})
    states += [json.loads(line) for line in process.stdout]
    process.wait(timeout=60)

    assert process.returncode != 0
    assert states[-1]["sent"] < 2000
    assert states == sorted(states, key=lambda s: s["sent"])
    assert len(rows_of(jdy, form)) >= states[-1]["sent"]  # every STATE covers written rows
