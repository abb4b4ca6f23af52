"""The SOQL subset the Salesforce emulator answers, parsed for real: tokens, grammar, evaluation.

Supported, as Salesforce documents it (SOQL and SOSL Reference, "SOQL SELECT Syntax"):

    SELECT field, ... FROM object
      [WHERE condition]            -- AND / OR / NOT, parentheses, = != <> < <= > >=,
                                   -- [NOT] IN (...), [NOT] LIKE '...', literals: 'text' (with the
                                   -- documented escapes), numbers, true/false/null, dates
                                   -- (2026-01-31) and date-times (2026-01-31T10:00:00Z, +01:00)
      [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
      [LIMIT n]

Anything else (relationship paths, aggregates, sub-queries, a stray backslash in a string, a
missing quote...) answers `MALFORMED_QUERY` with Salesforce's "ERROR at Row:1:Column:N" message,
so a client that builds queries by hand fails here like it would against a real org. Field and
object names are case-insensitive; text comparisons with `=`/`LIKE` ignore case, as in Salesforce.

The parser is the emulator's own (the subset is small), not the connector's: the connector never
parses SOQL, it builds it with `simple_salesforce.format_soql`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

Value = str | int | float | bool | date | datetime | None


class SoqlError(Exception):
    """A query Salesforce would refuse: `code` is the errorCode (MALFORMED_QUERY, INVALID_FIELD...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\d:T])
  | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
  | (?P<name>[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC"}
    | {"NULLS", "FIRST", "LAST", "LIMIT", "TRUE", "FALSE", "NULL"}
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, datetime, date, number, name, op, punct, end
    text: str
    column: int  # 1-based, as Salesforce reports it

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            if query[position] == "'":
                raise _malformed(
                    query, position + 1, "line 1:" + str(position) + " mismatched character '<EOF>'"
                )
            raise _malformed(query, position + 1, f"unexpected token: '{query[position]}'")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), position + 1))
        position = match.end()
    tokens.append(Token("end", "", len(query) + 1))
    return tokens


def unescape(raw: str, *, like: bool = False) -> str | list[tuple[str, bool]]:
    """The text of a quoted literal (quotes stripped). In LIKE mode: (char, is_wildcard) pairs.

    Salesforce's escapes are \\n \\r \\t \\b \\f \\" \\' \\\\ and \\uXXXX, plus \\_ and \\% in LIKE;
    "if you use a backslash character in any other context, an error occurs".
    """
    body = raw[1:-1]
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append((char, like and char in "%_"))
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append((_ESCAPES[nxt], False))
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", body[i + 2 : i + 6]):
            out.append((chr(int(body[i + 2 : i + 6], 16)), False))
            i += 6
        elif like and nxt in "%_":
            out.append((nxt, False))
            i += 2
        else:
            raise ValueError(
                f"Invalid string literal '{raw}'. Illegal character sequence '\\{nxt}' in string literal."
            )
    return out if like else "".join(char for char, _wild in out)


def _malformed(query: str, column: int, message: str) -> SoqlError:
    pointer = " " * (column - 1) + "^"
    return SoqlError("MALFORMED_QUERY", f"\n{query}\n{pointer}\nERROR at Row:1:Column:{column}\n{message}")


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Literal:
    kind: str  # string, datetime, date, number, boolean, null
    value: Value
    raw: str
    column: int


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    literal: Literal
    column: int


@dataclass(frozen=True)
class InList:
    field: str
    literals: tuple[Literal, ...]
    negated: bool
    column: int


@dataclass(frozen=True)
class Like:
    field: str
    pattern: re.Pattern[str]
    negated: bool
    column: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND, OR
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    part: Condition


Condition = Compare | InList | Like | BoolOp | Negation


@dataclass(frozen=True)
class OrderItem:
    field: str
    descending: bool
    nulls_last: bool
    column: int


@dataclass(frozen=True)
class FieldRef:
    name: str
    column: int


