"""`connector validate --online` for HubSpot: the mapping files checked against the live portal.

Offline validation proves the files are consistent with each other; this proves they fit the
portal they will run against, before a sync finds out the hard way:

* every mapped property exists on its object, with a type the mapping can read, and every
  property under `writes` can be written (not read-only);
* every mapped enumeration value (stages, lead statuses, engagement `where` filters) is one of
  the property's options;
* every owner named in routing.yaml exists and is not archived (deactivated);
* the Events API answers, when hubspot.yaml turns it on, and knows each mapped event type;
* no criteria signal depends on activities no source of this portal produces (e.g. page views
  with URL patterns on a portal without the Events API and without `hs_analytics_last_url`
  history) — such a signal would silently stay 0 forever.

Each problem is a `MappingIssue` at the file:line of the value to fix. Reads are few: one
properties listing per object type, two owner pages, one events probe, one event-type listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.crm.hubspot import HubSpotAdapter
from connector.errors import ConfigError, MappingIssue
from connector.mapping.conditions import did_you_mean, known_values_hint
from connector.mapping.loader import CRITERIA_FILE, ROUTING_FILE, Mappings
from connector.mapping.schema import HubSpotMapping
from connector.mapping.source import Document, Loc, read_document

HUBSPOT_FILE = "hubspot.yaml"

READABLE_AS: dict[str, frozenset[str]] = {
    "string": frozenset({"string", "enumeration", "phone_number"}),
    "number": frozenset({"number"}),
    "bool": frozenset({"bool"}),
    "datetime": frozenset({"datetime", "date"}),
}
"""HubSpot property types each mapping field type can be read from."""

DATED = frozenset({"datetime", "date"})


@dataclass
class _Docs:
    """The three files, read again for their locations (the loader keeps only the models)."""

    directory: Path
    docs: dict[str, Document] = field(default_factory=dict)

    def doc(self, name: str) -> Document:
        if name not in self.docs:
            path = self.directory / name
            self.docs[name] = read_document(path, str(path))
        return self.docs[name]

    def add(self, name: str, loc: Loc, message: str, hint: str = "", *, key: bool = False) -> None:
        doc = self.doc(name)
        doc.issues.append(doc.issue(loc, message, hint, key=key))

    def issues(self) -> list[MappingIssue]:
        found = [issue for doc in self.docs.values() for issue in doc.issues]
        return sorted(found, key=lambda i: (i.file, i.line, i.column))


def check_online(mappings: Mappings, adapter: HubSpotAdapter, *, only_crm: bool = True) -> list[MappingIssue]:
    """Every way the mapping files do not fit this portal, each at the line to change.

    `only_crm`: HubSpot is the only CRM synced, so a signal no HubSpot source feeds has no source
    at all (with Salesforce synced too, its activities may feed it).
    """
    hubspot = mappings.hubspot
    if hubspot is None:
        return []
    docs = _Docs(mappings.directory)
    contacts = adapter.list_properties("contacts")
    _check_contact_properties(docs, hubspot, contacts)
    company_fields = {n: s for n, s in hubspot.fields.items() if s.object == "company"}
    if company_fields:
        companies = adapter.list_properties("companies")
        for name, spec in company_fields.items():
            _check_readable(
                docs, ("fields", name, "property"), spec.property, spec.type, companies, "company"
            )
    _check_engagements(docs, hubspot, adapter)
    _check_owners(docs, mappings, adapter)
    events_ok = _check_events(docs, hubspot, adapter)
    if only_crm:
        _check_signal_sources(docs, mappings, hubspot, events_ok)
    return docs.issues()


# --------------------------------------------------------------------------- properties


def _check_contact_properties(docs: _Docs, m: HubSpotMapping, props: Mapping[str, dict[str, Any]]) -> None:
    for name, spec in m.fields.items():
        if spec.object == "contact":
            _check_readable(docs, ("fields", name, "property"), spec.property, spec.type, props, "contact")
    _check_options(docs, ("stage",), m.stage.property, m.stage.values, props)
    if m.lead_status is not None:
        _check_options(docs, ("lead_status",), m.lead_status.property, m.lead_status.values, props)
    if m.owner is not None:
        _exists(docs, ("owner", "property"), m.owner.property, props, "contact")
    if m.stage_reason is not None:
        _check_readable(
            docs, ("stage_reason", "property"), m.stage_reason.property, "string", props, "contact"
        )
    if m.stage_date is not None:
        _check_readable(docs, ("stage_date", "property"), m.stage_date.property, "datetime", props, "contact")
    for index, prop in enumerate(m.writes):
        definition = props.get(prop)
        if definition is not None and _read_only(definition):
            docs.add(
                HUBSPOT_FILE,
                ("writes", index),
                f"HubSpot marks the contact property '{prop}' read-only: the connector cannot write it",
                "remove it from writes, or map a writable custom property instead",
            )
    for index, source in enumerate(m.activities.date_properties):
        _check_readable(
            docs,
            ("activities", "date_properties", index, "property"),
            source.property,
            "datetime",
            props,
            "contact",
        )
    for index, history in enumerate(m.activities.history):
        kind = "number" if history.counter else "string"
        loc: Loc = ("activities", "history", index, "property")
        _check_readable(docs, loc, history.property, kind, props, "contact")


def _exists(
    docs: _Docs, loc: Loc, prop: str, props: Mapping[str, dict[str, Any]], object_name: str
) -> dict[str, Any] | None:
    definition = props.get(prop)
    if definition is None or definition.get("archived"):
        docs.add(
            HUBSPOT_FILE,
            loc,
            f"the portal has no {object_name} property '{prop}'",
            _property_hint(prop, props),
        )
        return None
    return definition


def _check_readable(
    docs: _Docs, loc: Loc, prop: str, kind: str, props: Mapping[str, dict[str, Any]], object_name: str
) -> None:
    definition = _exists(docs, loc, prop, props, object_name)
    if definition is None:
        return
    actual = str(definition.get("type"))
    if actual not in READABLE_AS[kind]:
        docs.add(
            HUBSPOT_FILE,
            loc,
            f"the {object_name} property '{prop}' is of type {actual}, which cannot be read as {kind}",
            f"map a {' or '.join(sorted(READABLE_AS[kind]))} property, or change the field's type",
        )


def _check_options(
    docs: _Docs, loc: Loc, prop: str, values: Mapping[str, str], props: Mapping[str, dict[str, Any]]
) -> None:
    definition = _exists(docs, (*loc, "property"), prop, props, "contact")
    if definition is None:
        return
    if definition.get("type") != "enumeration":
        docs.add(
            HUBSPOT_FILE,
            (*loc, "property"),
            f"'{prop}' is of type {definition.get('type')}, not an enumeration with options",
            "map the property that holds the stage or status options",
        )
        return
    allowed = [str(o.get("value")) for o in definition.get("options") or []]
    for canonical, value in values.items():
        if value not in allowed:
            docs.add(
                HUBSPOT_FILE,
                (*loc, "values", canonical),
                f"'{value}' is not an option of {prop} in this portal",
                known_values_hint(value, allowed, "its internal values (not labels)"),
            )


def _property_hint(prop: str, props: Mapping[str, Any]) -> str:
    guess = did_you_mean(prop, sorted(props))
    where = "use the property's internal name (Settings > Properties > the property > </> )"
    return f"{guess} {where}" if guess else where


def _read_only(definition: Mapping[str, Any]) -> bool:
    meta = definition.get("modification_metadata") or {}
    return bool(meta.get("read_only_value") or definition.get("calculated"))


def _check_engagements(docs: _Docs, m: HubSpotMapping, adapter: HubSpotAdapter) -> None:
    catalogues: dict[str, dict[str, dict[str, Any]]] = {}
    for index, source in enumerate(m.activities.engagements):
        props = catalogues.get(source.object)
        if props is None:
            props = catalogues[source.object] = adapter.list_properties(source.object)
        loc: Loc = ("activities", "engagements", index)
        name = source.object.rstrip("s")
        definition = _exists(docs, (*loc, "timestamp_property"), source.timestamp_property, props, name)
        if definition is not None and definition.get("type") not in DATED:
            docs.add(
                HUBSPOT_FILE,
                (*loc, "timestamp_property"),
                f"'{source.timestamp_property}' is not a date on {source.object}",
                "use hs_timestamp, the engagement's activity date",
            )
        for prop, value in source.where.items():
            found = _exists(docs, (*loc, "where", prop), prop, props, name)
            if found is not None and found.get("type") == "enumeration":
                allowed = [str(o.get("value")) for o in found.get("options") or []]
                if allowed and value not in allowed:
                    docs.add(
                        HUBSPOT_FILE,
                        (*loc, "where", prop),
                        f"'{value}' is not an option of {source.object}.{prop}",
                        known_values_hint(value, allowed, "options"),
                    )


# --------------------------------------------------------------------------- owners


def _check_owners(docs: _Docs, mappings: Mappings, adapter: HubSpotAdapter) -> None:
    owners = {o.id: o for o in adapter.owners()}
    for key, rep in mappings.routing.reps.items():
        if rep.hubspot_owner_id is None:
            continue
        loc: Loc = ("reps", key, "hubspot_owner_id")
        owner = owners.get(rep.hubspot_owner_id)
        if owner is None:
            docs.add(
                ROUTING_FILE,
                loc,
                f"HubSpot has no owner with id {rep.hubspot_owner_id} (rep '{key}')",
                "use the owner `id` from Settings > Users or GET /crm/v3/owners (not the user id)",
            )
        elif not owner.active:
            docs.add(
                ROUTING_FILE,
                loc,
                f"the HubSpot owner {rep.hubspot_owner_id} ({owner.name}) is archived (deactivated)",
                "remove the rep from its pools, or reactivate the user in HubSpot",
            )


# --------------------------------------------------------------------------- events and sources


def _check_events(docs: _Docs, m: HubSpotMapping, adapter: HubSpotAdapter) -> bool:
    """Whether the Events API is on and answers; each unknown event type is reported."""
    events = m.activities.events
    if not events.enabled:
        return False
    try:
        known = adapter.event_types()
    except ConfigError as exc:
        docs.add(HUBSPOT_FILE, ("activities", "events", "enabled"), exc.message)
        return False
    for name in events.types:
        if name not in known:
            docs.add(
                HUBSPOT_FILE,
                ("activities", "events", "types", name),
                f"the portal has no event type '{name}'",
                known_values_hint(name, sorted(known), "event types"),
                key=True,
            )
    return True


@dataclass(frozen=True)
class _Produced:
    """Activity types this portal's sources produce, and which of them carry a URL or a name."""

    types: frozenset[str]
    with_url: frozenset[str]
    with_name: frozenset[str]


