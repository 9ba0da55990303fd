"""Delivery on the rare paths (issue 19): BATCH messages, schema changes, signals, failures,
idle taps and long Retry-After answers. Nothing lost, reordered or stalled.

Both targets run as processes fed line by line (`live.py`); the exact interleaving each case
needs is made with the sandboxes' gates (a write held until the test lets it go), never with
sleeps.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox, SandboxClient
from tests.reliability.live import LiveTarget
from tests.reliability.pipelines import FORM, start_secret_sandbox
from tests.reliability.plugins import (
    BIN,
    COMPANY_SCHEMA,
    TARGETS,
    company,
    config,
    held_keys,
    run_plugin,
)

# Where each target's batch writes go (the calls a gate holds).
WRITES = {"target-twenty": "/rest/batch/companies", "target-jiandaoyun": "batch_create"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_secret_sandbox(companies=1, seed=19)
    yield running
    running.stop()


@pytest.fixture
def empty(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    for api in (sandbox.twenty, sandbox.jiandaoyun):
        api.reset()  # also opens and removes every gate
    yield sandbox
    for api in (sandbox.twenty, sandbox.jiandaoyun):
        api.reset()


def api_of(sandbox: RunningSandbox, target: str) -> SandboxClient:
    return sandbox.twenty if target == "target-twenty" else sandbox.jiandaoyun


def line(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def state(position: int) -> str:
    return line({"type": "STATE", "value": {"position": position}})


def names(sandbox: RunningSandbox, target: str) -> dict[str, str]:
    """Key (c1, c2…) → name of every company the destination holds (Twenty: the key read from
    the homepage, https://company1.example.com)."""
    if target == "target-twenty":
        rows = sandbox.twenty.records()["companies"]
        domains = [r["domainName"]["primaryLinkUrl"] for r in rows]
        keys = ["c" + d.split("//")[-1].split(".")[0].removeprefix("company") for d in domains]
        return dict(zip(keys, (r["name"] for r in rows), strict=True))
    rows = sandbox.jiandaoyun.records()["forms"][FORM]
    return {r["customer_id"]: r["_widget_1704067200001"] for r in rows}


def main_thread_waits_on_a_lock(pid: int) -> bool:
    """Whether the process's main thread sleeps in an untimed futex wait (Linux x86-64): a lock
    or semaphore acquired without a timeout, not reading input, not waiting with a timeout."""
    fields = Path(f"/proc/{pid}/syscall").read_text().split()
    return fields[0] == "202" and fields[4] == "0x0"  # futex(…, timeout=NULL)


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not come true")
        time.sleep(0.01)


# BATCH messages (item 2) --------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_batch_messages_records_count_like_records_so_a_later_state_waits_for_all(
    empty: RunningSandbox, tmp_path: Path, target: str, compression: str
) -> None:
    # c1 comes first as a RECORD; the BATCH file holds a newer version of it and c2…c100;
    # 50 RECORDs and a STATE follow. The tap stays open (idle) after the STATE.
    batch = [company(1, name="Company 1 v2")["record"]]
    batch += [company(n)["record"] for n in range(2, 101)]
    text = "".join(json.dumps(r) + "\n" for r in batch).encode()
    path = tmp_path / f"companies-batch.jsonl{'.gz' if compression == 'gzip' else ''}"
    path.write_bytes(gzip.compress(text) if compression == "gzip" else text)
    message = {
        "type": "BATCH",
        "stream": "companies",
        "encoding": {"format": "jsonl", "compression": compression},
        "manifest": [path.as_uri()],
    }
    live = LiveTarget(target, config(empty, target, tmp_path, checkpoint_seconds=1), tmp_path)
    try:
        live.send(line(COMPANY_SCHEMA), line(company(1)), line(message))
        live.send(*(line(company(n)) for n in range(101, 151)), state(54))
        live.next_state(timeout=60)
        # Every record before the STATE is written when it comes: the 50 RECORDs too.
        assert len(names(empty, target)) == 150
        live.end_input()
        assert live.wait() == 0, live.stderr[-3000:]
    finally:
        live.kill()
    held = names(empty, target)
    assert held["c1"] == "Company 1 v2"  # the BATCH's version, after the RECORD's
    assert len(held) == 150


# Schema changes (item 3) --------------------------------------------------------------------
SAME_SCHEMA_ANOTHER_SHAPE = {  # a tap re-sends the schema, types written differently
    **COMPANY_SCHEMA,
    "schema": {
        "type": "object",
        "properties": {
            "company_id": {"type": "string"},
            "name": {"type": ["null", "string"]},
            "homepage": {"type": ["null", "string"]},
        },
    },
}


