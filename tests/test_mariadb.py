"""MariaDB (>= 10.6, through PyMySQL): Continuum's own histories show no drift, raw drift is found
and repaired by the generated upgrade online and as an offline script applied with the ``mariadb``
client, with the versions Continuum itself writes for the same changes; each operation, mod flags
(BOOLEAN reflects as TINYINT(1)), composite keys, naming options, the guards (sequence behind,
isolation level) and ``issued_at`` in UTC."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.mysql import TINYINT
from sqlalchemy.orm import Session

from alembic_versioning import VersioningError
from alembic_versioning.sql.constructs import StopIf

from .conftest import mariadb_database
from .support.apps import CUSTOM_NAMES, App, ranked, snapshot, versioned_app, write_history
from .support.autogen import apply, ours, produce, render, render_generated
from .support.mariadb import MariaDBServer
from .support.migrate import execute_script, render_offline, run, run_migration, run_online

MODES = ["online", "offline"]


@pytest.fixture
def twin(mariadb_server: MariaDBServer) -> Iterator[sa.Engine]:
    """A second fresh MariaDB database, where Continuum's ORM writes the same changes."""
    with mariadb_database(mariadb_server) as engine:
        yield engine


def repair(engine: sa.Engine, app: App, mode: str) -> str:
    """Generate the upgrade for ``app`` and apply it online, or render it as an offline script
    and feed that to the ``mariadb`` client; the generated code."""
    script = produce(engine, app.metadata)
    code = render(engine, script)
    if mode == "online":
        apply(engine, code)
    else:
        execute_script(engine, render_generated(engine, code, target_metadata=app.metadata))
    return code


def clean(engine: sa.Engine, app: App) -> None:
    """What ``alembic check`` asks: the generated upgrade has nothing of ours in it."""
    assert ours(produce(engine, app.metadata)) == []


@pytest.mark.parametrize("mod_tracker", [False, True])
def test_continuum_histories_show_no_drift(mariadb_engine: sa.Engine, mod_tracker: bool) -> None:
    """Histories written by Continuum's ORM on MariaDB, association table included: nothing to
    repair, and the flags (TINYINT(1) in the database) are recognised as flags."""
    with versioned_app(mod_tracker=mod_tracker) as app:
        app.metadata.create_all(mariadb_engine)
        write_history(mariadb_engine, app, many_to_many=True)
        clean(mariadb_engine, app)
        if mod_tracker:
            columns = {c["name"]: c["type"] for c in sa.inspect(mariadb_engine).get_columns("article_version")}
            assert isinstance(columns["name_mod"], TINYINT) and columns["name_mod"].display_width == 1
            with mariadb_engine.begin() as conn:
                conn.exec_driver_sql("UPDATE article_version SET name_mod = NOT name_mod WHERE operation_type = 2")
            assert [(o, t) for o, t, _ in ours(produce(mariadb_engine, app.metadata))] == [
                ("update_mod_flags", "article")
            ]


def changes(engine: sa.Engine, app: App) -> dict[str, Any]:
    """The changes both databases get, chosen from the live rows: an update of two columns, an
    update to or from NULL, a delete (with its tags), an insert."""
    live = {row[0]: row[1] for row in snapshot(engine, app.table("article"))}
    first, second, third = sorted(live)[:3]
    return {
        "update": first,
        "null": (second, None if live[second] is not None else "was null"),
        "delete": third,
        "insert": 20,
    }


def raw_changes(conn: sa.Connection, app: App, change: dict[str, Any]) -> None:
    """``change`` behind Continuum's back."""
    article, tags = app.table("article"), app.table("article_tag")
    conn.execute(sa.update(article).where(article.c.id == change["update"]).values(name="Raw", content="raw content"))
    conn.execute(sa.update(article).where(article.c.id == change["null"][0]).values(name=change["null"][1]))
    conn.execute(sa.delete(tags).where(tags.c.article_id == change["delete"]))
    conn.execute(sa.delete(article).where(article.c.id == change["delete"]))
    conn.execute(sa.insert(article).values(id=change["insert"], name="new", score=7))


def orm_changes(session: Session, app: App, change: dict[str, Any]) -> None:
    """``change`` through Continuum's ORM, in one transaction (only non-NULL values assigned on
    insert: the flags a backfill writes for an INSERT are ``value IS NOT NULL``)."""
    article = session.get(app.Article, change["update"])
    article.name, article.content = "Raw", "raw content"
    session.get(app.Article, change["null"][0]).name = change["null"][1]
    gone = session.get(app.Article, change["delete"])
    gone.tags = []
    session.flush()
    session.delete(gone)
    session.add(app.Article(id=change["insert"], name="new", score=7))
    session.commit()


