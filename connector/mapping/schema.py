"""Pydantic models of mappings/*.yaml: criteria, routing and one file per CRM.

Every model forbids unknown keys, so a typo in a mapping file is an error with a location rather
than a setting silently ignored. Cross-file checks (a stage named in hubspot.yaml exists in
criteria.yaml, a rule's names exist...) live in `loader.py`, which knows where each value came from.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- criteria.yaml


class ActivityTypeSpec(StrictModel):
    """A canonical activity type and the channel it counts towards ("engagement on 3+ platforms")."""

    channel: str
    description: str = ""


class ActivityFilter(StrictModel):
    """Which activities count. Filters combine with AND; each list combines with OR; empty = any."""

    types: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    url_patterns: list[str] = Field(default_factory=list, description="regexes searched in the page URL")
    name_patterns: list[str] = Field(
        default_factory=list, description="regexes searched in the form/event name"
    )


SignalKind = Literal[
    "count",
    "distinct_channels",
    "distinct_days",
    "longest_gap_days",
    "returns",
    "cadence",
    "days_since_first",
    "days_since_last",
    "score",
]
"""Every kind of signal; `lifecycle/signals.py` documents exactly what each computes."""

SIGNAL_KIND_PARAMETERS: dict[str, frozenset[str]] = {
    "count": frozenset(),
    "distinct_channels": frozenset(),
    "distinct_days": frozenset(),
    "longest_gap_days": frozenset(),
    "returns": frozenset({"within_days"}),
    "cadence": frozenset({"span_days", "anchor"}),
    "days_since_first": frozenset(),
    "days_since_last": frozenset(),
    "score": frozenset({"points", "caps", "cap", "half_life_days"}),
}
"""The kind-specific keys each kind accepts (the loader reports any other one where it is written)."""

REQUIRED_KIND_PARAMETERS: dict[str, frozenset[str]] = {
    "returns": frozenset({"within_days"}),
    "cadence": frozenset({"span_days"}),
    "score": frozenset({"points"}),
}


class SignalSpec(ActivityFilter):
    """A number computed from a person's timeline over a rolling window ending at evaluation time.

    kind (all over the activities inside the window that pass the filters):
      count              how many
      distinct_channels  how many different channels they span
      distinct_days      on how many different calendar days (UTC)
      longest_gap_days   the longest run of days between two consecutive active days (0: < 2 days)
      returns            active days that came at most `within_days` days after the previous one
      cadence            the most active days inside any `span_days` consecutive days that include
                         a day with an `anchor` activity ("3 days out of 4, one with a download")
      days_since_first   whole days since the earliest (0 when there is none)
      days_since_last    whole days since the latest (`window_days` when there is none)
      score              sum of `points` per activity type, decayed by `half_life_days`, capped per
                         type by `caps` and in total by `cap` (a decimal number)
    """

    kind: SignalKind
    window_days: int = Field(gt=0, le=3650)
    within_days: int | None = Field(default=None, ge=1, le=3650)
    span_days: int | None = Field(default=None, ge=1, le=3650)
    anchor: ActivityFilter | None = None
    points: dict[str, float] = Field(default_factory=dict)
    caps: dict[str, float] = Field(default_factory=dict)
    cap: float | None = None
    half_life_days: float | None = Field(default=None, gt=0, le=3650)
    unit: str = Field(
        default="",
        description='what one of it is, for plain-language explanations (e.g. "pricing page visit")',
    )
    description: str = ""


class FitRule(StrictModel):
    name: str
    when: str
    points: int = Field(ge=-1000, le=1000)
    description: str = ""


class FitSpec(StrictModel):
    """Ideal-customer-profile fit: points per matching rule, then the highest grade whose minimum is met."""

    rules: list[FitRule] = Field(default_factory=list)
    grades: dict[str, int] = Field(default_factory=lambda: {"A": 0})


class Disqualifier(StrictModel):
    """A reason a person may never pass `cap`; optionally sets a lead status (e.g. unqualified).

    A disqualifier never lowers a stage the CRM already shows, unless `move_stage_back: true` and
    the criteria's `allow_backward_moves: true`: then a person above `cap` is moved back to the
    stage the criteria give now (at most `cap`).
    """

    name: str
    when: str
    cap: str
    lead_status: str | None = None
    move_stage_back: bool = False
    description: str = ""


class StageRule(StrictModel):
    """`stage` is reached when `when` holds. Rules are tried top to bottom; the first match wins."""

    name: str
    stage: str
    when: str
    lead_status: str | None = None
    description: str = ""


class RecycleRule(StrictModel):
    """Sends a person who stalled at a hand-off stage back to nurture: sets `lead_status`, keeps the stage.

    Tried for people whose current stage is in `stages`; `when` may also read `accepted`,
    `days_in_stage`, `current_stage`, `current_lead_status` and the hand-off SLA's
    `handoff_hours`, `sales_touched` and `sla_lapsed` (routing.yaml `handoff:`). `move_stage_to` (a
    stage below every one in `stages`) also moves the stage back, only with the criteria's
    `allow_backward_moves: true` and a CRM mapping whose stage allows backward moves.
    """

    name: str
    stages: list[str] = Field(min_length=1)
    when: str
    lead_status: str
    move_stage_to: str | None = None
    description: str = ""


class Acceptance(StrictModel):
    """When Sales has accepted a hand-off (then recycle rules leave the person alone).

    Accepted = the CRM's lead status is one of `lead_statuses` (canonical names: a rep moved it),
    or an activity of one of `activity_types` happened after the person entered the stage.
    """

    lead_statuses: list[str] = Field(default_factory=list)
    activity_types: list[str] = Field(default_factory=list)


class Criteria(StrictModel):
    version: Literal[1] = 1
    stages: list[str] = Field(min_length=1, description="canonical stages, lowest first")
    sales_owned: list[str] = Field(default_factory=list)
    default_stage: str
    lead_statuses: list[str] = Field(default_factory=list)
    activity_types: dict[str, ActivityTypeSpec]
    lists: dict[str, list[str]] = Field(default_factory=dict)
    signals: dict[str, SignalSpec] = Field(default_factory=dict)
    fit: FitSpec = Field(default_factory=FitSpec)
    disqualifiers: list[Disqualifier] = Field(default_factory=list)
    rules: list[StageRule] = Field(default_factory=list)
    acceptance: Acceptance = Field(default_factory=Acceptance)
    recycle: list[RecycleRule] = Field(default_factory=list)
    allow_backward_moves: bool = Field(
        default=False,
        description="let recycle rules (move_stage_to) and disqualifiers (move_stage_back) lower a stage",
    )

    @property
    def moves_back(self) -> bool:
        """Whether any rule asks for a backward stage move (validation requires the switch then)."""
        return any(r.move_stage_to for r in self.recycle) or any(
            d.move_stage_back for d in self.disqualifiers
        )


# --------------------------------------------------------------------------- routing.yaml


class Rep(StrictModel):
    """A person who can own records, named once with their id in each CRM.

    `salesforce_user_id` may be a User (005...) or a Queue (00G...); HubSpot has no queues, so a
    queue-like fallback there is a real owner (a team lead or a shared "sales inbox" user).
    """

    name: str
    hubspot_owner_id: str | None = None
    salesforce_user_id: str | None = None
    email: str | None = Field(
        default=None, description="to recognise this rep among the CRM's owners when ids differ"
    )


class Band(StrictModel):
    """A numeric range for `match` (segments: `employees: {min: 200, max: 999}`), bounds included."""

    min: float | None = None
    max: float | None = None


class Pool(StrictModel):
    """Reps who take turns. `daily_cap` limits each member per day in this pool; `caps` overrides it
    per member. A capped or inactive member is skipped for their turn, never queued for later."""

    members: list[str] = Field(min_length=1)
    strategy: Literal["round_robin", "weighted"] = "round_robin"
    weights: dict[str, int] = Field(default_factory=dict)
    daily_cap: int | None = Field(default=None, ge=0)
    caps: dict[str, int] = Field(default_factory=dict)


RoutingRuleKind = Literal["match", "account_owner"]


class RoutingRule(StrictModel):
    """One routing step, tried in order.

    `match` (the default kind) sends people whose fields match to `pool`: each `match` entry maps a
    person field to accepted values (any case) or to a numeric band. `account_owner` gives the
    person to the owner of their company: the associated company's owner (`owner_field`), else the
    owner of a company whose domain is the person's email domain (free-mail domains never match).
    """

    name: str
    kind: RoutingRuleKind = "match"
    pool: str | None = None
    match: dict[str, list[str] | Band] = Field(default_factory=dict)
    when: str | None = None
    owner_field: str | None = Field(
        default=None,
        description="account_owner: the person field holding the associated company's owner id",
    )
    match_domain: bool = True
    free_mail_list: str = Field(
        default="free_mail_domains",
        description="account_owner: criteria.yaml list of email domains never matched to a company",
    )


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class BusinessCalendar(StrictModel):
    """When Sales works: due dates and SLAs count only these hours (wall clock in `timezone`)."""

    timezone: str = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: list(WORKWEEK), min_length=1)
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
    holidays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> BusinessCalendar:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class HandoffTask(StrictModel):
    """The follow-up task created for the new owner at a hand-off (see README "Hand-off")."""

    enabled: bool = True
    subject: str = Field(default="Follow up: {name}", min_length=1, max_length=255)
    due_business_hours: int = Field(default=8, ge=0, le=2000)
    priority: Literal["low", "normal", "high"] = "high"
    type: Literal["call", "email", "todo"] = "call"
    crm: Literal["auto", "hubspot", "salesforce", "both"] = "auto"
    """Where a person in both CRMs gets the task: auto = Salesforce (where Sales works), else the one CRM."""


class HandoffTime(StrictModel):
    """Record when the hand-off happened (state database always; a CRM property if named)."""

    enabled: bool = True
    hubspot_property: str | None = None
    salesforce_field: str | None = None


class HandoffSettings(StrictModel):
    """What happens at the hand-off besides the owner write: task, hand-off time, SLA."""

    task: HandoffTask = Field(default_factory=lambda: HandoffTask(enabled=False))
    record_time: HandoffTime = Field(default_factory=HandoffTime)
    sla_business_hours: int | None = Field(default=None, ge=1, le=2000)
    """Business hours Sales has to touch a new hand-off; then `sla_lapsed` holds for recycle rules."""
    business_hours: BusinessCalendar = Field(default_factory=BusinessCalendar)
    queue_counts_as_unowned: bool = True
    """A Salesforce Queue (00G...) as owner is "nobody yet": routing picks a rep."""


class Routing(StrictModel):
    handoff_stages: list[str] = Field(min_length=1)
    keep_existing_owner: bool = True
    timezone: str = Field(default="UTC", description="where a day starts, for daily caps")
    reps: dict[str, Rep]
    pools: dict[str, Pool]
    rules: list[RoutingRule] = Field(default_factory=list)
    fallback: str = Field(description="rep key used when no rule matches or a pool has no active member")
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)


# --------------------------------------------------------------------------- hubspot.yaml


FieldType = Literal["string", "number", "bool", "datetime"]
"""How a CRM's text value is read into a person field (and the type conditions see)."""


