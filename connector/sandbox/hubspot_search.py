"""CRM search semantics of the HubSpot emulator: request validation, filters, sort and paging limits.

Pure functions over plain dicts so the rules can be read (and tested) apart from HTTP. The rules are
HubSpot's documented ones (api-facts §1.2, HS-SEARCH):

* filters inside a group are ANDed, groups are ORed; at most 5 groups, 6 filters per group and 18
  filters in total, else a VALIDATION_ERROR;
* string values compare case-insensitively, enumeration values case-sensitively; `IN`/`NOT_IN` on
  strings only match lowercase values (HubSpot lowercases the stored value, not yours);
* datetime properties compare as instants; the filter value is epoch milliseconds (or ISO-8601);
* one sort at most; without one, results come oldest first (creation date, then id);
* `limit` defaults to 10 and may not exceed 200; `after` is an integer offset, and paging at or past
  10,000 results is a 400 ("Attempting to page beyond 10,000 will result in a 400 error").
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from connector.sandbox.hubspot_store import parse_hs_datetime

MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS_TOTAL = 18
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
MAX_RESULTS = 10_000
MAX_QUERY_LENGTH = 3000

OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
_NEEDS_VALUE = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
)
_NEEDS_VALUES = frozenset({"IN", "NOT_IN"})

Kind = Literal["datetime", "date", "number", "bool", "enumeration", "string"]
Props = Mapping[str, str | None]


class SearchError(ValueError):
    """The request breaks a documented search rule; the emulator answers 400 VALIDATION_ERROR."""


@dataclass(frozen=True)
class Filter:
    property_name: str
    operator: str
    value: str | None = None
    high_value: str | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sort:
    property_name: str
    descending: bool = False


@dataclass(frozen=True)
class SearchRequest:
    groups: tuple[tuple[Filter, ...], ...]
    sort: Sort | None
    properties: tuple[str, ...]
    limit: int
    offset: int
    query: str | None


def parse_search_request(body: Mapping[str, Any]) -> SearchRequest:
    """Validate a `PublicObjectSearchRequest` body against the documented limits."""
    groups = tuple(_parse_group(g) for g in _list(body, "filterGroups"))
    _check_filter_counts(groups)
    query = body.get("query")
    if query is not None and (not isinstance(query, str) or len(query) > MAX_QUERY_LENGTH):
        raise SearchError(f"query must be a string of at most {MAX_QUERY_LENGTH} characters")
    return SearchRequest(
        groups=groups,
        sort=_parse_sorts(_list(body, "sorts")),
        properties=tuple(str(p) for p in _list(body, "properties")),
        limit=_parse_limit(body.get("limit")),
        offset=_parse_after(body.get("after")),
        query=query or None,
    )


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SearchError(f"{key} must be an array")
    return value


def _parse_group(group: Any) -> tuple[Filter, ...]:
    if not isinstance(group, dict) or not isinstance(group.get("filters"), list):
        raise SearchError("each filterGroup must be an object with a filters array")
    return tuple(_parse_filter(f) for f in group["filters"])


def _parse_filter(raw: Any) -> Filter:
    if not isinstance(raw, dict) or not raw.get("propertyName"):
        raise SearchError("each filter needs a propertyName")
    operator = raw.get("operator", "EQ")
    if operator not in OPERATORS:
        raise SearchError(f"Unknown operator {operator!r}; expected one of {sorted(OPERATORS)}")
    found = Filter(
        property_name=str(raw["propertyName"]),
        operator=operator,
        value=None if raw.get("value") is None else str(raw["value"]),
        high_value=None if raw.get("highValue") is None else str(raw["highValue"]),
        values=tuple(str(v) for v in raw.get("values") or ()),
    )
    _check_filter_operands(found)
    return found


def _check_filter_operands(found: Filter) -> None:
    if found.operator in _NEEDS_VALUE and found.value is None:
        raise SearchError(f"operator {found.operator} on {found.property_name} requires a value")
    if found.operator == "BETWEEN" and found.high_value is None:
        raise SearchError(f"operator BETWEEN on {found.property_name} requires value and highValue")
    if found.operator in _NEEDS_VALUES and not found.values:
        raise SearchError(f"operator {found.operator} on {found.property_name} requires values")


def _check_filter_counts(groups: Sequence[Sequence[Filter]]) -> None:
    if len(groups) > MAX_FILTER_GROUPS:
        raise SearchError(f"Too many filter groups: {len(groups)}; the maximum is {MAX_FILTER_GROUPS}")
    for group in groups:
        if len(group) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in a group: {len(group)}; the maximum is {MAX_FILTERS_PER_GROUP}"
            )
    total = sum(len(g) for g in groups)
    if total > MAX_FILTERS_TOTAL:
        raise SearchError(f"Too many filters: {total}; the maximum across all groups is {MAX_FILTERS_TOTAL}")


def _parse_sorts(sorts: list[Any]) -> Sort | None:
    """One sort at most. The API takes `{"propertyName", "direction"}` objects (the spec and the SDK
    type `sorts` as strings; a bare property name is accepted here as ascending)."""
    if len(sorts) > 1:
        raise SearchError("Only one sorting rule can be applied to any search")
    if not sorts:
        return None
    raw = sorts[0]
    if isinstance(raw, str):
        return Sort(raw)
    if not isinstance(raw, dict) or not raw.get("propertyName"):
        raise SearchError("a sort needs a propertyName")
    direction = raw.get("direction", "ASCENDING")
    if direction not in ("ASCENDING", "DESCENDING"):
        raise SearchError(f"sort direction must be ASCENDING or DESCENDING, not {direction!r}")
    return Sort(str(raw["propertyName"]), descending=direction == "DESCENDING")


def _parse_limit(raw: Any) -> int:
    limit = DEFAULT_LIMIT if raw is None else _int(raw, "limit")
    if limit < 0 or limit > MAX_LIMIT:
        raise SearchError(f"limit must be between 0 and {MAX_LIMIT}, got {limit}")
    return limit


def _parse_after(raw: Any) -> int:
    offset = 0 if raw in (None, "") else _int(raw, "after")
    if offset < 0:
        raise SearchError("after must not be negative")
    if offset >= MAX_RESULTS:
        raise SearchError(
            f"Paging beyond {MAX_RESULTS:,} results is not supported (after={offset}); narrow the query"
        )
    return offset


def _int(raw: Any, name: str) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise SearchError(f"{name} must be an integer, got {raw!r}") from None


# --- typed comparison ---------------------------------------------------------------------------


def kind_of(definition: Mapping[str, Any] | None, name: str) -> Kind:
    """The comparison kind of a property: from its definition, else from HubSpot naming habits."""
    if definition is not None:
        type_ = definition.get("type")
        if type_ in ("datetime", "date", "number", "bool", "enumeration"):
            return type_  # type: ignore[no-any-return]
        return "string"
    if name == "hs_object_id" or name.startswith("num_"):
        return "number"
    if name.endswith(("date", "_timestamp")) or name == "hs_timestamp":
        return "datetime"
    return "string"


def instant(value: str) -> datetime:
    """A datetime or date value as a UTC instant (epoch ms, ISO-8601, or YYYY-MM-DD)."""
    parsed = parse_hs_datetime(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=1 << 18)
def _comparable(kind: Kind, value: str) -> Any:
    """`value` converted for comparison as `kind`. Pure, so memoised: a search compares every
    stored record, and a portal of 100,000 contacts repeats the same few timestamps and ids."""
    if kind in ("datetime", "date"):
        return instant(value)
    if kind == "number":
        return float(value)
    if kind == "enumeration":
        return value
    return value.casefold()


def _typed(kind: Kind, value: str, name: str) -> Any:
    """A filter operand converted for comparison; an unparsable one is the caller's 400."""
    try:
        return _comparable(kind, value)
    except ValueError:
        raise SearchError(f"{value!r} is not a valid {kind} value for {name}") from None


