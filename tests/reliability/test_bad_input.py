"""Bad input to the targets, run directly with crafted stdin and debug logging (issue 8).

Each case ends with a clear error naming what is wrong and where, a non-zero exit code, and
nothing silently dropped: a rejected record is in the dead-letter file with its reason, and no
STATE is written for records that were neither written nor dead-lettered. No secret shows in
stdout, stderr, the run report or the dead-letter file. Where a plugin test proves a case in
more depth, RELIABILITY.md names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.control import RunningSandbox
from tests.reliability.pipelines import (
    FORM,
    JIANDAOYUN_API_KEY,
    TWENTY_API_KEY,
)
from tests.reliability.plugins import (
    COMPANY_SCHEMA,
    TARGETS,
    PluginRun,
    assert_nothing_silently_dropped,
    company,
    config,
    held_keys,
    lines_of,
    run_plugin,
    run_target,
    sandbox_fixture,
    state,
)

HUGE = 2_000_000  # characters: neither API documents a limit


sandbox = sandbox_fixture(seed=1)


def run(
    sandbox: RunningSandbox, target: str, lines: list[str], tmp_path: Path, **settings: Any
) -> PluginRun:
    outcome = run_target(sandbox, target, lines, tmp_path, **settings)
    assert "DEBUG" in outcome.stderr  # the scenario really ran with debug logging
    return outcome


@pytest.mark.parametrize("target", TARGETS)
def test_a_malformed_json_line_stops_the_run_quoting_the_line_and_nothing_after_it_is_acknowledged(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    broken = '{"type": "RECORD", "stream": "companies", "record": {"company_id": "c2"'
    lines = lines_of(COMPANY_SCHEMA, company(1), state(), broken, company(3), state())

    outcome = run(empty, target, lines, tmp_path)

    assert outcome.returncode != 0
    assert "Unable to parse line 4 of the input as JSON" in outcome.stderr
    assert broken in outcome.stderr
    assert all(position < 4 for position in outcome.states)
    assert "c3" not in held_keys(empty, target)
    assert_nothing_silently_dropped(outcome, lines, empty, target)


@pytest.mark.parametrize("target", TARGETS)
def test_a_record_before_its_schema_stops_the_run_naming_the_stream(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    lines = lines_of(company(1), COMPANY_SCHEMA, company(2), state())

    outcome = run(empty, target, lines, tmp_path)

    assert outcome.returncode != 0
    assert "A record for stream 'companies' was encountered before a corresponding schema" in (
        outcome.stderr
    )
    assert outcome.states == [] and held_keys(empty, target) == set()


@pytest.mark.parametrize("target", TARGETS)
def test_a_record_that_violates_its_schema_is_dead_lettered_with_the_field_and_the_rest_written(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    lines = lines_of(COMPANY_SCHEMA, company(1), company(2, name=17), company(3), state())

    outcome = run(empty, target, lines, tmp_path)

    assert outcome.returncode != 0
    assert "1 record(s) were dead-lettered" in outcome.stderr
    (letter,) = outcome.dead_letters
    assert (letter["stream"], letter["key"], letter["code"]) == ("companies", "c2", "schema")
    assert "'name'" in letter["reason"] and "17 is not of type" in letter["reason"]
    assert letter["record"]["name"] == 17
    assert held_keys(empty, target) == {"c1", "c3"}
    assert outcome.states == [5]  # the dead-lettered record counts as handled
    assert_nothing_silently_dropped(outcome, lines, empty, target)


@pytest.mark.parametrize("target", TARGETS)
def test_a_record_with_an_empty_key_is_dead_lettered_and_the_rest_written(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    lines = lines_of(COMPANY_SCHEMA, company(1), company(2, company_id=""), company(3), state())

    outcome = run(empty, target, lines, tmp_path)

    assert outcome.returncode != 0
    (letter,) = outcome.dead_letters
    assert letter["code"] == "missing-key" and letter["record"]["name"] == "Company 2"
    assert "key properties ['company_id'] are missing or empty" in letter["reason"]
    assert held_keys(empty, target) == {"c1", "c3"}
    assert_nothing_silently_dropped(outcome, lines, empty, target)


@pytest.mark.parametrize("target", TARGETS)
def test_huge_strings_are_written_whole_never_truncated_or_dropped(
    empty: RunningSandbox, tmp_path: Path, target: str
) -> None:
    huge = "巨" * HUGE
    lines = lines_of(COMPANY_SCHEMA, company(1, name=huge), company(2), state())

    outcome = run(empty, target, lines, tmp_path)

    assert outcome.returncode == 0, outcome.stderr[-2000:]
    if target == "target-twenty":
        names = [c["name"] for c in empty.twenty.records()["companies"]]
    else:
        names = [row["_widget_1704067200001"] for row in empty.jiandaoyun.records()["forms"][FORM]]
    assert sorted(names, key=len) == ["Company 2", huge]
    assert outcome.states == [4]


def test_companies_whose_homepage_holds_no_domain_stay_distinct_in_twenty(
    empty: RunningSandbox, tmp_path: Path
) -> None:
    """Twenty keeps domains unique: a homepage like "http://" must not become one shared key."""
    lines = lines_of(
        COMPANY_SCHEMA,
        *(company(n, homepage=junk) for n, junk in enumerate(["http://", "http://", "/", " "], 1)),
        state(),
    )

    outcome = run(empty, "target-twenty", lines, tmp_path)

    assert outcome.returncode == 0, outcome.stderr[-2000:]
    assert held_keys(empty, "target-twenty") == {"c1", "c2", "c3", "c4"}


# Mappings and settings: each stops the run before anything is written --------------------------
def jiandaoyun_form(**changes: Any) -> dict[str, Any]:
    return {
        "app_id": FORM.split("/")[0],
        "entry_id": FORM.split("/")[1],
        "key_field": "company_id",
        "key_widget": "客户编号",
        "fields": {"name": "客户名称"},
        **changes,
    }


def twenty_mapping(stream: str = "companies", **fields: str) -> dict[str, Any]:
    return {stream: {"object": "companies", "fields": fields or {"name": "name"}}}


STOPS_BEFORE_WRITING = [
    # (target, settings, what the error names)
    pytest.param(
        "target-twenty",
        {"mappings": twenty_mapping("compnies")},
        ["Stream 'companies': property 'homepage'", "'mappings.companies.fields'"],
        id="twenty-mapping-names-an-unknown-stream",
    ),
    pytest.param(
        "target-jiandaoyun",
        {"forms": {"compnies": jiandaoyun_form()}},
        ["Stream 'companies' has no entry in the 'forms' setting", "compnies"],
        id="jiandaoyun-forms-names-an-unknown-stream",
    ),
    pytest.param(
        "target-twenty",
        {"mappings": twenty_mapping(name="nmae", **{"domainName.primaryLinkUrl": "homepage"})},
        ["Stream 'companies' has no property 'nmae'", "'mappings.companies.fields'"],
        id="twenty-mapping-names-an-unknown-source-field",
    ),
    pytest.param(
        "target-twenty",
        {"mappings": twenty_mapping(nickname="name", **{"domainName.primaryLinkUrl": "homepage"})},
        ["field 'nickname', which Twenty object 'companies' does not have"],
        id="twenty-mapping-names-an-unknown-twenty-field",
    ),
    pytest.param(
        "target-jiandaoyun",
        {"forms": {"companies": jiandaoyun_form(fields={"nmae": "客户名称"})}},
        ["Stream 'companies', field 'nmae'", f"form {FORM}"],
        id="jiandaoyun-form-names-an-unknown-source-field",
    ),
    pytest.param(
        "target-jiandaoyun",
        {"forms": {"companies": jiandaoyun_form(fields={"name": "客户全称"})}},
        ["Stream 'companies', field 'name'", "'客户全称'", f"form {FORM}"],
        id="jiandaoyun-form-names-an-unknown-widget",
    ),
    pytest.param(
        "target-twenty", {"api_key": None}, ["'api_key' is a required property"], id="twenty-no-key"
    ),
    pytest.param(
        "target-jiandaoyun",
        {"api_key": None},
        ["'api_key' is a required property"],
        id="jiandaoyun-no-key",
    ),
    pytest.param(
        "target-jiandaoyun", {"forms": None}, ["'forms' is a required property"], id="no-forms"
    ),
    pytest.param(
        "target-twenty", {"batch_size": 61}, ["batch_size", "61"], id="twenty-batch-over-60"
    ),
    pytest.param(
        "target-jiandaoyun",
        {"batch_requests_per_second": 0},
        ["Setting 'batch_requests_per_second' must be a positive number"],
        id="jiandaoyun-zero-rate",
    ),
    pytest.param(
        "target-twenty",
        {"api_key": TWENTY_API_KEY + "-revoked"},
        ["401", "check the setting 'api_key'"],
        id="twenty-wrong-key",
    ),
    pytest.param(
        "target-jiandaoyun",
        {"api_key": JIANDAOYUN_API_KEY + "-revoked"},
        ["8301", "'api_key'"],
        id="jiandaoyun-wrong-key",
    ),
    pytest.param(
        "target-jiandaoyun",
        {"forms": {"companies": jiandaoyun_form(app_id="no_such_app")}},
        ["2004", "'app_id'", "no_such_app"],
        id="jiandaoyun-unknown-app",
    ),
    pytest.param(
        "target-jiandaoyun",
        {"forms": {"companies": jiandaoyun_form(entry_id="no_such_form")}},
        ["3000", "'entry_id'", "no_such_form"],
        id="jiandaoyun-unknown-form",
    ),
]


@pytest.mark.parametrize(("target", "settings", "named"), STOPS_BEFORE_WRITING)
def test_a_wrong_mapping_or_setting_stops_the_run_naming_it_before_anything_is_written(
    empty: RunningSandbox, tmp_path: Path, target: str, settings: dict[str, Any], named: list[str]
) -> None:
    lines = lines_of(COMPANY_SCHEMA, company(1), company(2), state())
    wrong = {k: v for k, v in config(empty, target, tmp_path, **settings).items() if v is not None}

    outcome = run_plugin(target, wrong, lines, tmp_path)

    assert outcome.returncode != 0
    for words in named:
        assert words in outcome.stderr, outcome.stderr[-3000:]
    assert outcome.states == [] and held_keys(empty, target) == set()
    assert outcome.dead_letters == []  # nothing was rejected: the run never started writing
    assert outcome.leaked_secrets() == []
    assert "DEBUG" in outcome.stderr or "required property" in outcome.stderr
