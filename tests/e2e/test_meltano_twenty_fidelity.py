"""Every OKKI customer arrives in Twenty as itself, through `meltano run` (issue: no merged
customers, deletions that mirror OKKI): a full run, then an incremental run after renames,
deletions and contacts removed from live companies; compared record by record each time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from crm_sandbox.control import RunningSandbox
from target_twenty.values import canonical_domain, canonical_email
from tests.e2e.fidelity import assert_twenty_mirrors_okki, documented
from tests.e2e.meltano_project import MeltanoProject, fresh_project, sandbox_for_meltano

pytestmark = pytest.mark.xdist_group("meltano")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_for_meltano(
        "--companies", "60", "--seed", "9", "--time-scale", "20", "--okki-shape-variety", "0.5"
    ) as running:
        yield running


@pytest.fixture
def project(sandbox: RunningSandbox, tmp_path: Path) -> MeltanoProject:
    return fresh_project(sandbox, tmp_path)


def collide(sandbox: RunningSandbox) -> dict[str, Any]:
    """Make collisions OKKI holds in real accounts: a company whose homepage differs from
    another's only in case and scheme, and contacts sharing an email across companies."""
    okki = documented(sandbox.okki.records())["companies"]
    with_site = [c for c in okki if c["homepage"]]
    owner, twin = with_site[0], with_site[1]
    shared = canonical_domain(owner["homepage"]).replace("https://", "HTTP://").upper()
    sandbox.okki.post("companies/update", {"company_ids": [twin["company_id"]], "homepage": shared})
    emails = [canonical_email(p["email"]) for c in okki for p in c["customers"] if p["email"]]
    assert len(emails) != len(set(emails)), "the seeded data has shared contact emails"
    return {
        "owner": owner["company_id"],
        "twin": twin["company_id"],
        "domain": canonical_domain(shared),
    }


def report(project: MeltanoProject, run: int) -> list[dict[str, Any]]:
    path = project.report("target-twenty", run)
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_and_compare(project: MeltanoProject, sandbox: RunningSandbox) -> dict[str, int]:
    run = project.run("run", "tap-okki", "target-twenty")
    assert run.returncode == 0, run.log[-4000:]
    return assert_twenty_mirrors_okki(sandbox.okki.records(), sandbox.twenty.records())


def change_okki(sandbox: RunningSandbox, pair: dict[str, Any]) -> dict[str, Any]:
    """Renames, deletions (the owner of the shared domain among them) and contacts removed
    from live companies."""
    okki = documented(sandbox.okki.records())["companies"]
    pair_ids = (pair["owner"], pair["twin"])
    others = [c["company_id"] for c in okki if c["company_id"] not in pair_ids]
    with_contacts = [
        c["company_id"]
        for c in okki
        if len(c["customers"]) >= 2 and c["company_id"] not in pair_ids
    ]
    renamed = sandbox.okki.post("companies/update", {"company_ids": others[:3], "rename": True})
    dropped = sandbox.okki.post(
        "companies/update", {"company_ids": with_contacts[:2], "drop_contacts": 1}
    )["dropped_contacts"]
    doomed = [pair["owner"], *[c for c in others[3:] if c not in with_contacts[:2]][:1]]
    sandbox.okki.post("companies/delete", {"company_ids": doomed})
    return {"renamed": renamed["company_ids"], "dropped": dropped, "deleted": doomed}


