"""Random interleavings for the concurrency stress test (`test_stress.py`).

A seed draws a scenario: a stream of upserts, deletions and restorations of a few keys (target-
twenty: companies and the people that link to them, often before their company comes, or to one
that never does), records the target must dead-letter, STATEs, schema changes, BATCH messages
(files of records, gzipped or not); the target's settings (batches in flight, batch size,
`checkpoint_seconds`); the sandbox's faults (latency jitter, server errors, dropped answers, 429
bursts, Jiandaoyun's partial failures and busy forms); and where SIGTERM (sometimes twice)
interrupts a run. The scenario is then run as a tap and Meltano would run it: a run that stops
is followed by one resuming after the last STATE it wrote, until a run completes.

Checked:
- invariant 8: every STATE, the moment it is read, covers every record before it: the
  destination holds that record's version or a later one of its key, or it is dead-lettered;
  STATEs come in order; none after a failure (no run fails but for the signals);
- invariant 9: each key is on one row at most, at every STATE and at the end;
- the end: the destination holds each key's last version (deleted keys: no row), and each
  record the target had to refuse is in the dead-letter file;
- invariant 13: the STATEs waiting at once stay within what the batches in flight and the
  records held back explain, not the length of the run.
"""

from __future__ import annotations

import gzip
import json
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from crm_sandbox.control import RunningSandbox, SandboxClient
from tests.reliability.live import LiveTarget

TIME_SCALE = 60  # the sandbox's rate windows are 60 times shorter
FORM = ("demo_app", "demo_customers")
NAME_WIDGET = "_widget_1704067200001"  # 客户名称
DELETED_AT = "2026-03-01T08:00:00+00:00"

Kind = Literal["upsert", "delete", "bad"]


@dataclass(frozen=True)
class Op:
    """One record of the input."""

    line: int  # the input line carrying it (a BATCH line carries several)
    version: int  # its place among all records, in input order
    stream: str
    key: str
    kind: Kind
    parent: str | None = None  # people: the company they link to


@dataclass
class Scenario:
    target: str
    seed: int
    lines: list[str] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    knobs: dict[str, Any] = field(default_factory=dict)
    # For each run that is interrupted: after which input line SIGTERM comes, and whether a
    # second signal follows (after how many seconds).
    stops: list[tuple[int, float | None]] = field(default_factory=list)
    pause: float = 0.0  # the tap pauses this long after one line in ten (a trickling tap)

    @property
    def streams(self) -> tuple[str, ...]:
        return ("companies", "people") if self.target == "target-twenty" else ("companies",)

    def describe(self) -> str:
        counts = {kind: sum(op.kind == kind for op in self.ops) for kind in ("upsert", "delete")}
        return (
            f"{self.target} seed {self.seed}: {len(self.lines)} lines, {counts}, settings "
            f"{self.settings}, knobs {self.knobs}, stops {self.stops}"
        )


# Scenarios ----------------------------------------------------------------------------------
def schema(stream: str, shape: int) -> dict[str, Any]:
    """The stream's schema; `shape` writes the same types another way (a new sink each time)."""
    text = ["string", "null"] if shape % 2 == 0 else ["null", "string"]
    properties: dict[str, Any] = {
        "company_id": {"type": "string"},
        "name": {"type": text},
        "version": {"type": "integer"},
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
    }
    if stream == "companies":
        properties["website"] = {"type": text}
        key = "company_id"
    else:
        properties |= {"contact_id": {"type": "string"}, "email": {"type": text}}
        key = "contact_id"
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": [key],
    }


def record(op: Op) -> dict[str, Any]:
    name: Any = f"{op.key} v{op.version}"
    if op.kind == "bad":
        name = 17  # not a string: the record is dead-lettered
    values: dict[str, Any] = {"name": name, "version": op.version, "_sdc_deleted_at": None}
    if op.kind == "delete":
        values["_sdc_deleted_at"] = DELETED_AT
    if op.stream == "companies":
        values |= {"company_id": op.key, "website": f"https://{op.key}.example.com"}
    else:
        values |= {
            "contact_id": op.key,
            "company_id": op.parent,
            "email": f"{op.key}@example.com",
        }
    return values


