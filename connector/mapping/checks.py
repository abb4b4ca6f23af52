"""Checks pydantic cannot do: names that must exist elsewhere, in the same file or another one.

Each function takes the validated model(s) and the `Document` the values came from, and appends
issues to that document, located at the offending value. They never stop at the first problem:
`validate` should show the admin everything to fix in one go. A check that needs another file
runs only when that file is valid (otherwise every reference would be reported as unknown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.lifecycle.handoff import SUBJECT_NAMES, template_names
from connector.mapping.conditions import RESERVED_NAMES, Scope, check_condition, known_values_hint
from connector.mapping.expressions import RECYCLE_NAMES, ExpressionError, compile_expression
from connector.mapping.schema import (
    REQUIRED_KIND_PARAMETERS,
    SIGNAL_KIND_PARAMETERS,
    ActivityFilter,
    Band,
    Criteria,
    FieldType,
    HubSpotMapping,
    Pool,
    Routing,
    RoutingRule,
    SalesforceMapping,
)
from connector.mapping.source import Document, Loc

DERIVED_PERSON_FIELDS: dict[str, FieldType] = {"email_domain": "string"}
"""Person fields the connector computes itself (from the email), available whatever the CRM."""

# CEL reserves these words, so a signal named after one could never be read by a condition.
_CEL_RESERVED = frozenset(
    {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if"}
    | {"import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# --------------------------------------------------------------------------- shared helpers


def require_known(
    doc: Document, loc: Loc, value: str, known: Iterable[str], what: str, *, key: bool = False
) -> None:
    """An issue at `loc` unless `value` is one of `known`, with did-you-mean and the valid values."""
    known = list(known)
    if value not in known:
        doc.add(loc, f"unknown {what} '{value}'", known_values_hint(value, known, f"{what}s"), key=key)


def require_unique(doc: Document, loc: Loc, names: Sequence[str], what: str) -> None:
    """An issue at each repeated name (`loc` + index), naming where it first appeared."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            doc.add(
                (*loc, index),
                f"duplicate {what} '{name}' (also at index {seen[name]})",
                "names must be unique",
            )
        else:
            seen[name] = index


def check_when(doc: Document, loc: Loc, source: str, scope: Scope | None) -> None:
    """Report every problem of the condition at `loc`; only syntax when the names are unknown."""
    if scope is None:
        try:
            compile_expression(source)
        except ExpressionError as exc:
            doc.add(loc, str(exc))
        return
    for problem in check_condition(source, scope):
        position = doc.position_in_scalar(loc, problem.offset)
        doc.issues.append(doc.issue(loc, problem.message, problem.hint, position=position))


def condition_scope(
    criteria: Criteria,
    person_fields: Mapping[str, str] | None,
    *,
    reads_fit: bool = True,
    recycle: bool = False,
) -> Scope:
    """What conditions in these mapping files may read (recycle rules also see the hand-off state)."""
    return Scope(
        signals=list(criteria.signals),
        person_fields=person_fields,
        lists=criteria.lists,
        grades=criteria.fit.grades,
        reads_fit=reads_fit,
        signal_types={
            name: "double" if spec.kind == "score" else "int" for name, spec in criteria.signals.items()
        },
        extra=RECYCLE_NAMES if recycle else {},
    )


# --------------------------------------------------------------------------- criteria.yaml


