"""`connector report --html`: the page people read, checked as data and rendered in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DEMO_PEOPLE

from connector.cli import main

pytestmark = pytest.mark.integration


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
def report_page(demo, connector_env, tmp_path: Path) -> str:
    main(["sync"])
    target = tmp_path / "report.html"
    main(["report", "--html", str(target)])
    return target.read_text()


def test_report_shows_funnel_changes_handoffs_and_the_chart(report_page: str) -> None:
    funnel = dict(re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td></tr>", report_page.split("Stage changes")[0]))
    assert int(funnel["mql"]) > 0
    assert int(funnel["sql"]) > 0
    assert sum(int(n) for n in funnel.values()) == DEMO_PEOPLE
    assert "<td>subscriber</td><td>lead</td>" in report_page  # a transition row
    assert "Ana Alvarez" in report_page  # hand-offs by rep name, not owner id
    points = re.search(r"class='series-mql'[^>]*points='([^']+)'", report_page)
    assert points
    assert len(points.group(1).split()) >= 1
    assert re.search(r"class='ratio'>\d+%<", report_page)


def test_report_renders_in_headless_chromium(report_page: str, tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    page = tmp_path / "page.html"
    page.write_text(report_page)
    profile = tmp_path / "profile"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ]  # fmt: skip
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="conversion-chart"' in dom.stdout
    assert "<polyline" in dom.stdout
    assert "Funnel: people by stage" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.exists()
    assert shot.stat().st_size > 10_000  # a blank page compresses to a few hundred bytes


def test_unknown_run_is_a_clear_error(connector_env, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--run", "nope", "--html", str(tmp_path / "r.html")])
    assert exit_info.value.code == 2
    assert "--run nope" in capsys.readouterr().err