def generate(target: str, seed: int, workdir: Path) -> Scenario:
    rng = random.Random(f"{target}-{seed}")
    scenario = Scenario(target, seed)
    twenty = target == "target-twenty"
    companies = [f"c{n}" for n in range(rng.randint(4, 16))]
    people = [f"p{n}" for n in range(rng.randint(4, 20))] if twenty else []
    never = [f"c{n}" for n in range(100, 103)]  # companies that never come
    shapes = dict.fromkeys(scenario.streams, 0)
    lines = scenario.lines

    def add(message: dict[str, Any]) -> None:
        lines.append(json.dumps(message))

    def new_op(stream: str, key: str, kind: Kind, parent: str | None = None) -> Op:
        op = Op(len(lines), len(scenario.ops), stream, key, kind, parent)
        scenario.ops.append(op)
        return op

    written: set[str] = set()  # companies upserted so far

    def company_op() -> Op:
        kind: Kind = rng.choices(["upsert", "delete", "bad"], [10, 2, 1])[0]
        key = rng.choice(companies)
        if kind == "delete" and key not in written:
            # A company deleted before it ever was written "came" without being written: its
            # people would be dead-lettered, rightly, and the end state would depend on it.
            kind = "upsert"
        if kind == "upsert":
            written.add(key)
        return new_op("companies", key, kind)

    for stream in scenario.streams:
        add(schema(stream, 0))
    actions = ["company", "state", "schema", "batch"] + (["person"] if twenty else [])
    weights = [8, 3, 1, 1] + ([7] if twenty else [])
    for _ in range(rng.randint(40, 140)):
        action = rng.choices(actions, weights)[0]
        if action == "company":
            add({"type": "RECORD", "stream": "companies", "record": record(company_op())})
        elif action == "person":
            kind: Kind = rng.choices(["upsert", "delete", "bad"], [10, 2, 1])[0]
            parent = rng.choice(companies + never[:1])
            op = new_op("people", rng.choice(people), kind, parent)
            add({"type": "RECORD", "stream": "people", "record": record(op)})
        elif action == "state":
            add({"type": "STATE", "value": {"line": len(lines)}})
        elif action == "schema":
            stream = rng.choice(scenario.streams)
            shapes[stream] += 1
            add(schema(stream, shapes[stream]))
        else:  # a BATCH message: a file of company records
            batch = [record(company_op()) for _ in range(rng.randint(1, 12))]
            gzipped = rng.random() < 0.5
            path = workdir / f"batch-{len(lines)}.jsonl{'.gz' if gzipped else ''}"
            text = "".join(json.dumps(r) + "\n" for r in batch).encode()
            path.write_bytes(gzip.compress(text) if gzipped else text)
            add(
                {
                    "type": "BATCH",
                    "stream": "companies",
                    "encoding": {"format": "jsonl", "compression": "gzip" if gzipped else "none"},
                    "manifest": [path.as_uri()],
                }
            )
    add({"type": "STATE", "value": {"line": len(lines)}})

    largest = 60 if twenty else 100
    scenario.settings = {
        "max_in_flight": rng.choice([1, 2, 4, 8]),
        "batch_size_rows": rng.choice([1, 2, 3, 7, 20, largest]),
        "checkpoint_seconds": rng.choice([0.05, 0.2, 1.0]),
        "max_failed_records": 1_000_000,
        "max_retry_after_seconds": 0.5,
    }
    if twenty:
        scenario.settings["on_missing_parent"] = "load_unlinked"
    scenario.knobs = {
        "latency": rng.choice([0.0, 0.002]),
        "latency_jitter": rng.choice([0.0, 0.01, 0.03]),
        "error_rate": rng.choice([0.0, 0.0, 0.05]),
        "drop_rate": rng.choice([0.0, 0.0, 0.03]),
        "burst_429_rate": rng.choice([0.0, 0.0, 0.02]),
        "burst_429_length": 2,
    }
    if not twenty:
        scenario.knobs["extra"] = {
            "partial_failure_rate": rng.choice([0.0, 0.0, 0.2]),
            "busy_rate": rng.choice([0.0, 0.05]),
        }
    scenario.pause = rng.choice([0.0, 0.0, 0.002, 0.01])
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        second = rng.uniform(0.0, 0.3) if rng.random() < 0.3 else None
        scenario.stops.append((rng.randrange(1, len(lines)), second))
    return scenario


# The destination ----------------------------------------------------------------------------
def version_of(name: Any) -> int:
    """The version a row's name carries ("c3 v17"); -1 for a name no record of ours has."""
    key, _, version = str(name).rpartition(" v")
    return int(version) if key and version.isdigit() else -1


def destination(api: SandboxClient, scenario: Scenario) -> dict[tuple[str, str], list[int]]:
    """(stream, key) → the versions on its live rows (more than one: a duplicate)."""
    held: dict[tuple[str, str], list[int]] = {}
    if scenario.target == "target-twenty":
        records = api.records()
        rows = [("companies", r, r["name"]) for r in records["companies"]]
        rows += [("people", r, r["name"]["firstName"]) for r in records["people"]]
        for stream, row, name in rows:
            if row["deletedAt"] is None:
                key = str(name).rsplit(" v", 1)[0]
                held.setdefault((stream, key), []).append(version_of(name))
        return held
    for row in api.records()["forms"].get("/".join(FORM), []):
        held.setdefault(("companies", row["customer_id"]), []).append(version_of(row[NAME_WIDGET]))
    return held


