#!/usr/bin/env python
"""Benchmark ``vacuum_versions`` on PostgreSQL.

The tables are those of a real SQLAlchemy-Continuum model, ``bench_item`` (validity strategy,
PropertyModTrackerPlugin), created by Continuum's MetaData. For each size (version rows, N
entities x 10 versions) a history is generated set-based in which 30% of the UPDATE versions
change ``content`` alone (and 1 in 7 of the others do anyway), then ``content`` and
``content_mod`` are dropped (``ALTER TABLE ... DROP COLUMN``, as a migration would): about 40% of
the UPDATE versions become *futile*, equal to their predecessor, in runs of one or more, some
at the end of a chain. ``name`` and ``score`` take three values in turn (a version may return
to an earlier state), and one entity in four has an UPDATE as its first version (a row that
existed before versioning was switched on). Timed, each from the same freshly loaded,
``VACUUM ANALYZE``-d table:

* the *floor*: one plain ``DELETE ... WHERE (id, transaction_id) IN (SELECT ...)`` of the
  futile rows, precomputed into a table (no end ids, no flags);
* *floor + relink*: the same ``DELETE``, then one plain ``UPDATE ... FROM`` of the precomputed
  new end ids of the versions before the deleted ones: the least a correct vacuum writes;
* the *op*: ``op.vacuum_versions("bench_item")`` through Alembic's
  ``Operations(MigrationContext.configure(conn))``;
* *Continuum*'s ``sqlalchemy_continuum.utils.vacuum(session, BenchItem)`` on the model as
  configured (validity strategy, mod flags) and, in a second run, on a subquery-strategy model
  without mod flags (its most favourable configuration: end ids and flags are not mapped, so not
  compared), both only up to ``--continuum-max`` rows (``--skip-continuum``).

After each run the result is checked against the generated history: rows removed, futile ones
among them, real changes removed, futile versions left, end-id links broken, other values changed.

Every measurement runs in a fresh Python process, in one transaction (commit included); its
client memory is the growth of the process's peak RSS over its RSS just before the call.
Without ``--url`` the script starts its own PostgreSQL server in a temporary directory.

Usage::

    python benchmarks/bench_vacuum.py --sizes 20000,200000,1000000 --repeat 3 --continuum-max 1000000
    python benchmarks/bench_vacuum.py --sizes 1000000 --skip-continuum --explain
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import _support
import sqlalchemy as sa
from _support import LIVE, PRISTINE, VERSION, Timings, fmt, log

VERSIONS_PER_ENTITY = 10
#: The share of UPDATE versions generated changing ``content`` alone.
CONTENT_ONLY = 0.3
#: ``name`` and ``score`` take this many values in turn.
CYCLE = 3
#: The columns dropped before vacuuming, and the data columns left.
DROPPED = ("content", "content_mod")
KEPT = ("name", "score")
#: The futile versions of the generated history, precomputed for the floor and the checks, and
#: the new end ids of the versions before them.
FUTILE = "bench_item_version_futile"
RELINK = "bench_item_version_relink"

#: Continuum's ``vacuum`` runs: the model's options (strategy, mod flags).
CONTINUUM = {"continuum": ("validity", True), "continuum_subquery": ("subquery", False)}
METHODS = ("floor", "op", *CONTINUUM)
#: The references, plain SQL with everything precomputed: the floor deletes the futile versions;
#: ``floor_relink`` also gives the versions before them their new end ids, as the op must.
DELETE_SQL = f"DELETE FROM {VERSION} WHERE (id, transaction_id) IN (SELECT id, transaction_id FROM {FUTILE})"
REFERENCES = {
    "floor": [DELETE_SQL],
    "floor_relink": [
        DELETE_SQL,
        f"UPDATE {VERSION} AS v SET end_transaction_id = r.end_transaction_id FROM {RELINK} AS r "
        f"WHERE v.id = r.id AND v.transaction_id = r.transaction_id",
    ],
}

# The tables printed: headers, method names.
TIME_HEADERS = [
    "rows",
    "futile (of UPDATE versions)",
    "floor s (+ relink)",
    "op s",
    "op / floor (+ relink)",
    "Continuum s (validity / subquery)",
    "Continuum / op (validity)",
    "peak RSS growth MiB (floor / op / Continuum validity / subquery)",
]
CHECK_HEADERS = [
    "rows",
    "method",
    "rows deleted (end ids or flags updated)",
    "futile deleted",
    "real changes deleted",
    "futile left",
    "broken end-id links",
    "other values changed",
]
LABELS = {
    "floor": "floor",
    "floor_relink": "floor + relink",
    "op": "op",
    "continuum": "Continuum (validity)",
    "continuum_subquery": "Continuum (subquery)",
}


def futile_versions(table: str) -> str:
    """The futile versions of ``table`` (without ``content``): UPDATEs whose name and score
    equal, NULL-safely, those of the previous version, that version not a DELETE. Written here
    in plain SQL, independently of the package."""
    return f"""
        SELECT id, transaction_id FROM (
            SELECT id, transaction_id, operation_type, lag(operation_type) OVER w AS previous_op,
                   (name, score) IS NOT DISTINCT FROM (lag(name) OVER w, lag(score) OVER w) AS same
            FROM {table} WINDOW w AS (PARTITION BY id ORDER BY transaction_id)
        ) AS s
        WHERE operation_type = 1 AND previous_op IN (0, 1) AND same"""


RELINK_SQL = f"""
CREATE TABLE {RELINK} AS
SELECT id, transaction_id, next_transaction_id AS end_transaction_id FROM (
    SELECT p.id, p.transaction_id, p.end_transaction_id, lead(p.transaction_id) OVER w AS next_transaction_id
    FROM {PRISTINE} AS p
    WHERE NOT EXISTS (SELECT FROM {FUTILE} AS f WHERE f.id = p.id AND f.transaction_id = p.transaction_id)
    WINDOW w AS (PARTITION BY p.id ORDER BY p.transaction_id)
) AS s
WHERE next_transaction_id IS DISTINCT FROM end_transaction_id
"""

# The generated history: UPDATE versions after a first version, futile ones, runs of them.
SHAPE_SQL = f"""
WITH marked AS (
    SELECT p.operation_type, f.id IS NOT NULL AS futile,
           lag(f.id IS NOT NULL) OVER w AS after_futile,
           lag(f.id IS NOT NULL, 2) OVER w AS after_two_futile,
           lead(p.transaction_id) OVER w IS NULL AS last
    FROM {PRISTINE} AS p LEFT JOIN {FUTILE} AS f USING (id, transaction_id)
    WINDOW w AS (PARTITION BY p.id ORDER BY p.transaction_id)
)
SELECT count(*) FILTER (WHERE operation_type = 1 AND after_futile IS NOT NULL) AS updates,
       count(*) FILTER (WHERE futile) AS futile,
       count(*) FILTER (WHERE futile AND NOT after_futile) AS runs,
       count(*) FILTER (WHERE futile AND after_futile AND NOT after_two_futile) AS longer_runs,
       count(*) FILTER (WHERE futile AND last) AS at_chain_end
