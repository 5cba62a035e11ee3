#!/usr/bin/env python
"""Benchmark ``update_end_transaction_ids`` and ``update_mod_flags`` on PostgreSQL.

For each size (total version rows, N entities x K versions) this builds a version table shaped
like SQLAlchemy-Continuum's default one (same columns, primary key and indexes), filled
set-based with ``generate_series``, and times three ways of repairing it, each starting from
the same broken state:

* the *floor*: one plain ``UPDATE`` rewriting every row of the version table once;
* the *op*: ``op.update_end_transaction_ids(table)`` / ``op.update_mod_flags(table)``, run
  through Alembic's ``Operations(MigrationContext.configure(conn))``;
* *Continuum*: ``sqlalchemy_continuum.schema.update_end_tx_column`` /
  ``update_property_mod_flags`` (only for sizes up to ``--continuum-max``; ``--skip-continuum``).

Every measurement runs in a fresh Python process, in one transaction (commit included), so
its client memory can be reported as the growth of the process's peak RSS over its RSS just
before the call. Between measurements the version table is rebuilt from a pristine copy,
broken, ``VACUUM ANALYZE``-d and checkpointed.

Without ``--url`` the script initdb's and starts its own PostgreSQL server in a temporary
directory (through ``tests/support/pg_ctl.sh``, which runs it as user ``postgres`` when run as
root) and removes it afterwards.

Usage::

    python benchmarks/bench_repairs.py --sizes 20000,200000,1000000 --versions 5
    python benchmarks/bench_repairs.py --sizes 200000 --skip-continuum --url postgresql+psycopg://...
    python benchmarks/bench_repairs.py --sizes 200000 --explain   # EXPLAIN ANALYZE of each statement
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from _support import (
    ALL_COLUMNS,
    DATA_COLUMNS,
    FLAGS,
    LIVE,
    LIVE_FROM_PRISTINE_SQL,
    PRISTINE,
    VERSION,
    Timings,
    add_reference_arguments,
    argument_parser,
    child_engine,
    fmt,
    log,
    main,
    measured_transaction,
    print_plans,
    run_child,
    vacuum,
)
from _support import create_pristine as generate_pristine

OPERATIONS = ("end_transaction_ids", "mod_flags")
#: The version table's counters each measurement reports: rows updated, of which HOT updates.
COUNTERS = ("n_tup_upd", "n_tup_hot_upd")
METHODS = ("floor", "op", "continuum")


# --------------------------------------------------------------------------------------------
# Data: a pristine (correct) history, generated set-based, and the broken copies measured
# --------------------------------------------------------------------------------------------

VERSION_COLUMNS_DDL = """
    id INTEGER NOT NULL,
    name VARCHAR(200),
    content TEXT,
    score INTEGER,
    transaction_id BIGINT NOT NULL,
    end_transaction_id BIGINT,
    operation_type SMALLINT NOT NULL,
    name_mod BOOLEAN NOT NULL DEFAULT false,
    content_mod BOOLEAN NOT NULL DEFAULT false,
    score_mod BOOLEAN NOT NULL DEFAULT false
