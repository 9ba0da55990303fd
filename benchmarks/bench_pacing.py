"""Pacing against each server's limiter when the budget is not ours alone (issue 20).

    .venv/bin/python benchmarks/bench_pacing.py            # about 3 minutes
    .venv/bin/python benchmarks/bench_pacing.py --chart benchmarks/results/pacing.png

Every scenario runs the real plugin processes against the sandboxes with time compressed
(`--time-scale`; limits, latency and Retry-After are divided by it, figures are given in API
time) and measures from the sandbox's request log:

- ratio: what was loaded per API minute (second) over the whole run, first call to last,
  divided by the ceiling the sandbox's limits allow in the same run;
- 429 (or Jiandaoyun 8303/8304) answers in total, and after the first 10 % of the run.

Scenarios: target-twenty on a full budget, on a spent one (`start_spent`), two target-twenty
processes on one key sharing it (`rate_budget_dir`), a plan of 50 calls a minute that the server
announces only in headers; target-jiandaoyun with half its company budget used by another
client (`company_used_by_others`); two tap-okki processes on one client.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bench_tap_okki
import bench_target_jiandaoyun as jdy_bench

from crm_sandbox.control import RunningSandbox, SandboxClient, start_sandbox

BIN = Path(sys.executable).parent
TWENTY_BATCH, JIANDAOYUN_BATCH = 60, 100


@dataclass
class Result:
    name: str
    loaded: int  # records (targets) or data calls (taps)
    unit: str
    per: str  # "min" or "s": the API time `rate` and `ceiling` count per
    rate: float  # loaded per `per` of API time
    ceiling: float
    throttled: int
    throttled_steady: int
    curve: list[tuple[float, int]]  # (API time since the first call, loaded so far)

    @property
    def ratio(self) -> float:
        return self.rate / self.ceiling


def measure(name: str, calls: list[dict], scale: float, per: float, ceiling: float) -> Result:
    """`calls`: the log rows of the calls that load (and of their throttled tries)."""
    calls = sorted(calls, key=lambda c: c["at"])
    ok = [c for c in calls if c["status"] < 300 and c.get("code") in (None, 0)]
    throttled = [c for c in calls if c not in ok]
    start, end = calls[0]["at"], ok[-1]["at"]
    steady_from = start + 0.1 * (end - start)
    sizes = [c["batch_size"] or 1 for c in ok]
    curve, total = [], 0
    for call, size in zip(ok, sizes, strict=True):
        total += size
        curve.append(((call["at"] - start) * scale, total))
    # Per `per` API seconds; the first call's load is counted at the start of the span.
    rate = (total - sizes[0]) / ((end - start) * scale / per)
    steady = sum(c["at"] >= steady_from for c in throttled)
    unit = "records" if sizes[0] > 1 else "calls"
    per_text = "min" if per == 60 else "s"
    return Result(name, total, unit, per_text, rate, ceiling, len(throttled), steady, curve)


def named_rows(stream: str, count: int) -> Iterator[str]:
    """Singer lines of `count` new records of `stream`, a key and a name each."""
    schema = {
        "type": "SCHEMA",
        "stream": stream,
        "key_properties": ["id"],
        "schema": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        },
    }
    yield json.dumps(schema)
    for i in range(1, count + 1):
        record = {"id": i, "name": f"{stream} {i}"}
        yield json.dumps({"type": "RECORD", "stream": stream, "record": record})


def start_target(
    plugin: str, config: dict, lines: Iterator[str], workdir: Path
) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config, ensure_ascii=False))
    (workdir / "input.singer").write_text("\n".join(lines) + "\n")
    return subprocess.Popen(
        [str(BIN / plugin), "--config", str(workdir / "config.json")],
        stdin=(workdir / "input.singer").open(),
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "stderr.log").open("w"),
    )


def wait_all(processes: list[subprocess.Popen], workdirs: list[Path]) -> None:
    for process, workdir in zip(processes, workdirs, strict=True):
        if process.wait() != 0:
            sys.exit(f"{workdir.name} failed:\n{(workdir / 'stderr.log').read_text()[-3000:]}")


# Twenty -----------------------------------------------------------------------------------------


def twenty(
    sandbox: RunningSandbox,
    name: str,
    records: int,
    scale: float,
    folder: Path,
    processes: int = 1,
    knobs: dict | None = None,
) -> Result:
    api: SandboxClient = sandbox.twenty
    api.reset()
    api.knobs(extra={"start_spent": False, "announce_limits": False, "limit_per_minute": 100})
    api.knobs(extra=knobs or {})
    per_minute = int(api.knobs()["extra"]["limit_per_minute"])
    api.clear_requests()
    budgets = folder / "budgets" / name.replace(" ", "-")
    started, workdirs = [], []
    each = records // processes
    # Two pipelines on one workspace: one loads companies, the other opportunities. (Both
    # objects are empty at the start, so neither reads Twenty before it writes.)
    objects = ["companies", "opportunities"][:processes]
    for n, plural in enumerate(objects):
        workdir = folder / f"{name.replace(' ', '-')}-{n}"
        config = {
            "api_key": api.credentials["api_key"],
            "base_url": api.base_url,
            "rate_limit_window_seconds": 60 / scale,
            "id_map_path": str(workdir / "ids.sqlite3"),
            "dead_letter_path": str(workdir / "dead-letters.jsonl"),
            "rate_budget_dir": str(budgets),
            "mappings": {plural: {"fields": {"name": "name"}}},
        }
        lines = named_rows(plural, each)
        started.append(start_target("target-twenty", config, lines, workdir))
        workdirs.append(workdir)
    wait_all(started, workdirs)
    calls = [r for r in api.requests() if r["path"].startswith("/rest/")]
    stored = api.records()
    loaded = sum(len(stored[plural]) for plural in objects)
    if loaded != each * processes:
        sys.exit(f"{name}: {loaded} rows in Twenty for {each * processes} records")
    writes = [r for r in calls if r["path"] in {f"/rest/batch/{p}" for p in objects}]
    result = measure(f"target-twenty, {name}", writes, scale, 60.0, per_minute * TWENTY_BATCH)
    # Every call of the key counts against its budget, reads too: say if any were throttled.
    result.throttled = sum(r["status"] == 429 for r in calls)
    return result


# Jiandaoyun -------------------------------------------------------------------------------------


def jiandaoyun(sandbox: RunningSandbox, rows: int, scale: float, folder: Path) -> Result:
    api = sandbox.jiandaoyun
    api.knobs(extra={"company_used_by_others": 25})  # of the company's 50 calls a second
    app, entry = jdy_bench.new_form(api)
    since = time.time()
    config = {
        "api_key": api.credentials["api_key"],
        "base_url": api.base_url,
        "forms": {"customers": {"app_id": app, "entry_id": entry, "fields": jdy_bench.FIELDS}},
        "dead_letter_path": str(folder / "jdy" / "dead-letters.jsonl"),
        "rate_budget_dir": str(folder / "budgets" / "jiandaoyun"),
        "batch_requests_per_second": 10 * scale,
        "single_write_requests_per_second": 20 * scale,
        "read_requests_per_second": 30 * scale,
        "company_requests_per_second": 50 * scale,
    }
    properties = {name: {} for name in jdy_bench.FIELDS}
    schema = {"type": "object", "properties": properties}
    head = {"type": "SCHEMA", "stream": "customers", "key_properties": ["id"], "schema": schema}
    lines = [json.dumps(head)] + [
        json.dumps({"type": "RECORD", "stream": "customers", "record": jdy_bench.row(i)})
        for i in range(rows)
    ]
    workdir = folder / "jdy"
    wait_all([start_target("target-jiandaoyun", config, iter(lines), workdir)], [workdir])
    creates = [r for r in api.requests(since) if r["path"].endswith("batch_create")]
    stored = len(api.records()["forms"][f"{app}/{entry}"])
    if stored != rows:
        sys.exit(f"jiandaoyun: {stored} rows for {rows} records")
    name = "target-jiandaoyun, company budget half used by another client"
    return measure(name, creates, scale, 1.0, 10 * JIANDAOYUN_BATCH)


# OKKI -------------------------------------------------------------------------------------------


def two_taps(sandbox: RunningSandbox, scale: float, folder: Path) -> Result:
    okki = sandbox.okki
    okki.clear_requests()
    settings = {
        "max_requests_per_second": 9.5 * scale,
        "rate_budget_dir": str(folder / "budgets" / "okki"),
    }
    taps = []
    for n in range(2):
        workdir = folder / f"tap-{n}"
        workdir.mkdir(parents=True)
        config, catalog = bench_tap_okki.tap_files(okki, workdir, settings)
        command = [str(BIN / "tap-okki"), "--config", str(config), "--catalog", str(catalog)]
        log = (workdir / "stderr.log").open("w")
        taps.append((subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log), workdir))
    wait_all([p for p, _ in taps], [w for _, w in taps])
    rate = float(okki.knobs()["extra"]["rate_per_second"])
    calls = [r for r in okki.requests() if "oauth2" not in r["path"]]
    return measure("two tap-okki processes on one client", calls, scale, 1.0, rate)


# Report -----------------------------------------------------------------------------------------


def draw(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4), dpi=90)
    for result in results:
        if result.name.startswith("target-twenty"):
            xs = [0.0] + [t / 60 for t, _ in result.curve]
            ys = [0] + [n for _, n in result.curve]
            axis.plot(xs, ys, label=f"{result.name} ({result.ratio:.1%})")
    axis.set_title("target-twenty, records loaded (time-scaled)")
    axis.set_xlabel("API minutes")
    axis.set_ylabel("records")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def sandbox_at(scale: float, companies: int) -> RunningSandbox:
    """The three emulators with time `scale`d and 300 ms of latency (API time) per call."""
    return start_sandbox(
        *("--companies", str(companies), "--seed", "20", "--time-scale", str(scale)),
        *("--latency", str(0.3 / scale)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=20.0, help="Twenty's")
    parser.add_argument(
        "--other-time-scale",
        type=float,
        default=2.0,
        help="Jiandaoyun's and OKKI's (CPU-bound above)",
    )
    parser.add_argument("--records", type=int, default=24_000, help="Twenty, per scenario")
    parser.add_argument("--rows", type=int, default=30_000, help="Jiandaoyun")
    parser.add_argument("--companies", type=int, default=400, help="OKKI account")
    parser.add_argument("--chart", type=Path, help="a PNG of the Twenty curves (matplotlib)")
    args = parser.parse_args()
    scale, other = args.time_scale, args.other_time_scale
    sandbox = sandbox_at(scale, args.companies)
    others = sandbox_at(other, args.companies)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pacing-") as tmp:
            folder = Path(tmp)
            results.append(twenty(sandbox, "full budget", args.records, scale, folder))
            results.append(
                twenty(
                    sandbox,
                    "spent budget",
                    args.records,
                    scale,
                    folder,
                    knobs={"start_spent": True},
                )
            )
            results.append(
                twenty(sandbox, "two processes, one key", args.records, scale, folder, processes=2)
            )
            plan = {"limit_per_minute": 50, "announce_limits": True}
            results.append(
                twenty(
                    sandbox,
                    "plan of 50/min, in headers only",
                    args.records // 2,
                    scale,
                    folder,
                    knobs=plan,
                )
            )
            results.append(jiandaoyun(others, args.rows, other, folder))
            results.append(two_taps(others, other, folder))
    finally:
        sandbox.stop()
        others.stop()
    print(
        f"time scale {scale:g} (Twenty), {other:g} (Jiandaoyun, OKKI); ratio = loaded per API "
        "time over the ceiling of the same run"
    )
    print(
        f"{'scenario':66} {'loaded':>16} {'rate':>12} {'ceiling':>9} {'ratio':>7} 429s (after 10 %)"
    )
    for r in results:
        print(
            f"{r.name:66} {r.loaded:>8,} {r.unit:7} {r.rate:>8,.1f}/{r.per:3} {r.ceiling:>9,.0f} "
            f"{r.ratio:>7.1%} {r.throttled} ({r.throttled_steady})"
        )
    if args.chart:
        draw(results, args.chart)
        print(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
