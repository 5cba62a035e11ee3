"""Autogenerate through Alembic's commands: ``check``, ``revision --autogenerate``, ``upgrade``
(online and ``--sql``), ``downgrade``, on an Alembic project written to ``tmp_path``.

The project's ``env.py`` takes the application's metadata and the connection from
``config.attributes`` (Alembic's cookbook pattern for sharing a connection with commands) and
enables the plugin with ``autogenerate_plugins``; the script template is Alembic's own generic one,
so ``import alembic_versioning`` in a generated script comes from the renderer. Histories are
written by SQLAlchemy-Continuum's ORM (:mod:`tests.support.apps`), then broken with Core SQL.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError
from sqlalchemy.orm import Session
from sqlalchemy_continuum.plugins import TransactionChangesPlugin

from .conftest import fresh_database
from .support.apps import App, joined_app, keyless_links, snapshot, versioned_app, write_history
from .support.migrate import execute_script
from .support.project import ALEMBIC_INI, ENV_PY, Project, history_with_drift, managed, state


@pytest.fixture
def twin(engine: sa.Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A second fresh database of ``engine``'s dialect."""
    with fresh_database(engine.dialect.name, request, tmp_path / "twin.db") as twin:
        yield twin


def assert_op(text: str, comment: str, call: str) -> None:
    """``text`` holds ``call`` (the start of an ``op.`` line) right below the comment ``# comment``."""
    pattern = rf"\n    # {comment}\n    {re.escape(call)}"
    assert re.search(pattern, text), f"{pattern!r} not in:\n{text}"


def upgrade_and_downgrade(text: str) -> tuple[str, str]:
    upgrade, downgrade = text.split("\ndef downgrade()")
    return upgrade, downgrade


# -- Continuum's own histories: nothing to repair ------------------------------------------------


@pytest.mark.parametrize(
    ("mod_tracker", "options", "by_manager"),
    [(False, {}, True), (True, {}, True), (True, {"strategy": "subquery"}, True), (True, {}, False)],
    ids=["plain", "mod-tracker", "subquery", "mod-tracker-by-convention"],
)
def test_check_passes_on_histories_continuum_wrote(
    engine: sa.Engine, tmp_path: Path, mod_tracker: bool, options: dict[str, Any], by_manager: bool
) -> None:
    with versioned_app(mod_tracker=mod_tracker, **options) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=3, transactions=30)
        attributes = managed(app, vacuum=True) if by_manager else {"alembic_versioning": {"vacuum": True}}
        project = Project(tmp_path / "project", app.metadata, attributes)
        assert project.check_failure(engine) is None


