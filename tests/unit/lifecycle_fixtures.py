"""Shared builders for the lifecycle tests: the shipped mappings, a fixed clock, people, timelines.

The shipped YAML is loaded with `yaml.safe_load` + the pydantic models directly, so these tests
exercise the criteria a new user actually gets, independent of the loader.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import count
from pathlib import Path
from typing import Any

import yaml

from connector.lifecycle import CriteriaEvaluator, FieldMap
from connector.mapping.schema import Criteria, HubSpotMapping, Routing
from connector.model import Activity, Decision, FieldValue

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_ids = count(1)


def _load(name: str) -> Any:
    return yaml.safe_load((MAPPINGS / name).read_text(encoding="utf-8"))


@cache
def criteria() -> Criteria:
    return Criteria.model_validate(_load("criteria.yaml"))


@cache
def routing() -> Routing:
    return Routing.model_validate(_load("routing.yaml"))


@cache
def hubspot() -> HubSpotMapping:
    return HubSpotMapping.model_validate(_load("hubspot.yaml"))


def person_fields() -> dict[str, str]:
    return {name: spec.type for name, spec in hubspot().fields.items()}


@cache
def evaluator() -> CriteriaEvaluator:
    return CriteriaEvaluator(criteria(), "test-v1", person_fields())


def field_map() -> FieldMap:
    mapping = hubspot()
    return FieldMap(
        stage=mapping.stage,
        lead_status=mapping.lead_status,
        owner_property=mapping.owner.property if mapping.owner else None,
        writes=frozenset(mapping.writes),
    )


def act(
    type_: str,
    days_ago: float = 1,
    *,
    url: str | None = None,
    name: str | None = None,
    at: datetime | None = None,
    source_id: str | None = None,
) -> Activity:
    """One activity `days_ago` before NOW (or exactly `at`), with a fresh source id."""
    return Activity(
        person_id="p1",
        type=type_,
        occurred_at=at if at is not None else NOW - timedelta(days=days_ago),
        source="hubspot",
        source_id=source_id or f"a{next(_ids)}",
        url=url,
        name=name,
    )


# Fit profiles under the shipped criteria (points: senior 30, manager 15, size 25, industry 20,
# served country 15, free mail -30; grades A>=70, B>=45, C>=20, else D).
FIT_A: dict[str, FieldValue] = {  # 30 + 25 + 20 + 15 = 90
    "email": "ana@acme.com",
    "title": "VP Marketing",
    "employees": 200,
    "industry": "Software",
    "country": "Germany",
    "unsubscribed": False,
}
FIT_B_EXACT: dict[str, FieldValue] = {  # 30 + 15 = 45: exactly B's minimum
    "email": "dan@acme.com",
    "title": "Director of IT",
    "employees": 10,
    "industry": "Retail",
    "country": "Canada",
    "unsubscribed": False,
}
FIT_C_40: dict[str, FieldValue] = {  # 15 + 25 = 40: C, just below B and below fit_score 45
    "email": "carl@acme.com",
    "title": "Marketing Manager",
    "employees": 300,
    "industry": "Retail",
    "country": "Brazil",
    "unsubscribed": False,
}
FIT_D: dict[str, FieldValue] = {  # -30: free mail, nothing else
    "email": "dora@gmail.com",
    "title": "Intern",
    "employees": 5,
    "industry": "Retail",
    "country": "Brazil",
    "unsubscribed": False,
}


def person(base: dict[str, FieldValue], **changes: FieldValue) -> dict[str, FieldValue]:
    return {**base, **changes}


def decide(
    profile: dict[str, FieldValue],
    timeline: list[Activity],
    *,
    current_stage: str | None = None,
) -> Decision:
    return evaluator().evaluate(
        person_id="p1", person=profile, timeline=timeline, current_stage=current_stage, now=NOW
    )


def with_owner(decision: Decision, owner_reason: str | None) -> Decision:
    return replace(decision, owner_reason=owner_reason)


# Timelines that fire each shipped rule (with a fitting profile) --------------------------------


def pricing_views(n: int) -> list[Activity]:
    return [act("page_view", i + 0.5, url="https://acme.example/pricing") for i in range(n)]


def hand_raise(days_ago: float = 1) -> Activity:
    return act("form_submission", days_ago, name="Request a Demo")


def white_paper(days_ago: float = 1) -> Activity:
    return act("form_submission", days_ago, name="Download: Whitepaper on RevOps")


def blog_views(n: int, days_ago: float = 1) -> list[Activity]:
    return [act("page_view", days_ago + i * 0.01, url="https://acme.example/blog") for i in range(n)]
