#!/usr/bin/env python
"""Benchmark the autogenerate drift checks on PostgreSQL.

For each size (version rows, N entities x 5 versions, as in ``bench_repairs.py``) the tables
of a real SQLAlchemy-Continuum model, ``bench_item`` (validity strategy,
PropertyModTrackerPlugin), are created by Continuum's MetaData and filled set-based: a correct
history, and a live table of which a raw ``UPDATE`` changed 10% of the rows (so there is
drift to find). Timed, each the median of ``--repeat`` runs on a warm cache:

* ``history_check(table, chains=True, mod_flags=True, futile=True)``: one window pass over
  the version table counting broken end-id links, missing mod flags and futile versions (the
  futile check runs only when vacuum is opted in); the default checks, chains and mod flags
  (``history_check (default)``), and the chain check alone, as for a table without the mod
  tracker (``history_check (chains)``);
* ``backfill_check(table, live, columns)``: the versions ``backfill_versions`` would write;
* the references: one sequential scan of the version table in one backend (index scans and
  parallel workers off), ``SELECT count(*)`` and ``SELECT count(t.*)`` (which also reads every
  column); one pass reading every column in key order (through Continuum's
  ``(pk, transaction_id DESC)`` index), the order a comparison of each version with its
  neighbours needs, which on a table stored in transaction order fetches rows out of order;
  and the window pass ``history_check`` is built on, without its comparisons;
* ``alembic.autogenerate.produce_migrations`` with the plugin enabled
  (``autogenerate_plugins=["alembic.autogenerate.*", "alembic_versioning.*"]``) and, for
  comparison, with Alembic's own comparators only.

Without ``--url`` the script starts its own PostgreSQL server in a temporary directory.

Usage::

    python benchmarks/bench_checks.py --sizes 1000000 --repeat 5
    python benchmarks/bench_checks.py --sizes 1000000 --explain   # EXPLAIN ANALYZE of both checks
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import _support
import sqlalchemy as sa
from _support import (
    LIVE,
    PRISTINE,
    VERSION,
    Timings,
    create_versioned_data,
    fmt,
    load_versions,
    log,
    print_plans,
    ratio,
    seq_scan,
    versioned_database,
)

VERSIONS_PER_ENTITY = 5
PLUGINS = ["alembic.autogenerate.*", "alembic_versioning.*"]


def timed(repeat: int, call: Callable[[], Any]) -> tuple[list[float], Any]:
    """Run ``call`` once to warm up, then ``repeat`` times; the times and the last result."""
    result = call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result


def produce(conn: sa.Connection, metadata: sa.MetaData, plugins: list[str] | None) -> Any:
    from alembic.autogenerate import produce_migrations
    from alembic.migration import MigrationContext

    opts: dict[str, Any] = {"target_metadata": metadata}
    if plugins is not None:
        opts["autogenerate_plugins"] = plugins
    return produce_migrations(MigrationContext.configure(conn, opts=opts), metadata)


@dataclass(kw_only=True)
class Result(Timings):
    rows: int
    live_rows: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    ops: list[str] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)

    def add_runs(self, name: str, times: list[float]) -> None:
        for seconds in times:
            self.add(name, seconds)
        log(f"   {name:<22} {self.seconds[name]:8.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)})")


def window_pass(table: Any) -> Any:
    """The window pass ``history_check`` is built on, alone: every window function it computes,
    counted, and no comparison."""
    from alembic_versioning.sql.history import history

    h = history(table, table.version_table(), table.columns, next_tx=True, previous_tx=True, previous_op=True)
    windowed = [h.next_tx, h.previous_tx, h.previous_op, *(h.previous(c) for c in table.columns)]
    return sa.select(*(sa.func.count(c) for c in windowed))


def run_size(engine: sa.Engine, metadata: sa.MetaData, rows: int, args: argparse.Namespace) -> Result:
    from alembic_versioning.catalog import reflect_table
    from alembic_versioning.model import Naming, VersionedTable
    from alembic_versioning.sql.checks import backfill_check, history_check

    result = Result(rows=rows)
    with engine.connect() as conn:
        result.live_rows = int(conn.exec_driver_sql(f"SELECT count(*) FROM {LIVE}").scalar_one())
        start = time.perf_counter()
        version = reflect_table(conn, VERSION, None)
        assert version is not None
        table = VersionedTable.from_version_table(version, name=LIVE, naming=Naming())
        live = table.live_table()
        result.add_runs("reflect", [time.perf_counter() - start])
        conn.rollback()
        queries = {
            "history_check": history_check(table, chains=True, mod_flags=True, futile=True),
            "history_check (default)": history_check(table, chains=True, mod_flags=True, futile=False),
            "history_check (chains)": history_check(table, chains=True, mod_flags=False, futile=False),
            "backfill_check": backfill_check(table, live, table.columns),
        }
        for name, query in queries.items():

            def check(q: Any = query) -> Any:
                return conn.execute(q).one()

            times, row = timed(args.repeat, check)
            result.add_runs(name, times)
            result.counts[name] = dict(row._mapping)
        # The references: one sequential scan (count(*), count(t.*)), one pass in key order
        # (count(t.*) through the (pk, transaction_id DESC) index), the bare window pass.
        for name, wide, ordered in (
            ("seq_scan", False, False),
            ("seq_scan_wide", True, False),
            ("key_order_pass", True, True),
        ):

            def scan(w: bool = wide, o: bool = ordered) -> int:
                try:
                    return seq_scan(conn, VERSION, w, o)
                finally:
                    conn.rollback()

            result.add_runs(name, timed(args.repeat, scan)[0])
        result.add_runs("window_pass", timed(args.repeat, lambda: conn.execute(window_pass(table)).one())[0])
        conn.rollback()
        if args.explain:
            for name, query in queries.items():
                sql = str(query.compile(conn))
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, VERBOSE, SETTINGS) " + sql).scalars().all()
                result.plans[name] = "\n".join(plan)
                print_plans([result.plans[name]], f"{name}, {rows} rows")
            conn.rollback()
        for name, plugins in (("produce_migrations", PLUGINS), ("produce_migrations_alembic_only", None)):

            def autogenerate(p: list[str] | None = plugins) -> Any:
                return produce(conn, metadata, p)

            times, script = timed(args.repeat, autogenerate)
            result.add_runs(name, times)
            conn.rollback()
            if plugins is not None:
                result.ops = [f"{type(op).__name__}: {getattr(op, 'finding', '')}" for op in script.upgrade_ops.ops]
                log(f"   ops: {result.ops}")
    log(f"   counts: {result.counts}")
    return result


CHECK_HEADERS = [
    "version rows",
    "seq scan s: count(*) (count(t.*))",
    "window pass s",
    "check",
    "check s",
    "check / seq scan: count(*) (count(t.*))",
    "key-order pass s",
    "check / key-order pass",
    "check / window pass",
    "found",
]
TOTALS = ("all checks (vacuum opted in)", "default checks", "default checks, no mod tracker")
AUTOGEN_HEADERS = ["version rows", "Alembic only s", "with the plugin s", "difference s", "ops"]


def tables(results: list[Result]) -> list[tuple[str, list[str], list[list[str]]]]:
    checks, autogen = [], []
    for r in results:
        backfill = r.seconds["backfill_check"]
        s = {
            **r.seconds,
            "all checks (vacuum opted in)": r.seconds["history_check"] + backfill,
            "default checks": r.seconds["history_check (default)"] + backfill,
            "default checks, no mod tracker": r.seconds["history_check (chains)"] + backfill,
        }
        for name in (*TOTALS, "history_check", "history_check (default)", "history_check (chains)", "backfill_check"):
            found = ", ".join(f"{k}={v:,}" for k, v in r.counts.get(name, {}).items())
            checks.append(
                [
                    f"{r.rows:,}",
                    f"{s['seq_scan']:.3f} ({s['seq_scan_wide']:.3f})",
                    f"{s['window_pass']:.2f}",
                    name,
                    f"{s[name]:.2f}",
                    f"{fmt(ratio(s[name], s['seq_scan']), '.0f')} ({fmt(ratio(s[name], s['seq_scan_wide']), '.1f')})",
                    f"{s['key_order_pass']:.2f}",
                    fmt(ratio(s[name], s["key_order_pass"]), ".1f"),
                    fmt(ratio(s[name], s["window_pass"]), ".2f") if name == "history_check" else "-",
                    found or "-",
                ]
            )
        plugin, alone = s["produce_migrations"], s["produce_migrations_alembic_only"]
        autogen.append(
            [f"{r.rows:,}", f"{alone:.2f}", f"{plugin:.2f}", f"{plugin - alone:.2f}", "; ".join(r.ops) or "-"]
        )
    return [("Drift checks", CHECK_HEADERS, checks), ("produce_migrations", AUTOGEN_HEADERS, autogen)]


def run_benchmark(url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any]]:
    import alembic_versioning  # noqa: F401  (the operations and their renderers)

    results = []
    with versioned_database(url) as (engine, metadata):
        for rows in args.sizes:
            log(f"== {rows} version rows: generating")
            create_versioned_data(engine, metadata, rows // VERSIONS_PER_ENTITY, VERSIONS_PER_ENTITY, stale=True)
            load_versions(engine, metadata)
            with engine.begin() as conn:  # not in the MetaData: autogenerate would drop it
                conn.exec_driver_sql(f"DROP TABLE {PRISTINE}")
            results.append(run_size(engine, metadata, rows, args))
    return [asdict(r) for r in results], tables(results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _support.argument_parser(__doc__, "1000000", "version rows")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after a warm-up; the median is shown")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of both checks")
    return parser.parse_args(argv)


if __name__ == "__main__":
    _support.main(parse_args(), None, run_benchmark)