def test_check_passes_after_many_to_many_writes(engine: sa.Engine, tmp_path: Path) -> None:
    """Continuum never fills ``end_transaction_id`` of association version tables (and reads
    them with ``max(transaction_id)`` subqueries): that is not drift. Each write to a versioned
    many-to-many relationship leaves such rows, so reporting them fails ``alembic check`` after
    every ordinary write through the ORM."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            article, tags = app.Article(id=1, name="a"), [app.Tag(id=i, label=f"t{i}") for i in (1, 2)]
            article.tags = list(tags)
            session.add(article)
            session.commit()
            article.tags = [tags[1]]
            session.commit()
            article.tags = list(tags)
            session.commit()
        project = Project(tmp_path / "project", app.metadata, managed(app))
        assert project.check_failure(engine) is None


# -- Drift: check fails, revision writes the repairs, upgrade repairs, downgrade/upgrade ---------


def test_drift_check_revision_upgrade_check_downgrade(engine: sa.Engine, twin: sa.Engine, tmp_path: Path) -> None:
    with versioned_app(mod_tracker=True) as app:
        project = Project(tmp_path / "project", app.metadata, managed(app, vacuum=True))
        history_with_drift(engine, app)

        failure = project.check_failure(engine)
        assert failure is not None and failure.startswith("New upgrade operations detected: [")
        for diff in [
            "('update_end_transaction_ids', None, 'article')",
            "('backfill_versions', None, 'article')",
            "('update_mod_flags', None, 'article'",
            "('vacuum_versions', None, 'translation')",
        ]:
            assert diff in failure

        script = project.revision(engine)
        text = Path(script.path).read_text()
        assert "\nfrom alembic_versioning import op as versioning\n" in text
        upgrade, downgrade = upgrade_and_downgrade(text)
        assert_op(
            upgrade,
            r"\d+ versions whose end id is not the next version's transaction id",
            "versioning.update_end_transaction_ids('article', primary_key=['id'], strategy='validity')",
        )
        assert_op(
            upgrade,
            "3 live rows without a current version, 1 stale current version, 1 deleted row without a DELETE version",
            "versioning.backfill_versions('article', primary_key=['id'], columns=['name', 'content', 'score'], "
            "mod_columns=['name', 'content', 'score'], strategy='validity')",
        )
        assert_op(
            upgrade,
            r"\d+ futile versions \(identical to the previous one\)",
            "versioning.vacuum_versions('translation', primary_key=['article_id', 'lang'], columns=['title'], "
            "mod_columns=['title'], strategy='validity')",
        )
        assert_op(upgrade, r"\d+ versions? .*mod flags.*", "versioning.update_mod_flags('article', primary_key=['id']")
        again = "# downgrade: {} again, which changes nothing while the history is correct"
        for name in ("update_end_transaction_ids", "backfill_versions", "vacuum_versions", "update_mod_flags"):
            assert again.format(name) in downgrade
        # Per table, the repairs run in order: chains, futile versions, flags, then the backfill
        # (which closes the latest versions and writes flags of its own).
        order = [
            upgrade.index(f"versioning.{name}('article'")
            for name in ("update_end_transaction_ids", "update_mod_flags", "backfill_versions")
        ]
        assert order == sorted(order)

        # The same drift in a second database, repaired by the offline script instead.
        history_with_drift(twin, app)
        sql = project.offline(twin, "head")
        assert "-- backfill_versions: article_version" in sql and "-- vacuum_versions: translation_version" in sql

        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        repaired = state(engine, app)

        execute_script(twin, sql)
        assert state(twin, app) == repaired
        assert project.check_failure(twin) is None

        project.run(engine, command.downgrade, "-1")
        assert state(engine, app) == repaired  # the downgrade repeated the repairs: nothing to do
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        assert state(engine, app) == repaired
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == script.revision


def test_offline_script_without_target_metadata(engine: sa.Engine, twin: sa.Engine, tmp_path: Path) -> None:
    """Generated ops carry their table's key, columns and flags, so ``--sql`` runs even when the
    offline branch of env.py has no ``target_metadata`` describing the version tables."""
    with versioned_app(mod_tracker=True) as app:
        project = Project(tmp_path / "project", app.metadata, managed(app, vacuum=True))
        history_with_drift(engine, app)
        project.revision(engine)
        project.attributes["offline_metadata"] = None
        history_with_drift(twin, app)
        sql = project.offline(twin, "head")
        project.run(engine, command.upgrade, "head")
        execute_script(twin, sql)
        assert state(twin, app) == state(engine, app)


def test_each_check_separately(engine: sa.Engine, tmp_path: Path) -> None:
    """One drift per revision: each migration holds just its repair and leaves check clean."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=7)
        project = Project(tmp_path / "project", app.metadata, managed(app, vacuum=True))
        assert project.check_failure(engine) is None
        article, versions = app.table("article"), app.version("Article")
        cases: list[tuple[str, Any]] = [
            ("backfill_versions", sa.insert(article).values(id=901, name="raw")),
            ("update_end_transaction_ids", sa.update(versions).values(end_transaction_id=None)),
            ("update_mod_flags", sa.update(versions).where(versions.c.operation_type == 2).values(name_mod=False)),
        ]
        for name, statement in cases:
            with engine.begin() as conn:
                conn.execute(statement)
            failure = project.check_failure(engine)
            assert failure is not None and f"('{name}', None, 'article'" in failure
            script = project.revision(engine, message=name)
            upgrade, _ = upgrade_and_downgrade(Path(script.path).read_text())
            assert re.findall(r"versioning\.(\w+)\(", upgrade) == [name]
            project.run(engine, command.upgrade, "head")
            assert project.check_failure(engine) is None


# -- Schema changes: repairs predicted from the migration itself ---------------------------------