class FieldSpec(StrictModel):
    property: str
    type: FieldType = "string"


class ValueMap(StrictModel):
    """A CRM property holding canonical values under CRM-specific names (canonical -> CRM value)."""

    property: str
    values: dict[str, str]


class HubSpotFieldSpec(FieldSpec):
    """A person field read from the contact, or from the contact's primary company.

    Company values are read once per company per run (associations v4, then batch reads), so a
    thousand contacts of one company cost one company read.
    """

    object: Literal["contact", "company"] = "contact"


class StageMap(ValueMap):
    """The stage property and its values. HubSpot only moves `lifecyclestage` forward:
    `allow_backwards: true` lets the connector move it back (e.g. a recycle to an earlier stage)
    by clearing it in one request and setting it in a second, then reading it back; otherwise a
    backward move is refused and reported."""

    allow_backwards: bool = False


class LeadStatusMap(ValueMap):
    """The lead status property. `protected` lists CRM values Sales owns (e.g. "Closed - Converted"):
    a record showing one (any case) is left alone entirely: no stage, status, owner or reason write.
    """

    protected: list[str] = Field(default_factory=list)


class OwnerSpec(StrictModel):
    property: str = "hubspot_owner_id"


class PropertyRef(StrictModel):
    """A CRM property the connector writes a value of its own into (e.g. the reason for a stage)."""

    property: str


