"""The mapping loader: the shipped files load cleanly, and each kind of mistake is reported at the
right file, line and column with a useful message, all in one MappingError.

Error cases copy the shipped `mappings/` to a temporary directory, break one thing by replacing
text, and locate the expected position by searching the edited file for a marker, so the tests
keep working when someone edits the shipped mappings elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import MappingError, MappingIssue
from connector.mapping.conditions import Scope, check_condition, mask_string_literals
from connector.mapping.loader import Mappings, load_mappings
from connector.mapping.source import MAX_FILE_BYTES, render_loc

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
FILES = ("criteria.yaml", "routing.yaml", "hubspot.yaml", "salesforce.yaml")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def mapping_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped mapping files, safe to break."""
    target = tmp_path / "mappings"
    target.mkdir()
    for name in FILES:
        shutil.copy(SHIPPED / name, target / name)
    return target


def edit(directory: Path, file: str, old: str, new: str) -> None:
    """Replace the single occurrence of `old` in `file` (failing loudly if the shipped text moved)."""
    path = directory / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {file}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def locate(directory: Path, file: str, marker: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the n-th occurrence of `marker` in `file`."""
    text = (directory / file).read_text(encoding="utf-8")
    index = -1
    for _ in range(occurrence):
        index = text.index(marker, index + 1)
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def issues_of(directory: Path) -> list[MappingIssue]:
    with pytest.raises(MappingError) as caught:
        load_mappings(directory)
    return caught.value.issues


def find_issue(issues: list[MappingIssue], fragment: str) -> MappingIssue:
    matching = [issue for issue in issues if fragment in issue.message]
    assert matching, f"no issue mentions {fragment!r}; got:\n" + "\n".join(i.render() for i in issues)
    return matching[0]


# --------------------------------------------------------------------------- the shipped files


def test_shipped_mappings_load_without_issues() -> None:
    mappings = load_mappings(SHIPPED)

    assert isinstance(mappings, Mappings)
    assert mappings.hubspot is not None
    assert mappings.directory == SHIPPED
    assert "mql" in mappings.criteria.stages
    assert mappings.routing.fallback in mappings.routing.reps


def test_criteria_version_is_a_hash_of_the_criteria_bytes() -> None:
    expected = hashlib.sha256((SHIPPED / "criteria.yaml").read_bytes()).hexdigest()[:12]

    assert load_mappings(SHIPPED).criteria_version == expected


def test_person_fields_are_the_crm_fields_plus_email_domain() -> None:
    fields = load_mappings(SHIPPED).person_fields

    assert fields["email_domain"] == "string"
    assert fields["employees"] == "number"
    assert fields["unsubscribed"] == "bool"
    assert set(fields) == {"email_domain", *load_mappings(SHIPPED).hubspot.fields}  # type: ignore[union-attr]


def test_criteria_file_can_come_from_elsewhere(mapping_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "proposal.yaml"
    other.write_text((SHIPPED / "criteria.yaml").read_text().replace("window_days: 7", "window_days: 14"))

    mappings = load_mappings(mapping_dir, criteria_file=other)

    assert mappings.criteria.signals["active_days_7d"].window_days == 14
    assert mappings.criteria_version == hashlib.sha256(other.read_bytes()).hexdigest()[:12]


def test_mapping_package_imports_nothing_with_io() -> None:
    code = (
        "import sys, connector.mapping.loader\n"
        "bad = {'hubspot', 'simple_salesforce', 'sqlalchemy', 'requests', 'urllib3', 'httpx'}\n"
        "print(sorted(bad & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- one mistake each


@dataclass(frozen=True)
class Case:
    """Replace `old` by `new` in `file`; expect an issue in `file` at `marker` (+ `shift` columns)."""

    file: str
    old: str
    new: str
    message: str
    marker: str
    shift: int = 0
    hint: str = ""
    path: str = ""
    check_column: bool = True


CASES = {
    "unknown key with did-you-mean": Case(
        "criteria.yaml",
        "window_days: 7",
        "window_dayz: 7",
        "unknown key 'window_dayz'",
        marker="window_dayz",
        hint="did you mean 'window_days'?",
        path="signals.active_days_7d.window_dayz",
    ),
    "missing key points at the parent": Case(
        "criteria.yaml",
        "    kind: distinct_days\n    window_days: 7\n",
        "    kind: distinct_days\n",
        "missing required key 'window_days'",
        marker="active_days_7d:",
        path="signals.active_days_7d.window_days",
    ),
    "bad CEL syntax points inside the expression": Case(
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'forms_90d >= 1 &&'",
        "syntax error",
        marker="&&'",
        shift=2,
        path="rules[6].when",
    ),
    "single = gets a hint": Case(
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'forms_90d = 1'",
        "syntax error",
        marker="= 1'",
        hint="==",
    ),
    "unknown signal name in a rule": Case(
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'form_90d >= 1'",
        "unknown name 'form_90d'",
        marker="form_90d",
        hint="did you mean 'forms_90d'?",
    ),
    "unknown person field": Case(
        "criteria.yaml",
        "'person.industry in lists.target_industries'",
        "'person.industri in lists.target_industries'",
        "unknown person field 'person.industri'",
        marker="industri in",
        hint="did you mean 'industry'?",
        path="fit.rules[3].when",
    ),
    "unknown list": Case(
        "criteria.yaml",
        "'lists.served_countries.exists",
        "'lists.served_country.exists",
        "unknown list 'lists.served_country'",
        marker="served_country.exists",
        hint="did you mean 'served_countries'?",
    ),
    "fit rule reading the fit score": Case(
        "criteria.yaml",
        "'lists.served_countries.exists(c, c.lower() == person.country.trim().lower())'",
        "'fit_score > 10'",
        "fit rules cannot read fit_score",
        marker="fit_score > 10",
    ),
    "bad regex in url_patterns": Case(
        "criteria.yaml",
        "url_patterns: ['/pricing', ",
        "url_patterns: ['/pricing(', ",
        "invalid regex",
        marker="/pricing(",
        shift=len("/pricing"),
        path="signals.pricing_views_30d.url_patterns[0]",
    ),
    "bad regex inside .matches()": Case(
        "criteria.yaml",
        '(?i)\\\\bmanager\\\\b")',
        '(?i)(manager")',
        "invalid regex in .matches(): unclosed group",
        marker='"(?i)(manager',
        path="fit.rules[1].when",
    ),
    "string compared to a number": Case(
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'person.title > 5'",
        "No such overload",
        marker="'person.title > 5'",
        hint="person.title is string",
    ),
    "grade compared to a number": Case(
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'forms_90d >= 1 && fit_grade >= 3'",
        "No such overload",
        marker="'forms_90d >= 1 && fit_grade",
        hint="fit_grade is string",
    ),
    "condition that is not a bool": Case(
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'forms_90d + 1'",
        "condition must be true or false",
        marker="'forms_90d + 1'",
    ),
    "bad YAML syntax": Case(
        "criteria.yaml",
        "default_stage: subscriber",
        "default_stage: subscriber: lead",
        "YAML syntax error",
        marker=": lead",
    ),
    "tab indentation": Case(
        "criteria.yaml",
        "  interactions_30d:",
        "\tinteractions_30d:",
        "YAML syntax error",
        marker="\tinteractions_30d",
        hint="spaces",
        check_column=False,
    ),
    "duplicate key": Case(
        "criteria.yaml",
        "default_stage: subscriber\n",
        "default_stage: subscriber\ndefault_stage: lead\n",
        "duplicate key 'default_stage' (first on line",
        marker="default_stage: lead",
    ),
    "unknown stage in a rule": Case(
        "criteria.yaml",
        "    stage: lead\n",
        "    stage: leed\n",
        "unknown stage 'leed'",
        marker="leed",
        hint="did you mean 'lead'?",
    ),
    "literal value typo": Case(
        "criteria.yaml",
        "kind: distinct_days",
        "kind: distinct_day",
        "'distinct_day' is not allowed",
        marker="distinct_day\n",
        hint="did you mean 'distinct_days'?",
    ),
    "unknown activity type in a signal": Case(
        "criteria.yaml",
        "types: [chat]",
        "types: [chats]",
        "unknown activity type 'chats'",
        marker="chats]",
    ),
    "unknown stage in hubspot.yaml": Case(
        "hubspot.yaml",
        "    mql: marketingqualifiedlead",
        "    mqll: marketingqualifiedlead",
        "unknown stage 'mqll'",
        marker="mqll",
        hint="did you mean 'mql'?",
        path="stage.values.mqll",
    ),
    "stage used by the criteria but not mapped": Case(
        "hubspot.yaml",
        "    sql: salesqualifiedlead\n",
        "",
        "does not map: sql",
        marker="subscriber: subscriber",
        hint="add sql:",
        path="stage.values",
        check_column=False,
    ),
    "write of an unowned property": Case(
        "hubspot.yaml",
        "writes: [lifecyclestage, hs_lead_status, hubspot_owner_id, lifecycle_stage_reason]",
        "writes: [lifecyclestage, hs_lead_status, hubspot_owner_id, lifecycle_stage_reason, firstname]",
        "does not own 'firstname'",
        marker="firstname",
        path="writes[4]",
    ),
    "events API below enterprise": Case(
        "hubspot.yaml",
        "tier: enterprise",
        "tier: professional",
        "Events API needs Enterprise",
        marker="enabled: true",
        shift=len("enabled: "),
        hint="activities.events.enabled: false",
    ),
    "unknown activity type in hubspot.yaml": Case(
        "hubspot.yaml",
        "{object: calls, type: call}",
        "{object: calls, type: phone_call}",
        "unknown activity type 'phone_call'",
        marker="phone_call",
    ),
    "unquoted owner id": Case(
        "routing.yaml",
        'hubspot_owner_id: "70000001"',
        "hubspot_owner_id: 70000001",
        "expected text, found 70000001",
        marker="70000001",
        hint='write "70000001"',
    ),
    "unknown pool member": Case(
        "routing.yaml",
        "[ana, ben, chloe]",
        "[ana, bem, chloe]",
        "unknown rep 'bem'",
        marker="bem",
        hint="did you mean 'ben'?",
        path="pools.north_america.members[1]",
    ),
    "unknown pool in a rule": Case(
        "routing.yaml",
        "    pool: emea\n",
        "    pool: europe\n",
        "unknown pool 'europe'",
        marker="europe",
    ),
    "unknown person field in match": Case(
        "routing.yaml",
        "match: {country: [United States, USA, US, Canada",
        "match: {countri: [United States, USA, US, Canada",
        "unknown person field 'countri'",
        marker="countri",
        hint="did you mean 'country'?",
    ),
    "unknown placeholder in the hand-off task subject": Case(
        "routing.yaml",
        'subject: "Follow up: {email} reached {stage}"',
        'subject: "Follow up: {emial} reached {stage}"',
        "unknown placeholder '{emial}'",
        marker='"Follow up',
        hint="did you mean 'email'?",
        path="handoff.task.subject",
    ),
    "unknown hand-off time zone": Case(
        "routing.yaml",
        "timezone: America/New_York",
        "timezone: America/New_Yrok",
        "unknown time zone 'America/New_Yrok'",
        marker="America/New_Yrok",
    ),
    "hand-off time property the mapping does not write": Case(
        "routing.yaml",
        "    # hubspot_property: connector_handoff_at",
        "    hubspot_property: connector_handoff_at",
        "'connector_handoff_at' is not under `writes:` in hubspot.yaml",
        marker="connector_handoff_at",
        hint="add connector_handoff_at to `writes:`",
    ),
    "hand-off key typo": Case(
        "routing.yaml",
        "    due_business_hours: 8",
        "    due_buisness_hours: 8",
        "due_buisness_hours",
        marker="due_buisness_hours",
        check_column=False,
    ),
    "routing condition with a type error": Case(
        "routing.yaml",
        "    pool: emea\n",
        "    pool: emea\n    when: \"person.employees > '5'\"\n",
        "No such overload",
        marker='"person.employees',
    ),
    "unknown handoff stage": Case(
        "routing.yaml",
        "handoff_stages: [mql, sql]",
        "handoff_stages: [mql, sqll]",
        "unknown stage 'sqll'",
        marker="sqll",
    ),
    "rep without a CRM id": Case(
        "routing.yaml",
        'frank: {name: Frank Fischer (sales manager), hubspot_owner_id: "70000006", '
        "salesforce_user_id: 005Dn00000Rep06IAB}",
        "frank: {name: Frank Fischer (sales manager)}",
        "has no CRM id",
        marker="frank:",
    ),
    "weight for a rep outside the pool": Case(
        "routing.yaml",
        "weights: {grace: 2, dev: 1}",
        "weights: {grace: 2, ana: 1}",
        "unknown member of enterprise 'ana'",
        marker="ana: 1",
        path="pools.enterprise.weights.ana",
    ),
    "weights on a round-robin pool": Case(
        "routing.yaml",
        "us_west:       {members: [ben, emma], strategy: round_robin}",
        "us_west:       {members: [ben, emma], strategy: round_robin, weights: {ben: 2}}",
        "has weights but strategy round_robin",
        marker="weights: {ben",
        hint="set strategy: weighted",
    ),
    "band with min above max": Case(
        "routing.yaml",
        "match: {employees: {min: 5000}}",
        "match: {employees: {min: 5000, max: 100}}",
        "band min 5000 is above max 100",
        marker="{min: 5000, max",
        hint="swap them",
    ),
    "empty band": Case(
        "routing.yaml",
        "match: {employees: {min: 5000}}",
        "match: {employees: {}}",
        "an empty band matches everyone",
        marker="{}}",
    ),
    "match rule without a pool": Case(
        "routing.yaml",
        "    pool: us_west\n",
        "",
        "rule us_west has no pool",
        marker="name: us_west",
        hint="add pool:",
        check_column=False,
    ),
    "negative daily cap": Case(
        "routing.yaml",
        "daily_cap: 40",
        "daily_cap: -1",
        "greater than or equal to 0",
        marker="-1",
    ),
    "salesforce id that is not a user or queue": Case(
        "routing.yaml",
        "salesforce_user_id: 005Dn00000Rep07IAB",
        "salesforce_user_id: 0015Dn0000Rep07IAB",
        "is not a Salesforce User or Queue id",
        marker="0015Dn0000Rep07IAB",
        hint="Queue (00G...)",
    ),
    "unknown timezone": Case(
        "routing.yaml",
        "timezone: UTC",
        "timezone: Mars/Olympus",
        "unknown timezone 'Mars/Olympus'",
        marker="Mars/Olympus",
    ),
    "account owner field that is not a person field": Case(
        "routing.yaml",
        "    kind: account_owner\n",
        "    kind: account_owner\n    owner_field: company_owner\n",
        "unknown person field 'company_owner'",
        marker="company_owner\n",
    ),
    "account owner free-mail list missing": Case(
        "routing.yaml",
        "    kind: account_owner\n",
        "    kind: account_owner\n    free_mail_list: freemail\n",
        "criteria.yaml has no list 'freemail'",
        marker="freemail",
        hint="match_domain: false",
    ),
    "fallback missing": Case(
        "routing.yaml",
        "fallback: frank\n",
        "",
        "fallback",
        marker="handoff_stages",
        check_column=False,
    ),
    "salesforce: unknown object": Case(
        "salesforce.yaml",
        "  Contact:\n    fields:",
        "  Contacts:\n    fields:",
        "'Contacts' is not allowed here",
        marker="Contacts:",
    ),
    "salesforce: writes a field it does not own": Case(
        "salesforce.yaml",
        "writes: [Lifecycle_Stage__c, Marketing_Status__c]",
        "writes: [Lifecycle_Stage__c, Marketing_Status__c, Email]",
        "the connector does not own 'Email' on Contact",
        marker="Email]",
    ),
    "salesforce: a stage the criteria use is not mapped": Case(
        "salesforce.yaml",
        "        mql: Marketing Qualified\n",
        "",
        "criteria.yaml uses stages this file does not map: mql",
        marker="subscriber: Nurture",
    ),
    "salesforce: a type that differs from hubspot.yaml": Case(
        "salesforce.yaml",
        "employees:    {field: NumberOfEmployees, type: number}",
        "employees:    {field: NumberOfEmployees, type: string}",
        "'employees' is string here but number in hubspot.yaml",
        marker="string}",
    ),
    "salesforce: unknown activity type": Case(
        "salesforce.yaml",
        "- {type: meeting}",
        "- {type: meetings}",
        "unknown activity type 'meetings'",
        marker="meetings",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_mistake_is_reported_where_it_is(mapping_dir: Path, case: Case) -> None:
    edit(mapping_dir, case.file, case.old, case.new)

    issue = find_issue(issues_of(mapping_dir), case.message)

    line, column = locate(mapping_dir, case.file, case.marker)
    assert issue.file == str(mapping_dir / case.file)
    assert issue.line == line
    if case.check_column:
        assert issue.column == column + case.shift
    assert case.hint in issue.hint
    if case.path:
        assert issue.path == case.path


def test_duplicate_key_names_both_lines(mapping_dir: Path) -> None:
    edit(
        mapping_dir,
        "criteria.yaml",
        "default_stage: subscriber\n",
        "default_stage: subscriber\ndefault_stage: lead\n",
    )

    issue = find_issue(issues_of(mapping_dir), "duplicate key")

    first_line, _ = locate(mapping_dir, "criteria.yaml", "default_stage: subscriber")
    assert f"first on line {first_line}" in issue.message
    assert issue.line == first_line + 1


def test_errors_in_several_files_are_all_reported(mapping_dir: Path) -> None:
    edit(mapping_dir, "criteria.yaml", "when: 'forms_90d >= 1'", "when: 'form_90d >= 1'")
    edit(mapping_dir, "criteria.yaml", "url_patterns: ['/pricing', ", "url_patterns: ['/pricing(', ")
    edit(mapping_dir, "routing.yaml", "fallback: frank", "fallback: frankk")
    edit(mapping_dir, "hubspot.yaml", "    mql: marketingqualifiedlead", "    mqll: marketingqualifiedlead")

    issues = issues_of(mapping_dir)

    files = {Path(issue.file).name for issue in issues}
    assert files == {"criteria.yaml", "routing.yaml", "hubspot.yaml"}
    for fragment in (
        "unknown name 'form_90d'",
        "invalid regex",
        "unknown rep 'frankk'",
        "unknown stage 'mqll'",
    ):
        find_issue(issues, fragment)


def test_error_text_renders_file_line_column_path_and_hint(mapping_dir: Path) -> None:
    edit(mapping_dir, "routing.yaml", "fallback: frank", "fallback: frankk")

    with pytest.raises(MappingError) as caught:
        load_mappings(mapping_dir)

    line, column = locate(mapping_dir, "routing.yaml", "frankk")
    assert str(caught.value) == (
        f"{mapping_dir / 'routing.yaml'}:{line}:{column}: fallback: unknown rep 'frankk' "
        "(hint: did you mean 'frank'? reps: ana, ben, chloe, dev, emma, frank, grace)"
    )


def test_an_invalid_crm_file_does_not_flood_criteria_with_unknown_fields(mapping_dir: Path) -> None:
    edit(mapping_dir, "hubspot.yaml", "tier: enterprise", "tier: platinum")

    issues = issues_of(mapping_dir)

    assert [Path(issue.file).name for issue in issues] == ["hubspot.yaml"]


# --------------------------------------------------------------------------- files and hostile input


def test_missing_required_file(mapping_dir: Path) -> None:
    (mapping_dir / "routing.yaml").unlink()

    issue = find_issue(issues_of(mapping_dir), "required file not found")

    assert issue.file == str(mapping_dir / "routing.yaml")
    assert (issue.line, issue.column) == (1, 1)


def test_at_least_one_crm_file_is_required(mapping_dir: Path) -> None:
    (mapping_dir / "hubspot.yaml").unlink()
    (mapping_dir / "salesforce.yaml").unlink()

    issue = find_issue(issues_of(mapping_dir), "no CRM mapping file")

    assert "hubspot.yaml" in issue.hint
    assert "salesforce.yaml" in issue.hint


def test_missing_directory() -> None:
    with pytest.raises(MappingError, match="mapping directory not found"):
        load_mappings(Path("/nonexistent/mappings"))


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        pytest.param(
            b"- just\n- a list\n", "expected a mapping (key: value) at the top", 1, id="list-at-top"
        ),
        pytest.param(b"", "found nothing", 1, id="empty"),
        pytest.param(b"stages: [a]\n---\nstages: [b]\n", "expected a single document", 2, id="two-documents"),
        pytest.param(b"stages: [a]\nx: \xff\n", "not valid UTF-8", 2, id="not-utf8"),
        pytest.param(
            b"stages: [a]\nx: !!python/object:os.system ls\n", "cannot read value", 2, id="python-tag"
        ),
        pytest.param(b"x: &a [*a]\n", "nesting deeper than", 1, id="recursive-alias"),
        pytest.param(b"x: " + b"[" * 500 + b"]" * 500 + b"\n", "nesting deeper than", 1, id="deep-nesting"),
        pytest.param(b"x: " + b"9" * 5000 + b"\n", "too many digits", 1, id="huge-integer"),
    ],
)
def test_hostile_or_broken_yaml_is_an_issue(
    mapping_dir: Path, content: bytes, message: str, line: int
) -> None:
    (mapping_dir / "criteria.yaml").write_bytes(content)

    issue = find_issue(issues_of(mapping_dir), message)

    assert issue.file == str(mapping_dir / "criteria.yaml")
    assert issue.line == line


def test_alias_bomb_returns_quickly_with_an_issue(mapping_dir: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (mapping_dir / "criteria.yaml").write_text("\n".join(lines) + "\n")

    started = time.monotonic()
    issue = find_issue(issues_of(mapping_dir), "expands to more than")

    assert time.monotonic() - started < 5
    assert "aliases" in issue.hint


def test_oversized_file_is_refused_without_parsing(mapping_dir: Path) -> None:
    (mapping_dir / "criteria.yaml").write_bytes(b"# padding\n" * (MAX_FILE_BYTES // 10 + 1))

    issue = find_issue(issues_of(mapping_dir), "limited to")

    assert (issue.line, issue.column) == (1, 1)


def test_merge_keys_are_supported(mapping_dir: Path) -> None:
    edit(
        mapping_dir,
        "routing.yaml",
        "pools:\n",
        "defaults: &defaults {strategy: round_robin}\npools:\n",
    )
    edit(
        mapping_dir,
        "routing.yaml",
        "emea:          {members: [dev, emma], strategy: round_robin}",
        "emea: {<<: *defaults, members: [dev, emma]}",
    )

    issues = issues_of(mapping_dir)

    # The merge itself works; only the helper key is unknown to the schema.
    assert [issue.message for issue in issues] == ["unknown key 'defaults'"]


# --------------------------------------------------------------------------- conditions on their own

SCOPE = Scope(
    signals=["forms_90d", "chats_30d"],
    person_fields={
        "title": "string",
        "employees": "number",
        "unsubscribed": "bool",
        "email_domain": "string",
    },
    lists={"free_mail": ["gmail.com"]},
    grades={"A": 50, "B": 0},
)


@pytest.mark.parametrize(
    "source",
    [
        'forms_90d >= 1 && fit_grade in ["A", "B"]',
        "lists.free_mail.exists(d, person.email_domain.endsWith(d))",
        'person.title == "person.nope"',
        "type(fit_score) == int",
        '!person.unsubscribed && person.title.matches(r"(?i)\\bvp\\b")',
        "person.employees >= 50 && person.employees <= 5000",
    ],
)
def test_valid_conditions_have_no_problems(source: str) -> None:
    assert check_condition(source, SCOPE) == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param('fit_grade == "A" && person.title > 5', "No such overload", id="behind-a-grade"),
        pytest.param(
            'person.title == "CEO" && person.employees > "5"', "No such overload", id="behind-a-literal"
        ),
        pytest.param("person.employees + 1 > 5", "Unsupported operation", id="fractional-number"),
        pytest.param('person["nope"] == "x"', "no such key", id="index-of-unknown-field"),
        pytest.param("forms_90d / chats_30d > 1", "division by zero", id="division-by-zero"),
        pytest.param('person.title.matches("(?<=a)b")', "invalid regex", id="lookbehind"),
        pytest.param("(" * 3000 + "1" + ")" * 3000, "limit is", id="too-long"),
    ],
)
def test_problems_the_dry_run_finds(source: str, message: str) -> None:
    problems = check_condition(source, SCOPE)

    assert problems, source
    assert message in problems[0].message


def test_string_literals_are_masked_with_their_length() -> None:
    masked, spans = mask_string_literals('a == "x.y" || b == r\'z\' && c == """q"r"""')

    assert len(masked) == len('a == "x.y" || b == r\'z\' && c == """q"r"""')
    assert "x.y" not in masked
    assert len(spans) == 3


def test_render_loc() -> None:
    assert render_loc(("rules", 2, "when")) == "rules[2].when"
    assert render_loc(("lists", "a.b", 0)) == 'lists["a.b"][0]'


# --------------------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory reused across hypothesis examples (function-scoped fixtures are not reset)."""
    target = tmp_path_factory.mktemp("prop") / "mappings"
    target.mkdir()
    for name in FILES:
        shutil.copy(SHIPPED / name, target / name)
    return target


def load_or_issues(directory: Path) -> list[MappingIssue] | None:
    """The issues, or None when the directory loads: any other exception fails the test."""
    try:
        load_mappings(directory)
    except MappingError as exc:
        return exc.issues
    return None


def assert_located(issues: list[MappingIssue], directory: Path) -> None:
    for issue in issues:
        path = Path(issue.file)
        assert path.parent == directory, issue
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        assert 1 <= issue.line <= text.count("\n") + 2, issue
        assert issue.column >= 1, issue
        assert issue.message, issue


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(when=st.text(max_size=80))
def test_any_when_loads_or_yields_located_issues(scratch: Path, when: str) -> None:
    shutil.copy(SHIPPED / "routing.yaml", scratch / "routing.yaml")
    criteria = (SHIPPED / "criteria.yaml").read_text(encoding="utf-8")
    (scratch / "criteria.yaml").write_text(
        criteria.replace("when: 'forms_90d >= 1'", f"when: {json.dumps(when)}"), encoding="utf-8"
    )

    issues = load_or_issues(scratch)

    assert issues is None or issues, "a MappingError must carry at least one issue"
    assert_located(issues or [], scratch)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\n\t ,?%@`~0")), max_size=120))
def test_any_yaml_text_yields_located_issues(scratch: Path, content: str) -> None:
    shutil.copy(SHIPPED / "criteria.yaml", scratch / "criteria.yaml")
    (scratch / "routing.yaml").write_text(content, encoding="utf-8")

    issues = load_or_issues(scratch)

    assert issues is None or issues, "a MappingError must carry at least one issue"
    assert_located(issues or [], scratch)
