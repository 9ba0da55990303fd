"""Parent ordering on its own (`target_twenty.parents`): no sink, no target, no API."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from target_twenty.ids import IdStore
from target_twenty.parents import Held, ParentOrder


class FakeSink:
    def __init__(self, stream: str, max_size: int = 60) -> None:
        self.stream_name = stream
        self.max_size = max_size
        self.resent: list[list[dict[str, Any]]] = []

    def resend(self, entries: list[Held]) -> None:
        self.resent.append([e.record for e in entries])


def order_of(tmp_path: Path, drained: list[FakeSink], max_held: int = 100) -> ParentOrder:
    return ParentOrder(
        IdStore(tmp_path / "ids.sqlite3", ""),
        drained.append,
        max_held=max_held,
        batch_size=2,
        on_missing_parent="dead_letter",
        logger=logging.getLogger("test"),
    )


def test_a_child_waits_for_a_parent_neither_arrived_nor_in_twenty_and_follows_it(
    tmp_path: Path,
) -> None:
    order = order_of(tmp_path, [])
    people = FakeSink("people")
    parent = ("companies", '["1"]')
    in_twenty: list[set[str]] = []

    def found(stream: str, keys: set[str]) -> set[str]:
        in_twenty.append(keys)
        return set()

    waits = order.waits([(("people", '["p1"]'), [parent])], found)
    assert waits == [{parent}] and in_twenty == [{'["1"]'}]  # one lookup for the batch
    order.hold([Held(people, {"id": "p1"}, None, ("people", '["p1"]'), waits[0])])  # type: ignore[arg-type]
    assert len(order) == 1

    order.sent("companies", ['["1"]'])

    assert people.resent == [[{"id": "p1"}]] and len(order) == 0
    assert order.arrived("companies", ['["1"]', '["2"]']) == {'["1"]'}
    # An arrived parent is waited for no more, and not looked up again.
    assert order.waits([(None, [parent])], found) == [set()] and len(in_twenty) == 1


def test_a_parent_buffered_in_another_sink_is_sent_before_its_child(tmp_path: Path) -> None:
    drained: list[FakeSink] = []
    order = order_of(tmp_path, drained)
    companies, people = FakeSink("companies"), FakeSink("people")
    order.buffered(companies, '["1"]')

    order.send_buffered_first(people, [("companies", '["2"]')])
    assert drained == []
    order.send_buffered_first(people, [("companies", '["1"]')])
    assert drained == [companies]

    order.batch_taken(companies)
    order.send_buffered_first(people, [("companies", '["1"]')])
    assert drained == [companies]  # not buffered any more


def test_beyond_max_held_the_oldest_go_a_batch_at_a_time_and_the_rest_at_the_end(
    tmp_path: Path,
) -> None:
    order = order_of(tmp_path, [], max_held=2)
    people = FakeSink("people", max_size=2)
    for n in range(3):
        key = ("people", f'["p{n}"]')
        order.hold([Held(people, {"n": n}, None, key, {("companies", '["x"]')})])  # type: ignore[arg-type]

    assert people.resent == [[{"n": 0}, {"n": 1}]]  # a batch's worth, not just the excess
    order.end_of_input()

    assert people.resent[1:] == [[{"n": 2}]] and len(order) == 0
