"""Stage rules, disqualifiers and recycle rules: one person's data in, one explained `Decision` out.

The order of operations is the contract written at the top of mappings/criteria.yaml:
signals -> fit -> first matching stage rule (else the default stage) -> first matching
disqualifier caps the stage -> forward-only against the stage the CRM already shows, and stages
Sales owns are never touched -> a recycle rule may send a stalled hand-off back to nurture (a lead
status; the stage stays). Every step leaves a `RuleTrace` so `explain` can answer "why?".

Backward moves are the one exception to forward-only, and only when criteria.yaml says
`allow_backward_moves: true` (validation requires it for the two settings that ask for one): a
disqualifier with `move_stage_back` moves a person above its cap back to the stage the criteria
give now (at most the cap), and a recycle rule with `move_stage_to` moves the recycled person back
to that stage, never below the stage the rules give now (which the next run would only undo). A
Sales-owned stage is still never left or entered. The decision names the rule in `moved_back_by`;
the diff writes the move only when the CRM mapping allows backward stage moves too.

Trace layout (what `explain` relies on): every fit rule; every stage rule, in order — those after
the first match are listed as not evaluated (matched=False, note "not evaluated: ..."); every
disqualifier the same way; then, if the current stage was kept, one `keep` entry saying why; then
the recycle rules that apply to the person's stage, the same way; then, if the stage moved back,
one `move_back` entry naming the rule and the switch.

Two entry points share one decision procedure: `evaluate` builds the full `Decision` with traces
and reasons (sync, explain), `verdict` only the outcome, memoised per rule group (simulate and the
benchmark, which evaluate millions of people). A property test holds them to the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from connector.lifecycle._conditions import Condition, ConditionGroup, Outcome, describe_values
from connector.lifecycle.fit import FitScorer
from connector.lifecycle.gaps import Gap, GapFinder
from connector.lifecycle.identity import email_domain
from connector.lifecycle.signals import SignalCalculator, SignalValue, as_utc
from connector.mapping.expressions import ZERO_VALUES, expression_context
from connector.mapping.schema import Criteria, Disqualifier, RecycleRule, StageRule
from connector.model import Activity, Decision, FieldValue, RuleTrace

_Rule = TypeVar("_Rule", StageRule, Disqualifier, RecycleRule)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Handoff:
    """What the CRM and the state database say about a person's hand-off, for recycle rules.

    `lead_status` is the CRM's current lead status as a canonical name (None: empty or a value
    the mapping does not know); `stage_entered_at` when the person entered their current stage as
    far as the connector knows (None: unknown, which reads as "just now": nobody is recycled on a
    guess).
    """

    lead_status: str | None = None
    stage_entered_at: datetime | None = None
    sla: Mapping[str, Any] | None = None
    """`handoff_hours`, `sales_touched`, `sla_lapsed` from `handoff.sla_state` (None: no hand-off).
    A lapsed SLA makes a person recyclable even while the rules still support their stage."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of the criteria for one person, without traces (the bulk path)."""

    stage: str
    computed_stage: str
    lead_status: str | None
    rule: str | None
    disqualified_by: str | None
    recycled_by: str | None
    fit_score: int
    fit_grade: str
    signals: dict[str, SignalValue]
    moved_back_by: str | None = None


class Basis(NamedTuple):
    """What every rule reads besides signals: the person's values and their fit; optionally the
    whole rule context and the disqualifier found in it (shareable per `same_disqualifiers`)."""

    person: dict[str, FieldValue]
    fit_score: int
    fit_grade: str
    context: dict[str, Any] | None = None
    disqualifier: int | None = None
    disqualifier_known: bool = False


@dataclass(frozen=True)
class _Hit(Generic[_Rule]):
    """The first rule (stage rule, disqualifier or recycle rule) that held, with what it read."""

    rule: _Rule
    condition: Condition
    outcome: Outcome

    def because(self) -> str:
        """`rule name (description): values read` — the core of every reason sentence."""
        description = f" ({self.rule.description})" if self.rule.description else ""
        values = describe_values(self.outcome.values, self.condition.source)
        return f"{self.rule.name}{description}" + (f": {values}" if values else "")