def test_new_version_table_for_existing_rows(engine: sa.Engine, tmp_path: Path) -> None:
    with versioned_app(mod_tracker=True) as app:
        version = app.version("Article")
        app.metadata.create_all(engine, tables=[t for t in app.metadata.sorted_tables if t is not version])
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": i, "name": f"a{i}", "score": i} for i in range(5)])
        project = Project(tmp_path / "project", app.metadata, managed(app))
        assert project.check_failure(engine) is not None

        script = project.revision(engine, message="version articles")
        upgrade, downgrade = upgrade_and_downgrade(Path(script.path).read_text())
        assert "op.create_table('article_version'" in upgrade
        assert_op(
            upgrade,
            "article_version is new: versions for the existing rows of article",
            "versioning.backfill_versions('article', primary_key=['id']",
        )
        assert upgrade.index("op.create_table('article_version'") < upgrade.index("versioning.backfill_versions(")
        assert downgrade.index("versioning.backfill_versions(") < downgrade.index("op.drop_table('article_version')")

        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        rows = snapshot(engine, version)
        assert len(rows) == 5
        assert {row[version.c.keys().index("operation_type")] for row in rows} == {0}

        project.run(engine, command.downgrade, "-1")
        assert not sa.inspect(engine).has_table("article_version")
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        assert len(snapshot(engine, version)) == 5


def test_render_as_batch(engine: sa.Engine, tmp_path: Path) -> None:
    """``score`` becomes versioned: Alembic's batch block adds the columns, then the predicted
    repairs fill its flags and write versions carrying the live values. The downgrade's batch
    block drops them again, then (vacuum on) removes the versions the backfill wrote."""
    with versioned_app(mod_tracker=True, exclude=("score",)) as old:
        old.metadata.create_all(engine)
        write_history(engine, old, seed=2)
        written = snapshot(engine, old.version("Article"))
    with versioned_app(mod_tracker=True) as new:
        options = {**managed(new, vacuum=True), "render_as_batch": True}
        project = Project(tmp_path / "project", new.metadata, options)
        script = project.revision(engine, message="version score")
        upgrade, downgrade = upgrade_and_downgrade(Path(script.path).read_text())
        assert "with op.batch_alter_table('article_version'" in upgrade
        assert downgrade.index("versioning.vacuum_versions('article'") > downgrade.index(
            "with op.batch_alter_table('article_version'"
        )
        assert_op(
            upgrade,
            "mod flag\\(s\\) added for score",
            "versioning.update_mod_flags('article', primary_key=['id'], columns=['score'], insert_flags='non_null', "
            "strategy='validity')",
        )
        assert_op(
            upgrade,
            "column\\(s\\) score added to article and article_version",
            "versioning.backfill_versions('article'",
        )
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        version = new.version("Article")
        with engine.connect() as conn:
            live = dict(conn.execute(sa.select(new.table("article").c.id, new.table("article").c.score)).all())
            latest = sa.select(version.c.id, version.c.score).where(
                version.c.end_transaction_id.is_(None), version.c.operation_type != 2
            )
            assert dict(conn.execute(latest).all()) == live
        project.run(engine, command.downgrade, "-1")
    with versioned_app(mod_tracker=True, exclude=("score",)) as old:
        assert snapshot(engine, old.version("Article")) == written
        assert Project(tmp_path / "old", old.metadata, managed(old, vacuum=True)).check_failure(engine) is None


@pytest.mark.parametrize(
    ("after", "repair", "column"),
    [
        ({"mod_tracker": True, "strategy": "subquery"}, "update_end_transaction_ids", "end_transaction_id"),
        ({"mod_tracker": False}, "update_mod_flags", "name_mod"),
    ],
    ids=["validity-to-subquery", "tracker-off"],
)
def test_downgrade_rebuilds_the_columns_it_brings_back(
    engine: sa.Engine, tmp_path: Path, after: dict[str, Any], repair: str, column: str
) -> None:
    """The upgrade drops the end-transaction column or the mod flags; the downgrade brings them
    back empty, then repairs them (the op autogenerate put first in the upgrade comes last in the
    downgrade): at the old revision, the history is what Continuum wrote (but for INSERT versions'
    flags, which record what the application assigned: rebuilt as ``value IS NOT NULL``)."""

    def history(app: App) -> list[tuple[Any, ...]]:
        version = app.version("Article")
        insert, flags = version.c.keys().index("operation_type"), version.c.keys().index("name_mod")
        return [row[:flags] if row[insert] == 0 else row for row in snapshot(engine, version)]

    with versioned_app(mod_tracker=True) as before:
        before.metadata.create_all(engine)
        write_history(engine, before, seed=4)
        written = history(before)
    with versioned_app(**after) as app:
        project = Project(tmp_path / "project", app.metadata, managed(app))
        upgrade, downgrade = upgrade_and_downgrade(Path(project.revision(engine, "switch").path).read_text())
        assert f"pass  # on downgrade, once the schema is back: {repair}('article')" in upgrade
        assert f"{repair}('article_tag'" not in upgrade + downgrade  # Continuum leaves its end ids NULL
        assert downgrade.index(f"versioning.{repair}('article'") > downgrade.index(f"'{column}'")
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        project.run(engine, command.downgrade, "-1")
    with versioned_app(mod_tracker=True) as before:
        assert history(before) == written
        assert Project(tmp_path / "before", before.metadata, managed(before)).check_failure(engine) is None


