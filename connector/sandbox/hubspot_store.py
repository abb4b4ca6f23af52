"""In-memory state of one emulated HubSpot portal.

The HTTP app (`hubspot_app.py`) serves and mutates it; `demo_data.py` fills it. Values are kept the
way HubSpot sends them: every property value is a string (or None), datetimes as ISO-8601 UTC with
milliseconds ("2026-11-02T10:00:00.000Z"), ids as strings of digits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def hs_datetime(moment: datetime) -> str:
    """HubSpot's datetime property format: ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_hs_datetime(value: str) -> datetime:
    """Inverse of `hs_datetime`; also accepts epoch milliseconds as HubSpot does in filters."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class LoggedRequest:
    """One request as the emulator received it, for tests that count calls or check bodies."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    response: Any = None
    at: float = 0.0
    """When the request arrived (the emulator's monotonic clock; where limits count it)."""


@dataclass
class HubSpotStore:
    """Everything one portal holds. Guard mutations with `lock` (the server is threaded)."""

    # contact id -> properties (always includes hs_object_id, createdate, lastmodifieddate)
    contacts: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # PublicOwner dicts, archived ones included (with "archived": True)
    owners: list[dict[str, Any]] = field(default_factory=list)
    # engagement object type ("emails", "meetings", "calls"...) -> id -> properties
    engagements: dict[str, dict[str, dict[str, str | None]]] = field(default_factory=dict)
    # (from object type, to object type) -> from id -> [to ids]; stored in both directions
    associations: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    # ExternalUnifiedEvent dicts: {id, eventType, objectType, objectId, occurredAt, properties}
    events: list[dict[str, Any]] = field(default_factory=list)
    # object type -> property name -> Property definition dict (name, label, type, fieldType, options...)
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # the token the emulator accepts as "Authorization: Bearer <token>"
    access_token: str = "sandbox-token"  # noqa: S105 - a fixed sandbox token, not a secret
    requests: list[LoggedRequest] = field(default_factory=list)
    # False for a portal below Enterprise: the Events API answers 403
    events_api: bool = True
    # True: one invalid value fails a whole batch update with a 400 (see HubSpotEmulator._batch_update)
    batch_all_or_nothing: bool = False
    # False keeps only method, path and status per request (benchmarks with 100,000s of requests)
    log_bodies: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock)
    # object type -> id -> property -> [ValueWithTimestamp dicts {value, timestamp, sourceType, ...}],
    # newest first, as `propertiesWithHistory` returns them. The emulator appends on every applied
    # write; a seeded value without history reads back as one entry dated at the record's creation.
    property_history: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = field(default_factory=dict)

    def next_id(self) -> str:
        """A fresh numeric id, unique across all objects of the portal."""
        with self.lock:
            ids = [int(i) for i in self.contacts] + [
                int(i) for objs in self.engagements.values() for i in objs
            ]
            return str(max(ids, default=100) + 1)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        with self.lock:
            self.associations.setdefault((from_type, to_type), {}).setdefault(from_id, []).append(to_id)
            self.associations.setdefault((to_type, from_type), {}).setdefault(to_id, []).append(from_id)

    def record_writes(self) -> list[LoggedRequest]:
        """Requests that update existing records (not the follow-up tasks the connector creates)."""
        return [r for r in self.writes() if not r.path.endswith("/batch/create")]

    def writes(self) -> list[LoggedRequest]:
        """Requests that could change data (batch update, PATCH...), for idempotency assertions."""
        return [
            r
            for r in self.requests
            if r.method in ("PATCH", "PUT", "DELETE")
            or (
                r.method == "POST"
                and r.path.endswith(("/batch/update", "/batch/create", "/batch/upsert", "/batch/archive"))
            )
        ]


# --- Additions for the HTTP emulator (additive: existing fields above keep their meaning) -----------

LIFECYCLE_STAGES: tuple[tuple[str, str], ...] = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
"""HubSpot's default `lifecyclestage` options in display order (the order the stage only moves forward in)."""

LEAD_STATUSES: tuple[str, ...] = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
"""Default `hs_lead_status` options as most portals have them (read them from the properties API)."""

_PROPERTY_TIMESTAMP = "2019-08-06T02:43:14.491Z"


def property_definition(
    name: str,
    label: str,
    type_: str,
    field_type: str,
    *,
    group: str = "contactinformation",
    options: list[dict[str, Any]] | None = None,
    read_only: bool = False,
    external_options: bool = False,
    description: str = "",
) -> dict[str, Any]:
    """One `Property` as the properties API returns it (the fields the spec marks required, and more).

    `modificationMetadata.readOnlyValue` is what the emulator consults to refuse writes, so a
    demo portal can declare its own read-only custom properties the same way HubSpot does.
    """
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "description": description,
        "groupName": group,
        "options": options or [],
        "displayOrder": -1,
        "calculated": read_only,
        "externalOptions": external_options,
        "hasUniqueValue": name == "email",
        "hidden": False,
        "hubspotDefined": True,
        "formField": not read_only,
        "archived": False,
        "createdAt": _PROPERTY_TIMESTAMP,
        "updatedAt": _PROPERTY_TIMESTAMP,
        "modificationMetadata": {
            "archivable": False,
            "readOnlyDefinition": True,
            "readOnlyValue": read_only,
        },
    }