@dataclass(frozen=True)
class Query:
    text: str
    fields: tuple[FieldRef, ...]
    sobject: str
    sobject_column: int
    where: Condition | None
    order: tuple[OrderItem, ...]
    limit: int | None


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, token: Token | None = None, message: str | None = None) -> SoqlError:
        token = token or self.tok
        text = "<EOF>" if token.kind == "end" else token.text
        return _malformed(self.query, token.column, message or f"unexpected token: '{text}'")

    def keyword(self, word: str) -> bool:
        if self.tok.kind == "name" and self.tok.upper == word:
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str) -> Token:
        token = self.tok
        if not self.keyword(word):
            raise self.error(token)
        return token

    def expect_punct(self, char: str) -> Token:
        token = self.tok
        if token.kind != "punct" or token.text != char:
            raise self.error(token)
        return self.advance()

    def name(self, what: str) -> FieldRef:
        token = self.tok
        if token.kind != "name" or token.upper in _KEYWORDS:
            raise self.error(token)
        if "." in token.text:
            raise self.error(
                token, f"relationship paths are not supported by the sandbox ({what} {token.text})"
            )
        self.advance()
        return FieldRef(token.text, token.column)

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        fields = [self.name("field")]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.advance()
            fields.append(self.name("field"))
        self.expect_keyword("FROM")
        sobject = self.name("object")
        where = None
        if self.keyword("WHERE"):
            where = self.condition()
        order: list[OrderItem] = []
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            order.append(self.order_item())
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                order.append(self.order_item())
        limit = None
        if self.keyword("LIMIT"):
            token = self.tok
            if token.kind != "number" or not token.text.isdigit():
                raise self.error(token)
            self.advance()
            limit = int(token.text)
        if self.tok.kind != "end":
            raise self.error()
        return Query(self.query, tuple(fields), sobject.name, sobject.column, where, tuple(order), limit)

    def order_item(self) -> OrderItem:
        ref = self.name("field")
        descending = False
        if self.keyword("DESC"):
            descending = True
        else:
            self.keyword("ASC")
        nulls_last = descending
        if self.keyword("NULLS"):
            if self.keyword("LAST"):
                nulls_last = True
            else:
                self.expect_keyword("FIRST")
                nulls_last = False
        return OrderItem(ref.name, descending, nulls_last, ref.column)

    def condition(self) -> Condition:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else BoolOp("OR", tuple(parts))

    def conjunction(self) -> Condition:
        parts = [self.negation()]
        while self.keyword("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def negation(self) -> Condition:
        if self.keyword("NOT"):
            return Negation(self.negation())
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        ref = self.name("field")
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect_punct("(")
            literals = [self.literal()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                literals.append(self.literal())
            self.expect_punct(")")
            return InList(ref.name, tuple(literals), negated, ref.column)
        if self.keyword("LIKE"):
            token = self.tok
            if token.kind != "string":
                raise self.error(token)
            self.advance()
            try:
                pairs = unescape(token.text, like=True)
            except ValueError as exc:
                raise self.error(token, str(exc)) from None
            assert isinstance(pairs, list)
            regex = "".join((".*" if c == "%" else ".") if wild else re.escape(c) for c, wild in pairs)
            return Like(ref.name, re.compile(regex + r"\Z", re.IGNORECASE | re.DOTALL), negated, ref.column)
        if negated:
            raise self.error()
        token = self.tok
        if token.kind != "op":
            raise self.error(token)
        self.advance()
        op = "!=" if token.text == "<>" else token.text
        return Compare(ref.name, op, self.literal(), ref.column)

    def literal(self) -> Literal:
        token = self.advance()
        if token.kind == "string":
            try:
                text = unescape(token.text)
            except ValueError as exc:
                raise self.error(token, str(exc)) from None
            assert isinstance(text, str)
            return Literal("string", text, token.text, token.column)
        if token.kind == "number":
            number = float(token.text) if "." in token.text else int(token.text)
            return Literal("number", number, token.text, token.column)
        if token.kind == "datetime":
            return Literal("datetime", parse_datetime(token.text), token.text, token.column)
        if token.kind == "date":
            try:
                return Literal("date", date.fromisoformat(token.text), token.text, token.column)
            except ValueError:
                raise self.error(token) from None
        if token.kind == "name" and token.upper in ("TRUE", "FALSE"):
            return Literal("boolean", token.upper == "TRUE", token.text, token.column)
        if token.kind == "name" and token.upper == "NULL":
            return Literal("null", None, token.text, token.column)
        raise self.error(token)


def parse(query: str) -> Query:
    """Parse one SOQL statement of the supported subset, or raise `SoqlError(MALFORMED_QUERY)`."""
    return _Parser(query).parse()


def parse_datetime(text: str) -> datetime:
    """A SOQL/REST date-time (`2026-01-31T10:00:00.000+0000`, `...Z`, `...+01:00`) as aware UTC."""
    normal = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", normal):
        normal = normal[:-2] + ":" + normal[-2:]
    return datetime.fromisoformat(normal).astimezone(UTC)


# --------------------------------------------------------------------------- evaluation

FieldTypes = Mapping[str, str]
"""Canonical field name -> describe `type` (id, string, picklist, email, boolean, int, double,
datetime, date, reference...) for the object queried."""

_TEXT_TYPES = frozenset({"string", "picklist", "email", "phone", "url", "textarea", "combobox"})
_NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})


