"""Stage rules compiled to one Python function, for the bulk path.

Stage rules are mostly comparisons of signals and fit with literals (`pricing_views_30d >= 2 &&
fit_score >= 45`). Through CEL each costs a memo key and a dict lookup per person, several rules
per person, per criteria version in `simulate`. Here a group's rules in that plain subset become
one generated function that tests them in order with Python's own operators: a few hundred
nanoseconds for the whole group.

The subset is exactly where Python and CEL agree, given the static types of the names: names
whose type is known (signals are int or double, `fit_score` int, `fit_grade` string); int, double
and string literals without escapes; `==` `!=` between values of one kind (numbers with numbers,
strings with strings), `<` `<=` `>` `>=` between numbers; `in` a list of literals; `&&`, `||`,
and `!` before a parenthesised condition; parentheses. Within it no evaluation error is possible
(every name is present with its type, nothing overflows or divides), so CEL's error-absorbing
`&&`/`||` and Python's short-circuit give the same answer. Anything else (person fields, lists,
functions, arithmetic) makes `compile_condition` return None, and that rule keeps the CEL path.
A property test holds compiled rules to CEL's answers on random conditions and values.

The generated source is built only from tokens this module recognised: names are checked against
the known names and emitted as subscript keys via `repr`, literals are re-rendered with `repr`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<double>\d+\.\d+)
      | (?P<int>\d+)
      | (?P<string>"[^"\\\n]*"|'[^'\\\n]*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|\[|\]|,|-)
    )""",
    re.VERBOSE,
)
_MAX_DIGITS = 15
"""Longer numeric literals are left to CEL (beyond 2**53 ints and doubles stop being exact)."""
_NUMBER = {"int", "double"}
_RESERVED = {"in", "true", "false", "null"}


class _Unsupported(Exception):
    """The condition is outside the compiled subset."""


@dataclass(frozen=True)
class _Code:
    source: str
    kind: str  # "int", "double", "string", "bool" or "list:<kind>"


