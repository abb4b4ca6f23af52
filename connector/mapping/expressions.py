"""CEL conditions: compile once, evaluate against a context built the same way everywhere.

CEL (common-expression-language) is safe (no I/O, no loops that run forever) and fast. It has no
static type checker in this binding, so `validate` catches type errors and bad regexes by
evaluating every condition against sample contexts whose values have the declared types.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from connector.model import FieldValue

# The zero value each field type takes when the CRM has no value, so `person.title.matches(...)`
# on an empty title is simply false instead of an evaluation error.
ZERO_VALUES: dict[str, FieldValue] = {"string": "", "number": 0, "bool": False, "datetime": ""}


# Conditions are meant to be read by people; anything longer is a mistake or an attack. The CEL
# binding's parser overflows the native stack (killing the process) on inputs tens of thousands of
# characters long, so the cap is also what keeps `validate` alive on hostile files.
MAX_EXPRESSION_CHARS = 4096

# Errors the process must still see; everything else the native binding raises (including pyo3's
# PanicException, which derives from BaseException) becomes an ExpressionError.
_NOT_OURS = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}() takes text, got {type(value).__name__}")
    return value


def _lower(value: object) -> str:
    return _text(value, "lower").lower()


def _upper(value: object) -> str:
    return _text(value, "upper").upper()


def _trim(value: object) -> str:
    return _text(value, "trim").strip()


HELPER_FUNCTIONS: dict[str, Callable[[object], str]] = {
    "lower": _lower,
    "upper": _upper,
    "trim": _trim,
    "lowerAscii": _lower,
    "upperAscii": _upper,
}
"""Functions conditions may call besides CEL's own, as `lower(x)` or `x.lower()`.

The CEL binding has no case conversion, and people type "united states" as often as "United
States", so criteria need `person.country.lower()` (cel-go spells it `lowerAscii()`; both work).
They are pure, total on text, and raise on anything else, which CEL reports as an evaluation error
and `validate`'s dry run turns into a type error with a location.
"""


class _QuietHelperFailures(logging.Filter):
    """The binding logs every failing Python function before raising; the raise is what we report."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(f"function '{name}' failed" in record.getMessage() for name in HELPER_FUNCTIONS)


logging.getLogger("cel").addFilter(_QuietHelperFailures())

BUILTIN_FUNCTIONS = frozenset(
    {"contains", "endsWith", "matches", "size", "startsWith", "double", "int", "uint", "string"}
    | {"bool", "bytes", "type", "dyn", "duration", "timestamp", "has", "exists", "exists_one", "all"}
    | {"map", "filter", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear"}
    | {"getHours", "getMilliseconds", "getMinutes", "getMonth", "getSeconds"}
)
"""Functions and macros CEL itself provides in this binding."""


class ExpressionError(ValueError):
    """A condition failed to compile or evaluate.

    `column` (and `line`, for multi-line conditions) are 1-based within the expression, if known.
    """

    def __init__(self, message: str, column: int | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.line = line


@dataclass(frozen=True)
class Expression:
    """A compiled CEL condition and its source.

    `helpers` are the helper functions it calls; only those expressions pay for a `cel.Context`
    (about twice the cost of a plain dict) on every evaluation.
    """

    source: str
    program: Any
    helpers: tuple[str, ...] = field(default=())

    def variables(self) -> list[str]:
        """Top-level names the expression reads (`person`, `lists`, signal names...)."""
        return list(self.program.variables())

    def functions(self) -> list[str]:
        """Named functions the expression calls (operators such as `_&&_` left out)."""
        return [name for name in self.program.functions() if name[:1].isalpha()]

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            if self.helpers:
                functions = {name: HELPER_FUNCTIONS[name] for name in self.helpers}
                return self.program.execute(cel.Context(variables=dict(context), functions=functions))
            return self.program.execute(dict(context))
        except _NOT_OURS:
            raise
        except BaseException as exc:  # noqa: BLE001 - the CEL binding raises plain TypeError/RuntimeError
            raise ExpressionError(_evaluation_message(exc)) from None

    def evaluate_bool(self, context: Mapping[str, Any]) -> bool:
        result = self.evaluate(context)
        if not isinstance(result, bool):
            raise ExpressionError(f"condition must be true or false, got {type(result).__name__} {result!r}")
        return result


MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
"""A macro call and the name it binds (`c` in `list.exists(c, ...)`): a variable, not an input."""


def compile_expression(source: str) -> Expression:
    """Compile `source` or raise ExpressionError with the parser's line and column."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"condition is {len(source)} characters long; the limit is {MAX_EXPRESSION_CHARS}"
        )
    try:
        program = cel.compile(source)
        helpers = tuple(name for name in program.functions() if name in HELPER_FUNCTIONS)
        return Expression(source=source, program=program, helpers=helpers)
    except _NOT_OURS:
        raise
    except BaseException as exc:  # noqa: BLE001 - see _NOT_OURS
        text = str(exc)
        line, column = _position_of(text)
        raise ExpressionError(_syntax_message(text), column, line) from None


RECYCLE_NAMES: dict[str, str] = {
    "accepted": "bool",
    "days_in_stage": "int",
    "current_stage": "string",
    "current_lead_status": "string",
    "handoff_hours": "int",
    "sales_touched": "bool",
    "sla_lapsed": "bool",
}
"""Names only recycle rules can read (the hand-off state), with their CEL types."""


def expression_context(
    *,
    signals: Mapping[str, int | float],
    fit_score: int,
    fit_grade: str,
    person: Mapping[str, FieldValue],
    lists: Mapping[str, list[str]],
    handoff: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The names a condition can read. Keep in sync with the README's variable table.

    `handoff` holds the RECYCLE_NAMES values, for recycle rules only.
    """
    context: dict[str, Any] = dict(signals)
    context["fit_score"] = fit_score
    context["fit_grade"] = fit_grade
    context["person"] = dict(person)
    context["lists"] = {name: list(values) for name, values in lists.items()}
    if handoff is not None:
        context.update(handoff)
    return context


def _evaluation_message(exc: BaseException) -> str:
    """The binding's message, cut to what a mapping author needs on one line."""
    # A map lookup of an absent key (person["nope"]) surfaces as a bare KeyError('nope').
    if isinstance(exc, KeyError) and exc.args:
        return f"no such key: {exc.args[0]!r}"
    text = str(exc)
    helper = re.search(r"Python function call failed: \w+: (.+)", text)
    if helper:
        return re.split(r"\.\s+(?=CEL |Check |Convert )", helper.group(1).strip(), maxsplit=1)[0]
    first = _first_line(text)
    # Regex errors put the reason on a later line: "...not a valid regex:\n...\nerror: unclosed group."
    reason = re.search(r"^error: (.+?)\.?( Check function arguments.*)?$", text, flags=re.MULTILINE)
    if "not a valid regex" in first and reason:
        first = f"{first.rstrip(':')}: {reason.group(1)}"
    # Drop the binding's generic advice ("CEL does not coerce between types, so common causes...").
    return re.split(r"\.\s+(?=CEL |Check |Convert )", first, maxsplit=1)[0]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "evaluation failed"


def _syntax_message(text: str) -> str:
    # cel reports "Failed to parse expression '...': ERROR: <input>:1:6: Syntax error: ..."
    marker = "Syntax error:"
    if marker in text:
        return "syntax error: " + text.split(marker, 1)[1].strip().splitlines()[0]
    return _first_line(text)


def _position_of(text: str) -> tuple[int | None, int | None]:
    match = re.search(r"<input>:(\d+):(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)
