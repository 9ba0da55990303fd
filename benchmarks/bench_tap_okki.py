"""Throughput of tap-okki against the OKKI sandbox at its real rate limit.

    python benchmarks/bench_tap_okki.py --companies 2000

Starts `crm-sandbox` with 200 ms latency per call and the default 10 requests/s per client,
runs `tap-okki` as a process (companies and contacts selected, as a CRM sync would), and
prints companies/s next to the ceiling the rate limit allows: rate ÷ calls per company, where
a company needs its `/v1/company/info` call plus its share of list pages. Goal: ≥ 90 %.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crm_sandbox.control import SandboxClient, start_sandbox

TAP = str(Path(sys.executable).parent / "tap-okki")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per sandbox call")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a tap setting to override, e.g. --setting detail_concurrency=6",
    )
    args = parser.parse_args()

    settings = {}
    for item in args.setting:
        name, _, value = item.partition("=")
        settings[name] = json.loads(value)
    sandbox = start_sandbox(
        "--companies", str(args.companies), "--latency", str(args.latency), "--seed", str(args.seed)
    )
    try:
        result = run_tap(sandbox.okki, args.companies, settings)
    finally:
        sandbox.stop()

    print(f"companies emitted      {result['companies']} (contacts {result['contacts']})")
    print(f"elapsed                {result['elapsed']:.1f} s (tap process, start to exit)")
    print(f"throughput             {result['speed']:.2f} companies/s")
    print(f"sandbox ceiling        {result['ceiling']:.2f} companies/s", end=" ")
    print(f"({result['rate']:g} calls/s ÷ {result['needed']:.3f} calls per company)")
    print(f"ratio                  {result['speed'] / result['ceiling']:.1%}")
    print(f"calls made per company {result['made']:.3f}; throttled answers {result['throttled']}")
    if result["companies"] != args.companies:
        sys.exit(f"expected {args.companies} companies, got {result['companies']}")


def tap_files(okki: SandboxClient, folder: Path, settings: dict[str, Any]) -> tuple[Path, Path]:
    """config.json and catalog.json (companies and contacts selected) for tap-okki in `folder`."""
    config = {
        "client_id": okki.credentials["client_id"],
        "client_secret": okki.credentials["client_secret"],
        "base_url": okki.base_url,
        **settings,
    }
    config_file = Path(folder, "config.json")
    config_file.write_text(json.dumps(config))
    catalog = json.loads(
        subprocess.run(
            [TAP, "--config", str(config_file), "--discover"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in ("companies", "contacts")
    catalog_file = Path(folder, "catalog.json")
    catalog_file.write_text(json.dumps(catalog))
    return config_file, catalog_file


def run_tap(okki: SandboxClient, expected: int, settings: dict[str, Any]) -> dict[str, Any]:
    """Sync `expected` companies with their contacts; speed against the sandbox's ceiling."""
    rate = float(okki.knobs()["extra"]["rate_per_second"])
    with tempfile.TemporaryDirectory() as folder:
        config_file, catalog_file = tap_files(okki, Path(folder), settings)
        started = time.monotonic()
        counts = run_and_count(
            [TAP, "--config", str(config_file), "--catalog", str(catalog_file)],
            Path(folder, "stderr.log"),
        )
        elapsed = time.monotonic() - started
    stats = okki.stats()
    companies = counts.get("companies", 0)
    page_size = int(settings.get("page_size", 100))
    # Per company: one detail call, and a share of the list pages (plus the run's two fixed
    # calls: OKKI's clock and the list of deleted companies).
    needed = (expected + math.ceil(expected / page_size) + 2) / expected
    made = sum(n for path, n in stats["calls"].items() if "oauth2" not in path) / max(1, companies)
    ceiling = rate / needed
    return {
        "companies": companies,
        "contacts": counts.get("contacts", 0),
        "elapsed": elapsed,
        "speed": companies / elapsed,
        "rate": rate,
        "needed": needed,
        "ceiling": ceiling,
        "made": made,
        "throttled": stats["throttled"],
    }


def run_and_count(command: list[str], stderr_file: Path) -> dict[str, int]:
    """Run the tap; count RECORD messages per stream as they stream out."""
    counts: dict[str, int] = {}
    with stderr_file.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith('{"type":"RECORD"'):
                stream = json.loads(line)["stream"]
                counts[stream] = counts.get(stream, 0) + 1
        if process.wait() != 0:
            sys.exit(f"tap-okki failed:\n{stderr_file.read_text()[-3000:]}")
    return counts


if __name__ == "__main__":
    main()
