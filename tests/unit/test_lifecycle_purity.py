"""The lifecycle core stays pure: no I/O modules, no clock, no randomness (STYLE practice 9)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import connector.lifecycle

PACKAGE = Path(connector.lifecycle.__file__).parent
FORBIDDEN_MODULES = {
    "requests",
    "urllib3",
    "httpx",
    "aiohttp",
    "http.client",
    "hubspot",
    "simple_salesforce",
    "sqlalchemy",
    "sqlite3",
    "psycopg",
    "psycopg2",
    "tenacity",
    "werkzeug",
    "connector.crm",
    "connector.state",
    "connector.engine",
}
ALLOWED_IMPORTS = {
    "__future__",
    "bisect",
    "collections",
    "dataclasses",
    "datetime",
    "itertools",
    "math",
    "numpy",  # arithmetic on arrays (the column-wise signals): no I/O, no clock, no randomness used
    "operator",
    "re",
    "typing",
    "zoneinfo",  # the tz database: read-only data, the same answer every time (business hours)
    "connector",
}
ALLOWED_CONNECTOR = (
    "connector.lifecycle",
    "connector.mapping.schema",
    "connector.mapping.expressions",
    "connector.model",
)


def test_importing_lifecycle_loads_no_io_modules() -> None:
    code = "import json, sys, connector.lifecycle; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(result.stdout))
    leaked = {
        name for name in loaded if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_MODULES)
    }
    assert leaked == set()


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_sources_import_only_pure_modules_and_never_read_the_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            )
            for name in names:
                assert name.split(".")[0] in ALLOWED_IMPORTS, f"{path.name} imports {name}"
                if name.startswith("connector"):
                    assert name.startswith(ALLOWED_CONNECTOR), f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"now", "utcnow", "today", "time"}, (
                f"{path.name} reads the clock: .{node.attr}"
            )
