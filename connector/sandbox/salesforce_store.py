"""In-memory state of one emulated Salesforce org: object schemas (for `describe`), records, users.

`salesforce_app.py` serves and mutates it; `salesforce_demo.py` fills it. Values are kept as the
REST API sends them in JSON: text as str, checkboxes as bool, numbers as int/float, date-times as
`2026-01-31T10:00:00.000+0000`, dates as `2026-01-31`, ids as 18-character strings whose first
three characters are the object's key prefix (`00Q` Lead, `003` Contact, `005` User, `00G` Group).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_VERSION = "59.0"
"""simple-salesforce's default API version (api-facts §7.1); any vNN.N in a URL is accepted."""

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Lead": "00Q",
    "Group": "00G",
    "Task": "00T",
    "Event": "00U",
    "Campaign": "701",
    "CampaignMember": "00v",
}


def sf_datetime(moment: datetime) -> str:
    """Salesforce's REST date-time format: `2026-01-31T10:00:00.000+0000` (always UTC here)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def id18(id15: str) -> str:
    """The case-insensitive 18-character form of a 15-character id (Salesforce's checksum suffix)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for block in range(3):
        bits = 0
        for position, char in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += alphabet[bits]
    return id15 + suffix


@dataclass(frozen=True)
class FieldDef:
    """One field as `describe` reports it (the attributes the connector and validate read)."""

    name: str
    type: str
    label: str
    updateable: bool = True
    createable: bool = True
    nillable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    custom: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "length": 255 if self.type in ("string", "picklist", "email", "textarea") else 0,
            "updateable": self.updateable,
            "createable": self.createable,
            "nillable": self.nillable,
            "custom": self.custom,
            "filterable": True,
            "sortable": self.type != "textarea",
            "restrictedPicklist": self.restricted,
            "referenceTo": list(self.reference_to),
            "relationshipName": (self.name[:-2] if self.name.endswith("Id") and self.reference_to else None),
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": value, "validFor": None, "value": value}
                for value in self.picklist
            ],
        }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
}


def _system_fields() -> list[FieldDef]:
    return [
        FieldDef("Id", "id", "Record ID", updateable=False, createable=False, nillable=False),
        FieldDef("IsDeleted", "boolean", "Deleted", updateable=False, createable=False, nillable=False),
        FieldDef(
            "CreatedDate", "datetime", "Created Date", updateable=False, createable=False, nillable=False
        ),
        FieldDef(
            "LastModifiedDate",
            "datetime",
            "Last Modified Date",
            updateable=False,
            createable=False,
            nillable=False,
        ),
        FieldDef(
            "SystemModstamp",
            "datetime",
            "System Modstamp",
            updateable=False,
            createable=False,
            nillable=False,
        ),
    ]