def _stored(kind: Kind, value: str) -> Any:
    """A stored value converted for comparison; unparsable data compares as its string."""
    try:
        return _comparable(kind, value)
    except ValueError:
        return value.casefold()


_TOKEN_SPLIT = re.compile(r"[\s@.,;:/_\-]+")


def _tokens(value: str) -> set[str]:
    lowered = value.casefold()
    return {lowered, *lowered.split(), *(t for t in _TOKEN_SPLIT.split(lowered) if t)}


def _contains_token(stored: str, token: str) -> bool:
    pattern = token.casefold()
    if "*" in pattern:
        return any(fnmatch.fnmatchcase(t, pattern) for t in _tokens(stored))
    return pattern in _tokens(stored)


def _in(kind: Kind, stored: str, values: tuple[str, ...]) -> bool:
    if kind == "string":
        # HubSpot matches IN/NOT_IN on strings against the lowercased value: uppercase never matches.
        return stored.casefold() in values
    wanted = {_stored(kind, v) for v in values}
    return _stored(kind, stored) in wanted


def filter_matches(f: Filter, props: Props, kind: Kind) -> bool:
    """Whether one record satisfies one filter.

    A record without a value matches only the negative operators (NEQ, NOT_IN, NOT_HAS_PROPERTY,
    NOT_CONTAINS_TOKEN), the way an inverted index treats a missing term.
    """
    raw = props.get(f.property_name)
    stored = None if raw in (None, "") else raw
    if f.operator == "HAS_PROPERTY":
        return stored is not None
    if f.operator == "NOT_HAS_PROPERTY":
        return stored is None
    if f.operator in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN"):
        return stored is None or not _positive(f, stored, kind)
    return stored is not None and _positive(f, stored, kind)


