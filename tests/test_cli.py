"""The CLI as a user meets it: settings errors and `validate`, in a real subprocess (no tracebacks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def connector(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "connector", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_token_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = connector("sync", cwd=tmp_path, env={"CONNECTOR_MAPPINGS_DIR": str(REPO / "mappings")})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "CONNECTOR_HUBSPOT_TOKEN" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONNECTOR_REQUEST_TIMEOUT", "soon"),
        ("CONNECTOR_MAX_ATTEMPTS", "0"),
        ("CONNECTOR_HUBSPOT_BASE_URL", "api.hubapi.com"),
        ("CONNECTOR_STATE_URL", "state.db"),
    ],
)
def test_invalid_setting_names_the_variable_and_exits_2(tmp_path: Path, name: str, value: str) -> None:
    result = connector("status", cwd=tmp_path, env={name: value})
    assert result.returncode == 2
    assert name in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CONNECTOR_REQUEST_TIMEOUT=never\n")
    result = connector("status", cwd=tmp_path)
    assert result.returncode == 2
    assert "CONNECTOR_REQUEST_TIMEOUT" in result.stderr


def test_validate_shipped_mappings_ok(tmp_path: Path) -> None:
    result = connector("validate", "--mappings", str(REPO / "mappings"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BROKEN = {
    # id: (file, original text, replacement, line marker, message fragment)
    "unknown-key": (
        "criteria.yaml",
        "    window_days: 30\n    unit: interaction\n",
        "    window_days: 30\n    windw: 3\n    unit: interaction\n",
        "windw: 3",
        "windw",
    ),
    "bad-cel": (
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'forms_90d >= '",
        "when: 'forms_90d >= '",
        "syntax",
    ),
    "unknown-signal": (
        "criteria.yaml",
        "when: 'forms_90d >= 1'",
        "when: 'form_90d >= 1'",
        "when: 'form_90d >= 1'",
        "form_90d",
    ),
    "bad-regex": (
        "criteria.yaml",
        "url_patterns: ['/pricing', '/solutions/']",
        "url_patterns: ['/pricing(', '/solutions/']",
        "url_patterns: ['/pricing('",
        "regex",
    ),
    "bad-yaml": ("routing.yaml", "fallback: frank", "fallback: [frank", "fallback: [frank", ""),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_reports_file_and_line_and_exits_2(tmp_path: Path, case: str) -> None:
    file, old, new, marker, fragment = BROKEN[case]
    folder = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", folder)
    text = (folder / file).read_text()
    assert old in text
    text = text.replace(old, new, 1)
    (folder / file).write_text(text)
    result = connector("validate", "--mappings", str(folder), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = _line_of(text, marker)
    located = [ln for ln in result.stderr.splitlines() if f"{file}:" in ln]
    assert located, result.stderr
    if case != "bad-yaml":  # a YAML syntax error may be reported on the line after the unclosed bracket
        assert any(f"{file}:{line}:" in ln for ln in located), (line, result.stderr)
    else:
        # ...or further down, where the parser gave up; then the hint names the construct's line.
        hint = f"starts on line {line})"
        assert any(f"{file}:{n}:" in ln or hint in ln for ln in located for n in (line, line + 1)), (
            line,
            result.stderr,
        )
    assert fragment.lower() in result.stderr.lower()


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = connector("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in (
        "validate",
        "plan",
        "sync",
        "retry-failed",
        "explain",
        "status",
        "forget",
        "migrate",
        "sandbox",
        "demo",
    ):
        assert command in result.stdout


def test_sandbox_command_serves_the_emulator_until_terminated(tmp_path: Path) -> None:
    import json
    import signal
    import urllib.request

    base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    with subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "--port", "0", "--people", "170"],
        cwd=tmp_path,
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            while not lines or "Ctrl-C" not in lines[-1]:
                lines.append(proc.stdout.readline())
                assert lines[-1], "the sandbox stopped before printing how to connect"
            env = {
                ln.split("=", 1)[0].split()[-1]: ln.split("=", 1)[1].strip() for ln in lines if "export" in ln
            }
            url, token = env["CONNECTOR_HUBSPOT_BASE_URL"], env["CONNECTOR_HUBSPOT_TOKEN"]
            assert url.startswith("http://127.0.0.1:")
            request = urllib.request.Request(
                f"{url}/crm/v3/owners?limit=100", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                owners = json.load(response)["results"]
            assert len(owners) >= 5
            import requests

            sf = requests.Session()
            sf.verify, sf.trust_env = env["CONNECTOR_SALESFORCE_CA_BUNDLE"], False
            sf.headers["Authorization"] = f"Bearer {env['CONNECTOR_SALESFORCE_SESSION_ID']}"
            answer = sf.get(
                f"{env['CONNECTOR_SALESFORCE_INSTANCE_URL']}/services/data/v59.0/query",
                params={"q": "SELECT Id FROM User WHERE IsActive = true"},
                timeout=10,
            )
            assert answer.json()["totalSize"] >= 5
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    assert proc.returncode == 0


def test_validate_runs_the_criteria_examples(tmp_path: Path) -> None:
    result = connector("validate", "--mappings", str(REPO / "mappings"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "criteria examples pass" in result.stdout


def test_validate_fails_on_a_broken_example_with_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", folder)
    path = folder / "criteria.examples.yaml"
    text = path.read_text()
    old = "    expect: {stage: sql, rule: sql_hand_raise, fit_grade: A}"
    path.write_text(text.replace(old, "    expect: {stage: mql, rule: sql_hand_raise, fit_grade: A}", 1))
    result = connector("validate", "--mappings", str(folder), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = _line_of(text, "- name: demo request from a decision maker")
    assert f"criteria.examples.yaml:{line}:" in result.stderr
    assert "stage: expected mql, got sql" in result.stderr


def test_simulate_on_an_empty_state_says_to_sync_first(tmp_path: Path) -> None:
    env = {
        "CONNECTOR_STATE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "CONNECTOR_MAPPINGS_DIR": str(REPO / "mappings"),
    }
    result = connector(
        "simulate", "--criteria", str(REPO / "mappings" / "criteria.yaml"), cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "run `connector sync` first" in result.stdout
    bad = connector(
        "simulate",
        "--criteria",
        str(REPO / "mappings" / "criteria.yaml"),
        "--as-of",
        "someday",
        cwd=tmp_path,
        env=env,
    )
    assert bad.returncode == 2
    assert "--as-of" in bad.stderr
