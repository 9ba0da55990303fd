"""`make bench`: every benchmark of the three plugins in one run, one table, one chart.

Each row is measured in the same run as what it is compared with: the API's ceiling and a
naive loop (throughput), a do-nothing singer-sdk tap or target on the same records (CPU), the
same plugin on a small import (memory), the ceiling's minimum time (end to end). The table is
printed and written, with the chart, to benchmarks/results/.

    make bench                                   # full sizes, about 50 minutes
    make bench-quick                             # small sizes, a few minutes
    .venv/bin/python benchmarks/suite.py [--quick]

The per-plugin benchmarks (bench_tap_okki.py, bench_target_twenty.py,
bench_target_jiandaoyun.py) measure the throughput rows; this module adds the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

import bench_tap_okki as okki_bench
import bench_target_jiandaoyun as jdy_bench
import bench_target_twenty as twenty_bench
import yaml
from common import UNLIMITED, ProcessRun, bench_executable, check, lift_limits, run_process

from crm_sandbox.control import RunningSandbox, start_sandbox

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HERE = Path(__file__).resolve().parent
NULL_TARGET = [sys.executable, str(HERE / "null_target.py")]
NULL_TAP = [sys.executable, str(HERE / "null_tap.py")]


@dataclass(frozen=True)
class Sizes:
    twenty_records: int  # throughput at the ceiling
    twenty_naive_batches: int
    jiandaoyun_rows: int
    jiandaoyun_naive_rows: int
    okki_companies: int
    cpu_records: int  # each target, limits lifted
    cpu_companies: int  # the tap, limits lifted
    cpu_repeats: int  # alternating runs of plugin and floor; the least CPU of each counts
    memory_small: int  # records into each target
    memory_large: int
    memory_small_companies: int  # companies read by the tap (each with ~2 contacts)
    memory_large_companies: int
    e2e_companies: int
    e2e_time_scale: float


FULL = Sizes(
    twenty_records=30_000,
    twenty_naive_batches=40,
    jiandaoyun_rows=20_000,
    jiandaoyun_naive_rows=3_000,
    okki_companies=2_000,
    cpu_records=100_000,
    cpu_companies=10_000,
    cpu_repeats=3,
    memory_small=10_000,
    memory_large=1_000_000,
    memory_small_companies=3_300,
    memory_large_companies=330_000,
    e2e_companies=100_000,
    e2e_time_scale=20,
)
QUICK = Sizes(
    twenty_records=15_000,
    twenty_naive_batches=20,
    jiandaoyun_rows=5_000,
    jiandaoyun_naive_rows=1_000,
    okki_companies=200,
    cpu_records=5_000,
    cpu_companies=500,
    cpu_repeats=1,
    memory_small=2_000,
    memory_large=20_000,
    memory_small_companies=300,
    memory_large_companies=3_000,
    e2e_companies=1_000,
    e2e_time_scale=20,
)
TWENTY_SCALE = 10.0  # Twenty's minute windows pass ten times faster
TWENTY_LATENCY = 0.8  # seconds of API time
JDY_LATENCY = 0.3
OKKI_LATENCY = 0.2


@dataclass
class Row:
    benchmark: str
    measured: str
    comparison: str
    ratio: str
    goal: str
    met: bool | None


COMMANDS: list[str] = []  # every plugin run, as a person would type it
CALL_LOGS: dict[
    str, dict[str, list[dict]]
] = {}  # API → "target"/"naive" → its calls, for the chart


def ran(command: list[str], note: str) -> None:
    """Note a plugin run: its command line (temporary files by name only) and its input."""
    shown = [Path(command[0]).name]
    for part in command[1:]:
        path = Path(part)
        if path.is_relative_to(ROOT):
            shown.append(str(path.relative_to(ROOT)))
        else:
            shown.append(path.name if os.sep in part else shlex.quote(part))
    line = f"{' '.join(shown)}   # {note}"
    if line not in COMMANDS:  # repeated runs are listed once
        COMMANDS.append(line)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# Throughput at the ceilings -----------------------------------------------------------------


def twenty_throughput(sizes: Sizes) -> list[Row]:
    scale = TWENTY_SCALE
    sandbox = start_sandbox(
        "--seed", "1", "--time-scale", str(scale), "--latency", str(TWENTY_LATENCY / scale)
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-twenty-") as workdir:
            target = twenty_bench.run_target(
                sandbox.twenty, sizes.twenty_records, scale, Path(workdir)
            )
        ran(
            ["target-twenty", "--config", "config.json"],
            f"{sizes.twenty_records:,} companies from a file; sandbox --time-scale {scale:g} "
            f"--latency {TWENTY_LATENCY / scale:g}",
        )
        target_calls = sandbox.twenty.requests()
        sandbox.twenty.reset()
        naive = twenty_bench.run_naive(sandbox.twenty, sizes.twenty_naive_batches, scale)
        COMMANDS.append(
            f"bench_target_twenty.run_naive   # {sizes.twenty_naive_batches} batches of 60, "
            "one at a time, 600 ms (API time) pause"
        )
        naive_calls = sandbox.twenty.requests()
    finally:
        sandbox.stop()
    ceiling = twenty_bench.CEILING
    sustained = target["sustained"] or target["overall"]
    row = Row(
        f"target-twenty throughput: {target['records']:,} records, 800 ms latency, time ×{scale:g}",
        f"{sustained:,.0f} records/min sustained ({target['overall']:,.0f} overall); "
        f"429s: {target['throttled_later']} after the first window, {target['throttled']} in all",
        f"ceiling {ceiling:,}/min; naive loop (60 a call, 600 ms pause) "
        f"{naive['overall']:,.0f}/min = {naive['overall'] / ceiling:.0%}, "
        f"{naive['throttled']} 429s",
        f"{sustained / ceiling:.1%}",
        "≥ 97%, no 429 in steady state",
        sustained / ceiling >= 0.97 and target["throttled_later"] == 0,
    )
    CALL_LOGS["twenty"] = {"target": target_calls, "naive": naive_calls}
    return [row]


def jiandaoyun_throughput(sizes: Sizes) -> list[Row]:
    sandbox = start_sandbox("--latency", str(JDY_LATENCY), "--companies", "1")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-jdy-") as workdir:
            target = jdy_bench.run_target(
                sandbox.jiandaoyun, jdy_bench.rows(sizes.jiandaoyun_rows), False, Path(workdir)
            )
        ran(
            ["target-jiandaoyun", "--config", "config.json"],
            f"{sizes.jiandaoyun_rows:,} rows; sandbox --latency {JDY_LATENCY:g}",
        )
        between = time.time()
        naive = jdy_bench.run_naive(sandbox.jiandaoyun, jdy_bench.rows(sizes.jiandaoyun_naive_rows))
        COMMANDS.append(
            f"bench_target_jiandaoyun.run_naive   # {sizes.jiandaoyun_naive_rows:,} rows, "
            "one batch_create at a time"
        )
        calls = [c for c in sandbox.jiandaoyun.requests() if c["path"].endswith("batch_create")]
    finally:
        sandbox.stop()
    ceiling = jdy_bench.CEILING
    naive_rate = naive["rows"] / naive["span"]  # one call at a time: no burst to leave out
    limited = "/".join(str(target["limited"].get(code, 0)) for code in ("8303", "8304", "429"))
    row = Row(
        f"target-jiandaoyun throughput: {target['rows']:,} rows, 300 ms latency",
        f"{target['sustained']:,.0f} rows/s sustained "
        f"({target['rows'] / target['wall']:,.0f} over the whole run); 8303/8304/429: "
        f"{limited}, {sum(target['limited_steady'].values())} after the first second",
        f"ceiling {ceiling:,}/s; naive loop (one call at a time) {naive_rate:,.0f}/s"
        f" = {naive_rate / ceiling:.0%}",
        f"{target['sustained'] / ceiling:.1%}",
        "≥ 95%",
        target["sustained"] / ceiling >= 0.95,
    )
    CALL_LOGS["jiandaoyun"] = {
        "target": [c for c in calls if c["at"] < between],
        "naive": [c for c in calls if c["at"] >= between],
    }
    return [row]


def okki_throughput(sizes: Sizes) -> list[Row]:
    sandbox = start_sandbox(
        "--companies", str(sizes.okki_companies), "--latency", str(OKKI_LATENCY), "--seed", "7"
    )
    try:
        result = okki_bench.run_tap(sandbox.okki, sizes.okki_companies, {})
    finally:
        sandbox.stop()
    ran(
        ["tap-okki", "--config", "config.json", "--catalog", "catalog.json"],
        f"{sizes.okki_companies:,} companies with contacts; sandbox --latency {OKKI_LATENCY:g}",
    )
    ratio = result["speed"] / result["ceiling"]
    row = Row(
        f"tap-okki throughput: {result['companies']:,} companies "
        f"(+{result['contacts']:,} contacts), 200 ms latency",
        f"{result['speed']:.2f} companies/s (process start to exit); "
        f"{result['made']:.3f} calls per company, {result['throttled']} throttled",
        f"ceiling {result['ceiling']:.2f} companies/s ({result['rate']:g} calls/s ÷ "
        f"{result['needed']:.3f} calls per company)",
        f"{ratio:.1%}",
        "≥ 90%",
        ratio >= 0.9,
    )
    return [row]


# Targets with the limits lifted: CPU and memory ---------------------------------------------


def twenty_run(sandbox: RunningSandbox, records: int, workdir: Path) -> ProcessRun:
    sandbox.twenty.reset()
    config = twenty_bench.target_config(sandbox.twenty, 1.0, workdir)
    config["max_requests_per_window"] = UNLIMITED
    command = [bench_executable("target-twenty"), "--config", write_json(workdir, config)]
    run = run_process(command, workdir / "stderr.log", twenty_bench.singer_lines(records))
    check(run, "target-twenty", workdir / "stderr.log")
    stored = sandbox.twenty.stats()["companies"]["created"]
    assert stored == records, f"{stored} companies in Twenty for {records} records"
    ran(command, f"{records:,} companies (generated into a file) on stdin; limits lifted")
    return run


FIELDS = jdy_bench.FIELDS


def jiandaoyun_run(sandbox: RunningSandbox, records: int, workdir: Path) -> ProcessRun:
    jdy = sandbox.jiandaoyun
    jdy.reset()
    app_id, entry_id = jdy_bench.new_form(jdy)
    config = {
        "api_key": jdy.credentials["api_key"],
        "base_url": jdy.base_url,
        "forms": {"customers": {"app_id": app_id, "entry_id": entry_id, "fields": FIELDS}},
        "dead_letter_path": str(workdir / "dead-letters.jsonl"),
        "batch_requests_per_second": UNLIMITED,
        "single_write_requests_per_second": UNLIMITED,
        "read_requests_per_second": UNLIMITED,
        "company_requests_per_second": UNLIMITED,
    }
    command = [bench_executable("target-jiandaoyun"), "--config", write_json(workdir, config)]
    run = run_process(command, workdir / "stderr.log", jiandaoyun_lines(records))
    check(run, "target-jiandaoyun", workdir / "stderr.log")
    stored = jdy.stats()["rows"][f"{app_id}/{entry_id}"]
    assert stored == records, f"{stored} rows in Jiandaoyun for {records} records"
    ran(command, f"{records:,} rows (generated into a file) on stdin; limits lifted")
    return run


def null_target_run(lines: Iterator[str], records: int, workdir: Path) -> ProcessRun:
    command = [*NULL_TARGET, "--config", write_json(workdir, {})]
    run = run_process(command, workdir / "null.log", lines)
    check(run, "the do-nothing target", workdir / "null.log")
    ran(command, f"the same {records:,} records")
    return run


def jiandaoyun_lines(count: int) -> Iterator[str]:
    """bench_target_jiandaoyun.row(i) for each i as Singer messages, generated one at a time."""
    schema = {"type": "object", "properties": {name: {} for name in jdy_bench.FIELDS}}
    message = {"type": "SCHEMA", "stream": "customers", "key_properties": ["id"], "schema": schema}
    yield json.dumps(message) + "\n"
    for i in range(count):
        row = jdy_bench.row(i)
        yield json.dumps({"type": "RECORD", "stream": "customers", "record": row}) + "\n"
        if (i + 1) % 1000 == 0:
            yield json.dumps({"type": "STATE", "value": {"customers": i + 1}}) + "\n"


def cpu_row(
    name: str, records: int, ours: list[ProcessRun], floor: list[ProcessRun], floor_name: str
) -> Row:
    """CPU per record against the floor: the least CPU of each over alternating runs (other
    processes on the machine only ever add to a run's CPU time)."""
    mine, base = min(r.cpu for r in ours), min(r.cpu for r in floor)
    runs = f"least of {len(ours)} runs; " if len(ours) > 1 else ""
    return Row(
        f"{name} CPU cost: {records:,} records, limits lifted, no latency",
        f"{records / mine:,.0f} records per CPU-second ({runs}{mine:.1f} CPU-s, "
        f"{min(r.wall for r in ours):.1f} s wall)",
        f"{floor_name}: {records / base:,.0f} records per CPU-second ({base:.1f} CPU-s)",
        f"{mine / base:.2f}× the floor's CPU per record",
        "≤ 2×",
        mine / base <= 2.0,
    )


def memory_row(name: str, unit: str, small: tuple[int, float], large: tuple[int, float]) -> Row:
    growth = large[1] / small[1]
    return Row(
        f"{name} memory: limits lifted",
        f"{large[1]:.0f} MB peak RSS over {large[0]:,} {unit}",
        f"{small[1]:.0f} MB over {small[0]:,} {unit}",
        f"{growth:.2f}× for {large[0] / small[0]:,.0f}× the {unit}",
        "< 200 MB, flat",
        large[1] < 200 and growth < 1.25,
    )


def targets_lifted(sizes: Sizes) -> list[Row]:
    rows = []
    for name, run, lines in (
        ("target-twenty", twenty_run, twenty_bench.singer_lines),
        ("target-jiandaoyun", jiandaoyun_run, jiandaoyun_lines),
    ):
        # A sandbox for each target: one that has just stored the other target's million
        # records stays busy for a while, and on two cores that inflated the next runs' CPU
        # (target-jiandaoyun's first run 7.5 CPU-s against 4.4 later, the floor's 4.0 against 2.9).
        sandbox = start_sandbox("--companies", "1", "--seed", "1")
        lift_limits(sandbox)
        try:
            say(f"{name}: CPU ({sizes.cpu_records:,} records, and the do-nothing target)")
            ours, floor = [], []
            for _ in range(sizes.cpu_repeats):
                with tempfile.TemporaryDirectory(prefix="bench-cpu-") as folder:
                    records, workdir = sizes.cpu_records, Path(folder)
                    ours.append(run(sandbox, records, workdir))
                    floor.append(null_target_run(lines(records), records, workdir))
                say(f"  {ours[-1].cpu:.2f} CPU-s, the floor {floor[-1].cpu:.2f} CPU-s")
            rows.append(cpu_row(name, sizes.cpu_records, ours, floor, "do-nothing SDK target"))
            peaks = []
            for records in (sizes.memory_small, sizes.memory_large):
                say(f"{name}: memory over {records:,} records")
                with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
                    peaks.append((records, run(sandbox, records, Path(folder)).peak_rss_mb))
                say(f"  {peaks[-1][1]:.0f} MB")
            rows.append(memory_row(name, "records", peaks[0], peaks[1]))
        finally:
            sandbox.stop()
    return rows


# The tap with the limits lifted -------------------------------------------------------------


class TapOutput:
    """Counts tap-okki's records per stream; keeps them, one file per stream, in `folder`."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.counts: dict[str, int] = {}
        self.schemas: dict[str, dict] = {}
        self._files: dict[str, TextIO] = {}

    def on_line(self, line: str) -> None:
        if not line.startswith(('{"type":"RECORD"', '{"type":"SCHEMA"')):
            return
        message = json.loads(line)
        stream = message["stream"]
        if message["type"] == "SCHEMA":
            self.schemas.setdefault(stream, message)
            return
        self.counts[stream] = self.counts.get(stream, 0) + 1
        if self.folder is not None:
            if stream not in self._files:
                self._files[stream] = (self.folder / f"{stream}.jsonl").open("w", encoding="utf-8")
            self._files[stream].write(json.dumps(message["record"], ensure_ascii=False) + "\n")

    def close(self) -> None:
        for file in self._files.values():
            file.close()

    @property
    def records(self) -> int:
        return sum(self.counts.values())


def tap_run(companies: int, workdir: Path, keep: bool) -> tuple[ProcessRun, TapOutput]:
    """tap-okki over a sandbox of `companies`, limits lifted; keep its records if asked."""
    say(f"tap-okki: generating {companies:,} OKKI companies")
    sandbox = start_sandbox("--companies", str(companies), "--seed", "7", timeout=1800)
    lift_limits(sandbox)
    try:
        settings = {"max_requests_per_second": UNLIMITED}
        config, catalog = okki_bench.tap_files(sandbox.okki, workdir, settings)
        command = [bench_executable("tap-okki"), "--config", str(config), "--catalog", str(catalog)]
        output = TapOutput(workdir if keep else None)
        run = run_process(command, workdir / "stderr.log", on_line=output.on_line)
        output.close()
        check(run, "tap-okki", workdir / "stderr.log")
    finally:
        sandbox.stop()
    assert output.counts.get("companies") == companies, f"tap-okki emitted {output.counts}"
    ran(command, f"{companies:,} companies with contacts; limits lifted")
    return run, output


def tap_lifted(sizes: Sizes) -> list[Row]:
    say(f"tap-okki: CPU ({sizes.cpu_companies:,} companies, and the do-nothing tap)")
    ours: list[ProcessRun] = []
    floor: list[ProcessRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-tap-") as folder:
        workdir = Path(folder)
        for n in range(sizes.cpu_repeats):
            run, output = tap_run(sizes.cpu_companies, workdir, keep=n == 0)
            ours.append(run)
            if n == 0:
                kept = output
                streams = {
                    stream: {
                        "path": str(workdir / f"{stream}.jsonl"),
                        "schema": output.schemas[stream]["schema"],
                        "key_properties": output.schemas[stream].get("key_properties", []),
                    }
                    for stream in output.counts
                }
                config = write_json(workdir, {"streams": streams}, "null.json")
                command = [*NULL_TAP, "--config", config]
            emitted = TapOutput()
            floor.append(run_process(command, workdir / "null.log", on_line=emitted.on_line))
            check(floor[-1], "the do-nothing tap", workdir / "null.log")
            assert emitted.counts == kept.counts, f"{emitted.counts} != {kept.counts}"
            ran(command, "the same records, read from files tap-okki's output was saved to")
            say(f"  {ours[-1].cpu:.2f} CPU-s, the floor {floor[-1].cpu:.2f} CPU-s")
    rows = [cpu_row("tap-okki", kept.records, ours, floor, "do-nothing SDK tap")]
    peaks = []
    for companies in (sizes.memory_small_companies, sizes.memory_large_companies):
        say(f"tap-okki: memory over {companies:,} companies")
        with tempfile.TemporaryDirectory(prefix="bench-tap-") as folder:
            run, output = tap_run(companies, Path(folder), keep=False)
        peaks.append((output.records, run.peak_rss_mb))
        say(f"  {run.peak_rss_mb:.0f} MB over {output.records:,} records in {run.wall:.0f} s")
    rows.append(memory_row("tap-okki", "records", peaks[0], peaks[1]))
    return rows


# End to end -----------------------------------------------------------------------------------


def end_to_end(sizes: Sizes) -> list[Row]:
    """`meltano run tap-okki target-twenty` on the dev environment, pointed at a sandbox."""
    meltano = shutil.which("meltano") or str(ROOT / ".venv-meltano" / "bin" / "meltano")
    if not (ROOT / "meltano.yml").exists() or not Path(meltano).exists():
        raise SystemExit("meltano.yml or Meltano is missing: run `make bench` (it installs both)")
    scale = sizes.e2e_time_scale
    say(f"meltano run tap-okki target-twenty: {sizes.e2e_companies:,} companies, time ×{scale:g}")
    sandbox = start_sandbox(
        "--companies", str(sizes.e2e_companies), "--seed", "7", "--time-scale", str(scale),
        timeout=1800,
    )  # fmt: skip
    settings = {
        "tap-okki": {"base_url": sandbox.okki.base_url, "max_requests_per_second": 9.5 * scale},
        "target-twenty": {
            "base_url": sandbox.twenty.base_url,
            "rate_limit_window_seconds": 60 / scale,
        },
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as folder:
            project = meltano_project(Path(folder), settings)
            env = {
                **os.environ,
                "MELTANO_ENVIRONMENT": "dev",
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
                "MELTANO_STATE_BACKEND_URI": f"file://{folder}/state",
                "TARGET_TWENTY_ID_MAP_PATH": f"{folder}/ids.sqlite3",
                "TARGET_TWENTY_DEAD_LETTER_PATH": f"{folder}/dead-letters.jsonl",
            }
            subprocess.run([meltano, "install"], cwd=ROOT, env=env, check=True, capture_output=True)
            # Creates the copy's system database, so the timed run does not.
            subprocess.run([meltano, "state", "list"], cwd=project, env=env, capture_output=True)
            command = [meltano, "run", "tap-okki", "target-twenty"]
            log = Path(folder, "meltano.log")
            started = time.monotonic()
            with log.open("w") as out:
                done = subprocess.run(command, cwd=project, env=env, stdout=out, stderr=out)
            total = time.monotonic() - started
            if done.returncode != 0:
                raise SystemExit(f"meltano run failed:\n{log.read_text()[-3000:]}")
        okki, twenty = sandbox.okki.stats(), sandbox.twenty.stats()
        rate = float(sandbox.okki.knobs()["extra"]["rate_per_second"])
    finally:
        sandbox.stop()
    shown = "; ".join(
        f"{name} " + " ".join(f"{k}={v:g}" for k, v in values.items() if isinstance(v, float))
        for name, values in settings.items()
    )
    ran(
        ["meltano", "run", "tap-okki", "target-twenty"],
        f"environment dev plus {shown}; sandbox --companies {sizes.e2e_companies} "
        f"--time-scale {scale:g}",
    )
    # The fewest calls each API needs, at its rate, after the full bucket it starts with.
    page = 100
    okki_calls = (
        okki["companies"] + math.ceil(okki["companies"] / page)
        + math.ceil(okki["opportunities"] / page) + 2
    )  # fmt: skip
    okki_seconds = max(0.0, okki_calls - rate) / rate / scale
    objects = {name: c for name, c in twenty.items() if isinstance(c, dict)}
    loaded = {name: c["created"] + c["updated"] for name, c in objects.items()}
    twenty_calls = sum(math.ceil(n / 60) for n in loaded.values())
    twenty_seconds = max(0, twenty_calls - 100) / 100 * 60 / scale
    minimum = max(okki_seconds, twenty_seconds)
    shown = ", ".join(f"{n:,} {name}" for name, n in loaded.items() if n)
    row = Row(
        f"end to end: meltano run tap-okki target-twenty, {sizes.e2e_companies:,} companies, "
        f"time ×{scale:g}",
        f"{total:.0f} s real = {total * scale / 60:.0f} min API time; loaded {shown}",
        f"ceiling's minimum {minimum:.0f} s real (OKKI {okki_calls:,} calls at {rate:g}/s: "
        f"{okki_seconds:.0f} s; Twenty {twenty_calls:,} calls at 100/min: {twenty_seconds:.0f} s)",
        f"{minimum / total:.1%} of the fastest possible",
        "—",
        None,
    )
    return [row]


def meltano_project(folder: Path, settings: dict[str, dict[str, Any]]) -> Path:
    """The project's meltano.yml, copied to `folder` with `settings` added to its `dev`
    environment, beside the project's own .meltano (its installed plugins).

    Not environment variables: Meltano 4.4.1 reads a `kind: decimal` setting from one as a
    Decimal that it then cannot write into the plugin's config (TypeError, the run fails),
    and the paces that time scaling changes are decimals.
    """
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    dev = next(env for env in project["environments"] if env["name"] == "dev")
    for plugins in dev.setdefault("config", {}).setdefault("plugins", {}).values():
        for plugin in plugins:
            plugin.setdefault("config", {}).update(settings.get(plugin["name"], {}))
    (folder / "meltano.yml").write_text(json.dumps(project, ensure_ascii=False, indent=1))
    # Installed plugins are shared; run files and the system database are this run's own (a
    # run elsewhere in the project, a test say, deletes its files in .meltano/run/).
    (folder / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):
        (folder / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    return folder


# Chart and table ------------------------------------------------------------------------------


def chart(twenty: dict[str, list[dict]], jiandaoyun: dict[str, list[dict]], path: Path) -> None:
    """Records loaded over time, target and naive loop, against the ceiling's line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=90)
    panels = (
        (left, twenty, "Twenty (time-scaled ×10)", "API minutes", TWENTY_SCALE / 60, 6000, "min"),
        (right, jiandaoyun, "Jiandaoyun", "seconds", 1.0, 1000, "s"),
    )
    for axis, calls, title, unit, to_unit, per_unit, per in panels:
        end = 0.0
        for label, style in (("target", "-"), ("naive", "--")):
            ok = sorted((c for c in calls[label] if c["status"] < 300), key=lambda c: c["at"])
            if not ok:
                continue
            start = ok[0]["at"]
            xs, ys, total = [0.0], [0], 0
            for c in ok:
                total += c["batch_size"] or 0
                xs.append((c["at"] + c["duration_ms"] / 1000 - start) * to_unit)
                ys.append(total)
            end = max(end, xs[-1])
            name = "target" if label == "target" else "naive loop"
            axis.plot(xs, ys, style, label=f"{name}: {total:,} records")
        # The most the rate limit lets through: a full bucket at once, then its refill rate.
        ceiling = [per_unit, per_unit * (1 + end)]
        axis.plot([0, end], ceiling, ":", color="black", label=f"ceiling: {per_unit:,}/{per}")
        axis.set_title(title)
        axis.set_xlabel(unit)
        axis.set_ylabel("records loaded")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def table(rows: list[Row]) -> str:
    lines = [
        "| Benchmark | Measured | Compared with (same run) | Ratio | Goal | Met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.benchmark} | {r.measured} | {r.comparison} | {r.ratio} | {r.goal} | {met} |"
        )
    return "\n".join(lines)


def machine() -> str:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, singer-sdk "
        f"{version('singer-sdk')}, {platform.system()} {platform.release()}; "
        f"load average (1/5/15 min) {load}"
    )


