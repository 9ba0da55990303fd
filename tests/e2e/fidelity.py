"""Twenty against OKKI, record by record: every customer arrives as itself (invariants 15, 16).

`assert_twenty_mirrors_okki` compares the two sandboxes after `meltano run tap-okki
target-twenty` with the OKKI mapping of meltano.yml:

- every live OKKI company, contact and opportunity is exactly one live Twenty row (found by its
  `okkiId`, else by its stable id), with its name and its links (person → company, opportunity
  → company and main contact);
- no live Twenty row is owned by two OKKI keys, and none stands for a deleted or unknown one
  (rows made in Twenty that no record adopted are left alone);
- unique values: a company's canonical domain (a contact's email) is in its row, either as the
  primary value or, when another live record holds it (a conflict), among the non-unique ones;
  each value some live record carries is the primary value of exactly one live row;
- the rows of deleted companies and of their contacts are soft-deleted.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from typing import Any

from target_twenty.ids import key_text, stable_id
from target_twenty.values import canonical_domain, canonical_email


def twenty_id(stream: str, key: Any) -> str:
    return stable_id("", stream, key_text([key]))


def assert_twenty_mirrors_okki(okki: dict[str, Any], twenty: dict[str, Any]) -> dict[str, int]:
    """Assert it all; returns counts (live rows per object, conflicts) for the caller's log."""
    live = {k: [r for r in v if not r.get("deletedAt")] for k, v in twenty.items()}
    okki = documented(okki)
    companies = {c["company_id"]: c for c in okki["companies"]}
    contacts = {p["customer_id"]: p for c in okki["companies"] for p in c.get("customers") or []}
    opportunities = {
        o["opportunity_id"]: o for o in okki["opportunities"] if o.get("enable_flag", 1) != 0
    }

    company_rows = _rows_by_key("companies", companies, live["companies"])
    person_rows = _rows_by_key("contacts", contacts, live["people"])
    opportunity_rows = _rows_by_key("opportunities", opportunities, live["opportunities"])

    for key, company in companies.items():
        row = company_rows[key]
        assert row["name"] == (company.get("name") or ""), f"company {key}: name {row['name']!r}"
    for key, contact in contacts.items():
        row = person_rows[key]
        assert row["companyId"] == company_rows[contact["company_id"]]["id"], (
            f"contact {key}: linked to {row['companyId']}, not its company"
        )
    for key, opportunity in opportunities.items():
        row = opportunity_rows[key]
        parent = company_rows.get(opportunity["company_id"])
        if parent is not None:
            assert row["companyId"] == parent["id"], f"opportunity {key}: wrong company"
        contact = opportunity.get("customer_id")
        if contact and contact in person_rows:
            assert row["pointOfContactId"] == person_rows[contact]["id"], (
                f"opportunity {key}: wrong point of contact"
            )

    conflicts = _assert_unique_values(
        "companies",
        {k: canonical_domain(c.get("homepage") or "") for k, c in companies.items()},
        company_rows,
        live["companies"],
        lambda row: (row.get("domainName") or {}).get("primaryLinkUrl") or "",
        lambda row: [
            link.get("url") for link in (row.get("domainName") or {}).get("secondaryLinks") or []
        ],
    )
    conflicts += _assert_unique_values(
        "contacts",
        {k: canonical_email(p.get("email") or "") for k, p in contacts.items()},
        person_rows,
        live["people"],
        lambda row: (row.get("emails") or {}).get("primaryEmail") or "",
        lambda row: list((row.get("emails") or {}).get("additionalEmails") or []),
    )

    gone = {r["company_id"] for r in okki.get("removed") or []} - set(companies)
    for row in twenty["companies"]:
        if _owner(row) in {str(k) for k in gone} or row["id"] in {
            twenty_id("companies", k) for k in gone
        }:
            assert row.get("deletedAt"), f"deleted company {row['id']} is live in Twenty"
    return {
        "companies": len(company_rows),
        "people": len(person_rows),
        "opportunities": len(opportunity_rows),
        "conflicts": conflicts,
    }


IDS = ("company_id", "customer_id", "opportunity_id")


def documented(okki: dict[str, Any]) -> dict[str, Any]:
    """The OKKI sandbox's records with their ids as the tap types them (the sandbox serves
    some as text when its `shape_variety` is on)."""

    def typed(record: dict[str, Any]) -> dict[str, Any]:
        fixed = {**record, **{k: _id(record[k]) for k in IDS if k in record}}
        if "customers" in record:
            fixed["customers"] = [typed(p) for p in record["customers"] or []]
        return fixed

    return {
        name: [typed(r) for r in rows] if isinstance(rows, list) else rows
        for name, rows in okki.items()
    }


def _id(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _owner(row: dict[str, Any]) -> str | None:
    return row.get("okkiId") or None


def _rows_by_key(
    stream: str, source: dict[Any, Any], rows: list[dict[str, Any]]
) -> dict[Any, dict[str, Any]]:
    """Each source key's one live row; every live row stands for one live source key."""
    by_key: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    keys = {str(k): k for k in source}
    stable = {twenty_id(stream, k): k for k in source}
    for row in rows:
        owner = _owner(row)
        if owner is not None:
            assert owner in keys, f"Twenty {stream}: row {row['id']} stands for unknown {owner}"
            by_key[keys[owner]].append(row)
        elif uuid.UUID(row["id"]).version == 5:  # written by the target: one of ours
            assert row["id"] in stable, f"Twenty {stream}: row {row['id']} has no source record"
            by_key[stable[row["id"]]].append(row)
        # else: a row made in Twenty that no OKKI record adopted, left as it is
    missing = [k for k in source if k not in by_key]
    assert not missing, f"Twenty {stream}: {len(missing)} missing, e.g. {missing[:3]}"
    twice = [k for k, found in by_key.items() if len(found) > 1]
    assert not twice, f"Twenty {stream}: {len(twice)} keys with two rows, e.g. {twice[:3]}"
    owners = Counter(_owner(r) for r in rows if _owner(r))
    assert max(owners.values(), default=1) == 1, f"Twenty {stream}: a key owns two rows"
    return {k: found[0] for k, found in by_key.items()}


def _assert_unique_values(
    stream: str,
    values: dict[Any, str],
    rows: dict[Any, dict[str, Any]],
    live: list[dict[str, Any]],
    primary: Any,
    secondary: Any,
) -> int:
    """Each record's value is in its row; each value is one live row's primary value."""
    conflicts = 0
    for key, value in values.items():
        if not value:
            continue
        row = rows[key]
        if primary(row) == value:
            continue
        assert primary(row) == "" and value in secondary(row), (
            f"Twenty {stream} {key}: {value!r} is neither its primary value nor kept aside "
            f"(primary {primary(row)!r}, others {secondary(row)!r})"
        )
        conflicts += 1
    holders = Counter(primary(row) for row in live if primary(row))
    for value in {v for v in values.values() if v}:
        assert holders[value] == 1, f"Twenty {stream}: {value!r} is primary in {holders[value]}"
    return conflicts
