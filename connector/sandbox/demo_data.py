"""A seeded demo HubSpot portal whose people exercise every shipped criterion, with the answers.

`connector demo` and the integration tests need a portal where *something happens* on the first sync:
hand-raises that become SQLs, multi-channel readers that become MQLs, near-misses that must not move,
competitors and students that must be capped, sales-owned customers that must be left alone. Each of
those is a **persona**: a recipe for a person (fit profile, current CRM values, dated activities)
plus the outcome the shared criteria (`mappings/criteria.yaml`, `routing.yaml`, `hubspot.yaml`)
should produce for them after one sync.

The expected outcomes are the ground truth the tests compare the emulator's records against, so they
are written down from each persona's *design*, by hand, never by running the engine or the CEL
conditions: if they were computed by the code under test they would agree with any bug in it. To
keep that hand arithmetic trustworthy, every persona keeps its numbers comfortably away from the
thresholds (two pricing views where two are needed, never "exactly at the edge of a fit grade") and
every activity away from window edges. Activities are placed at 09:00-17:00 UTC on whole calendar days
before `now`'s day: "in a 30-day window" means 1-20 days ago, "in a 7-day window" 1-5 days ago, "in the
14-day window" at most 10 days ago, "old" 45-80 days ago (outside 30 days, inside 90) and "very old"
110+ days ago. So the expectations hold whatever minute of the day the test runs, and distinct active
days are distinct UTC dates.

Fit profiles (criteria.yaml `fit`), with the points each one reaches; the `served_country` 15 points
are never needed, so writing "united states" or "USA" (which the case-sensitive CEL list test does not
count) cannot change a grade:

* A: senior title 30 + 50-5000 employees 25 + target industry 20 (+ served country 15) = 75 or 90
* B: manager title 15 + size 25 + target industry 20 (+ 15) = 60 or 75 -> B or A (every rule treats
  A and B alike)
* C: plain title 0 + size 25 + other industry 0 (+ 15) = 25 or 40
* D: free-mail address -30 + small/unknown company, other industry (+ senior title 30) (+ 15) <= 15

Routing (routing.yaml): a handed-off person (MQL or SQL, not disqualified) keeps an active owner;
otherwise a North American country goes to the north_america pool (Ana, Ben; Chloe is archived), an
EMEA country to the emea pool (Dev, Emma), anything else to Frank. Round-robin order depends on the
order the engine processes people, so pooled people expect "one of the pool's active members".
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.sandbox.hubspot_store import (
    LIFECYCLE_STAGES,
    HubSpotStore,
    default_contact_properties,
    hs_datetime,
    property_definition,
)

# --- HubSpot values the demo writes (HubSpot internal names) ----------------------------------------

SUBSCRIBER = "subscriber"
LEAD = "lead"
MQL = "marketingqualifiedlead"
SQL = "salesqualifiedlead"
OPPORTUNITY = "opportunity"
CUSTOMER = "customer"

_STAGE_RANK = {value: rank for rank, (value, _label) in enumerate(LIFECYCLE_STAGES)}
_SALES_OWNED = frozenset({OPPORTUNITY, CUSTOMER})
_HANDOFF = frozenset({MQL, SQL})

# --- Owners -----------------------------------------------------------------------------------------

ANA, BEN, CHLOE, DEV, EMMA, FRANK = "70000001", "70000002", "70000003", "70000004", "70000005", "70000006"
GRACE = "70000007"
"""Grace Green, an account executive outside every pool who already owns some contacts."""
HUGO = "70000008"
"""Hugo Hill, a customer success manager who owns customers."""

_OWNERS: tuple[tuple[str, str, str, bool], ...] = (
    (ANA, "Ana", "Alvarez", False),
    (BEN, "Ben", "Brooks", False),
    (CHLOE, "Chloe", "Chen", True),  # archived: left the company, still owns a few contacts
    (DEV, "Dev", "Desai", False),
    (EMMA, "Emma", "Eriksen", False),
    (FRANK, "Frank", "Fischer", False),
    (GRACE, "Grace", "Green", False),
    (HUGO, "Hugo", "Hill", False),
)
ACTIVE_OWNER_IDS: frozenset[str] = frozenset(oid for oid, _f, _l, archived in _OWNERS if not archived)

# Pools as routing.yaml defines them, minus the archived Chloe. Written out here (not read from the
# mapping) so the expectations stay independent of the routing code; a test checks they agree.
NORTH_AMERICA_POOL: tuple[str, ...] = (ANA, BEN)
EMEA_POOL: tuple[str, ...] = (DEV, EMMA)
FALLBACK_OWNER = FRANK
ENTERPRISE_POOL: tuple[str, ...] = (GRACE, DEV)
US_WEST_POOL: tuple[str, ...] = (BEN, EMMA)

# Country values per territory, written the way people type them into forms.
_COUNTRIES: dict[str, tuple[str | None, ...]] = {
    "na": ("United States", "United States", "Canada", "USA", "US"),
    "emea": ("United Kingdom", "Germany", "France", "Netherlands", "Spain", "Sweden", "Italy"),
    "other": ("Australia", "Brazil", "India", "Japan", "Singapore", "Mexico", "South Africa"),
}
_REGION_CYCLE = ("na", "emea", "na", "other", "emea", "na")

# --- Fit building blocks (see the module docstring for the points) -----------------------------------

_SENIOR_TITLES = (
    "VP of Marketing",
    "Vice President, Sales",
    "Director of Operations",
    "Head of Growth",
    "Chief Revenue Officer",
    "CTO",
    "CFO",
    "Founder",
    "Head of RevOps",
    "Director, Demand Generation",
)
_MANAGER_TITLES = (
    "Marketing Manager",
    "IT Manager",
    "Product Marketing Manager",
    "Operations Manager",
    "Sales Operations Manager",
    "Manager, Finance Systems",
)
_PLAIN_TITLES = (
    "Data Analyst",
    "Software Engineer",
    "UX Designer",
    "Marketing Specialist",
    "Project Coordinator",
    "Consultant",
    "Accountant",
    "Business Analyst",
    "Content Writer",
)
TARGET_INDUSTRIES = ("Software", "Financial Services", "Healthcare", "Manufacturing")
_OTHER_INDUSTRIES = ("Retail", "Media", "Hospitality", "Non-profit", "Construction", "Logistics")
FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "gmx.de")
COMPETITOR_DOMAINS = ("rivalsoft.com", "competeco.io")
_EDU_DOMAINS = ("northfield.edu", "lakeshore-state.edu")

_COMPANIES: tuple[tuple[str, str], ...] = (
    ("Brightloop Analytics", "brightloop.io"),
    ("Quantaledger", "quantaledger.com"),
    ("Nordic Freight Systems", "nordicfreight.se"),
    ("Harbor Health Partners", "harborhealth.com"),
    ("Copperleaf Manufacturing", "copperleafmfg.com"),
    ("Sable & Finch Capital", "sablefinch.com"),
    ("Tidewater Software", "tidewatersoft.com"),
    ("Meridian Clinics", "meridianclinics.co.uk"),
    ("Pinecrest Robotics", "pinecrestrobotics.com"),
    ("Luma Payments", "lumapay.io"),
    ("Orchard Logistics", "orchardlogistics.com"),
    ("Kestrel Data", "kestreldata.de"),
    ("Bluefin Insurance", "bluefin-insurance.com"),
    ("Atlas Fabrication", "atlasfab.com"),
    ("Verdant Labs", "verdantlabs.nl"),
    ("Cobalt Cloudworks", "cobaltcloud.io"),
    ("Granite Peak Bank", "granitepeakbank.com"),
    ("Solstice Media", "solsticemedia.fr"),
    ("Redwood Retail Group", "redwoodretail.com"),
    ("Ironbridge Systems", "ironbridge.ca"),
    ("Halcyon Hotels", "halcyonhotels.com"),
    ("Northstar Devices", "northstardevices.com"),
    ("Aurora Biotech", "aurorabio.com.au"),
    ("Fjord Energy", "fjordenergy.no"),
    ("Mosaic Learning", "mosaiclearning.org"),
    ("Trellis HR", "trellishr.com"),
    ("Vantage Point Media", "vantagepoint.es"),
    ("Keystone Builders", "keystonebuilders.com"),
    ("Silverline Fintech", "silverline.sg"),
    ("Ember Foods", "emberfoods.com.br"),
)
_FIRST_NAMES = (
    "Olivia", "Liam", "Sofia", "Noah", "Amara", "Mateo", "Priya", "Lucas", "Hannah", "Kenji",
    "Elena", "Omar", "Chloe", "Jonas", "Fatima", "Diego", "Ingrid", "Samuel", "Aisha", "Pierre",
    "Mei", "Tomasz", "Grace", "Rafael", "Nadia", "Ethan", "Yuki", "Leila", "Marcus", "Zara",
    "Henrik", "Isabel", "Kwame", "Anika", "Felix", "Lucia", "Arjun", "Maren", "Theo", "Camila",
    "Daniel", "Freya", "Hugo", "Keira", "Mohammed", "Nora", "Oscar", "Paula", "Ravi", "Sara",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Garcia", "Okafor", "Lindqvist", "Nakamura", "Rossi", "Patel", "Dubois", "Kowalski",
    "Haddad", "Schmidt", "Silva", "Murphy", "Jensen", "Novak", "Costa", "Mensah", "Tanaka", "Berg",
    "Moreau", "Fischer", "Ivanova", "Reyes", "Walsh", "Khan", "Larsen", "Santos", "Weber", "Osei",
    "Fernandez", "Kim", "Nguyen", "Bauer", "Romero", "Ahmed", "Clarke", "Vogel", "Herrera", "Park",
)  # fmt: skip

# --- The demo company's website and forms ------------------------------------------------------------

SITE = "https://www.northwindcloud.com"
_BLOG_PAGES: tuple[tuple[str, str], ...] = (
    ("/", "Northwind Cloud | Revenue operations, connected"),
    ("/blog/mql-vs-sql", "MQL vs SQL: where the hand-off happens"),
    ("/blog/lead-scoring-basics", "Lead scoring basics"),
    ("/blog/crm-hygiene-checklist", "A CRM hygiene checklist"),
    ("/product/features", "Features"),
    ("/product/integrations", "Integrations"),
    ("/customers", "Customer stories"),
    ("/about", "About us"),
    ("/careers", "Careers"),
)
_PRICING_PAGES: tuple[tuple[str, str], ...] = (
    ("/pricing", "Pricing"),
    ("/pricing?plan=team", "Pricing - Team plan"),
    ("/solutions/revops", "Solutions for RevOps"),
    ("/solutions/marketing-teams", "Solutions for marketing teams"),
)
_CONTENT_FORMS = (
    "White paper: The Lead Hand-off Playbook",
    "eBook: Lifecycle Stages Explained",
    "Buyer's guide: Choosing a RevOps platform",
    "2026 Pipeline Benchmark Report",
)
"""Gated downloads (criteria.yaml content_downloads_30d: white paper, eBook, guide, report)."""
_HAND_RAISE_FORMS = ("Request a demo", "Contact sales", "Talk to an expert")
"""Hand-raises (criteria.yaml hand_raises_30d: demo, contact sales, talk to (an) expert)."""
_PLAIN_FORMS = ("Newsletter signup", "Webinar registration: Pipeline Reviews That Work")
"""Forms that only make a known lead: neither a gated download nor a hand-raise."""

# --- Public API --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedOutcome:
    """What one person's HubSpot record must show after one `connector sync` of the demo portal.

    `owner` is the exact `hubspot_owner_id` expected (None: the record must have no owner). When
    `owner_pool` is non-empty the person is handed to a round-robin pool whose order depends on
    processing order: then `owner` is None and the record's owner must be one of `owner_pool`.
    `email` is the normalised address (trimmed, lower case), whatever the CRM holds.
    """

    contact_id: str
    email: str
    persona: str
    lifecyclestage: str
    hs_lead_status: str | None
    owner: str | None
    why: str
    owner_pool: tuple[str, ...] = ()


@dataclass(frozen=True)
class Persona:
    """A kind of person in the demo: how many, which criteria they exercise and why they end as they do."""

    name: str
    count: int
    criteria: tuple[str, ...]
    why: str
    build: Callable[[_Gen, int], _Plan] = field(repr=False, compare=False)


def build_demo_portal(
    now: datetime, *, seed: int = 7, people: int = 300, extra_personas: Sequence[Persona] = ()
) -> tuple[HubSpotStore, list[ExpectedOutcome]]:
    """A filled portal and the expected outcome of every contact, identical for the same arguments.

    `now` is the evaluation time the sync will use (timezone-aware). `people` must be at least
    `MIN_PEOPLE`; the personas come first and filler people (subscribers and leads with light
    activity) make up the rest. Only `random.Random(seed)` feeds the data, ids included.
    `extra_personas` (the people the Salesforce demo also puts in Salesforce, whose design spans
    both CRMs) are added to the personas, within the same `people`.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (use datetime.now(UTC))")
    needed = MIN_PEOPLE + sum(p.count for p in extra_personas)
    if people < needed:
        raise ValueError(f"the demo personas need at least {needed} people, got {people}")
    gen = _Gen(now.astimezone(UTC), random.Random(seed))
    slots: list[tuple[Persona, int]] = [(p, i) for p in (*PERSONAS, *extra_personas) for i in range(p.count)]
    for i in range(people - len(slots)):
        slots.append((_filler_persona(gen.rng.random()), i))
    gen.rng.shuffle(slots)  # interleave personas, as a real portal would, so round-robin gets a mix
    outcomes = [gen.add_person(persona, index) for persona, index in slots]
    gen.finish()
    return gen.store, sorted(outcomes, key=lambda o: int(o.contact_id))


