"""The lowest Alembic and SQLAlchemy that pyproject.toml allows, together, on SQLite and PostgreSQL.

Alembic 1.13.0 and SQLAlchemy 2.0.28 (the first with the ``preserve_rowcount`` execution option the
operations count their rows with; 2.0.27 logs -1 on PostgreSQL) are installed with pip into a
directory under the system temp dir (kept, so re-runs need no download) and put first on
``PYTHONPATH`` of a pytest subprocess, where they shadow the installed releases. It runs the tests of
the operations (autogenerate through the plugin needs Alembic 1.20.1: test_legacy_alembic.py runs
its fallback on old Alembic releases). All of test_backfill.py, test_end_transaction_ids.py,
test_mod_flags.py and test_vacuum.py passed on these versions when the bounds were set. The
versions are read from pyproject.toml, so that a bound raised there is the one tested here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The operations' tests run on the lowest versions (SQLite and PostgreSQL each), without their
#: largest parametrized matrices (these take two thirds of the time and exercise no other API).
TESTS = [
    "tests/test_backfill.py",
    "tests/test_end_transaction_ids.py",
    "-k",
    "not test_equals_what_continuum_writes and not test_repairs_to_what_continuum_wrote"
    " and not test_bad_input_is_refused_and_writes_nothing",
]


def lowest(requirement_name: str) -> str:
    """The lowest version pyproject.toml's ``>=`` bound allows for ``requirement_name``."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    (spec,) = [d for d in dependencies if re.match(rf"{requirement_name}\b", d, re.IGNORECASE)]
    found = re.search(r">=\s*([\d.]+)", spec)
    assert found, spec
    version = found[1]
    return version if version.count(".") == 2 else f"{version}.0"


def install(*requirements: str) -> Path:
    """A directory holding ``requirements`` alone, installed once per machine and reused."""
    name = "-".join(r.replace("==", "-") for r in requirements)
    target = Path(tempfile.gettempdir()) / f"alembic-versioning-tests-{name}"
    if not (target / ".complete").exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(staging)]
        subprocess.run([*pip, *requirements], check=True)
        (staging / ".complete").touch()
        try:
            staging.rename(target)  # atomic: a concurrent or interrupted run never sees half an install
        except OSError:  # another run installed it first
            shutil.rmtree(staging)
    return target


def test_operations_on_the_lowest_alembic_and_sqlalchemy(tmp_path: Path) -> None:
    alembic, sqlalchemy = lowest("alembic"), lowest("SQLAlchemy")
    assert (alembic, sqlalchemy) == ("1.13.0", "2.0.28")  # update the docstring when a bound moves
    target = install(f"alembic=={alembic}", f"SQLAlchemy=={sqlalchemy}")
    pythonpath = [str(target), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    check = "import alembic, sqlalchemy; print(alembic.__version__, sqlalchemy.__version__)"
    versions = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True)
    assert versions.stdout.split() == [alembic, sqlalchemy]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'pt'}", *TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
