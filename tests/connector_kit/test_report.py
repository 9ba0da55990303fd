"""The run report's summary: a rate only for a stream that ran for one rate window at least
(issue 17 item 8), and the run's id on every line."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from connector_kit.report import RunReport


def test_a_stream_shorter_than_one_rate_window_gets_no_rate_and_a_longer_one_does(
    tmp_path: Path,
) -> None:
    report = RunReport(logging.getLogger("test"), tmp_path / "report.jsonl", 6000.0)
    report.meaningful_seconds = 0.2
    for key in range(3):
        report.record("quick", key, "created", f"id-{key}")
    report.record("slow", 1, "created", "id-a")
    time.sleep(0.25)
    report.record("slow", 2, "updated", "id-b")

    quick, slow = report.summary()

    assert quick.startswith("Stream 'quick': 3 records, 3 created")
    assert "too short" in quick and "API ceiling" not in quick
    assert slow.startswith("Stream 'slow': 2 records, 1 created, 1 updated")
    assert "records/min (" in slow and "% of the API ceiling)" in slow
    lines = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert {line["run"] for line in lines} == {report.run_id}
    assert report.run_id[:8].isdigit() and "T" in report.run_id