def write_json(folder: Path, data: Any, name: str = "config.json") -> str:
    path = folder / name
    path.write_text(json.dumps(data, ensure_ascii=False))
    return str(path)


def attempt(name: str, section: Callable[[Sizes], list[Row]], sizes: Sizes) -> list[Row]:
    """Run one section; if it fails, say why in its row and go on with the others."""
    try:
        rows = section(sizes)
    except (Exception, SystemExit) as error:  # SystemExit: a plugin failed (see common.check)
        lines = str(error).strip().splitlines() or [type(error).__name__]
        say(f"  FAILED: {str(error)[-3000:]}")
        return [Row(name, f"failed: {lines[-1][:200]}", "", "", "", False)]
    for row in rows:
        say(f"  {row.measured}; {row.comparison}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    args = parser.parse_args()
    sizes, mode = (QUICK, "quick") if args.quick else (FULL, "full")
    started = time.monotonic()
    at_start = machine()
    say(f"Benchmarks ({mode}) on {at_start}")

    rows: list[Row] = []
    for name, section in (
        ("target-twenty at the ceiling, then the naive loop", twenty_throughput),
        ("target-jiandaoyun at the ceiling, then the naive loop", jiandaoyun_throughput),
        ("tap-okki at the rate limit", okki_throughput),
        ("the targets with the limits lifted: CPU and memory", targets_lifted),
        ("tap-okki with the limits lifted: CPU and memory", tap_lifted),
        ("end to end through Meltano", end_to_end),
    ):
        say(name)
        rows += attempt(name, section, sizes)

    png = RESULTS / f"throughput-{mode}.png"
    empty: dict[str, list[dict]] = {"target": [], "naive": []}
    chart(CALL_LOGS.get("twenty", empty), CALL_LOGS.get("jiandaoyun", empty), png)
    invocation = "make bench" + (" BENCH_ARGS=--quick" if args.quick else "")
    report = "\n".join(
        [
            f"Benchmarks ({mode}), {time.strftime('%Y-%m-%d %H:%M')}, "
            f"{time.monotonic() - started:.0f} s; `{invocation}`",
            f"Machine at start: {at_start}",
            f"Machine at end:   {machine()}",
            "",
            table(rows),
            "",
            f"Chart: {png.relative_to(ROOT)}",
            "",
            "Commands (config files in temporary folders):",
            *(f"    {c}" for c in COMMANDS),
        ]
    )
    print(report)
    (RESULTS / f"results-{mode}.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
