"""How close target-jiandaoyun gets to Jiandaoyun's ceiling at 300 ms latency, next to a naive loop.

batch_create takes 100 rows a call and 10 calls a second: a ceiling of 1,000 rows a second.
With 300 ms per call, one call at a time reaches a third of it; the target keeps several calls
in flight (`max_in_flight`) behind its pacing. This starts the Jiandaoyun sandbox in real time
with `--latency`, loads `ROWS` rows with `target-jiandaoyun` at its defaults, then sends rows the
naive way — one batch_create at a time — and prints for both:

- sustained: 10 calls' worth of rows (1,000) per the median time any 10 consecutive calls took
  after the first second (whose full rate bucket is not the steady state), and its ratio to
  the 1,000/s ceiling;
- overall: all rows over the target's whole run, start-up and widget check included;
- rate-limit answers received (8303, 8304, HTTP 429), in total and after the first second.

    .venv/bin/python benchmarks/bench_target_jiandaoyun.py 20000 [--latency 0.3] [--upsert]

With `--upsert` every batch is also looked up with data/list. The sandbox answers a filtered
data/list by scanning every row of the form (about 8 ms per 1,000 rows, on its one event-loop
thread), so past about 10,000 rows the sandbox's CPU, not the target, sets the pace.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

from crm_sandbox.control import SandboxClient, start_sandbox
from crm_sandbox.jiandaoyun.forms import DEMO_CUSTOMERS

CEILING = 1000  # rows per second: 10 calls × 100 rows
BATCH = 100
TARGET = str(Path(sys.executable).with_name("target-jiandaoyun"))
FIELDS = {"id": "客户编号", "name": "客户名称", "amount": "金额", "seen": "最近跟进时间"}
FIELDS |= {"level": "客户等级", "tags": "标签"}


def row(i: int) -> dict:
    return {
        "id": f"C{i:07d}",
        "name": f"客户 {i}",
        "amount": i * 1.25,
        "seen": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T08:00:00+08:00",
        "level": ["A 级", "B 级", "C 级"][i % 3],  # among the demo form's options
        "tags": ["重点", "新客"][: i % 3],
    }


def rows(count: int) -> list[dict]:
    return [row(i) for i in range(count)]


def singer_input(records: list[dict]) -> str:
    properties = {name: {} for name in FIELDS}
    lines = [
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "customers",
                "key_properties": ["id"],
                "schema": {"type": "object", "properties": properties},
            }
        )
    ]
    for n, record in enumerate(records, start=1):
        lines.append(json.dumps({"type": "RECORD", "stream": "customers", "record": record}))
        if n % 1000 == 0:
            lines.append(json.dumps({"type": "STATE", "value": {"customers": n}}))
    return "\n".join(lines) + "\n"


def new_form(jdy: SandboxClient) -> tuple[str, str]:
    entry = f"bench_{uuid.uuid4().hex[:8]}"
    jdy.post(
        "forms", {"app_id": "bench", "entry_id": entry, "name": entry, "widgets": DEMO_CUSTOMERS}
    )
    return "bench", entry


def rate_limited(calls: list[dict]) -> Counter:
    return Counter(
        str(c["code"] or c["status"])
        for c in calls
        if c["code"] in (8303, 8304) or c["status"] == 429
    )


def measure(calls: list[dict], count: int) -> dict:
    """Sustained rows/s after the first second, from the sandbox's log of batch_create calls.

    Calls leave in bursts as the rate window frees up, so the rate is measured over windows of
    10 consecutive calls (one second's worth at the limit), and the median taken.
    """
    creates = sorted(
        (c for c in calls if c["path"].endswith("batch_create")), key=lambda c: c["at"]
    )
    ok = [c for c in creates if c["status"] == 200]
    start = ok[0]["at"]
    steady = [c for c in ok if c["at"] >= start + 1.0]
    end = max(c["at"] + c["duration_ms"] / 1000 for c in ok)
    per_ten = [b["at"] - a["at"] for a, b in zip(steady, steady[10:], strict=False)]
    sustained = 10 * BATCH / statistics.median(per_ten) if per_ten else float("nan")
    later = [c for c in creates if c["at"] >= start + 1.0]
    return {
        "sustained": sustained,
        "span": end - start,
        "limited": rate_limited(creates),
        "limited_steady": rate_limited(later),
        "calls": len(creates),
        "rows": count,
    }


def run_target(jdy: SandboxClient, records: list[dict], upsert: bool, workdir: Path) -> dict:
    form = new_form(jdy)
    spec = {"app_id": form[0], "entry_id": form[1], "fields": FIELDS}
    if upsert:
        spec["key_widget"] = "客户编号"
    config = {
        "api_key": jdy.credentials["api_key"],
        "base_url": jdy.base_url,
        "forms": {"customers": spec},
        "dead_letter_path": str(workdir / "dead-letters.jsonl"),
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config, ensure_ascii=False))
    since = time.time()
    started = time.monotonic()
    done = subprocess.run(
        [TARGET, "--config", str(config_path)],
        input=singer_input(records),
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"target-jiandaoyun failed:\n{done.stderr[-3000:]}")
    stored = len(jdy.records()["forms"][f"{form[0]}/{form[1]}"])
    assert stored == len(records), f"{stored} rows stored for {len(records)} records"
    result = measure(jdy.requests(since), len(records))
    result["wall"] = wall
    return result


def run_naive(jdy: SandboxClient, records: list[dict]) -> dict:
    """One batch_create at a time, each waiting for the previous answer."""
    form = new_form(jdy)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {jdy.credentials['api_key']}"
    names = {w["label"]: w["name"] for w in DEMO_CUSTOMERS}
    since = time.time()
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        data = [
            {names["客户编号"]: {"value": r["id"]}, names["客户名称"]: {"value": r["name"]}}
            for r in chunk
        ]
        body = {
            "app_id": form[0],
            "entry_id": form[1],
            "data_list": data,
            "transaction_id": str(uuid.uuid4()),
        }
        http.post(
            f"{jdy.base_url}/api/v5/app/entry/data/batch_create", json=body, timeout=30
        ).raise_for_status()
    return measure(jdy.requests(since), len(records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int, nargs="?", default=20000, help="rows to load (20000)")
    parser.add_argument("--latency", type=float, default=0.3, help="server latency, s (0.3)")
    parser.add_argument("--naive-rows", type=int, default=3000, help="rows for the naive loop")
    parser.add_argument("--upsert", action="store_true", help="with a key widget (look-ups)")
    args = parser.parse_args()

    sandbox = start_sandbox("--latency", str(args.latency), "--companies", "1")
    try:
        with tempfile.TemporaryDirectory() as workdir:
            target = run_target(sandbox.jiandaoyun, rows(args.rows), args.upsert, Path(workdir))
        naive = run_naive(sandbox.jiandaoyun, rows(min(args.naive_rows, args.rows)))
    finally:
        sandbox.stop()

    mode = "upsert" if args.upsert else "append"
    latency = f"{args.latency * 1000:.0f} ms"
    print(f"Jiandaoyun batch_create at {latency} latency; ceiling {CEILING:,} rows/s")
    print(
        f"{'':24}{'rows':>8}{'sustained rows/s':>18}{'of ceiling':>12}{'overall rows/s':>16}"
        f"{'8303/8304/429 (steady)':>25}"
    )
    for name, r in ((f"target-jiandaoyun ({mode})", target), ("naive, 1 call at a time", naive)):
        overall = r["rows"] / r.get("wall", r["span"])
        limited = sum(r["limited"].values())
        steady = sum(r["limited_steady"].values())
        print(
            f"{name:<24}{r['rows']:>8,}{r['sustained']:>18,.0f}{r['sustained'] / CEILING:>12.1%}"
            f"{overall:>16,.0f}{f'{limited} ({steady})':>25}"
        )
    print(
        f"target: {target['calls']} batch_create calls, run {target['wall']:.1f}s "
        f"(API busy {target['span']:.1f}s); goal ≥ 95% sustained, no 8304 in steady state"
    )


if __name__ == "__main__":
    main()