@pytest.mark.parametrize("mod_tracker", [True, False], ids=["mod-tracker", "plain"])
def test_downgrade_backfills_a_versioned_column_it_brings_back(
    engine: sa.Engine, tmp_path: Path, mod_tracker: bool
) -> None:
    """The upgrade stops versioning ``content`` (its version column dropped); the downgrade brings
    the column back empty, then backfills the live values (last, after the flags), so the old
    revision's check is clean."""
    with versioned_app(mod_tracker=mod_tracker) as before:
        before.metadata.create_all(engine)
        write_history(engine, before, seed=5)
    with versioned_app(mod_tracker=mod_tracker, exclude=("content",)) as app:
        project = Project(tmp_path / "project", app.metadata, managed(app))
        upgrade, downgrade = upgrade_and_downgrade(Path(project.revision(engine, "unversion").path).read_text())
        assert "pass  # on downgrade, once the schema is back: backfill_versions('article')" in upgrade
        backfill = downgrade.index("versioning.backfill_versions('article'")
        assert (
            backfill > downgrade.index("'content'")
            and downgrade[backfill:].count("versioning.") == 1
            and "op." not in downgrade[backfill:]
        )
        assert "columns=['name', 'score', 'content']" in downgrade[backfill:]
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        project.run(engine, command.downgrade, "-1")
    with versioned_app(mod_tracker=mod_tracker) as before:
        assert Project(tmp_path / "before", before.metadata, managed(before)).check_failure(engine) is None
        with Session(engine) as session:
            for article in session.scalars(sa.select(before.Article)):
                assert article.versions.all()[-1].content == article.content


@pytest.mark.parametrize("mod_tracker", [True, False], ids=["mod-tracker", "plain"])
def test_downgrade_backfills_a_table_it_versions_again(engine: sa.Engine, tmp_path: Path, mod_tracker: bool) -> None:
    """The upgrade stops versioning ``article`` (its version table dropped); the downgrade creates
    ``article_version`` again, empty, then backfills it from the live rows, described as the
    dropped table was: the old revision's check is clean and Continuum reads the versions."""
    with versioned_app(mod_tracker=mod_tracker) as before:
        before.metadata.create_all(engine)
        write_history(engine, before, seed=7)
        after = sa.MetaData()
        for table in before.metadata.sorted_tables:
            if table.name != "article_version":
                table.to_metadata(after)
        project = Project(tmp_path / "project", after, {"alembic_versioning": {"managers": []}})
        upgrade, downgrade = upgrade_and_downgrade(Path(project.revision(engine, "unversion article").path).read_text())
        assert "op.drop_table('article_version')" in upgrade
        assert "pass  # on downgrade, once the schema is back: backfill_versions('article')" in upgrade
        assert_op(
            downgrade,
            "article_version is back, empty: versions for the existing rows of article",
            "versioning.backfill_versions('article', primary_key=['id']",
        )
        assert downgrade.index("versioning.backfill_versions(") > downgrade.index("op.create_table('article_version'")
        flags = "mod_columns=['name', 'content', 'score']" if mod_tracker else "mod_columns=[]"
        assert flags in downgrade
        project.run(engine, command.upgrade, "head")
        assert not sa.inspect(engine).has_table("article_version")
        assert project.check_failure(engine) is None
        project.run(engine, command.downgrade, "-1")
        assert Project(tmp_path / "before", before.metadata, managed(before)).check_failure(engine) is None
        with Session(engine) as session:
            articles = session.scalars(sa.select(before.Article)).all()
            assert articles
            for article in articles:
                (version,) = article.versions.all()
                assert (version.operation_type, version.name, version.score) == (0, article.name, article.score)
            articles[0].name = "after the downgrade"
            session.commit()
            assert [v.name for v in articles[0].versions][-1] == "after the downgrade"
        assert Project(tmp_path / "again", before.metadata, managed(before)).check_failure(engine) is None


