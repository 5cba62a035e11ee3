"""The demo (``examples/demo/run_demo.py``) run as ``scripts/demo`` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "run_demo.py"


def run_demo(url: str, generated: Path) -> str:
    """Run the demo on ``url`` with its generated revisions in ``generated``; its output."""
    result = subprocess.run(
        [sys.executable, str(DEMO), "--url", url, "--generated", str(generated)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    fixed = re.fullmatch(
        r"OK: version tables repaired \((\d+) rows fixed by 0002, then the drift autogenerate found\)", last
    )
    assert fixed and int(fixed[1]) > 0, last
    return result.stdout