def test_every_okki_customer_arrives_as_itself_in_a_full_and_an_incremental_run(
    project: MeltanoProject, sandbox: RunningSandbox
) -> None:
    pair = collide(sandbox)

    first = run_and_compare(project, sandbox)

    assert first["conflicts"] >= 2  # the shared domain, and at least one shared email
    conflicts = [r for r in report(project, 1) if "conflict" in r.get("status", [])]
    kept_apart = next(r for r in conflicts if r["stream"] == "companies")
    # Whichever of the two OKKI sent first holds the domain; the other is reported with both.
    holder = int(kept_apart["conflicts"][0]["held_by"])  # the other key, as text
    assert {kept_apart["key"], holder} == {pair["owner"], pair["twin"]}
    pair["owner"], pair["twin"] = holder, kept_apart["key"]
    assert all(r["conflicts"][0]["held_by"] is not None for r in conflicts)
    people = {p["okkiId"]: p for p in sandbox.twenty.records()["people"]}

    changes = change_okki(sandbox, pair)
    second = run_and_compare(project, sandbox)

    twenty = sandbox.twenty.records()
    companies = {c["okkiId"]: c for c in twenty["companies"]}
    # The owner of the shared domain is deleted: the twin, still live, holds it now.
    assert companies[str(pair["owner"])]["deletedAt"]
    twin = companies[str(pair["twin"])]
    assert twin["domainName"]["primaryLinkUrl"] == pair["domain"] and not twin["deletedAt"]
    for key in changes["renamed"]:
        assert companies[str(key)]["name"].endswith("(renamed)")
    # Contacts of deleted companies and contacts removed from live ones: soft-deleted.
    deleted_rows = {companies[str(k)]["id"] for k in changes["deleted"]}
    removed = {str(k) for k in changes["dropped"]} | {
        key for key, p in people.items() if p["companyId"] in deleted_rows
    }
    after = {p["okkiId"]: p for p in twenty["people"]}
    assert removed and all(after[k]["deletedAt"] for k in removed)
    assert second["people"] == first["people"] - len(removed)


def contents(twenty: dict[str, Any]) -> dict[str, list[tuple]]:
    """What a user sees in Twenty, without the times: rows, values, links, deletions."""
    shown = {
        "companies": ("okkiId", "name", "domainName"),
        "people": ("okkiId", "name", "emails", "companyId"),
        "opportunities": ("okkiId", "name", "companyId", "pointOfContactId"),
    }
    return {
        plural: sorted(
            (row["id"], bool(row["deletedAt"]), *(json.dumps(row[f], sort_keys=True) for f in keys))
            for row in twenty[plural]
        )
        for plural, keys in shown.items()
    }


def make_by_hand(sandbox: RunningSandbox, company: dict[str, Any]) -> None:
    """A company someone typed into Twenty before the first sync, with an OKKI company's
    homepage: the target adopts it (and must find it again without its id map)."""
    typed = canonical_domain(company["homepage"]).upper() + "/"  # Twenty lower-cases the origin
    response = requests.post(
        f"{sandbox.twenty.base_url}/rest/batch/companies",
        json=[{"name": "Typed by hand", "domainName": {"primaryLinkUrl": typed}}],
        headers={"Authorization": f"Bearer {sandbox.twenty.credentials['api_key']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def test_losing_the_id_map_between_runs_changes_nothing_in_twenty(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    results = []
    for lose_id_map in (False, True):
        (tmp_path / f"lose-{lose_id_map}").mkdir()
        project = fresh_project(sandbox, tmp_path / f"lose-{lose_id_map}")
        # Adopted rows follow OKKI here (the default, fill_empty, keeps what was typed).
        project.extra_env["TARGET_TWENTY_ADOPTED_ROWS"] = "update"
        pair = collide(sandbox)
        okki = documented(sandbox.okki.records())["companies"]
        # A company renamed by `change_okki` (so sent again) whose row was made by hand.
        renamed = [c for c in okki if c["company_id"] not in (pair["owner"], pair["twin"])][:3]
        make_by_hand(sandbox, next(c for c in renamed if c["homepage"]))
        run_and_compare(project, sandbox)
        if lose_id_map:  # containers and orchestrators discard local files
            for path in project.workdir.glob("twenty-ids.sqlite3*"):
                path.unlink()
        change_okki(sandbox, pair)
        run_and_compare(project, sandbox)
        results.append(contents(sandbox.twenty.records()))

    assert results[1] == results[0]
    adopted = [c for c in results[1]["companies"] if not _is_v5(c[0])]
    assert len(adopted) == 1  # the row made by hand, still the only row of its company


def _is_v5(row_id: str) -> bool:
    return uuid.UUID(row_id).version == 5