def check_criteria(doc: Document, criteria: Criteria, person_fields: Mapping[str, str] | None) -> None:
    """Stages, statuses, signals, fit, disqualifiers and rules refer only to declared names."""
    _check_stages(doc, criteria)
    _check_signals(doc, criteria)
    _check_fit(doc, criteria, person_fields)
    scope = condition_scope(criteria, person_fields)
    require_unique(doc, ("disqualifiers",), [d.name for d in criteria.disqualifiers], "disqualifier name")
    for index, disqualifier in enumerate(criteria.disqualifiers):
        loc: Loc = ("disqualifiers", index)
        require_known(doc, (*loc, "cap"), disqualifier.cap, criteria.stages, "stage")
        _check_status(doc, (*loc, "lead_status"), disqualifier.lead_status, criteria)
        check_when(doc, (*loc, "when"), disqualifier.when, scope)
    require_unique(doc, ("rules",), [r.name for r in criteria.rules], "rule name")
    for index, rule in enumerate(criteria.rules):
        loc = ("rules", index)
        require_known(doc, (*loc, "stage"), rule.stage, criteria.stages, "stage")
        _check_status(doc, (*loc, "lead_status"), rule.lead_status, criteria)
        check_when(doc, (*loc, "when"), rule.when, scope)
    _check_acceptance(doc, criteria)
    _check_recycle(doc, criteria, person_fields)
    _check_backward_moves(doc, criteria)


def _check_backward_moves(doc: Document, criteria: Criteria) -> None:
    """The switch and the rules that use it must agree, and a move must really go down, never to Sales."""
    rank = {stage: index for index, stage in enumerate(criteria.stages)}
    switch = "allow_backward_moves"
    for index, rule in enumerate(criteria.recycle):
        target = rule.move_stage_to
        if target is None:
            continue
        loc: Loc = ("recycle", index, "move_stage_to")
        if not criteria.allow_backward_moves:
            doc.add(
                loc,
                f"recycle rule '{rule.name}' moves the stage back to '{target}' but {switch} is false",
                f"set {switch}: true at the top level to allow it, or remove move_stage_to",
            )
        if target not in rank:
            require_known(doc, loc, target, criteria.stages, "stage")
            continue
        if target in criteria.sales_owned:
            doc.add(loc, f"'{target}' is owned by Sales; the connector never moves anyone into it",
                    "move back to a marketing stage such as lead")  # fmt: skip
        above = [stage for stage in rule.stages if stage in rank and rank[stage] <= rank[target]]
        if above:
            doc.add(
                loc,
                f"'{target}' is not below {', '.join(above)}, so it is not a backward move",
                "name a stage lower than every stage in this rule's stages",
            )
    for index, disqualifier in enumerate(criteria.disqualifiers):
        if not disqualifier.move_stage_back:
            continue
        loc = ("disqualifiers", index, "move_stage_back")
        if not criteria.allow_backward_moves:
            doc.add(
                loc,
                f"disqualifier '{disqualifier.name}' moves the stage back but {switch} is false",
                f"set {switch}: true at the top level to allow it, or remove move_stage_back",
            )
        if disqualifier.cap in criteria.sales_owned:
            doc.add(loc, f"the cap '{disqualifier.cap}' is owned by Sales; nobody is moved back into it",
                    "cap at a marketing stage such as lead, or remove move_stage_back")  # fmt: skip
    if criteria.allow_backward_moves and not criteria.moves_back:
        doc.add(
            (switch,),
            f"{switch} is true but no recycle rule sets move_stage_to and no disqualifier sets "
            "move_stage_back, so no stage would ever move back",
            "add move_stage_to to a recycle rule (or move_stage_back to a disqualifier), or remove it",
        )


def _check_acceptance(doc: Document, criteria: Criteria) -> None:
    for index, status in enumerate(criteria.acceptance.lead_statuses):
        require_known(
            doc, ("acceptance", "lead_statuses", index), status, criteria.lead_statuses, "lead status"
        )
    for index, activity_type in enumerate(criteria.acceptance.activity_types):
        require_known(
            doc,
            ("acceptance", "activity_types", index),
            activity_type,
            sorted(criteria.activity_types),
            "activity type",
        )


def _check_recycle(doc: Document, criteria: Criteria, person_fields: Mapping[str, str] | None) -> None:
    require_unique(doc, ("recycle",), [r.name for r in criteria.recycle], "recycle rule name")
    scope = condition_scope(criteria, person_fields, recycle=True)
    for index, rule in enumerate(criteria.recycle):
        loc: Loc = ("recycle", index)
        for position, stage in enumerate(rule.stages):
            require_known(doc, (*loc, "stages", position), stage, criteria.stages, "stage")
            if stage in criteria.sales_owned:
                doc.add(
                    (*loc, "stages", position),
                    f"'{stage}' is owned by Sales; the connector never recycles it",
                    "recycle hand-off stages such as mql",
                )
        _check_status(doc, (*loc, "lead_status"), rule.lead_status, criteria)
        check_when(doc, (*loc, "when"), rule.when, scope)


