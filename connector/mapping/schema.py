"""Pydantic models of mappings/*.yaml: criteria, routing and one file per CRM.

Every model forbids unknown keys, so a typo in a mapping file is an error with a location rather
than a setting silently ignored. Cross-file checks (a stage named in hubspot.yaml exists in
criteria.yaml, a rule's names exist...) live in `loader.py`, which knows where each value came from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- criteria.yaml


class ActivityTypeSpec(StrictModel):
    """A canonical activity type and the channel it counts towards ("engagement on 3+ platforms")."""

    channel: str
    description: str = ""


class SignalSpec(StrictModel):
    """A number computed from a person's timeline over a rolling window ending at evaluation time.

    kind:
      count              activities matching the filters
      distinct_channels  how many different channels the matching activities span
      distinct_days      on how many different calendar days (UTC) matching activities happened
    Filters combine with AND; each list combines with OR; an empty list means "any".
    """

    kind: Literal["count", "distinct_channels", "distinct_days"]
    window_days: int = Field(gt=0, le=3650)
    types: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    url_patterns: list[str] = Field(default_factory=list, description="regexes searched in the page URL")
    name_patterns: list[str] = Field(
        default_factory=list, description="regexes searched in the form/event name"
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
    """A reason a person may never pass `cap`; optionally sets a lead status (e.g. unqualified)."""

    name: str
    when: str
    cap: str
    lead_status: str | None = None
    description: str = ""


class StageRule(StrictModel):
    """`stage` is reached when `when` holds. Rules are tried top to bottom; the first match wins."""

    name: str
    stage: str
    when: str
    lead_status: str | None = None
    description: str = ""


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


# --------------------------------------------------------------------------- routing.yaml


class Rep(StrictModel):
    """A person who can own records, named once with their id in each CRM."""

    name: str
    hubspot_owner_id: str | None = None
    salesforce_user_id: str | None = None


class Pool(StrictModel):
    members: list[str] = Field(min_length=1)
    strategy: Literal["round_robin"] = "round_robin"


class RoutingRule(StrictModel):
    """Sends matching people to `pool`. `match` maps a person field to accepted values (any case)."""

    name: str
    pool: str
    match: dict[str, list[str]] = Field(default_factory=dict)
    when: str | None = None


class Routing(StrictModel):
    handoff_stages: list[str] = Field(min_length=1)
    keep_existing_owner: bool = True
    reps: dict[str, Rep]
    pools: dict[str, Pool]
    rules: list[RoutingRule] = Field(default_factory=list)
    fallback: str = Field(description="rep key used when no rule matches or a pool has no active member")


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
    """The stage property, its values, and how the connector may move and annotate it.

    HubSpot only moves `lifecyclestage` forward. `allow_backwards: true` lets the connector move it
    back (e.g. a recycle rule) by clearing it in one request and setting it in a second, then
    reading it back; otherwise a backward move is refused and reported. `reason_property` and
    `date_property` (both also listed under `writes`) receive the decision's reason and the date
    of the change whenever the stage is written.
    """

    allow_backwards: bool = False
    reason_property: str | None = None
    date_property: str | None = None


class OwnerSpec(StrictModel):
    property: str = "hubspot_owner_id"


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


class HubSpotMapping(StrictModel):
    tier: Literal["free", "starter", "professional", "enterprise"] = "professional"
    object: Literal["contacts"] = "contacts"
    fields: dict[str, HubSpotFieldSpec]
    stage: StageMap
    lead_status: ValueMap | None = None
    owner: OwnerSpec | None = None
    writes: list[str] = Field(min_length=1, description="the only properties the connector may write")
    activities: HubSpotActivities = Field(default_factory=HubSpotActivities)
