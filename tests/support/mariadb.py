"""A throwaway MariaDB server for the tests: ``mariadb-install-db`` into a directory of the
pytest basetemp, ``mariadbd`` on a free loopback port, stopped at the end of the session.

MariaDB refuses to run as root without ``--user``; when the tests run as root the server's
directory is handed to an unprivileged user (``MARIADB_TEST_USER``, default ``nobody``), which
is let through the directory's (root-owned, private) parents, as ``pg_ctl.sh`` does for
PostgreSQL. The server's time zone is not UTC (``+05:00``), so a statement that wrote local time
where Continuum writes UTC would show; its collation is MariaDB's default for ``utf8mb4``
(``utf8mb4_general_ci``: case- and trailing-space-insensitive), as users have it, so a comparison
that took the collation's word for a change would show (``ALEMBIC_VERSIONING_TEST_MARIADB_COLLATION``
runs the suite under another, e.g. ``utf8mb4_bin``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

#: Where Debian puts the server; ``scripts/test`` installs it (``mariadb-server-core``).
SERVER_PATHS = ("/usr/sbin/mariadbd", "/usr/bin/mariadbd")
START_TIMEOUT = 60
#: The server's own time zone: anything but UTC.
TIME_ZONE = "+05:00"
#: The server's collation (``ALEMBIC_VERSIONING_TEST_MARIADB_COLLATION``); by default MariaDB's
#: own for utf8mb4, ``utf8mb4_general_ci``: case- and trailing-space-insensitive, as users have it.
COLLATION = os.environ.get("ALEMBIC_VERSIONING_TEST_MARIADB_COLLATION", "")


def find_server() -> str | None:
    """The ``mariadbd`` executable, or ``None`` where MariaDB is not installed."""
    found = shutil.which("mariadbd")
    return found or next((p for p in SERVER_PATHS if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(user: str | None, command: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if user else command


@dataclass
class MariaDBServer:
    """A running server: root connects over TCP on ``port`` without a password."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, directory: Path, executable: str) -> MariaDBServer:
        user = None
        if os.geteuid() == 0:
            user = os.environ.get("MARIADB_TEST_USER", "nobody")
            uid = pwd.getpwnam(user).pw_uid
            os.chown(directory, uid, -1)
            up = directory.parent
            while up != up.parent:  # let the user through the private basetemp's parents
                up.chmod(up.stat().st_mode | 0o001)
                up = up.parent
        data = directory / "data"
        install = shutil.which("mariadb-install-db") or "mariadb-install-db"
        subprocess.run(
            _as_user(
                user,
                [
                    install,
                    "--no-defaults",
                    f"--datadir={data}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
            ),
            check=True,
            capture_output=True,
            cwd=directory,
        )
        log = directory / "server.log"
        for _ in range(5):  # another process may take the port between picking and binding it
            port = _free_port()
            process = subprocess.Popen(
                _as_user(
                    user,
                    [
                        executable,
                        "--no-defaults",
                        f"--datadir={data}",
                        f"--port={port}",
                        "--bind-address=127.0.0.1",
                        f"--socket={directory / 'mariadb.sock'}",
                        f"--pid-file={directory / 'mariadb.pid'}",
                        f"--log-error={log}",
                        f"--tmpdir={data}",  # its own, not the shared /tmp (on-disk temporary tables)
                        f"--default-time-zone={TIME_ZONE}",
                        "--skip-name-resolve",
                        "--skip-log-bin",
                        "--innodb-buffer-pool-size=64M",
                        "--innodb-log-file-size=16M",
                        "--innodb-flush-log-at-trx-commit=0",
                        "--innodb-doublewrite=0",
                        "--character-set-server=utf8mb4",
                        *([f"--collation-server={COLLATION}"] if COLLATION else []),
                    ],
                ),
                cwd=directory,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            server = cls(directory, port, process)
            if server._wait_ready():
                return server
            server.stop()
        raise RuntimeError(f"mariadbd did not start; see {log}:\n{log.read_text() if log.exists() else ''}")

    def _wait_ready(self) -> bool:
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if self.process.poll() is not None:
                return False
            try:
                engine = sa.create_engine(self.url(None))
                with engine.connect():
                    pass
                engine.dispose()
                return True
            except sa.exc.OperationalError:
                time.sleep(0.1)
        return False

    def url(self, database: str | None) -> sa.URL:
        return sa.URL.create(
            "mariadb+pymysql",
            username="root",
            host="127.0.0.1",
            port=self.port,
            database=database,
            query={"charset": "utf8mb4"},
        )

    def stop(self) -> None:
        """Stop the server (its process group: ``runuser`` and ``mariadbd``) and wait for it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
