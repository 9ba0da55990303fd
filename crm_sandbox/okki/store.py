"""The sandbox's records in memory, kept in time order for the list endpoints.

Lists come newest `update_time` first, ties broken by the higher id, and every request evaluates
its filter afresh (no snapshot, no cursor): that is what makes upstream's page-number paging
shift under a client when a record changes. A `TimeIndex` keeps (update_time, id) pairs sorted,
so an update-time window is two bisections and a page is a slice: work per call is proportional
to the page, not to the number of companies. Other filters (create-time window, pool, group)
scan the index once and cache the matching ids until the data changes. Follow-ups are kept in
`create_time` order (their list windows on it); those of one company or opportunity are found
through a small index of their own.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crm_sandbox.okki.records import Company, FollowUp, Opportunity


class TimeIndex:
    """(time, id) pairs kept sorted; pages are read from the newest end."""

    def __init__(self, pairs: Iterable[tuple[int, int]] = ()) -> None:
        self._pairs = sorted(pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def add(self, at: int, key: int) -> None:
        insort(self._pairs, (at, key))

    def remove(self, at: int, key: int) -> None:
        i = bisect_left(self._pairs, (at, key))
        if i == len(self._pairs) or self._pairs[i] != (at, key):
            raise KeyError((at, key))
        del self._pairs[i]

    def bounds(self, start: int | None, end: int | None) -> tuple[int, int]:
        """Slice bounds of the pairs with start <= time <= end (both ends inclusive)."""
        lo = 0 if start is None else bisect_left(self._pairs, (start,))
        hi = len(self._pairs) if end is None else bisect_left(self._pairs, (end + 1,))
        return lo, max(lo, hi)

    def newest_first(self, lo: int, hi: int, offset: int, count: int) -> list[int]:
        """Ids of the bounded slice, newest first, skipping `offset` and taking `count`."""
        top = hi - offset
        bottom = max(lo, top - count)
        return [self._pairs[i][1] for i in range(top - 1, bottom - 1, -1)]


@dataclass(frozen=True)
class CompanyQuery:
    """The filter of one `/v1/company/list` call (paging aside)."""

    removed: bool = False
    start: int | None = None  # inclusive window, epoch seconds
    end: int | None = None
    time_type: int = 1  # 1 = window on update_time, 2 = on create_time
    pool: int = 1  # `all`: 1 every company, 0 private pool (owned), 2 public pool (no owner)
    group_id: int = 0  # 0 = any group


@dataclass(frozen=True)
class TrailQuery:
    """The filter of one `/v1/dynamic/trail/list` call (paging aside): at most one id."""

    start: int | None = None  # inclusive window on create_time, epoch seconds
    end: int | None = None
    company_id: int = 0  # 0 = any
    opportunity_id: int = 0
    lead_id: int = 0  # the sandbox has no leads: a lead filter matches nothing


class Store:
    def __init__(
        self,
        companies: list[Company],
        opportunities: list[Opportunity],
        follow_ups: Sequence[FollowUp] = (),
    ) -> None:
        self.companies = {c.company_id: c for c in companies}
        self.removed: dict[int, Company] = {}
        self.opportunities = {o.opportunity_id: o for o in opportunities}  # as listed
        self.removed_opportunities: dict[int, Opportunity] = {}  # deleted, no longer listed
        self._live_index = TimeIndex((c.update_time, c.company_id) for c in companies)
        self._removed_index = TimeIndex()
        self._opportunity_index = TimeIndex(
            (o.update_time, o.opportunity_id) for o in opportunities
        )
        self.follow_ups = {f.trail_id: f for f in follow_ups}
        self._follow_up_index = TimeIndex((f.create_time, f.trail_id) for f in follow_ups)
        self._follow_ups_of: dict[tuple[str, int], list[int]] = {}  # ("company_id", id) → ids
        for f in follow_ups:
            self._index_follow_up(f)
        self._version = 0  # bumped on every change; keys the scan cache
        self._scan_cache: tuple[tuple[CompanyQuery, int], list[int]] | None = None

    # Reads -------------------------------------------------------------------------------------

    def list_companies(
        self, query: CompanyQuery, offset: int, count: int
    ) -> tuple[int, list[Company]]:
        """(total matching, one page of matching companies newest update first)."""
        table = self.removed if query.removed else self.companies
        index = self._removed_index if query.removed else self._live_index
        if query.time_type == 1 and query.pool == 1 and not query.group_id:
            lo, hi = index.bounds(query.start, query.end)
            return hi - lo, [table[i] for i in index.newest_first(lo, hi, offset, count)]
        ids = self._scan(query, table, index)
        return len(ids), [table[i] for i in ids[offset : offset + count]]

    def _scan(self, query: CompanyQuery, table: dict[int, Company], index: TimeIndex) -> list[int]:
        key = (query, self._version)
        if self._scan_cache is None or self._scan_cache[0] != key:
            ids = [
                i
                for i in index.newest_first(0, len(index), 0, len(index))
                if _matches(table[i], query)
            ]
            self._scan_cache = (key, ids)
        return self._scan_cache[1]

    def list_opportunities(
        self, start: int | None, end: int | None, offset: int, count: int
    ) -> tuple[int, list[Opportunity]]:
        lo, hi = self._opportunity_index.bounds(start, end)
        ids = self._opportunity_index.newest_first(lo, hi, offset, count)
        return hi - lo, [self.opportunities[i] for i in ids]

    def list_follow_ups(
        self, query: TrailQuery, offset: int, count: int
    ) -> tuple[int, list[FollowUp]]:
        """(total matching, one page newest create_time first, ties by the higher id)."""
        if query.lead_id:
            return 0, []
        owner = ("company_id", query.company_id) if query.company_id else None
        if query.opportunity_id:
            owner = ("opportunity_id", query.opportunity_id)
        if owner is None:
            lo, hi = self._follow_up_index.bounds(query.start, query.end)
            ids = self._follow_up_index.newest_first(lo, hi, offset, count)
            return hi - lo, [self.follow_ups[i] for i in ids]
        matching = sorted(
            (
                self.follow_ups[i]
                for i in self._follow_ups_of.get(owner, [])
                if _within(self.follow_ups[i].create_time, query.start, query.end)
            ),
            key=lambda f: (f.create_time, f.trail_id),
            reverse=True,
        )
        return len(matching), matching[offset : offset + count]

    def all_follow_ups(self) -> list[FollowUp]:
        return self.list_follow_ups(TrailQuery(), 0, len(self.follow_ups))[1]

    def live_companies(self) -> list[Company]:
        """Every live company, newest update first."""
        return self.list_companies(CompanyQuery(), 0, len(self.companies))[1]

    def removed_companies(self) -> list[Company]:
        return self.list_companies(CompanyQuery(removed=True), 0, len(self.removed))[1]

    def all_opportunities(self) -> list[Opportunity]:
        return self.list_opportunities(None, None, 0, len(self.opportunities))[1]

    # Changes (each sets update_time to `now`, which moves the record to the newest end) -------

    def touch_company(self, company: Company, now: int) -> None:
        self._live_index.remove(company.update_time, company.company_id)
        company.update_time = now
        self._live_index.add(now, company.company_id)
        self._version += 1

    def add_company(self, company: Company) -> None:
        self.companies[company.company_id] = company
        self._live_index.add(company.update_time, company.company_id)
        self._version += 1

    def remove_company(self, company: Company, now: int) -> None:
        """Move a company to the removed list; its opportunities stay."""
        self._live_index.remove(company.update_time, company.company_id)
        del self.companies[company.company_id]
        company.update_time = now
        self.removed[company.company_id] = company
        self._removed_index.add(now, company.company_id)
        self._version += 1

    def touch_opportunity(self, opportunity: Opportunity, now: int) -> None:
        self._opportunity_index.remove(opportunity.update_time, opportunity.opportunity_id)
        opportunity.update_time = now
        self._opportunity_index.add(now, opportunity.opportunity_id)

    def add_follow_up(self, follow_up: FollowUp) -> None:
        self.follow_ups[follow_up.trail_id] = follow_up
        self._follow_up_index.add(follow_up.create_time, follow_up.trail_id)
        self._index_follow_up(follow_up)

    def _index_follow_up(self, f: FollowUp) -> None:
        self._follow_ups_of.setdefault(("company_id", f.company_id), []).append(f.trail_id)
        if f.opportunity_id:
            owner = ("opportunity_id", f.opportunity_id)
            self._follow_ups_of.setdefault(owner, []).append(f.trail_id)

    def remove_opportunity(self, opportunity: Opportunity, now: int, listed: bool) -> None:
        """Delete an opportunity: still listed, flagged (`listed`), or gone from the list."""
        if listed:
            opportunity.deleted = True
            self.touch_opportunity(opportunity, now)
            return
        self._opportunity_index.remove(opportunity.update_time, opportunity.opportunity_id)
        del self.opportunities[opportunity.opportunity_id]
        opportunity.deleted = True
        opportunity.update_time = now
        self.removed_opportunities[opportunity.opportunity_id] = opportunity


def _matches(company: Company, query: CompanyQuery) -> bool:
    at = company.update_time if query.time_type == 1 else company.create_time
    if query.start is not None and at < query.start:
        return False
    if query.end is not None and at > query.end:
        return False
    if query.pool == 0 and not company.owners:
        return False
    if query.pool == 2 and company.owners:
        return False
    return not query.group_id or company.group_id == query.group_id


def _within(at: int, start: int | None, end: int | None) -> bool:
    return (start is None or at >= start) and (end is None or at <= end)