LEAD_STATUSES = (
    "Nurture",
    "Open - Not Contacted",
    "Marketing Qualified",
    "Sales Accepted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
"""The demo org's Lead Status picklist (an org-specific, restricted picklist in every real org)."""

CONTACT_STAGES = ("Subscriber", "Lead", "MQL", "SQL", "Opportunity", "Customer")
"""The demo org's custom Contact `Lifecycle_Stage__c` picklist (Contacts have no standard status)."""

MARKETING_STATUSES = (
    "New", "Open", "In Progress", "Attempted to Contact", "Connected", "Unqualified", "Bad Timing",
)  # fmt: skip
"""The demo org's custom `Marketing_Status__c` picklist on Lead and Contact."""

INDUSTRIES = (
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Media", "Hospitality",
    "Non-profit", "Construction", "Logistics", "Education", "Energy", "Other",
)  # fmt: skip
TASK_TYPES = ("Call", "Email", "Meeting", "Other")
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_PRIORITIES = ("High", "Normal", "Low")
EVENT_TYPES = ("Call", "Email", "Meeting", "Other")
CAMPAIGN_TYPES = ("Webinar", "Conference", "Trade Show", "Email", "Content", "Advertisement", "Other")
CAMPAIGN_MEMBER_STATUSES = ("Sent", "Responded", "Registered", "Attended")


def _person_fields(*, stage_field: FieldDef) -> list[FieldDef]:
    return [
        FieldDef("FirstName", "string", "First Name"),
        FieldDef("LastName", "string", "Last Name", nillable=False),
        FieldDef("Email", "email", "Email"),
        FieldDef("Title", "string", "Title"),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
        FieldDef("OwnerId", "reference", "Owner ID", nillable=False, reference_to=("Group", "User")),
        stage_field,
        FieldDef(
            "Marketing_Status__c", "picklist", "Marketing Status", picklist=MARKETING_STATUSES, custom=True
        ),
        FieldDef("MQL_Date__c", "datetime", "MQL Date", custom=True),
        FieldDef("MQL_Reason__c", "string", "MQL Reason", custom=True),
    ]


def default_schema() -> dict[str, dict[str, FieldDef]]:
    """The objects and fields of the demo org, standard fields as Salesforce names them."""
    objects: dict[str, list[FieldDef]] = {
        "Lead": [
            *_person_fields(
                stage_field=FieldDef(
                    "Status",
                    "picklist",
                    "Lead Status",
                    nillable=False,
                    picklist=LEAD_STATUSES,
                    restricted=True,
                )
            ),
            FieldDef("Company", "string", "Company", nillable=False),
            FieldDef("Industry", "picklist", "Industry", picklist=INDUSTRIES),
            FieldDef("NumberOfEmployees", "int", "Employees"),
            FieldDef("Country", "string", "Country"),
            FieldDef("State", "string", "State/Province"),
            FieldDef(
                "LeadSource",
                "picklist",
                "Lead Source",
                picklist=("Web", "Webinar", "Trade Show", "Partner", "Other"),
            ),
            FieldDef("IsConverted", "boolean", "Converted", updateable=False, nillable=False),
            FieldDef(
                "ConvertedContactId",
                "reference",
                "Converted Contact ID",
                updateable=False,
                reference_to=("Contact",),
            ),
            FieldDef(
                "ConvertedAccountId",
                "reference",
                "Converted Account ID",
                updateable=False,
                reference_to=("Account",),
            ),
            FieldDef("ConvertedDate", "date", "Converted Date", updateable=False),
        ],
        "Contact": [
            *_person_fields(
                stage_field=FieldDef(
                    "Lifecycle_Stage__c",
                    "picklist",
                    "Lifecycle Stage",
                    picklist=CONTACT_STAGES,
                    restricted=True,
                    custom=True,
                )
            ),
            FieldDef("AccountId", "reference", "Account ID", reference_to=("Account",)),
            FieldDef("Department", "string", "Department"),
            FieldDef("MailingCountry", "string", "Mailing Country"),
            FieldDef("MailingState", "string", "Mailing State/Province"),
        ],
        "Account": [
            FieldDef("Name", "string", "Account Name", nillable=False),
            FieldDef("Industry", "picklist", "Industry", picklist=INDUSTRIES),
            FieldDef("NumberOfEmployees", "int", "Employees"),
            FieldDef("BillingCountry", "string", "Billing Country"),
            FieldDef("Website", "url", "Website"),
            FieldDef("OwnerId", "reference", "Owner ID", nillable=False, reference_to=("User",)),
        ],
        "User": [
            FieldDef("Username", "string", "Username", nillable=False),
            FieldDef("Name", "string", "Full Name", updateable=False, createable=False),
            FieldDef("FirstName", "string", "First Name"),
            FieldDef("LastName", "string", "Last Name", nillable=False),
            FieldDef("Email", "email", "Email", nillable=False),
            FieldDef("IsActive", "boolean", "Active", nillable=False),
        ],
        "Group": [
            FieldDef("Name", "string", "Name", nillable=False),
            FieldDef("DeveloperName", "string", "Developer Name"),
            FieldDef("Type", "picklist", "Type", nillable=False, picklist=("Regular", "Queue", "Role")),
            FieldDef("Email", "email", "Email"),
        ],
        "Task": [
            FieldDef("WhoId", "reference", "Name ID", reference_to=("Contact", "Lead")),
            FieldDef("WhatId", "reference", "Related To ID", reference_to=("Account", "Campaign")),
            FieldDef("Subject", "combobox", "Subject"),
            FieldDef("Type", "picklist", "Type", picklist=TASK_TYPES),
            FieldDef(
                "TaskSubtype",
                "picklist",
                "Task Subtype",
                updateable=False,
                picklist=TASK_SUBTYPES,
                restricted=True,
            ),
            FieldDef("Status", "picklist", "Status", nillable=False, picklist=TASK_STATUSES),
            FieldDef("Priority", "picklist", "Priority", nillable=False, picklist=TASK_PRIORITIES),
            FieldDef("Description", "textarea", "Comments"),
            FieldDef("ActivityDate", "date", "Due Date Only"),
            FieldDef(
                "CompletedDateTime", "datetime", "Completed Date/Time", updateable=False, createable=False
            ),
            FieldDef("CallType", "picklist", "Call Type", picklist=("Inbound", "Outbound", "Internal")),
            FieldDef("CallDurationInSeconds", "int", "Call Duration"),
            FieldDef(
                "OwnerId", "reference", "Assigned To ID", nillable=False, reference_to=("Group", "User")
            ),
        ],
        "Event": [
            FieldDef("WhoId", "reference", "Name ID", reference_to=("Contact", "Lead")),
            FieldDef("WhatId", "reference", "Related To ID", reference_to=("Account", "Campaign")),
            FieldDef("Subject", "combobox", "Subject"),
            FieldDef("Type", "picklist", "Type", picklist=EVENT_TYPES),
            FieldDef("EventSubtype", "picklist", "Event Subtype", updateable=False, picklist=("Event",)),
            FieldDef("StartDateTime", "datetime", "Start Date Time"),
            FieldDef("EndDateTime", "datetime", "End Date Time"),
            FieldDef("DurationInMinutes", "int", "Duration"),
            FieldDef("OwnerId", "reference", "Assigned To ID", nillable=False, reference_to=("User",)),
        ],
        "Campaign": [
            FieldDef("Name", "string", "Name", nillable=False),
            FieldDef("Type", "picklist", "Type", picklist=CAMPAIGN_TYPES),
            FieldDef(
                "Status", "picklist", "Status", picklist=("Planned", "In Progress", "Completed", "Aborted")
            ),
            FieldDef("IsActive", "boolean", "Active", nillable=False),
            FieldDef("StartDate", "date", "Start Date"),
        ],
        "CampaignMember": [
            FieldDef(
                "CampaignId",
                "reference",
                "Campaign ID",
                updateable=False,
                nillable=False,
                reference_to=("Campaign",),
            ),
            FieldDef("LeadId", "reference", "Lead ID", updateable=False, reference_to=("Lead",)),
            FieldDef("ContactId", "reference", "Contact ID", updateable=False, reference_to=("Contact",)),
            FieldDef("Status", "picklist", "Status", picklist=CAMPAIGN_MEMBER_STATUSES),
            FieldDef(
                "HasResponded", "boolean", "Responded", updateable=False, createable=False, nillable=False
            ),
            FieldDef(
                "FirstRespondedDate", "date", "First Responded Date", updateable=False, createable=False
            ),
        ],
    }
    return {name: {f.name: f for f in (*_system_fields(), *fields)} for name, fields in objects.items()}


@dataclass
class LoggedRequest:
    """One request as the emulator received it, for tests that count calls or check bodies."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    response: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SalesforceStore:
    """Everything one org holds. Guard mutations with `lock` (the server is threaded).

    Knobs for tests and the demo, besides the data:
    * `daily_api_limit` / `api_used`: the rolling 24 h allocation (`DailyApiRequests`), counted per
      REST request; over it every call answers 403 REQUEST_LIMIT_EXCEEDED;
    * `lock_failures[id] = n`: the next n writes of that record fail with UNABLE_TO_LOCK_ROW;
    * `rejections[id] = (errorCode, message)`: every write of that record fails (a validation rule
      FIELD_CUSTOM_VALIDATION_EXCEPTION, a duplicate rule DUPLICATES_DETECTED...);
    * `sessions`: access tokens accepted; `expire_sessions()` makes the next call INVALID_SESSION_ID.
    """

    schema: dict[str, dict[str, FieldDef]] = field(default_factory=default_schema)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=lambda: {"sandbox-session-id"})
    session_id: str = "sandbox-session-id"
    # username -> password + security token, for the SOAP login
    passwords: dict[str, str] = field(default_factory=dict)
    # connected app consumer key -> PEM public key that verifies its JWT assertions
    connected_apps: dict[str, bytes] = field(default_factory=dict)
    daily_api_limit: int = 15_000
    api_used: int = 0
    lock_failures: dict[str, int] = field(default_factory=dict)
    rejections: dict[str, tuple[str, str]] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    locators: OrderedDict[str, tuple[str, list[dict[str, Any]], int]] = field(default_factory=OrderedDict)
    _counter: int = 0

    def new_id(self, sobject: str) -> str:
        with self.lock:
            self._counter += 1
            return id18(f"{KEY_PREFIXES[sobject]}Dn{self._counter:010d}")

    def table(self, sobject: str) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(sobject, {})

    def sobject_of(self, record_id: str) -> str | None:
        """The object a record id belongs to, by its key prefix."""
        prefix = record_id[:3]
        return next((name for name, key in KEY_PREFIXES.items() if key == prefix), None)

    def find(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        sobject = self.sobject_of(record_id)
        if sobject is None:
            return None
        table = self.table(sobject)
        row = table.get(record_id) or (table.get(id18(record_id)) if len(record_id) == 15 else None)
        return (sobject, row) if row is not None else None

    def insert(self, sobject: str, values: dict[str, Any], *, at: datetime) -> dict[str, Any]:
        """Add a record with every field of its schema (absent ones null), dated `at`."""
        stamp = sf_datetime(at.replace(microsecond=0))  # system date-times are whole seconds
        row: dict[str, Any] = dict.fromkeys(self.schema[sobject])
        row.update(
            {"IsDeleted": False, "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp}
        )
        for name, definition in self.schema[sobject].items():
            if definition.type == "boolean" and row.get(name) is None:
                row[name] = False
        row.update(values)
        row["Id"] = values.get("Id") or self.new_id(sobject)
        if sobject == "User":
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        self.table(sobject)[row["Id"]] = row
        return row

    def expire_sessions(self) -> None:
        """Every current access token becomes invalid (the next call answers INVALID_SESSION_ID)."""
        with self.lock:
            self.sessions.clear()

    def record_writes(self) -> list[LoggedRequest]:
        """Requests that update existing records (not the follow-up Tasks the connector creates)."""
        return [r for r in self.writes() if r.method != "POST"]

    def writes(self) -> list[LoggedRequest]:
        """Requests that change data (PATCH, POST to sobjects/composite), for idempotency checks."""
        return [
            r
            for r in self.requests
            if r.method in ("PATCH", "DELETE") or (r.method == "POST" and "/sobjects" in r.path)
        ]

    def api_requests(self) -> list[LoggedRequest]:
        """Requests that count against the daily API allocation (REST under /services/data)."""
        return [r for r in self.requests if r.path.startswith("/services/data/")]