def _options(values: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": value, "displayOrder": order, "hidden": False}
        for order, (value, label) in enumerate(values)
    ]


def default_contact_properties() -> dict[str, dict[str, Any]]:
    """The default contact properties a HubSpot portal has, as far as the connector touches them.

    Names, types and read-only flags follow a live portal's property export (api-facts §3.5);
    counters and dates HubSpot computes are read-only, which is why the emulator refuses writes
    to them. Seed `store.properties["contacts"]` with this, then add custom properties.
    """
    writable: list[tuple[str, str, str, str]] = [
        ("email", "Email", "string", "text"),
        ("firstname", "First Name", "string", "text"),
        ("lastname", "Last Name", "string", "text"),
        ("jobtitle", "Job Title", "string", "text"),
        ("company", "Company Name", "string", "text"),
        ("phone", "Phone Number", "string", "phonenumber"),
        ("website", "Website URL", "string", "text"),
        ("country", "Country/Region", "string", "text"),
        ("state", "State/Region", "string", "text"),
        ("city", "City", "string", "text"),
        ("industry", "Industry", "string", "text"),
        ("numemployees", "Number of Employees", "string", "text"),
        ("annualrevenue", "Annual Revenue", "string", "text"),
        ("salesforceleadid", "Salesforce Lead ID", "string", "text"),
        ("salesforcecontactid", "Salesforce Contact ID", "string", "text"),
        ("salesforceaccountid", "Salesforce Account ID", "string", "text"),
        ("hubspotscore", "HubSpot Score", "number", "number"),
    ]
    read_only: list[tuple[str, str, str, str]] = [
        ("hs_object_id", "Record ID", "number", "number"),
        ("createdate", "Create Date", "datetime", "date"),
        ("lastmodifieddate", "Last Modified Date", "datetime", "date"),
        ("hs_lastmodifieddate", "Object last modified date/time", "datetime", "date"),
        ("hubspot_owner_assigneddate", "Owner Assigned Date", "datetime", "date"),
        ("hs_analytics_num_page_views", "Number of Pageviews", "number", "number"),
        ("hs_analytics_num_visits", "Number of Sessions", "number", "number"),
        ("hs_analytics_num_event_completions", "Number of event completions", "number", "number"),
        ("hs_analytics_last_visit_timestamp", "Time of Last Session", "datetime", "date"),
        ("hs_analytics_last_timestamp", "Time Last Seen", "datetime", "date"),
        ("hs_analytics_last_url", "Last Page Seen", "string", "text"),
        ("hs_analytics_source", "Original Traffic Source", "string", "text"),
        ("num_conversion_events", "Number of Form Submissions", "number", "number"),
        ("num_unique_conversion_events", "Number of Unique Forms Submitted", "number", "number"),
        ("recent_conversion_event_name", "Recent Conversion", "string", "text"),
        ("recent_conversion_date", "Recent Conversion Date", "datetime", "date"),
        ("first_conversion_event_name", "First Conversion", "string", "text"),
        ("first_conversion_date", "First Conversion Date", "datetime", "date"),
        ("hs_email_open", "Marketing emails opened", "number", "number"),
        ("hs_email_click", "Marketing emails clicked", "number", "number"),
        ("hs_email_delivered", "Marketing emails delivered", "number", "number"),
        ("hs_email_bounce", "Marketing emails bounced", "number", "number"),
        ("hs_email_replied", "Marketing emails replied", "number", "number"),
        ("hs_email_last_open_date", "Last marketing email open date", "datetime", "date"),
        ("hs_email_last_click_date", "Last marketing email click date", "datetime", "date"),
        ("hs_email_last_reply_date", "Last marketing email reply date", "datetime", "date"),
        ("hs_email_optout", "Unsubscribed from all email", "bool", "booleancheckbox"),
        ("hs_sales_email_last_replied", "Recent Sales Email Replied Date", "datetime", "date"),
        ("hs_sales_email_last_opened", "Recent Sales Email Opened Date", "datetime", "date"),
        ("hs_sales_email_last_clicked", "Recent Sales Email Clicked Date", "datetime", "date"),
        ("notes_last_contacted", "Last Contacted", "datetime", "date"),
        ("num_contacted_notes", "Number of times contacted", "number", "number"),
        ("notes_last_updated", "Last Activity Date", "datetime", "date"),
        ("num_notes", "Number of Sales Activities", "number", "number"),
        ("hs_last_sales_activity_timestamp", "Last Engagement Date", "datetime", "date"),
        ("engagements_last_meeting_booked", "Date of last meeting booked", "datetime", "date"),
        ("hs_social_last_engagement", "Most Recent Social Click", "datetime", "date"),
    ]
    read_only += [
        (f"hs_lifecyclestage_{value}_date", f"Became a {label} Date", "datetime", "date")
        for value, label in LIFECYCLE_STAGES
    ]
    catalogue = {name: property_definition(name, label, t, ft) for name, label, t, ft in writable}
    catalogue |= {
        name: property_definition(name, label, t, ft, read_only=True) for name, label, t, ft in read_only
    }
    catalogue["lifecyclestage"] = property_definition(
        "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=_options(list(LIFECYCLE_STAGES))
    )
    catalogue["hs_lead_status"] = property_definition(
        "hs_lead_status",
        "Lead Status",
        "enumeration",
        "radio",
        group="sales_properties",
        options=_options([(s, s.replace("_", " ").title()) for s in LEAD_STATUSES]),
    )
    catalogue["hubspot_owner_id"] = property_definition(
        "hubspot_owner_id",
        "Contact owner",
        "enumeration",
        "select",
        group="sales_properties",
        external_options=True,
        description="The owner of a contact. This can be any HubSpot user or Salesforce integration user.",
    )
    return catalogue