def _check_stages(doc: Document, criteria: Criteria) -> None:
    require_unique(doc, ("stages",), criteria.stages, "stage")
    require_unique(doc, ("lead_statuses",), criteria.lead_statuses, "lead status")
    for index, stage in enumerate(criteria.sales_owned):
        require_known(doc, ("sales_owned", index), stage, criteria.stages, "stage")
    require_known(doc, ("default_stage",), criteria.default_stage, criteria.stages, "stage")


def _check_status(doc: Document, loc: Loc, status: str | None, criteria: Criteria) -> None:
    if status is not None:
        require_known(doc, loc, status, criteria.lead_statuses, "lead status")


def _check_signals(doc: Document, criteria: Criteria) -> None:
    channels = sorted({spec.channel for spec in criteria.activity_types.values()})
    for name, signal in criteria.signals.items():
        loc: Loc = ("signals", name)
        _check_signal_name(doc, loc, name)
        _check_filter(doc, loc, signal, criteria, channels)
        if signal.anchor is not None:
            _check_filter(doc, (*loc, "anchor"), signal.anchor, criteria, channels)
        _check_kind_parameters(doc, loc, signal)
        for key in ("points", "caps"):
            for activity_type in getattr(signal, key):
                require_known(
                    doc, (*loc, key, activity_type), activity_type, sorted(criteria.activity_types),
                    "activity type", key=True,
                )  # fmt: skip
        for activity_type in signal.caps:
            if activity_type in criteria.activity_types and activity_type not in signal.points:
                doc.add(
                    (*loc, "caps", activity_type),
                    f"cap for '{activity_type}', which earns no points",
                    "add it to points or remove the cap",
                    key=True,
                )


def _check_filter(
    doc: Document, loc: Loc, spec: ActivityFilter, criteria: Criteria, channels: Sequence[str]
) -> None:
    for index, activity_type in enumerate(spec.types):
        require_known(
            doc, (*loc, "types", index), activity_type, sorted(criteria.activity_types), "activity type"
        )
    for index, channel in enumerate(spec.channels):
        require_known(doc, (*loc, "channels", index), channel, channels, "channel")
    for key, patterns in (("url_patterns", spec.url_patterns), ("name_patterns", spec.name_patterns)):
        for index, pattern in enumerate(patterns):
            _check_python_regex(doc, (*loc, key, index), pattern)


_KIND_KEYS = frozenset(key for keys in SIGNAL_KIND_PARAMETERS.values() for key in keys)


def _check_kind_parameters(doc: Document, loc: Loc, signal: object) -> None:
    """Each kind's own keys are required where needed and refused where they would be ignored."""
    kind = str(getattr(signal, "kind", ""))
    allowed = SIGNAL_KIND_PARAMETERS.get(kind, frozenset())
    set_keys = {key for key in _KIND_KEYS if _is_set(getattr(signal, key, None))}
    for key in sorted(set_keys - allowed):
        users = sorted(k for k, keys in SIGNAL_KIND_PARAMETERS.items() if key in keys)
        doc.add(
            (*loc, key),
            f"'{key}' does nothing for kind {kind}",
            f"it is for kind {' or '.join(users)}",
            key=True,
        )
    for key in sorted(REQUIRED_KIND_PARAMETERS.get(kind, frozenset()) - set_keys):
        doc.add(loc, f"kind {kind} needs '{key}'", _KIND_HINTS.get(key, ""), key=True)


_KIND_HINTS = {
    "within_days": "e.g. within_days: 3 (came back at most 3 days later)",
    "span_days": "e.g. span_days: 4 (3 active days out of any 4)",
    "points": "e.g. points: {page_view: 1, form_submission: 10}",
}