class EventTypeSource(StrictModel):
    """An Events API event type read as a canonical activity type."""

    type: str
    url_property: str | None = None
    name_property: str | None = None


class EventsSource(StrictModel):
    enabled: bool = False
    types: dict[str, EventTypeSource] = Field(default_factory=dict)


class EngagementSource(StrictModel):
    """Engagement objects (emails, meetings...) associated with the contact, read as one activity each.

    `where` keeps only engagements whose properties equal the given values (e.g. incoming emails).
    """

    object: Literal["emails", "calls", "meetings", "notes", "tasks", "communications"]
    type: str
    where: dict[str, str] = Field(default_factory=dict)
    timestamp_property: str = "hs_timestamp"


class DatePropertySource(StrictModel):
    """A contact date property (e.g. last social engagement) read as one activity at that time."""

    property: str
    type: str


class HistorySource(StrictModel):
    """A contact property's history (`propertiesWithHistory`) read as dated activities.

    The source for portals without the Events API (below Enterprise): every change of the property
    becomes one activity at the time of the change. `counter: true` reads a counter such as
    `hs_analytics_num_page_views` (an increase by n is n activities); `value_as` keeps the changed
    value as the activity's `name` (e.g. `recent_conversion_event_name`, the form submitted) or
    `url` (e.g. `hs_analytics_last_url`), which signals' name/url patterns then read.
    """

    property: str
    type: str
    counter: bool = False
    value_as: Literal["name", "url"] | None = None

    @model_validator(mode="after")
    def _counter_has_no_value(self) -> HistorySource:
        if self.counter and self.value_as is not None:
            raise ValueError("a counter's history holds numbers: remove value_as or counter")
        return self


