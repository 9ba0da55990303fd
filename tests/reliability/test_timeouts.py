"""Calls that outlast their timeout are given up and sent again (issue 8's "timeouts").

The timeouts are `kind: decimal` settings, which Meltano 4.4.1 cannot take from the
environment, so here the tap is piped into the target as Meltano does it, with meltano.yml's
own settings for the pipeline plus a 0.5 s timeout, while 1-second latency spikes hit OKKI and
Jiandaoyun. target-twenty has no timeout setting (10 s to connect, 120 s to answer): its client
is run against the Twenty sandbox with a short timeout instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from connector_kit.http import RetryPolicy
from crm_sandbox.control import RunningSandbox
from target_twenty.client import TwentyClient
from tests.e2e.meltano_project import ROOT
from tests.reliability.pipelines import (
    TIME_SCALE,
    TWENTY_API_KEY,
    assert_jiandaoyun_holds_exactly_okki,
    fresh,
    start_secret_sandbox,
    twenty_id,
)
from tests.reliability.plugins import BIN, DEBUG, PluginRun, config, run_plugin
from tests.tap_okki.helpers import select_only

TIMEOUT = 0.5
SPIKE = {"spike_rate": 0.25, "spike_latency": 1.0}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_secret_sandbox(companies=20, seed=44)
    yield running
    running.stop()


def meltano_yml_config(plugin: str) -> dict[str, Any]:
    """The `config` meltano.yml gives a loader (its mappings, forms…)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (entry,) = [p for p in project["plugins"]["loaders"] if p["name"] == plugin]
    return entry.get("config") or {}


def run_piped(
    tap_settings: dict[str, Any],
    catalog: dict[str, Any],
    target: str,
    target_settings: dict[str, Any],
    workdir: Path,
) -> tuple[PluginRun, PluginRun]:
    """`tap-okki --catalog … | TARGET`, with debug logging, to the end."""
    files = {}
    for name, content in (("tap", tap_settings), ("catalog", catalog), ("target", target_settings)):
        files[name] = workdir / f"{name}.json"
        files[name].write_text(json.dumps(content, ensure_ascii=False))
    env = {**os.environ, **DEBUG}
    with (workdir / "tap.log").open("w+") as tap_log, (workdir / "target.log").open("w+") as log:
        tap = subprocess.Popen(
            [BIN / "tap-okki", "--config", files["tap"], "--catalog", files["catalog"]],
            stdout=subprocess.PIPE,
            stderr=tap_log,
            env=env,
        )
        loader = subprocess.Popen(
            [BIN / target, "--config", files["target"]],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the target holds the pipe now
        stdout, _ = loader.communicate(timeout=300)
        tap.wait(timeout=60)
    files["tap"].unlink()  # hold the secrets by design; they are not output
    files["target"].unlink()
    return (
        PluginRun(workdir, tap.returncode, "", (workdir / "tap.log").read_text()),
        PluginRun(workdir, loader.returncode, stdout, (workdir / "target.log").read_text()),
    )


def test_okki_and_jiandaoyun_calls_that_time_out_are_sent_again_and_the_result_is_exact(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    fresh(sandbox)
    tap_settings = config(sandbox, "tap-okki", tmp_path, request_timeout=TIMEOUT)
    catalog = select_only(
        json.loads(run_plugin("tap-okki", tap_settings, [], tmp_path, "--discover").stdout),
        "companies",
    )
    target_settings = {
        **meltano_yml_config("target-jiandaoyun"),
        **config(sandbox, "target-jiandaoyun", tmp_path),
        "forms": meltano_yml_config("target-jiandaoyun")["forms"],
        "request_timeout": TIMEOUT,
        "batch_size_rows": 3,  # more calls, more of them hit by a spike
        **{f"{kind}_requests_per_second": rate * TIME_SCALE for kind, rate in RATES.items()},
    }
    sandbox.okki.knobs(**SPIKE)
    sandbox.jiandaoyun.knobs(**SPIKE)

    tap, target = run_piped(tap_settings, catalog, "target-jiandaoyun", target_settings, tmp_path)

    assert tap.returncode == 0, tap.stderr[-3000:]
    assert target.returncode == 0, target.stderr[-3000:]
    assert_jiandaoyun_holds_exactly_okki(sandbox)
    # (A call given up is missing from the sandbox's request log: it never got its answer.)
    assert "network error ReadTimeout" in tap.stderr
    assert "ReadTimeout" in target.stderr
    assert tap.leaked_secrets() == [] and target.leaked_secrets() == []


RATES = {"batch": 10, "single_write": 20, "read": 30, "company": 50}


def test_twenty_calls_that_time_out_are_sent_again_without_creating_duplicates(
    sandbox: RunningSandbox,
) -> None:
    fresh(sandbox)
    client = TwentyClient(sandbox.twenty.base_url, TWENTY_API_KEY, 100, 60 / TIME_SCALE, 4)
    client.api.transport.timeout = urllib3.Timeout(connect=5.0, read=TIMEOUT)
    client.api.retry = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=0.2)
    companies = [{"id": twenty_id("companies", n), "name": f"Company {n}"} for n in range(180)]
    sandbox.twenty.knobs(spike_rate=0.5, spike_latency=1.0)

    for start in range(0, len(companies), 15):
        client.upsert("companies", companies[start : start + 15])

    held = Counter(c["id"] for c in sandbox.twenty.records()["companies"])
    assert held == Counter(c["id"] for c in companies)
    assert client.api.retries > 0  # calls timed out: no other fault was injected
