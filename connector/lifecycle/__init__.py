"""The lifecycle core: signals, fit, stage rules, recycle, gaps, simulate, routing and diff.

PURE by design (STYLE practice 9): data in, decisions out, `now` passed in. Nothing here reads the
clock, the environment, the network or a database, and nothing imports a CRM SDK or SQL, so every
decision can be replayed, explained and tested with plain values. `tests/unit` checks the import
graph stays that way.
"""

from connector.lifecycle.diff import FieldMap, plan_write
from connector.lifecycle.fit import FitResult, FitScorer, score_fit
from connector.lifecycle.gaps import Gap, GapFinder
from connector.lifecycle.identity import email_domain, normalize_email
from connector.lifecycle.routing import (
    PoolClaim,
    RoutingOutcome,
    compile_routing_conditions,
    pick_member,
    route,
    settle,
)
from connector.lifecycle.rules import CriteriaEvaluator, Handoff, Verdict
from connector.lifecycle.signals import SignalCalculator, compute_signals

__all__ = [
    "CriteriaEvaluator",
    "FieldMap",
    "FitResult",
    "FitScorer",
    "Gap",
    "GapFinder",
    "Handoff",
    "PoolClaim",
    "RoutingOutcome",
    "SignalCalculator",
    "Verdict",
    "compile_routing_conditions",
    "compute_signals",
    "email_domain",
    "normalize_email",
    "pick_member",
    "plan_write",
    "route",
    "score_fit",
    "settle",
]