@pytest.mark.parametrize("mode", MODES)
def test_raw_drift_is_repaired_as_continuum_writes_it(mariadb_engine: sa.Engine, twin: sa.Engine, mode: str) -> None:
    """Raw changes and a broken history: the generated upgrade (every op) repairs them, online or
    as a script through the client; the article versions equal those Continuum writes for the same
    changes in a twin database (transaction ids by rank), and ``alembic check`` is clean after."""
    with versioned_app(mod_tracker=True) as app:
        for engine in (mariadb_engine, twin):
            app.metadata.create_all(engine)
            write_history(engine, app, seed=3)
        change = changes(mariadb_engine, app)
        with Session(twin) as session:
            orm_changes(session, app, change)
        app.manager.options["versioning"] = False  # Core writes to the association table
        try:
            with mariadb_engine.begin() as conn:
                raw_changes(conn, app, change)
        finally:
            app.manager.options["versioning"] = True
        expected = ranked(twin, app.version("Article"))
        version = app.version("Article")
        with mariadb_engine.begin() as conn:  # a broken chain and wrong flags besides
            conn.execute(sa.update(version).where(version.c.id == 1).values(end_transaction_id=None))
            conn.execute(sa.update(version).where(version.c.operation_type == 2).values(name_mod=False))
        found = {(o, t) for o, t, _ in ours(produce(mariadb_engine, app.metadata))}
        assert {("backfill_versions", "article"), ("update_end_transaction_ids", "article")} <= found
        assert ("update_mod_flags", "article") in found
        repair(mariadb_engine, app, mode)
        clean(mariadb_engine, app)
        assert ranked(mariadb_engine, version) == expected


def break_history(engine: sa.Engine, app: App, names: dict[str, str]) -> None:
    """End ids cleared and flags cleared on every version of ``translation`` (composite key) and
    ``article``."""
    with engine.begin() as conn:
        for model in ("Article", "Translation"):
            version = app.version(model)
            end = version.c[names.get("end_transaction_column_name", "end_transaction_id")]
            flags = {c: False for c in version.c if c.name.endswith("_mod")}
            conn.execute(sa.update(version).values({end: None, **flags}))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("naming", ["default", "custom"])
def test_each_repair_on_composite_keys_and_naming_options(mariadb_engine: sa.Engine, mode: str, naming: str) -> None:
    """``update_end_transaction_ids`` and ``update_mod_flags`` (``insert_flags='all'``: the flags
    the ORM writes when every attribute is assigned) restore what Continuum wrote, on a composite
    key and under Continuum's naming options, online and offline."""
    names = CUSTOM_NAMES if naming == "custom" else {}
    with versioned_app(mod_tracker=True, **names) as app:
        app.metadata.create_all(mariadb_engine)
        with Session(mariadb_engine) as session:
            session.add_all([app.Translation(article_id=1, lang=lang, title="a") for lang in ("en", "fi", "de")])
            session.commit()
            for title in ("b", "c", None, "d"):
                for lang in ("en", "fi"):
                    session.get(app.Translation, (1, lang)).title = title
                session.commit()
            session.delete(session.get(app.Translation, (1, "de")))
            session.commit()
        version = app.version("Translation")
        before = ranked_by(mariadb_engine, version, names)
        break_history(mariadb_engine, app, names)
        kwargs = {**app.op_kwargs(), "primary_key": ["article_id", "lang"]}
        if mode == "offline":
            kwargs["columns"] = ["title"]

        def calls(op: Any) -> None:
            op.update_end_transaction_ids("translation", **{k: v for k, v in kwargs.items() if k != "columns"})
            op.update_mod_flags("translation", insert_flags="all", **kwargs)

        run(mariadb_engine, calls, mode, target_metadata=app.metadata)
        assert ranked_by(mariadb_engine, version, names) == before


def ranked_by(engine: sa.Engine, table: sa.Table, names: dict[str, str]) -> list[tuple[Any, ...]]:
    """``table``'s rows in key and transaction order, transaction ids by rank (named as ``names`` say)."""
    tx = names.get("transaction_column_name", "transaction_id")
    end = names.get("end_transaction_column_name", "end_transaction_id")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings().all()
    ranks = {t: i for i, t in enumerate(sorted({row[tx] for row in rows}))}
    return [
        tuple(ranks.get(v, v) if k in (tx, end) else bool(v) if k.endswith("_mod") else v for k, v in row.items())
        for row in rows
    ]


