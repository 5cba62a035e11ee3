#!/usr/bin/env python
"""Benchmark ``backfill_versions`` and ``vacuum_versions`` on a joined-table inheritance hierarchy.

A Continuum model ``bench_base`` / ``bench_sub(bench_base)`` (every entity a ``bench_sub``, so both
version tables hold a row of every version), N entities x 3 versions, generated in SQL: version 1
an INSERT, version 2 an UPDATE equal to version 1 in ``bench_base`` and, for three entities in four,
in ``bench_sub`` too (futile throughout, as a dropped column leaves it; the fourth changed its
``bench_sub`` half), version 3 an UPDATE of ``bench_base``'s ``name`` (``bench_sub``'s half
unchanged, as Continuum writes it). Timed on PostgreSQL (``--url`` or a temporary server) and on
SQLite (a file in a temporary directory), each in one transaction through Alembic's ``Operations``:

* ``backfill joined``: ``backfill_versions("bench_base", joined=["bench_sub"])`` after a raw
  ``UPDATE`` of 10% of the base rows: both halves of those entities, one of them unchanged;
* ``backfill base alone``: ``backfill_versions("bench_base")`` after the same kind of update, the
  cost of the base table's half alone (what the hierarchy adds is the second table's half);
* ``vacuum joined``: ``vacuum_versions("bench_base", joined=["bench_sub"])`` (the 3N/4 versions
  futile throughout, from both tables);
* ``vacuum base alone``: ``vacuum_versions("bench_base")`` on the same data (it deletes the N base
  halves that read futile alone: wrong for a hierarchy, timed as the per-table reference).

Each measurement runs on freshly generated tables (``--repeat N``: the median of N runs); the
growth between sizes shows whether a statement grows faster than the tables (the exponent ``e`` of
``time ~ n^e``: 1 is linear).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _support import argument_parser, fmt, main
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import DeclarativeBase, configure_mappers
from sqlalchemy_continuum import VersioningManager, make_versioned, remove_versioning
from sqlalchemy_continuum.plugins import PropertyModTrackerPlugin

import alembic_versioning  # noqa: F401  (registers the operations)

MEASUREMENTS: dict[str, Callable[[Operations], None]] = {
    "backfill joined": lambda op: op.backfill_versions("bench_base", joined=["bench_sub"]),
    "backfill base alone": lambda op: op.backfill_versions("bench_base"),
    "vacuum joined": lambda op: op.vacuum_versions("bench_base", joined=["bench_sub"]),
    "vacuum base alone": lambda op: op.vacuum_versions("bench_base"),
}


def hierarchy() -> tuple[sa.MetaData, VersioningManager, type[DeclarativeBase]]:
    """The Continuum model: validity strategy, PropertyModTrackerPlugin."""
    manager = VersioningManager()
    make_versioned(manager=manager, user_cls=None, plugins=[PropertyModTrackerPlugin()])

    class Base(DeclarativeBase):
        pass

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]
    base = type(
        "BenchBase",
        (Base,),
        {
            "__tablename__": "bench_base",
            "__versioned__": {},
            "__mapper_args__": {"polymorphic_on": "kind", "polymorphic_identity": "base"},
            "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
            "kind": sa.Column(sa.String(20)),
            "name": sa.Column(sa.String(50)),
        },
    )
    type(
        "BenchSub",
        (base,),
        {
            "__tablename__": "bench_sub",
            "__versioned__": {},
            "__mapper_args__": {"polymorphic_identity": "sub"},
            "id": sa.Column(sa.Integer, sa.ForeignKey("bench_base.id"), primary_key=True),
            "body": sa.Column(sa.String(50)),
        },
    )
    configure_mappers()
    return Base.metadata, manager, Base


def generate(engine: sa.Engine, metadata: sa.MetaData, entities: int) -> None:
    """Fresh tables holding the history described above; the live rows its last versions."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    series = (
        f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {entities}) SELECT g FROM s) q"
        if engine.dialect.name == "sqlite"
        else f"generate_series(1, {entities}) AS q(g)"
    )
    fourth = "g %% 4 = 0" if engine.dialect.name == "postgresql" else "g % 4 = 0"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO bench_base (id, kind, name) SELECT g, 'sub', 'm' FROM {series}")
        conn.exec_driver_sql(f"INSERT INTO bench_sub (id, body) SELECT g, 'b' FROM {series}")
        for tx, op, name, end in [(1, 0, "'n'", "2"), (2, 1, "'n'", "3"), (3, 1, "'m'", "NULL")]:
            flags = "true, true" if tx == 1 else f"false, {'true' if tx == 3 else 'false'}"
            conn.exec_driver_sql(
                "INSERT INTO bench_base_version (id, kind, name, transaction_id, end_transaction_id, "
                f"operation_type, kind_mod, name_mod) SELECT g, 'sub', {name}, {tx}, {end}, {op}, {flags} FROM {series}"
            )
            body = f"CASE WHEN {fourth} THEN 'b2' ELSE 'b' END" if tx == 2 else "'b'"
            changed = f"{fourth}" if tx != 1 else "true"
            conn.exec_driver_sql(
                "INSERT INTO bench_sub_version (id, body, transaction_id, end_transaction_id, operation_type, "
                f"body_mod) SELECT g, {body}, {tx}, {end}, {op}, {changed} FROM {series}"
            )
        conn.exec_driver_sql('INSERT INTO "transaction" (id) VALUES (1), (2), (3)')
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT setval('transaction_id_seq', 3)")
            conn.exec_driver_sql("ANALYZE")