def _without(metadata: sa.MetaData, *names: str) -> sa.MetaData:
    """A copy of ``metadata`` without the tables ``names``, as models that stopped versioning them."""
    copy = sa.MetaData()
    for table in metadata.sorted_tables:
        if table.name not in names:
            table.to_metadata(copy)
    return copy


def test_downgrade_backfills_an_unversioned_hierarchy_as_one(engine: sa.Engine, tmp_path: Path) -> None:
    """``Doc(Item)`` stops being versioned: the downgrade's backfill of the two version tables is
    one ``backfill_versions('item', joined=...)``, so Continuum reads the Docs' versions again."""
    with joined_app() as (metadata, manager, _, Doc):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([Doc(id=1, name="a", body="b"), Doc(id=2, name="c", body="d")])
            session.commit()
        after = _without(metadata, "item_version", "doc_version")
        project = Project(tmp_path / "project", after, {"alembic_versioning": {"managers": []}})
        _, downgrade = upgrade_and_downgrade(Path(project.revision(engine, "unversion").path).read_text())
        assert downgrade.count("versioning.backfill_versions(") == 1
        assert (
            "versioning.backfill_versions('item', primary_key=['id']" in downgrade and "joined={'doc': {" in downgrade
        )
        project.run(engine, command.upgrade, "head")
        project.run(engine, command.downgrade, "-1")
        assert (
            Project(tmp_path / "old", metadata, {"alembic_versioning": {"managers": [manager]}}).check_failure(engine)
            is None
        )
        with Session(engine) as session:
            assert [(v.name, v.body, v.operation_type) for v in session.get(Doc, 2).versions] == [("c", "d", 0)]


def test_downgrade_backfill_of_an_unversioned_table_uses_the_managers_naming(engine: sa.Engine, tmp_path: Path) -> None:
    """No versioned table remains to tell the naming: the manager's (``%s_history``) is used."""
    with versioned_app(table_name="%s_history") as before:
        before.metadata.create_all(engine)
        write_history(engine, before, seed=2)
        history = [t.name for t in before.metadata.sorted_tables if t.name.endswith("_history")]
        after = _without(before.metadata, *history)
        project = Project(tmp_path / "project", after, managed(before))
        _, downgrade = upgrade_and_downgrade(Path(project.revision(engine, "unversion all").path).read_text())
        assert downgrade.count("version_table_format='%s_history'") == len(history)
        project.run(engine, command.upgrade, "head")
        project.run(engine, command.downgrade, "-1")
        assert Project(tmp_path / "old", before.metadata, managed(before)).check_failure(engine) is None


def test_downgrade_leaves_out_a_backfill_that_could_only_fail(engine: sa.Engine, tmp_path: Path) -> None:
    """``link_version`` (an association table without a primary key) holds one version per
    transaction: no backfill can fill it, so the downgrade gets none and a warning says why."""
    with keyless_links() as (metadata, manager):
        metadata.create_all(engine)
        after = _without(metadata, "link_version")
        project = Project(tmp_path / "project", after, {"alembic_versioning": {"managers": []}})
        with pytest.warns(UserWarning, match=r"leaves out the downgrade's backfill_versions\('link'\).*primary key"):
            script = project.revision(engine, "unversion links")
        assert "backfill_versions" not in Path(script.path).read_text()
        project.run(engine, command.upgrade, "head")
        project.run(engine, command.downgrade, "-1")


