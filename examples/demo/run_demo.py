"""The alembic-versioning demo: Continuum writes a history, the database drifts, a migration repairs it.

Steps: ``alembic upgrade 0001`` creates the tables; a few transactions go through
SQLAlchemy-Continuum's ORM; the version tables are snapshotted, then broken with raw SQL the
way real databases drift; ``alembic upgrade head`` runs revision 0002
(``op.update_end_transaction_ids`` and ``op.update_mod_flags``); the repaired tables must equal
the snapshot. Last, the same revision is rendered as an offline SQL script (``--sql``).

Usage: ``python examples/demo/run_demo.py [--url URL]`` (default: ``examples/demo/demo.db``,
recreated on each run). Exits non-zero when the repair does not restore the history.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session

import models
from models import Article, Translation

HERE = Path(__file__).resolve().parent
VERSION_TABLES = ("article_version", "translation_version")
OPERATIONS = {0: "INS", 1: "UPD", 2: "DEL"}
HEADERS = {"transaction_id": "tx", "end_transaction_id": "end", "operation_type": "op"}

Row = dict[str, Any]
Snapshot = dict[str, dict[tuple[Any, ...], Row]]

#: Raw SQL drift, as real databases accumulate it: (what happened, statement); ``{table}``
#: stands for each version table.
DRIFT = [
    (
        "switched from the subquery strategy: every end_transaction_id is NULL",
        "UPDATE {table} SET end_transaction_id = NULL",
    ),
    (
        "native-versioning triggers, two changes to a row in one DB transaction: end == transaction_id",
        "UPDATE {table} SET end_transaction_id = transaction_id WHERE transaction_id IN (2, 4)",
    ),
    (
        "a hand-written backfill flagged every column of every UPDATE",
        "UPDATE article_version SET title_mod = true, body_mod = true, status_mod = true WHERE operation_type = 1",
    ),
    (
        "PropertyModTrackerPlugin enabled late: flags left at their default, false",
        "UPDATE article_version SET title_mod = false, body_mod = false, status_mod = false WHERE operation_type = 2",
    ),
    (
        "PropertyModTrackerPlugin enabled late: flags left at their default, false",
        "UPDATE translation_version SET title_mod = false WHERE operation_type IN (1, 2)",
    ),
]


def make_config(url: str, output_buffer: io.StringIO | None = None) -> Config:
    """The demo project's Alembic config, pointed at ``url``."""
    config = Config(HERE / "alembic.ini", output_buffer=output_buffer)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False  # run_demo.py configures logging itself
    return config


