"""`validate --online` for salesforce.yaml: every mapped field and picklist value, checked against
the org's `describe`, reported at the mapping file's line.

Offline validation proves the files agree with each other; only the org can say that `Status`
really has a "Marketing Qualified" value or that `MQL_Date__c` exists and is writable. One
`describe` call per object (Lead, Contact, Task, Event, Campaign as mapped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from connector.errors import MappingIssue
from connector.mapping.conditions import known_values_hint
from connector.mapping.schema import SalesforceMapping
from connector.mapping.source import Document, Loc


class Describes(Protocol):
    def describe(self, sobject: str) -> dict[str, Any]: ...


class _Object:
    """One object's describe, looked up the way Salesforce resolves API names (ignoring case)."""

    def __init__(self, name: str, describe: Mapping[str, Any]) -> None:
        self.name = name
        self.fields = {str(f["name"]): f for f in describe.get("fields") or []}
        self._by_lower = {n.lower(): n for n in self.fields}

    def field(self, name: str) -> dict[str, Any] | None:
        canonical = self._by_lower.get(name.lower())
        return self.fields[canonical] if canonical else None

    def picklist(self, name: str) -> list[str]:
        info = self.field(name) or {}
        return [str(v["value"]) for v in info.get("picklistValues") or [] if v.get("active", True)]


def check_online(adapter: Describes, mapping: SalesforceMapping, doc: Document) -> list[MappingIssue]:
    """Every problem the org's describe reveals in salesforce.yaml, in file order."""
    issues: list[MappingIssue] = []
    cache: dict[str, _Object] = {}

    def obj(name: str) -> _Object:
        if name not in cache:
            cache[name] = _Object(name, adapter.describe(name))
        return cache[name]

    def need_field(loc: Loc, sobject: _Object, name: str, *, writable: bool = False) -> dict[str, Any] | None:
        info = sobject.field(name)
        if info is None:
            hint = known_values_hint(name, sorted(sobject.fields), f"{sobject.name} fields")
            issues.append(doc.issue(loc, f"{sobject.name} has no field '{name}'", hint))
            return None
        if writable and not info.get("updateable", False):
            issues.append(
                doc.issue(loc, f"{sobject.name}.{info['name']} is read-only for the integration user", "")
            )
        return info

    def need_values(loc: Loc, sobject: _Object, name: str, values: Mapping[str, str]) -> None:
        allowed = sobject.picklist(name)
        for canonical, value in values.items():
            if value not in allowed:
                issues.append(
                    doc.issue(
                        (*loc, canonical),
                        f"'{value}' is not a value of the {sobject.name}.{name} picklist",
                        known_values_hint(value, allowed, "picklist values"),
                    )
                )

    for object_name, spec in mapping.objects.items():
        sobject = obj(object_name)
        base: Loc = ("objects", object_name)
        writes = set(spec.writes)
        for person_field, field_spec in spec.fields.items():
            need_field((*base, "fields", person_field, "field"), sobject, field_spec.field)
        stage = need_field(
            (*base, "stage", "field"), sobject, spec.stage.field, writable=spec.stage.field in writes
        )
        if stage is not None:
            need_values((*base, "stage", "values"), sobject, spec.stage.field, spec.stage.values)
        if spec.lead_status is not None:
            status_field = spec.lead_status.field
            status = need_field(
                (*base, "lead_status", "field"), sobject, status_field, writable=status_field in writes
            )
            if status is not None:
                need_values((*base, "lead_status", "values"), sobject, status_field, spec.lead_status.values)
        if spec.owner is not None:
            need_field(
                (*base, "owner", "field"), sobject, spec.owner.field, writable=spec.owner.field in writes
            )
        for key in ("mql_date", "mql_reason"):
            name = getattr(spec, key)
            if name:
                need_field((*base, key), sobject, name, writable=name in writes)

    acts = mapping.activities
    for key, sobject_name, sources in (("tasks", "Task", acts.tasks), ("events", "Event", acts.events)):
        if not sources:
            continue
        sobject = obj(sobject_name)
        for index, source in enumerate(sources):
            for field_name, value in source.where.items():
                loc: Loc = ("activities", key, index, "where", field_name)
                info = need_field(loc, sobject, field_name)
                if info is not None and info.get("type") == "picklist":
                    allowed = sobject.picklist(field_name)
                    if value not in allowed:
                        issues.append(
                            doc.issue(
                                loc,
                                f"'{value}' is not a value of the {sobject_name}.{field_name} picklist",
                                known_values_hint(value, allowed, "picklist values"),
                            )
                        )
    if acts.campaign_members:
        campaign = obj("Campaign")
        allowed = campaign.picklist("Type")
        for index, campaign_source in enumerate(acts.campaign_members):
            for position, kind in enumerate(campaign_source.campaign_types):
                if kind not in allowed:
                    issues.append(
                        doc.issue(
                            ("activities", "campaign_members", index, "campaign_types", position),
                            f"'{kind}' is not a value of the Campaign.Type picklist",
                            known_values_hint(kind, allowed, "campaign types"),
                        )
                    )
    return sorted(issues, key=lambda i: (i.line, i.column))