FROM marked
"""

# What a run did, against the generated history and the precomputed futile versions.
CHECK_SQL = f"""
SELECT
    (SELECT count(*) FROM {PRISTINE} AS p WHERE NOT EXISTS
        (SELECT FROM {VERSION} AS v WHERE v.id = p.id AND v.transaction_id = p.transaction_id)) AS removed,
    (SELECT count(*) FROM {FUTILE} AS f WHERE NOT EXISTS
        (SELECT FROM {VERSION} AS v WHERE v.id = f.id AND v.transaction_id = f.transaction_id)) AS futile_removed,
    (SELECT count(*) FROM ({futile_versions(VERSION)}) AS f) AS futile_left,
    (SELECT count(*) FROM (
        SELECT end_transaction_id IS DISTINCT FROM lead(transaction_id) OVER w AS broken
        FROM {VERSION} WINDOW w AS (PARTITION BY id ORDER BY transaction_id)
    ) AS l WHERE broken) AS broken_links,
    (SELECT count(*) FROM {VERSION} AS v JOIN {PRISTINE} AS p USING (id, transaction_id)
     WHERE (v.name, v.score, v.operation_type, v.name_mod, v.score_mod)
           IS DISTINCT FROM (p.name, p.score, p.operation_type, p.name_mod, p.score_mod)) AS changed
