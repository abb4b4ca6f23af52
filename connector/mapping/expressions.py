"""CEL conditions: compile once, evaluate against a context built the same way everywhere.

CEL (common-expression-language) is safe (no I/O, no loops that run forever) and fast. It has no
static type checker in this binding, so `validate` catches type errors and bad regexes by
evaluating every condition against sample contexts whose values have the declared types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cel

from connector.model import FieldValue

# The zero value each field type takes when the CRM has no value, so `person.title.matches(...)`
# on an empty title is simply false instead of an evaluation error.
ZERO_VALUES: dict[str, FieldValue] = {"string": "", "number": 0, "bool": False, "datetime": ""}


class ExpressionError(ValueError):
    """A condition failed to compile or evaluate. `column` is 1-based within the expression, if known."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


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
        except Exception as exc:  # noqa: BLE001 - the CEL binding raises plain TypeError/RuntimeError
            raise ExpressionError(_first_line(str(exc))) from None

    def evaluate_bool(self, context: Mapping[str, Any]) -> bool:
        result = self.evaluate(context)
        if not isinstance(result, bool):
            raise ExpressionError(f"condition must be true or false, got {type(result).__name__} {result!r}")
        return result


def compile_expression(source: str) -> Expression:
    """Compile `source` or raise ExpressionError with the parser's column."""
    try:
        return Expression(source=source, program=cel.compile(source))
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        column = _column_of(text)
        raise ExpressionError(_syntax_message(text), column) from None


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


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "evaluation failed"


def _syntax_message(text: str) -> str:
    # cel reports "Failed to parse expression '...': ERROR: <input>:1:6: Syntax error: ..."
    marker = "Syntax error:"
    if marker in text:
        return "syntax error: " + text.split(marker, 1)[1].strip().splitlines()[0]
    return _first_line(text)


def _column_of(text: str) -> int | None:
    import re

    match = re.search(r"<input>:(\d+):(\d+)", text)
    return int(match.group(2)) if match else None
