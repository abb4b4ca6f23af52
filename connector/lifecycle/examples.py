"""Criteria examples: example people with dated activities and the decision the criteria must reach.

They are the criteria's unit tests. Marketing and Sales write down the people they have in mind
("a VP who asked for a demo yesterday is an SQL", "a student never gets past lead") next to the
rules, and `connector validate` fails, with a readable difference, when an edit to the rules
changes one of those answers. Activity times are relative (`days_ago` before `as_of`), so an
example means the same thing whenever it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.lifecycle.gaps import Gap
from connector.lifecycle.rules import CriteriaEvaluator, Handoff
from connector.mapping.schema import CriteriaExample
from connector.model import Activity, Decision, FieldValue

NONE = "none"
"""What an example writes to expect "no value" (no rule fired, no lead status...)."""


@dataclass(frozen=True)
class Mismatch:
    """One expected value the criteria did not produce."""

    field: str
    expected: str
    actual: str


@dataclass(frozen=True)
class ExampleResult:
    example: CriteriaExample
    decision: Decision
    mismatches: tuple[Mismatch, ...]
    gaps: tuple[Gap, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def difference(self) -> str:
        """`stage: expected mql, got lead; rule: expected mql_cadence, got lead_converted`."""
        return "; ".join(f"{m.field}: expected {m.expected}, got {m.actual}" for m in self.mismatches)


def example_timeline(example: CriteriaExample, as_of: datetime, person_id: str = "example") -> list[Activity]:
    """The example's activities as timeline entries; repeats one minute apart, going back in time."""
    timeline: list[Activity] = []
    for index, item in enumerate(example.activities):
        for copy in range(item.repeat):
            moment = as_of - timedelta(days=item.days_ago, minutes=copy)
            timeline.append(
                Activity(
                    person_id=person_id,
                    type=item.type,
                    occurred_at=moment,
                    source="example",
                    source_id=f"{index}.{copy}",
                    url=item.url,
                    name=item.name,
                )
            )
    return timeline


def run_example(evaluator: CriteriaEvaluator, example: CriteriaExample, as_of: datetime) -> ExampleResult:
    """Evaluate one example and compare the decision with what it expects."""
    handoff = Handoff(
        lead_status=example.current_lead_status,
        stage_entered_at=(
            as_of - timedelta(days=example.days_in_stage) if example.days_in_stage is not None else None
        ),
    )
    person: Mapping[str, FieldValue] = dict(example.person)
    decision = evaluator.evaluate(
        person_id="example",
        person=person,
        timeline=example_timeline(example, as_of),
        current_stage=example.current_stage,
        now=as_of,
        handoff=handoff,
    )
    expect = example.expect
    actual: dict[str, str | None] = {
        "stage": decision.stage,
        "rule": decision.rule,
        "lead_status": decision.lead_status,
        "fit_grade": decision.fit_grade,
        "disqualified_by": decision.disqualified_by,
        "recycled_by": decision.recycled_by,
        "moved_back_by": decision.moved_back_by,
    }
    mismatches = []
    for name, value in actual.items():
        wanted = getattr(expect, name)
        if wanted is None:
            continue
        wanted_value = None if wanted == NONE else wanted
        if wanted_value != value:
            mismatches.append(Mismatch(name, wanted, value if value is not None else NONE))
    gaps = tuple(evaluator.gaps(decision, person)) if mismatches else ()
    return ExampleResult(example, decision, tuple(mismatches), gaps)
