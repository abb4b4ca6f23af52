"""A seeded demo Salesforce org beside the demo HubSpot portal: the same people, both sides, with answers.

About half the HubSpot demo people also exist in Salesforce — as a lead, or as a contact (some with
the converted lead they came from). Their emails differ in case and whitespace for some; for others
HubSpot's `salesforceleadid` / `salesforcecontactid` link the records, a few of those under a
different address on the same domain so only the link can join them. Mirrored people carry no
Salesforce activity inside any criteria window and their Salesforce stage is their HubSpot stage
before the sync, so the HubSpot ground truth (`demo_data.py`) holds unchanged, and their
Salesforce outcome is the HubSpot one in Salesforce's values: one decision, one rep in both.

Cross-CRM personas need both sides to qualify: a few blog page views in HubSpot (a subscriber
there) plus a logged call or a meeting in Salesforce make an SQL in both CRMs. They are added to
the HubSpot portal through `build_demo_portal(extra_personas=...)`, so its expectations include them.

Salesforce-only personas exercise the Salesforce sources alone: calls, meetings and campaign
responses (SQL, MQL by cadence, lead by a webinar), an inactive owner re-routed, and a converted
lead whose activity follows it to its contact while the lead itself is never written.

As in `demo_data.py`, expectations are written from each persona's design by hand (the arithmetic
is in the comments), never computed by the engine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.sandbox import demo_data as hs
from connector.sandbox.demo_data import ExpectedOutcome, Persona, build_demo_portal
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.salesforce_store import SalesforceStore, id18

# --- Users and queues (routing.yaml names the reps' ids) ----------------------------------------------

_USERS: tuple[tuple[str, str, str, bool, str | None], ...] = (
    # (id, first, last, active, the same person's HubSpot owner id)
    (id18("005Dn00000Rep01"), "Ana", "Alvarez", True, hs.ANA),
    (id18("005Dn00000Rep02"), "Ben", "Brooks", True, hs.BEN),
    (id18("005Dn00000Rep03"), "Chloe", "Chen", False, hs.CHLOE),  # left the company: inactive
    (id18("005Dn00000Rep04"), "Dev", "Desai", True, hs.DEV),
    (id18("005Dn00000Rep05"), "Emma", "Eriksen", True, hs.EMMA),
    (id18("005Dn00000Rep06"), "Frank", "Fischer", True, hs.FRANK),
    (id18("005Dn00000Rep07"), "Grace", "Green", True, hs.GRACE),
    (id18("005Dn00000Rep08"), "Hugo", "Hill", True, hs.HUGO),
    (id18("005Dn00000Rep09"), "Connector", "Integration", True, None),
    (id18("005Dn00000Rep10"), "Olaf", "Old", False, None),
)
SF_USER_OF_HUBSPOT_OWNER: dict[str, str] = {hs_id: uid for uid, _f, _l, _a, hs_id in _USERS if hs_id}
INTEGRATION_USERNAME = "integration@northwind.example"
INTEGRATION_PASSWORD = "sandbox-password"  # noqa: S105 - the sandbox's fixed, public login
INTEGRATION_SECURITY_TOKEN = "sandboxtoken"  # noqa: S105
CONSUMER_KEY = "sandbox-connected-app"
NURTURE_QUEUE = id18("00GDn00000Que01")
UNASSIGNED_QUEUE = id18("00GDn00000Que02")

NORTH_AMERICA_POOL = tuple(SF_USER_OF_HUBSPOT_OWNER[o] for o in hs.NORTH_AMERICA_POOL)
EMEA_POOL = tuple(SF_USER_OF_HUBSPOT_OWNER[o] for o in hs.EMEA_POOL)
FALLBACK_OWNER = SF_USER_OF_HUBSPOT_OWNER[hs.FALLBACK_OWNER]

# Canonical stage per HubSpot value, and its Salesforce value per object (mappings/salesforce.yaml).
_CANONICAL = {
    hs.SUBSCRIBER: "subscriber",
    hs.LEAD: "lead",
    hs.MQL: "mql",
    hs.SQL: "sql",
    hs.OPPORTUNITY: "opportunity",
    hs.CUSTOMER: "customer",
}
LEAD_STATUS = {
    "subscriber": "Nurture",
    "lead": "Open - Not Contacted",
    "mql": "Marketing Qualified",
    "sql": "Sales Accepted",
    "opportunity": "Closed - Converted",
    "customer": "Closed - Converted",
}
CONTACT_STAGE = {
    "subscriber": "Subscriber",
    "lead": "Lead",
    "mql": "MQL",
    "sql": "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
}
_STATUS = {"NEW": "New", "OPEN": "Open", "IN_PROGRESS": "In Progress", "UNQUALIFIED": "Unqualified"}
"""HubSpot lead status -> Marketing_Status__c; other HubSpot values have no Salesforce twin."""

_CAMPAIGNS: tuple[tuple[str, str], ...] = (
    ("Webinar: Pipeline Reviews That Work", "Webinar"),
    ("Webinar: Lifecycle Stages 101", "Webinar"),
    ("Content: The Lead Hand-off Playbook white paper", "Content"),
    ("Trade Show: RevOps Summit", "Trade Show"),  # not mapped: never an activity
    ("Email: Monthly newsletter", "Email"),  # not mapped: never an activity
)
_SERVED = ("United States", "Canada", "United Kingdom", "Germany", "France", "Netherlands")


# --- Expectations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SfExpected:
    """What one Salesforce record must show after one sync of the joint demo.

    `stage` is the value of the object's stage field (Lead `Status`, Contact `Lifecycle_Stage__c`),
    `status` of `Marketing_Status__c`. Owner: exactly `owner`, or one of `owner_pool`, or — when
    `owner_as_hubspot` names a HubSpot contact id — the Salesforce user of the rep that contact ended
    with (one person, one rep). `mql_stamped`: the connector moved it to MQL, so MQL_Date__c and
    MQL_Reason__c are filled. `untouched` (converted leads): no field may change at all.
    """

    record_id: str
    object_type: str
    email: str
    persona: str
    stage: str
    status: str | None
    owner: str | None
    why: str
    owner_pool: tuple[str, ...] = ()
    owner_as_hubspot: str | None = None
    mql_stamped: bool = False
    untouched: bool = False


@dataclass
class JointDemo:
    hubspot: HubSpotStore
    hubspot_expected: list[ExpectedOutcome]
    salesforce: SalesforceStore
    salesforce_expected: list[SfExpected]
    snapshots: dict[str, dict[str, Any]]
    """Converted leads as generated: after any number of syncs they must be exactly this."""


# --- Cross-CRM personas (HubSpot side; the Salesforce side is added below) -----------------------------


def _cross_web_and_call(g: Any, i: int) -> Any:
    # HubSpot alone: 3 blog views, no form -> subscriber. Salesforce adds a call 1-8 days ago:
    # sales_touches_14d = 1, interactions_30d = 4, fit A -> sql_sales_conversation. SQL sets no status.
    return hs._Plan("A", hs._region(i), hs.SQL, g.blog(3, 1, 10), stage=hs.SUBSCRIBER)


def _cross_linked_meeting(g: Any, i: int) -> Any:
    # HubSpot alone: 2 blog views -> subscriber. Salesforce (linked by salesforceleadid, another
    # address on the same domain) adds a meeting 2-8 days ago: interactions 3, touches 1, fit A -> SQL.
    return hs._Plan("A", hs._region(i + 1), hs.SQL, g.blog(2, 1, 10), stage=hs.SUBSCRIBER)


CROSS_PERSONAS: tuple[Persona, ...] = (
    Persona(
        "cross_web_and_call", 6, ("sql_sales_conversation", "cross_crm", "territory_routing"),
        "Blog views in HubSpot and a call logged in Salesforce: SQL in both CRMs, the same rep in each.",
        _cross_web_and_call,
    ),
    Persona(
        "cross_linked_meeting", 3, ("sql_sales_conversation", "cross_crm", "salesforce_link"),
        "Linked only by HubSpot's salesforceleadid: blog views + a Salesforce meeting make one SQL.",
        _cross_linked_meeting,
    ),
)  # fmt: skip


# --- Building ----------------------------------------------------------------------------------------


def build_joint_demo(now: datetime, *, seed: int = 7, people: int = 300) -> JointDemo:
    """Both CRMs, filled, with the expected outcome of every HubSpot contact and Salesforce record."""
    portal, outcomes = build_demo_portal(now, seed=seed, people=people, extra_personas=CROSS_PERSONAS)
    org = _Org(now.astimezone(UTC), random.Random(seed * 7919 + 1), portal)
    for outcome in outcomes:
        org.person(outcome)
    org.salesforce_only()
    return JointDemo(portal, outcomes, org.store, org.expected, org.snapshots)


class _Org:
    def __init__(self, now: datetime, rng: random.Random, portal: HubSpotStore) -> None:
        self.now = now
        self.today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.rng = rng
        self.portal = portal
        self.store = SalesforceStore()
        self.expected: list[SfExpected] = []
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, str] = {}
        self._seed()

    # basics

    def at(self, days_ago: int) -> datetime:
        offset = timedelta(hours=self.rng.randint(9, 16), minutes=self.rng.randint(0, 59))
        return self.today - timedelta(days=days_ago) + offset

    def created(self) -> datetime:
        return self.now - timedelta(days=self.rng.randint(30, 400), minutes=self.rng.randint(5, 600))

    def _seed(self) -> None:
        store, at = self.store, self.now - timedelta(days=900)
        for uid, first, last, active, _hs in _USERS:
            username = INTEGRATION_USERNAME if first == "Connector" else f"{first.lower()}@northwind.example"
            store.insert(
                "User",
                {
                    "Id": uid,
                    "Username": username,
                    "FirstName": first,
                    "LastName": last,
                    "Email": username,
                    "IsActive": active,
                },
                at=at,
            )
        store.passwords[INTEGRATION_USERNAME] = INTEGRATION_PASSWORD + INTEGRATION_SECURITY_TOKEN
        for qid, name in ((NURTURE_QUEUE, "Marketing Nurture"), (UNASSIGNED_QUEUE, "Unassigned Leads")):
            store.insert(
                "Group",
                {"Id": qid, "Name": name, "DeveloperName": name.replace(" ", "_"), "Type": "Queue"},
                at=at,
            )
        store.insert("Group", {"Name": "All Sales", "Type": "Regular"}, at=at)  # not a queue: never an owner
        self.campaigns = {
            name: store.insert(
                "Campaign", {"Name": name, "Type": kind, "Status": "In Progress", "IsActive": True}, at=at
            )["Id"]
            for name, kind in _CAMPAIGNS
        }

    def account(self, company: str) -> str:
        if company not in self.accounts:
            self.accounts[company] = self.store.insert(
                "Account", {"Name": company, "OwnerId": SF_USER_OF_HUBSPOT_OWNER[hs.GRACE]}, at=self.created()
            )["Id"]
        return self.accounts[company]

    def task(self, who: str, kind: str, days_ago: int) -> None:
        """A Task: a completed `call`, or an outgoing `email` the mapping does not count."""
        when = self.at(days_ago)
        values: dict[str, Any]
        if kind == "call":
            values = {
                "Subject": "Qualification call",
                "Type": "Call",
                "TaskSubtype": "Call",
                "CallType": "Outbound",
                "CallDurationInSeconds": self.rng.randint(4, 40) * 60,
            }
        else:
            values = {"Subject": "Email: Following up", "Type": "Email", "TaskSubtype": "Email"}
        values |= {
            "WhoId": who,
            "Status": "Completed",
            "ActivityDate": when.date().isoformat(),
            "CompletedDateTime": _sf(when),
            "OwnerId": SF_USER_OF_HUBSPOT_OWNER[hs.GRACE],
        }
        self.store.insert("Task", values, at=when + timedelta(minutes=5))

    def meeting(self, who: str, days_ago: int) -> None:
        when = self.at(days_ago)
        self.store.insert(
            "Event",
            {
                "WhoId": who,
                "Subject": "Discovery meeting",
                "Type": "Meeting",
                "StartDateTime": _sf(when),
                "EndDateTime": _sf(when + timedelta(minutes=30)),
                "DurationInMinutes": 30,
                "OwnerId": SF_USER_OF_HUBSPOT_OWNER[hs.GRACE],
            },
            at=when - timedelta(days=2),
        )

    def responded(self, who: str, campaign: str, days_ago: int) -> None:
        when = self.at(days_ago)
        key = "ContactId" if who.startswith("003") else "LeadId"
        self.store.insert(
            "CampaignMember",
            {
                "CampaignId": self.campaigns[campaign],
                key: who,
                "Status": "Responded",
                "HasResponded": True,
                "FirstRespondedDate": when.date().isoformat(),
            },
            at=when,
        )

    # people of the HubSpot portal

    def person(self, outcome: ExpectedOutcome) -> None:
        cross = outcome.persona.startswith("cross_")
        if not cross and self.rng.random() >= 0.5:
            return
        props = self.portal.contacts[outcome.contact_id]
        current = _CANONICAL[str(props["lifecyclestage"])]
        final = _CANONICAL[outcome.lifecyclestage]
        email = outcome.email
        variant = self.rng.randrange(3)  # 0 same, 1 case/whitespace, 2 linked by HubSpot's property
        if outcome.persona == "cross_linked_meeting":
            variant = 3
        if variant == 1:
            local, domain = email.split("@")
            email = f" {local.title()}@{domain.upper()}  "
        elif variant == 3:
            local, domain = email.split("@")
            email = f"{local[0]}.{local.replace('.', '')}@{domain}"  # same person, another address
        fields = {
            "FirstName": props.get("firstname"),
            "LastName": props.get("lastname") or "Unknown",
            "Email": email,
            "Title": props.get("jobtitle"),
            "HasOptedOutOfEmail": props.get("hs_email_optout") == "true",
            "Marketing_Status__c": _mirror_status(outcome.hs_lead_status),
        }
        hs_owner = props.get("hubspot_owner_id")
        sf_owner = SF_USER_OF_HUBSPOT_OWNER.get(str(hs_owner)) if hs_owner else None
        company = str(props.get("company") or "Unknown")
        if current in ("opportunity", "customer") or (
            final in ("subscriber", "lead") and self.rng.random() < 0.3
        ):
            record = self._mirror_contact(outcome, fields, props, current, final, company, sf_owner)
        else:
            record = self._mirror_lead(outcome, fields, props, current, final, company, sf_owner)
        if variant >= 2:
            link = "salesforceleadid" if record["Id"].startswith("00Q") else "salesforcecontactid"
            props[link] = record["Id"]
        if cross:
            if outcome.persona == "cross_web_and_call":
                self.task(record["Id"], "call", self.rng.randint(1, 8))
            else:
                self.meeting(record["Id"], self.rng.randint(2, 8))
        elif self.rng.random() < 0.3:  # history from long ago, outside every window
            self.task(record["Id"], self.rng.choice(("call", "email")), self.rng.randint(200, 400))

    def _mirror_lead(
        self,
        outcome: ExpectedOutcome,
        fields: dict[str, Any],
        props: dict[str, Any],
        current: str,
        final: str,
        company: str,
        sf_owner: str | None,
    ) -> dict[str, Any]:
        owner = sf_owner or NURTURE_QUEUE
        employees = props.get("employee_count")
        lead = self.store.insert(
            "Lead",
            fields
            | {
                "Company": company,
                "Industry": props.get("industry"),
                "Country": props.get("country"),
                "NumberOfEmployees": int(employees) if employees else None,
                "Status": LEAD_STATUS[current],
                "OwnerId": owner,
                "LeadSource": "Web",
            },
            at=self.created(),
        )
        self.expected.append(
            SfExpected(
                record_id=lead["Id"],
                object_type="Lead",
                email=outcome.email,
                persona=outcome.persona,
                stage=LEAD_STATUS[final],
                status=fields["Marketing_Status__c"],
                owner=_expected_owner(outcome, owner),
                owner_as_hubspot=outcome.contact_id if outcome.owner_pool else None,
                why=f"same person as HubSpot contact {outcome.contact_id}: {outcome.why}",
                mql_stamped=final == "mql" and current != "mql",
            )
        )
        return lead

    def _mirror_contact(
        self,
        outcome: ExpectedOutcome,
        fields: dict[str, Any],
        props: dict[str, Any],
        current: str,
        final: str,
        company: str,
        sf_owner: str | None,
    ) -> dict[str, Any]:
        owner = sf_owner or SF_USER_OF_HUBSPOT_OWNER[hs.GRACE]  # a contact always has a user as owner
        contact = self.store.insert(
            "Contact",
            fields
            | {
                "AccountId": self.account(company),
                "MailingCountry": props.get("country"),
                "Lifecycle_Stage__c": CONTACT_STAGE[current],
                "OwnerId": owner,
            },
            at=self.created(),
        )
        self.expected.append(
            SfExpected(
                record_id=contact["Id"],
                object_type="Contact",
                email=outcome.email,
                persona=outcome.persona,
                stage=CONTACT_STAGE[final],
                status=fields["Marketing_Status__c"],
                owner=owner,
                why=f"same person as HubSpot contact {outcome.contact_id} (owner is Sales'): {outcome.why}",
            )
        )
        if current in ("opportunity", "customer") and self.rng.random() < 0.5:
            self._converted_lead(contact, fields | {"Company": company})
        return contact

    def _converted_lead(self, contact: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        lead = self.store.insert(
            "Lead",
            fields
            | {
                "Status": "Closed - Converted",
                "IsConverted": True,
                "ConvertedContactId": contact["Id"],
                "ConvertedAccountId": contact.get("AccountId"),
                "OwnerId": contact["OwnerId"],
                "ConvertedDate": (self.now - timedelta(days=self.rng.randint(40, 300))).date().isoformat(),
            },
            at=self.created(),
        )
        self.snapshots[lead["Id"]] = dict(lead)
        return lead

    # Salesforce-only people

    def salesforce_only(self) -> None:
        regions = ("na", "emea", "na", "other", "emea", "na")
        for i in range(5):
            self._sf_sql(
                i, regions[i % len(regions)], owner=UNASSIGNED_QUEUE, persona="sf_sql_call_meeting_webinar"
            )
        for i in range(3):
            self._sf_sql(
                i, regions[(i + 2) % len(regions)], owner=_USERS[2][0], persona="sf_inactive_owner_rerouted"
            )
        for i in range(4):
            self._sf_mql_cadence(i, regions[(i + 1) % len(regions)])
        for i in range(4):
            self._sf_webinar_lead(i)
        for i in range(3):
            self._sf_converted(i)
        for i in range(30):
            self._sf_quiet(i)

    def _fit(self, grade: str, region: str) -> dict[str, Any]:
        first, last = self.rng.choice(hs._FIRST_NAMES), self.rng.choice(hs._LAST_NAMES)
        company, domain = self.rng.choice(hs._COMPANIES)
        country = self.rng.choice(hs._COUNTRIES[region])
        title = self.rng.choice(
            {"A": hs._SENIOR_TITLES, "B": hs._MANAGER_TITLES, "C": hs._PLAIN_TITLES}[grade]
        )
        industry = self.rng.choice(hs.TARGET_INDUSTRIES if grade in "AB" else hs._OTHER_INDUSTRIES)
        suffix = self.rng.randint(100, 999)
        return {
            "FirstName": first,
            "LastName": last,
            "Email": f"{first}.{last}{suffix}@{domain}".lower(),
            "Company": company,
            "Title": title,
            "Industry": industry,
            "Country": country,
            "NumberOfEmployees": self.rng.choice((80, 250, 750, 1200, 4000)),
            "LeadSource": "Webinar",
        }

    def _lead(self, values: dict[str, Any], status: str, owner: str) -> dict[str, Any]:
        return self.store.insert("Lead", values | {"Status": status, "OwnerId": owner}, at=self.created())

    def _sf_sql(self, i: int, region: str, *, owner: str, persona: str) -> None:
        # A call 1-6 days ago, a meeting 2-8 days ago, a webinar 5-15 days ago: sales_touches_14d = 2,
        # interactions_30d = 3, fit A (senior 30 + size 25 + industry 20) -> sql_sales_conversation.
        lead = self._lead(self._fit("A", region), self.rng.choice(("Nurture", "Open - Not Contacted")), owner)
        self.task(lead["Id"], "call", self.rng.randint(1, 6))
        self.meeting(lead["Id"], self.rng.randint(2, 8))
        self.responded(lead["Id"], _CAMPAIGNS[0][0], self.rng.randint(5, 15))
        why = "Call + meeting + webinar in Salesforce with an A fit: SQL, routed by territory."
        if persona == "sf_inactive_owner_rerouted":
            why = "Owned by an inactive user; a call, a meeting and a webinar make an SQL: routed anew."
        self._expect_routed(lead, persona, "Sales Accepted", None, region, why)

    def _sf_mql_cadence(self, i: int, region: str) -> None:
        # Campaign responses on 3 days out of 4 (4, 3 and 1 days ago), the last a white paper: the
        # seeds' story, cadence_with_download_30d = 3; fit B (manager 15 + size 25 + industry 20 = 60)
        # -> mql_cadence: MQL, New.
        lead = self._lead(self._fit("B", region), "Open - Not Contacted", NURTURE_QUEUE)
        self.responded(lead["Id"], _CAMPAIGNS[2][0], 1)
        self.responded(lead["Id"], _CAMPAIGNS[0][0], 3)
        self.responded(lead["Id"], _CAMPAIGNS[1][0], 4)
        why = "Responded to two webinars and then a white paper on three days out of four: MQL by cadence."
        self._expect_routed(lead, "sf_mql_cadence", "Marketing Qualified", "New", region, why, mql=True)

    def _sf_webinar_lead(self, i: int) -> None:
        # One webinar 10-20 days ago, fit C: forms_90d = 1 -> lead_converted. Not a hand-off: owner stays.
        lead = self._lead(self._fit("C", "na"), "Nurture", NURTURE_QUEUE)
        self.responded(lead["Id"], _CAMPAIGNS[1][0], self.rng.randint(10, 20))
        self.store.insert(  # a trade-show visit: a campaign type the mapping does not count
            "CampaignMember",
            {
                "CampaignId": self.campaigns[_CAMPAIGNS[3][0]],
                "LeadId": lead["Id"],
                "Status": "Responded",
                "HasResponded": True,
                "FirstRespondedDate": self.at(3).date().isoformat(),
            },
            at=self.at(3),
        )
        self.expected.append(
            SfExpected(
                lead["Id"],
                "Lead",
                lead["Email"],
                "sf_webinar_lead",
                "Open - Not Contacted",
                None,
                NURTURE_QUEUE,
                "One webinar response: a known lead; not a hand-off, the queue keeps it.",
            )
        )

    def _sf_converted(self, i: int) -> None:
        # A converted lead and its contact. The call was logged on the lead (WhoId = the lead), the
        # meeting and a webinar on the contact: touches 2, interactions 3. Fit: senior title 30 + a
        # served country 15 = 45 -> B (Contacts map no size or industry) -> SQL on the contact.
        values = self._fit("A", "na") | {"Country": _SERVED[i % len(_SERVED)]}
        owner = SF_USER_OF_HUBSPOT_OWNER[hs.GRACE]
        contact = self.store.insert(
            "Contact",
            {
                "FirstName": values["FirstName"],
                "LastName": values["LastName"],
                "Email": values["Email"],
                "Title": values["Title"],
                "MailingCountry": values["Country"],
                "Lifecycle_Stage__c": "Lead",
                "AccountId": self.account(values["Company"]),
                "OwnerId": owner,
            },
            at=self.created(),
        )
        lead = self._converted_lead(contact, values)
        self.task(lead["Id"], "call", self.rng.randint(1, 6))
        self.meeting(contact["Id"], self.rng.randint(2, 8))
        self.responded(contact["Id"], _CAMPAIGNS[1][0], self.rng.randint(5, 15))
        self.expected.append(
            SfExpected(
                contact["Id"],
                "Contact",
                contact["Email"],
                "sf_converted_followed",
                "SQL",
                None,
                owner,
                "Activity on the converted lead follows it to its contact: SQL on the contact.",
            )
        )
        self.expected.append(
            SfExpected(
                lead["Id"],
                "Lead",
                lead["Email"],
                "sf_converted_followed",
                "Closed - Converted",
                None,
                owner,
                "A converted lead is read-only: never written.",
                untouched=True,
            )
        )

    def _sf_quiet(self, i: int) -> None:
        lead = self._lead(self._fit(self.rng.choice("ABC"), "na"), "Nurture", NURTURE_QUEUE)
        if self.rng.random() < 0.4:
            self.task(lead["Id"], "email", self.rng.randint(1, 20))  # outgoing email: not counted
        self.expected.append(
            SfExpected(
                lead["Id"],
                "Lead",
                lead["Email"],
                "sf_quiet_nurture",
                "Nurture",
                None,
                NURTURE_QUEUE,
                "No counted activity: stays in nurture, in the queue.",
            )
        )

    def _expect_routed(
        self,
        lead: dict[str, Any],
        persona: str,
        stage: str,
        status: str | None,
        region: str,
        why: str,
        *,
        mql: bool = False,
    ) -> None:
        pool = {"na": NORTH_AMERICA_POOL, "emea": EMEA_POOL}.get(region, ())
        self.expected.append(
            SfExpected(
                lead["Id"],
                "Lead",
                lead["Email"],
                persona,
                stage,
                status,
                None if pool else FALLBACK_OWNER,
                why,
                owner_pool=pool,
                mql_stamped=mql,
            )
        )


def _sf(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _mirror_status(hubspot_status: str | None) -> str | None:
    """Marketing_Status__c as it stands before the sync: the HubSpot outcome's status, in Salesforce
    values ("Bad Timing" for a HubSpot status with no twin). Either the connector wants exactly this
    value, or it is a human's choice the connector keeps: so the mirror is never written."""
    if hubspot_status is None:
        return None
    return _STATUS.get(hubspot_status, "Bad Timing")