def default_object_properties() -> dict[str, dict[str, dict[str, Any]]]:
    """Default property definitions of companies and engagement objects (properties API, and which
    properties a read returns). Names and types follow HubSpot's defaults for each object."""
    common = [
        ("hs_object_id", "Record ID", "number", "number", True),
        ("hs_createdate", "Create Date", "datetime", "date", True),
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", True),
        ("hubspot_owner_id", "Owner", "enumeration", "select", False),
    ]
    engagement = [*common, ("hs_timestamp", "Activity date", "datetime", "date", False)]
    per_type: dict[str, list[tuple[str, str, str, str, bool]]] = {
        "companies": [
            *common,
            ("name", "Company name", "string", "text", False),
            ("domain", "Company Domain Name", "string", "text", False),
            ("industry", "Industry", "enumeration", "select", False),
            ("numberofemployees", "Number of Employees", "number", "number", False),
            ("annualrevenue", "Annual Revenue", "number", "number", False),
            ("country", "Country/Region", "string", "text", False),
            ("createdate", "Create Date", "datetime", "date", True),
        ],
        "emails": [
            *engagement,
            ("hs_email_direction", "Email direction", "enumeration", "select", False),
            ("hs_email_subject", "Email subject", "string", "text", False),
            ("hs_email_text", "Email body", "string", "textarea", False),
            ("hs_email_status", "Email send status", "enumeration", "select", False),
        ],
        "meetings": [
            *engagement,
            ("hs_meeting_title", "Meeting name", "string", "text", False),
            ("hs_meeting_outcome", "Meeting outcome", "enumeration", "select", False),
            ("hs_meeting_start_time", "Start time", "datetime", "date", False),
            ("hs_meeting_end_time", "End time", "datetime", "date", False),
            ("hs_meeting_location", "Location", "string", "text", False),
        ],
        "calls": [
            *engagement,
            ("hs_call_title", "Call title", "string", "text", False),
            ("hs_call_body", "Call notes", "string", "textarea", False),
            ("hs_call_direction", "Call direction", "enumeration", "select", False),
            ("hs_call_status", "Call status", "enumeration", "select", False),
            ("hs_call_duration", "Call duration", "number", "number", False),
            ("hs_call_disposition", "Call outcome", "enumeration", "select", False),
        ],
        "notes": [*engagement, ("hs_note_body", "Note body", "string", "textarea", False)],
        "tasks": [
            *engagement,
            ("hs_task_subject", "Task title", "string", "text", False),
            ("hs_task_status", "Task status", "enumeration", "select", False),
            ("hs_task_body", "Notes", "string", "textarea", False),
            ("hs_task_priority", "Priority", "enumeration", "select", False),
            ("hs_task_type", "Task type", "enumeration", "select", False),
        ],
        "communications": [
            *engagement,
            ("hs_communication_channel_type", "Channel type", "enumeration", "select", False),
            ("hs_communication_body", "Body", "string", "textarea", False),
        ],
    }
    catalogues = {
        object_type: {
            name: property_definition(name, label, t, ft, group=object_type, read_only=read_only)
            for name, label, t, ft, read_only in definitions
        }
        for object_type, definitions in per_type.items()
    }
    for name, values in TASK_OPTIONS.items():
        catalogues["tasks"][name]["options"] = _options([(v, v.replace("_", " ").title()) for v in values])
    return catalogues


TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "hs_task_status": ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
    "hs_task_priority": ("NONE", "LOW", "MEDIUM", "HIGH"),
    "hs_task_type": ("CALL", "EMAIL", "LINKED_IN", "MEETING", "TODO"),
}
"""HubSpot's default task enumeration values (the properties API lists them per portal)."""
