"""How close target-twenty gets to Twenty's ceiling, next to a naive loop.

Twenty allows 100 calls per minute with 60 records each: a ceiling of 6,000 records a minute.
This starts the Twenty sandbox with time compressed `--time-scale` times (rate-limit windows,
`Retry-After` and the server latency all divided by it), loads `--records` companies with
`target-twenty` at its defaults (100 calls per window, 8 in flight), then sends
batches the naive way — one batch of 60 at a time with a fixed 600 ms pause — and prints both
in API time (real seconds × time scale):

- sustained: 100 calls' worth of records per the median time any 100 consecutive calls took
  after the first window (whose full bucket lets 100 calls through at once);
- overall: all records over the whole load, that first burst included;
- 429s received, in total and after the first window (the goal is none).

    .venv/bin/python benchmarks/bench_target_twenty.py --records 30000 --time-scale 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from crm_sandbox.control import SandboxClient, start_sandbox

CEILING = 6000  # records per minute: 100 calls × 60 records
BATCH = 60
CALLS_PER_WINDOW = 100
TARGET = str(Path(sys.executable).with_name("target-twenty"))


def singer_input(records: int) -> str:
    return "".join(singer_lines(records))


def singer_lines(records: int) -> Iterator[str]:
    """The Singer messages of `records` companies, one line at a time."""
    schema = {
        "type": "SCHEMA",
        "stream": "companies",
        "key_properties": ["company_id"],
        "schema": {
            "type": "object",
            "properties": {
                "company_id": {"type": "integer"},
                "name": {"type": "string"},
                "website": {"type": "string"},
                "employees": {"type": "integer"},
            },
        },
    }
    yield json.dumps(schema) + "\n"
    for i in range(1, records + 1):
        record = {"company_id": i, "name": f"Company {i}", "website": f"company{i}.example.com"}
        yield (
            json.dumps(
                {"type": "RECORD", "stream": "companies", "record": record | {"employees": i % 900}}
            )
            + "\n"
        )
        if i % 1000 == 0:
            yield json.dumps({"type": "STATE", "value": {"companies": i}}) + "\n"


def target_config(twenty: SandboxClient, scale: float, workdir: Path) -> dict:
    return {
        "api_key": twenty.credentials["api_key"],
        "base_url": twenty.base_url,
        "rate_limit_window_seconds": 60 / scale,
        "id_map_path": str(workdir / "ids.sqlite3"),
        "dead_letter_path": str(workdir / "dead-letters.jsonl"),
        "mappings": {
            "companies": {
                "fields": {
                    "name": "name",
                    "domainName.primaryLinkUrl": "website",
                    "employees": "employees",
                }
            }
        },
    }


def run_target(twenty: SandboxClient, records: int, scale: float, workdir: Path) -> dict:
    config = target_config(twenty, scale, workdir)
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "input.singer").write_text(singer_input(records))
    started = time.monotonic()
    with (workdir / "input.singer").open() as stdin:
        run = subprocess.run(
            [TARGET, "--config", str(workdir / "config.json")],
            stdin=stdin,
            capture_output=True,
            text=True,
        )
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(f"target-twenty failed:\n{run.stderr[-3000:]}")
    calls = [r for r in twenty.requests() if r["path"] == "/rest/batch/companies"]
    stored = len(twenty.records()["companies"])
    if stored != records:
        sys.exit(f"expected {records} companies in the sandbox, found {stored}")
    times = sorted(r["at"] for r in calls)
    first_window_ends = times[0] + 60 / scale
    spans = [
        times[i] - times[i - CALLS_PER_WINDOW] for i in range(2 * CALLS_PER_WINDOW, len(times))
    ]
    sustained = None
    if spans:
        sustained = CALLS_PER_WINDOW * BATCH / (statistics.median(spans) * scale / 60)
    load_seconds = times[-1] - times[0] + statistics.median(r["duration_ms"] for r in calls) / 1000
    return {
        "records": records,
        "calls": len(calls),
        "largest_batch": max(r["batch_size"] or 0 for r in calls),
        "sustained": sustained,
        "overall": records / (load_seconds * scale / 60),
        "throttled": sum(r["status"] == 429 for r in calls),
        "throttled_later": sum(r["status"] == 429 and r["at"] >= first_window_ends for r in calls),
        "process_seconds": elapsed,
    }


def run_naive(twenty: SandboxClient, batches: int, scale: float) -> dict:
    """One batch of 60 at a time, then a fixed 600 ms (API time) pause."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {twenty.credentials['api_key']}"
    throttled = 0
    started = time.monotonic()
    for n in range(batches):
        body = [
            {
                "name": f"Naive {n}-{i}",
                "domainName": {"primaryLinkUrl": f"https://naive{n}-{i}.example.com"},
            }
            for i in range(BATCH)
        ]
        response = session.post(
            f"{twenty.base_url}/rest/batch/companies?upsert=true", json=body, timeout=60
        )
        throttled += response.status_code == 429
        time.sleep(0.6 / scale)
    elapsed = time.monotonic() - started
    return {"overall": batches * BATCH / (elapsed * scale / 60), "throttled": throttled}


def share(rate: float | None) -> str:
    return "n/a (load too short)" if rate is None else f"{rate:8,.0f}/min  {rate / CEILING:6.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--latency", type=float, default=0.8, help="server latency, API seconds")
    parser.add_argument("--naive-batches", type=int, default=40)
    args = parser.parse_args()
    scale = args.time_scale
    sandbox = start_sandbox(
        "--seed", "1", "--time-scale", str(scale), "--latency", str(args.latency / scale)
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-twenty-") as workdir:
            target = run_target(sandbox.twenty, args.records, scale, Path(workdir))
        sandbox.twenty.reset()
        naive = run_naive(sandbox.twenty, args.naive_batches, scale)
    finally:
        sandbox.stop()
    print(
        f"Twenty sandbox: time scale {scale:g}, latency {args.latency:g}s (API time), "
        f"ceiling {CEILING:,} records/min (100 calls/min × 60)"
    )
    print(
        f"target-twenty  {target['records']:,} records in {target['calls']} calls "
        f"(largest {target['largest_batch']}), process {target['process_seconds']:.1f}s real"
    )
    print(f"  sustained    {share(target['sustained'])}")
    print(f"  overall      {share(target['overall'])}  (first window's burst included)")
    later = target["throttled_later"]
    print(f"  429s         {target['throttled']} in total, {later} after the first window")
    print(f"naive loop     {args.naive_batches} batches of {BATCH}, 600 ms pause")
    print(f"  overall      {share(naive['overall'])}")
    print(f"  429s         {naive['throttled']}")


if __name__ == "__main__":
    main()