def _is_set(value: object) -> bool:
    return value is not None and value != {} and value != []


def _check_signal_name(doc: Document, loc: Loc, name: str) -> None:
    if name in RESERVED_NAMES:
        doc.add(
            loc,
            f"signal name '{name}' is reserved",
            "conditions read it as something else; rename the signal",
            key=True,
        )
    elif not _IDENTIFIER.match(name) or name in _CEL_RESERVED:
        doc.add(
            loc,
            f"signal name '{name}' cannot be used in a condition",
            "use letters, digits and underscores, starting with a letter (e.g. pricing_views_30d)",
            key=True,
        )


def _check_python_regex(doc: Document, loc: Loc, pattern: str) -> None:
    """Signal patterns run in Python (`re.search` on the URL or name), so compile them with `re`."""
    try:
        re.compile(pattern)
    except re.error as exc:
        position = doc.position_in_scalar(loc, exc.pos)
        hint = "escape special characters with a backslash, e.g. '/pricing\\?plan='"
        doc.issues.append(doc.issue(loc, f"invalid regex: {exc.msg}", hint, position=position))


def _check_fit(doc: Document, criteria: Criteria, person_fields: Mapping[str, str] | None) -> None:
    if not criteria.fit.grades:
        doc.add(("fit", "grades"), "no grades declared", "add at least one, e.g. {A: 70, B: 40, C: -1000}")
    require_unique(doc, ("fit", "rules"), [r.name for r in criteria.fit.rules], "fit rule name")
    scope = condition_scope(criteria, person_fields, reads_fit=False)
    for index, rule in enumerate(criteria.fit.rules):
        check_when(doc, ("fit", "rules", index, "when"), rule.when, scope)


def stages_in_use(criteria: Criteria) -> list[str]:
    """Canonical stages a person can be in, which every CRM mapping must therefore translate."""
    used = [
        criteria.default_stage,
        *criteria.sales_owned,
        *(r.stage for r in criteria.rules),
        *(d.cap for d in criteria.disqualifiers),
        *(r.move_stage_to for r in criteria.recycle if r.move_stage_to),
    ]
    return [stage for stage in dict.fromkeys(used) if stage in criteria.stages]


def statuses_in_use(criteria: Criteria) -> list[str]:
    used = [r.lead_status for r in criteria.rules] + [d.lead_status for d in criteria.disqualifiers]
    used += [r.lead_status for r in criteria.recycle] + list(criteria.acceptance.lead_statuses)
    return [s for s in dict.fromkeys(used) if s is not None and s in criteria.lead_statuses]


# --------------------------------------------------------------------------- hubspot.yaml


def check_hubspot(doc: Document, hubspot: HubSpotMapping, criteria: Criteria | None) -> None:
    """Owned properties, tier-dependent sources, and translations of every canonical value."""
    _check_writes(doc, hubspot)
    for name in hubspot.fields:
        if name in DERIVED_PERSON_FIELDS:
            doc.add(
                ("fields", name), f"'{name}' is derived from the email address", "remove this entry", key=True
            )
    if hubspot.activities.events.enabled and hubspot.tier != "enterprise":
        doc.add(
            ("activities", "events", "enabled"),
            f"the Events API needs Enterprise, but tier is {hubspot.tier}",
            "set activities.events.enabled: false or tier: enterprise",
        )
    if criteria is None:
        return
    _check_value_map(
        doc, ("stage", "values"), hubspot.stage.values, criteria.stages, stages_in_use(criteria), "stage"
    )
    if hubspot.lead_status is not None:
        statuses = criteria.lead_statuses
        _check_value_map(
            doc,
            ("lead_status", "values"),
            hubspot.lead_status.values,
            statuses,
            statuses_in_use(criteria),
            "lead status",
        )
    _check_activity_types(doc, hubspot, criteria)


