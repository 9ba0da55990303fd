"""Deletions and held children on the rare paths (issue 19, items 4 and 6): a deletion waits for
the writes in flight that link to what it deletes, and a child whose parent does not come stops
holding STATE back after `checkpoint_seconds`.

The target is fed line by line (`tests/reliability/live.py`); Twenty's gates hold a write until
the test lets it go, so each interleaving is exact.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.live import LiveTarget
from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner
from tests.target_twenty.test_deletions import company, schema
from tests.target_twenty.test_identity import make_by_hand


def text(message: dict[str, Any]) -> str:
    return json.dumps(message)


def person(j: int, company_id: int | str) -> dict[str, Any]:
    return data.record_message("people", {**data.person(j, 1), "company_id": str(company_id)})


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not come true")
        time.sleep(0.01)


@pytest.mark.parametrize("on_parent_delete", ["keep", "cascade"])
def test_deleting_a_company_waits_for_the_person_in_flight_that_links_to_it(
    target: TargetRunner, tmp_path: Path, on_parent_delete: str
) -> None:
    twenty = target.twenty
    mappings = data.mappings()
    mappings["people"]["references"]["companyId"]["on_parent_delete"] = on_parent_delete
    settings = target.config(batch_size_rows=1, mappings=mappings)
    people_written = twenty.gate("/rest/batch/people", method="POST")
    live = LiveTarget("target-twenty", settings, tmp_path / "run", debug=True)
    try:
        live.send(text(schema("companies")), text(company(1)), text(schema("people")))
        live.send(text(person(0, 1)))
        twenty.wait_at_gate(people_written)  # the person is being written, its company is in
        live.send(text(company(1, deleted=True)), text({"type": "STATE", "value": {"line": 6}}))
        live.end_input()
        # Before issue 19 the deletion went ahead (and Twenty then refused the person's link to
        # a deleted company); now the target says the deletion's batch waits for the person's.
        wait_until(
            lambda: (
                any(r["method"] == "DELETE" for r in twenty.requests())
                or "companies#1: a batch of 1 record(s) waits for 1 batch(es) in flight"
                in live.stderr
            )
        )
        twenty.open_gate(people_written)
        assert live.wait(timeout=60) == 0, live.stderr[-3000:]
    finally:
        live.kill()

    assert target.dead_letters() == []
    [row] = twenty.records()["companies"]
    assert row["deletedAt"] is not None
    [held] = twenty.records()["people"]
    assert held["companyId"] == row["id"]  # linked while the company was there
    assert (held["deletedAt"] is not None) == (on_parent_delete == "cascade")
    assert live.remaining_states() == [{"line": 6}]


@pytest.mark.parametrize(
    ("rule", "written", "action"),
    [("load_unlinked", True, "created"), ("dead_letter", False, "failed"), ("skip", False, None)],
)
def test_a_child_whose_parent_does_not_come_stops_holding_state_after_checkpoint_seconds(
    target: TargetRunner, tmp_path: Path, rule: str, written: bool, action: str | None
) -> None:
    settings = target.config(checkpoint_seconds=0.5, on_missing_parent=rule)
    live = LiveTarget("target-twenty", settings, tmp_path / "run")
    try:
        live.send(text(schema("people")), text(schema("companies")))
        live.send(text(person(0, 999)), text({"type": "STATE", "value": {"line": 3}}))
        # The tap goes quiet (company 999 is not coming): the STATE comes all the same.
        assert live.next_state(timeout=30) == {"line": 3}
        people = target.twenty.records()["people"]
        assert [p["companyId"] for p in people] == ([None] if written else [])
        live.end_input()
        assert live.wait(timeout=60) == (0 if rule != "dead_letter" else 1)
    finally:
        live.kill()
    assert "1 record(s) waited 0.5s (checkpoint_seconds) for a parent" in live.stderr
    report = [line for line in target.report() if line["stream"] == "people"]
    assert [line["action"] for line in report] == [action or "skipped"]
    assert [d["code"] for d in target.dead_letters()] == (
        ["missing-parent"] if rule == "dead_letter" else []
    )


def test_a_child_waiting_for_a_parent_still_buffered_follows_it_once_state_waits(
    target: TargetRunner, tmp_path: Path
) -> None:
    # The company comes after the STATE and waits in its sink for a full batch: nothing would
    # send it while the tap is quiet, and the person (and the STATE) would wait with it.
    live = LiveTarget("target-twenty", target.config(checkpoint_seconds=0.5), tmp_path / "run")
    try:
        live.send(text(schema("people")), text(schema("companies")))
        live.send(text(person(0, 1)), text({"type": "STATE", "value": {"line": 3}}))
        live.send(text(data.record_message("companies", data.company(1))))
        assert live.next_state(timeout=30) == {"line": 3}
        live.end_input()
        assert live.wait(timeout=60) == 0, live.stderr[-3000:]
    finally:
        live.kill()
    [company_row] = target.twenty.records()["companies"]
    [person_row] = target.twenty.records()["people"]
    assert person_row["companyId"] == company_row["id"]  # linked: it followed its parent
    assert target.dead_letters() == []


def test_a_parent_coming_after_its_child_was_sent_without_it_does_not_dead_letter_the_child(
    target: TargetRunner, tmp_path: Path
) -> None:
    """The child waited `checkpoint_seconds` in vain and went (`load_unlinked`); its parent came
    while the child's batch was looking it up, so it was not written yet. The child is loaded
    unlinked, as the rule says, not dead-lettered as if its parent had failed."""
    twenty = target.twenty
    # A company made in Twenty before the run: the target cannot know from its id map alone
    # that the person's company is not there, so both the hold and the batch look it up.
    make_by_hand(target, "companies", {"name": "Made in Twenty"})
    # The first calls pass (is the object empty? the hold's lookup); the batch's is held.
    lookup = twenty.gate("/rest/companies", method="GET", skip=2)
    parent_written = twenty.gate("/rest/batch/companies", method="POST")
    settings = target.config(checkpoint_seconds=0.5, on_missing_parent="load_unlinked")
    live = LiveTarget("target-twenty", settings, tmp_path / "run")
    try:
        live.send(text(schema("people")), text(schema("companies")))
        live.send(text(person(0, 1)), text({"type": "STATE", "value": {"line": 3}}))
        twenty.wait_at_gate(lookup)  # released after 0.5 s: its batch looks the company up
        live.send(text(data.record_message("companies", data.company(1))))
        live.end_input()  # the end of the input sends the company
        twenty.wait_at_gate(parent_written)  # … which is being written
        twenty.open_gate(lookup)  # the person's batch finds it not in Twenty yet
        wait_until(lambda: bool(twenty.records()["people"]) or bool(target.dead_letters()))
        twenty.open_gate(parent_written)
        assert live.wait(timeout=60) == 0, live.stderr[-3000:]
    finally:
        live.kill()
    assert target.dead_letters() == []
    [person_row] = twenty.records()["people"]
    assert person_row["companyId"] is None  # sent before its company came: not linked
    assert len(twenty.records()["companies"]) == 2  # the one made by hand, and the record's