def dead_lettered(path: Path) -> set[int]:
    """Versions of the records in the dead-letter file (a line a killed run cut is skipped)."""
    if not path.exists():
        return set()
    versions = set()
    for line in path.read_text().splitlines():
        try:
            versions.add(json.loads(line)["record"]["version"])
        except (ValueError, KeyError, TypeError):
            continue
    return versions


@dataclass
class Checker:
    scenario: Scenario
    api: SandboxClient
    dead_letter_path: Path
    problems: list[str] = field(default_factory=list)

    def unsafe(self, state_line: int) -> list[str]:
        """What a STATE at `state_line` claims that the destination does not show."""
        held = destination(self.api, self.scenario)
        lettered = dead_lettered(self.dead_letter_path)
        found = [f"key {k} on {len(v)} rows" for k, v in held.items() if len(v) > 1]
        last: dict[tuple[str, str], Op] = {}
        for op in self.scenario.ops:
            if op.line >= state_line:
                break
            if op.kind == "bad":
                if op.version not in lettered:
                    found.append(f"refused record v{op.version} not dead-lettered")
                continue
            last[(op.stream, op.key)] = op
        for key, op in last.items():
            versions = held.get(key, [])
            if op.version in lettered:
                continue
            if versions and max(versions) >= op.version:
                continue  # that version, or a later one of the key
            later_delete = any(
                o.kind == "delete" and o.version > op.version and (o.stream, o.key) == key
                for o in self.scenario.ops
            )
            if not versions and (op.kind == "delete" or later_delete):
                continue
            found.append(f"{key}: v{op.version} ({op.kind}) not applied, rows hold {versions}")
        return found

    def expected(self) -> dict[tuple[str, str], int]:
        final: dict[tuple[str, str], Op] = {}
        for op in self.scenario.ops:
            if op.kind != "bad":
                final[(op.stream, op.key)] = op
        return {k: op.version for k, op in final.items() if op.kind == "upsert"}


# Running ------------------------------------------------------------------------------------
@dataclass
class RunResult:
    returncode: int
    states: list[int]
    stderr: str
    signalled: int  # signals sent


def target_settings(sandbox: RunningSandbox, scenario: Scenario, workdir: Path) -> dict:
    common = {
        "dead_letter_path": str(workdir / "dead-letters.jsonl"),
        "run_report_path": str(workdir / "report.jsonl"),
        **scenario.settings,
    }
    if scenario.target == "target-twenty":
        fields = {"name": "name", "domainName.primaryLinkUrl": "website"}
        people = {
            "name.firstName": "name",
            "name.lastName": "contact_id",
            "emails.primaryEmail": "email",
        }
        return {
            **common,
            "api_key": sandbox.twenty.credentials["api_key"],
            "base_url": sandbox.twenty.base_url,
            "rate_limit_window_seconds": 60 / TIME_SCALE,
            "id_map_path": str(workdir / "ids.sqlite3"),
            "mappings": {
                "companies": {"object": "companies", "fields": fields},
                "people": {
                    "object": "people",
                    "fields": people,
                    "references": {"companyId": {"stream": "companies", "field": "company_id"}},
                },
            },
        }
    return {
        **common,
        "api_key": sandbox.jiandaoyun.credentials["api_key"],
        "base_url": sandbox.jiandaoyun.base_url,
        "batch_requests_per_second": 10 * TIME_SCALE,
        "single_write_requests_per_second": 20 * TIME_SCALE,
        "read_requests_per_second": 30 * TIME_SCALE,
        "company_requests_per_second": 50 * TIME_SCALE,
        "forms": {
            "companies": {
                "app_id": FORM[0],
                "entry_id": FORM[1],
                "key_field": "company_id",
                "key_widget": "客户编号",
                "fields": {"name": "客户名称"},
            }
        },
    }


