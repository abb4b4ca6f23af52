"""Owner routing at the Marketing -> Sales hand-off (v1: rules -> round-robin pools -> fallback).

Pure: the engine passes the set of active owner ids it read from the CRM and the round-robin
pointers it read from the state store; `route` returns the owner plus the pointer value to persist
in the same transaction as the write. Fairness across runs therefore lives in the pointer, not in
process memory, and replaying a decision with the same inputs gives the same owner.

`route` should be called when a person is at a hand-off stage; with `keep_existing_owner` on (the
default) a person with an active owner keeps them, which is what makes repeated runs idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.lifecycle._conditions import Condition
from connector.mapping.expressions import Expression, compile_expression
from connector.mapping.schema import Pool, Rep, Routing, RoutingRule
from connector.model import FieldValue, RuleTrace

CrmName = Literal["hubspot", "salesforce"]


@dataclass(frozen=True)
class RoutingOutcome:
    """Who owns the person now, why, and the round-robin pointer to persist (pool, new value)."""

    owner_id: str | None
    rep: str | None
    pool: str | None
    rule: str | None
    reason: str
    trace: tuple[RuleTrace, ...]
    pointer: tuple[str, int] | None


@dataclass
class _Notes:
    """Trace entries and reason fragments collected while routing one person."""

    trace: list[RuleTrace] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    suffix: list[str] = field(default_factory=list)

    def outcome(
        self,
        reason: str,
        *,
        owner_id: str | None = None,
        rep: str | None = None,
        pool: str | None = None,
        rule: str | None = None,
        pointer: tuple[str, int] | None = None,
    ) -> RoutingOutcome:
        full = "; ".join([*self.prefix, reason, *self.suffix])
        return RoutingOutcome(owner_id, rep, pool, rule, full, tuple(self.trace), pointer)


def compile_routing_conditions(routing: Routing) -> dict[str, Expression]:
    """Compile every rule's optional `when` once per run (rule name -> expression) for `route`."""
    return {rule.name: compile_expression(rule.when) for rule in routing.rules if rule.when}


def rep_owner_id(rep: Rep, crm: CrmName) -> str | None:
    """The rep's owner/user id in `crm` (None when they have no account there)."""
    return rep.hubspot_owner_id if crm == "hubspot" else rep.salesforce_user_id


def route(
    routing: Routing,
    *,
    crm: CrmName,
    stage: str,
    disqualified: bool,
    person: Mapping[str, FieldValue],
    current_owner_id: str | None,
    active_owner_ids: Set[str],
    pointers: Mapping[str, int],
    when: Mapping[str, Expression] | None = None,
    context: Mapping[str, Any] | None = None,
) -> RoutingOutcome:
    """Decide the owner for one person. Never raises for bad data: an unroutable person gets None.

    `when` holds compiled rule conditions (see `compile_routing_conditions`; missing ones are
    compiled here), `context` the criteria's expression context for them (defaults to the person).
    """
    notes = _Notes()
    if stage not in routing.handoff_stages:
        return notes.outcome(
            f"no routing: {stage} is not a hand-off stage ({', '.join(routing.handoff_stages)})"
        )
    if disqualified:
        return notes.outcome("no routing: the person is disqualified")
    kept = _keep_existing(routing, crm, current_owner_id, active_owner_ids, notes)
    if kept is not None:
        return kept
    condition_context = dict(context) if context is not None else {}
    condition_context.setdefault("person", dict(person))
    matched = _first_rule(routing, person, when or {}, condition_context, notes)
    if matched is None:
        return _fallback(routing, crm, active_owner_ids, notes, "no routing rule matched")
    pool = routing.pools.get(matched.pool)
    if pool is None:
        return _fallback(routing, crm, active_owner_ids, notes, f"pool {matched.pool} is not defined")
    picked = _round_robin(routing, matched.pool, pool, crm, active_owner_ids, pointers, notes)
    if picked is None:
        return _fallback(routing, crm, active_owner_ids, notes, f"pool {matched.pool} has no active member")
    member, owner_id, pointer = picked
    rep = routing.reps[member]
    reason = f"assigned {rep.name} (owner {owner_id}) by rule {matched.name}, pool {matched.pool} round-robin"
    return notes.outcome(
        reason,
        owner_id=owner_id,
        rep=member,
        pool=matched.pool,
        rule=matched.name,
        pointer=(matched.pool, pointer),
    )