"""


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def create_data(engine: sa.Engine, metadata: sa.MetaData, entities: int) -> None:
    """The Continuum model's tables, the generated history (not loaded yet: see :func:`reset`),
    the live rows without ``content``, the history's futile versions and the new end ids of the
    versions they follow (each surviving version's end id is the next surviving version's id)."""
    _support.create_versioned_data(
        engine, metadata, entities, VERSIONS_PER_ENTITY, stale=False, content_only=CONTENT_ONLY, cycle=CYCLE
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FUTILE}, {RELINK}")
        # Rows that existed before versioning was switched on: their first version is an UPDATE.
        conn.exec_driver_sql(f"UPDATE {PRISTINE} SET operation_type = 1 WHERE operation_type = 0 AND mod(id, 4) = 2")
        conn.exec_driver_sql(f"ALTER TABLE {LIVE} DROP COLUMN content")
        conn.exec_driver_sql(f"CREATE TABLE {FUTILE} AS {futile_versions(PRISTINE)}")
        conn.exec_driver_sql(f"ALTER TABLE {FUTILE} ADD PRIMARY KEY (id, transaction_id)")
        conn.exec_driver_sql(RELINK_SQL)
    _support.vacuum(engine, PRISTINE, LIVE, FUTILE, RELINK, checkpoint=False)


def reset(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """The state every measurement starts from: the version table re-created by Continuum's
    MetaData, loaded with the generated history, its indexes rebuilt, ``content`` and
    ``content_mod`` dropped, ``VACUUM ANALYZE``-d and checkpointed."""
    version = metadata.tables[VERSION]
    with engine.begin() as conn:
        version.drop(conn)
        version.create(conn)
    _support.load_versions(engine, metadata)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {VERSION} " + ", ".join(f"DROP COLUMN {c}" for c in DROPPED))
    _support.vacuum(engine, VERSION)


def query_row(engine: sa.Engine, sql: str) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql(sql).one()._mapping)


# --------------------------------------------------------------------------------------------
# One measurement, in a child process
# --------------------------------------------------------------------------------------------


def measure(url: str, method: str, explain: bool = False) -> dict[str, Any]:
    """One measurement in a child process: ``seconds``, ``rss_growth_mib``, ``n_tup_del``, ..."""
    return _support.run_child(__file__, {"url": url, "method": method, "explain": explain})


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement; return its wall time, rows deleted and updated, client peak-RSS growth."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy.orm import Session

    import alembic_versioning  # noqa: F401  (registers the operations)

    method = spec["method"]
    # Continuum is imported (and its listeners installed) only to time its vacuum.
    model = _support.versioned_model(KEPT, *CONTINUUM[method]) if method in CONTINUUM else None

    def run(conn: sa.Connection) -> None:
        if method in REFERENCES:
            for statement in REFERENCES[method]:
                conn.exec_driver_sql(statement)
        elif method == "op":
            Operations(MigrationContext.configure(conn)).vacuum_versions(LIVE)
        else:
            from sqlalchemy_continuum.utils import vacuum as continuum_vacuum

            assert model is not None
            _, item, _ = model
            with Session(bind=conn) as session:
                continuum_vacuum(session, item)
                session.commit()

    return _support.measure_writes(spec, ("n_tup_del", "n_tup_upd"), run)


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Result(Timings):
    rows: int
    entities: int
    shape: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    checks: dict[str, dict[str, int]] = field(default_factory=dict)


def run_method(url: str, engine: sa.Engine, metadata: sa.MetaData, result: Result, method: str) -> None:
    reset(engine, metadata)
    m = measure(url, method)
    result.add(method, m["seconds"], m["rss_growth_mib"])
    result.deleted[method], result.updated[method] = m["n_tup_del"], m["n_tup_upd"]
    result.checks[method] = query_row(engine, CHECK_SQL)
    log(
        f"   {method:<18} {m['seconds']:8.2f} s  {m['n_tup_del']:>7} deleted, {m['n_tup_upd']:>7} updated  "
        f"peak RSS +{m['rss_growth_mib']:.1f} MiB  {result.checks[method]}"
    )


def run_benchmark(url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any]]:
    results: list[Result] = []
    with _support.versioned_database(url) as (engine, metadata):
        for rows in args.sizes:
            entities = rows // VERSIONS_PER_ENTITY
            log(f"== {rows} version rows ({entities} entities x {VERSIONS_PER_ENTITY} versions): generating")
            start = time.perf_counter()
            create_data(engine, metadata, entities)
            result = Result(rows=entities * VERSIONS_PER_ENTITY, entities=entities)
            result.shape = query_row(engine, SHAPE_SQL)
            log(f"   generated in {time.perf_counter() - start:.1f} s: {result.shape}")
            # Warm-up (not counted): the first large write after start-up also creates WAL files.
            reset(engine, metadata)
            measure(url, "floor")
            for _ in range(args.repeat):
                for method in (*REFERENCES, "op"):
                    run_method(url, engine, metadata, result, method)
            if not args.skip_continuum and rows <= args.continuum_max:
                for method in CONTINUUM:
                    run_method(url, engine, metadata, result, method)
            if args.explain:
                for method in ("floor", "op"):
                    reset(engine, metadata)
                    _support.print_plans(measure(url, method, explain=True)["plans"], f"{method}, {rows} rows")
            results.append(result)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FUTILE}, {RELINK}")
    return [asdict(r) for r in results], tables(results)


def tables(results: list[Result]) -> list[tuple[str, list[str], list[list[str]]]]:
    times, checks = [], []
    for r in results:
        s, shape = r.seconds, r.shape
        continuum = f"{fmt(s.get('continuum'), '.1f')} / {fmt(s.get('continuum_subquery'), '.1f')}"
        times.append(
            [
                f"{r.rows:,}",
                f"{shape['futile']:,} of {shape['updates']:,} ({shape['futile'] / shape['updates']:.0%})",
                f"{fmt(s.get('floor'), '.2f')} ({fmt(s.get('floor_relink'), '.2f')})",
                fmt(s.get("op"), ".2f"),
                f"{fmt(r.ratio('op', 'floor'), '.1f')} ({fmt(r.ratio('op', 'floor_relink'), '.1f')})",
                continuum,
                fmt(r.ratio("continuum", "op"), ".0f"),
                " / ".join(fmt(r.rss_growth_mib.get(m), ".1f") for m in METHODS),
            ]
        )
        for method, c in r.checks.items():
            links = "-" if method == "continuum_subquery" else f"{c['broken_links']:,}"
            checks.append(
                [
                    f"{r.rows:,}",
                    LABELS[method],
                    f"{r.deleted[method]:,} ({r.updated[method]:,})",
                    f"{c['futile_removed']:,} of {shape['futile']:,}",
                    f"{c['removed'] - c['futile_removed']:,}",
                    f"{c['futile_left']:,}",
                    links,
                    f"{c['changed']:,}",
                ]
            )
    return [("Vacuum: times", TIME_HEADERS, times), ("Vacuum: what each run removed", CHECK_HEADERS, checks)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _support.argument_parser(__doc__, "20000,200000", "version rows (entities x 10 versions)")
    _support.add_reference_arguments(parser, "continuum", "Continuum's vacuum", 200_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of the floor and the op; the median is shown")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of the floor and the op")
    return parser.parse_args(argv)


if __name__ == "__main__":
    _support.main(parse_args(), child, run_benchmark)