@pytest.mark.parametrize("target", TARGETS)
def test_after_a_schema_change_an_older_version_never_overwrites_the_newer(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    lines = [
        line(COMPANY_SCHEMA),
        line(company(1, name="old")),  # buffered in the sink the schema change retires
        line(SAME_SCHEMA_ANOTHER_SHAPE),
        line(company(1, name="new")),
        line(company(2)),  # the new sink is full (2 records): its batch goes at once
        state(6),
    ]

    run = run_plugin(target, config(empty, target, tmp_path, batch_size_rows=2), lines, tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert names(empty, target) == {"c1": "new", "c2": "Company 2"}
    assert run.states == [6]


@pytest.mark.parametrize("target", TARGETS)
def test_a_state_after_a_schema_change_does_not_wait_for_the_retired_sink(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    settings = config(empty, target, tmp_path, checkpoint_seconds=0)  # flush at every message
    live = LiveTarget(target, settings, tmp_path)
    try:
        live.send(
            line(COMPANY_SCHEMA),
            line(company(1)),
            line(SAME_SCHEMA_ANOTHER_SHAPE),
            line(company(2)),
            state(5),
        )
        assert live.next_state(timeout=30) == {"position": 5}  # the tap still open
        assert held_keys(empty, target) == {"c1", "c2"}
        live.end_input()
        assert live.wait() == 0
    finally:
        live.kill()


# Signals (item 5) ---------------------------------------------------------------------------
def two_streams(sandbox: RunningSandbox, target: str, workdir: Path, **more: Any) -> dict:
    """Settings with a second stream, `prospects`, loaded like companies."""
    settings = config(sandbox, target, workdir, **more)
    if target == "target-twenty":
        settings["mappings"]["prospects"] = settings["mappings"]["companies"]
    else:
        settings["forms"]["prospects"] = settings["forms"]["companies"]
    return settings


def prospect(number: int) -> dict[str, Any]:
    record = company(1000 + number)
    return {**record, "stream": "prospects"}


@pytest.mark.parametrize("target", TARGETS)
def test_sigterm_while_the_main_thread_waits_inside_the_dispatcher_drains_and_exits(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    api = api_of(empty, target)
    gate = api.gate(WRITES[target], method="POST")  # the first batch stays in flight
    settings = two_streams(empty, target, tmp_path, max_in_flight=1, batch_size_rows=10)
    live = LiveTarget(target, settings, tmp_path)
    try:
        live.send(line(COMPANY_SCHEMA), line({**COMPANY_SCHEMA, "stream": "prospects"}))
        live.send(*(line(company(n)) for n in range(1, 11)), state(13))
        api.wait_at_gate(gate)
        # A prospect waits in its sink; the next full batch of companies waits for the only
        # slot: the main thread sleeps inside the dispatcher, where the SDK's handler, which
        # drains every sink right there, would wait for that slot behind itself for ever.
        live.send(line(prospect(1)), *(line(company(n)) for n in range(11, 21)))
        wait_until(lambda: main_thread_waits_on_a_lock(live.process.pid))
        live.process.send_signal(signal.SIGTERM)
        api.open_gate(gate)
        assert live.wait(timeout=60) == 0, live.stderr[-3000:]
    finally:
        live.kill()
    assert "Received signal 15: reading no more input" in live.stderr
    assert held_keys(empty, target) == {f"c{n}" for n in range(1, 21)} | {"c1001"}
    assert live.remaining_states() == [{"position": 13}]


@pytest.mark.parametrize("target", TARGETS)
def test_a_second_signal_stops_at_once_saying_so_and_writes_no_state(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    api = api_of(empty, target)
    gate = api.gate(WRITES[target], method="POST")
    live = LiveTarget(target, config(empty, target, tmp_path, batch_size_rows=10), tmp_path)
    try:
        live.send(line(COMPANY_SCHEMA), *(line(company(n)) for n in range(1, 11)), state(12))
        api.wait_at_gate(gate)
        live.process.send_signal(signal.SIGTERM)
        live.wait_for_log("Received signal 15")  # it waits for the batch in flight
        live.process.send_signal(signal.SIGINT)
        assert live.wait(timeout=10) == 128 + signal.SIGINT
    finally:
        api.remove_gates()
        live.kill()
    assert "a second signal (2): stopping at once" in live.stderr
    assert live.remaining_states() == []


@pytest.mark.parametrize("target", TARGETS)
def test_after_a_signal_the_exit_code_still_reports_dead_lettered_records(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    live = LiveTarget(target, config(empty, target, tmp_path), tmp_path)
    try:
        # c2 and its STATE come before the refused c1: once c1 is dead-lettered they have been
        # received, whatever the machine's load (sent after it, the signal could come first).
        live.send(line(COMPANY_SCHEMA), line(company(2)), state(3), line(company(1, name=17)))
        wait_until(lambda: (tmp_path / "dead-letters.jsonl").exists())  # c1 refused
        live.process.send_signal(signal.SIGTERM)  # the tap still open
        assert live.wait(timeout=60) == 1
    finally:
        live.kill()
    assert "more than max_failed_records=0" in live.stderr
    assert held_keys(empty, target) == {"c2"}  # what was received is written
    assert live.remaining_states() == [{"position": 3}]


# Failures and the checkpoint clock (item 7) -------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_a_state_is_written_while_the_tap_is_idle_once_checkpoint_seconds_pass(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    live = LiveTarget(target, config(empty, target, tmp_path, checkpoint_seconds=0.5), tmp_path)
    try:
        live.send(line(COMPANY_SCHEMA), line(company(1)), state(3))  # then nothing
        assert live.next_state(timeout=30) == {"position": 3}
        assert held_keys(empty, target) == {"c1"}
        live.end_input()
        assert live.wait() == 0
    finally:
        live.kill()


@pytest.mark.parametrize("target", TARGETS)
def test_no_state_is_written_after_the_input_failed_even_for_batches_sent_before(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    api = api_of(empty, target)
    gate = api.gate(WRITES[target], method="POST")
    live = LiveTarget(target, config(empty, target, tmp_path, batch_size_rows=10), tmp_path)
    try:
        live.send(line(COMPANY_SCHEMA), *(line(company(n)) for n in range(1, 11)), state(12))
        api.wait_at_gate(gate)  # the batch before the STATE is in flight
        live.send('{"type": "RECORD", "stream": "companies", "record": {')
        live.end_input()
        # (Before issue 19 nothing was said until the batches in flight ended.)
        with contextlib.suppress(TimeoutError):
            live.wait_for_log("Stopping after an error", timeout=10)
        api.open_gate(gate)
        assert live.wait(timeout=60) == 1
    finally:
        live.kill()
    assert "Unable to parse line 13 of the input as JSON" in live.stderr
    assert held_keys(empty, target) == {f"c{n}" for n in range(1, 11)}  # the batch finished
    assert live.remaining_states() == []  # but the run failed: no STATE after that


@pytest.mark.parametrize("target", TARGETS)
def test_a_state_that_cannot_be_written_fails_the_run_with_a_clear_error(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config(empty, target, tmp_path)))
    lines = [line(COMPANY_SCHEMA), line(company(1)), state(3)]
    with (tmp_path / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(
            [str(BIN / target), "--config", str(config_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None and process.stdin is not None
        process.stdout.close()  # whoever reads the target's output has gone
        process.stdin.write("".join(f"{text}\n" for text in lines))
        process.stdin.close()
        returncode = process.wait(timeout=60)
    logged = (tmp_path / "stderr.log").read_text()

    assert returncode == 1, logged[-3000:]
    assert "A STATE could not be written: the output pipe is closed" in logged
    assert "Exception ignored" not in logged  # no second failure at exit


def test_a_retry_after_longer_than_max_retry_after_seconds_is_waited_only_that_long(
    empty: RunningSandbox, tmp_path: Path
) -> None:
    # The company's budget says "come back in an hour" (8303, as fail_next sends it).
    hour = {"Retry-After": "3600"}
    empty.jiandaoyun.post(
        "fail_next", {"code": 8303, "endpoint": "batch_create", "headers": hour, "times": 2}
    )
    settings = config(empty, "target-jiandaoyun", tmp_path, max_retry_after_seconds=0.5)
    lines = [line(COMPANY_SCHEMA), line(company(1)), state(3)]

    started = time.monotonic()
    run = run_plugin("target-jiandaoyun", settings, lines, tmp_path, timeout=60)

    assert run.returncode == 0, run.stderr[-3000:]
    assert time.monotonic() - started < 30
    assert "asked to wait 3600s before the next call" in run.stderr
    assert "(max_retry_after_seconds)" in run.stderr
    assert held_keys(empty, "target-jiandaoyun") == {"c1"}
