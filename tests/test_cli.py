"""The ``alembic-versioning`` console script, end to end: run in a subprocess in an Alembic project
whose ``env.py`` does not enable the plugin (it reads the URL from ``alembic.ini`` or ``-x url=``
and imports the application's models, as a framework's packaged env.py does).

The script is run as pip installs it (a launcher calling the ``[project.scripts]`` entry point,
:func:`console_script`) and once as ``python -m alembic_versioning.cli``. Its repairs are compared
with those of the migration ``alembic revision --autogenerate`` writes (the real ``alembic``
command, the plugin enabled by ``-x plugin=on``), and with its ``--sql`` script applied by the
database's own client.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import alembic
import pytest
import sqlalchemy as sa

from alembic_versioning.cli import OP_CLASSES, takes_batch_size

from .conftest import fresh_database
from .support.apps import versioned_app
from .support.clients import apply_with_client
from .support.project import history_with_drift, state

ROOT = Path(__file__).parents[1]

ENV_PY = '''\
"""A project environment that knows nothing of alembic-versioning (unless -x plugin=on)."""

import sqlalchemy as sa
from alembic import context

from tests.support.apps import versioned_app

config = context.config
x = context.get_x_argument(as_dictionary=True)
app = versioned_app(mod_tracker=True).__enter__()  # the application's models
target_metadata = app.metadata
url = x.get("url") or config.get_main_option("sqlalchemy.url")
plugins = ["alembic.autogenerate.*", "alembic_versioning.*"] if x.get("plugin") == "on" else ["alembic.autogenerate.*"]

if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with sa.create_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, autogenerate_plugins=plugins)
        with context.begin_transaction():
            context.run_migrations()
'''

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
path_separator = os
{url}
[alembic_versioning]
vacuum = true
"""


