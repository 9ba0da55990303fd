"""The Dispatcher and Checkpointer: STATE only for acknowledged records, in order (invariant 8)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from connector_kit.deadletter import DeadLetterFile
from connector_kit.pipeline import Checkpointer, Dispatcher


def make(max_in_flight: int = 4) -> tuple[Dispatcher, list]:
    written: list = []
    checkpointer = Checkpointer(written.append)
    return Dispatcher(checkpointer, max_in_flight), written


def test_state_waits_for_every_earlier_batch_even_when_a_later_one_finishes_first() -> None:
    dispatcher, written = make()
    release_first = threading.Event()
    cp = dispatcher.checkpointer
    cp.received("s", 2)
    dispatcher.submit("s", 2, release_first.wait)
    cp.add_state({"after": 2})
    cp.received("s", 2)
    dispatcher.submit("s", 2, lambda: None)
    cp.add_state({"after": 4})
    time.sleep(0.1)
    assert written == []  # batch 2 is done, batch 1 is not: neither STATE may be written
    release_first.set()
    dispatcher.join()
    # Both became writable the moment batch 1 was acknowledged: only the latest is written.
    assert written == [{"after": 4}]


def test_state_waits_for_records_still_buffered_in_a_sink() -> None:
    dispatcher, written = make()
    cp = dispatcher.checkpointer
    cp.received("s", 3)  # three records received, none submitted yet
    cp.add_state({"n": 1})
    assert written == [] and cp.unsubmitted("s")
    dispatcher.submit("s", 3, lambda: None)
    dispatcher.join()
    assert written == [{"n": 1}]


def test_state_covers_every_sink_that_received_records_before_it() -> None:
    dispatcher, written = make()
    cp = dispatcher.checkpointer
    cp.received("companies", 1)
    cp.received("people", 1)
    cp.add_state({"n": 1})
    dispatcher.submit("companies", 1, lambda: None)
    dispatcher.join()
    assert written == []
    dispatcher.submit("people", 1, lambda: None)
    dispatcher.join()
    assert written == [{"n": 1}]


def test_no_state_is_written_after_a_batch_failed() -> None:
    dispatcher, written = make()
    cp = dispatcher.checkpointer
    cp.received("s", 1)
    dispatcher.submit("s", 1, lambda: None)
    cp.add_state({"n": 1})
    dispatcher.join()

    def boom() -> None:
        raise RuntimeError("API down")

    cp.received("s", 1)
    dispatcher.submit("s", 1, boom)
    cp.add_state({"n": 2})
    cp.received("s", 1)
    with pytest.raises(RuntimeError, match="API down"):
        dispatcher.join()
    with pytest.raises(RuntimeError, match="API down"):
        dispatcher.submit("s", 1, lambda: None)
    assert written == [{"n": 1}]


def test_a_batch_waits_for_an_in_flight_batch_holding_the_same_key() -> None:
    dispatcher, _ = make()
    order: list[str] = []
    gate = threading.Event()

    def first() -> None:
        gate.wait()
        order.append("old version")

    dispatcher.submit("s", 1, first, holds=[("s", 1)])
    dispatcher.submit("s", 1, lambda: order.append("new version"), holds=[("s", 1)])
    time.sleep(0.1)
    gate.set()
    dispatcher.join()
    assert order == ["old version", "new version"]


def test_a_child_batch_waits_for_the_batch_that_writes_its_parent() -> None:
    dispatcher, _ = make()
    order: list[str] = []
    gate = threading.Event()

    def parent() -> None:
        gate.wait()
        order.append("company")

    dispatcher.submit("companies", 1, parent, holds=[("companies", 7)])
    dispatcher.submit("people", 1, lambda: order.append("person"), needs=[("companies", 7)])
    time.sleep(0.1)
    gate.set()
    dispatcher.join()
    assert order == ["company", "person"]


def test_submit_blocks_when_max_in_flight_batches_are_out() -> None:
    dispatcher, _ = make(max_in_flight=2)
    gate = threading.Event()
    dispatcher.submit("s", 1, gate.wait)
    dispatcher.submit("s", 1, gate.wait)
    third_submitted = threading.Event()

    def submit_third() -> None:
        dispatcher.submit("s", 1, lambda: None)
        third_submitted.set()

    threading.Thread(target=submit_third).start()
    assert not third_submitted.wait(0.2)
    gate.set()
    assert third_submitted.wait(2)
    dispatcher.join()


def test_state_waits_for_held_records_even_when_later_records_are_written_first() -> None:
    dispatcher, written = make()
    cp = dispatcher.checkpointer
    cp.received("people", 3)
    first = dispatcher.submit("people", 3, lambda: None, held=2)  # two wait for their parent
    cp.add_state({"n": 1})
    cp.received("people", 2)
    dispatcher.submit("people", 2, lambda: None)  # as many records, all written
    cp.add_state({"n": 2})
    dispatcher.join()
    assert written == [] and not cp.unsubmitted("people")  # held, yet not to be flushed again
    dispatcher.submit("people", 0, lambda: None, settles=[first])
    dispatcher.join()
    assert written == []  # one still held
    dispatcher.submit("people", 0, lambda: None, settles=[first])
    dispatcher.join()
    assert written == [{"n": 2}]  # {"n": 1} would have come at the same moment


def test_held_records_whose_batch_fails_let_no_state_through() -> None:
    dispatcher, written = make()
    cp = dispatcher.checkpointer
    cp.received("people", 1)
    first = dispatcher.submit("people", 1, lambda: None, held=1)
    cp.add_state({"n": 1})

    def boom() -> None:
        raise RuntimeError("API down")

    dispatcher.submit("people", 0, boom, settles=[first])
    with pytest.raises(RuntimeError, match="API down"):
        dispatcher.join()
    assert written == []


def test_a_batch_that_clears_a_key_waits_for_in_flight_batches_that_reference_it() -> None:
    dispatcher, _ = make()
    order: list[str] = []
    child_sent = threading.Event()

    def child() -> None:
        child_sent.wait()
        order.append("person linked to company 7")

    dispatcher.submit("people", 1, child, needs=[("companies", 7)])
    dispatcher.submit(
        "companies",
        1,
        lambda: order.append("company 7 deleted"),
        holds=[("companies", 7)],
        clears=[("companies", 7)],
    )
    time.sleep(0.1)
    assert order == []  # the deletion waits; without `clears` it would have run already
    child_sent.set()
    dispatcher.join()
    assert order == ["person linked to company 7", "company 7 deleted"]


def test_an_error_after_the_batch_was_written_fails_the_run_and_stops_later_states() -> None:
    def closed_pipe(state: object) -> None:
        raise BrokenPipeError("the reader of our output has gone")

    checkpointer = Checkpointer(closed_pipe)
    dispatcher = Dispatcher(checkpointer, 2)
    checkpointer.received("s", 1)
    checkpointer.add_state({"n": 1})
    dispatcher.submit("s", 1, lambda: None)  # written; acknowledging it writes the STATE
    with pytest.raises(BrokenPipeError):
        dispatcher.join()
    with pytest.raises(BrokenPipeError):
        dispatcher.submit("s", 1, lambda: None)
    assert checkpointer.pending_states() == 0
    checkpointer.add_state({"n": 2})  # after a failure nothing is queued, nothing written
    assert checkpointer.pending_states() == 0


def test_states_a_held_record_blocks_are_merged_so_memory_stays_flat() -> None:
    dispatcher, written = make()
    cp = dispatcher.checkpointer
    cp.received("people", 1)
    blocked = dispatcher.submit("people", 1, lambda: None, held=1)  # waits for its parent
    for n in range(1, 2001):  # a long run behind it: 2,000 batches, a STATE after each
        cp.received("companies", 10)
        dispatcher.submit("companies", 10, lambda: None)
        cp.add_state({"n": n})
    dispatcher.join()
    assert written == []
    assert cp.pending_states() == 1  # all acknowledged together when the record is settled
    assert cp.open_tickets() == 1  # acknowledged tickets are not kept behind the held one
    dispatcher.submit("people", 0, lambda: None, settles=[blocked])
    dispatcher.join()
    assert written == [{"n": 2000}]


def test_states_acknowledged_by_different_batches_are_all_written_in_order() -> None:
    dispatcher, written = make(max_in_flight=1)
    cp = dispatcher.checkpointer
    gates = [threading.Event() for _ in range(3)]
    for n, gate in enumerate(gates, start=1):
        cp.received("s", 5)
        cp.add_state({"n": n - 0.5})  # needs this batch's records: merged into the next one
        dispatcher_thread = threading.Thread(target=dispatcher.submit, args=("s", 5, gate.wait))
        dispatcher_thread.start()
        cp.add_state({"n": n})
        gate.set()
        dispatcher_thread.join()
    dispatcher.join()
    assert written == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_dead_letters_are_on_disk_before_a_state_that_depends_on_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    letters = DeadLetterFile(tmp_path / "dead-letters.jsonl")
    checkpointer = Checkpointer(lambda state: events.append(f"STATE {state}"), letters.sync)
    dispatcher = Dispatcher(checkpointer, 2)
    checkpointer.received("s", 2)
    checkpointer.add_state(1)

    def batch() -> None:  # one record written, one refused
        letters.write("s", "k2", "refused", {"id": "k2"})

    dispatcher.submit("s", 2, batch)
    dispatcher.join()
    checkpointer.received("s", 1)
    checkpointer.add_state(2)
    dispatcher.submit("s", 1, lambda: None)  # nothing new to sync
    dispatcher.join()
    letters.close()
    assert events == ["fsync", "STATE 1", "STATE 2"]
