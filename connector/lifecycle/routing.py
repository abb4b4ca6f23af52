"""Owner routing at the Marketing -> Sales hand-off: rules -> account owner / pools -> fallback.

Pure, and split in two because a pool turn must be taken atomically in the state database:

1. `route` walks the path that needs no shared state: keep an active current owner, then the
   rules in order (an `account_owner` rule resolves to the company's owner; a `match` rule names
   a pool). When a pool is reached it returns the outcome with a `claim` and no owner yet.
2. The engine asks the store to claim a turn in that pool. Inside the store's transaction (the
   pool row locked), `pick_member` orders the members from the stored pointer / weights and
   today's counts and picks the first eligible one; the store then saves the new pointer, the
   count and the person's assignment together. `settle` turns the pick (or "nobody eligible")
   into the final outcome with the whole path in its trace, falling back when the pool is empty.

Nothing here reads the clock: the engine passes the routing day (its `now` in routing.yaml's
timezone) to the store, where daily caps count.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from connector.lifecycle._conditions import Condition
from connector.mapping.expressions import Expression, compile_expression
from connector.mapping.schema import Band, Pool, Rep, Routing, RoutingRule
from connector.model import Assignment, FieldValue, PoolPick, PoolState, RuleTrace

CrmName = Literal["hubspot", "salesforce"]

NOT_THIS_TURN = "not this turn"


@dataclass(frozen=True)
class PoolClaim:
    """A turn the store must take in `pool` (reached through `rule`) before the owner is known."""

    pool: str
    rule: str


@dataclass(frozen=True)
class RoutingOutcome:
    """Who owns the person now and why; `claim` set means "a pool turn decides" (see `settle`)."""

    owner_id: str | None
    rep: str | None
    pool: str | None
    rule: str | None
    reason: str
    trace: tuple[RuleTrace, ...]
    claim: PoolClaim | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    """(rep, why) for every pool member passed over for being inactive or capped (for the run log)."""


@dataclass
class _Notes:
    """Trace entries and reason fragments collected while routing one person."""

    trace: list[RuleTrace] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)

    def outcome(
        self,
        reason: str,
        *,
        owner_id: str | None = None,
        rep: str | None = None,
        pool: str | None = None,
        rule: str | None = None,
        claim: PoolClaim | None = None,
    ) -> RoutingOutcome:
        full = "; ".join([*self.prefix, reason])
        return RoutingOutcome(owner_id, rep, pool, rule, full, tuple(self.trace), claim)


def compile_routing_conditions(routing: Routing) -> dict[str, Expression]:
    """Compile every rule's optional `when` once per run (rule name -> expression) for `route`."""
    return {rule.name: compile_expression(rule.when) for rule in routing.rules if rule.when}


def rep_owner_id(rep: Rep, crm: CrmName) -> str | None:
    """The rep's owner/user id in `crm` (None when they have no account there)."""
    return rep.hubspot_owner_id if crm == "hubspot" else rep.salesforce_user_id


def rep_of_owner(routing: Routing, owner_id: str | None) -> str | None:
    """The rep key whose HubSpot or Salesforce id is `owner_id` (None: not a rep)."""
    if not owner_id:
        return None
    for key, rep in routing.reps.items():
        if owner_id in (rep.hubspot_owner_id, rep.salesforce_user_id):
            return key
    return None