def _expected_owner(outcome: ExpectedOutcome, mirror_owner: str) -> str | None:
    if outcome.owner_pool:
        return None  # decided by owner_as_hubspot
    if outcome.owner is None:
        return mirror_owner
    return SF_USER_OF_HUBSPOT_OWNER.get(outcome.owner, mirror_owner)


# --- Checking ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SfMismatch:
    expected: SfExpected
    field: str
    wanted: str
    actual: str | None


def check_salesforce(demo: JointDemo) -> list[SfMismatch]:
    """Compare the org's records with the ground truth generated alongside the data."""
    problems: list[SfMismatch] = []
    stage_field = {"Lead": "Status", "Contact": "Lifecycle_Stage__c"}
    for e in demo.salesforce_expected:
        row = demo.salesforce.records[e.object_type][e.record_id]
        if e.untouched:
            before = demo.snapshots[e.record_id]
            changed = sorted(k for k, v in row.items() if before.get(k) != v)
            if changed:
                problems.append(SfMismatch(e, "untouched", "no change", ", ".join(changed)))
            continue
        checks: list[tuple[str, str | None, Any]] = [
            (stage_field[e.object_type], e.stage, row.get(stage_field[e.object_type])),
            ("Marketing_Status__c", e.status, row.get("Marketing_Status__c")),
        ]
        for name, wanted, actual in checks:
            if wanted != actual:
                problems.append(SfMismatch(e, name, str(wanted), None if actual is None else str(actual)))
        owner = row.get("OwnerId")
        if e.owner_as_hubspot is not None:
            hs_owner = demo.hubspot.contacts[e.owner_as_hubspot].get("hubspot_owner_id")
            wanted_owner = SF_USER_OF_HUBSPOT_OWNER.get(str(hs_owner))
            if owner != wanted_owner:
                problems.append(SfMismatch(e, "OwnerId", f"the rep HubSpot got ({wanted_owner})", owner))
        elif e.owner_pool:
            if owner not in e.owner_pool:
                problems.append(SfMismatch(e, "OwnerId", "one of " + "/".join(e.owner_pool), owner))
        elif owner != e.owner:
            problems.append(SfMismatch(e, "OwnerId", str(e.owner), owner))
        stamped = bool(row.get("MQL_Date__c")) and bool(row.get("MQL_Reason__c"))
        if e.object_type == "Lead" and stamped != e.mql_stamped:
            problems.append(
                SfMismatch(e, "MQL_Date__c", "set" if e.mql_stamped else "empty", str(row.get("MQL_Date__c")))
            )
    return problems


def counts(expected: Sequence[SfExpected]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in expected:
        out[e.persona] = out.get(e.persona, 0) + 1
    return out


def register_connected_app(store: SalesforceStore) -> str:
    """A fresh RSA key pair for the demo's connected app: the org trusts the public half for JWT
    bearer logins as the integration user; the private half (PEM) goes to the connector's settings."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    store.connected_apps[CONSUMER_KEY] = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
