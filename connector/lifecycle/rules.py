"""Stage rules and disqualifiers: one person's data in, one explained `Decision` out.

The order of operations is the contract written at the top of mappings/criteria.yaml:
signals -> fit -> first matching stage rule (else the default stage) -> first matching
disqualifier caps the stage -> forward-only against the stage the CRM already shows, and stages
Sales owns are never touched. Every step leaves a `RuleTrace` so `explain` can answer "why?".

Trace layout (what `explain` relies on): every fit rule; every stage rule, in order — those after
the first match are listed as not evaluated (matched=False, note "not evaluated: ..."); every
disqualifier the same way; then, if the current stage was kept, one `keep` entry saying why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from connector.lifecycle._conditions import Condition, Outcome, describe_values
from connector.lifecycle.fit import FitScorer
from connector.lifecycle.identity import email_domain
from connector.lifecycle.signals import SignalCalculator
from connector.mapping.expressions import ZERO_VALUES, expression_context
from connector.mapping.schema import Criteria, Disqualifier, StageRule
from connector.model import Activity, Decision, FieldValue, RuleTrace

_Rule = TypeVar("_Rule", StageRule, Disqualifier)


@dataclass(frozen=True)
class _Hit(Generic[_Rule]):
    """The first rule (stage rule or disqualifier) that held, with what it read."""

    rule: _Rule
    condition: Condition
    outcome: Outcome

    def because(self) -> str:
        """`rule name (description): values read` — the core of every reason sentence."""
        description = f" ({self.rule.description})" if self.rule.description else ""
        values = describe_values(self.outcome.values, self.condition.source)
        return f"{self.rule.name}{description}" + (f": {values}" if values else "")


class CriteriaEvaluator:
    """Evaluates the criteria for one person at a time; build once per run and reuse.

    `person_fields` maps each canonical person field to its declared type ("string", "number",
    "bool", "datetime") so a missing value becomes that type's zero and `person.title.matches(...)`
    on an empty title is simply false rather than an error.
    """

    def __init__(self, criteria: Criteria, criteria_version: str, person_fields: Mapping[str, str]) -> None:
        self._criteria = criteria
        self._version = criteria_version
        self._person_fields = dict(person_fields)
        self._rank = {stage: index for index, stage in enumerate(criteria.stages)}
        self._sales_owned = frozenset(criteria.sales_owned)
        self._signals = SignalCalculator(criteria.signals, criteria.activity_types)
        self._fit = FitScorer(criteria.fit, criteria.lists)
        self._rules = tuple((rule, Condition.compile(rule.when)) for rule in criteria.rules)
        self._disqualifiers = tuple((rule, Condition.compile(rule.when)) for rule in criteria.disqualifiers)
        self._check_stage_names()

    def _check_stage_names(self) -> None:
        """Fail at start-up, not mid-run, if a rule names a stage the criteria do not declare."""
        named = [self._criteria.default_stage, *self._criteria.sales_owned]
        named += [rule.stage for rule in self._criteria.rules]
        named += [rule.cap for rule in self._criteria.disqualifiers]
        unknown = sorted({stage for stage in named if stage not in self._rank})
        if unknown:
            raise ValueError(f"stages not declared in criteria.stages: {', '.join(unknown)}")

    def person_context(self, person: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
        """The `person` conditions see: declared fields (missing -> typed zero) plus `email_domain`."""
        values: dict[str, FieldValue] = {key: value for key, value in person.items() if value is not None}
        for name, kind in self._person_fields.items():
            if values.get(name) is None:
                values[name] = ZERO_VALUES.get(kind, "")
        if values.get("email_domain") is None:
            email = person.get("email")
            values["email_domain"] = email_domain(email if isinstance(email, str) else None)
        return values

    def evaluate(
        self,
        *,
        person_id: str,
        person: Mapping[str, FieldValue],
        timeline: Sequence[Activity],
        current_stage: str | None,
        now: datetime,
    ) -> Decision:
        """Decide stage and lead status for one person as of `now`, with the rules and values behind it."""
        person_values = self.person_context(person)
        signals: dict[str, int | float] = dict(self._signals.compute(timeline, now))
        fit = self._fit.score(person_values, signals)
        context = expression_context(
            signals=signals,
            fit_score=fit.score,
            fit_grade=fit.grade,
            person=person_values,
            lists=self._criteria.lists,
        )
        rule_hit, rule_trace = _first_match("stage", self._rules, context)
        disqualifier_hit, disqualifier_trace = _first_match("disqualifier", self._disqualifiers, context)

        computed = rule_hit.rule.stage if rule_hit else self._criteria.default_stage
        lead_status = rule_hit.rule.lead_status if rule_hit else None
        reason = self._rule_reason(computed, rule_hit)
        capped = computed
        if disqualifier_hit is not None:
            capped = min(computed, disqualifier_hit.rule.cap, key=self._rank.__getitem__)
            lead_status = disqualifier_hit.rule.lead_status
            reason = _disqualified_reason(capped, computed, reason, disqualifier_hit)

        stage, keep = self._forward_only(capped, current_stage)
        if keep is not None:
            reason = f"{stage} kept: {keep.note}; criteria say: {reason}"
            # A rule's lead status describes the lower stage that is not applied; a disqualifier's
            # (e.g. unqualified) still holds. Sales-owned records are left to Sales entirely.
            held_by_sales = keep.name == "sales_owned"
            lead_status = None if held_by_sales or disqualifier_hit is None else lead_status

        trace = (*fit.trace, *rule_trace, *disqualifier_trace, *((keep,) if keep else ()))
        return Decision(
            person_id=person_id,
            evaluated_at=now,
            criteria_version=self._version,
            stage=stage,
            computed_stage=capped,
            lead_status=lead_status,
            fit_score=fit.score,
            fit_grade=fit.grade,
            signals=signals,
            trace=trace,
            reason=reason,
            disqualified_by=disqualifier_hit.rule.name if disqualifier_hit else None,
        )

    def _rule_reason(self, stage: str, hit: _Hit[StageRule] | None) -> str:
        if hit is None:
            return f"{stage} by default: no stage rule matched"
        return f"{stage} by rule {hit.because()}"

    def _forward_only(self, computed: str, current: str | None) -> tuple[str, RuleTrace | None]:
        """Never move a person backwards and never touch a stage Sales owns.

        `current` None or a value the criteria do not know (a custom CRM stage mapped to nothing)
        means "no stage": the computed stage applies.
        """
        if current is None or current not in self._rank:
            return computed, None
        values: dict[str, FieldValue] = {"current_stage": current, "computed_stage": computed}
        if current in self._sales_owned:
            note = f"{current} is owned by Sales and never changed by the connector"
            return current, RuleTrace("keep", "sales_owned", "", True, values, note)
        if self._rank[current] > self._rank[computed]:
            note = f"stages only move forward and {current} is above {computed}"
            return current, RuleTrace("keep", "forward_only", "", True, values, note)
        return computed, None


def _first_match(
    kind: Literal["stage", "disqualifier"],
    rules: Sequence[tuple[_Rule, Condition]],
    context: Mapping[str, Any],
) -> tuple[_Hit[_Rule] | None, list[RuleTrace]]:
    """Try rules in order; the first that holds wins and the rest are traced as not evaluated."""
    hit: _Hit[_Rule] | None = None
    trace: list[RuleTrace] = []
    for rule, condition in rules:
        if hit is not None:
            note = f"not evaluated: {hit.rule.name} matched first"
            trace.append(RuleTrace(kind, rule.name, condition.source, False, {}, note))
            continue
        outcome = condition.evaluate(context)
        trace.append(
            RuleTrace(kind, rule.name, condition.source, outcome.matched, outcome.values, outcome.error)
        )
        if outcome.matched:
            hit = _Hit(rule=rule, condition=condition, outcome=outcome)
    return hit, trace


def _disqualified_reason(capped: str, computed: str, reason: str, hit: _Hit[Disqualifier]) -> str:
    status = hit.rule.lead_status
    status_note = f", lead status {status}" if status else ""
    if capped != computed:
        return f"{capped} (capped by disqualifier {hit.because()}{status_note}); without it: {reason}"
    return f"{reason}; disqualifier {hit.because()} also holds{status_note}"