def route(
    routing: Routing,
    *,
    crm: CrmName,
    stage: str,
    disqualified: bool,
    person: Mapping[str, FieldValue],
    current_owner_id: str | None,
    active_owner_ids: Set[str],
    when: Mapping[str, Expression] | None = None,
    context: Mapping[str, Any] | None = None,
    domain_owners: Mapping[str, str] | None = None,
) -> RoutingOutcome:
    """Decide the owner for one person up to a pool turn. Never raises for bad data.

    `when` holds compiled rule conditions (see `compile_routing_conditions`; missing ones are
    compiled here), `context` the criteria's expression context for them (defaults to the person;
    its `lists` also give account-owner rules their free-mail list). `domain_owners` maps company
    domains to their owner ids, for `account_owner` rules without an associated company.
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
    lists: Mapping[str, list[str]] = condition_context.get("lists") or {}
    compiled = when or {}
    for index, rule in enumerate(routing.rules):
        if not _rule_applies(rule, person, compiled, condition_context, notes):
            continue
        if rule.kind == "account_owner":
            found = _account_owner(routing, rule, crm, person, active_owner_ids, domain_owners or {}, lists)
            owner_id, rep, how = found
            values: dict[str, FieldValue] = {"person.email_domain": person.get("email_domain")}
            if rule.owner_field:
                values[f"person.{rule.owner_field}"] = person.get(rule.owner_field)
            if owner_id is None:
                notes.trace.append(RuleTrace("routing", rule.name, rule.when or "", False, values, how))
                if rule.pool is None:
                    continue
                notes.trace.append(
                    RuleTrace(
                        "routing", rule.name, "", True, {}, f"no account owner: {how}; pool {rule.pool}"
                    )
                )
                _not_evaluated(routing, index, rule, notes)
                return notes.outcome(
                    f"rule {rule.name}: {how}", rule=rule.name, claim=PoolClaim(rule.pool, rule.name)
                )
            notes.trace.append(RuleTrace("routing", rule.name, rule.when or "", True, values, how))
            _not_evaluated(routing, index, rule, notes)
            return notes.outcome(how, owner_id=owner_id, rep=rep, rule=rule.name)
        assert rule.pool is not None  # a match rule without a pool is refused when loading
        _not_evaluated(routing, index, rule, notes)
        if rule.pool not in routing.pools:
            return fallback(routing, crm, active_owner_ids, notes, f"pool {rule.pool} is not defined")
        return notes.outcome(
            f"rule {rule.name} matched: pool {rule.pool}",
            rule=rule.name,
            claim=PoolClaim(rule.pool, rule.name),
        )
    return fallback(routing, crm, active_owner_ids, notes, "no routing rule matched")


def _not_evaluated(routing: Routing, index: int, rule: RoutingRule, notes: _Notes) -> None:
    for later in routing.rules[index + 1 :]:
        skipped = f"not evaluated: {rule.name} matched first"
        notes.trace.append(RuleTrace("routing", later.name, later.when or "", False, {}, skipped))


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


def _rule_applies(
    rule: RoutingRule,
    person: Mapping[str, FieldValue],
    compiled: Mapping[str, Expression],
    context: Mapping[str, Any],
    notes: _Notes,
) -> bool:
    """`match` and `when` both hold. A failing rule leaves its trace entry; a holding one does not
    (the caller records it once it knows what the rule led to)."""
    values = {f"person.{name}": person.get(name) for name in rule.match}
    missed = [name for name, accepted in rule.match.items() if not _field_matches(person.get(name), accepted)]
    note = f"match: person.{missed[0]} {_accepted_text(rule.match[missed[0]])}" if missed else ""
    matched = not missed
    if matched and rule.when:
        condition = Condition.of(compiled.get(rule.name) or compile_expression(rule.when))
        outcome = condition.evaluate(context)
        values.update(outcome.values)
        matched = outcome.matched
        note = outcome.error or ("" if matched else "when: condition is false")
    if not matched:
        notes.trace.append(RuleTrace("routing", rule.name, rule.when or "", False, values, note))
    elif rule.kind == "match":
        notes.trace.append(
            RuleTrace("routing", rule.name, rule.when or "", True, values, f"pool {rule.pool}")
        )
    return matched


def _accepted_text(accepted: list[str] | Band) -> str:
    if isinstance(accepted, Band):
        low = "" if accepted.min is None else f"{accepted.min:g} <= "
        high = "" if accepted.max is None else f" <= {accepted.max:g}"
        return f"not in {low}value{high}"
    return "not in the accepted values"


def _field_matches(value: FieldValue, accepted: list[str] | Band) -> bool:
    """A band compares numbers (bounds included); a list compares text, ignoring case and spaces."""
    if value is None:
        return False
    if isinstance(accepted, Band):
        if isinstance(value, bool):
            return False
        try:
            number = float(value) if not isinstance(value, datetime) else None
        except ValueError:
            return False
        if number is None or number != number:  # not a number, or NaN
            return False
        return (accepted.min is None or number >= accepted.min) and (
            accepted.max is None or number <= accepted.max
        )
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    wanted = text.strip().casefold()
    return any(wanted == candidate.strip().casefold() for candidate in accepted)


def _account_owner(
    routing: Routing,
    rule: RoutingRule,
    crm: CrmName,
    person: Mapping[str, FieldValue],
    active_owner_ids: Set[str],
    domain_owners: Mapping[str, str],
    lists: Mapping[str, list[str]],
) -> tuple[str | None, str | None, str]:
    """(owner id in `crm`, rep key, how) of the person's company owner, or (None, None, why not)."""
    raw = person.get(rule.owner_field) if rule.owner_field else None
    company_owner = str(raw).strip() if raw not in (None, "") else None
    source = f"the associated company's owner {company_owner}"
    if company_owner is None and rule.match_domain:
        domain = str(person.get("email_domain") or "").strip().casefold()
        free = {d.strip().casefold() for d in lists.get(rule.free_mail_list, [])}
        lead = "no associated company; " if rule.owner_field else ""
        if not domain:
            return None, None, f"{lead}no email domain"
        if domain in free:
            return None, None, f"{lead}{domain} is a free-mail domain, never matched to a company"
        company_owner = domain_owners.get(domain)
        if company_owner is None:
            return None, None, f"{lead}no company with domain {domain} has an owner"
        source = f"the owner {company_owner} of company domain {domain}"
    elif company_owner is None:
        return None, None, "no associated company (domain matching is off)"
    rep = rep_of_owner(routing, company_owner)
    owner_id = rep_owner_id(routing.reps[rep], crm) if rep is not None else company_owner
    if owner_id is None:
        return None, None, f"{source} is rep {rep}, who has no {crm} id"
    if owner_id not in active_owner_ids:
        return None, None, f"{source} ({owner_id} in {crm}) is archived or inactive"
    who = routing.reps[rep].name if rep is not None else owner_id
    return owner_id, rep, f"assigned {who} (owner {owner_id}): {source}"