class HubSpotActivities(StrictModel):
    events: EventsSource = Field(default_factory=EventsSource)
    engagements: list[EngagementSource] = Field(default_factory=list)
    date_properties: list[DatePropertySource] = Field(default_factory=list)
    history: list[HistorySource] = Field(default_factory=list)


class SalesforceLinks(StrictModel):
    """Contact properties where HubSpot's Salesforce integration stores the linked record's id."""

    lead: str | None = "salesforceleadid"
    contact: str | None = "salesforcecontactid"


class HubSpotMapping(StrictModel):
    tier: Literal["free", "starter", "professional", "enterprise"] = "professional"
    object: Literal["contacts"] = "contacts"
    fields: dict[str, HubSpotFieldSpec]
    stage: StageMap
    lead_status: LeadStatusMap | None = None
    owner: OwnerSpec | None = None
    stage_reason: PropertyRef | None = Field(
        default=None, description="text property that receives the reason, with every stage change"
    )
    stage_date: PropertyRef | None = Field(
        default=None, description="datetime property that receives the time of every stage change"
    )
    writes: list[str] = Field(min_length=1, description="the only properties the connector may write")
    activities: HubSpotActivities = Field(default_factory=HubSpotActivities)
    salesforce_links: SalesforceLinks | None = Field(
        default=None,
        description="properties linking a contact to its Salesforce lead/contact (one person in both)",
    )


# --------------------------------------------------------------------------- salesforce.yaml


class SfFieldSpec(StrictModel):
    """A person field read from one Salesforce field (API name, e.g. `NumberOfEmployees`)."""

    field: str
    type: FieldType = "string"


class SfValueMap(StrictModel):
    """A picklist field holding canonical values under org-specific names (canonical -> picklist value)."""

    field: str
    values: dict[str, str]


class SfStageMap(SfValueMap):
    """The stage field (Lead Status, or a custom stage field on Contact). Salesforce itself lets
    any value follow any other; `allow_backwards: true` lets the connector write a lower stage when
    the criteria move a person back (`allow_backward_moves` in criteria.yaml). Off: never lower."""

    allow_backwards: bool = False


