"""sqlalchemy-history (Continuum's fork) is read through the same manager attributes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa


def test_discovery_drift_and_backfill_with_sqlalchemy_history(engine: sa.Engine) -> None:
    """Also its version tables' enums of their own (``history_status``), which PostgreSQL neither
    compares with nor assigns from the live table's enum."""
    script = Path(__file__).parent / "support" / "history_check.py"
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, str(script), url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("OK")
