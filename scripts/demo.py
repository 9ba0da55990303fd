"""The demo: both pipelines through `meltano run` against the local sandboxes, twice.

1. starts `crm-sandbox` (OKKI with generated companies, Twenty, Jiandaoyun) on free ports, OKKI
   serving its shape variety (open fields in other shapes, some values no client can convert)
   and its collisions (companies sharing a homepage domain, contacts sharing an email);
2. `meltano run tap-okki target-twenty`, then `tap-okki-companies target-jiandaoyun` (env `dev`);
3. changes a few companies and opportunities in the OKKI sandbox;
4. runs both pipelines again: only what changed moves;
5. prints, per run, records per stream (created / updated / deleted / failed, and any other
   outcome the target reports, such as conflicts), time, and where the state is.

    make demo            # or: .venv/bin/python scripts/demo.py [--companies N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from crm_sandbox.control import RunningSandbox, start_sandbox

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output" / "demo"
PIPELINES = (("tap-okki", "target-twenty"), ("tap-okki-companies", "target-jiandaoyun"))
SHAPE_VARIETY = "0.3"  # share of OKKI's open fields served in other shapes
MAIN_ACTIONS = ("created", "updated", "deleted", "failed")


def meltano_executable() -> str:
    found = shutil.which("meltano") or str(ROOT / ".venv-meltano" / "bin" / "meltano")
    if not Path(found).exists():
        sys.exit("meltano is not installed: run `make demo` (it installs .venv-meltano).")
    return found


def meltano_command(meltano: str, *args: str) -> list[str]:
    """`meltano ARGS…` reading no `.env`: the demo takes nothing from it (and `dev` pins the
    sandbox's demo credentials, so production keys could not reach the sandbox anyway)."""
    no_dotenv = OUTPUT / "demo.env"
    no_dotenv.touch()
    return [meltano, f"--env-file={no_dotenv}", *args]


def meltano_env(sandbox: RunningSandbox) -> dict[str, str]:
    """The `dev` environment, pointed at this sandbox's ports, with state in output/demo."""
    return {
        **os.environ,
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_STATE_BACKEND_URI": f"file://{OUTPUT / 'state'}",
        # Its own run history too, so a demo never collides with another run of the project.
        "MELTANO_DATABASE_URI": f"sqlite:///{OUTPUT / 'meltano.db'}",
        "TAP_OKKI_BASE_URL": sandbox.okki.base_url,
        "TARGET_TWENTY_BASE_URL": sandbox.twenty.base_url,
        "TARGET_JIANDAOYUN_BASE_URL": sandbox.jiandaoyun.base_url,
        "TARGET_TWENTY_ID_MAP_PATH": str(OUTPUT / "target-twenty-ids.sqlite3"),
    }


def run_pipeline(meltano: str, env: dict[str, str], tap: str, target: str, run: int) -> dict:
    prefix = target.upper().replace("-", "_")
    report = OUTPUT / f"run{run}-{target}-report.jsonl"
    dead_letters = OUTPUT / f"run{run}-{target}-dead-letters.jsonl"
    log = OUTPUT / f"run{run}-{tap}-{target}.log"
    env = {
        **env,
        f"{prefix}_RUN_REPORT_PATH": str(report),
        f"{prefix}_DEAD_LETTER_PATH": str(dead_letters),
    }
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            meltano_command(meltano, "run", tap, target),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        print(f"  meltano run {tap} {target} failed (exit {result.returncode}); see {log}")
        print("  " + "\n  ".join(log.read_text().splitlines()[-15:]))
        sys.exit(result.returncode)
    return {"seconds": seconds, "tally": tally(report), "log": log}


def tally(report: Path) -> dict[str, Counter]:
    per_stream: dict[str, Counter] = defaultdict(Counter)
    if report.exists():
        for line in report.read_text().splitlines():
            row = json.loads(line)
            per_stream[row["stream"]][row["action"]] += 1
            per_stream[row["stream"]].update(row.get("status") or [])  # e.g. "conflict"
    return per_stream


def print_run(tap: str, target: str, outcome: dict) -> None:
    print(f"  {tap} → {target}: {outcome['seconds']:.1f}s (log: {outcome['log'].name})")
    if not outcome["tally"]:
        print("    nothing to load")
    for stream, counts in sorted(outcome["tally"].items()):
        total = sum(counts[action] for action in (*MAIN_ACTIONS, "skipped"))
        others = "".join(
            f"   {n:>3} {action}"
            for action, n in sorted(counts.items())
            if action not in MAIN_ACTIONS
        )
        print(
            f"    {stream:<14} {total:>5} extracted   {counts['created']:>5} created"
            f"   {counts['updated']:>5} updated   {counts['deleted']:>3} deleted"
            f"   {counts['failed']:>3} failed{others}"
        )


def change_okki(sandbox: RunningSandbox) -> None:
    updated = sandbox.okki.post("companies/update", {"count": 10})["company_ids"]
    deleted = sandbox.okki.post("companies/delete", {"count": 2})["company_ids"]
    created = sandbox.okki.post("companies/create", {"count": 3})["company_ids"]
    sandbox.okki.post("opportunities/update", {"count": 5})
    print(
        f"\nIn OKKI: {len(updated)} companies updated, {len(deleted)} deleted, "
        f"{len(created)} created, 5 opportunities updated.\n"
    )


def print_okki_data(sandbox: RunningSandbox) -> None:
    """What the OKKI sandbox holds that a connector must get right."""
    companies = sandbox.okki.records()["companies"]
    people = [p for c in companies for p in c["customers"]]
    domains = Counter(_domain(c["homepage"]) for c in companies if _domain(c["homepage"]))
    emails = Counter(p["email"].lower() for p in people if p["email"])
    shared_domains = sum(1 for c in companies if domains[_domain(c["homepage"])] > 1)
    shared_emails = sum(1 for p in people if p["email"] and emails[p["email"].lower()] > 1)
    print(
        f"OKKI sandbox: {len(companies)} companies ({shared_domains} share a homepage domain), "
        f"{len(people)} contacts ({shared_emails} share an email); open fields in other shapes "
        f"at a share of {SHAPE_VARIETY}.\n"
    )


def _domain(homepage: str) -> str:
    host = homepage.strip().lower().split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=150)
    args = parser.parse_args()
    meltano = meltano_executable()
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    started = time.monotonic()
    sandbox = start_sandbox(
        "--companies", str(args.companies), "--seed", "7", "--okki-shape-variety", SHAPE_VARIETY
    )
    try:
        print_okki_data(sandbox)
        env = meltano_env(sandbox)
        install = meltano_command(meltano, "install")
        subprocess.run(install, cwd=ROOT, env=env, check=True, capture_output=True)
        for run in (1, 2):
            title = "First run (full)" if run == 1 else "Second run (incremental)"
            print(f"{title}:")
            for tap, target in PIPELINES:
                print_run(tap, target, run_pipeline(meltano, env, tap, target, run))
            if run == 1:
                change_okki(sandbox)
        twenty = sandbox.twenty.records()
        jdy = sandbox.jiandaoyun.records()["forms"]
        print(
            "\nNow in Twenty: "
            + ", ".join(
                f"{sum(1 for r in rows if not r.get('deletedAt'))} {name}"
                for name, rows in twenty.items()
                if rows
            )
        )
        print("Now in Jiandaoyun: " + ", ".join(f"{len(r)} rows in {f}" for f, r in jdy.items()))
        print(f"State (Meltano, file backend): {OUTPUT / 'state'}/<state id>/state.json")
        print(f"Run reports and logs: {OUTPUT}")
        print(f"Demo finished in {time.monotonic() - started:.0f}s.")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