# --------------------------------------------------------------------------- pool turns


def member_blocker(routing: Routing, member: str, crms: Mapping[CrmName, Set[str]]) -> str | None:
    """Why `member` cannot take a turn for a person in `crms` (CRM -> active owner ids), or None.

    A person in both CRMs gets one rep, so the rep must be able to own records in each.
    """
    rep = routing.reps.get(member)
    if rep is None:
        return "not defined under reps"
    for crm, active in crms.items():
        owner_id = rep_owner_id(rep, crm)
        if owner_id is None:
            return f"no {crm} id"
        if owner_id not in active:
            return f"{'archived' if crm == 'hubspot' else 'inactive'} in {crm} (owner {owner_id})"
    return None


def member_cap(pool: Pool, member: str) -> int | None:
    """The member's daily cap in this pool (`caps` overrides `daily_cap`; None: no cap)."""
    return pool.caps.get(member, pool.daily_cap)


def pick_member(pool: Pool, state: PoolState, blocked: Mapping[str, str]) -> PoolPick:
    """The member whose turn it is, given the stored state (`rep` None: nobody is eligible).

    `blocked` names members that cannot take a turn (inactive, archived) and why; a member whose
    daily cap is reached is passed over the same way. Round-robin: from the pointer, the first
    eligible member, and the pointer moves past them, so members eligible throughout a run of
    turns each get one turn per lap (counts within 1). Weighted: smooth weighted round-robin over
    the eligible members (each adds its weight, the highest takes the turn and gives back the
    total), which spreads turns in proportion to the weights without bursts.
    """
    members = pool.members
    reasons: dict[str, str] = {}
    for member in members:
        why = blocked.get(member)
        cap = member_cap(pool, member)
        done = state.counts.get(member, 0)
        if why is None and cap is not None and done >= cap:
            why = f"daily cap reached ({done} of {cap} today)"
        if why is not None:
            reasons[member] = why
    if pool.strategy == "weighted":
        return _smooth_weighted(pool, state, reasons)
    size = len(members)
    start = state.pointer % size
    considered: list[tuple[str, str]] = []
    picked: tuple[str, int] | None = None
    for offset in range(size):
        index = (start + offset) % size
        member = members[index]
        if picked is None and member not in reasons:
            picked = (member, (index + 1) % size)
            considered.append((member, "picked"))
        else:
            considered.append((member, reasons.get(member, NOT_THIS_TURN)))
    if picked is None:
        return PoolPick(None, state.pointer, dict(state.current), tuple(considered))
    return PoolPick(picked[0], picked[1], dict(state.current), tuple(considered))


def _smooth_weighted(pool: Pool, state: PoolState, reasons: Mapping[str, str]) -> PoolPick:
    eligible = [m for m in pool.members if m not in reasons]
    if not eligible:
        verdicts = tuple((m, reasons[m]) for m in pool.members)
        return PoolPick(None, state.pointer, dict(state.current), verdicts)
    weights = {m: pool.weights.get(m, 1) for m in pool.members}
    current = {m: int(state.current.get(m, 0)) for m in pool.members}
    for member in eligible:
        current[member] += weights[member]
    best = max(eligible, key=lambda m: (current[m], -pool.members.index(m)))
    current[best] -= sum(weights[m] for m in eligible)
    considered = []
    for member in pool.members:
        if member == best:
            considered.append((member, "picked"))
        elif member in reasons:
            considered.append((member, reasons[member]))
        else:
            considered.append((member, f"{NOT_THIS_TURN} (weight {weights[member]})"))
    return PoolPick(best, state.pointer, current, tuple(considered))