def test_check_fails_on_drift_autogenerate_leaves_out(engine: sa.Engine, tmp_path: Path) -> None:
    """Live links written behind Continuum's back, whose version table (keyed on the transaction
    column alone) no backfill can fill: ``alembic check`` fails, naming the drift and the fix; the
    generated script says so in comments and runs nothing, up and down; the drift stays found."""
    with keyless_links() as (metadata, manager):
        metadata.create_all(engine)
        manager.options["versioning"] = False  # raw writes: Continuum versions Core statements on links too
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["a"]), [{"id": 1}])
            conn.execute(sa.insert(metadata.tables["b"]), [{"id": 1}])
            conn.execute(sa.insert(metadata.tables["link"]), [{"a_id": 1, "b_id": 1}])
        project = Project(tmp_path / "project", metadata, {"alembic_versioning": {"managers": [manager]}})
        with pytest.warns(UserWarning, match=r"leaves out backfill_versions\('link'\)"):
            report = project.check_failure(engine)
        assert report is not None and "('left_out', 'backfill_versions', None, 'link'" in report
        assert "has the primary key (transaction_id) alone" in report
        with pytest.warns(UserWarning, match=r"leaves out backfill_versions\('link'\)"):
            text = Path(project.revision(engine).path).read_text()
        upgrade, downgrade = upgrade_and_downgrade(text)
        assert "# 1 live row without a current version: left out by alembic-versioning, as 'link_version'" in upgrade
        assert "# downgrade: 1 live row without a current version: left out by alembic-versioning" in downgrade
        for direction in (upgrade, downgrade):
            assert "Give 'link' a primary key" in direction.replace("\n    # ", " ")
            assert re.search(r"\n    # versioning\.backfill_versions\('link'[^\n]*\n    pass\n", direction), direction
        versions = sa.select(sa.func.count()).select_from(metadata.tables["link_version"])
        with engine.connect() as conn:
            before = conn.execute(versions).scalar_one()
        for step in (command.upgrade, command.downgrade, command.upgrade):
            project.run(engine, step, "head" if step is command.upgrade else "-1")
        with engine.connect() as conn:
            assert conn.execute(versions).scalar_one() == before
        with pytest.warns(UserWarning, match=r"leaves out backfill_versions\('link'\)"):
            assert project.check_failure(engine) is not None


#: An ``env.py`` for a plain ``alembic`` command line: the URL from alembic.ini, no metadata, and no
#: ``import alembic_versioning``.
PLAIN_ENV_PY = """\
from alembic import context
from sqlalchemy import engine_from_config

config = context.config
with engine_from_config(config.get_section(config.config_ini_section)).connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
"""


