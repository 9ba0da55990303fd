"""Crash safety in upsert mode: SIGKILL at random moments, resume from the last STATE."""

from __future__ import annotations

import json
import queue
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import (
    config,
    new_form,
    record,
    rows_of,
    run_target,
    schema,
    singer_lines,
    start_target,
    state,
)

RECORDS = 4000
# Not a multiple of the 100-row batch: the records before a STATE end in a batch that also carries
# later ones, so the form is nearly always ahead of the last STATE when a kill lands, and the
# resumed run has rows to send again (with 100, only a kill in the moment between a batch's
# answer and its STATE leaves any).
STATE_EVERY = 130


def tap_output(records: list[dict], start: int) -> str:
    """What a tap resuming after record `start` sends (STATE = records sent so far)."""
    messages = [schema(c.STREAM, c.SCHEMA)]
    for n, rec in enumerate(records[start:], start=start + 1):
        messages.append(record(c.STREAM, rec))
        if n % STATE_EVERY == 0:
            messages.append(state({"customers": n}))
    return singer_lines(messages)


def run_and_kill(
    settings: dict, tmp_path: Path, text: str, states: int, delay: float
) -> int | None:
    """Start the target, SIGKILL it `delay` s after its `states`-th STATE; the last STATE seen."""
    process = start_target(settings, tmp_path, stdin=subprocess.PIPE)

    def feed() -> None:
        try:
            assert process.stdin is not None
            process.stdin.write(text)
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # killed while we were still writing

    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=feed, daemon=True).start()
    threading.Thread(target=read, daemon=True).start()
    last = None
    seen = 0
    deadline = time.monotonic() + 60
    while seen < states and time.monotonic() < deadline:
        line = lines.get(timeout=60)
        if line is None:
            break
        last = json.loads(line)["customers"]
        seen += 1
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    while True:  # STATE lines written before the kill count too: a tap would have saved them
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            break
        if line is None:
            break
        last = json.loads(line)["customers"]
    return last


def test_upsert_killed_at_three_random_moments_and_resumed_keeps_each_key_exactly_once(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    rng = random.Random(1123)
    form = new_form(jdy)
    records = c.customers(RECORDS, seed=7)
    spec = c.form_spec(form, key_widget="客户编号")
    # batch_create at its real pace (10/s) so that a run lasts long enough to be killed midway.
    settings = config(
        jdy,
        {c.STREAM: spec},
        tmp_path,
        default_timezone=c.TIMEZONE,
        batch_requests_per_second=10,
    )
    resume = 0
    unconfirmed = []  # rows in the form beyond the last STATE each killed run wrote
    jdy.knobs(latency=0.05)  # several batches are in flight when the kill lands
    try:
        for _ in range(3):
            last = run_and_kill(
                settings,
                tmp_path,
                tap_output(records, resume),
                states=rng.randint(1, 6),
                delay=rng.uniform(0.0, 0.3),
            )
            resume = last if last is not None else resume
            unconfirmed.append(len(rows_of(jdy, form)) - resume)
        final = run_target(settings, tap_output(records, resume), tmp_path)
    finally:
        jdy.knobs(latency=0.0)

    assert resume < RECORDS, "every kill must land before the end of the input"
    assert all(n >= 0 for n in unconfirmed)  # a STATE never ran ahead of the rows it covers
    assert any(n > 0 for n in unconfirmed), unconfirmed  # and the kills left rows to re-send
    assert final.returncode == 0, final.stderr[-3000:]
    rows = rows_of(jdy, form)
    assert Counter(row["customer_id"] for row in rows) == Counter(r["id"] for r in records)
    by_key = {row["customer_id"]: row for row in rows}
    for rec in records:
        assert c.actual(by_key[rec["id"]]) == c.expected(rec)
    # The rows written after the last STATE were re-sent by the next run, and updated. (A
    # killed run's report may end in half a line; the next run starts on a new one.)
    lines = (tmp_path / "report.jsonl").read_text().splitlines()
    whole = [parsed for parsed in map(json_or_none, lines) if parsed is not None]
    assert len(lines) - len(whole) <= 3  # at most one cut line per kill
    assert Counter(line["action"] for line in whole)["updated"] > 0


def json_or_none(line: str) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:
        return None
