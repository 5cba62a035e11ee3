"""The checkout passes ruff (lint and format) and mypy, with the configuration in pyproject.toml.

These run in the suite so that ``./scripts/test`` (and CI through it) fails on a lint, format or type
error; the ``test`` extra installs both tools.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("ruff", "check", "--no-cache", "."), id="ruff-check"),
        pytest.param(("ruff", "format", "--check", "--no-cache", "."), id="ruff-format"),
        pytest.param(("mypy", "alembic_versioning"), id="mypy"),
    ],
)
def test_lint(command: tuple[str, ...]) -> None:
    run(*command)