def _positive(f: Filter, stored: str, kind: Kind) -> bool:
    op = f.operator
    if op in ("IN", "NOT_IN"):
        return _in(kind, stored, f.values)
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        return _contains_token(stored, f.value or "")
    have = _stored(kind, stored)
    want = _typed(kind, f.value or "", f.property_name)
    if op == "BETWEEN":
        high = _typed(kind, f.high_value or "", f.property_name)
        return _safe(lambda: bool(want <= have <= high))
    return _safe(lambda: _COMPARE[op](have, want))


def _safe(check: Callable[[], bool]) -> bool:
    """Mixed-type comparisons (e.g. unparsable stored data) simply do not match."""
    try:
        return check()
    except TypeError:
        return False


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: bool(a == b),
    "NEQ": lambda a, b: bool(a == b),  # negated by the caller
    "LT": lambda a, b: bool(a < b),
    "LTE": lambda a, b: bool(a <= b),
    "GT": lambda a, b: bool(a > b),
    "GTE": lambda a, b: bool(a >= b),
}


def record_matches(groups: Sequence[Sequence[Filter]], props: Props, kinds: Callable[[str], Kind]) -> bool:
    """Groups ORed, filters ANDed; no groups at all matches everything."""
    if not groups:
        return True
    return any(all(filter_matches(f, props, kinds(f.property_name)) for f in group) for group in groups)


def compile_matcher(
    groups: Sequence[Sequence[Filter]], kinds: Callable[[str], Kind]
) -> Callable[[Props], bool]:
    """`record_matches` as one predicate, with every comparison operand converted once.

    Same semantics; a search scans every stored record, so the operand conversion and the
    per-filter dispatch are hoisted out of that loop (a 100,000-contact portal stays fast).
    """
    if not groups:
        return lambda _props: True
    compiled = [[_compile_filter(f, kinds(f.property_name)) for f in group] for group in groups]
    return lambda props: any(all(check(props) for check in group) for group in compiled)


def _compile_filter(f: Filter, kind: Kind) -> Callable[[Props], bool]:
    op = f.operator
    if op not in _COMPARE and op != "BETWEEN":
        return lambda props: filter_matches(f, props, kind)
    want = _typed(kind, f.value or "", f.property_name)
    high = _typed(kind, f.high_value or "", f.property_name) if op == "BETWEEN" else None
    compare = _COMPARE.get(op)
    name, negate = f.property_name, op == "NEQ"

    def check(props: Props) -> bool:
        raw = props.get(name)
        if raw is None or raw == "":
            return negate
        have = _stored(kind, raw)
        try:
            hit = bool(want <= have <= high) if compare is None else compare(have, want)
        except TypeError:
            hit = False
        return not hit if negate else hit

    return check


def query_matches(query: str | None, props: Props, searchable: Sequence[str]) -> bool:
    """Free-text `query`: every word must prefix a token of one of the searchable properties."""
    if not query:
        return True
    tokens: set[str] = set()
    for name in searchable:
        value = props.get(name)
        if value:
            tokens |= _tokens(value)
    return all(any(t.startswith(word) for t in tokens) for word in query.casefold().split())


def _sortable(kind: Kind, value: str) -> Any:
    converted = _stored(kind, value)
    if isinstance(converted, str) and kind in ("number", "datetime", "date"):
        return (1, converted)  # unparsable data after parsable data, never a TypeError
    return (0, converted) if kind in ("number", "datetime", "date") else converted


def order(
    records: Sequence[tuple[str, Props]],
    sort: Sort | None,
    created_property: str,
    kinds: Callable[[str], Kind],
    tie_key: Callable[[str], Any] | None = None,
) -> list[tuple[str, Props]]:
    """Records in result order: by `sort`, else by creation date; ties by id ascending (or by
    `tie_key(id)`), and records without a value for the sort property last in either direction.

    HubSpot documents no order among equal sort values; `tie_key` lets a test make it arbitrary
    (but stable across pages, as paging needs) so clients cannot come to rely on id order.
    """
    chosen = sort or Sort(created_property)
    kind = kinds(chosen.property_name)
    by_id = sorted(records, key=lambda item: int(item[0]) if item[0].isdigit() else 0)
    if tie_key is not None:
        by_id.sort(key=lambda item: tie_key(item[0]))
    with_value = [r for r in by_id if r[1].get(chosen.property_name) not in (None, "")]
    without = [r for r in by_id if r[1].get(chosen.property_name) in (None, "")]
    # sorted() is stable, also with reverse=True, so equal values keep ascending id order.
    ranked = sorted(
        with_value,
        key=lambda r: _sortable(kind, r[1].get(chosen.property_name) or ""),
        reverse=chosen.descending,
    )
    return ranked + without
