"""What keeping every customer as itself costs target-twenty, in API calls.

    .venv/bin/python benchmarks/bench_twenty_identity.py --companies 2000

Runs tap-okki into target-twenty (the OKKI mapping of meltano.yml: okkiId owner fields,
contacts that follow their company) against the sandboxes, with time scaled so the rate limits
cost no waiting, and counts Twenty's calls by kind for four runs:

1. the first load into an empty workspace;
2. an incremental run after `--changes` companies changed in OKKI (one contact removed from
   each of them too) and `--changes` // 10 deleted;
3. the same kind of incremental run with the id map deleted first (a container that starts
   empty), so ownership is read back from Twenty;
4. a full reload into the now populated workspace, id map lost as well.

Streams: companies, contacts, opportunities, follow-ups (notes and their noteTargets) and next
follow-ups (tasks and taskTargets), as meltano.yml selects and maps them.

Kinds: batch writes (60 records each), reads that find who holds a unique value or owns a row
("identity"), reads of a company's people for contacts it no longer lists ("listed
children"), deletions and updates, other (metadata, existence checks). Printed per run with the
records written and the calls per 60 records, against one call per 60 (the ceiling's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from crm_sandbox.control import RunningSandbox, start_sandbox

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def plugin_config(name: str) -> dict[str, Any]:
    """A plugin's `config` in meltano.yml (its mappings)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    for kind in ("extractors", "loaders"):
        for plugin in project["plugins"][kind]:
            if plugin["name"] == name:
                return dict(plugin.get("config") or {})
    raise LookupError(name)


def run(
    sandbox: RunningSandbox, work: Path, number: int, state: dict
) -> tuple[Counter, int, Counter]:
    tap_config = {
        **plugin_config("tap-okki"),
        "base_url": sandbox.okki.base_url,
        **sandbox.okki.credentials,
        "max_requests_per_second": 1000,
    }
    target_config = {
        **plugin_config("target-twenty"),
        "base_url": sandbox.twenty.base_url,
        **sandbox.twenty.credentials,
        "id_map_path": str(work / "ids.sqlite3"),
        "run_report_path": str(work / f"report{number}.jsonl"),
        "dead_letter_path": str(work / "dead-letters.jsonl"),
        "rate_limit_window_seconds": 0.01,
    }
    (work / "tap.json").write_text(json.dumps(tap_config))
    (work / "target.json").write_text(json.dumps(target_config))
    (work / "state.json").write_text(json.dumps(state))
    sandbox.twenty.clear_requests()
    with (work / "out.singer").open("w") as out:
        subprocess.run(
            [BIN / "tap-okki", "--config", work / "tap.json", "--state", work / "state.json"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    with (work / "out.singer").open() as stdin:
        result = subprocess.run(
            [BIN / "target-twenty", "--config", work / "target.json"],
            stdin=stdin,
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise SystemExit(f"target-twenty failed (run {number}):\n{result.stderr[-3000:]}")
    states = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    state.clear()
    state.update(states[-1] if states else {})
    lines = [json.loads(line) for line in (work / f"report{number}.jsonl").open()]
    requests = sandbox.twenty.requests()
    writes = Counter(
        r["path"].removeprefix("/rest/batch/") for r in requests if kind(r) == "batch writes"
    )
    writes.update(f"{line['stream']} records" for line in lines)
    return Counter(kind(r) for r in requests), len(lines), writes


def kind(request: dict[str, Any]) -> str:
    if request["method"] == "POST" and request["path"].startswith("/rest/batch/"):
        return "batch writes"
    if request["method"] == "GET" and "deletedAt" in request["query"]:
        return "identity reads"
    if request["method"] == "GET" and "companyId[in]" in request["query"]:
        return "listed-children reads"
    if request["method"] in ("DELETE", "PATCH"):
        return "deletions and updates"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    sandbox = start_sandbox(
        "--companies", str(args.companies), "--seed", "3", "--time-scale", "1000"
    )
    kinds = ["batch writes", "identity reads", "listed-children reads"]
    kinds += ["deletions and updates", "other"]
    print(f"{'run':<44} {'records':>8} " + " ".join(f"{k:>22}" for k in kinds) + "  calls/60")
    first_writes: Counter = Counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work, state = Path(tmp), {}
            steps = ["first load, empty workspace", "incremental", "incremental, id map lost"]
            steps.append("full reload, id map lost")
            for number, step in enumerate(steps, start=1):
                if number in (2, 3):
                    okki = sandbox.okki.records()["companies"]
                    ids = [c["company_id"] for c in okki][: args.changes]
                    sandbox.okki.post("companies/update", {"company_ids": ids, "drop_contacts": 1})
                    sandbox.okki.post("companies/delete", {"count": args.changes // 10})
                if "lost" in step:
                    for path in work.glob("ids.sqlite3*"):
                        path.unlink()
                if "full" in step:
                    state = {}
                calls, records, writes = run(sandbox, work, number, state)
                per_60 = sum(calls.values()) / max(records, 1) * 60
                row = " ".join(f"{calls[k]:>22,}" for k in kinds)
                print(f"{step:<44} {records:>8,} {row}  {per_60:8.2f}")
                if number == 1:
                    first_writes = writes
        print("first load, batch writes per object and records per stream:")
        print("  " + ", ".join(f"{k} {n:,}" for k, n in sorted(first_writes.items())))
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