def _check_writes(doc: Document, hubspot: HubSpotMapping) -> None:
    owned = [hubspot.stage.property]
    if hubspot.lead_status is not None:
        owned.append(hubspot.lead_status.property)
    if hubspot.owner is not None:
        owned.append(hubspot.owner.property)
    for extra in (hubspot.stage_reason, hubspot.stage_date):
        if extra is not None:
            owned.append(extra.property)
    for index, prop in enumerate(hubspot.writes):
        if prop not in owned:
            doc.add(
                ("writes", index),
                f"the connector does not own '{prop}' and never writes it",
                known_values_hint(
                    prop, owned, "writable properties (stage, lead_status, owner, stage_reason, stage_date)"
                ),
            )
    for key, extra in (("stage_reason", hubspot.stage_reason), ("stage_date", hubspot.stage_date)):
        if extra is not None and extra.property not in hubspot.writes:
            doc.add(
                (key, "property"),
                f"'{extra.property}' is not listed under writes, so it would never be written",
                f"add {extra.property} to writes, or remove {key}",
            )
    if hubspot.stage.property not in hubspot.writes:
        doc.add(("writes",), f"writes must include the stage property '{hubspot.stage.property}'")


def _check_value_map(
    doc: Document,
    loc: Loc,
    values: Mapping[str, str],
    canonical: Sequence[str],
    used: Sequence[str],
    what: str,
) -> None:
    """Keys are canonical names; every canonical value the criteria can produce has a translation."""
    for name in values:
        require_known(doc, (*loc, name), name, canonical, what, key=True)
    missing = [name for name in used if name not in values]
    if missing:
        doc.add(
            loc,
            f"criteria.yaml uses {what}s this file does not map: {', '.join(missing)}",
            "add " + ", ".join(f"{name}: <CRM value>" for name in missing),
        )


def _check_activity_types(doc: Document, hubspot: HubSpotMapping, criteria: Criteria) -> None:
    known = sorted(criteria.activity_types)
    activities = hubspot.activities
    for name, event in activities.events.types.items():
        require_known(
            doc, ("activities", "events", "types", name, "type"), event.type, known, "activity type"
        )
    for index, engagement in enumerate(activities.engagements):
        require_known(
            doc, ("activities", "engagements", index, "type"), engagement.type, known, "activity type"
        )
    for index, date_property in enumerate(activities.date_properties):
        require_known(
            doc, ("activities", "date_properties", index, "type"), date_property.type, known, "activity type"
        )
    for index, history in enumerate(activities.history):
        require_known(doc, ("activities", "history", index, "type"), history.type, known, "activity type")


# --------------------------------------------------------------------------- salesforce.yaml


def check_salesforce(
    doc: Document,
    salesforce: SalesforceMapping,
    criteria: Criteria | None,
    other_fields: Mapping[str, str] | None = None,
) -> None:
    """Owned fields per object, translations of every canonical value, known activity types.

    `other_fields` is the person field catalogue of the other CRM file (hubspot.yaml): a field both
    files map must have one type, or conditions would read it differently per CRM.
    """
    for obj_name, obj in salesforce.objects.items():
        loc: Loc = ("objects", obj_name)
        owned = [obj.stage.field]
        for extra in (obj.lead_status.field if obj.lead_status else None, obj.mql_date, obj.mql_reason):
            if extra:
                owned.append(extra)
        if obj.owner is not None:
            owned.append(obj.owner.field)
        for index, name in enumerate(obj.writes):
            if name not in owned:
                doc.add(
                    (*loc, "writes", index),
                    f"the connector does not own '{name}' on {obj_name} and never writes it",
                    known_values_hint(
                        name, owned, "writable fields (stage, lead_status, owner, mql_date, mql_reason)"
                    ),
                )
        if obj.writes and obj.stage.field not in obj.writes:
            doc.add((*loc, "writes"), f"writes must include the stage field '{obj.stage.field}'")
        for name, spec in obj.fields.items():
            if name in DERIVED_PERSON_FIELDS:
                doc.add(
                    (*loc, "fields", name),
                    f"'{name}' is derived from the email address",
                    "remove this entry",
                    key=True,
                )
            if other_fields is not None and name in other_fields and other_fields[name] != spec.type:
                doc.add(
                    (*loc, "fields", name, "type"),
                    f"'{name}' is {spec.type} here but {other_fields[name]} in hubspot.yaml",
                    "use one type for a person field in every CRM file",
                )
        if criteria is None:
            continue
        _check_value_map(
            doc,
            (*loc, "stage", "values"),
            obj.stage.values,
            criteria.stages,
            stages_in_use(criteria),
            "stage",
        )
        if obj.lead_status is not None:
            _check_value_map(
                doc,
                (*loc, "lead_status", "values"),
                obj.lead_status.values,
                criteria.lead_statuses,
                statuses_in_use(criteria),
                "lead status",
            )
    if criteria is None:
        return
    known = sorted(criteria.activity_types)
    activities = salesforce.activities
    for key, sources in (("tasks", activities.tasks), ("events", activities.events)):
        for index, source in enumerate(sources):
            require_known(doc, ("activities", key, index, "type"), source.type, known, "activity type")
    for index, campaign in enumerate(activities.campaign_members):
        require_known(
            doc, ("activities", "campaign_members", index, "type"), campaign.type, known, "activity type"
        )