def _tokens(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise _Unsupported(source[position:])
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the subset, CEL's precedence: `||` < `&&` < relations."""

    def __init__(self, source: str, types: Mapping[str, str]) -> None:
        self._tokens = _tokens(source)
        self._at = 0
        self._types = types

    def parse(self) -> str:
        code = self._or()
        if self._at != len(self._tokens) or code.kind != "bool":
            raise _Unsupported("not a plain condition")
        return code.source

    def _peek(self) -> str:
        return self._tokens[self._at][1] if self._at < len(self._tokens) else ""

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self._at >= len(self._tokens):
            raise _Unsupported("unexpected end")
        token = self._tokens[self._at]
        if expected is not None and token[1] != expected:
            raise _Unsupported(f"expected {expected}")
        self._at += 1
        return token

    def _or(self) -> _Code:
        parts = [self._and()]
        while self._peek() == "||":
            self._take()
            parts.append(self._and())
        return _join(parts, " or ")

    def _and(self) -> _Code:
        parts = [self._relation()]
        while self._peek() == "&&":
            self._take()
            parts.append(self._relation())
        return _join(parts, " and ")

    def _relation(self) -> _Code:
        left = self._operand()
        operator = self._peek()
        if operator in ("==", "!=", "<", "<=", ">", ">="):
            self._take()
            right = self._operand()
            numbers = left.kind in _NUMBER and right.kind in _NUMBER
            equality = operator in ("==", "!=") and left.kind == right.kind in ("string", "bool")
            if not (numbers or equality):
                raise _Unsupported("mixed or unordered comparison")
            return _Code(f"({left.source} {operator} {right.source})", "bool")
        if operator == "in":
            self._take()
            items = self._list()
            if not items.kind.startswith("list:"):
                raise _Unsupported("in needs a list literal")
            item_kind = items.kind[5:]
            same = left.kind == item_kind or (left.kind in _NUMBER and item_kind in _NUMBER)
            if not same and item_kind != "empty":
                raise _Unsupported("in across kinds")
            return _Code(f"({left.source} in {items.source})", "bool")
        return left

    def _operand(self) -> _Code:
        kind, text = self._take()
        if text == "(":
            inner = self._or()
            self._take(")")
            return _Code(f"({inner.source})", inner.kind)
        if text == "!":
            if self._peek() != "(":
                raise _Unsupported("! only before parentheses")
            inner = self._operand()
            if inner.kind != "bool":
                raise _Unsupported("! of a non-condition")
            return _Code(f"(not {inner.source})", "bool")
        if text == "-":
            number_kind, number = self._take()
            if number_kind not in _NUMBER:
                raise _Unsupported("minus before a non-literal")
            return _literal(number_kind, "-" + number)
        if kind in _NUMBER or kind == "string":
            return _literal(kind, text)
        if kind == "name" and text in ("true", "false"):
            return _Code("True" if text == "true" else "False", "bool")
        if kind == "name" and text not in _RESERVED and text in self._types:
            return _Code(f"c[{text!r}]", self._types[text])
        raise _Unsupported(text)

    def _list(self) -> _Code:
        self._take("[")
        items: list[_Code] = []
        while self._peek() != "]":
            if items:
                self._take(",")
            kind, text = self._take()
            if text == "-":
                kind, number = self._take()
                text = "-" + number
            if kind not in _NUMBER and kind != "string":
                raise _Unsupported("list of non-literals")
            items.append(_literal(kind, text))
        self._take("]")
        kinds = {"double" if item.kind in _NUMBER else item.kind for item in items}
        if len(kinds) > 1:
            raise _Unsupported("mixed list")
        rendered = "(" + "".join(f"{item.source}, " for item in items) + ")"
        return _Code(rendered, "list:" + (kinds.pop() if kinds else "empty"))


def _literal(kind: str, text: str) -> _Code:
    if kind == "string":
        return _Code(repr(text[1:-1]), "string")
    if len(text.lstrip("-").replace(".", "")) > _MAX_DIGITS:
        raise _Unsupported("long number")
    value: float | int = float(text) if kind == "double" else int(text)
    return _Code(repr(value), kind)


def _join(parts: list[_Code], glue: str) -> _Code:
    if len(parts) == 1:
        return parts[0]
    if any(part.kind != "bool" for part in parts):
        raise _Unsupported("logic over non-conditions")
    return _Code("(" + glue.join(part.source for part in parts) + ")", "bool")


def compile_condition(source: str, types: Mapping[str, str]) -> str | None:
    """Python source for the condition over a context `c`, or None when outside the subset.

    `types` maps each name the condition may read to "int", "double" or "string".
    """
    try:
        return _Parser(source, types).parse()
    except (_Unsupported, IndexError):
        return None


FirstMatch = Callable[[Mapping[str, Any], Callable[[int, Mapping[str, Any]], bool]], int | None]


def compile_first(sources: Sequence[str], types: Mapping[str, str]) -> tuple[FirstMatch, int] | None:
    """One function returning the index of the first condition that holds, or None.

    Conditions outside the subset are asked of `fallback(index, context)` in their turn, so
    order and first-match semantics stay. Returns the function and how many conditions were
    compiled, or None when none was (the caller then keeps its own loop).
    """
    lines = ["def first(c, fallback):"]
    compiled = 0
    for index, source in enumerate(sources):
        code = compile_condition(source, types)
        if code is None:
            lines.append(f"    if fallback({index}, c): return {index}")
        else:
            compiled += 1
            lines.append(f"    if {code}: return {index}")
    lines.append("    return None")
    if not compiled:
        return None
    namespace: dict[str, Any] = {}
    # The source holds only names checked against `types` (as repr'd keys) and re-rendered literals.
    exec(compile("\n".join(lines), "<compiled stage rules>", "exec"), namespace)  # noqa: S102
    function: FirstMatch = namespace["first"]
    return function, compiled
