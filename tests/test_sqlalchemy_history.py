"""sqlalchemy-history (Continuum's fork) is read through the same manager attributes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_discovery_drift_and_backfill_with_sqlalchemy_history() -> None:
    script = Path(__file__).parent / "support" / "history_check.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("OK")