def test_generated_script_runs_where_env_py_does_not_import_the_package(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    """The generated script imports ``alembic_versioning`` itself: ``alembic upgrade`` on the command
    line, in a fresh process whose ``env.py`` knows nothing of the package, runs its repairs."""
    with versioned_app(mod_tracker=True) as app:
        history_with_drift(sqlite_engine, app)
        project = Project(tmp_path / "project", app.metadata)
        script = Path(project.revision(sqlite_engine).path)
        assert "\nfrom alembic_versioning import op as versioning\n" in script.read_text()
    (project.path / "migrations" / "env.py").write_text(PLAIN_ENV_PY)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    (project.path / "alembic.ini").write_text(ALEMBIC_INI + f"sqlalchemy.url = {url}\n")
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=project.path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (project.path / "migrations" / "env.py").write_text(ENV_PY)
    with versioned_app(mod_tracker=True) as app:
        project.metadata = app.metadata
        assert project.check_failure(sqlite_engine) is None


def test_downgrade_backfill_names_no_entities_once_transaction_changes_is_gone(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """One revision switches on the TransactionChangesPlugin (creating ``transaction_changes``) and
    stops versioning ``content``: its downgrade drops that table, so the backfill it ends with
    writes no ``transaction_changes`` rows (it would fail on the missing table)."""
    with versioned_app() as before:
        before.metadata.create_all(engine)
        write_history(engine, before, seed=5)
    with versioned_app(exclude=("content",), plugins=(TransactionChangesPlugin(),)) as app:
        project = Project(tmp_path / "project", app.metadata, managed(app))
        upgrade, downgrade = upgrade_and_downgrade(Path(project.revision(engine, "changes").path).read_text())
        assert "op.create_table('transaction_changes'" in upgrade
        assert "versioning.backfill_versions('article'" in downgrade and "entity_names" not in downgrade
        project.run(engine, command.upgrade, "head")
        project.run(engine, command.downgrade, "-1")
    with versioned_app() as before:
        assert Project(tmp_path / "old", before.metadata, managed(before)).check_failure(engine) is None


def test_downgrade_vacuums_what_a_backfill_wrote_for_a_column_dropped_again(engine: sa.Engine, tmp_path: Path) -> None:
    """With vacuum opted in: ``score`` becomes versioned (added to the version table, backfilled);
    downgrading drops it again and removes the versions that backfill wrote, now futile, so
    upgrade/downgrade cycles do not pile up versions."""
    with versioned_app(exclude=("score",)) as before:
        before.metadata.create_all(engine)
        write_history(engine, before, seed=6)
        written = snapshot(engine, before.version("Article"))
    with versioned_app() as app:
        project = Project(tmp_path / "project", app.metadata, managed(app, vacuum=True))
        _, downgrade = upgrade_and_downgrade(Path(project.revision(engine, "version score").path).read_text())
        assert downgrade.index("versioning.vacuum_versions('article'") > downgrade.index(
            "op.drop_column('article_version'"
        )
        for _ in range(2):
            project.run(engine, command.upgrade, "head")
            assert project.check_failure(engine) is None
            project.run(engine, command.downgrade, "-1")
    with versioned_app(exclude=("score",)) as before:
        assert snapshot(engine, before.version("Article")) == written


# -- Options from the config files ---------------------------------------------------------------


def test_options_from_ini_and_pyproject(engine: sa.Engine, tmp_path: Path) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=5)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")).values(id=900, name="raw"))

        skipped = Project(
            tmp_path / "ini",
            app.metadata,
            managed(app),
            ini_extra="\n[alembic_versioning]\nskip_tables = tag, article\n",
        )
        assert skipped.check_failure(engine) is None
        # env.py's settings win over the ini file's.
        skipped.attributes["alembic_versioning"]["skip_tables"] = []
        assert skipped.check_failure(engine) is not None

        disabled = Project(
            tmp_path / "toml", app.metadata, managed(app), toml='[tool.alembic.versioning]\ndisable = ["backfill"]\n'
        )
        assert disabled.check_failure(engine) is None

        typo = Project(
            tmp_path / "typo", app.metadata, managed(app), ini_extra="\n[alembic_versioning]\nvacum = true\n"
        )
        with pytest.raises(CommandError, match=r"Unknown alembic_versioning option\(s\) \['vacum'\]"):
            typo.run(engine, command.check)

        # Futile translation versions: found only with vacuum on, from either file.
        with engine.begin() as conn:
            conn.execute(sa.update(app.version("Translation")).values(title="same"))
            conn.execute(sa.update(app.table("translation")).values(title="same"))
        for where, settings in (
            ("toml", {"toml": '[tool.alembic.versioning]\nvacuum = true\nskip_tables = ["article"]\n'}),
            ("ini", {"ini_extra": "\n[alembic_versioning]\nvacuum = yes\nskip_tables = article\n"}),
        ):
            opted_in = Project(tmp_path / f"vacuum-{where}", app.metadata, managed(app), **settings)
            failure = opted_in.check_failure(engine)
            assert failure is not None and "vacuum_versions" in failure and "'article'" not in failure, failure
        plain = Project(
            tmp_path / "no-vacuum",
            app.metadata,
            managed(app),
            toml='[tool.alembic.versioning]\nskip_tables = ["article"]\n',
        )
        assert plain.check_failure(engine) is None


def _joined_state(engine: sa.Engine, metadata: sa.MetaData) -> dict[str, Any]:
    """Both version tables, transaction ids replaced by their rank (the ids differ between databases)."""
    found = {name: snapshot(engine, metadata.tables[name]) for name in ("item_version", "doc_version")}
    ids = sorted({row[metadata.tables[name].c.keys().index("transaction_id")] for name in found for row in found[name]})
    rank = {tx: i for i, tx in enumerate(ids)}
    for name, rows in found.items():
        keys = metadata.tables[name].c.keys()
        ranked = [keys.index("transaction_id"), keys.index("end_transaction_id")]
        found[name] = [tuple(rank.get(v, v) if i in ranked else v for i, v in enumerate(row)) for row in rows]
    return found


def _joined_history_with_drift(engine: sa.Engine) -> None:
    """``Doc(Item)`` before ``doc.note`` existed: written by Continuum, then changed by raw SQL
    (a Doc inserted, a Doc's base-table half changed)."""
    with joined_app(mod_tracker=True) as (metadata, _, item, doc):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([doc(id=1, name="a", body="b"), item(id=2, name="i"), doc(id=3, name="c", body="d")])
            session.commit()
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["item"]), [{"id": 4, "kind": "doc", "name": "raw"}])
            conn.execute(sa.insert(metadata.tables["doc"]), [{"id": 4, "body": "raw"}])
            conn.execute(sa.update(metadata.tables["item"]).where(metadata.tables["item"].c.id == 3).values(name="c2"))