def reset_database(url: str) -> None:
    """Start from an empty database: delete a SQLite file, else drop the demo's own tables."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).unlink(missing_ok=True)
        return
    engine = sa.create_engine(url)
    models.Base.metadata.drop_all(engine)
    sa.Table("alembic_version", sa.MetaData()).drop(engine, checkfirst=True)
    engine.dispose()


def write_history(engine: sa.Engine) -> None:
    """Five transactions through Continuum: inserts, updates (to and from NULL), deletes."""
    with Session(engine) as session:
        session.add_all(
            [
                Article(id=1, title="Hello", body="First post"),
                Article(id=2, title="Drafts", body="Some notes", status="draft"),
                Article(id=3, title="Old news", body=None),
                Translation(article_id=1, lang="en", title="Hello"),
                Translation(article_id=1, lang="fi", title="Hei"),
                Translation(article_id=2, lang="en", title="Drafts"),
            ]
        )
        session.commit()

        a1, a2, a3 = (session.get_one(Article, i) for i in (1, 2, 3))
        a1.title, a1.status = "Hello, world", "published"
        a2.body = None
        session.get_one(Translation, (1, "fi")).title = None
        session.commit()

        a2.body = "Notes, again"
        a3.status = "published"
        session.delete(session.get_one(Translation, (2, "en")))
        session.add(Article(id=4, title="Fresh", body="New"))
        session.commit()

        session.delete(a3)
        a1.body = "First post, edited"
        session.get_one(Translation, (1, "en")).title = "Hello, world"
        session.get_one(Translation, (1, "fi")).title = "Hei maailma"
        session.commit()

        a4 = session.get_one(Article, 4)
        a4.title, a4.body = "Fresh again", None
        a1.status = "archived"
        session.commit()


def snapshot(engine: sa.Engine) -> Snapshot:
    """Every version row, by table and primary key."""
    result: Snapshot = {}
    with engine.connect() as conn:
        for name in VERSION_TABLES:
            table = models.Base.metadata.tables[name]
            pk = [c.name for c in table.primary_key.columns]
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings()
            result[name] = {tuple(row[k] for k in pk): dict(row) for row in rows}
    return result


def drift(engine: sa.Engine) -> None:
    """Break the version tables with raw SQL, printing what each statement stands for."""
    with engine.begin() as conn:
        for why, sql in DRIFT:
            for table in VERSION_TABLES if "{table}" in sql else [None]:
                statement = sql.format(table=table)
                count = conn.execute(sa.text(statement)).rowcount
                print(f"  -- {why}\n  {statement};  ({count} rows)")


def cell(value: Any) -> str:
    """A short printable value."""
    if value is None:
        return "NULL"
    text = str(value)
    return text if len(text) <= 14 else text[:13] + "~"


def print_table(name: str, rows: dict[tuple[Any, ...], Row], expected: dict[tuple[Any, ...], Row]) -> None:
    """Print version rows, flags as a list of columns; ``*`` marks values that differ from ``expected``."""
    table = models.Base.metadata.tables[name]
    flags = [c.name for c in table.columns if c.name.endswith("_mod")]
    shown = [c.name for c in table.columns if c.name not in flags]
    lines = [[HEADERS.get(c, c) for c in shown] + ["modified (_mod flags)"]]
    for key, row in rows.items():
        want = expected.get(key, {})
        line = [
            (OPERATIONS[row[c]] if c == "operation_type" else cell(row[c])) + ("*" if row[c] != want.get(c) else "")
            for c in shown
        ]
        flagged = ",".join(f.removesuffix("_mod") for f in flags if row[f]) or "-"
        lines.append(line + [flagged + ("*" if any(row[f] != want.get(f) for f in flags) else "")])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    lines.insert(1, ["-" * w for w in widths])
    print(f"  {name}")
    for line in lines:
        print("    " + "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())

def print_snapshot(title: str, current: Snapshot, expected: Snapshot) -> None:
    print(f"\n== {title}")
    for name in VERSION_TABLES:
        print_table(name, current[name], expected[name])


def differing_rows(current: Snapshot, expected: Snapshot) -> int:
    """How many version rows differ from ``expected`` (missing and extra rows included)."""
    return sum(
        current[name].get(key) != expected[name].get(key)
        for name in VERSION_TABLES
        for key in current[name].keys() | expected[name].keys()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=f"sqlite:///{HERE / 'demo.db'}", help="database URL (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="  [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:  # keep Alembic's progress lines, drop its set-up chatter
        handler.addFilter(lambda record: not record.getMessage().startswith(("Context impl", "Will assume")))

    reset_database(args.url)
    config = make_config(args.url)
    print(f"== alembic upgrade 0001 ({args.url})")
    command.upgrade(config, "0001")

    engine = sa.create_engine(args.url)
    write_history(engine)
    expected = snapshot(engine)
    print_snapshot("Version tables as Continuum wrote them", expected, expected)

    print("\n== Drift")
    drift(engine)
    broken = snapshot(engine)
    broken_rows = differing_rows(broken, expected)
    print_snapshot(f"Before repair: {broken_rows} rows differ (* = not what Continuum wrote)", broken, expected)

    print("\n== alembic upgrade head")
    command.upgrade(config, "head")
    repaired = snapshot(engine)
    engine.dispose()
    print_snapshot("After repair (* = still wrong)", repaired, expected)

    print("\n== alembic upgrade 0001:0002 --sql (offline: the same repair as a SQL script)")
    buffer = io.StringIO()
    command.upgrade(make_config(args.url, output_buffer=buffer), "0001:0002", sql=True)
    print("\n".join("    " + line for line in buffer.getvalue().strip().splitlines()))

    remaining = differing_rows(repaired, expected)
    print()
    if remaining:
        print(f"FAILED: {remaining} version rows still differ from what Continuum wrote")
        return 1
    print(f"OK: version tables repaired ({broken_rows} rows fixed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
