"""Pacing: under the documented limit, or the one the server announces (rule 10), and 429s."""

from __future__ import annotations

import statistics

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TIME_SCALE, TargetRunner

WINDOW = 60 / TIME_SCALE  # the sandbox's minute, in seconds


def spans(log: list[dict], calls: int) -> list[float]:
    """Seconds between each call and the one `calls` before it, after the first two windows.

    `calls` consecutive calls should span one window (plus our 2% headroom): less means faster
    than the limit, more means slower. (The exact check that no bucket ran dry is the
    server's: no 429.)
    """
    times = sorted(r["at"] for r in log)
    return [times[i] - times[i - calls] for i in range(2 * calls, len(times))]


def test_calls_are_paced_to_the_limit_and_reach_it_with_several_in_flight_and_no_429(
    target: TargetRunner,
) -> None:
    # 40 calls per window (the sandbox allows 100): with 80 ms per call, one call at a time
    # could make 12 per window; reaching 40 takes several in flight.
    target.twenty.knobs(latency=0.08)
    config = target.config(batch_size=10, max_requests_per_window=40)

    run = target.run(data.singer_lines(1200), config)

    assert run.returncode == 0, run.stderr[-2000:]
    log = target.twenty.requests()
    assert len(log) > 100  # more than two windows' worth
    assert target.twenty.stats()["throttled"] == 0
    assert all(r["batch_size"] <= 10 for r in log if r["batch_size"])
    # 40 calls per window, not more (but for a few ms of jitter), and not fewer: the limit is
    # reached, not just respected.
    assert min(spans(log, 40)) > WINDOW * 0.9
    assert statistics.median(spans(log, 40)) < WINDOW * 1.1


def test_lower_limit_announced_in_headers_is_followed_without_configuring_it(
    target: TargetRunner,
) -> None:
    target.twenty.knobs(extra={"limit_per_minute": 50, "announce_limits": True})

    run = target.run(data.singer_lines(1200), target.config(batch_size=10))

    assert run.returncode == 0, run.stderr[-2000:]
    assert "Twenty announces 50 requests per" in run.stderr
    log = target.twenty.requests()
    assert target.twenty.stats()["throttled"] == 0
    assert min(spans(log, 50)) > WINDOW * 0.9
    assert "of the API ceiling" in run.stderr  # the summary quotes the announced ceiling


def test_429_with_retry_after_makes_everybody_wait_then_the_announced_limit_is_kept(
    target: TargetRunner,
) -> None:
    target.twenty.knobs(extra={"limit_per_minute": 30})  # headers only on the 429s

    run = target.run(data.singer_lines(1200), target.config(batch_size=10))

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(target.twenty.records()["companies"]) == 1200
    throttled = [r for r in target.twenty.requests() if r["status"] == 429]
    assert throttled, "the test needs the server to refuse some calls"
    assert len(throttled) <= 8  # the in-flight calls of the first burst, not a storm
    assert "Twenty announces 30 requests per" in run.stderr


def test_older_429_without_retry_after_is_retried_with_backoff(target: TargetRunner) -> None:
    target.twenty.knobs(extra={"limit_per_minute": 30, "rate_limit_style": "legacy"})

    run = target.run(data.singer_lines(600), target.config(batch_size=10))

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(target.twenty.records()["companies"]) == 600
    assert any(r["status"] == 429 for r in target.twenty.requests())
    assert "Limit reached (30 tokens per 60000 ms)" in run.stderr