# --------------------------------------------------------------------------- routing.yaml


def check_routing(
    doc: Document, routing: Routing, criteria: Criteria | None, person_fields: Mapping[str, str] | None
) -> None:
    """Reps, pools and rules refer to each other, to canonical stages and to person fields."""
    reps = sorted(routing.reps)
    for name, rep in routing.reps.items():
        if not (rep.hubspot_owner_id or rep.salesforce_user_id):
            doc.add(
                ("reps", name),
                f"rep '{name}' has no CRM id",
                "add hubspot_owner_id and/or salesforce_user_id",
                key=True,
            )
        sf_id = rep.salesforce_user_id
        if sf_id is not None and not (len(sf_id) in (15, 18) and sf_id[:3] in ("005", "00G")):
            doc.add(
                ("reps", name, "salesforce_user_id"),
                f"'{sf_id}' is not a Salesforce User or Queue id",
                "use the 18-character id of a User (005...) or a Queue (00G...)",
            )
    for pool_name, pool in routing.pools.items():
        _check_pool(doc, pool_name, pool, reps)
    require_known(doc, ("fallback",), routing.fallback, reps, "rep")
    _check_timezone(doc, routing.timezone)
    require_unique(doc, ("rules",), [r.name for r in routing.rules], "rule name")
    scope = condition_scope(criteria, person_fields) if criteria is not None else None
    for index, rule in enumerate(routing.rules):
        loc: Loc = ("rules", index)
        _check_rule_kind(doc, loc, rule, criteria, person_fields)
        if rule.pool is not None:
            require_known(doc, (*loc, "pool"), rule.pool, sorted(routing.pools), "pool")
        for field, accepted in rule.match.items():
            if person_fields is not None:
                require_known(
                    doc, (*loc, "match", field), field, sorted(person_fields), "person field", key=True
                )
            if isinstance(accepted, Band):
                _check_band(doc, (*loc, "match", field), accepted)
        if rule.when is not None:
            check_when(doc, (*loc, "when"), rule.when, scope)
    if criteria is not None:
        for index, stage in enumerate(routing.handoff_stages):
            require_known(doc, ("handoff_stages", index), stage, criteria.stages, "stage")
    _check_handoff(doc, routing, person_fields)


def check_handoff_time(doc: Document, routing: Routing, writes: Mapping[str, set[str]]) -> None:
    """A CRM property for the hand-off time must be one the CRM's mapping lets the connector write."""
    record_time = routing.handoff.record_time
    for key, prop in (
        ("hubspot_property", record_time.hubspot_property),
        ("salesforce_field", record_time.salesforce_field),
    ):
        if prop is not None and key in writes and prop not in writes[key]:
            crm_file = "hubspot.yaml" if key == "hubspot_property" else "salesforce.yaml"
            doc.add(
                ("handoff", "record_time", key),
                f"'{prop}' is not under `writes:` in {crm_file}, so the hand-off time would never be written",
                f"add {prop} to `writes:` in {crm_file} (create the datetime property/field first)",
            )