def _keep_existing(
    routing: Routing,
    crm: CrmName,
    current_owner_id: str | None,
    active_owner_ids: Set[str],
    notes: _Notes,
) -> RoutingOutcome | None:
    """Keep an active current owner; an archived/inactive one counts as no owner at all."""
    if not current_owner_id:
        return None
    values: dict[str, FieldValue] = {"current_owner_id": current_owner_id}
    if current_owner_id not in active_owner_ids:
        note = (
            f"current owner {current_owner_id} is archived or inactive, so the person is treated as unowned"
        )
        notes.trace.append(RuleTrace("keep", "keep_existing_owner", "", False, values, note))
        notes.prefix.append(note)
        return None
    if not routing.keep_existing_owner:
        note = f"keep_existing_owner is off: routing again although owner {current_owner_id} is active"
        notes.trace.append(RuleTrace("keep", "keep_existing_owner", "", False, values, note))
        return None
    rep = next((key for key, rep in routing.reps.items() if rep_owner_id(rep, crm) == current_owner_id), None)
    note = f"kept current owner {current_owner_id}: they are active and keep_existing_owner is on"
    notes.trace.append(RuleTrace("keep", "keep_existing_owner", "", True, values, note))
    return notes.outcome(note, owner_id=current_owner_id, rep=rep)


def _first_rule(
    routing: Routing,
    person: Mapping[str, FieldValue],
    compiled: Mapping[str, Expression],
    context: Mapping[str, Any],
    notes: _Notes,
) -> RoutingRule | None:
    """Rules in order; the first whose `match` and `when` both hold. Later rules are not evaluated."""
    for index, rule in enumerate(routing.rules):
        values = {f"person.{name}": person.get(name) for name in rule.match}
        matched = all(_field_matches(person.get(name), accepted) for name, accepted in rule.match.items())
        note = "" if matched else "match: person value not in the accepted values"
        if matched and rule.when:
            condition = Condition.of(compiled.get(rule.name) or compile_expression(rule.when))
            outcome = condition.evaluate(context)
            values.update(outcome.values)
            matched = outcome.matched
            note = outcome.error or ("" if matched else "when: condition is false")
        expression = rule.when or ""
        notes.trace.append(RuleTrace("routing", rule.name, expression, matched, values, note))
        if matched:
            for later in routing.rules[index + 1 :]:
                skipped = f"not evaluated: {rule.name} matched first"
                notes.trace.append(RuleTrace("routing", later.name, later.when or "", False, {}, skipped))
            return rule
    return None


def _field_matches(value: FieldValue, accepted: list[str]) -> bool:
    """Case- and surrounding-space-insensitive equality with any accepted value."""
    if value is None:
        return False
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    wanted = text.strip().casefold()
    return any(wanted == candidate.strip().casefold() for candidate in accepted)


def _round_robin(
    routing: Routing,
    pool_name: str,
    pool: Pool,
    crm: CrmName,
    active_owner_ids: Set[str],
    pointers: Mapping[str, int],
    notes: _Notes,
) -> tuple[str, str, int] | None:
    """From the stored pointer, the first member active in `crm`: (member, owner id, new pointer)."""
    size = len(pool.members)
    start = pointers.get(pool_name, 0) % size if size else 0
    skipped: list[str] = []
    for offset in range(size):
        index = (start + offset) % size
        member = pool.members[index]
        owner_id, why_not = _usable_owner(routing, member, crm, active_owner_ids)
        if owner_id is None:
            skipped.append(f"skipped {member}: {why_not}")
            notes.trace.append(RuleTrace("routing", f"{pool_name}/{member}", "", False, {}, skipped[-1]))
            continue
        values: dict[str, FieldValue] = {"pointer": start, "index": index}
        pick = f"round-robin picked {member} (owner {owner_id})"
        notes.trace.append(RuleTrace("routing", f"{pool_name}/{member}", "", True, values, pick))
        notes.suffix.extend(skipped)
        return member, owner_id, (index + 1) % size
    notes.suffix.extend(skipped)
    return None


def _usable_owner(
    routing: Routing, member: str, crm: CrmName, active_owner_ids: Set[str]
) -> tuple[str | None, str]:
    """The member's owner id if they can own records in `crm` now, else None and why not."""
    rep = routing.reps.get(member)
    if rep is None:
        return None, "not defined under reps"
    owner_id = rep_owner_id(rep, crm)
    if owner_id is None:
        return None, f"no {crm} id"
    if owner_id not in active_owner_ids:
        return None, f"owner {owner_id} archived or inactive"
    return owner_id, ""


def _fallback(
    routing: Routing, crm: CrmName, active_owner_ids: Set[str], notes: _Notes, why: str
) -> RoutingOutcome:
    """The fallback rep when rules and pools give nobody; None (with the reason) if they cannot own."""
    owner_id, why_not = _usable_owner(routing, routing.fallback, crm, active_owner_ids)
    values: dict[str, FieldValue] = {"fallback": routing.fallback}
    if owner_id is None:
        note = f"no owner assigned: {why} and fallback {routing.fallback} cannot own records ({why_not})"
        notes.trace.append(RuleTrace("routing", "fallback", "", False, values, note))
        return notes.outcome(note)
    rep = routing.reps[routing.fallback]
    note = f"assigned fallback {rep.name} (owner {owner_id}): {why}"
    notes.trace.append(RuleTrace("routing", "fallback", "", True, values, note))
    return notes.outcome(note, owner_id=owner_id, rep=routing.fallback)