@pytest.mark.parametrize("mode", MODES)
def test_vacuum_removes_futile_versions(mariadb_engine: sa.Engine, mode: str) -> None:
    """Versions that changed only an ignored column go; the chain skips them; nothing else changes."""
    with versioned_app() as app:
        app.metadata.create_all(mariadb_engine)
        with Session(mariadb_engine) as session:
            session.add(app.Article(id=1, name="a", content="x"))
            session.commit()
            for content in ("y", "z"):
                session.get(app.Article, 1).content = content
                session.commit()
            session.get(app.Article, 1).name = "b"
            session.commit()
        version = app.version("Article")
        options = {"ignore_columns": ["content"]}
        if mode == "offline":
            options.update(primary_key=["id"], columns=["name", "content", "score"])
        run(mariadb_engine, lambda op: op.vacuum_versions("article", **options), mode)
        rows = [(r[1], r[5] is None, r[6]) for r in ranked(mariadb_engine, version)]
        assert rows == [("a", False, 0), ("b", True, 1)]
        clean(mariadb_engine, app)


def test_text_is_compared_exactly(mariadb_engine: sa.Engine) -> None:
    """A change of case or of trailing spaces is a change (MariaDB's collations compare them equal)."""
    with versioned_app() as app:
        app.metadata.create_all(mariadb_engine)
        with mariadb_engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE article MODIFY name VARCHAR(100) COLLATE utf8mb4_general_ci")
            conn.exec_driver_sql("ALTER TABLE article_version MODIFY name VARCHAR(100) COLLATE utf8mb4_general_ci")
        with Session(mariadb_engine) as session:
            session.add_all([app.Article(id=1, name="abc"), app.Article(id=2, name="x")])
            session.commit()
        with mariadb_engine.begin() as conn:
            conn.exec_driver_sql("UPDATE article SET name = 'ABC' WHERE id = 1")
            conn.exec_driver_sql("UPDATE article SET name = 'x ' WHERE id = 2")
        run_online(mariadb_engine, lambda op: op.backfill_versions("article"))
        with mariadb_engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT id, name FROM article_version ORDER BY id, transaction_id").all()
        assert names == [(1, "abc"), (1, "ABC"), (2, "x"), (2, "x ")]


@pytest.mark.parametrize("mode", MODES)
def test_sequence_behind_stops_before_writing(mariadb_engine: sa.Engine, mode: str) -> None:
    """A transaction sequence behind the ids taken (a restore without SETVAL): online and in the
    script, the backfill stops with the statement that fixes it, and writes nothing."""
    with versioned_app() as app:
        app.metadata.create_all(mariadb_engine)
        write_history(mariadb_engine, app)
        with mariadb_engine.begin() as conn:
            conn.exec_driver_sql("UPDATE article SET name = 'raw'")
            conn.exec_driver_sql("ALTER SEQUENCE transaction_id_seq RESTART WITH 1")
        version = app.version("Article")
        before = snapshot(mariadb_engine, version), snapshot(mariadb_engine, app.table("transaction"))
        call = lambda op: op.backfill_versions("article")  # noqa: E731
        hint = r"the transaction id 'transaction_id_seq' gives is not above every transaction id.*SETVAL"
        if mode == "online":
            with pytest.raises(sa.exc.DBAPIError, match=hint):
                run_online(mariadb_engine, call)
        else:
            script = render_offline(mariadb_engine, call, target_metadata=app.metadata)
            with pytest.raises(RuntimeError, match=hint):
                execute_script(mariadb_engine, script)
        after = snapshot(mariadb_engine, version), snapshot(mariadb_engine, app.table("transaction"))
        assert after == before
        with mariadb_engine.begin() as conn:  # the hint's statements, as given, fix it
            for statement in hint_statement(mariadb_engine, app).split("; "):
                conn.exec_driver_sql(statement)
        run_online(mariadb_engine, call)
        clean(mariadb_engine, app)


def hint_statement(engine: sa.Engine, app: App) -> str:
    """The SETVAL statement the sequence-behind error names."""
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as error:
        with conn.begin():
            run_online_on(conn, lambda op: op.backfill_versions("article"))
    return str(error.value.orig.args[1]).split("run it again: ", 1)[1].split(" (so the new versions", 1)[0]


def run_online_on(conn: sa.Connection, call: Any) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    call(Operations(MigrationContext.configure(conn)))