def write_expected(outcomes: Iterable[ExpectedOutcome], path: Path) -> None:
    """Write the expected outcomes as JSON (a CI artifact; `connector demo` shows the same table)."""
    items = list(outcomes)
    counts: dict[str, int] = {}
    for o in items:
        counts[o.persona] = counts.get(o.persona, 0) + 1
    doc = {
        "count": len(items),
        "personas": dict(sorted(counts.items())),
        "outcomes": [asdict(o) | {"owner_pool": list(o.owner_pool)} for o in items],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- Plans: one person's design ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Act:
    """One activity to create, `days_ago` whole days before today (UTC) at a working-hours time."""

    kind: str  # page | form | chat | open | click | social | reply | meeting | call | out_email | note
    days_ago: int
    value: str = ""  # page path or form name


@dataclass
class _Plan:
    """A person as designed: fit profile, current CRM values, activities and the designed stage.

    `designed` is the HubSpot stage the rules give after disqualifier caps, *before* forward-only;
    `sets_status` the lead status the fired rule or disqualifier sets (None: none). `fields` overrides
    generated contact properties (email, jobtitle, country...).
    """

    grade: str
    region: str
    designed: str
    acts: list[_Act]
    stage: str = SUBSCRIBER
    lead_status: str | None = None
    owner: str | None = None
    optout: bool = False
    disqualified: bool = False
    sets_status: str | None = None
    fields: dict[str, str | None] = field(default_factory=dict)
    routed: tuple[str | None, tuple[str, ...]] | None = None
    """Routing scenarios: (exact owner, or None and the pool to pick from) instead of the territory's."""


class _Gen:
    """Builds people into a store from plans; every random choice comes from `rng`."""

    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now = now
        self.rng = rng
        self.today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.store = HubSpotStore()
        self.emails: set[str] = set()
        self.next_contact = 1000 + rng.randint(1, 400)
        self.next_engagement = 40_000_000_000 + rng.randint(1, 10_000) * 1000
        self.form_ids = {name: self.uuid() for name in (*_CONTENT_FORMS, *_HAND_RAISE_FORMS, *_PLAIN_FORMS)}
        self._seed_owners()
        self._seed_companies()

    # ids, times, choices

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def at(self, days_ago: int) -> datetime:
        """A time between 09:00 and 17:00 UTC on the calendar day `days_ago` days before today."""
        offset = timedelta(
            hours=self.rng.randint(9, 16),
            minutes=self.rng.randint(0, 59),
            seconds=self.rng.randint(0, 59),
            milliseconds=self.rng.randint(0, 999),
        )
        return self.today - timedelta(days=days_ago) + offset

    def days(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def pick(self, options: Sequence[str]) -> str:
        return self.rng.choice(options)

    # activity recipes

    def blog(self, n: int, low: int, high: int) -> list[_Act]:
        return [_Act("page", self.days(low, high), self.rng.choice(_BLOG_PAGES)[0]) for _ in range(n)]

    def pricing(self, n: int, low: int, high: int) -> list[_Act]:
        return [_Act("page", self.days(low, high), self.rng.choice(_PRICING_PAGES)[0]) for _ in range(n)]

    # people

    def add_person(self, persona: Persona, index: int) -> ExpectedOutcome:
        plan = persona.build(self, index)
        cid = str(self.next_contact)
        self.next_contact += self.rng.randint(1, 4)
        props = self._contact_properties(cid, plan)
        self.store.contacts[cid] = props
        self._add_activities(cid, plan, props)
        return _expected(cid, persona, plan, props)

    def _identity(self, plan: _Plan) -> dict[str, str | None]:
        first, last = self.pick(_FIRST_NAMES), self.pick(_LAST_NAMES)
        company, domain = self.rng.choice(_COMPANIES)
        if plan.grade == "D":
            domain = self.pick(FREE_MAIL_DOMAINS)
            company = self.pick((company, "Self-employed", "Freelance"))
        local = f"{first}.{last}" if self.rng.random() < 0.7 else f"{first[0]}{last}"
        if "@" in (plan.fields.get("email") or ""):
            email = plan.fields["email"] or ""
        else:
            domain = plan.fields.get("email_domain") or domain
            email = f"{local}@{domain}".lower()
            while email in self.emails:
                email = f"{local}{self.rng.randint(2, 99)}@{domain}".lower()
        self.emails.add(email.strip().lower())
        return {"email": email, "firstname": first, "lastname": last, "company": company}

    def _fit(self, grade: str, region: str) -> dict[str, str | None]:
        country = self.rng.choice(_COUNTRIES[region])
        if grade == "A":
            title, industry = self.pick(_SENIOR_TITLES), self.pick(TARGET_INDUSTRIES)
        elif grade == "B":
            title, industry = self.pick(_MANAGER_TITLES), self.pick(TARGET_INDUSTRIES)
        elif grade == "C":
            title, industry = self.pick(_PLAIN_TITLES), self.pick(_OTHER_INDUSTRIES)
        else:  # D: free mail, small or unknown company, sometimes a grand title that cannot save it
            title = self.pick(_SENIOR_TITLES) if self.rng.random() < 0.3 else self.pick(_PLAIN_TITLES)
            industry = self.pick(_OTHER_INDUSTRIES)
        if grade == "D":
            employees: str | None = (
                self.pick(("1", "2", "5", "8", "12", "20")) if self.rng.random() < 0.7 else None
            )
        else:
            employees = str(self.rng.choice((80, 120, 250, 400, 750, 1200, 2500, 4000)))
        return {"jobtitle": title, "employee_count": employees, "industry": industry, "country": country}

    def _contact_properties(self, cid: str, plan: _Plan) -> dict[str, str | None]:
        props: dict[str, str | None] = {"hs_object_id": cid}
        props |= self._identity(plan)
        props |= self._fit(plan.grade, plan.region)
        props |= {k: v for k, v in plan.fields.items() if k not in ("email", "email_domain")}
        props |= {
            "hs_email_optout": "true" if plan.optout else "false",
            "lifecyclestage": plan.stage,
            "hs_lead_status": plan.lead_status,
            "hubspot_owner_id": plan.owner,
            "hs_email_last_open_date": None,
            "hs_email_last_click_date": None,
            "hs_social_last_engagement": None,
        }
        return props

    def _add_activities(self, cid: str, plan: _Plan, props: dict[str, str | None]) -> None:
        moments: list[datetime] = []
        for act in plan.acts:
            when = self.at(act.days_ago)
            moments.append(when)
            if act.kind in ("page", "form", "chat"):
                self._event(cid, act, when)
            elif act.kind in ("open", "click", "social"):
                prop = {
                    "open": "hs_email_last_open_date",
                    "click": "hs_email_last_click_date",
                    "social": "hs_social_last_engagement",
                }[act.kind]
                props[prop] = hs_datetime(when)
            else:
                self._engagement(cid, act.kind, when, plan.owner)
        # noise nobody counts: a rep's one-way follow-up emails and internal notes
        if self.rng.random() < 0.25:
            for _ in range(self.rng.randint(1, 2)):
                when = self.at(self.days(1, 60))
                moments.append(when)
                self._engagement(cid, "out_email", when, plan.owner)
        if self.rng.random() < 0.15:
            when = self.at(self.days(1, 90))
            moments.append(when)
            self._engagement(cid, "note", when, plan.owner)
        earliest = min(moments, default=self.at(self.days(30, 400)))
        created = earliest - timedelta(days=self.days(1, 200), minutes=self.rng.randint(0, 600))
        latest_dated = max(self.now - timedelta(days=self.days(1, 60)), created + timedelta(hours=1))
        for prop in ("hs_email_last_open_date", "hs_email_last_click_date", "hs_social_last_engagement"):
            value = props[prop]
            if value is not None:
                latest_dated = max(latest_dated, datetime.fromisoformat(value.replace("Z", "+00:00")))
        props["createdate"] = hs_datetime(created)
        props["lastmodifieddate"] = hs_datetime(min(latest_dated, self.now - timedelta(minutes=5)))

    def _event(self, cid: str, act: _Act, when: datetime) -> None:
        if act.kind == "page":
            title = dict(_BLOG_PAGES + _PRICING_PAGES)[act.value]
            event_type = "e_visited_page"
            properties = {
                "hs_url": SITE + act.value,
                "hs_title": title,
                "hs_referrer": self.pick(("https://www.google.com/", "https://www.linkedin.com/", "")),
                "hs_session_id": str(self.rng.getrandbits(40)),
                "hs_session_source": self.pick(
                    ("ORGANIC_SEARCH", "SOCIAL_MEDIA", "EMAIL_MARKETING", "DIRECT")
                ),
            }
        elif act.kind == "form":
            event_type = "e_submitted_form"
            properties = {
                "hs_form_title": act.value,
                "hs_form_id": self.form_ids[act.value],
                "hs_url": SITE + "/resources/" + re.sub(r"[^a-z0-9]+", "-", act.value.lower()).strip("-"),
            }
        else:
            event_type = "pe4000000_chat_started"
            properties = {
                "hs_url": SITE + self.rng.choice(_BLOG_PAGES)[0],
                "hs_conversation_id": str(self.rng.getrandbits(32)),
                "hs_chat_channel": "Website chat",
            }
        self.store.events.append(
            {
                "id": self.uuid(),
                "eventType": event_type,
                "objectType": "contact",
                "objectId": cid,
                "occurredAt": hs_datetime(when),
                "properties": properties,
            }
        )

    def _engagement(self, cid: str, kind: str, when: datetime, contact_owner: str | None) -> None:
        eid = str(self.next_engagement)
        self.next_engagement += self.rng.randint(1, 50)
        rep = contact_owner if contact_owner in ACTIVE_OWNER_IDS else GRACE
        stamp = hs_datetime(when)
        common: dict[str, str | None] = {
            "hs_object_id": eid,
            "hs_timestamp": stamp,
            "hs_createdate": stamp,
            "hs_lastmodifieddate": hs_datetime(when + timedelta(minutes=self.rng.randint(1, 90))),
            "hubspot_owner_id": rep,
        }
        if kind in ("reply", "out_email"):
            incoming = kind == "reply"
            obj = "emails"
            subject = self.pick(
                ("Following up on your trial", "Quick question about your pipeline", "Next steps")
            )
            common |= {
                "hs_email_direction": "INCOMING_EMAIL" if incoming else "EMAIL",
                "hs_email_subject": ("Re: " if incoming else "") + subject,
                "hs_email_status": "SENT",
                "hs_email_text": "Thanks, that sounds good - let's talk." if incoming else "Hi, checking in.",
            }
        elif kind == "meeting":
            obj = "meetings"
            common |= {
                "hs_meeting_title": self.pick(("Discovery call", "Product walkthrough", "Intro meeting")),
                "hs_meeting_start_time": stamp,
                "hs_meeting_end_time": hs_datetime(when + timedelta(minutes=30)),
                "hs_meeting_outcome": "COMPLETED",
                "hs_meeting_location": "Zoom",
            }
        elif kind == "call":
            obj = "calls"
            common |= {
                "hs_call_title": self.pick(("Qualification call", "Follow-up call")),
                "hs_call_direction": "OUTBOUND",
                "hs_call_status": "COMPLETED",
                "hs_call_duration": str(self.rng.randint(4, 40) * 60_000),
                "hs_call_body": "Talked through current process and timeline.",
            }
        else:
            obj = "notes"
            common |= {"hs_note_body": self.pick(("Met at trade show booth.", "Imported from event list."))}
        self.store.engagements.setdefault(obj, {})[eid] = common
        self.store.associate("contacts", cid, obj, eid)

    def _seed_owners(self) -> None:
        created = self.today - timedelta(days=900)
        for n, (oid, first, last, archived) in enumerate(_OWNERS):
            self.store.owners.append(
                {
                    "id": oid,
                    "email": f"{first}.{last}@northwindcloud.com".lower(),
                    "firstName": first,
                    "lastName": last,
                    "userId": 9_100_001 + n,
                    "userIdIncludingInactive": 9_100_001 + n,
                    "type": "PERSON",
                    "teams": [],
                    "archived": archived,
                    "createdAt": hs_datetime(created + timedelta(days=30 * n)),
                    "updatedAt": hs_datetime(self.today - timedelta(days=20 if archived else 200 - n)),
                }
            )

    def _seed_companies(self) -> None:
        """Routing scenario: the named accounts whose owners take their people (see below)."""
        created = self.today - timedelta(days=700)
        companies = self.store.engagements.setdefault("companies", {})
        for n, (name, domain, owner) in enumerate(NAMED_ACCOUNTS):
            cid = str(9_000_001 + n)
            stamp = hs_datetime(created + timedelta(days=n))
            companies[cid] = {
                "hs_object_id": cid,
                "name": name,
                "domain": domain,
                "hubspot_owner_id": owner,
                "createdate": stamp,
                "hs_createdate": stamp,
                "hs_lastmodifieddate": stamp,
            }

    def finish(self) -> None:
        """Sort events by time (as the Events API pages them) and declare the contact properties."""
        self.store.events.sort(key=lambda e: (e["occurredAt"], e["id"]))
        self.store.properties["contacts"] = contact_property_definitions(self.store.owners, self.today)


def _expected(cid: str, persona: Persona, plan: _Plan, props: dict[str, str | None]) -> ExpectedOutcome:
    """The outcome the design implies: forward-only stage, first-write-only status, hand-off routing."""
    if plan.stage in _SALES_OWNED:
        stage = plan.stage  # Sales owns it: untouched, status and owner included
        status = plan.lead_status
    else:
        stage = max(plan.stage, plan.designed, key=_STAGE_RANK.__getitem__)
        status = plan.lead_status or plan.sets_status
    owner: str | None = plan.owner
    pool: tuple[str, ...] = ()
    if stage in _HANDOFF and not plan.disqualified and plan.owner not in ACTIVE_OWNER_IDS:
        if plan.routed is not None:
            owner, pool = plan.routed
        elif plan.region == "na":
            owner, pool = None, NORTH_AMERICA_POOL
        elif plan.region == "emea":
            owner, pool = None, EMEA_POOL
        else:
            owner = FALLBACK_OWNER
    return ExpectedOutcome(
        contact_id=cid,
        email=(props["email"] or "").strip().lower(),
        persona=persona.name,
        lifecyclestage=stage,
        hs_lead_status=status,
        owner=owner,
        owner_pool=pool,
        why=persona.why,
    )


# --- Personas ---------------------------------------------------------------------------------------
# Each builder returns a plan for the i-th person of its persona. Comments give the hand arithmetic.


def _cycle(options: Sequence[str], i: int) -> str:
    return options[i % len(options)]


def _region(i: int) -> str:
    return _REGION_CYCLE[i % len(_REGION_CYCLE)]


def _sql_hand_raise(g: _Gen, i: int) -> _Plan:
    # hand_raises_30d = 1 (demo form 1-8 days ago), fit A/B -> sql_hand_raise. SQL sets no status.
    acts = [
        *g.blog(2, 2, 10),
        _Act("form", g.days(1, 8), g.pick(_HAND_RAISE_FORMS)),
        _Act("open", g.days(2, 15)),
    ]
    return _Plan(_cycle("AB", i), _region(i), SQL, acts, stage=_cycle((SUBSCRIBER, LEAD), i))


def _sql_sales_conversation(g: _Gen, i: int) -> _Plan:
    # sales_touches_14d = 2 (meeting + reply, <= 10 days ago), interactions_30d = 4, no form, fit A/B.
    acts = [
        _Act("meeting", g.days(2, 10)),
        _Act(g.pick(("reply", "call")), g.days(1, 10)),
        _Act("open", g.days(2, 15)),
        *g.blog(1, 3, 18),
        _Act("out_email", g.days(3, 12)),  # the invitation: outgoing, not counted
    ]
    return _Plan(_cycle("AB", i), _region(i), SQL, acts, stage=LEAD)


def _multi_channel_acts(g: _Gen) -> list[_Act]:
    # channels_30d = 3 (web, email, social), interactions_30d = 6; no form, no pricing, no chat.
    return [
        *g.blog(3, 2, 18),
        _Act("open", g.days(1, 15)),
        _Act("click", g.days(1, 15)),
        _Act("social", g.days(2, 18)),
    ]


def _mql_multi_channel(g: _Gen, i: int) -> _Plan:
    return _Plan(
        _cycle("ABC", i),
        _region(i),
        MQL,
        _multi_channel_acts(g),
        stage=_cycle((SUBSCRIBER, LEAD), i),
        sets_status="NEW",
    )


def _pricing_acts(g: _Gen) -> list[_Act]:
    # pricing_views_30d = 3, channels_30d = 2 (web, email): only mql_pricing_interest can fire (score >= 60).
    return [*g.pricing(3, 1, 15), *g.blog(1, 2, 18), _Act("open", g.days(2, 15))]


def _mql_pricing_interest(g: _Gen, i: int) -> _Plan:
    return _Plan(
        _cycle("AB", i),
        _region(i),
        MQL,
        _pricing_acts(g),
        stage=_cycle((LEAD, SUBSCRIBER), i),
        sets_status="NEW",
    )


def _mql_chat_question(g: _Gen, i: int) -> _Plan:
    # chats_30d = 1, pricing_views_30d = 1 (not 2: pricing interest must not fire first), fit A/B.
    day = g.days(2, 10)
    acts = [*g.pricing(1, day, day), _Act("chat", day), *g.blog(1, 3, 18)]
    return _Plan(_cycle("BA", i), _region(i), MQL, acts, stage=SUBSCRIBER, sets_status="NEW")


def _mql_cadence(g: _Gen, i: int) -> _Plan:
    # The seed's "day 1 visit, day 3 several pages, day 4 white paper": 4, 2 and 1 days ago.
    # active_days_7d = 3, content_downloads_30d = 1, channels 2 (web, content), no pricing; fit B/C.
    acts = [
        _Act("page", 4, "/"),
        _Act("page", 2, "/blog/mql-vs-sql"),
        _Act("page", 2, "/product/features"),
        _Act("page", 2, "/customers"),
        _Act("page", 1, "/blog/lead-scoring-basics"),
        _Act("form", 1, g.pick(_CONTENT_FORMS)),
    ]
    return _Plan(_cycle("BC", i), _region(i), MQL, acts, stage=SUBSCRIBER, sets_status="NEW")


def _lead_converted(g: _Gen, i: int) -> _Plan:
    # forms_90d = 1 (a plain form); at most 2 blog pages: channels <= 2, interactions <= 3.
    acts = [_Act("form", g.days(5, 60), g.pick(_PLAIN_FORMS)), *g.blog(g.rng.randint(0, 2), 3, 20)]
    return _Plan(_cycle("ABCD", i), _region(i), LEAD, acts, stage=SUBSCRIBER)


def _subscriber_newsletter(g: _Gen, i: int) -> _Plan:
    # Opens the newsletter; signed up 120-300 days ago, outside forms_90d. Nothing fires.
    acts = [_Act("open", g.days(3, 20)), _Act("form", g.days(120, 300), "Newsletter signup")]
    return _Plan(_cycle("ABCD", i), _region(i), SUBSCRIBER, acts, stage=SUBSCRIBER)


def _near_miss_one_pricing_view(g: _Gen, i: int) -> _Plan:
    # pricing_views_30d = 1 < 2, no chat; channels 2; no form -> default stage.
    acts = [*g.pricing(1, 2, 15), *g.blog(1, 2, 18), _Act("open", g.days(2, 15))]
    return _Plan("A", _region(i), SUBSCRIBER, acts, stage=_cycle((SUBSCRIBER, LEAD), i))


def _near_miss_two_channels(g: _Gen, i: int) -> _Plan:
    # interactions_30d = 6 but channels_30d = 2 (web, email) < 3; no form, no pricing.
    acts = [*g.blog(4, 1, 18), _Act("open", g.days(1, 15)), _Act("click", g.days(1, 15))]
    return _Plan(_cycle("AB", i), _region(i), SUBSCRIBER, acts, stage=SUBSCRIBER)


def _near_miss_grade_d(g: _Gen, i: int) -> _Plan:
    # Hot on every channel (demo request, 3 pricing views, chat, white paper, social, email) but a
    # free-mail, small-company profile: fit_score <= 15, grade D, so every MQL/SQL rule fails and
    # only lead_converted (forms_90d = 2) holds.
    acts = [
        *g.pricing(3, 1, 5),
        _Act("chat", g.days(1, 5)),
        _Act("form", g.days(1, 5), g.pick(_CONTENT_FORMS)),
        _Act("form", g.days(1, 5), g.pick(_HAND_RAISE_FORMS)),
        _Act("social", g.days(1, 10)),
        _Act("open", g.days(1, 10)),
        *g.blog(2, 1, 5),
    ]
    return _Plan("D", _region(i), LEAD, acts, stage=SUBSCRIBER)


def _near_miss_pricing_low_fit(g: _Gen, i: int) -> _Plan:
    # pricing_views_30d = 3 but fit C: fit_score <= 40 < 45. Web only, no form.
    return _Plan("C", _region(i), SUBSCRIBER, g.pricing(3, 1, 15), stage=SUBSCRIBER)


def _near_miss_hand_raise_low_fit(g: _Gen, i: int) -> _Plan:
    # A demo request from a grade C person: sql_hand_raise needs A/B. channels 2 -> lead_converted.
    acts = [_Act("form", g.days(2, 15), g.pick(_HAND_RAISE_FORMS)), *g.blog(1, 2, 18)]
    return _Plan("C", _region(i), LEAD, acts, stage=SUBSCRIBER)


def _near_miss_stale_download(g: _Gen, i: int) -> _Plan:
    # Active on 3 days this week (5, 3, 2 days ago) but the white paper was 50-70 days ago:
    # content_downloads_30d = 0 so no cadence MQL; the form still counts in forms_90d -> lead.
    acts = [
        _Act("page", 5, "/"),
        _Act("page", 3, "/product/features"),
        _Act("page", 2, "/customers"),
        _Act("form", g.days(50, 70), g.pick(_CONTENT_FORMS)),
    ]
    return _Plan(_cycle("AB", i), _region(i), LEAD, acts, stage=SUBSCRIBER)


def _near_miss_stale_sales_touch(g: _Gen, i: int) -> _Plan:
    # Met sales 18-24 days ago (outside sales_touches_14d); since then only an email open and the
    # rep's unanswered follow-ups. channels 2 (sales, email), no form -> subscriber; CRM says lead.
    acts = [
        _Act("meeting", g.days(18, 24)),
        _Act("reply", g.days(18, 24)),
        _Act("open", g.days(3, 10)),
        _Act("out_email", g.days(1, 8)),
        _Act("out_email", g.days(1, 8)),
    ]
    return _Plan("A", _region(i), SUBSCRIBER, acts, stage=LEAD)


def _near_miss_chat_without_pricing(g: _Gen, i: int) -> _Plan:
    # chats_30d = 1 but pricing_views_30d = 0; channels 2 (chat, web); no form.
    acts = [_Act("chat", g.days(1, 10)), *g.blog(2, 1, 18)]
    return _Plan("A", _region(i), SUBSCRIBER, acts, stage=SUBSCRIBER)


def _old_hot_activity(g: _Gen, i: int) -> _Plan:
    # Everything hot happened 45-80 days ago: all 30-day signals are 0; forms_90d = 1 -> lead.
    acts = [
        _Act("form", g.days(45, 80), g.pick(_HAND_RAISE_FORMS)),
        *g.pricing(3, 45, 80),
        _Act("chat", g.days(45, 80)),
    ]
    return _Plan("A", _region(i), LEAD, acts, stage=SUBSCRIBER)


def _very_old_activity(g: _Gen, i: int) -> _Plan:
    # A demo request and pricing views 110-200 days ago: outside even forms_90d -> subscriber.
    acts = [_Act("form", g.days(110, 200), g.pick(_HAND_RAISE_FORMS)), *g.pricing(2, 110, 200)]
    return _Plan("A", _region(i), SUBSCRIBER, acts, stage=SUBSCRIBER)


def _hot_acts(g: _Gen) -> list[_Act]:
    # hand_raises_30d = 1, pricing_views_30d = 3, chats_30d = 1: SQL for any A/B person.
    return [
        _Act("form", g.days(1, 10), g.pick(_HAND_RAISE_FORMS)),
        *g.pricing(3, 1, 15),
        _Act("chat", g.days(1, 10)),
    ]


def _dq_competitor(g: _Gen, i: int) -> _Plan:
    # A competitor's senior person researching us: would be SQL, capped at lead, UNQUALIFIED.
    domain = _cycle(COMPETITOR_DOMAINS, i)
    return _Plan(
        "A",
        _region(i),
        LEAD,
        _hot_acts(g),
        disqualified=True,
        sets_status="UNQUALIFIED",
        fields={"email_domain": domain, "company": "RivalSoft" if domain == "rivalsoft.com" else "CompeteCo"},
    )


def _dq_student(g: _Gen, i: int) -> _Plan:
    # Downloads a white paper (forms_90d = 1 -> lead); title "student" or a .edu address caps at
    # lead and marks UNQUALIFIED.
    acts = [_Act("form", g.days(3, 15), g.pick(_CONTENT_FORMS)), *g.blog(1, 3, 15)]
    if i % 2 == 0:
        fields: dict[str, str | None] = {"jobtitle": _cycle(("Student", "Graduate Student"), i // 2)}
        grade = "D"
    else:
        fields = {
            "email_domain": _cycle(_EDU_DOMAINS, i // 2),
            "jobtitle": "Research Assistant",
            "company": "Northfield University" if i // 2 % 2 == 0 else "Lakeshore State University",
            "industry": "Education",
        }
        grade = "C"
    return _Plan(grade, _region(i), LEAD, acts, disqualified=True, sets_status="UNQUALIFIED", fields=fields)


_TEST_EMAILS = (
    "test@brightloop.io",
    "test+hubspot@quantaledger.com",
    "qa.signup@example.com",
    "smoke.check@test.com",
)


def _dq_test_record(g: _Gen, i: int) -> _Plan:
    # QA submissions: a demo request from a B profile would be SQL; test_record caps at subscriber.
    acts = [_Act("form", g.days(1, 10), "Request a demo"), *g.blog(1, 1, 10)]
    email = _TEST_EMAILS[i % len(_TEST_EMAILS)]
    if i >= len(_TEST_EMAILS):
        email = (
            email.replace("@", f"{i}@", 1)
            if not email.startswith("test")
            else f"test.{i}@{email.split('@')[1]}"
        )
    return _Plan(
        "B",
        _region(i),
        SUBSCRIBER,
        acts,
        disqualified=True,
        sets_status="UNQUALIFIED",
        fields={"email": email, "firstname": "Test", "lastname": "Record", "jobtitle": "QA Manager"},
    )


def _dq_unsubscribed(g: _Gen, i: int) -> _Plan:
    # Unsubscribed from all email yet asks for a demo: SQL capped at lead, no status, no owner.
    acts = [_Act("form", g.days(1, 10), g.pick(_HAND_RAISE_FORMS)), *g.blog(1, 1, 10)]
    return _Plan(
        "A", _region(i), LEAD, acts, stage=_cycle((SUBSCRIBER, LEAD), i), optout=True, disqualified=True
    )


def _forward_only_mql(g: _Gen, i: int) -> _Plan:
    # Already an MQL in HubSpot; today's criteria only say lead (a webinar form). Stage stays MQL,
    # lead_converted sets no status, and the unowned MQL is routed.
    acts = [_Act("form", g.days(5, 25), _PLAIN_FORMS[1]), *g.blog(1, 2, 20)]
    return _Plan("B", _region(i), LEAD, acts, stage=MQL)


def _forward_only_sql(g: _Gen, i: int) -> _Plan:
    # Already an SQL (status OPEN) and the criteria say MQL: stays SQL, OPEN stays; routed if unowned.
    return _Plan("A", _region(i), MQL, _pricing_acts(g), stage=SQL, lead_status="OPEN", sets_status="NEW")


def _sales_owned_customer(g: _Gen, i: int) -> _Plan:
    # A customer (owned by CSM Hugo) researching an upgrade: SQL by the rules, but Sales owns customers.
    acts = [*_hot_acts(g), _Act("meeting", g.days(2, 10))]
    return _Plan("A", _region(i), SQL, acts, stage=CUSTOMER, owner=HUGO)


def _sales_owned_opportunity(g: _Gen, i: int) -> _Plan:
    # An open deal with hot activity: stays opportunity with its status and owner (even no owner).
    acts = [*_hot_acts(g), _Act("call", g.days(1, 10))]
    owner = GRACE if i % 3 != 2 else None
    return _Plan("A", _region(i), SQL, acts, stage=OPPORTUNITY, lead_status="OPEN_DEAL", owner=owner)


def _existing_owner_kept(g: _Gen, i: int) -> _Plan:
    # SQL by hand-raise but already owned by an active owner, even one outside the territory's pool.
    owner, region = ((GRACE, "na"), (GRACE, "emea"), (DEV, "na"), (BEN, "emea"))[i % 4]
    acts = [_Act("form", g.days(1, 8), g.pick(_HAND_RAISE_FORMS)), *g.blog(2, 1, 10)]
    return _Plan("A", region, SQL, acts, stage=LEAD, owner=owner)


def _archived_owner_rerouted(g: _Gen, i: int) -> _Plan:
    # Owned by Chloe, who is archived: an MQL by pricing interest is re-routed by territory.
    region = ("na", "emea", "na", "other")[i % 4]
    return _Plan("A", region, MQL, _pricing_acts(g), stage=LEAD, owner=CHLOE, sets_status="NEW")


def _manual_status_kept(g: _Gen, i: int) -> _Plan:
    # A rep already set the lead status by hand; the MQL rule's NEW must not overwrite it.
    status = ("IN_PROGRESS", "ATTEMPTED_TO_CONTACT", "IN_PROGRESS")[i % 3]
    return _Plan("A", _region(i), MQL, _pricing_acts(g), stage=LEAD, lead_status=status, sets_status="NEW")


def _email_normalised(g: _Gen, i: int) -> _Plan:
    # A hand-raise whose email was typed with capitals and stray spaces: matched and routed as usual.
    first, last = g.pick(_FIRST_NAMES), g.pick(_LAST_NAMES)
    company, domain = g.rng.choice(_COMPANIES)
    while f"{first}.{last}@{domain}".lower() in g.emails:  # one person per normalised address
        last = g.pick(_LAST_NAMES)
    raw = (
        f"  {first}.{last}@{domain.upper()} " if i % 2 == 0 else f"{first.upper()}.{last}@{domain.title()}\t"
    )
    acts = [_Act("form", g.days(1, 8), "Request a demo"), *g.blog(1, 1, 10)]
    region = ("emea", "na", "other")[i % 3]
    fields: dict[str, str | None] = {"email": raw, "firstname": first, "lastname": last, "company": company}
    return _Plan("A", region, SQL, acts, stage=SUBSCRIBER, fields=fields)


_COUNTRY_SPELLINGS: tuple[tuple[str, str], ...] = (
    ("united states", "na"),
    ("UK", "emea"),
    ("usa", "na"),
    ("CANADA", "na"),
    ("germany", "emea"),
    ("Uk", "emea"),
)


def _country_case_variants(g: _Gen, i: int) -> _Plan:
    # Multi-channel MQL whose country is typed in odd case: territory matching ignores case.
    country, region = _COUNTRY_SPELLINGS[i % len(_COUNTRY_SPELLINGS)]
    return _Plan(
        "A", region, MQL, _multi_channel_acts(g), stage=LEAD, sets_status="NEW", fields={"country": country}
    )


def _fallback_other_region(g: _Gen, i: int) -> _Plan:
    # A hand-raise from outside every territory (or with no country at all) goes to Frank.
    country = ("Australia", "Brazil", "Japan", None)[i % 4]
    acts = [_Act("form", g.days(1, 8), g.pick(_HAND_RAISE_FORMS)), *g.blog(1, 1, 10)]
    return _Plan("A", "other", SQL, acts, stage=SUBSCRIBER, fields={"country": country})


# Filler: the quiet majority of a real portal. Never more than 3 interactions or 2 channels in 30
# days, no pricing page, no chat, no gated or hand-raise form, no sales conversation.


def _filler_subscriber(g: _Gen, i: int) -> _Plan:
    acts = g.blog(g.rng.randint(0, 2), 1, 28)
    if g.rng.random() < 0.5:
        acts.append(_Act("open", g.days(1, 28)))
    if g.rng.random() < 0.4:
        acts.append(_Act("form", g.days(120, 400), "Newsletter signup"))
    owner = g.pick((GRACE, HUGO)) if g.rng.random() < 0.08 else None
    return _Plan(
        g.pick("ABCD"), g.pick(_REGION_CYCLE), SUBSCRIBER, acts, owner=owner, optout=g.rng.random() < 0.06
    )


def _filler_lead(g: _Gen, i: int) -> _Plan:
    acts = [_Act("form", g.days(35, 85), g.pick(_PLAIN_FORMS)), *g.blog(g.rng.randint(0, 2), 1, 28)]
    if g.rng.random() < 0.5:
        acts.append(_Act("open", g.days(1, 28)))
    stage = g.pick((SUBSCRIBER, LEAD))
    status = (
        g.pick(("ATTEMPTED_TO_CONTACT", "BAD_TIMING", "CONNECTED"))
        if stage == LEAD and g.rng.random() < 0.2
        else None
    )
    owner = GRACE if g.rng.random() < 0.1 else None
    return _Plan(
        g.pick("ABCD"), g.pick(_REGION_CYCLE), LEAD, acts, stage=stage, lead_status=status, owner=owner
    )


def _filler_stale_lead(g: _Gen, i: int) -> _Plan:
    # A lead from long ago with nothing since: criteria say subscriber, forward-only keeps lead.
    acts = g.blog(g.rng.randint(0, 3), 95, 300)
    return _Plan(
        g.pick("ABCD"), g.pick(_REGION_CYCLE), SUBSCRIBER, acts, stage=LEAD, optout=g.rng.random() < 0.06
    )


_A_FIT = ("senior_title", "target_company_size", "target_industry")
_B_FIT = ("manager_title", "target_company_size", "target_industry")

# --- Routing scenarios (routing.yaml: named accounts, segments, state territories) -------------------

NAMED_ACCOUNTS: tuple[tuple[str, str, str | None], ...] = (
    ("Globex Corporation", "globexcorp.com", GRACE),
    ("Initech", "initech.io", None),  # no owner: its people are routed by territory as usual
)
"""HubSpot companies (name, domain, owner) the `named_accounts` rule matches by email domain."""


def _account_owner_by_domain(g: _Gen, i: int) -> _Plan:
    # An SQL hand-raise at Globex, whose HubSpot company Grace owns: the named_accounts rule gives
    # the person to Grace, whatever their territory (and in Salesforce, Grace's user).
    plan = _sql_hand_raise(g, i)
    plan.fields = {"email_domain": "globexcorp.com", "company": "Globex Corporation"}
    plan.routed = (GRACE, ())
    return plan


def _unowned_account_territory(g: _Gen, i: int) -> _Plan:
    # Initech's company has no owner: named_accounts does not match, the territory decides.
    plan = _sql_hand_raise(g, i)
    plan.fields = {"email_domain": "initech.io", "company": "Initech"}
    return plan


def _segment_enterprise(g: _Gen, i: int) -> _Plan:
    # 5,000 employees: the enterprise segment (employees >= 5,000; generated people have at most
    # 4,000) beats the territory; its weighted pool (Grace 2 : Dev 1) takes the person. Still a
    # target company size for fit (50-5,000), so the hand-raise stays an SQL.
    plan = _sql_hand_raise(g, i)
    plan.fields = {"employee_count": "5000"}
    plan.routed = (None, ENTERPRISE_POOL)
    return plan


def _territory_state(g: _Gen, i: int) -> _Plan:
    # A US person in California (state typed either way): the us_west territory, ahead of
    # north_america, by a state list.
    plan = _sql_hand_raise(g, i)
    plan.fields = {"country": "United States", "state": _cycle(("California", "ca", "Washington"), i)}
    plan.routed = (None, US_WEST_POOL)
    return plan


ROUTING_PERSONAS: tuple[Persona, ...] = (
    Persona(
        "account_owner_by_domain", 4, ("account_owner_routing", "sql_hand_raise"),
        "An SQL at a named account (company domain owned by Grace) goes to the account's owner.",
        _account_owner_by_domain,
    ),
    Persona(
        "unowned_account_territory", 2, ("account_owner_routing", "territory_routing"),
        "An SQL whose company has no owner is routed by territory as usual.",
        _unowned_account_territory,
    ),
    Persona(
        "segment_enterprise", 4, ("segment_routing", "sql_hand_raise"),
        "An SQL at a 5,000-person company goes to the enterprise segment's weighted pool.",
        _segment_enterprise,
    ),
    Persona(
        "territory_state", 3, ("territory_routing", "sql_hand_raise"),
        "An SQL in California or Washington goes to the us_west territory by its state.",
        _territory_state,
    ),
)  # fmt: skip


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "sql_hand_raise", 6, ("sql_hand_raise", *_A_FIT, *_B_FIT, "served_country", "territory_routing"),
        "Asked for a demo or sales within 30 days with an A/B fit: SQL, routed by territory.",
        _sql_hand_raise,
    ),
    Persona(
        "sql_sales_conversation", 5, ("sql_sales_conversation", *_A_FIT, *_B_FIT, "territory_routing"),
        "A meeting and a reply or call with sales in the last 14 days and 4 interactions: SQL.",
        _sql_sales_conversation,
    ),
    Persona(
        "mql_multi_channel", 6, ("mql_multi_channel", *_A_FIT, *_B_FIT, "territory_routing"),
        "Web, email and social in 30 days with 6 interactions and a fit above D: MQL, status NEW.",
        _mql_multi_channel,
    ),
    Persona(
        "mql_pricing_interest", 6, ("mql_pricing_interest", *_A_FIT, *_B_FIT, "territory_routing"),
        "Three pricing/solutions page views in 30 days with fit score >= 60: MQL, status NEW.",
        _mql_pricing_interest,
    ),
    Persona(
        "mql_chat_question", 5, ("mql_chat_question", *_A_FIT, *_B_FIT, "territory_routing"),
        "One chat after one pricing view with an A/B fit: MQL, status NEW.", _mql_chat_question,
    ),
    Persona(
        "mql_cadence", 5, ("mql_cadence", *_B_FIT, "territory_routing"),
        "Visited 4 days ago, read several pages 2 days ago, downloaded a white paper yesterday: MQL.",
        _mql_cadence,
    ),
    Persona(
        "lead_converted", 8, ("lead_converted", "free_mail"),
        "Submitted a newsletter or webinar form and nothing hotter: lead.", _lead_converted,
    ),
    Persona(
        "subscriber_newsletter", 6, ("default_stage",),
        "Only opens the newsletter; signed up over 90 days ago: stays subscriber.", _subscriber_newsletter,
    ),
    Persona(
        "near_miss_one_pricing_view", 4, ("near_miss", "mql_pricing_interest"),
        "One pricing view (two needed) and no chat: no MQL, stage unchanged.", _near_miss_one_pricing_view,
    ),
    Persona(
        "near_miss_two_channels", 4, ("near_miss", "mql_multi_channel"),
        "Six interactions but on two channels (three needed): no MQL.", _near_miss_two_channels,
    ),
    Persona(
        "near_miss_grade_d_free_mail", 5, ("near_miss", "free_mail", "fit_grade_d"),
        "Hot on every channel but grade D (free mail, tiny company): only lead by its forms.",
        _near_miss_grade_d,
    ),
    Persona(
        "near_miss_pricing_low_fit", 4, ("near_miss", "mql_pricing_interest"),
        "Three pricing views but fit score 25-40 (45 needed): no MQL.", _near_miss_pricing_low_fit,
    ),
    Persona(
        "near_miss_hand_raise_low_fit", 4, ("near_miss", "sql_hand_raise", "lead_converted"),
        "Asked for a demo with a grade C fit: not SQL, just a lead.", _near_miss_hand_raise_low_fit,
    ),
    Persona(
        "near_miss_stale_download", 4, ("near_miss", "mql_cadence", "lead_converted", "window"),
        "Active on three days this week but the white paper was 50-70 days ago: lead, not MQL.",
        _near_miss_stale_download,
    ),
    Persona(
        "near_miss_stale_sales_touch", 4, ("near_miss", "sql_sales_conversation", "window", "forward_only"),
        "Last talked to sales 18-24 days ago (14-day window): no SQL, stays lead.",
        _near_miss_stale_sales_touch,
    ),
    Persona(
        "near_miss_chat_without_pricing", 3, ("near_miss", "mql_chat_question"),
        "Chatted but never viewed pricing: no MQL.", _near_miss_chat_without_pricing,
    ),
    Persona(
        "old_hot_activity", 5, ("window", "lead_converted"),
        "Demo request, pricing views and chat all 45-80 days ago: only the 90-day form counts, lead.",
        _old_hot_activity,
    ),
    Persona(
        "very_old_activity", 4, ("window", "default_stage"),
        "Hot activity 110-200 days ago is outside every window: subscriber.", _very_old_activity,
    ),
    Persona(
        "dq_competitor", 4, ("competitor",),
        "A competitor's address: would be SQL, capped at lead, UNQUALIFIED, never routed.", _dq_competitor,
    ),
    Persona(
        "dq_student", 4, ("student",),
        "A student title or .edu address: capped at lead, UNQUALIFIED.", _dq_student,
    ),
    Persona(
        "dq_test_record", 4, ("test_record",),
        "A test submission (test@..., example.com, test.com): capped at subscriber, UNQUALIFIED.",
        _dq_test_record,
    ),
    Persona(
        "dq_unsubscribed", 4, ("unsubscribed",),
        "Unsubscribed from all email yet asked for a demo: capped at lead, no status, no owner.",
        _dq_unsubscribed,
    ),
    Persona(
        "forward_only_mql", 4, ("forward_only", "lead_converted", "territory_routing"),
        "Already MQL in HubSpot while the criteria say lead: stays MQL and, unowned, is routed.",
        _forward_only_mql,
    ),
    Persona(
        "forward_only_sql", 3, ("forward_only", "mql_pricing_interest", "manual_lead_status"),
        "Already SQL with status OPEN while the criteria say MQL: stays SQL and OPEN, routed.",
        _forward_only_sql,
    ),
    Persona(
        "sales_owned_customer", 3, ("sales_owned",),
        "A customer with SQL-level activity: Sales owns customers, nothing is written.",
        _sales_owned_customer,
    ),
    Persona(
        "sales_owned_opportunity", 3, ("sales_owned",),
        "An open opportunity with SQL-level activity: stage, status and owner untouched.",
        _sales_owned_opportunity,
    ),
    Persona(
        "existing_owner_kept", 4, ("keep_existing_owner", "sql_hand_raise"),
        "An SQL already owned by an active owner (even outside the territory pool) keeps that owner.",
        _existing_owner_kept,
    ),
    Persona(
        "archived_owner_rerouted", 4, ("archived_owner_skipped", "mql_pricing_interest", "territory_routing"),
        "An MQL owned by archived Chloe is re-routed to an active owner of its territory.",
        _archived_owner_rerouted,
    ),
    Persona(
        "manual_status_kept", 3, ("manual_lead_status", "mql_pricing_interest"),
        "An MQL whose lead status a rep already set keeps that status.", _manual_status_kept,
    ),
    Persona(
        "email_normalised", 3, ("email_normalisation", "sql_hand_raise"),
        "An SQL whose email has capitals and stray whitespace is matched and routed normally.",
        _email_normalised,
    ),
    Persona(
        "country_case_variants", 6, ("country_case", "mql_multi_channel", "territory_routing"),
        "An MQL with its country typed in odd case ('united states', 'UK') is routed to its territory.",
        _country_case_variants,
    ),
    Persona(
        "fallback_other_region", 4, ("fallback_owner", "sql_hand_raise"),
        "An SQL from outside every territory, or with no country, goes to the fallback owner Frank.",
        _fallback_other_region,
    ),
    *ROUTING_PERSONAS,
)  # fmt: skip
"""Every persona in the demo; `count` people each."""

FILLER_PERSONAS: tuple[Persona, ...] = (
    Persona(
        "filler_subscriber", 0, ("default_stage",),
        "Filler: light web or email activity and no recent form: subscriber.", _filler_subscriber,
    ),
    Persona(
        "filler_lead", 0, ("lead_converted",),
        "Filler: a newsletter or webinar form 35-85 days ago and little since: lead.", _filler_lead,
    ),
    Persona(
        "filler_stale_lead", 0, ("forward_only",),
        "Filler: a lead with no activity in 90 days stays lead (forward-only).", _filler_stale_lead,
    ),
)  # fmt: skip
"""Persona-independent people that fill the portal up to `people`; `count` is decided per run."""

MIN_PEOPLE = sum(p.count for p in PERSONAS)
"""The fewest people `build_demo_portal` accepts: one full set of personas."""

PERSONA_CRITERIA: dict[str, tuple[str, ...]] = {p.name: p.criteria for p in (*PERSONAS, *FILLER_PERSONAS)}
"""Persona -> the criteria (rule, disqualifier, fit rule names) and behaviours it exercises."""


def _filler_persona(draw: float) -> Persona:
    if draw < 0.45:
        return FILLER_PERSONAS[0]
    return FILLER_PERSONAS[1] if draw < 0.8 else FILLER_PERSONAS[2]


# --- Contact property definitions -------------------------------------------------------------------


def contact_property_definitions(
    owners: Sequence[dict[str, Any]], today: datetime
) -> dict[str, dict[str, Any]]:
    """The contact properties the demo portal declares (Property dicts, properties API shape).

    HubSpot's defaults (from the store, with their read-only flags, which is how the emulator
    refuses writes to computed dates and counters), plus the portal's own custom number property
    `employee_count` (hubspot.yaml maps `employees` to it), the text property
    `lifecycle_stage_reason` (hubspot.yaml `stage_reason` writes the reason there) and the owners
    as `hubspot_owner_id` options, archived ones hidden.
    """
    catalogue = default_contact_properties()
    custom = property_definition(
        "employee_count",
        "Employee count",
        "number",
        "number",
        description="Company head count, copied from the enrichment provider.",
    )
    created = hs_datetime(today - timedelta(days=400))
    custom.update({"hubspotDefined": False, "createdAt": created, "updatedAt": created})
    custom["modificationMetadata"] = {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False}
    catalogue["employee_count"] = custom
    reason = property_definition(
        "lifecycle_stage_reason",
        "Lifecycle stage reason",
        "string",
        "textarea",
        description="Why the lifecycle connector set the stage: the rule and the values it read.",
    )
    reason.update({"hubspotDefined": False, "createdAt": created, "updatedAt": created})
    reason["modificationMetadata"] = {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False}
    catalogue["lifecycle_stage_reason"] = reason
    catalogue["hubspot_owner_id"]["options"] = [
        {
            "label": f"{o['firstName']} {o['lastName']} ({o['email']})",
            "value": o["id"],
            "displayOrder": order,
            "hidden": bool(o["archived"]),
        }
        for order, o in enumerate(owners)
    ]
    return catalogue