def settle(
    routing: Routing,
    outcome: RoutingOutcome,
    *,
    crm: CrmName,
    active_owner_ids: Set[str],
    assignment: Assignment | None,
    pick: PoolPick | None,
) -> RoutingOutcome:
    """The final outcome of a pool turn: the claimed (or earlier) assignment, or the fallback."""
    claim = outcome.claim
    if claim is None:
        return outcome
    notes = _Notes(trace=list(outcome.trace), prefix=[outcome.reason])
    skipped: list[tuple[str, str]] = []
    if pick is not None:
        for member, verdict in pick.considered:
            matched = verdict == "picked"
            notes.trace.append(RuleTrace("routing", f"{claim.pool}/{member}", "", matched, {}, verdict))
            if not matched and not verdict.startswith(NOT_THIS_TURN):
                skipped.append((member, verdict))
    if assignment is None:
        settled = fallback(routing, crm, active_owner_ids, notes, f"pool {claim.pool} has nobody eligible")
        return replace(settled, skipped=tuple(skipped))
    rep = routing.reps.get(assignment.rep)
    owner_id = rep_owner_id(rep, crm) if rep is not None else None
    if rep is None or owner_id is None:
        why = f"assigned rep {assignment.rep} has no {crm} id"
        return replace(fallback(routing, crm, active_owner_ids, notes, why), skipped=tuple(skipped))
    strategy = routing.pools[assignment.pool].strategy if assignment.pool in routing.pools else "pool"
    if assignment.reused:
        how = (
            f"assigned {rep.name} (owner {owner_id}): their turn in pool {assignment.pool} was taken "
            f"for this person on {assignment.day}, so no new turn"
        )
        values: dict[str, FieldValue] = {"day": assignment.day}
        notes.trace.append(RuleTrace("routing", f"{assignment.pool}/{assignment.rep}", "", True, values, how))
    else:
        how = f"assigned {rep.name} (owner {owner_id}) by rule {claim.rule}, pool {claim.pool} {strategy}"
    if skipped:
        how += "; skipped " + ", ".join(f"{m}: {why}" for m, why in skipped)
    settled = notes.outcome(how, owner_id=owner_id, rep=assignment.rep, pool=assignment.pool, rule=claim.rule)
    return replace(settled, skipped=tuple(skipped))


def fallback(
    routing: Routing, crm: CrmName, active_owner_ids: Set[str], notes: _Notes | None, why: str
) -> RoutingOutcome:
    """The fallback rep (or queue) when rules and pools give nobody; None with the reason if they
    cannot own records in `crm` either (then the run reports the person as unrouted)."""
    notes = notes or _Notes()
    owner_id = rep_owner_id(routing.reps[routing.fallback], crm) if routing.fallback in routing.reps else None
    values: dict[str, FieldValue] = {"fallback": routing.fallback}
    if owner_id is None or owner_id not in active_owner_ids:
        state = "has no id there" if owner_id is None else f"{owner_id} is archived or inactive"
        note = f"no owner assigned: {why} and fallback {routing.fallback} cannot own {crm} records ({state})"
        notes.trace.append(RuleTrace("routing", "fallback", "", False, values, note))
        return notes.outcome(note)
    rep = routing.reps[routing.fallback]
    note = f"assigned fallback {rep.name} (owner {owner_id}): {why}"
    notes.trace.append(RuleTrace("routing", "fallback", "", True, values, note))
    return notes.outcome(note, owner_id=owner_id, rep=routing.fallback)


def routing_path(outcome: RoutingOutcome) -> list[str]:
    """The routing trace as numbered plain sentences, for `explain`: rules tried, the pool, each
    member looked at and why they were passed over, the rep chosen or the fallback."""
    lines: list[str] = []
    unevaluated: list[str] = []
    for step in outcome.trace:
        if step.kind == "keep":
            lines.append(step.note)
        elif step.note.startswith("not evaluated"):
            unevaluated.append(step.name)
        elif "/" in step.name:
            pool, member = step.name.split("/", 1)
            if step.note == "picked":
                lines.append(f"pool {pool}: {member} takes the turn")
            elif step.matched:  # an earlier turn reused
                lines.append(step.note)
            else:
                lines.append(f"pool {pool}: {member} passed over ({step.note})")
        elif step.name in ("fallback", "copy_owner"):
            lines.append(step.note)
        elif step.matched:
            lines.append(
                f"rule {step.name} matched: {step.note}" if step.note else f"rule {step.name} matched"
            )
        else:
            lines.append(f"rule {step.name} did not match: {step.note or 'its condition is false'}")
    if unevaluated:
        lines.append(f"not evaluated (an earlier rule matched): {', '.join(unevaluated)}")
    if outcome.owner_id is not None:
        lines.append(f"result: owner {outcome.owner_id}" + (f" (rep {outcome.rep})" if outcome.rep else ""))
    else:
        lines.append("result: no owner change")
    return [f"{n}. {line}" for n, line in enumerate(lines, 1)]