"""

# Continuum 2.0's indexes for a validity-strategy version table with the default options.
VERSION_INDEXES_DDL = [
    f"ALTER TABLE {VERSION} ADD CONSTRAINT {VERSION}_pkey PRIMARY KEY (id, transaction_id)",
    f"CREATE INDEX ix_{VERSION}_transaction_id ON {VERSION} (transaction_id)",
    f"CREATE INDEX ix_{VERSION}_end_transaction_id ON {VERSION} (end_transaction_id)",
    f"CREATE INDEX ix_{VERSION}_operation_type ON {VERSION} (operation_type)",
    f"CREATE INDEX ix_{VERSION}_pk_transaction_id ON {VERSION} (id, transaction_id DESC)",
    f"CREATE INDEX ix_{VERSION}_pk_validity ON {VERSION} (id, transaction_id, end_transaction_id)",
]

#: How each operation's measurements start: the column expressions copied from the pristine table.
BROKEN = {
    # As after switching from the subquery strategy: no end ids at all (every closed version wrong).
    "end_transaction_ids": {"end_transaction_id": "NULL::bigint"},
    # Every derivable flag wrong: UPDATE/DELETE versions have all flags inverted (INSERT
    # versions keep theirs: the op's default insert_flags="keep" keeps them too).
    "mod_flags": {f: f"CASE WHEN operation_type = 0 THEN {f} ELSE NOT {f} END" for f in FLAGS},
}

FLOOR_SQL = {
    "end_transaction_ids": f"UPDATE {VERSION} SET end_transaction_id = end_transaction_id",
    "mod_flags": f"UPDATE {VERSION} SET " + ", ".join(f"{f} = {f}" for f in FLAGS),
}

#: ``--end-ids-broken self``: every version's end id equals its own transaction id (the defect
#: Continuum's native triggers leave), so every row, the open ones included, must be rewritten.
END_IDS_BROKEN = {"null": "NULL::bigint", "self": "transaction_id"}


def create_pristine(engine: sa.Engine, rows: int, versions: int) -> None:
    with engine.begin() as conn:
        for table in (VERSION, LIVE):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        generate_pristine(conn, rows // versions, versions)
        # The live table, for realism: the last version of every entity not deleted.
        conn.exec_driver_sql(
            f"CREATE TABLE {LIVE} (id INTEGER PRIMARY KEY, name VARCHAR(200), content TEXT, score INTEGER)"
        )
        conn.exec_driver_sql(LIVE_FROM_PRISTINE_SQL)
    vacuum(engine, PRISTINE, LIVE, checkpoint=False)


def prepare_broken(engine: sa.Engine, operation: str) -> None:
    """(Re)create the version table from the pristine copy, broken for ``operation``.

    Rows go in in transaction order, as Continuum appends them; indexes are built afterwards.
    """
    broken = BROKEN[operation]
    select = ", ".join(broken.get(c, c) for c in ALL_COLUMNS)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {VERSION}")
        conn.exec_driver_sql(f"CREATE TABLE {VERSION} ({VERSION_COLUMNS_DDL})")
        conn.exec_driver_sql(
            f"INSERT INTO {VERSION} ({', '.join(ALL_COLUMNS)}) SELECT {select} FROM {PRISTINE} ORDER BY transaction_id"
        )
        for ddl in VERSION_INDEXES_DDL:
            conn.exec_driver_sql(ddl)
    vacuum(engine, VERSION)


def wrong_rows(engine: sa.Engine) -> int:
    """Version rows whose end id or flags differ from the pristine history."""
    cols = ("end_transaction_id", *FLAGS)
    left = ", ".join(f"v.{c}" for c in cols)
    right = ", ".join(f"p.{c}" for c in cols)
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            f"SELECT count(*) FROM {VERSION} v JOIN {PRISTINE} p USING (id, transaction_id) "
            f"WHERE ({left}) IS DISTINCT FROM ({right})"
        ).scalar_one()


# --------------------------------------------------------------------------------------------
# One measurement, in a child process
# --------------------------------------------------------------------------------------------


def measure(url: str, operation: str, method: str, explain: bool = False) -> dict[str, Any]:
    return run_child(__file__, {"url": url, "operation": operation, "method": method, "explain": explain})


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement; return its wall time, rows written and client peak-RSS growth."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    import alembic_versioning  # noqa: F401  (registers the operations)

    operation, method = spec["operation"], spec["method"]
    # With --explain, the op's UPDATE (the only UPDATE it issues) runs as EXPLAIN ANALYZE.
    with child_engine(spec, lambda statement: statement.lstrip().upper().startswith("UPDATE")) as (engine, plans):
        table = None
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            if method == "continuum":
                from sqlalchemy_continuum.schema import update_end_tx_column, update_property_mod_flags

                table = sa.Table(VERSION, sa.MetaData(), autoload_with=conn)
            conn.rollback()

            with measured_transaction(conn, VERSION, COUNTERS, rollback=spec.get("explain", False)) as measured:
                if method == "floor":
                    conn.exec_driver_sql(FLOOR_SQL[operation])
                elif method == "op":
                    op = Operations(MigrationContext.configure(conn))
                    if operation == "end_transaction_ids":
                        op.update_end_transaction_ids(LIVE)
                    else:
                        op.update_mod_flags(LIVE)
                elif operation == "end_transaction_ids":
                    update_end_tx_column(table, conn=conn)
                else:
                    update_property_mod_flags(table, list(DATA_COLUMNS), conn=conn)
        return {**measured, "plans": plans}


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Result(Timings):
    operation: str
    rows: int
    entities: int
    versions: int
    rows_written: dict[str, int] = field(default_factory=dict)
    wrong_before: int = 0
    wrong_after: dict[str, int] = field(default_factory=dict)


def run_benchmark(url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    results = []
    try:
        for rows in args.sizes:
            entities = rows // args.versions
            log(f"== {rows} rows ({entities} entities x {args.versions} versions): generating")
            t = time.perf_counter()
            create_pristine(engine, entities * args.versions, args.versions)
            log(f"   generated in {time.perf_counter() - t:.1f} s")
            for operation in args.operations:
                result = Result(
                    operation=operation, rows=entities * args.versions, entities=entities, versions=args.versions
                )
                methods = ["floor", "op"]
                if not args.skip_continuum and rows <= args.continuum_max:
                    methods.append("continuum")
                for method in methods:
                    repeat = 1 if method == "continuum" else args.repeat
                    for _ in range(repeat):
                        prepare_broken(engine, operation)
                        if method == "floor":
                            result.wrong_before = wrong_rows(engine)
                        m = measure(url, operation, method)
                        result.add(method, m["seconds"], m["rss_growth_mib"])
                        result.rows_written[method] = m["n_tup_upd"]
                        if method != "floor":
                            result.wrong_after[method] = wrong_rows(engine)
                        log(
                            f"   {operation:<20} {method:<9} {m['seconds']:8.2f} s  "
                            f"{m['n_tup_upd']:>8} rows written ({m['n_tup_hot_upd']} HOT)  "
                            f"peak RSS +{m['rss_growth_mib']:.1f} MiB"
                        )
                    if args.explain and method != "continuum":
                        prepare_broken(engine, operation)
                        plans = measure(url, operation, method, explain=True)["plans"]
                        print_plans(plans, f"{operation}, {method}, {rows} rows")
                results.append(result)
        with engine.begin() as conn:
            for table in (VERSION, PRISTINE, LIVE):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    finally:
        engine.dispose()
    return [asdict(r) for r in results], [("Results", HEADERS, table_rows(results))]


HEADERS = [
    "operation",
    "rows",
    "floor s",
    "op s",
    "Continuum s",
    "op / floor",
    "Continuum / op",
    "rows written (op)",
    "peak RSS growth MiB (floor / op / Continuum)",
    "rows left wrong (op / Continuum)",
]


def table_rows(results: list[Result]) -> list[list[str]]:
    out = []
    for r in results:
        s = r.seconds
        rss = " / ".join(fmt(r.rss_growth_mib.get(m), ".1f") for m in METHODS)
        wrong = " / ".join(str(r.wrong_after[m]) if m in r.wrong_after else "-" for m in ("op", "continuum"))
        out.append(
            [
                r.operation,
                f"{r.rows:,}",
                fmt(s.get("floor"), ".2f"),
                fmt(s.get("op"), ".2f"),
                fmt(s.get("continuum"), ".1f"),
                fmt(r.ratio("op", "floor"), ".2f"),
                fmt(r.ratio("continuum", "op"), ".0f"),
                f"{r.rows_written.get('op', 0):,} of {r.wrong_before:,} wrong",
                rss,
                wrong,
            ]
        )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, "20000,200000", "total version rows per table,")
    parser.add_argument("--versions", type=int, default=5, help="versions per entity (default: 5)")
    add_reference_arguments(parser, "continuum", "Continuum's helpers", 200_000)
    parser.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        type=lambda s: s.split(","),
        help="end_transaction_ids,mod_flags (default: both)",
    )
    parser.add_argument(
        "--end-ids-broken",
        choices=sorted(END_IDS_BROKEN),
        default="null",
        help="broken state for end_transaction_ids: all NULL (default) or end = own transaction id (every row wrong)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of the floor and the op; the median is shown")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of floor and op")
    args = parser.parse_args(argv)
    if args.versions < 2:
        parser.error("--versions must be at least 2")
    unknown = set(args.operations) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operations {sorted(unknown)}")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    BROKEN["end_transaction_ids"]["end_transaction_id"] = END_IDS_BROKEN[arguments.end_ids_broken]
    main(arguments, child, run_benchmark)
