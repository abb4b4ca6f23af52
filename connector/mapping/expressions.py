"""CEL conditions: compile once, evaluate against a context built the same way everywhere.

CEL (common-expression-language) is safe (no I/O, no loops that run forever) and fast. It has no
static type checker in this binding, so `validate` catches type errors and bad regexes by
evaluating every condition against sample contexts whose values have the declared types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    """A compiled CEL condition and its source."""

    source: str
    program: Any

    def variables(self) -> list[str]:
        """Top-level names the expression reads (`person`, `lists`, signal names...)."""
        return list(self.program.variables())

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
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


def compile_expression(source: str) -> Expression:
    """Compile `source` or raise ExpressionError with the parser's line and column."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"condition is {len(source)} characters long; the limit is {MAX_EXPRESSION_CHARS}"
        )
    try:
        return Expression(source=source, program=cel.compile(source))
    except _NOT_OURS:
        raise
    except BaseException as exc:  # noqa: BLE001 - see _NOT_OURS
        text = str(exc)
        line, column = _position_of(text)
        raise ExpressionError(_syntax_message(text), column, line) from None


def expression_context(
    *,
    signals: Mapping[str, int | float],
    fit_score: int,
    fit_grade: str,
    person: Mapping[str, FieldValue],
    lists: Mapping[str, list[str]],
) -> dict[str, Any]:
    """The names a condition can read. Keep in sync with the README's variable table."""
    context: dict[str, Any] = dict(signals)
    context["fit_score"] = fit_score
    context["fit_grade"] = fit_grade
    context["person"] = dict(person)
    context["lists"] = {name: list(values) for name, values in lists.items()}
    return context


def _evaluation_message(exc: BaseException) -> str:
    """The binding's message, cut to what a mapping author needs on one line."""
    # A map lookup of an absent key (person["nope"]) surfaces as a bare KeyError('nope').
    if isinstance(exc, KeyError) and exc.args:
        return f"no such key: {exc.args[0]!r}"
    text = str(exc)
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