class Evaluator:
    """Checks a parsed query against an object's fields and filters/sorts that object's rows."""

    def __init__(self, query: Query, fields: FieldTypes) -> None:
        self.query = query
        self.types = fields
        self._canonical = {name.lower(): name for name in fields}
        self.select = [self.field(ref.name, ref.column) for ref in query.fields]
        if self.query.where is not None:
            self._check(self.query.where)
        self.order = [(self.field(o.field, o.column), o.descending, o.nulls_last) for o in query.order]

    def field(self, name: str, column: int) -> str:
        canonical = self._canonical.get(name.lower())
        if canonical is None:
            pointer = " " * (column - 1) + "^"
            raise SoqlError(
                "INVALID_FIELD",
                f"\n{self.query.text}\n{pointer}\nERROR at Row:1:Column:{column}\n"
                f"No such column '{name}' on entity '{self.query.sobject}'. If you are attempting to use "
                "a custom field, be sure to append the '__c' after the custom field name. Please reference "
                "your WSDL or the describe call for the appropriate names.",
            )
        return canonical

    def _check(self, condition: Condition) -> None:
        if isinstance(condition, BoolOp):
            for part in condition.parts:
                self._check(part)
        elif isinstance(condition, Negation):
            self._check(condition.part)
        elif isinstance(condition, Compare):
            self._check_literal(self.field(condition.field, condition.column), condition.literal)
        elif isinstance(condition, InList):
            name = self.field(condition.field, condition.column)
            for literal in condition.literals:
                self._check_literal(name, literal)
        else:
            name = self.field(condition.field, condition.column)
            if self.types[name] not in _TEXT_TYPES | {"id", "reference"}:
                raise self._type_error(name, "string", condition.column)

    def _check_literal(self, name: str, literal: Literal) -> None:
        kind = self.types[name]
        if literal.kind == "null":
            return
        expected = {
            "boolean": "boolean",
            "datetime": "datetime",
            "date": "date",
        }.get(kind, "number" if kind in _NUMBER_TYPES else "string")
        if literal.kind != expected:
            raise self._type_error(name, {"datetime": "dateTime"}.get(kind, kind), literal.column)

    def _type_error(self, name: str, kind: str, column: int) -> SoqlError:
        quoted = (
            "and should not be enclosed in quotes" if kind != "string" else "and should be enclosed in quotes"
        )
        pointer = " " * (column - 1) + "^"
        return SoqlError(
            "INVALID_FIELD",
            f"\n{self.query.text}\n{pointer}\nERROR at Row:1:Column:{column}\n"
            f"value of filter criterion for field '{name}' must be of type {kind} {quoted}",
        )

    # rows

    def run(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        where = self.query.where
        matched = [row for row in rows if where is None or self._matches(where, row)]
        for name, descending, nulls_last in reversed(self.order):
            present = [r for r in matched if r.get(name) is not None]
            absent = [r for r in matched if r.get(name) is None]
            present.sort(key=functools.partial(self._row_key, name), reverse=descending)
            matched = present + absent if nulls_last else absent + present
        if self.query.limit is not None:
            matched = matched[: self.query.limit]
        return matched

    def _matches(self, condition: Condition, row: Mapping[str, Any]) -> bool:
        if isinstance(condition, BoolOp):
            test: Callable[[Any], bool] = any if condition.op == "OR" else all
            return test(self._matches(part, row) for part in condition.parts)
        if isinstance(condition, Negation):
            return not self._matches(condition.part, row)
        if isinstance(condition, Like):
            name = self.field(condition.field, condition.column)
            value = row.get(name)
            found = value is not None and condition.pattern.match(str(value)) is not None
            return found != condition.negated
        if isinstance(condition, InList):
            name = self.field(condition.field, condition.column)
            value = self._typed(name, row.get(name))
            found = any(self._equal(name, value, lit.value) for lit in condition.literals)
            return found != condition.negated
        name = self.field(condition.field, condition.column)
        value = self._typed(name, row.get(name))
        wanted = condition.literal.value
        if condition.op == "=":
            return self._equal(name, value, wanted)
        if condition.op == "!=":
            return not self._equal(name, value, wanted)
        if value is None or wanted is None:
            return False
        left, right = self._sort_key(name, value), self._sort_key(name, wanted)
        return bool(
            {
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[condition.op]
        )

    def _row_key(self, name: str, row: Mapping[str, Any]) -> Any:
        return self._sort_key(name, row.get(name))

    def _typed(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        kind = self.types[name]
        if kind == "datetime" and isinstance(value, str):
            return parse_datetime(value)
        if kind == "date" and isinstance(value, str):
            return date.fromisoformat(value[:10])
        return value

    def _equal(self, name: str, value: Any, wanted: Value) -> bool:
        if value is None or wanted is None:
            return value is None and wanted is None
        if self.types[name] in _TEXT_TYPES and isinstance(value, str) and isinstance(wanted, str):
            return value.casefold() == wanted.casefold()
        return bool(value == wanted)

    def _sort_key(self, name: str, value: Any) -> Any:
        value = self._typed(name, value)
        if self.types[name] in _TEXT_TYPES and isinstance(value, str):
            return value.casefold()
        return value