def test_joined_table_inheritance_revision_upgrade_offline_downgrade(
    engine: sa.Engine, twin: sa.Engine, tmp_path: Path
) -> None:
    """A migration versioning the new ``doc.note`` in a database where ``Doc(Item)`` drifted: one
    ``backfill_versions('item', joined=['doc'])`` after the new columns, online and as ``--sql``
    alike; then ``check`` passes, Continuum reads the Docs' versions, and downgrade / upgrade work."""
    _joined_history_with_drift(engine)
    _joined_history_with_drift(twin)
    with joined_app(mod_tracker=True, note=True) as (metadata, manager, _, doc):
        project = Project(tmp_path / "project", metadata, {"alembic_versioning": {"managers": [manager]}})
        script = project.revision(engine, message="note")
        upgrade, _ = upgrade_and_downgrade(Path(script.path).read_text())
        assert upgrade.count("versioning.backfill_versions(") == 1
        assert (
            "versioning.backfill_versions('item', primary_key=['id'], columns=['kind', 'name'], "
            "mod_columns=['kind', 'name'], "
            "joined={'doc': {'primary_key': ['id'], 'columns': ['body', 'note'], 'mod_columns': ['body', 'note']}}, "
            "strategy='validity')"
        ) in upgrade
        assert upgrade.index("op.add_column('doc_version'") < upgrade.index("versioning.backfill_versions(")

        project.attributes["offline_metadata"] = None  # the script describes the tables itself
        sql = project.offline(twin, "head")
        del project.attributes["offline_metadata"]
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        execute_script(twin, sql)
        assert _joined_state(twin, metadata) == _joined_state(engine, metadata)
        with Session(engine) as session:
            assert [(v.name, v.operation_type) for v in session.get(doc, 3).versions] == [("c", 0), ("c2", 1)]
            assert [(v.name, v.body, v.operation_type) for v in session.get(doc, 4).versions] == [("raw", "raw", 0)]
        repaired = _joined_state(engine, metadata)

        project.run(engine, command.downgrade, "-1")
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        assert _joined_state(engine, metadata) == repaired


def test_joined_downgrade_describes_each_table_as_it_leaves_it(engine: sa.Engine, tmp_path: Path) -> None:
    """A revision versioning a new ``item.extra`` and dropping ``doc.note``: its downgrade brings
    ``note`` back and ends with a backfill of the hierarchy, which must describe ``item`` without
    ``extra`` (the downgrade drops it first), so that the ``--sql`` script runs without metadata."""
    with joined_app(mod_tracker=True, note=True) as (metadata, _, _, doc):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([doc(id=1, name="a", body="b", note="n"), doc(id=2, name="c", body="d", note="m")])
            session.commit()
    with joined_app(mod_tracker=True, extra=True) as (metadata, manager, _, _):
        project = Project(tmp_path / "project", metadata, {"alembic_versioning": {"managers": [manager]}})
        script = project.revision(engine, message="extra, no note")
        _, downgrade = upgrade_and_downgrade(Path(script.path).read_text())
        last = downgrade[downgrade.rindex("versioning.backfill_versions(") :]
        assert last.startswith(
            "versioning.backfill_versions('item', primary_key=['id'], columns=['kind', 'name'], "
            "mod_columns=['kind', 'name'], "
            "joined={'doc': {'primary_key': ['id'], 'columns': ['body', 'note'], 'mod_columns': ['body', 'note']}}"
        )
        project.run(engine, command.upgrade, "head")
        assert project.check_failure(engine) is None
        project.attributes["offline_metadata"] = None
        buffer = io.StringIO()
        command.downgrade(project.config(engine, output_buffer=buffer), f"{script.revision}:-1", sql=True)
        execute_script(engine, buffer.getvalue())
        columns = {c["name"] for c in sa.inspect(engine).get_columns("item_version")}
        assert "extra" not in columns and "note" in {c["name"] for c in sa.inspect(engine).get_columns("doc_version")}
