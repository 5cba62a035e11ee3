"""The demo (``scripts/demo``) runs end to end: history written, broken, repaired, rendered offline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy_continuum")

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "run_demo.py"


def test_demo_repairs_history_and_renders_offline_sql(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, str(DEMO), "--url", f"sqlite:///{database}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    fixed = re.fullmatch(r"OK: version tables repaired \((\d+) rows fixed\)", last)
    assert fixed and int(fixed[1]) > 0, last
    assert database.exists()
    # The offline (--sql) rendering of revision 0002.
    assert "UPDATE article_version SET end_transaction_id" in result.stdout
    assert "UPDATE translation_version SET title_mod" in result.stdout
    assert "UPDATE alembic_version SET version_num='0002'" in result.stdout
