"""Offline scripts applied with the databases' own command-line clients, as users apply them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa


def apply_with_client(engine: sa.Engine, script: str, cwd: Path, *, fails: bool = False) -> str:
    """Apply an offline script as a user would, ``sqlite3 -bail``, ``psql -1 -v ON_ERROR_STOP=1`` or
    ``mariadb --batch`` (stopping at the first error, and failing then unless it ``fails``): the
    client's errors."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        command, env = ["sqlite3", "-bail", str(url.database)], dict(os.environ)
    elif engine.dialect.name == "mariadb":
        command = ["mariadb", "--batch", f"--host={url.host}", f"--port={url.port}", f"--user={url.username}"]
        command += [str(url.database)]
        env = {**os.environ, "MYSQL_PWD": url.password or ""}
    else:
        command = ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", str(url.host), "-p", str(url.port)]
        command += ["-U", str(url.username), "-d", str(url.database), "-f", "-"]
        env = {**os.environ, "PGPASSWORD": url.password or "", "PGCLIENTENCODING": "UTF8"}
    if shutil.which(command[0]) is None:
        missing = f"the {command[0]} client is not installed"
        pytest.fail(f"{missing} (Debian: apt-get install sqlite3 postgresql-client mariadb-client)")
    done = subprocess.run(command, input=script, text=True, capture_output=True, cwd=cwd, env=env, timeout=60)
    assert (done.returncode != 0) == fails, done.stderr
    return done.stderr
