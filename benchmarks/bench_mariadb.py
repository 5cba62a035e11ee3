#!/usr/bin/env python
"""Benchmark every operation on MariaDB against its floor and SQLAlchemy-Continuum's helpers.

The PostgreSQL scripts' method on a MariaDB (InnoDB) server: the tables of the real Continuum
model ``bench_item`` (``_support.versioned_model``: validity strategy, PropertyModTrackerPlugin),
created by Continuum's MetaData; a correct history of N/5 entities x 5 versions generated
set-based in MariaDB's SQL (as ``bench_sqlite.py``'s: a pseudo-random subset of
``name``/``content``/``score`` changed per UPDATE, every 10th entity deleted at its last version,
``--futile`` of the UPDATE versions, default 10%, changing nothing), loaded in transaction
order, and its live rows. Per size and operation, each from the same freshly loaded state:

* ``update_end_transaction_ids``: every end id NULL. The *floor* is one ``UPDATE ... JOIN``
  setting every end id from the correct history (InnoDB skips a row set to its own value, so a
  floor must be told the values); *Continuum* is ``schema.update_end_tx_column``;
* ``update_mod_flags``: every flag of the UPDATE and DELETE versions inverted; *floor*, the
  same ``UPDATE ... JOIN`` of the flags; *Continuum*, ``schema.update_property_mod_flags``;
* ``backfill_versions``: 10% of the live rows changed by a raw ``UPDATE``; *floor*, one
  ``INSERT ... SELECT`` of their versions with a fixed transaction id, and (in parentheses)
  *floor + close*, an ``UPDATE`` closing their open versions first; *Continuum* is the ORM
  recipe of Continuum issue #28 (``bench_backfill.orm_recipe``: Continuum has no helper);
* ``vacuum_versions``: the futile versions; *floor*, one ``DELETE ... JOIN`` of the
  precomputed futile versions, and (in parentheses) *floor + relink*, plus one ``UPDATE ... JOIN``
  of the precomputed new end ids; *Continuum* is ``utils.vacuum`` (validity strategy).

Every measurement runs in a fresh Python process, in one transaction (commit included); its
client memory is the growth of the process's peak RSS. After each, the result is compared with
the correct history (rows left wrong). Continuum's helpers run for ``--continuum-ops``, up to
``--continuum-max`` rows.

Without ``--url`` the script starts a throwaway server (``tests/support/mariadb.py``: as root it
runs as user ``nobody``) in a temporary directory, with a 1 GiB buffer pool.

Usage::

    python benchmarks/bench_mariadb.py --sizes 200000,1000000 --json benchmarks/results/mariadb.json
    python benchmarks/bench_mariadb.py --sizes 20000 --ops update_end_transaction_ids --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _support import (
    ALL_COLUMNS,
    DATA_COLUMNS,
    FLAGS,
    LIVE,
    PRISTINE,
    ROOT,
    VERSION,
    Timings,
    client_measurement,
    code_version,
    command_line,
    fmt,
    load_average,
    log,
    machine,
    packages,
    run_child,
)
from _support import main as run_main

VERSIONS_PER_ENTITY = 5
OPS = ("backfill_versions", "update_end_transaction_ids", "update_mod_flags", "vacuum_versions")
#: The floor's transaction id (backfill): fixed, larger than any the data uses.
FLOOR_TX = 1_000_000_000
FUTILE = "bench_item_version_futile"
RELINK = "bench_item_version_relink"
#: Buffer pool of the throwaway server (``tests/support/mariadb.py`` starts it with 64 MiB).
BUFFER_POOL = 1024**3


def _hash(a: str, b: str, salt: int) -> str:
    """A pseudo-random integer in 0..32767 of the integers ``a`` and ``b`` (as bench_sqlite.py's)."""
    return f"(((({a}) * 7919 + ({b}) * 104729 + {salt}) % 4294967291) * 1103515245 + 12345) % 2147483648 DIV 65536"


_LOREM = "lorem ipsum " * 8

# As bench_sqlite.py's HISTORY_SQL, in MariaDB's SQL (seq_* tables of the SEQUENCE engine, CONCAT).
HISTORY_SQL = f"""
INSERT INTO {PRISTINE} ({", ".join(ALL_COLUMNS)})
WITH v AS (
    SELECT e.seq AS id, k.seq AS version, k.seq * {{n}} + e.seq AS transaction_id,
           CASE WHEN k.seq = 0 THEN 0 WHEN k.seq = {{k}} - 1 AND e.seq % 10 = 0 THEN 2 ELSE 1 END AS operation_type,
           CASE WHEN k.seq = 0 THEN 7
                WHEN k.seq = {{k}} - 1 AND e.seq % 10 = 0 THEN 0
                WHEN {_hash("e.seq", "k.seq", 17)} % 1000 < {{futile}} * 1000 THEN 0
                ELSE 1 + {_hash("e.seq", "k.seq", 0)} % 7 END AS mask
    FROM seq_1_to_{{n}} AS e, seq_0_to_{{last}} AS k
), counted AS (
    SELECT *,
           sum(mask & 1 <> 0) OVER w AS name_n,
           sum(mask & 2 <> 0) OVER w AS content_n,
           sum(mask & 4 <> 0) OVER w AS score_n,
           lead(transaction_id) OVER w AS end_transaction_id
    FROM v
    WINDOW w AS (PARTITION BY id ORDER BY version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), valued AS (
    SELECT id, transaction_id, end_transaction_id, operation_type, mask,
           CONCAT('item ', id, ' rev ', name_n) AS name,
           CASE WHEN (content_n + id) % 5 = 0 THEN NULL
                ELSE CONCAT(SUBSTR('{_LOREM}', 1, 12 * (1 + (id + content_n) % 8)), content_n) END AS content,
           CASE WHEN (score_n + id) % 4 = 0 THEN NULL ELSE (id * 37 + score_n * 11) % 1000 END AS score
    FROM counted
)
SELECT id, name, content, score, transaction_id, end_transaction_id, operation_type,
       CASE operation_type WHEN 0 THEN name IS NOT NULL WHEN 2 THEN 1 ELSE mask & 1 <> 0 END,
       CASE operation_type WHEN 0 THEN content IS NOT NULL WHEN 2 THEN 1 ELSE mask & 2 <> 0 END,
       CASE operation_type WHEN 0 THEN score IS NOT NULL WHEN 2 THEN 1 ELSE mask & 4 <> 0 END
FROM valued
"""

_PRISTINE_DDL = f"""CREATE TABLE {PRISTINE} (
    id INTEGER NOT NULL, name VARCHAR(200), content TEXT, score INTEGER, transaction_id BIGINT NOT NULL,
    end_transaction_id BIGINT, operation_type SMALLINT NOT NULL, name_mod BOOLEAN NOT NULL,
    content_mod BOOLEAN NOT NULL, score_mod BOOLEAN NOT NULL, PRIMARY KEY (id, transaction_id)
)"""

#: The futile versions (UPDATEs equal, NULL-safely, to the previous version, not a DELETE), in
#: plain SQL independent of the package, and the new end ids of the versions that remain.
FUTILE_SQL = f"""
CREATE TABLE {FUTILE} (PRIMARY KEY (id, transaction_id)) AS
SELECT id, transaction_id FROM (
    SELECT id, transaction_id, operation_type, lag(operation_type) OVER w AS previous_op,
           name <=> lag(name) OVER w AND content <=> lag(content) OVER w AND score <=> lag(score) OVER w AS same
    FROM {PRISTINE} WINDOW w AS (PARTITION BY id ORDER BY transaction_id)
) AS s
WHERE operation_type = 1 AND previous_op IN (0, 1) AND same
"""
RELINK_SQL = f"""
CREATE TABLE {RELINK} (PRIMARY KEY (id, transaction_id)) AS
SELECT id, transaction_id, next_transaction_id AS end_transaction_id FROM (
    SELECT p.id, p.transaction_id, p.end_transaction_id, lead(p.transaction_id) OVER w AS next_transaction_id
    FROM {PRISTINE} AS p LEFT JOIN {FUTILE} AS f USING (id, transaction_id)
    WHERE f.id IS NULL
    WINDOW w AS (PARTITION BY p.id ORDER BY p.transaction_id)
) AS s
WHERE NOT (next_transaction_id <=> end_transaction_id)
"""
LIVE_SQL = (
    f"INSERT INTO {LIVE} (id, name, content, score) SELECT id, name, content, score FROM {PRISTINE} "
    f"WHERE end_transaction_id IS NULL AND operation_type <> 2"
)
#: 10% of the live rows, spread evenly (as bench_sqlite.py's STALE_SQL).
STALE_WHERE = f"{_hash('id', '0', 3)} % 10 = 3"
STALE_SQL = f"UPDATE {LIVE} SET name = CONCAT(name, ' (edited)'), score = coalesce(score, 0) + 1 WHERE {STALE_WHERE}"

#: How each operation's measurements start: column expressions copied from the pristine table.
BROKEN = {
    "update_end_transaction_ids": {"end_transaction_id": "NULL"},
    "update_mod_flags": {f: f"CASE WHEN operation_type = 0 THEN {f} ELSE NOT {f} END" for f in FLAGS},
    "backfill_versions": {},
    "vacuum_versions": {},
}

_INSERTED = ", ".join(("id", *DATA_COLUMNS, "transaction_id", "operation_type", *FLAGS))
_JOIN_PRISTINE = f"UPDATE {VERSION} AS v JOIN {PRISTINE} AS p USING (id, transaction_id) SET "
#: The floors: plain SQL writing the same rows as the operation, told which ones; the second
#: entry adds what a correct operation must also write (the backfill's closed versions, the
#: vacuum's new end ids).
FLOORS: dict[str, dict[str, list[str]]] = {
    "update_end_transaction_ids": {"floor": [_JOIN_PRISTINE + "v.end_transaction_id = p.end_transaction_id"]},
    "update_mod_flags": {"floor": [_JOIN_PRISTINE + ", ".join(f"v.{f} = p.{f}" for f in FLAGS)]},
    "backfill_versions": {
        "floor": [
            f"INSERT INTO {VERSION} ({_INSERTED}) SELECT id, name, content, score, {FLOOR_TX}, 1, "
            f"true, false, true FROM {LIVE} WHERE {STALE_WHERE}"
        ],
    },
    "vacuum_versions": {
        "floor": [f"DELETE v FROM {VERSION} AS v JOIN {FUTILE} AS f USING (id, transaction_id)"],
    },
}
FLOORS["backfill_versions"]["floor_plus"] = [
    f"UPDATE {VERSION} SET end_transaction_id = {FLOOR_TX} WHERE end_transaction_id IS NULL "
    f"AND id IN (SELECT id FROM {LIVE} WHERE {STALE_WHERE})",
    *FLOORS["backfill_versions"]["floor"],
]
FLOORS["vacuum_versions"]["floor_plus"] = [
    *FLOORS["vacuum_versions"]["floor"],
    f"UPDATE {VERSION} AS v JOIN {RELINK} AS r USING (id, transaction_id) "
    f"SET v.end_transaction_id = r.end_transaction_id",
]

#: Rows of the version table that differ from what the operation should leave.
_DIFFERS = " OR ".join(f"NOT (v.{c} <=> p.{c})" for c in ALL_COLUMNS if c not in ("id", "transaction_id"))
WRONG_SQL = {
    "repair": f"SELECT count(*) FROM {VERSION} AS v JOIN {PRISTINE} AS p USING (id, transaction_id) WHERE {_DIFFERS}",
    # Versions removed that are not futile, plus futile versions left, plus versions kept whose end
    # id is not the relinked one.
    "vacuum_versions": f"""SELECT
        (SELECT count(*) FROM {PRISTINE} AS p LEFT JOIN {VERSION} AS v USING (id, transaction_id)
         LEFT JOIN {FUTILE} AS f USING (id, transaction_id) WHERE v.id IS NULL AND f.id IS NULL)
      + (SELECT count(*) FROM {FUTILE} AS f JOIN {VERSION} AS v USING (id, transaction_id))
      + (SELECT count(*) FROM {VERSION} AS v JOIN {PRISTINE} AS p USING (id, transaction_id)
         LEFT JOIN {FUTILE} AS f USING (id, transaction_id) LEFT JOIN {RELINK} AS r USING (id, transaction_id)
         WHERE f.id IS NULL AND NOT (v.end_transaction_id <=>
             CASE WHEN r.id IS NULL THEN p.end_transaction_id ELSE r.end_transaction_id END))""",
    # Stale live rows whose open version does not hold their values.
    "backfill_versions": f"""SELECT count(*) FROM {LIVE} AS l LEFT JOIN {VERSION} AS v
        ON v.id = l.id AND v.end_transaction_id IS NULL AND v.operation_type <> 2
        AND v.name <=> l.name AND v.content <=> l.content AND v.score <=> l.score WHERE v.id IS NULL""",
}


# --------------------------------------------------------------------------------------------
# The server and the data
# --------------------------------------------------------------------------------------------


def execute(conn: sa.Connection, statement: str) -> sa.CursorResult[Any]:
    """``statement`` as written (PyMySQL's ``format`` paramstyle: ``%`` doubled)."""
    return conn.exec_driver_sql(statement.replace("%", "%%"))


@contextlib.contextmanager
def temporary_server() -> Iterator[str]:
    """A throwaway MariaDB server (``tests/support/mariadb.py``) with a database ``bench``; its URL."""
    sys.path.insert(0, str(ROOT))
    from tests.support.mariadb import MariaDBServer, find_server

    executable = find_server()
    if executable is None:
        raise SystemExit("mariadbd is not installed")
    directory = Path(tempfile.mkdtemp(prefix="bench-mariadb-", dir="/tmp"))
    # The server's own directory for its temporary files (mariadbd reads TMPDIR), not the
    # shared /tmp: other jobs' servers and cleaners work there.
    private = directory / "tmp"
    private.mkdir()
    private.chmod(0o1777)
    previous = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(private)
    try:
        server = MariaDBServer.start(directory, executable)
    finally:
        if previous is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = previous
    try:
        engine = sa.create_engine(server.url(None), poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            execute(conn, f"SET GLOBAL innodb_buffer_pool_size = {BUFFER_POOL}")
            execute(conn, "CREATE DATABASE bench")
        engine.dispose()
        yield server.url("bench").render_as_string(hide_password=False)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def describe_environment(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        version = execute(conn, "SELECT version()").scalar_one()
        settings = dict(
            execute(
                conn,
                "SELECT lower(variable_name), variable_value FROM information_schema.global_variables "
                "WHERE variable_name IN ('INNODB_BUFFER_POOL_SIZE', 'INNODB_FLUSH_LOG_AT_TRX_COMMIT', "
                "'INNODB_DOUBLEWRITE', 'TX_ISOLATION', 'TMPDIR', 'SORT_BUFFER_SIZE', 'JOIN_BUFFER_SIZE')",
            ).all()
        )
    engine.dispose()
    return {
        "code": code_version(),
        "command": command_line(),
        "mariadb": version,
        "settings": settings,
        "packages": packages("SQLAlchemy", "alembic", "SQLAlchemy-Continuum", "PyMySQL"),
        **machine(),
    }


def create_data(engine: sa.Engine, metadata: sa.MetaData, rows: int, futile: float) -> None:
    """Continuum's tables (empty), the correct history, its futile versions and the end ids
    after a vacuum, and the live rows (not yet stale)."""
    entities = rows // VERSIONS_PER_ENTITY
    with engine.begin() as conn:
        for table in (PRISTINE, FUTILE, RELINK):
            execute(conn, f"DROP TABLE IF EXISTS {table}")
        metadata.drop_all(conn)
        metadata.create_all(conn)
        execute(conn, _PRISTINE_DDL)
        execute(
            conn, HISTORY_SQL.format(n=entities, k=VERSIONS_PER_ENTITY, last=VERSIONS_PER_ENTITY - 1, futile=futile)
        )
        execute(conn, FUTILE_SQL)
        execute(conn, RELINK_SQL)
        execute(conn, LIVE_SQL)
    analyze(engine, PRISTINE, FUTILE, RELINK, LIVE)


def analyze(engine: sa.Engine, *tables: str) -> None:
    with engine.connect() as conn:
        execute(conn, f"ANALYZE TABLE {', '.join(tables)}")


def reset(engine: sa.Engine, metadata: sa.MetaData, op_name: str) -> None:
    """The state a measurement of ``op_name`` starts from: the history reloaded in transaction
    order (secondary indexes rebuilt afterwards), broken for ``op_name``; the live rows, 10% stale
    for the backfill; the sequence after the largest transaction id; ``ANALYZE TABLE``."""
    version = metadata.tables[VERSION]
    columns = ", ".join(c for c in ALL_COLUMNS if c in version.c)
    select = ", ".join(BROKEN[op_name].get(c, c) for c in ALL_COLUMNS if c in version.c)
    with engine.begin() as conn:
        execute(conn, f"TRUNCATE {VERSION}")
        execute(conn, f"TRUNCATE {LIVE}")
        execute(conn, "TRUNCATE `transaction`")
        execute(conn, LIVE_SQL)
        if op_name == "backfill_versions":
            execute(conn, STALE_SQL)
    with engine.begin() as conn:
        for index in version.indexes:
            index.drop(conn)
    with engine.begin() as conn:
        execute(conn, f"INSERT INTO {VERSION} ({columns}) SELECT {select} FROM {PRISTINE} ORDER BY transaction_id")
    with engine.begin() as conn:
        for index in version.indexes:
            index.create(conn)
        top = execute(conn, f"SELECT coalesce(max(transaction_id), 0) + 1 FROM {VERSION}").scalar_one()
        execute(conn, f"SELECT SETVAL(transaction_id_seq, {top})")
    analyze(engine, VERSION, LIVE)


def wrong_rows(engine: sa.Engine, op_name: str) -> int:
    sql = WRONG_SQL.get(op_name, WRONG_SQL["repair"])
    with engine.connect() as conn:
        return int(execute(conn, sql).scalar_one())


# --------------------------------------------------------------------------------------------
# One measurement, in a child process
# --------------------------------------------------------------------------------------------


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in one transaction; its wall time and client peak-RSS growth."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy.orm import Session

    import alembic_versioning  # noqa: F401  (registers the operations)

    op_name, method = spec["op"], spec["method"]
    model = None
    if method == "continuum" and op_name in ("backfill_versions", "vacuum_versions"):
        from _support import versioned_model

        model = versioned_model()
    engine = sa.create_engine(spec["url"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            table = None
            if method == "continuum" and op_name in ("update_end_transaction_ids", "update_mod_flags"):
                table = sa.Table(VERSION, sa.MetaData(), autoload_with=conn)
            execute(conn, "SELECT 1")
            conn.rollback()
            with client_measurement() as measured:
                with conn.begin():
                    if method in ("floor", "floor_plus"):
                        for statement in FLOORS[op_name][method]:
                            execute(conn, statement)
                    elif method == "op":
                        getattr(Operations(MigrationContext.configure(conn)), op_name)(LIVE)
                    elif op_name == "update_end_transaction_ids":
                        from sqlalchemy_continuum.schema import update_end_tx_column

                        update_end_tx_column(table, conn=conn)
                    elif op_name == "update_mod_flags":
                        from sqlalchemy_continuum.schema import update_property_mod_flags

                        update_property_mod_flags(table, list(DATA_COLUMNS), conn=conn)
                    else:
                        assert model is not None
                        _, item, manager = model
                        with Session(bind=conn) as session:
                            if op_name == "vacuum_versions":
                                from sqlalchemy_continuum.utils import vacuum as continuum_vacuum

                                continuum_vacuum(session, item)
                            else:
                                from bench_backfill import orm_recipe

                                orm_recipe(session, item, manager, "stale")
                            session.flush()
        return dict(measured)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Result(Timings):
    op: str
    rows: int
    wrong_before: int = 0
    wrong_after: dict[str, int] = field(default_factory=dict)
    load: dict[str, list[float]] = field(default_factory=dict)


def run_benchmark(url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any]]:
    from _support import versioned_model

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    metadata, _, _ = versioned_model()
    results: list[Result] = []
    try:
        for rows in args.sizes:
            started = time.perf_counter()
            create_data(engine, metadata, rows, args.futile)
            log(f"== {rows:,} rows: generated in {time.perf_counter() - started:.1f} s")
            for op_name in args.ops:
                result = Result(op=op_name, rows=rows)
                methods = ["floor", "op"]
                if op_name in ("backfill_versions", "vacuum_versions"):
                    methods.insert(1, "floor_plus")
                if op_name in args.continuum_ops and rows <= args.continuum_max:
                    methods.append("continuum")
                for method in methods:
                    for _ in range(1 if method == "continuum" else args.repeat):
                        reset(engine, metadata, op_name)
                        if method == "floor":
                            result.wrong_before = wrong_rows(engine, op_name)
                        result.load[method] = load_average()
                        m = run_child(__file__, {"url": url, "op": op_name, "method": method})
                        result.add(method, m["seconds"], m["rss_growth_mib"])
                        result.wrong_after[method] = wrong_rows(engine, op_name)
                        log(
                            f"   {op_name:<27} {method:<10} {m['seconds']:8.2f} s  peak RSS "
                            f"+{m['rss_growth_mib']:.1f} MiB  wrong after {result.wrong_after[method]:,} "
                            f"(before {result.wrong_before:,}); load {result.load[method]}"
                        )
                results.append(result)
        with engine.begin() as conn:
            for table in (PRISTINE, FUTILE, RELINK):
                execute(conn, f"DROP TABLE IF EXISTS {table}")
            metadata.drop_all(conn)
    finally:
        engine.dispose()
    return [asdict(r) for r in results], [("Results", HEADERS, table_rows(results))]


HEADERS = ["op", "rows", "op s", "op/floor", "Continuum/op", "MiB op / Continuum", "wrong after op"]


def table_rows(results: list[Result]) -> list[list[str]]:
    out = []
    for r in results:
        plus = r.ratio("op", "floor_plus")
        out.append(
            [
                r.op,
                f"{r.rows:,}",
                fmt(r.seconds.get("op"), ".2f"),
                fmt(r.ratio("op", "floor"), ".2f") + (f" ({plus:.2f})" if plus else ""),
                fmt(r.ratio("continuum", "op"), ".1f"),
                " / ".join(fmt(r.rss_growth_mib.get(m), ".1f") for m in ("op", "continuum")),
                f"{r.wrong_after.get('op', 0):,} of {r.wrong_before:,}",
            ]
        )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=[200_000],
        type=lambda text: [int(x) for x in text.replace("_", "").split(",")],
        help="version rows per size, comma-separated (default: 200000)",
    )
    parser.add_argument("--url", help="use this MariaDB database instead of a throwaway server (tables bench_item*)")
    parser.add_argument("--ops", default=",".join(OPS), type=lambda s: s.split(","), help="operations to run")
    parser.add_argument("--futile", type=float, default=0.1, help="share of futile UPDATE versions (default 0.1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the floors and the op; the median is shown")
    parser.add_argument(
        "--continuum-ops",
        default=",".join(OPS),
        type=lambda s: [op for op in s.split(",") if op],
        help="operations to time Continuum's helper (or ORM recipe) for (default: all; '' for none)",
    )
    parser.add_argument(
        "--continuum-max", type=int, default=1_000_000, help="time Continuum's helpers up to this many rows"
    )
    parser.add_argument("--rst", action="store_true", help="also print the table as an RST list-table")
    parser.add_argument("--json", type=Path, help="write raw results and environment to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.ops) - set(OPS)
    if unknown:
        parser.error(f"unknown operations {sorted(unknown)}")
    return args


def main() -> None:
    run_main(parse_args(), child, run_benchmark, temporary_server, describe_environment, "mariadb")


if __name__ == "__main__":
    main()