def produced_activities(m: HubSpotMapping, *, events_on: bool) -> _Produced:
    types: set[str] = set()
    with_url: set[str] = set()
    with_name: set[str] = set()
    if events_on:
        for event in m.activities.events.types.values():
            types.add(event.type)
            if event.url_property:
                with_url.add(event.type)
            if event.name_property:
                with_name.add(event.type)
    types.update(e.type for e in m.activities.engagements)
    types.update(d.type for d in m.activities.date_properties)
    for history in m.activities.history:
        types.add(history.type)
        if history.value_as == "url":
            with_url.add(history.type)
        elif history.value_as == "name":
            with_name.add(history.type)
    return _Produced(frozenset(types), frozenset(with_url), frozenset(with_name))


def _check_signal_sources(docs: _Docs, mappings: Mappings, m: HubSpotMapping, events_on: bool) -> None:
    criteria = mappings.criteria
    produced = produced_activities(m, events_on=events_on)
    why = "" if events_on or not m.activities.events.enabled else " (the Events API is not available)"
    for name, signal in criteria.signals.items():
        candidates = set(signal.types or criteria.activity_types)
        if signal.channels:
            candidates &= {
                t for t, spec in criteria.activity_types.items() if spec.channel in signal.channels
            }
        loc: Loc = ("signals", name)
        if not candidates & produced.types:
            docs.add(
                CRITERIA_FILE,
                (*loc, "types") if signal.types else loc,
                f"no source in hubspot.yaml produces {_listing(candidates)} on this portal{why}: "
                f"signal '{name}' would always be 0",
                _source_hint(candidates),
                key=not signal.types,
            )
            continue
        for key, carriers, what in (
            ("url_patterns", produced.with_url, "a page URL"),
            ("name_patterns", produced.with_name, "a form or event name"),
        ):
            if getattr(signal, key) and not candidates & carriers:
                docs.add(
                    CRITERIA_FILE,
                    (*loc, key),
                    f"no source of {_listing(candidates)} carries {what} on this portal{why}: "
                    f"the {key} of '{name}' can never match",
                    "map an event type with url_property/name_property, or property history with "
                    "value_as: url (hs_analytics_last_url) or name (recent_conversion_event_name)",
                )


def _listing(types: Iterable[str]) -> str:
    return ", ".join(sorted(types)) or "no activity type"


def _source_hint(types: Iterable[str]) -> str:
    listed = ", ".join(sorted(types))
    return (
        f"add a source of {listed} under activities in hubspot.yaml (events on Enterprise; otherwise "
        "engagements, date_properties or history), or remove the signal"
    )