def test_issued_at_is_utc(mariadb_engine: sa.Engine) -> None:
    """The backfill's transaction record is dated in UTC, as Continuum dates its own (the server
    runs at +05:00)."""
    with versioned_app() as app:
        app.metadata.create_all(mariadb_engine)
        with mariadb_engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")).values(id=1, name="raw"))
        run_online(mariadb_engine, lambda op: op.backfill_versions("article"))
        with mariadb_engine.connect() as conn:
            issued = conn.execute(sa.select(app.table("transaction").c.issued_at)).scalar_one()
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        assert abs(now - issued) < datetime.timedelta(minutes=2), (now, issued)


def test_read_committed_migration_is_refused(mariadb_engine: sa.Engine) -> None:
    """The writers' lock needs next-key locks: a migration at READ COMMITTED stops with the fix."""
    with versioned_app() as app:
        app.metadata.create_all(mariadb_engine)
        write_history(mariadb_engine, app)
        engine = mariadb_engine.execution_options(isolation_level="READ COMMITTED")
        with pytest.raises(sa.exc.DBAPIError, match="REPEATABLE READ"):
            run_online(engine, lambda op: op.update_end_transaction_ids("article"))


def test_mysql_offline_is_refused() -> None:
    """A mysql:// URL offline may be MySQL, which has no sequences: refused with the fix."""
    with versioned_app() as app, pytest.raises(VersioningError, match="use a mariadb:// URL"):
        render_offline(
            sa.create_engine("mysql+pymysql://x@localhost/db"),
            lambda op: op.backfill_versions("article"),
            target_metadata=app.metadata,
        )


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_backfill_leaves_nothing_behind(mariadb_engine: sa.Engine, mode: str) -> None:
    """None of an operation's statements commits on MariaDB (temporary tables come and go without
    an implicit commit, ANALYZE TABLE is left out): its last statement failing, after it has closed
    the latest versions, leaves the version and transaction tables as they were."""
    with versioned_app() as app:
        app.metadata.create_all(mariadb_engine)
        write_history(mariadb_engine, app)
        with mariadb_engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE article_version ADD CONSTRAINT no_boom CHECK (name <> 'boom')")
            conn.exec_driver_sql("UPDATE article SET name = 'boom'")
        tables = (app.version("Article"), app.table("transaction"))
        before = [snapshot(mariadb_engine, t) for t in tables]
        call = lambda op: op.backfill_versions("article")  # noqa: E731
        with pytest.raises((sa.exc.DBAPIError, RuntimeError), match="no_boom"):
            run(mariadb_engine, call, mode, target_metadata=app.metadata)
        assert [snapshot(mariadb_engine, t) for t in tables] == before


def test_a_guard_message_longer_than_signal_holds_is_cut(mariadb_engine: sa.Engine) -> None:
    """``SIGNAL`` holds 512 characters of message, the client gets 511 bytes: a longer guard message
    (the sequence-behind fix over a hierarchy of many tables) is cut, and raised, where it would
    fail with error 1648; a character is never cut in two."""
    message = "Stop here: " + "x" * 600
    with mariadb_engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as error:
        conn.execute(StopIf(sa.true(), message, "no check"))
    assert error.value.orig.args == (1644, message[:508] + "...")
    wide = "é" * 300  # two bytes each
    with mariadb_engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as error:
        conn.execute(StopIf(sa.true(), wide, "no check"))
    assert error.value.orig.args == (1644, wide[:254] + "...")


def test_schemas_compared_are_the_applications_databases(mariadb_engine: sa.Engine) -> None:
    """With ``include_schemas``, a MariaDB "schema" is a database of the server: the CLI compares
    the application's (the default one, ``app``), never the server's own."""
    from alembic.autogenerate.api import AutogenContext
    from alembic.migration import MigrationContext

    from alembic_versioning.cli import schemas_of

    with mariadb_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")  # dropped with the test's database
    with mariadb_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"target_metadata": sa.MetaData(), "include_schemas": True})
        compared = schemas_of(AutogenContext(context))
    assert compared == {None, "app"}


def _collation_histories(engine: sa.Engine, table: sa.Table) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    """Each entity's versions in order, entities keyed as a case- and trailing-space-insensitive
    collation matches them; transaction ids left out, the chain kept (whether each end id is the
    next version's transaction id, NULL for the last)."""
    names = [c.name for c in table.c]
    histories: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in snapshot(engine, table):
        values = dict(zip(names, row, strict=True))
        histories.setdefault((values["article_id"], values["lang"].lower().rstrip()), []).append(values)
    result = {}
    for entity, versions in histories.items():
        versions.sort(key=lambda v: v["transaction_id"])
        nexts = [v["transaction_id"] for v in versions[1:]] + [None]
        result[entity] = [
            (
                *(v for k, v in values.items() if k not in ("transaction_id", "end_transaction_id")),
                values["end_transaction_id"] == n,
            )
            for values, n in zip(versions, nexts, strict=True)
        ]
    return result