@dataclass(frozen=True)
class _Settled:
    """Stage and lead status after caps and forward-only, before recycling."""

    computed: str
    capped: str
    stage: str
    keep: RuleTrace | None
    lead_status: str | None
    moved_back: RuleTrace | None = None
    """Set when a disqualifier moved the stage back (its `move_stage_back`, with the switch on)."""


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
        self._zero_map = {name: ZERO_VALUES.get(kind, "") for name, kind in self._person_fields.items()}
        self._rank = {stage: index for index, stage in enumerate(criteria.stages)}
        self._sales_owned = frozenset(criteria.sales_owned)
        self._signals = SignalCalculator(criteria.signals, criteria.activity_types)
        self._fit = FitScorer(criteria.fit, criteria.lists)
        self._rules = tuple((rule, Condition.compile(rule.when)) for rule in criteria.rules)
        self._disqualifiers = tuple((rule, Condition.compile(rule.when)) for rule in criteria.disqualifiers)
        self._recycle = tuple((rule, Condition.compile(rule.when)) for rule in criteria.recycle)
        # Stage rules over signals and fit compile to Python (`compiled`); the rest stay CEL.
        types = {**self._signals.types, "fit_score": "int", "fit_grade": "string"}
        self._rule_group = ConditionGroup([c for _, c in self._rules], types)
        self._disqualifier_group = ConditionGroup([c for _, c in self._disqualifiers], types)
        self._recycle_group = ConditionGroup([c for _, c in self._recycle])
        self._lists = {name: list(values) for name, values in criteria.lists.items()}
        self._accepting_statuses = frozenset(criteria.acceptance.lead_statuses)
        self._accepting_types = frozenset(criteria.acceptance.activity_types)
        self._gap_finder = GapFinder(criteria)
        self._settled: dict[tuple[int | None, int | None, str | None], _Settled] = {}
        self._check_stage_names()

    @property
    def criteria(self) -> Criteria:
        return self._criteria

    @property
    def version(self) -> str:
        return self._version

    @property
    def signals(self) -> SignalCalculator:
        return self._signals

    def same_signals(self, other: CriteriaEvaluator) -> bool:
        """Whether `other` computes the same signals from the same timeline (same definitions)."""
        mine, theirs = self._criteria, other.criteria
        return mine.signals == theirs.signals and mine.activity_types == theirs.activity_types

    def same_fit(self, other: CriteriaEvaluator) -> bool:
        """Whether `other` gives every person the same person values and fit (same definitions).

        Fit rules may read signals, so the signals must be the same too.
        """
        mine, theirs = self._criteria, other.criteria
        return (
            self.same_signals(other)
            and mine.fit == theirs.fit
            and mine.lists == theirs.lists
            and self._person_fields == other._person_fields
        )

    def same_disqualifiers(self, other: CriteriaEvaluator) -> bool:
        """Whether `other` disqualifies every person alike (same fit, signals and disqualifiers)."""
        return self.same_fit(other) and self._criteria.disqualifiers == other.criteria.disqualifiers

    def basis(
        self,
        person: Mapping[str, FieldValue],
        signals: Mapping[str, SignalValue],
        *,
        disqualifier: bool = False,
    ) -> Basis:
        """The person's values and fit as the bulk path reads them; shareable per `same_fit`.

        With `disqualifier`, also the rule context and the first disqualifier that holds in it,
        shareable per `same_disqualifiers` (the context is never changed in place).
        """
        values = self.person_context(person)
        fit_score, fit_grade = self._fit.quick(values, signals, self._lists)
        if not disqualifier:
            return Basis(values, fit_score, fit_grade)
        context = self.context(values, signals, fit_score, fit_grade)
        found = self._disqualifier_group.first(context)
        return Basis(values, fit_score, fit_grade, context, found, disqualifier_known=True)

    def rank(self, stage: str) -> int:
        """Position of a canonical stage, lowest first (-1 for a stage the criteria do not know)."""
        return self._rank.get(stage, -1)

    def _check_stage_names(self) -> None:
        """Fail at start-up, not mid-run, if a rule names a stage the criteria do not declare."""
        named = [self._criteria.default_stage, *self._criteria.sales_owned]
        named += [rule.stage for rule in self._criteria.rules]
        named += [rule.cap for rule in self._criteria.disqualifiers]
        named += [stage for rule in self._criteria.recycle for stage in rule.stages]
        named += [rule.move_stage_to for rule in self._criteria.recycle if rule.move_stage_to]
        unknown = sorted({stage for stage in named if stage not in self._rank})
        if unknown:
            raise ValueError(f"stages not declared in criteria.stages: {', '.join(unknown)}")

    def person_context(self, person: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
        """The `person` conditions see: declared fields (missing -> typed zero) plus `email_domain`."""
        # Zeros first, then every present value over them (C-level dict operations: this runs per
        # person in simulate).
        values: dict[str, FieldValue] = dict(self._zero_map)
        if None in person.values():
            values.update((key, value) for key, value in person.items() if value is not None)
        else:
            values.update(person)
        if person.get("email_domain") is None:
            email = person.get("email")
            values["email_domain"] = email_domain(email if isinstance(email, str) else None)
        return values

    def context(
        self,
        person: Mapping[str, FieldValue],
        signals: Mapping[str, SignalValue],
        fit_score: int,
        fit_grade: str,
    ) -> dict[str, Any]:
        """Everything a stage rule can read, for a person whose `person_context` is `person`."""
        context: dict[str, Any] = dict(signals)
        context["fit_score"] = fit_score
        context["fit_grade"] = fit_grade
        context["person"] = person
        context["lists"] = self._lists
        return context

    # ------------------------------------------------------------------ full decision

    def evaluate(
        self,
        *,
        person_id: str,
        person: Mapping[str, FieldValue],
        timeline: Sequence[Activity],
        current_stage: str | None,
        now: datetime,
        handoff: Handoff | None = None,
    ) -> Decision:
        """Decide stage and lead status for one person as of `now`, with the rules and values behind it."""
        person_values = self.person_context(person)
        signals: dict[str, SignalValue] = dict(self._signals.compute(timeline, now))
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
        settled = self._settle(
            rule_hit.rule if rule_hit else None,
            disqualifier_hit.rule if disqualifier_hit else None,
            current_stage,
        )
        reason = self._rule_reason(settled.computed, rule_hit)
        if disqualifier_hit is not None:
            reason = _disqualified_reason(settled.capped, settled.computed, reason, disqualifier_hit)
        criteria_reason = reason
        if settled.keep is not None:
            reason = f"{settled.stage} kept: {settled.keep.note}; criteria say: {reason}"
        moved_back = settled.moved_back
        if moved_back is not None:
            reason = f"{settled.stage} ({moved_back.note}): {reason}"

        stage = settled.stage
        lead_status = settled.lead_status
        recycle_hit: _Hit[RecycleRule] | None = None
        recycle_trace: list[RuleTrace] = []
        if self._recyclable(settled, disqualifier_hit is not None, current_stage, handoff):
            context |= self._handoff_names(settled.stage, timeline, now, handoff)
            applicable = [(r, c) for r, c in self._recycle if settled.stage in r.stages]
            recycle_hit, recycle_trace = _first_match("recycle", applicable, context)
            if recycle_hit is not None:
                lead_status = recycle_hit.rule.lead_status
                moved_back = self._recycle_move(recycle_hit.rule, settled)
                if moved_back is not None:
                    stage = str(moved_back.values["moved_to"])
                    reason = (
                        f"{stage} ({moved_back.note}), recycled by {recycle_hit.because()}, "
                        f"lead status {lead_status}; criteria say: {criteria_reason}"
                    )
                else:
                    reason = (
                        f"{settled.stage} recycled by {recycle_hit.because()}, lead status {lead_status}; "
                        f"{reason}"
                    )

        trace = (
            *fit.trace,
            *rule_trace,
            *disqualifier_trace,
            *((settled.keep,) if settled.keep else ()),
            *recycle_trace,
            *((moved_back,) if moved_back else ()),
        )
        return Decision(
            person_id=person_id,
            evaluated_at=now,
            criteria_version=self._version,
            stage=stage,
            computed_stage=settled.capped,
            lead_status=lead_status,
            fit_score=fit.score,
            fit_grade=fit.grade,
            signals=signals,
            trace=trace,
            reason=reason,
            disqualified_by=disqualifier_hit.rule.name if disqualifier_hit else None,
            recycled_by=recycle_hit.rule.name if recycle_hit else None,
            rule=rule_hit.rule.name if rule_hit else None,
            moved_back_by=moved_back.name if moved_back else None,
        )

    def gaps(self, decision: Decision, person: Mapping[str, FieldValue]) -> list[Gap]:
        """What each stage rule above the decided stage still needs, in plain language (for explain)."""
        context = self.context(
            self.person_context(person), decision.signals, decision.fit_score, decision.fit_grade
        )
        cap = None
        if decision.disqualified_by is not None:
            cap = next(d.cap for d in self._criteria.disqualifiers if d.name == decision.disqualified_by)
        return self._gap_finder.gaps(decision.stage, context, cap)

    # ------------------------------------------------------------------ bulk path

    def verdict(
        self,
        *,
        person: Mapping[str, FieldValue],
        timeline: Sequence[Activity],
        current_stage: str | None,
        now: datetime,
        handoff: Handoff | None = None,
        signals: dict[str, SignalValue] | None = None,
        basis: Basis | None = None,
    ) -> Verdict:
        """The same outcome as `evaluate`, without traces or reasons, memoised per rule group.

        `signals` may pass values already computed for this timeline and `now` by an evaluator
        with the same signal definitions (`same_signals`), and `basis` the person values and fit
        of one with the same fit (`same_fit`): `simulate` compares two criteria versions that
        usually differ only in rules, and signals and fit are most of the work.
        """
        if signals is None:
            signals = self._signals.compute(timeline, now)
        shared = basis or self.basis(person, signals)
        person_values, fit_score, fit_grade = shared.person, shared.fit_score, shared.fit_grade
        context = shared.context
        if context is None:
            context = self.context(person_values, signals, fit_score, fit_grade)
        rule_index = self._rule_group.first(context)
        disqualifier_index = (
            shared.disqualifier if shared.disqualifier_known else self._disqualifier_group.first(context)
        )
        rule = self._rules[rule_index][0] if rule_index is not None else None
        disqualifier = self._disqualifiers[disqualifier_index][0] if disqualifier_index is not None else None
        # Few (rule, disqualifier, current stage) combinations exist, and settling is pure.
        settle_key = (rule_index, disqualifier_index, current_stage)
        settled = self._settled.get(settle_key)
        if settled is None:
            settled = self._settle(rule, disqualifier, current_stage)
            if len(self._settled) >= 4096:  # stages from the CRM are free text: stay bounded
                self._settled.clear()
            self._settled[settle_key] = settled
        stage = settled.stage
        lead_status = settled.lead_status
        recycled: str | None = None
        moved_back = settled.moved_back
        if self._recyclable(settled, disqualifier is not None, current_stage, handoff):
            context = context | self._handoff_names(settled.stage, timeline, now, handoff)
            for index, (candidate, _condition) in enumerate(self._recycle):
                if settled.stage in candidate.stages and self._recycle_group.holds(index, context):
                    lead_status, recycled = candidate.lead_status, candidate.name
                    moved_back = self._recycle_move(candidate, settled)
                    if moved_back is not None:
                        stage = str(moved_back.values["moved_to"])
                    break
        return Verdict(
            stage=stage,
            computed_stage=settled.capped,
            lead_status=lead_status,
            rule=rule.name if rule else None,
            disqualified_by=disqualifier.name if disqualifier else None,
            recycled_by=recycled,
            fit_score=fit_score,
            fit_grade=fit_grade,
            signals=signals,
            moved_back_by=moved_back.name if moved_back else None,
        )

    # ------------------------------------------------------------------ shared steps

    def _settle(
        self, rule: StageRule | None, disqualifier: Disqualifier | None, current: str | None
    ) -> _Settled:
        computed = rule.stage if rule else self._criteria.default_stage
        lead_status = rule.lead_status if rule else None
        capped = computed
        if disqualifier is not None:
            capped = min(computed, disqualifier.cap, key=self._rank.__getitem__)
            lead_status = disqualifier.lead_status
        stage, keep = self._forward_only(capped, current)
        if (
            keep is not None
            and keep.name == "forward_only"
            and disqualifier is not None
            and disqualifier.move_stage_back
            and self._criteria.allow_backward_moves
        ):
            note = (
                f"moved back from {stage} to {capped} by disqualifier {disqualifier.name}: "
                "move_stage_back, and allow_backward_moves is on"
            )
            values: dict[str, FieldValue] = {"moved_from": stage, "moved_to": capped}
            moved = RuleTrace("move_back", disqualifier.name, "", True, values, note)
            return _Settled(computed, capped, capped, None, lead_status, moved)
        if keep is not None:
            # A rule's lead status describes the lower stage that is not applied; a disqualifier's
            # (e.g. unqualified) still holds. Sales-owned records are left to Sales entirely.
            held_by_sales = keep.name == "sales_owned"
            lead_status = None if held_by_sales or disqualifier is None else lead_status
        return _Settled(computed, capped, stage, keep, lead_status)

    def _recycle_move(self, rule: RecycleRule, settled: _Settled) -> RuleTrace | None:
        """The backward move a recycle rule asks for, if the switch is on; never below the rules' stage.

        Landing below the stage the rules give now would be undone by the next run's forward move,
        so the target is raised to it. Validation keeps `move_stage_to` below every stage the rule
        applies to, and recycling applies only when the current stage is above the rules' stage,
        so the result is always a real move down.
        """
        target = rule.move_stage_to
        if target is None or not self._criteria.allow_backward_moves:
            return None
        landing = max(target, settled.capped, key=self._rank.__getitem__)
        if self._rank[landing] >= self._rank[settled.stage] or landing in self._sales_owned:
            return None
        raised = f" (not {target}: the rules give {landing} now)" if landing != target else ""
        note = (
            f"moved back from {settled.stage} to {landing}{raised} by recycle rule {rule.name}: "
            "move_stage_to, and allow_backward_moves is on"
        )
        values: dict[str, FieldValue] = {"moved_from": settled.stage, "moved_to": landing}
        return RuleTrace("move_back", rule.name, "", True, values, note)

    def _recyclable(
        self, settled: _Settled, disqualified: bool, current: str | None, handoff: Handoff | None
    ) -> bool:
        """Only a stalled hand-off can be recycled: one the rules no longer support (kept by
        forward-only), or one whose hand-off SLA lapsed without Sales touching it (the rules may
        still place the person there: they are engaged, Sales is not).

        A person the rules still place at their stage is otherwise active, not stalled; a
        disqualified one already carries the disqualifier's status; Sales-owned stages are never
        touched.
        """
        if not self._recycle or disqualified:
            return False
        if settled.keep is not None and settled.keep.name == "forward_only":
            return True
        lapsed = bool(handoff and handoff.sla and handoff.sla.get("sla_lapsed"))
        return lapsed and settled.keep is None and settled.stage == current

    def _handoff_names(
        self, stage: str, timeline: Sequence[Activity], now: datetime, handoff: Handoff | None
    ) -> dict[str, Any]:
        """The names recycle rules read: accepted, days_in_stage, current_stage, current_lead_status,
        and the hand-off SLA's handoff_hours, sales_touched, sla_lapsed (see `RECYCLE_NAMES`)."""
        handoff = handoff or Handoff()
        entered = as_utc(handoff.stage_entered_at) if handoff.stage_entered_at else None
        now_utc = as_utc(now)
        accepted = handoff.lead_status in self._accepting_statuses
        if not accepted and entered is not None and self._accepting_types:
            accepted = any(
                activity.type in self._accepting_types and entered <= as_utc(activity.occurred_at) <= now_utc
                for activity in timeline
            )
        days = max((now_utc - entered) // _DAY, 0) if entered is not None else 0
        return {
            "accepted": accepted,
            "days_in_stage": days,
            "current_stage": stage,
            "current_lead_status": handoff.lead_status or "",
            "handoff_hours": 0,
            "sales_touched": False,
            "sla_lapsed": False,
            **(handoff.sla or {}),
        }

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
    kind: Literal["stage", "disqualifier", "recycle"],
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