def _check_handoff(doc: Document, routing: Routing, person_fields: Mapping[str, str] | None) -> None:
    """The hand-off section: a real time zone, subject placeholders that exist."""
    settings = routing.handoff
    try:
        ZoneInfo(settings.business_hours.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        doc.add(
            ("handoff", "business_hours", "timezone"),
            f"unknown time zone '{settings.business_hours.timezone}'",
            "use an IANA name such as Europe/Berlin or America/New_York",
        )
    if person_fields is None:
        return
    known = sorted({*person_fields, *DERIVED_PERSON_FIELDS, *SUBJECT_NAMES})
    for name in template_names(settings.task.subject):
        if name not in known:
            doc.add(
                ("handoff", "task", "subject"),
                f"unknown placeholder '{{{name}}}' in the task subject",
                known_values_hint(name, known, "placeholders (person fields, email, stage, owner)"),
            )


def _check_pool(doc: Document, pool_name: str, pool: Pool, reps: list[str]) -> None:
    """Members are reps; weights and caps name members; weights only on a weighted pool."""
    loc: Loc = ("pools", pool_name)
    for index, member in enumerate(pool.members):
        require_known(doc, (*loc, "members", index), member, reps, "rep")
    require_unique(doc, (*loc, "members"), pool.members, "pool member")
    for section in ("weights", "caps"):
        values: dict[str, int] = getattr(pool, section)
        for member, value in values.items():
            require_known(
                doc, (*loc, section, member), member, pool.members, f"member of {pool_name}", key=True
            )
            if value < (1 if section == "weights" else 0):
                least = "a whole number of 1 or more" if section == "weights" else "0 or more"
                doc.add((*loc, section, member), f"{section[:-1]} {value} for {member}", f"use {least}")
    if pool.weights and pool.strategy != "weighted":
        doc.add(
            (*loc, "weights"),
            f"pool {pool_name} has weights but strategy {pool.strategy}",
            "set strategy: weighted, or remove weights",
            key=True,
        )


def _check_band(doc: Document, loc: Loc, band: Band) -> None:
    if band.min is None and band.max is None:
        doc.add(loc, "an empty band matches everyone", "give min and/or max, e.g. {min: 200, max: 999}")
    elif band.min is not None and band.max is not None and band.min > band.max:
        doc.add(loc, f"band min {band.min:g} is above max {band.max:g}", "swap them, or fix the bound")


def _check_rule_kind(
    doc: Document,
    loc: Loc,
    rule: RoutingRule,
    criteria: Criteria | None,
    person_fields: Mapping[str, str] | None,
) -> None:
    """A match rule needs a pool; an account-owner rule needs its owner field and free-mail list."""
    if rule.kind == "match":
        if rule.pool is None:
            doc.add(loc, f"rule {rule.name} has no pool", "add pool: <a pool name from pools>")
        return
    if rule.match:
        doc.add(
            (*loc, "match"), "account_owner rules do not take match", "use when, or a separate rule", key=True
        )
    if rule.owner_field is None and not rule.match_domain:
        doc.add(loc, f"rule {rule.name} can never match", "set owner_field, or match_domain: true")
    if person_fields is not None and rule.owner_field is not None:
        require_known(doc, (*loc, "owner_field"), rule.owner_field, sorted(person_fields), "person field")
    if criteria is not None and rule.match_domain and rule.free_mail_list not in criteria.lists:
        doc.add(
            (*loc, "free_mail_list"),
            f"criteria.yaml has no list '{rule.free_mail_list}' of free-mail domains",
            "add it under lists: in criteria.yaml, name another list, or set match_domain: false",
        )


def _check_timezone(doc: Document, name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        doc.add(("timezone",), f"unknown timezone '{name}'", "use an IANA name such as UTC or Europe/Berlin")
