"""Check a CEL condition against the names a mapping declares, before anything runs on real data.

The CEL binding has no static type checker, so a condition is checked in three layers:

1. it compiles (syntax errors carry the parser's position);
2. the names it reads exist: top-level names (signals, `fit_score`, `fit_grade`, `person`,
   `lists`), `person.<field>` against the person field catalogue, `lists.<name>` against the
   declared lists, and regex literals in `.matches("...")` compile;
3. a dry run against sample contexts whose values have the declared types (zero values, typical
   values, and values taken from the condition's own literals so that `x == "CEO" && ...` also
   evaluates its right-hand side). Any evaluation error is an error the sync would hit for some
   real person; a result that is not a bool is one too.

Layer 3 is best effort (a branch no sample reaches is not evaluated), which is why layers 1-2 do
not depend on it. Problems carry an offset into the condition so the loader can point at the
exact column in the file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.mapping.expressions import (
    BUILTIN_FUNCTIONS,
    HELPER_FUNCTIONS,
    MACRO_BINDING,
    ZERO_VALUES,
    Expression,
    ExpressionError,
    compile_expression,
    expression_context,
)
from connector.model import FieldValue

FIT_NAMES = ("fit_score", "fit_grade")
RESERVED_NAMES = frozenset({*FIT_NAMES, "person", "lists"})
"""Top-level names a condition can read besides the signals; a signal may not take one of them."""

# Identifiers CEL resolves as type names (`type(x) == int`), which the binding lists as variables.
_CEL_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)
_MEMBER = re.compile(r"(?<![\w.])(person|lists)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_MATCHES_CALL = re.compile(r"\.\s*matches\s*\(\s*$")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")
_TYPICAL: dict[str, FieldValue] = {
    "string": "x",
    "number": 100,
    "bool": True,
    "datetime": "2024-01-01T00:00:00Z",
}
_MAX_LITERAL_SAMPLES = 8


@dataclass(frozen=True)
class Scope:
    """What a condition may read.

    `person_fields` is None when the CRM mapping files could not be read: person fields are then
    unknown, so field checks and the dry run are skipped rather than reporting every field.
    """

    signals: Sequence[str]
    person_fields: Mapping[str, str] | None
    lists: Mapping[str, list[str]]
    grades: Mapping[str, int]
    reads_fit: bool = True
    signal_types: Mapping[str, str] = field(default_factory=dict)
    """Signal name -> "int" or "double" (absent: int)."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Further names this kind of condition may read (recycle rules: the hand-off state), with types."""

    def names(self) -> set[str]:
        return {*self.signals, "person", "lists", *(FIT_NAMES if self.reads_fit else ()), *self.extra}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a condition. `offset` is a 0-based index into the source, if known."""

    message: str
    hint: str = ""
    offset: int | None = None


def check_condition(source: str, scope: Scope) -> list[Problem]:
    """Every problem found in `source` (empty when it is fine). Never raises for bad input."""
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        return [Problem(str(exc), _syntax_hint(str(exc)), _offset(source, exc.line, exc.column))]
    masked, literals = mask_string_literals(source)
    problems = [
        *_function_problems(expression, masked),
        *_name_problems(expression, masked, scope),
        *_member_problems(masked, scope),
        *_regex_problems(source, literals),
    ]
    if problems or scope.person_fields is None:
        return problems
    return _dry_run(expression, masked, literals, scope)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """'did you mean X?' for the closest candidate, else '' (shared with the loader's hints)."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def known_values_hint(name: str, candidates: Iterable[str], what: str) -> str:
    """'did you mean X?' plus the valid values, the hint every "unknown name" issue carries."""
    candidates = list(candidates)
    listed = ", ".join(candidates) or "none are declared"
    guess = did_you_mean(name, candidates)
    return f"{guess} {what}: {listed}" if guess else f"{what}: {listed}"


# --------------------------------------------------------------------------- names


def _name_problems(expression: Expression, masked: str, scope: Scope) -> Iterator[Problem]:
    bound = set(MACRO_BINDING.findall(masked))
    allowed = scope.names()
    for name in expression.variables():
        if name in allowed or name in bound or name in _CEL_TYPE_NAMES:
            continue
        offset = _identifier_offset(masked, name)
        if name in FIT_NAMES:
            yield Problem(
                f"fit rules cannot read {name}: they produce it", "use person fields and signals", offset
            )
            continue
        hint = known_values_hint(name, sorted(allowed), "names")
        yield Problem(f"unknown name '{name}'", hint, offset)


def _function_problems(expression: Expression, masked: str) -> Iterator[Problem]:
    known = sorted(HELPER_FUNCTIONS)
    for name in expression.functions():
        if name in BUILTIN_FUNCTIONS or name in HELPER_FUNCTIONS:
            continue
        offset = _identifier_offset(masked, name)
        if offset is None:
            match = re.search(r"\.\s*" + re.escape(name) + r"\s*\(", masked)
            offset = match.start() + 1 if match else None
        hint = known_values_hint(name, known, "helper functions besides CEL's own")
        yield Problem(f"unknown function '{name}'", hint, offset)


def _member_problems(masked: str, scope: Scope) -> Iterator[Problem]:
    for match in _MEMBER.finditer(masked):
        owner, name = match.group(1), match.group(2)
        if owner == "lists" and name not in scope.lists:
            hint = known_values_hint(name, sorted(scope.lists), "lists declared in criteria.yaml")
            yield Problem(f"unknown list 'lists.{name}'", hint, match.start(2))
        elif owner == "person" and scope.person_fields is not None and name not in scope.person_fields:
            hint = known_values_hint(
                name, sorted(scope.person_fields), "person fields (mapped in the CRM files)"
            )
            yield Problem(f"unknown person field 'person.{name}'", hint, match.start(2))


def _identifier_offset(masked: str, name: str) -> int | None:
    match = re.search(r"(?<![\w.])" + re.escape(name) + r"(?!\w)", masked)
    return match.start() if match else None


# --------------------------------------------------------------------------- regexes


def _regex_problems(source: str, literals: list[tuple[int, int]]) -> Iterator[Problem]:
    """Compile every literal pattern passed to `.matches(...)` with CEL's own regex engine."""
    for start, end in literals:
        if not _MATCHES_CALL.search(source[:start]):
            continue
        probe = f'"".matches({source[start:end]})'
        try:
            compile_expression(probe).evaluate({})
        except ExpressionError as exc:
            reason = str(exc).split("not a valid regex:", 1)[-1].strip()
            hint = "CEL regexes use RE2 syntax (no lookbehind or backreferences)"
            yield Problem(f"invalid regex in .matches(): {reason}", hint, start)


# --------------------------------------------------------------------------- dry run


def _dry_run(
    expression: Expression, masked: str, literals: list[tuple[int, int]], scope: Scope
) -> list[Problem]:
    for context in _sample_contexts(masked, _literal_values(expression.source, literals), scope):
        try:
            expression.evaluate_bool(context)
        except ExpressionError as exc:
            return [Problem(str(exc), _types_hint(masked, scope))]
    return []


def _sample_contexts(masked: str, strings: list[str], scope: Scope) -> Iterator[dict[str, Any]]:
    """Contexts with declared types and values chosen to reach both sides of && and ||."""
    fields = scope.person_fields or {}
    grades = sorted(scope.grades, key=lambda g: scope.grades[g], reverse=True) or [""]
    numbers = [int(float(n)) for n in dict.fromkeys(_NUMBER.findall(masked)) if float(n) < 2**53]
    numbers = numbers[:_MAX_LITERAL_SAMPLES]
    list_values = [values[0] for values in scope.lists.values() if values]
    yield _context(scope, fields, number=0, grade=grades[-1], string=None, flag=False)
    for grade in grades:
        yield _context(scope, fields, number=100, grade=grade, string="x", flag=True)
        yield _context(scope, fields, number=1, grade=grade, string="x", flag=False)
    # A number field may hold a fraction (CRMs send text such as "12.5"): arithmetic mixing it
    # with an int literal fails in CEL, so the dry run tries a double too.
    yield _context(scope, fields, number=100, grade=grades[0], string="x", flag=True, fraction=True)
    for text in [*strings, *list_values][: 2 * _MAX_LITERAL_SAMPLES]:
        for flag in (True, False):
            yield _context(scope, fields, number=100, grade=text, string=text, flag=flag)
    for number in numbers:
        for flag in (True, False):
            yield _context(scope, fields, number=number, grade=grades[0], string="x", flag=flag)


def _context(
    scope: Scope,
    fields: Mapping[str, str],
    *,
    number: int,
    grade: str,
    string: str | None,
    flag: bool,
    fraction: bool = False,
) -> dict[str, Any]:
    person: dict[str, FieldValue] = {}
    for name, kind in fields.items():
        if string is None:
            person[name] = ZERO_VALUES[kind]
        elif kind == "string":
            person[name] = string
        elif kind == "number":
            person[name] = number + 0.5 if fraction else number
        elif kind == "bool":
            person[name] = flag
        else:
            person[name] = _TYPICAL[kind]
    signals: dict[str, int | float] = {
        name: float(number) + 0.5 if scope.signal_types.get(name) == "double" else number
        for name in scope.signals
    }
    extra: dict[str, Any] = {}
    for name, kind in scope.extra.items():
        if kind == "bool":
            extra[name] = flag
        elif kind == "int":
            extra[name] = number
        else:
            extra[name] = grade if string is not None else ""
    return expression_context(
        signals=signals,
        fit_score=number,
        fit_grade=grade,
        person=person,
        lists=scope.lists,
        handoff=extra,
    )


def _literal_values(source: str, literals: list[tuple[int, int]]) -> list[str]:
    """The plain string literals of the condition, evaluated by CEL itself (so escapes are right)."""
    values: list[str] = []
    for start, end in literals[:_MAX_LITERAL_SAMPLES]:
        try:
            value = compile_expression(source[start:end]).evaluate({})
        except ExpressionError:
            continue
        if isinstance(value, str) and value not in values:
            values.append(value)
    return values


def _types_hint(masked: str, scope: Scope) -> str:
    """'person.title is string, fit_grade is string': the types of what the condition reads."""
    fields = scope.person_fields or {}
    types: dict[str, str] = {}
    for match in _MEMBER.finditer(masked):
        if match.group(1) == "person" and match.group(2) in fields:
            types[f"person.{match.group(2)}"] = fields[match.group(2)]
    for name in scope.signals:
        if _identifier_offset(masked, name) is not None:
            kind = scope.signal_types.get(name, "int")
            types[name] = "a decimal number" if kind == "double" else "number"
    for name, kind in scope.extra.items():
        if _identifier_offset(masked, name) is not None:
            types[name] = {"bool": "bool", "int": "number"}.get(kind, "string")
    for name, kind in (("fit_score", "number"), ("fit_grade", "string")):
        if _identifier_offset(masked, name) is not None:
            types[name] = kind
    described = ", ".join(f"{name} is {kind}" for name, kind in types.items())
    advice = (
        "CEL never converts types: compare numbers with numbers and text with quoted text, "
        "and write decimals as 2.0 when adding to a decimal"
    )
    return f"{described}; {advice}" if described else advice


# --------------------------------------------------------------------------- lexing helpers


def mask_string_literals(source: str) -> tuple[str, list[tuple[int, int]]]:
    """`source` with every string literal blanked out (same length), and the literals' spans.

    Tolerant: it only has to be right for sources CEL compiled, and must not fail on others.
    Handles '...', "...", triple quotes, and r/b prefixes (raw strings have no escapes).
    """
    chars = list(source)
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(source):
        if source[index] not in "'\"":
            index += 1
            continue
        start = index
        while start > index - 2 and start > 0 and source[start - 1] in "rRbB":
            start -= 1
        if start > 0 and (source[start - 1].isalnum() or source[start - 1] == "_"):
            start = index  # `xr"..."` is an identifier followed by a string, not a prefix
        raw = "r" in source[start:index].lower()
        end = _literal_end(source, index, raw)
        spans.append((start, end))
        for position in range(start, end):
            chars[position] = " "
        index = end
    return "".join(chars), spans


def _literal_end(source: str, quote_at: int, raw: bool) -> int:
    quote = source[quote_at] * 3 if source.startswith(source[quote_at] * 3, quote_at) else source[quote_at]
    index = quote_at + len(quote)
    while index < len(source):
        if not raw and source[index] == "\\":
            index += 2
            continue
        if source.startswith(quote, index):
            return index + len(quote)
        index += 1
    return len(source)


def _offset(source: str, line: int | None, column: int | None) -> int | None:
    """0-based index of CEL's 1-based (line, column) in `source`."""
    if column is None:
        return None
    lines = source.split("\n")
    line_index = min(max((line or 1) - 1, 0), len(lines) - 1)
    start = sum(len(text) + 1 for text in lines[:line_index])
    return min(start + column - 1, len(source))


def _syntax_hint(message: str) -> str:
    if "token recognition error at: '= '" in message or "'='" in message:
        return "compare with == (a single = is not an operator)"
    if "'and'" in message or "'or'" in message:
        return "combine conditions with && and ||"
    return 'conditions are CEL expressions, e.g. signal >= 2 && fit_grade in ["A", "B"]'
