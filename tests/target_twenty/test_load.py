"""Loading companies, people and opportunities: values, links, idempotent re-runs (rules 9, 11)."""

from __future__ import annotations

from tests.target_twenty import crm_data as data
from tests.target_twenty.conftest import TargetRunner


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["id"]: row for row in rows}


def test_ten_thousand_records_load_with_right_values_and_links_and_a_rerun_creates_nothing(
    target: TargetRunner,
) -> None:
    companies, people, opportunities = 3000, 6000, 1000
    lines = data.singer_lines(companies, people, opportunities, state_every=500)

    first = target.run(lines)

    assert first.returncode == 0, first.stderr[-3000:]
    held = target.twenty.records()
    assert len(held["companies"]) == companies
    assert len(held["people"]) == people
    assert len(held["opportunities"]) == opportunities
    company_by_domain = {c["domainName"]["primaryLinkUrl"]: c for c in held["companies"]}
    for i in range(1, companies + 1):
        row = company_by_domain[data.domain(i)]
        source = data.company(i)
        assert (row["name"], row["employees"]) == (source["name"], source["employees"])
        assert row["address"]["addressCity"] == source["city"]
    company_id_of = {i: company_by_domain[data.domain(i)]["id"] for i in range(1, companies + 1)}
    person_by_email = {p["emails"]["primaryEmail"]: p for p in held["people"]}
    for j in range(people):
        row = person_by_email[data.email(j)]
        assert row["name"] == {"firstName": f"First{j}", "lastName": f"Last{j}"}
        assert row["companyId"] == company_id_of[data.company_of_person(j, companies)]
    person_id_of = {j: person_by_email[data.email(j)]["id"] for j in range(people)}
    opportunity_by_name = {o["name"]: o for o in held["opportunities"]}
    for k in range(opportunities):
        source = data.opportunity(k, companies, people)
        row = opportunity_by_name[source["name"]]
        assert row["stage"] == source["stage"]
        assert row["amount"] == {"amountMicros": source["amount_micros"], "currencyCode": "USD"}
        assert row["closeDate"].startswith(source["close_date"][:19])
        assert row["companyId"] == company_id_of[source["company_id"]]
        assert row["pointOfContactId"] == person_id_of[int(source["contact_id"][2:])]
    # STATE after acknowledged batches, in order, the last one being the input's last (of
    # STATEs acknowledged at the same moment, only the latest is written: issue 19).
    sent = [{"line": n} for n, line in enumerate(lines) if '"STATE"' in line]
    assert first.states == [state for state in sent if state in first.states]
    assert first.states[-1] == {"line": len(lines) - 1} and len(first.states) > 1
    assert all(r["batch_size"] <= 60 for r in target.twenty.requests() if r["batch_size"])
    # No log line per 60-record batch at the default level: progress lines say how it goes.
    assert "is full" not in first.stderr and "batch_processing_time" not in first.stderr
    assert "records/min" in first.stderr
    created = target.twenty.stats()

    second = target.run(lines)

    assert second.returncode == 0, second.stderr[-3000:]
    again = target.twenty.stats()
    for plural in ("companies", "people", "opportunities"):
        assert again[plural]["created"] == created[plural]["created"]  # nothing new
    assert by_id(target.twenty.records()["people"]).keys() == by_id(held["people"]).keys()
    report = target.report()
    assert sum(1 for line in report if line["action"] == "created") == 10_000
    assert sum(1 for line in report if line["action"] == "updated") == 10_000
    assert target.dead_letters() == []
