"""Autogenerate's attribution options: ``transaction`` and ``meta`` rendered into every generated
backfill, values read from the environment when the script runs, and the default comment naming
the revision where the transaction table has a meta table (and nothing of meta where it has none)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError
from sqlalchemy_continuum.plugins import TransactionMetaPlugin

from alembic_versioning import BackfillVersionsOp
from alembic_versioning.autogenerate.attribution import FromEnvironment, RevisionComment
from alembic_versioning.autogenerate.options import Options

from .conftest import fresh_database
from .support.apps import App, versioned_app, write_history
from .support.autogen import REVISION, apply, produce, render
from .support.dialects import sql_text
from .support.migrate import execute_script
from .support.project import Project, managed

TOML = """\
[tool.alembic.versioning]
transaction = { remote_addr = { env = "DEPLOY_HOST", default = "unknown" } }
meta = { ticket = "OPS-1", deployed_by = { env = "DEPLOY_USER" } }
"""


@pytest.fixture
def twin(engine: sa.Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A second fresh database of ``engine``'s dialect, for the offline script."""
    with fresh_database(engine.dialect.name, request, tmp_path / "twin.db") as twin:
        yield twin


def test_options_from_each_source() -> None:
    """env.py mappings, pyproject tables and the ini file's JSON give the same options."""
    expected = Options(
        transaction={"remote_addr": FromEnvironment("DEPLOY_HOST", "unknown")},
        meta={"ticket": "OPS-1", "deployed_by": FromEnvironment("DEPLOY_USER")},
    )
    given = {
        "transaction": {"remote_addr": {"env": "DEPLOY_HOST", "default": "unknown"}},
        "meta": {"ticket": "OPS-1", "deployed_by": {"env": "DEPLOY_USER"}},
    }
    assert Options.from_settings(given) == expected
    ini = {
        "transaction": '{"remote_addr": {"env": "DEPLOY_HOST", "default": "unknown"}}',
        "meta": '{"ticket": "OPS-1", "deployed_by": {"env": "DEPLOY_USER"}}',
    }
    assert Options.from_settings(ini) == expected
    assert repr(expected.meta) == "{'ticket': 'OPS-1', 'deployed_by': os.environ.get('DEPLOY_USER')}"
    assert repr(expected.transaction) == "{'remote_addr': os.environ.get('DEPLOY_HOST', 'unknown')}"


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"meta": "{not json"}, r"option 'meta': .* is not JSON; write a JSON object, e\.g\. meta = "),
        ({"meta": ["a"]}, r"option 'meta' takes a mapping of names"),
        ({"transaction": {"id": 1}}, r"cannot set 'id'"),
        ({"meta": {"by": {"env": ""}}}, r"'by': .* is no environment lookup; write \{\"env\": \"NAME\"\}"),
        ({"meta": {"by": {"environ": "USER"}}}, r"is no environment lookup"),
        ({"transaction": {"user_id": [1]}}, r"'user_id': \[1\] is neither a string, a number"),
    ],
)
def test_bad_attribution_options(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(CommandError, match=error):
        Options.from_settings(settings)


def bulk_insert(engine: sa.Engine, app: App) -> None:
    """A history, then an article inserted without a version: autogenerate backfills it."""
    app.metadata.create_all(engine)
    write_history(engine, app, seed=5)
    with engine.begin() as conn:
        conn.execute(sa.insert(app.table("article")).values(id=900, name="raw"))


def newest_record(engine: sa.Engine) -> tuple[str | None, dict[str, str]]:
    """The newest transaction record: its ``remote_addr`` and its meta."""
    with engine.connect() as conn:
        tx, remote = conn.execute(sql_text(conn, 'SELECT id, remote_addr FROM "transaction" ORDER BY id DESC')).first()
        meta = conn.execute(
            sql_text(conn, 'SELECT "key", value FROM transaction_meta WHERE transaction_id = :t'), {"t": tx}
        )
        return remote, dict(meta.all())


def test_a_deploy_records_who_ran_it(
    engine: sa.Engine, twin: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``alembic revision --autogenerate`` renders the options; ``alembic upgrade`` (online, and
    ``--sql``) records the environment's values when it runs, and the revision in the comment."""
    with versioned_app(plugins=(TransactionMetaPlugin(),)) as app:
        for database in (engine, twin):
            bulk_insert(database, app)
        project = Project(tmp_path / "project", app.metadata, managed(app), toml=TOML)
        monkeypatch.setenv("DEPLOY_USER", "at generation time")
        script = project.revision(engine)
        text = Path(script.path).read_text()
        assert "\nimport os\n" in text
        assert (
            "transaction={'remote_addr': os.environ.get('DEPLOY_HOST', 'unknown')}, meta={'comment': "
            "'alembic revision ' + revision, 'ticket': 'OPS-1', 'deployed_by': os.environ.get('DEPLOY_USER')}"
        ) in text

        monkeypatch.setenv("DEPLOY_USER", "alice")
        project.run(engine, command.upgrade, "head")
        comment = f"alembic revision {script.revision}"
        assert newest_record(engine) == ("unknown", {"comment": comment, "ticket": "OPS-1", "deployed_by": "alice"})

        monkeypatch.setenv("DEPLOY_USER", "bob")
        monkeypatch.setenv("DEPLOY_HOST", "10.1.1.1")
        execute_script(twin, project.offline(twin, "head"))  # read when the script is rendered
        assert newest_record(twin) == ("10.1.1.1", {"comment": comment, "ticket": "OPS-1", "deployed_by": "bob"})


def test_no_meta_table_no_meta(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TransactionMetaPlugin the backfill gets the ``transaction`` values, no meta (neither
    the comment nor the option's), and runs."""
    with versioned_app() as app:
        bulk_insert(engine, app)
        options = {"transaction": {"remote_addr": {"env": "DEPLOY_HOST"}}, "meta": {"ticket": "OPS-1"}}
        script = produce(engine, app.metadata, alembic_versioning=options)
        (backfill,) = [op for op in script.upgrade_ops.ops if isinstance(op, BackfillVersionsOp)]
        assert backfill.meta == {} and backfill.transaction == {"remote_addr": FromEnvironment("DEPLOY_HOST")}
        monkeypatch.setenv("DEPLOY_HOST", "10.2.2.2")
        apply(engine, render(engine, script))
        with engine.connect() as conn:
            remote = conn.execute(sql_text(conn, 'SELECT remote_addr FROM "transaction" ORDER BY id DESC')).scalar()
        assert remote == "10.2.2.2"


def test_the_default_comment_alone(engine: sa.Engine) -> None:
    """With no options, a meta table gets the comment naming the revision, and nothing else."""
    with versioned_app(plugins=(TransactionMetaPlugin(),)) as app:
        bulk_insert(engine, app)
        script = produce(engine, app.metadata)
        (backfill,) = [op for op in script.upgrade_ops.ops if isinstance(op, BackfillVersionsOp)]
        assert backfill.meta == {"comment": RevisionComment()} and backfill.transaction == {}
        code = render(engine, script)
        assert "meta={'comment': 'alembic revision ' + revision}" in code and "os." not in code
        apply(engine, code)
        assert newest_record(engine)[1] == {"comment": f"alembic revision {REVISION}"}