def url_of(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@dataclass
class Done:
    """A finished command: exit status and output."""

    status: int
    out: str
    err: str


@pytest.fixture(scope="session")
def console_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``alembic-versioning`` as pip writes it: a launcher calling the entry point ``[project.scripts]``
    declares, on this checkout (tests/test_packaging.py runs the one pip installs from the wheel)."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["alembic-versioning"].split(":")
    path = tmp_path_factory.mktemp("bin") / "alembic-versioning"
    path.write_text(
        f"#!{sys.executable}\nimport re\nimport sys\nfrom {module} import {function}\n"
        f"if __name__ == '__main__':\n"
        f"    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n"
    )
    path.chmod(0o755)
    return path


@dataclass
class CliProject:
    """An Alembic project in a directory, driven by the console script and by ``alembic``."""

    path: Path
    script: Path
    url_in_ini: str | None = None

    def __post_init__(self) -> None:
        (self.path / "migrations" / "versions").mkdir(parents=True)
        (self.path / "migrations" / "env.py").write_text(ENV_PY)
        template = Path(alembic.__file__).parent / "templates" / "generic" / "script.py.mako"
        (self.path / "migrations" / "script.py.mako").write_text(template.read_text())
        url = f"sqlalchemy.url = {self.url_in_ini.replace('%', '%%')}\n" if self.url_in_ini else ""
        (self.path / "alembic.ini").write_text(ALEMBIC_INI.format(url=url))

    def run(self, *command: str | Path, input: str | None = None) -> Done:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("ALEMBIC_CONFIG", None)
        done = subprocess.run(
            [str(c) for c in command], cwd=self.path, env=env, capture_output=True, text=True, timeout=120
        )
        return Done(done.returncode, done.stdout, done.stderr)

    def cli(self, *args: str) -> Done:
        return self.run(self.script, *args)

    def alembic(self, *args: str) -> Done:
        done = self.run(sys.executable, "-m", "alembic", *args)
        assert done.status == 0, done.err
        return done


def x_url(engine: sa.Engine, project: CliProject) -> list[str]:
    """``-x url=...`` unless the project's alembic.ini names the database."""
    return [] if project.url_in_ini else ["-x", f"url={url_of(engine)}"]


@pytest.fixture
def third(engine: sa.Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    with fresh_database(engine.dialect.name, request, tmp_path / "third.db") as third:
        yield third


@pytest.fixture
def twin(engine: sa.Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    with fresh_database(engine.dialect.name, request, tmp_path / "twin.db") as twin:
        yield twin


def test_check_repair_as_the_generated_migration(
    engine: sa.Engine, twin: sa.Engine, third: sa.Engine, tmp_path: Path, console_script: Path
) -> None:
    """check fails on drift; ``repair --dry-run`` and ``--sql`` change nothing; ``repair`` writes
    what the generated migration writes in a twin database, and what its ``--sql`` script writes
    applied by ``sqlite3`` / ``psql``; then check passes and a second repair writes nothing.
    SQLite reads the URL from alembic.ini, PostgreSQL from ``-x url=``."""
    project = CliProject(
        tmp_path / "project", console_script, url_of(engine) if engine.dialect.name == "sqlite" else None
    )
    x = x_url(engine, project)
    with versioned_app(mod_tracker=True) as app:
        for database in (engine, twin, third):
            history_with_drift(database, app)
        drifted = state(engine, app)

        checked = project.cli("check", *x)
        assert checked.status == 1, checked.err
        rows = [re.split(r"\s{2,}", line) for line in checked.out.splitlines()]
        assert rows[0] == ["TABLE", "REPAIR", "FOUND"]
        assert [
            "article",
            "backfill_versions",
            "3 live rows without a current version, 1 stale current version, 1 deleted row without a DELETE version",
        ] in rows
        assert ["tag", "-", "no drift"] in rows
        assert {(row[0], row[1]) for row in rows[1:-1]} >= {
            ("article", "update_end_transaction_ids"),
            ("article", "update_mod_flags"),
            ("translation", "vacuum_versions"),
        }
        assert checked.out.splitlines()[-1] == "drift in 2 of 4 versioned table(s): run `alembic-versioning repair`"

        dry = project.cli("repair", "--dry-run", *x)
        assert dry.status == 0, dry.err
        assert "# 3 live rows without a current version, 1 stale current version" in dry.out
        assert "\nversioning.backfill_versions('article', primary_key=['id'], columns=['name', 'content'" in dry.out
        sql = project.cli("repair", "--sql", *x)
        assert sql.status == 0, sql.err
        assert sql.out.startswith("BEGIN;") and sql.out.rstrip().endswith("COMMIT;")
        assert "-- backfill_versions('article'): 3 live rows without a current version" in sql.out
        assert state(engine, app) == drifted

        repaired = project.cli("repair", *x)
        assert repaired.status == 0, repaired.err
        assert re.search(r"^\[1/4\] update_end_transaction_ids\('article'\): \d+ versions", repaired.out, re.M)
        assert re.search(r"^    done in \d+\.\d\d s$", repaired.out, re.M)
        assert repaired.out.splitlines()[-1] == "committed 4 repair(s)"
        after = state(engine, app)
        assert after != drifted

        clean = project.cli("check", *x)
        assert (clean.status, clean.out.splitlines()[-1]) == (0, "no drift in 4 versioned table(s)")
        again = project.cli("repair", *x)
        assert (again.status, again.out) == (0, "no drift: nothing to repair\n")
        assert state(engine, app) == after  # no transaction record either

        # the twin, by the migration autogenerate writes (plugin enabled), with the real alembic command
        twin_project = CliProject(tmp_path / "twin", console_script)
        twin_x = ["-x", f"url={url_of(twin)}", "-x", "plugin=on"]
        twin_project.alembic(*twin_x, "revision", "--autogenerate", "-m", "repair drift")
        twin_project.alembic(*twin_x, "upgrade", "head")
        assert state(twin, app) == after

        apply_with_client(third, sql.out, tmp_path)
        assert state(third, app) == after


def test_python_module_and_table_filter(sqlite_engine: sa.Engine, tmp_path: Path, console_script: Path) -> None:
    """``python -m alembic_versioning.cli`` runs the same command; ``--table`` repairs one table only."""
    project = CliProject(tmp_path / "project", console_script, url_of(sqlite_engine))
    with versioned_app(mod_tracker=True) as app:
        history_with_drift(sqlite_engine, app)
        repaired = project.run(sys.executable, "-m", "alembic_versioning.cli", "repair", "--table", "translation")
        assert repaired.status == 0, repaired.err
        assert repaired.out.splitlines()[0].startswith("[1/1] vacuum_versions('translation'): ")
        checked = project.cli("-c", "alembic.ini", "check")  # alembic's options before the subcommand too
        assert checked.status == 1
        assert "translation  -                           no drift" in checked.out
        assert project.cli("repair", "--table", "tag").out == "no drift: nothing to repair\n"


def test_refusals_are_one_line(sqlite_engine: sa.Engine, tmp_path: Path, console_script: Path) -> None:
    project = CliProject(tmp_path / "project", console_script, url_of(sqlite_engine))
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(sqlite_engine)

    def fails(*args: str, message: str) -> None:
        done = project.cli(*args)
        assert done.status == 2, done
        assert done.out == "" and done.err.count("\n") == 1 and "Traceback" not in done.err, done.err
        assert re.fullmatch(f"alembic-versioning: error: {message}\n", done.err), done.err

    fails("repair", "--table", "nope", message=r"--table nope: not a versioned table compared here \(they are: .*\)")
    fails("check", "-c", "missing.ini", message="-c missing.ini: no such file")
    fails("check", "-x", "url=sqlite:////nonexistent/dir/db", message=r"OperationalError: .*--raiseerr.*")
    if all(takes_batch_size(c) for c in OP_CLASSES):
        assert project.cli("repair", "--batch-size", "100").status == 0
        for seconds in ("-1", "nan", "inf", "86401"):
            fails(
                "repair", "--batch-seconds", seconds, message=rf"--batch-seconds {seconds}: give 0 to 86400 seconds .*"
            )
        fails(
            "repair", "--sql", "--batch-size", "5", message=r"--batch-size, --batch-seconds: batches run online only.*"
        )
    else:
        fails("repair", "--batch-size", "100", message=r"--batch-size: not supported yet by .*")
    (project.path / "migrations" / "versions" / "a1_first.py").write_text(
        'revision = "a1"\ndown_revision = None\n\ndef upgrade():\n    pass\n\ndef downgrade():\n    pass\n'
    )
    fails("check", message="the database is not at the head revision: run `alembic upgrade heads` first.*")


def test_repair_batches_as_told(sqlite_engine: sa.Engine, tmp_path: Path, console_script: Path) -> None:
    """``--batch-size`` and ``--batch-seconds`` override the batching autogenerate gives large
    tables (here every table: ``batch_threshold = 1``); ``--sql`` prints them unbatched."""
    project = CliProject(tmp_path / "project", console_script, url_of(sqlite_engine))
    with (project.path / "alembic.ini").open("a") as ini:
        ini.write("batch_threshold = 1\n")
    env = project.path / "migrations" / "env.py"
    env.write_text("import logging\nlogging.basicConfig(level=logging.INFO, format='%(message)s')\n" + env.read_text())
    with versioned_app(mod_tracker=True) as app:
        history_with_drift(sqlite_engine, app)
        drifted = state(sqlite_engine, app)
        dry = project.cli("repair", "--dry-run")
        assert dry.status == 0 and "batch_size=10000" in dry.out, dry
        sql = project.cli("repair", "--sql")
        assert sql.status == 0 and "batch" not in sql.out and "BEGIN" in sql.out, sql
        assert state(sqlite_engine, app) == drifted
        repaired = project.cli("repair", "--batch-size", "4", "--batch-seconds", "0")
        assert repaired.status == 0, repaired.err
        summaries = re.findall(
            r"^\w+ \w+: \d+ .* \(\d+ entities in \d+ batches of (.*), [\d.]+ s\)$", repaired.err, re.M
        )
        assert summaries == ["up to 4"] * 4, repaired.err  # batch_seconds=0: 4 each (else 1, 2, 4...)
        assert project.cli("check").status == 0


def test_missing_config_and_help(tmp_path: Path, console_script: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([console_script, "check"], cwd=empty, capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (
        2,
        "alembic-versioning: error: no alembic.ini here: run in the project's directory or give -c "
        "path/to/alembic.ini\n",
    )
    for args in (["--help"], ["check", "--help"], ["repair", "--help"]):
        shown = subprocess.run([console_script, *args], cwd=empty, capture_output=True, text=True)
        assert shown.returncode == 0 and shown.stdout.startswith("usage: alembic-versioning"), shown
    usage = subprocess.run([console_script, "repair", "--sql", "--dry-run"], cwd=empty, capture_output=True, text=True)
    assert usage.returncode == 2 and "not allowed with argument" in usage.stderr


def test_entry_point_is_declared() -> None:
    scripts: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"alembic-versioning": "alembic_versioning.cli:main"}


def test_left_out_repairs_and_schema_mismatch(sqlite_engine: sa.Engine, tmp_path: Path, console_script: Path) -> None:
    """A repair autogenerate leaves out (no transaction table to record a backfill in) is reported
    with its reason and not run: ``repair`` runs the others and exits 1, as the drift stays. A
    database lacking columns the models have is refused, naming them."""
    project = CliProject(tmp_path / "project", console_script, url_of(sqlite_engine))
    with versioned_app(mod_tracker=True) as app:
        history_with_drift(sqlite_engine, app)
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text('ALTER TABLE "transaction" RENAME TO transaction_old'))
    reason = (
        "alembic-versioning: left out backfill_versions('article'): its transaction table 'transaction' does not "
        "exist; create Continuum's transaction table, or write the backfill by hand naming one with "
        "transaction_table=...\n"
    )
    checked = project.cli("check")
    assert checked.status == 1 and checked.err == reason
    assert re.search(
        r"^article +backfill_versions \(left out\) +3 live rows without a current version", checked.out, re.M
    )
    repaired = project.cli("repair")
    assert repaired.status == 1
    assert repaired.out.splitlines()[-1] == "committed 3 repair(s)" and "backfill_versions" not in repaired.out
    assert repaired.err == reason + "1 repair(s) left out: their drift stays (see above)\n"
    rows = project.cli("check").out.splitlines()
    assert [row.split()[:2] for row in rows[1:-1] if "no drift" not in row] == [["article", "backfill_versions"]]

    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE article_version DROP COLUMN content_mod"))
    refused = project.cli("check")
    assert (refused.status, refused.err) == (
        2,
        "alembic-versioning: error: the database does not match the models (article_version lacks content_mod): "
        "migrate the schema first (`alembic check` lists the changes)\n",
    )
