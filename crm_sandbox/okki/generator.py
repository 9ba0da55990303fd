"""Seeded fake OKKI data: companies with contacts and custom fields, their opportunities and
their follow-ups (calls, meetings, emails, notes naming a contact or an opportunity).

The data is messy the way real CRM data is: Chinese and English names, homepages in mixed case
or missing, contacts without an email, and companies that share an `update_time` second (bulk
edits and automations make ties common).

Collisions are deliberate and measured (tests/sandbox/test_okki_contract.py): every company
has a domain of its own, except every SHARED_DOMAIN_EVERY-th, which reuses an earlier company's
written differently (letter case, scheme, `www.`, a path): subsidiaries, resellers, typos.
Likewise every contact's address is its own, except shared mailboxes (`info@…` of a sourcing
agent) and people listed under two companies, some in another letter case. Counting, not
drawing, keeps the shares steady whatever the seed and the size.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from crm_sandbox.okki.records import (
    CATEGORIES,
    CONTACT_TYPES,
    CUSTOM_FIELD_GROUPS,
    ORIGINS,
    PRODUCT_GROUPS,
    STAGES,
    TAGS,
    TRAIL_STATUSES,
    TRAIL_TYPES,
    USERS,
    Company,
    Contact,
    FollowUp,
    Opportunity,
    format_date,
)

T = TypeVar("T")
DAY = 86_400
HISTORY_DAYS = 30  # generated update_times fall in the 30 days before the sandbox started
SHARED_DOMAIN_EVERY = 30  # this company, and the earlier one it copies: ~6% share a domain
SHARED_MAILBOX_EVERY = 33  # contacts whose address is a shared mailbox (_SHARED_EMAILS)
REPEATED_PERSON_EVERY = 33  # contacts whose address an earlier contact has: ~9% in all


@dataclass(frozen=True)
class _Country:
    code: str
    phone: str
    cities: tuple[tuple[str, str], ...]  # (province, city); province only where it is used
    streets: tuple[str, ...]
    suffixes: tuple[str, ...]
    tld: str


_COUNTRIES = (
    _Country(
        "CN",
        "86",
        (("广东", "深圳"), ("浙江", "宁波"), ("上海", "上海"), ("浙江", "义乌")),
        ("南山区科技园路", "鄞州区天童路", "浦东新区张江路", "稠城街道工人北路"),
        ("有限公司", "贸易有限公司", "实业有限公司"),
        ".cn",
    ),
    _Country(
        "US",
        "1",
        (("CA", "Los Angeles"), ("NY", "New York"), ("TX", "Houston"), ("IL", "Chicago")),
        ("Main St", "Commerce Blvd", "Harbor Ave", "Industrial Pkwy"),
        ("Inc.", "LLC", "Corp."),
        ".com",
    ),
    _Country(
        "DE",
        "49",
        (("", "Berlin"), ("", "Hamburg"), ("", "München")),
        ("Hauptstraße", "Industriestraße", "Hafenweg"),
        ("GmbH", "AG", "GmbH & Co. KG"),
        ".de",
    ),
    _Country(
        "GB",
        "44",
        (("", "London"), ("", "Manchester"), ("", "Birmingham")),
        ("High Street", "Station Road", "Mill Lane"),
        ("Ltd", "Limited", "PLC"),
        ".co.uk",
    ),
    _Country(
        "FR",
        "33",
        (("", "Paris"), ("", "Lyon"), ("", "Marseille")),
        ("Rue de la République", "Avenue Jean Jaurès", "Quai du Port"),
        ("SARL", "SAS"),
        ".fr",
    ),
    _Country(
        "ES",
        "34",
        (("", "Madrid"), ("", "Barcelona"), ("", "Valencia")),
        ("Calle Mayor", "Avenida de América", "Calle del Puerto"),
        ("S.L.", "S.A."),
        ".es",
    ),
    _Country(
        "AE",
        "971",
        (("", "Dubai"), ("", "Sharjah")),
        ("Sheikh Zayed Rd", "Al Maktoum St"),
        ("LLC", "FZE", "General Trading LLC"),
        ".ae",
    ),
    _Country(
        "AU",
        "61",
        (("NSW", "Sydney"), ("VIC", "Melbourne")),
        ("George St", "Collins St"),
        ("Pty Ltd",),
        ".com.au",
    ),
    _Country(
        "BR",
        "55",
        (("SP", "São Paulo"), ("RJ", "Rio de Janeiro")),
        ("Avenida Paulista", "Rua das Flores"),
        ("Ltda.", "S.A."),
        ".com.br",
    ),
    _Country(
        "JP",
        "81",
        (("", "Tokyo"), ("", "Osaka")),
        ("Chiyoda", "Kita-ku"),
        ("Co., Ltd.", "K.K."),
        ".jp",
    ),
)
# Drawn uniformly from this pool, so repeats are the weights.
_COUNTRY_POOL = tuple(
    c
    for c, weight in zip(_COUNTRIES, (14, 22, 12, 10, 6, 6, 8, 8, 7, 7), strict=True)
    for _ in range(weight)
)

_CN_CORES = ("华强", "瑞丰", "鑫达", "宏远", "恒信", "金鹏", "海天", "永盛", "博远", "星辰")
_CN_TRADES = ("电子", "五金", "纺织", "照明", "机械", "包装", "家居", "塑胶")
_EN_CORES = (
    "Acme",
    "Nordic",
    "Global",
    "Blue Ocean",
    "Sunrise",
    "Atlas",
    "Pioneer",
    "Everest",
    "Golden Gate",
    "Alpine",
    "Redwood",
    "Harbor",
    "Summit",
    "Falcon",
)
_EN_TRADES = ("Trading", "Imports", "Supplies", "Industries", "Electronics", "Home", "Tools", "")
_FIRST_NAMES = (
    "Anna",
    "James",
    "Maria",
    "Lukas",
    "Sofia",
    "Omar",
    "Emma",
    "Carlos",
    "Yuki",
    "Liam",
)
_LAST_NAMES = ("Schmidt", "Smith", "García", "Rossi", "Müller", "Khan", "Brown", "Silva", "Sato")
# García → garcia, Müller → muller: email addresses are ASCII even when names are not.
_EMAIL_NAMES = {
    name: unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    for name in _FIRST_NAMES + _LAST_NAMES
}
_CN_NAMES = ("张伟", "王芳", "李强", "刘洋", "陈杰", "杨丽", "赵敏", "黄磊")
_POSTS = (
    "Buyer",
    "Purchasing Manager",
    "CEO",
    "Sourcing Specialist",
    "Owner",
    "采购经理",
    "总经理",
)
_SHARED_EMAILS = (
    "info@globalsourcing.com",
    "purchasing@tradehub.net",
    "buyer@gmail.com",
    "sourcing@asia-buyers.com",
    "Info@GlobalSourcing.com",  # the same mailbox, typed by hand
)
_PATHS = ("en/", "about-us", "shop/index.html")
_LANGUAGES = ("", "", "en", "zh", "de", "es")
_CATEGORY_IDS = tuple(CATEGORIES)
_TRAIL_TYPES = (101, 101, 101, 101, *TRAIL_TYPES)  # most are quick notes
_TRAIL_CONTENTS = (
    "Called {name}: interested in {product}.\nWill send samples next week.",
    "<p>Met {name} at the Canton Fair.</p><p>Discussed <b>MOQ</b> and prices for {product}.</p>",
    "Sent the 2026 catalog and a quotation for {product}.",
    "客户询问{product}的报价，已发送目录。\n下周再跟进。",
    "WhatsApp: {name} asks for a discount on {product} &amp; faster delivery<br>Replied: 3% off",
    "Follow-up email, no answer yet.",
    "",
)
_PRODUCT_GROUP_IDS = tuple(PRODUCT_GROUPS)
_INDUSTRIES = ("Retail", "Wholesale", "Manufacturing", "E-commerce", "Construction", "")
_INCOTERMS = ("FOB", "CIF", "EXW", "DDP", "")
_CERTIFICATIONS = ("CE", "RoHS", "ISO 9001", "FCC", "UL")
_PRODUCTS = ("LED panels", "Hand tools", "Cotton fabric", "Packaging film", "Furniture fittings")
_CURRENCIES = ("USD", "USD", "USD", "EUR", "CNY", "GBP")
_USER_IDS = tuple(USERS)
_STATUS_IDS = tuple(TRAIL_STATUSES)
_ORIGIN_IDS = tuple(ORIGINS)
_TAG_IDS = tuple(TAGS)
_STAGE_IDS = tuple(STAGES)
_REMARKS = (
    "",
    "",
    "",
    "Met at Canton Fair",
    "Prefers WhatsApp",
    "大客户，优先跟进",
    "Asked for catalog",
)


class Generator:
    """Builds records from one seeded random stream; also makes the later edits and inserts.

    Draws go through `random()` directly: `Random.choice`/`randint` cost ~10x more, and 100,000
    companies take some 70 draws each.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._random = self.rng.random
        self._company_id = 56_650_000_000_000  # 14-digit ids, as upstream
        self._customer_id = 7_000_000
        self._opportunity_id = 880_000
        self._serial = 0
        self._trail_id = 25_646_265_870_000  # 14-digit ids, as upstream
        self._domains: list[str] = []  # of companies with a homepage, for shared domains
        self._emails: list[str] = []  # of contacts with an address, for repeated people
        self._contacts = 0

    def _pick(self, options: Sequence[T]) -> T:
        return options[int(self._random() * len(options))]

    def _int(self, low: int, high: int) -> int:
        """Uniform in low..high, both included."""
        return low + int(self._random() * (high - low + 1))

    def _some(self, options: Sequence[T], counts: Sequence[int]) -> tuple[T, ...]:
        """A few distinct options; how many is drawn from `counts`."""
        k = self._pick(counts)
        chosen: list[T] = []
        while len(chosen) < k:  # rejection is cheap: k is tiny next to len(options)
            option = self._pick(options)
            if option not in chosen:
                chosen.append(option)
        return tuple(chosen)

    def initial(
        self, count: int, started: int
    ) -> tuple[list[Company], list[Opportunity], list[FollowUp]]:
        """`count` companies updated in the 30 days before `started`; ~40% have opportunities,
        most have a few follow-ups, half of them in those 30 days."""
        companies: list[Company] = []
        opportunities: list[Opportunity] = []
        follow_ups: list[FollowUp] = []
        for _ in range(count):
            if companies and self._random() < 0.15:  # a tie with an earlier company's second
                updated = self._pick(companies).update_time
            else:
                updated = started - self._int(60, HISTORY_DAYS * DAY)
            created = updated - self._int(3_600, 900 * DAY)
            company = self.company(created, updated, started)
            companies.append(company)
            if self._random() < 0.4:
                for _ in range(self._int(1, 3)):
                    earliest = max(created + 120, started - HISTORY_DAYS * DAY)
                    opp_updated = self._int(earliest, started - 60)
                    opp_created = self._int(created, opp_updated - 60)
                    opportunities.append(self.opportunity(company, opp_created, opp_updated))
            theirs = [o for o in opportunities[-3:] if o.company_id == company.company_id]
            for _ in range(self._pick((0, 0, 1, 1, 2, 3, 5))):
                if self._random() < 0.5:
                    at = self._int(max(created, started - HISTORY_DAYS * DAY), started - 60)
                else:
                    at = self._int(created, started - 60)
                written = at
                if self._random() < 0.25:  # edited, or written down days after it happened
                    written = self._int(at, min(started - 60, at + 5 * DAY))
                follow_ups.append(self.follow_up(company, theirs, at, written))
        return companies, opportunities, follow_ups

    def company(self, created: int, updated: int, now: int) -> Company:
        pick, draw, num = self._pick, self._random, self._int
        self._company_id += num(1, 5_000)
        self._serial += 1
        country = pick(_COUNTRY_POOL)
        province, city = pick(country.cities)
        if country.code == "CN" or draw() < 0.05:  # some Chinese-run companies abroad
            core = pick(_CN_CORES)
            name = f"{city}{core}{pick(_CN_TRADES)}{pick(_COUNTRIES[0].suffixes)}"
            short_name, slug = core, f"{pick(('hq', 'rf', 'xd', 'hy'))}{self._serial}"
            address = f"{pick(country.streets)}{num(1, 300)}号"
        else:
            core, trade = pick(_EN_CORES), pick(_EN_TRADES)
            name = " ".join(p for p in (core, trade, pick(country.suffixes)) if p)
            short_name = core if draw() < 0.6 else ""
            # The serial makes the domain the company's own, whatever its name.
            slug = f"{core}{trade}".replace(" ", "") + f"{self._serial:x}"
            address = f"{num(1, 300)} {pick(country.streets)}"
        domain = f"{slug.lower()}{country.tld}"
        if self._domains and self._serial % SHARED_DOMAIN_EVERY == 0:
            homepage = self._shared_homepage(pick(self._domains))
        else:
            homepage = self._homepage(slug, country.tld)
            if homepage:
                self._domains.append(domain)
        owners = self._some(_USER_IDS, (0, 1, 1, 1, 1, 1, 2))
        editors = owners or _USER_IDS
        return Company(
            company_id=self._company_id,
            serial_id=f"KH{self._serial:06d}",
            name=name,
            short_name=short_name,
            country=country.code,
            province=province,
            city=city,
            address=address,
            homepage=homepage,
            tel=(country.phone, str(num(10**8, 10**10))) if draw() < 0.8 else ("", ""),
            fax="" if draw() < 0.9 else str(num(10**8, 10**9)),
            remark=pick(_REMARKS),
            star=num(0, 5),
            intention_level=num(0, 3),
            scale_id=num(1, 6),
            group_id=pick((0, 0, 1, 2, 3)),
            trail_status=pick(_STATUS_IDS),
            origins=self._some(_ORIGIN_IDS, (0, 1, 1, 2)),
            tags=self._some(_TAG_IDS, (0, 0, 1, 2)),
            owners=owners,
            create_user=pick(editors),
            last_edit_user=pick(editors),
            archive_type=pick((1, 1, 1, 2, 4, 6, 7)),
            create_time=created,
            update_time=updated,
            edit_time=num(created, updated),
            order_time=0 if draw() < 0.4 else num(created, max(created, now)),
            next_follow_up_time=self._next_follow_up(now),
            custom=self._custom_values(),
            categories=self._some(_CATEGORY_IDS, (0, 1, 1, 2)),
            product_groups=self._some(_PRODUCT_GROUP_IDS, (0, 1)),
            images=0 if draw() < 0.8 else num(1, 2),
            customers=[self.contact(slug, country, i == 0) for i in range(num(0, 4))],
        )

    def _homepage(self, slug: str, tld: str) -> str:
        form = self._int(0, 5)
        if form == 0:
            return ""
        if form == 1:
            return f"HTTPS://{slug.capitalize()}{tld}/"
        if form == 2:
            return f"www.{slug.lower()}{tld}"
        if form == 3:
            return f"http://{slug.lower()}{tld}"
        return f"https://www.{slug.lower()}{tld}"

    def _next_follow_up(self, now: int) -> int:
        """Unset for most; planned in the next 30 days, or passed unattended."""
        roll = self._random()
        if roll < 0.6:
            return 0
        if roll < 0.9:
            return now + self._int(DAY, 30 * DAY)
        return now - self._int(DAY, 10 * DAY)

    def _shared_homepage(self, domain: str) -> str:
        """Another company's domain, written another way."""
        kind = self._int(0, 3)
        if kind == 0:
            return f"https://{domain.capitalize()}"
        if kind == 1:
            return f"http://{domain}"
        if kind == 2:
            return f"www.{domain}"
        return f"https://{domain}/{self._pick(_PATHS)}"

    def _custom_values(self) -> tuple[object, ...]:
        by_id = {
            3001: self._pick(_INDUSTRIES),
            3002: self._pick((0, 250_000, 1_200_000, 8_000_000)),
            3003: f"{self._int(1960, 2020)}-{self._int(1, 12):02d}-{self._int(1, 28):02d}",
            3101: ", ".join(self._some(_PRODUCTS, (0, 1, 2))),
            3102: self._pick(_INCOTERMS),
            3103: list(self._some(_CERTIFICATIONS, (0, 1, 2))),
        }
        return tuple(by_id[fid] for _, _, fields in CUSTOM_FIELD_GROUPS for fid, _, _ in fields)

    def contact(self, slug: str, country: _Country, main: bool) -> Contact:
        pick, draw, num = self._pick, self._random, self._int
        self._customer_id += num(1, 9)
        if country.code == "CN":
            name = pick(_CN_NAMES)
            local = f"{pick(('sales', 'zhang', 'wang', 'li'))}{num(1, 99)}"
        else:
            first, last = pick(_FIRST_NAMES), pick(_LAST_NAMES)
            name, local = f"{first} {last}", f"{_EMAIL_NAMES[first]}.{_EMAIL_NAMES[last]}"
        self._contacts += 1
        roll = draw()
        if self._contacts % SHARED_MAILBOX_EVERY == 0:
            email = _SHARED_EMAILS[self._contacts // SHARED_MAILBOX_EVERY % len(_SHARED_EMAILS)]
        elif self._contacts % REPEATED_PERSON_EVERY == REPEATED_PERSON_EVERY // 2 and self._emails:
            email = pick(self._emails)
            email = email.upper() if draw() < 0.3 else email  # typed again, in capitals
        elif roll < 0.15:
            email = ""
        elif roll < 0.3:  # typed by hand: mixed case
            email = f"{local.capitalize()}@{slug.capitalize()}{country.tld.upper()}"
        else:
            email = f"{local}@{slug.lower()}{country.tld}"
        if email and email not in _SHARED_EMAILS:
            self._emails.append(email)
        return Contact(
            customer_id=self._customer_id,
            name=name,
            email=email,
            tel=((country.phone, str(num(10**8, 10**10))),) if draw() < 0.7 else (),
            post=pick(_POSTS),
            post_grade=num(0, 3),
            gender=num(0, 2),
            birth="" if draw() < 0.8 else f"19{num(60, 99)}-0{num(1, 9)}-1{num(0, 9)}",
            remark="",
            main=main,
            contact=tuple(
                (kind, f"{local}-{num(10, 99)}") for kind in self._some(CONTACT_TYPES, (0, 0, 1, 2))
            ),
            language=pick(_LANGUAGES),
        )

    def opportunity(self, company: Company, created: int, updated: int) -> Opportunity:
        self._opportunity_id += self._int(1, 9)
        main = next((p.customer_id for p in company.customers if p.main), 0)
        return Opportunity(
            opportunity_id=self._opportunity_id,
            serial_id=f"OP-{self._opportunity_id - 880_000:06d}",
            name=f"{self._pick(_PRODUCTS)} order",
            company_id=company.company_id,
            customer_id=main,
            amount=round(500 + self._random() * 199_500, 2),
            currency=self._pick(_CURRENCIES),
            stage=self._pick(_STAGE_IDS),
            account_date=format_date(updated + self._int(-30, 120) * DAY),
            user_id=self._pick(company.owners or _USER_IDS),
            create_time=created,
            update_time=updated,
            remark=self._pick(_REMARKS),
        )

    def follow_up(
        self, company: Company, opportunities: list[Opportunity], at: int, written: int
    ) -> FollowUp:
        """A follow-up that happened `at` and was last written `written` (not before `at`)."""
        pick, draw = self._pick, self._random
        self._trail_id += self._int(1, 9)
        person = pick(company.customers) if company.customers and draw() < 0.5 else None
        opportunity = pick(opportunities) if opportunities and draw() < 0.4 else None
        name = person.name if person else company.short_name or company.name
        return FollowUp(
            trail_id=self._trail_id,
            type=pick(_TRAIL_TYPES),
            content=pick(_TRAIL_CONTENTS).format(name=name, product=pick(_PRODUCTS)),
            company_id=company.company_id,
            customer_id=person.customer_id if person else 0,
            opportunity_id=opportunity.opportunity_id if opportunity else 0,
            create_user=pick(company.owners or _USER_IDS),
            create_time=at,
            update_time=written,
        )

    # Edits made by the control routes and the churn knob -------------------------------------

    def edit_company(self, company: Company, now: int) -> None:
        """Change a few fields the way a salesperson would (the caller moves update_time)."""
        company.remark = f"Edited {self._int(1000, 9999)}"
        company.star = self._int(0, 5)
        company.last_edit_user = self._pick(company.owners or _USER_IDS)
        company.edit_time = now
        if company.customers:
            self._pick(company.customers).post = self._pick(_POSTS)

    def edit_follow_up(self, follow_up: FollowUp) -> None:
        follow_up.content = f"{follow_up.content}\n(edited {self._int(1000, 9999)})".lstrip()

    def edit_opportunity(self, opportunity: Opportunity) -> None:
        opportunity.stage = self._pick(_STAGE_IDS)
        opportunity.amount = round(500 + self._random() * 199_500, 2)