@pytest.mark.parametrize(
    "op_name", ["update_end_transaction_ids", "update_mod_flags", "vacuum_versions", "backfill_versions"]
)
def test_string_keys_batch_under_a_case_insensitive_collation(
    mariadb_engine: sa.Engine, twin: sa.Engine, op_name: str
) -> None:
    """Under a case- and trailing-space-insensitive collation (MariaDB's default), keys whose byte
    order is not the collation's order, spelled otherwise in the version table than in the live
    one, are batched as one transaction repairs them: each entity in one batch, by its collation."""
    with versioned_app(mod_tracker=True) as app:
        for engine in (mariadb_engine, twin):
            app.metadata.create_all(engine)
            with engine.begin() as conn:
                for table in ("translation", "translation_version"):
                    conn.exec_driver_sql(f"ALTER TABLE {table} MODIFY lang VARCHAR(5) COLLATE utf8mb4_general_ci")
            with Session(engine) as session:
                session.add(app.Article(id=1, name="a"))
                session.add_all(
                    app.Translation(article_id=1, lang=lang, title="t") for lang in ("a", "B", "c", "D", "e")
                )
                session.commit()
                for lang, title in (("B", "T"), ("c", "u"), ("a", "t "), ("D", "v")):
                    session.get(app.Translation, (1, lang)).title = title
                    session.commit()
            with engine.begin() as conn:  # keys spelled otherwise, case-only changes, then damage
                conn.exec_driver_sql("UPDATE translation SET lang = 'b' WHERE lang = 'B'")
                conn.exec_driver_sql("UPDATE translation SET title = 'U' WHERE lang = 'c'")
                conn.exec_driver_sql("INSERT INTO translation (article_id, lang, title) VALUES (1, 'F', 'w')")
                conn.exec_driver_sql("UPDATE translation_version SET end_transaction_id = NULL WHERE lang <> 'e'")
                conn.exec_driver_sql(
                    "UPDATE translation_version SET title_mod = NOT title_mod WHERE operation_type = 1"
                )
                conn.exec_driver_sql(
                    "INSERT INTO translation_version (article_id, lang, title, transaction_id, operation_type, "
                    "title_mod) SELECT article_id, UPPER(lang), title, (SELECT max(id) FROM transaction), 1, 0 "
                    "FROM translation_version WHERE lang = 'c' AND operation_type = 1"
                )  # a futile version, its key spelled otherwise
        before = _collation_histories(mariadb_engine, app.version("Translation"))
        run_migration(mariadb_engine, lambda op: getattr(op, op_name)("translation"))
        expected = _collation_histories(mariadb_engine, app.version("Translation"))
        assert expected != before, "the operation had work"
        for size in (1, 2):
            run_migration(twin, lambda op, n=size: getattr(op, op_name)("translation", batch_size=n))
            assert _collation_histories(twin, app.version("Translation")) == expected, size
        if op_name != "backfill_versions":  # the same rows, transaction ids too
            assert snapshot(twin, app.version("Translation")) == snapshot(mariadb_engine, app.version("Translation"))


def test_the_same_text_in_another_character_set_is_no_change(mariadb_engine: sa.Engine) -> None:
    """A live column in ``latin1`` (a legacy table) and its version column in ``utf8mb4`` hold
    the same text in other bytes: no drift, no version written, no flag set; a change of case or
    of trailing spaces still is one."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(mariadb_engine)
        with mariadb_engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE article MODIFY name VARCHAR(100) CHARACTER SET latin1")
        with Session(mariadb_engine) as session:
            session.add_all([app.Article(id=1, name="café"), app.Article(id=2, name="née")])
            session.commit()
            session.get(app.Article, 1).name = "Café"
            session.commit()
        before = snapshot(mariadb_engine, app.version("Article"))
        clean(mariadb_engine, app)
        for name in ("backfill_versions", "update_mod_flags", "vacuum_versions"):
            run_online(mariadb_engine, lambda op, n=name: getattr(op, n)("article"))
        assert snapshot(mariadb_engine, app.version("Article")) == before
        with mariadb_engine.begin() as conn:
            conn.exec_driver_sql("UPDATE article SET name = 'NÉE ' WHERE id = 2")
        run_online(mariadb_engine, lambda op: op.backfill_versions("article"))
        with mariadb_engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT id, name FROM article_version ORDER BY id, transaction_id").all()
        assert names == [(1, "café"), (1, "Café"), (2, "née"), (2, "NÉE ")]
