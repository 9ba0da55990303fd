"""OKKI calls per follow-up: tap-okki's `follow_ups` stream, a full run then incremental runs.

    python benchmarks/bench_follow_ups.py --companies 10000

Starts `crm-sandbox` (follow-ups generated for companies, contacts and opportunities), runs
`tap-okki` with only `follow_ups` selected, and counts the sandbox's calls against the
follow-ups emitted: first the whole history (one list over the window, no company filter: a
call per page of 100), then, after OKKI writes, edits and deletes a few, an incremental run,
which re-reads `follow_ups_lookback_days` of history (pages only) to catch backdated, edited
and deleted follow-ups. Prints both, and the time a history takes at OKKI's 10 calls/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from crm_sandbox.control import SandboxClient, start_sandbox

TAP = str(Path(sys.executable).parent / "tap-okki")
TRAILS = "/v1/dynamic/trail/list"
RATE = 10.0  # OKKI's calls per second (docs/api/okki.md §4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=10_000)
    parser.add_argument("--lookback-days", type=int, default=7)
    parser.add_argument("--changes", type=int, default=50, help="follow-ups written per side")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    sandbox = start_sandbox("--companies", str(args.companies), "--seed", str(args.seed))
    okki = sandbox.okki
    okki.knobs(extra={"rate_per_second": None})
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = {"follow_ups_lookback_days": args.lookback_days}
            config, catalog = tap_files(okki, Path(folder), settings)
            full = run(okki, config, catalog, None, Path(folder))
            live = [f for f in okki.records()["follow_ups"] if not f["delete_flag"]]
            ids = [f["trail_id"] for f in live[: 2 * args.changes]]  # the most recent ones
            companies = [c["company_id"] for c in okki.records()["companies"][: args.changes]]
            okki.post("follow_ups/create", {"company_ids": companies, "backdate_minutes": 2880})
            okki.post("follow_ups/update", {"trail_ids": ids[: args.changes]})
            okki.post("follow_ups/delete", {"trail_ids": ids[args.changes :]})
            incremental = run(okki, config, catalog, full["state"], Path(folder))
    finally:
        sandbox.stop()

    for title, result in (("full run", full), ("incremental run", incremental)):
        calls, emitted = result["calls"], result["emitted"]
        print(
            f"{title:<16} {emitted:>8,} follow-ups emitted, {calls:>6,} calls to {TRAILS}: "
            f"{calls / max(emitted, 1):.4f} calls per follow-up"
        )
    hours = full["calls"] / RATE / 3600
    print(
        f"a history of {full['emitted']:,} follow-ups ({args.companies:,} companies) reads in "
        f"{full['calls']:,} calls: {hours * 60:.1f} minutes at {RATE:g} calls/s"
    )
    print(
        f"each incremental run re-reads {args.lookback_days} days of follow-ups: "
        f"{incremental['calls']:,} calls, {incremental['calls'] / RATE:.0f} s at {RATE:g} calls/s"
    )


def tap_files(okki: SandboxClient, folder: Path, settings: dict[str, Any]) -> tuple[Path, Path]:
    """config.json and catalog.json (only follow_ups selected) for tap-okki in `folder`."""
    config = {
        "client_id": okki.credentials["client_id"],
        "client_secret": okki.credentials["client_secret"],
        "base_url": okki.base_url,
        "max_requests_per_second": 1000,
        **settings,
    }
    config_file = folder / "config.json"
    config_file.write_text(json.dumps(config))
    discovered = subprocess.run(
        [TAP, "--config", str(config_file), "--discover"],
        capture_output=True,
        text=True,
        check=True,
    )
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] == "follow_ups"
    catalog_file = folder / "catalog.json"
    catalog_file.write_text(json.dumps(catalog))
    return config_file, catalog_file


def run(
    okki: SandboxClient, config: Path, catalog: Path, state: dict | None, folder: Path
) -> dict[str, Any]:
    """One tap run: follow-ups emitted, follow-up list calls made, the final state."""
    before = okki.stats()["calls"].get(TRAILS, 0)
    command = [TAP, "--config", str(config), "--catalog", str(catalog)]
    if state is not None:
        state_file = folder / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    process = subprocess.run(command, capture_output=True, text=True)
    if process.returncode != 0:
        sys.exit(f"tap-okki failed:\n{process.stderr[-3000:]}")
    messages = [json.loads(line) for line in process.stdout.splitlines() if line.strip()]
    return {
        "emitted": sum(1 for m in messages if m["type"] == "RECORD"),
        "calls": okki.stats()["calls"].get(TRAILS, 0) - before,
        "state": [m["value"] for m in messages if m["type"] == "STATE"][-1],
    }


if __name__ == "__main__":
    main()
