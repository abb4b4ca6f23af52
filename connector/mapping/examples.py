"""Load and run criteria examples (`criteria.examples.yaml` beside `criteria.yaml`).

The examples file sits next to the criteria file it tests: `criteria.yaml` ->
`criteria.examples.yaml`, `proposed.yaml` -> `proposed.examples.yaml`. It is optional; when present,
`connector validate` checks it like any mapping file (unknown keys, names that do not exist, each
with file:line) and then evaluates every example, reporting each one whose decision differs from
what it expects as an issue at that example, with the difference, the reason the criteria gave and
what they say is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from pathlib import Path

from connector.errors import MappingIssue
from connector.lifecycle.examples import NONE, run_example
from connector.lifecycle.rules import CriteriaEvaluator
from connector.mapping.checks import require_known
from connector.mapping.loader import CRITERIA_FILE, Mappings, _load
from connector.mapping.schema import Criteria, CriteriaExamples
from connector.mapping.source import Document, Loc


def examples_path(criteria_file: Path) -> Path:
    """Where the examples of a criteria file live: `<stem>.examples.yaml` beside it."""
    return criteria_file.with_name(f"{criteria_file.stem}.examples.yaml")


def check_examples(mappings: Mappings, criteria_file: Path | None = None) -> tuple[int, list[MappingIssue]]:
    """(examples run, issues): file problems first; if there are none, every failing example."""
    path = examples_path(criteria_file or mappings.directory / CRITERIA_FILE)
    if not path.is_file():
        return 0, []
    loaded = _load(path, CriteriaExamples, required=False)
    examples = loaded.model
    doc = loaded.doc
    if examples is None:
        return 0, sorted(doc.issues, key=lambda i: (i.line, i.column))
    _check_names(doc, examples, mappings.criteria, mappings.person_fields)
    if examples.as_of.tzinfo is None:
        doc.add(("as_of",), "as_of has no time zone", "write it in UTC, e.g. 2026-01-15T12:00:00Z")
    if doc.issues:
        return 0, sorted(doc.issues, key=lambda i: (i.line, i.column))
    evaluator = CriteriaEvaluator(mappings.criteria, mappings.criteria_version, mappings.person_fields)
    as_of = examples.as_of.astimezone(UTC)
    for index, example in enumerate(examples.examples):
        result = run_example(evaluator, example, as_of)
        if result.passed:
            continue
        wanted = example.expect.stage
        missing = [gap.sentence() for gap in result.gaps if gap.stage == wanted]
        hint = f"the criteria say: {result.decision.reason}"
        if missing:
            hint += "; missing: " + " | ".join(missing)
        doc.add(("examples", index), f"example '{example.name}' fails: {result.difference()}", hint)
    return len(examples.examples), list(doc.issues)


def _check_names(
    doc: Document, examples: CriteriaExamples, criteria: Criteria, person_fields: Mapping[str, str]
) -> None:
    stages = criteria.stages
    statuses = [*criteria.lead_statuses, NONE]
    for index, example in enumerate(examples.examples):
        loc: Loc = ("examples", index)
        for field in example.person:
            require_known(
                doc, (*loc, "person", field), field, sorted(person_fields), "person field", key=True
            )
        for position, activity in enumerate(example.activities):
            require_known(
                doc,
                (*loc, "activities", position, "type"),
                activity.type,
                sorted(criteria.activity_types),
                "activity type",
            )
        if example.current_stage is not None:
            require_known(doc, (*loc, "current_stage"), example.current_stage, stages, "stage")
        if example.current_lead_status is not None:
            require_known(
                doc, (*loc, "current_lead_status"), example.current_lead_status, criteria.lead_statuses,
                "lead status",
            )  # fmt: skip
        expect = example.expect
        checks: list[tuple[str, str | None, list[str], str]] = [
            ("stage", expect.stage, stages, "stage"),
            ("rule", expect.rule, [r.name for r in criteria.rules] + [NONE], "stage rule"),
            ("lead_status", expect.lead_status, statuses, "lead status"),
            ("fit_grade", expect.fit_grade, list(criteria.fit.grades), "fit grade"),
            (
                "disqualified_by",
                expect.disqualified_by,
                [d.name for d in criteria.disqualifiers] + [NONE],
                "disqualifier",
            ),
            ("recycled_by", expect.recycled_by, [r.name for r in criteria.recycle] + [NONE], "recycle rule"),
            (
                "moved_back_by",
                expect.moved_back_by,
                [r.name for r in criteria.recycle] + [d.name for d in criteria.disqualifiers] + [NONE],
                "recycle rule or disqualifier",
            ),
        ]
        for key, value, known, what in checks:
            if value is not None:
                require_known(doc, (*loc, "expect", key), value, known, what)