class SfOwnerSpec(StrictModel):
    field: str = "OwnerId"


class SfObjectMapping(StrictModel):
    """How one Salesforce object (Lead or Contact) maps to a person, and what may be written to it.

    `writes` lists the only fields the connector may write on this object; leave it empty to read
    the object but never write it (e.g. Contacts owned entirely by Sales). `mql_date`/`mql_reason`
    name optional custom fields stamped when the connector moves a record to MQL.
    """

    fields: dict[str, SfFieldSpec]
    stage: SfStageMap
    lead_status: SfValueMap | None = None
    owner: SfOwnerSpec | None = None
    mql_date: str | None = None
    mql_reason: str | None = None
    writes: list[str] = Field(default_factory=list, description="the only fields the connector may write")


class SfTaskSource(StrictModel):
    """Tasks whose fields equal every `where` value (e.g. TaskSubtype: Call) become one activity each."""

    type: str
    where: dict[str, str] = Field(default_factory=dict)


class SfCampaignSource(StrictModel):
    """Campaign members who responded, in campaigns of these types (empty: any), become one activity."""

    type: str
    campaign_types: list[str] = Field(default_factory=list)


class SalesforceActivities(StrictModel):
    tasks: list[SfTaskSource] = Field(default_factory=list)
    events: list[SfTaskSource] = Field(default_factory=list)
    campaign_members: list[SfCampaignSource] = Field(default_factory=list)


class SalesforceMapping(StrictModel):
    api_version: str = Field(default="59.0", pattern=r"^\d{2}\.0$")
    objects: dict[Literal["Lead", "Contact"], SfObjectMapping] = Field(min_length=1)
    activities: SalesforceActivities = Field(default_factory=SalesforceActivities)

    @property
    def fields(self) -> dict[str, SfFieldSpec]:
        """Person fields across objects (Lead first): the catalogue conditions read as person.<name>."""
        merged: dict[str, SfFieldSpec] = {}
        for name in ("Lead", "Contact"):
            obj = self.objects.get(name)
            if obj is not None:
                for key, spec in obj.fields.items():
                    merged.setdefault(key, spec)
        return merged


# --------------------------------------------------------------------------- criteria.examples.yaml


EXAMPLES_AS_OF = "2026-01-15T12:00:00Z"
"""Default evaluation time of criteria examples: noon UTC, so whole `days_ago` never straddle a date."""


class ExampleActivity(StrictModel):
    """One activity of an example person, `days_ago` days before the examples' `as_of` time."""

    type: str
    days_ago: float = Field(ge=0, le=3650)
    url: str | None = None
    name: str | None = None
    repeat: int = Field(default=1, ge=1, le=1000, description="how many (each one minute earlier)")


class ExampleExpectation(StrictModel):
    """What the criteria must decide. Omitted keys are not checked; `none` means "no value"."""

    stage: str
    rule: str | None = Field(default=None, description="the stage rule that fires (`none`: no rule)")
    lead_status: str | None = None
    fit_grade: str | None = None
    disqualified_by: str | None = None
    recycled_by: str | None = None
    moved_back_by: str | None = Field(
        default=None, description="the recycle rule or disqualifier that moved the stage back"
    )


class CriteriaExample(StrictModel):
    """An example person with a timeline and the decision the criteria must reach for them."""

    name: str
    description: str = ""
    person: dict[str, str | bool | int | float | None] = Field(default_factory=dict)
    activities: list[ExampleActivity] = Field(default_factory=list)
    current_stage: str | None = None
    current_lead_status: str | None = None
    days_in_stage: int | None = Field(default=None, ge=0, le=36500)
    expect: ExampleExpectation


class CriteriaExamples(StrictModel):
    """criteria.examples.yaml: the criteria's unit tests, run by `connector validate`."""

    as_of: datetime = Field(default_factory=lambda: datetime.fromisoformat(EXAMPLES_AS_OF))
    profiles: dict[str, dict[str, str | bool | int | float | None]] = Field(
        default_factory=dict, description="named person profiles to reuse with YAML anchors (&name / *name)"
    )
    examples: list[CriteriaExample] = Field(min_length=1)