def measure(engine: sa.Engine, metadata: sa.MetaData, entities: int, name: str) -> float:
    generate(engine, metadata, entities)
    if name.startswith("backfill"):
        tenth = "id %% 10 = 0" if engine.dialect.name == "postgresql" else "id % 10 = 0"
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE bench_base SET name = 'raw' WHERE {tenth}")
    started = time.perf_counter()
    with engine.begin() as conn:
        MEASUREMENTS[name](Operations(MigrationContext.configure(conn)))
    return time.perf_counter() - started


def benchmark(url: str, args: Any) -> tuple[Any, list[tuple[str, list[str], list[list[str]]]]]:
    metadata, manager, base = hierarchy()
    results: dict[str, dict[str, dict[int, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engines = {"postgresql": sa.create_engine(url), "sqlite": sa.create_engine(f"sqlite:///{Path(tmp)}/j.db")}
            for dialect, engine in engines.items():
                for name in MEASUREMENTS:
                    for size in args.sizes:
                        runs = [measure(engine, metadata, size, name) for _ in range(args.repeat)]
                        seconds = statistics.median(runs)
                        results.setdefault(dialect, {}).setdefault(name, {})[size] = seconds
                        print(f"{dialect} {name} {size}: {', '.join(f'{r:.2f}' for r in runs)} s", flush=True)
                metadata.drop_all(engine)
                engine.dispose()
    finally:
        remove_versioning(manager=manager)
        base.registry.dispose()
    sizes = args.sizes
    headers = ["database", "measurement", *(f"{n:,} entities s" for n in sizes), "growth (exponent) per step"]
    rows = []
    for dialect, measured in results.items():
        for name, times in measured.items():
            steps = [
                f"x{times[b] / times[a]:.1f} (n^{math.log(times[b] / times[a]) / math.log(b / a):.2f})"
                for a, b in zip(sizes, sizes[1:], strict=False)
            ]
            rows.append([dialect, name, *(fmt(times[n], ".2f") for n in sizes), "; ".join(steps)])
    return results, [("Joined-table inheritance: seconds", headers, rows)]


if __name__ == "__main__":
    parser = argument_parser(__doc__ or "", "20000,100000", "entities (x 3 versions, in each of 2 tables)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement, median shown (default: 1)")
    main(parser.parse_args(), None, benchmark)