def run_once(
    scenario: Scenario,
    settings: dict,
    lines: list[str],
    workdir: Path,
    checker: Checker,
    stop: tuple[int, float | None] | None,
) -> RunResult:
    live = LiveTarget(scenario.target, settings, workdir)
    signalled = 0

    pauses = random.Random(f"{scenario.seed}-{len(lines)}")

    def feed() -> None:
        nonlocal signalled
        try:
            for number, text in enumerate(lines):
                live.send(text)
                if scenario.pause and pauses.random() < 0.1:
                    time.sleep(scenario.pause)
                if stop is not None and number == stop[0]:
                    # Once the target reads its input (before, a signal just ends the process
                    # as nothing has been done yet); then at that line, wherever it is.
                    live.wait_for_log("' → ")
                    live.process.send_signal(signal.SIGTERM)
                    signalled = 1
                    if stop[1] is not None:
                        time.sleep(stop[1])  # a random moment, not a synchronisation
                        live.process.send_signal(signal.SIGTERM)
                        signalled = 2
                    break
            live.end_input()
        except (BrokenPipeError, OSError):
            pass  # the target stopped reading: it was told to stop

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    states = []
    try:
        while True:
            try:
                value = live.next_state(timeout=120)
            except EOFError:
                break
            states.append(value["line"])
            problems = checker.unsafe(value["line"])
            if problems:
                checker.problems.append(f"STATE {value['line']} unsafe: {problems[:5]}")
        returncode = live.wait(timeout=120)
    finally:
        live.kill()
        feeder.join(timeout=10)
    return RunResult(returncode, states, live.stderr, signalled)


def run_scenario(sandbox: RunningSandbox, scenario: Scenario, workdir: Path) -> Checker:
    api = sandbox.twenty if scenario.target == "target-twenty" else sandbox.jiandaoyun
    api.reset()
    api.knobs(**scenario.knobs)
    checker = Checker(scenario, api, workdir / "dead-letters.jsonl")
    settings = target_settings(sandbox, scenario, workdir)
    schemas = [n for n, text in enumerate(scenario.lines) if '"type": "SCHEMA"' in text]
    resume_after = -1
    stops: list[tuple[int, float | None] | None] = [*scenario.stops, None]
    for attempt, planned in enumerate(stops):
        # A resumed run gets the schemas (in their order), then what follows the last STATE.
        start = resume_after + 1
        lines = [scenario.lines[n] for n in schemas if n < start] + scenario.lines[start:]
        stop = None
        if planned is not None and planned[0] >= start:
            stop = (planned[0] - start + len([n for n in schemas if n < start]), planned[1])
        run = run_once(scenario, settings, lines, workdir / f"run-{attempt}", checker, stop)
        tail = run.stderr[-2000:]
        if run.states != sorted(run.states):
            checker.problems.append(f"run {attempt}: STATEs out of order {run.states}")
        if run.states and run.states[0] <= resume_after:
            checker.problems.append(f"run {attempt}: a STATE from before its input")
        # A signal the target handles ends it with 0 (its second: 143); one that comes while
        # it starts or ends (no handler then) with -15. Nothing else may stop a run.
        allowed = {0} if not run.signalled else {0, 128 + signal.SIGTERM, -signal.SIGTERM}
        if run.returncode not in allowed:
            checker.problems.append(f"run {attempt}: exit {run.returncode}\n{tail}")
            break
        waiting = most_waiting(run.stderr)
        bound = scenario.settings["max_in_flight"] + len(schemas) + 3
        if scenario.target == "target-twenty":
            bound += sum(op.stream == "people" for op in scenario.ops)  # held, at most
        if waiting is not None and waiting > bound:
            checker.problems.append(f"run {attempt}: {waiting} STATEs waited at once > {bound}")
        if run.states:
            resume_after = run.states[-1]
        if planned is None or run.signalled == 0:
            break  # completed
    api.knobs(
        latency=0.0,
        latency_jitter=0.0,
        error_rate=0.0,
        drop_rate=0.0,
        burst_429_rate=0.0,
    )
    if api is sandbox.jiandaoyun:
        api.knobs(extra={"partial_failure_rate": 0.0, "busy_rate": 0.0})
    final = {key: max(versions) for key, versions in destination(api, scenario).items()}
    expected = checker.expected()
    if final != expected:
        missing = {k: v for k, v in expected.items() if final.get(k) != v}
        extra = {k: v for k, v in final.items() if k not in expected}
        checker.problems.append(f"end: wrong or missing {missing}, not expected {extra}")
    duplicates = {k: v for k, v in destination(api, scenario).items() if len(v) > 1}
    if duplicates:
        checker.problems.append(f"end: duplicates {duplicates}")
    lettered = dead_lettered(checker.dead_letter_path)
    refused = {op.version for op in scenario.ops if op.kind == "bad"}
    if not refused <= lettered:
        checker.problems.append(f"end: refused records not dead-lettered {refused - lettered}")
    return checker


def most_waiting(stderr: str) -> int | None:
    marker = "at most "
    for line in reversed(stderr.splitlines()):
        if "STATE:" in line and marker in line:
            return int(line.split(marker)[1].split()[0])
    return None
