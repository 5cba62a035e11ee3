#!/usr/bin/env python
"""Benchmark ``backfill_versions`` on PostgreSQL.

The tables are those of a real SQLAlchemy-Continuum model, ``bench_item`` (``id``, ``name``,
``content``, ``score``; validity strategy, PropertyModTrackerPlugin), created by Continuum's
MetaData and filled set-based with ``generate_series``. Two scenarios, per size:

* ``initial``: versioning switched on for an existing table: N live rows, no versions at all;
  every row needs an INSERT version;
* ``stale``: a version table holding N versions (N/5 entities x 5 versions, as in
  ``bench_repairs.py``), then a raw ``UPDATE`` (bypassing Continuum) of 10% of the live rows;
  each of those needs an UPDATE version, and its previous version an end id.

With ``--strategy subquery`` the model uses Continuum's subquery strategy: no end-transaction
column, so nothing to close (no *floor + close*), and no ORM recipe.

For each, three ways of writing the missing versions, each from the same state:

* the *floor*: one plain ``INSERT INTO bench_item_version SELECT ... FROM bench_item`` of the
  same rows (with the same values and flags), with a fixed transaction id;
* for ``stale`` (validity strategy), *floor + close*: first one plain ``UPDATE`` setting that id
  as the end id of the open versions of the same entities, then the floor: what any correct
  backfill of a validity-strategy table writes, told which rows to write;
* the *op*: ``op.backfill_versions("bench_item")`` through Alembic's
  ``Operations(MigrationContext.configure(conn))``;
* the *ORM recipe* of SQLAlchemy-Continuum issue #28: one Continuum unit of work, every live
  object added as an INSERT (or, for stale ones, an UPDATE) operation, ``make_versions`` (only
  up to ``--orm-max`` rows; ``--skip-orm``).

After the op, the op is run a second time, when there is nothing to do (the *no-op* re-check),
and compared with one sequential pass over the version and live tables in one backend
(``SELECT count(*)``, and ``SELECT count(t.*)`` which also reads every column; index scans and
parallel workers off), and with one pass reading every column in key order (the versions through
Continuum's ``(pk, transaction_id DESC)`` index, the live rows through their primary key): the
order in which each live row can meet its latest version.

Every measurement runs in a fresh Python process, in one transaction (commit included); its
client memory is the growth of the process's peak RSS over its RSS just before the call.
Without ``--url`` the script starts its own PostgreSQL server in a temporary directory.

Usage::

    python benchmarks/bench_backfill.py --sizes 10000,50000,1000000 --repeat 3
    python benchmarks/bench_backfill.py --sizes 1000000 --scenarios initial --skip-orm --explain
    python benchmarks/bench_backfill.py --strategy subquery --sizes 1000000 --scenarios stale --skip-orm
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from _support import (
    DATA_COLUMNS,
    FLAGS,
    LIVE,
    STALE_WHERE,
    VERSION,
    Timings,
    add_reference_arguments,
    argument_parser,
    create_versioned_data,
    fmt,
    load_versions,
    log,
    main,
    measure_writes,
    print_plans,
    run_child,
    seq_scan_seconds,
    vacuum,
    versioned_database,
    versioned_model,
)

SCENARIOS = ("initial", "stale")
STRATEGIES = ("validity", "subquery")
VERSIONS_PER_ENTITY = 5

#: The floor's transaction id: fixed, larger than any the data uses.
FLOOR_TX = 1_000_000_000

_INSERTED = ", ".join(("id", *DATA_COLUMNS, "transaction_id", "operation_type", *FLAGS))
FLOOR_SQL = {
    # The same rows and flags the op writes: INSERT versions flag the values that are set.
    "initial": f"INSERT INTO {VERSION} ({_INSERTED}) SELECT id, name, content, score, {FLOOR_TX}, 0, "
    f"name IS NOT NULL, content IS NOT NULL, score IS NOT NULL FROM {LIVE}",
    # The stale rows: name and score changed, content did not.
    "stale": f"INSERT INTO {VERSION} ({_INSERTED}) SELECT id, name, content, score, {FLOOR_TX}, 1, "
    f"true, false, true FROM {LIVE} WHERE {STALE_WHERE}",
}
#: The stale entities' open versions closed, as the op closes them.
CLOSE_SQL = (
    f"UPDATE {VERSION} SET end_transaction_id = {FLOOR_TX} WHERE end_transaction_id IS NULL "
    f"AND id IN (SELECT id FROM {LIVE} WHERE {STALE_WHERE})"
)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def create_data(engine: sa.Engine, metadata: sa.MetaData, scenario: str, rows: int) -> None:
    """The Continuum schema and the pristine history of one size (versions not loaded yet)."""
    versions = 1 if scenario == "initial" else VERSIONS_PER_ENTITY
    create_versioned_data(engine, metadata, rows // versions, versions, stale=scenario == "stale")


def reset(engine: sa.Engine, metadata: sa.MetaData, scenario: str) -> None:
    """The state every measurement of ``scenario`` starts from."""
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE transaction")
    if scenario == "initial":
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {VERSION}")
        vacuum(engine, VERSION, "transaction")
    else:
        load_versions(engine, metadata)
        vacuum(engine, "transaction")


def drift(engine: sa.Engine) -> dict[str, int]:
    """What the drift checks still find: versions to backfill, broken end-id links."""
    from alembic_versioning.catalog import reflect_table
    from alembic_versioning.model import Naming, VersionedTable
    from alembic_versioning.sql.checks import backfill_check, history_check

    with engine.connect() as conn:
        version = reflect_table(conn, VERSION, None)
        assert version is not None
        table = VersionedTable.from_version_table(version, name=LIVE, naming=Naming())
        live = table.live_table()
        pending = conn.execute(backfill_check(table, live, table.columns)).one()
        links = conn.execute(history_check(table, chains=True, mod_flags=False, futile=False)).one()
    return {**pending._asdict(), "broken_links": links.broken_links}


def closes(scenario: str, strategy: str) -> bool:
    """Whether a backfill of ``scenario`` must also close previous versions (set their end id)."""
    return scenario == "stale" and strategy == "validity"


def count_rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


# --------------------------------------------------------------------------------------------
# One measurement, in a child process
# --------------------------------------------------------------------------------------------


def orm_recipe(session: Any, item: type, manager: Any, scenario: str) -> None:
    """Issue #28's recipe, for every live object in one unit of work and one transaction.

    ``initial``: ``uow.operations.add_insert(obj)`` for every object. ``stale``: each object
    is compared with its open version (``end_transaction_id IS NULL``) and added as an UPDATE
    operation when a value differs (``add_update`` ignores unmodified objects, so the
    operation is added directly), as an INSERT when there is no open version or it is a DELETE.
    """
    from sqlalchemy_continuum import version_class
    from sqlalchemy_continuum.operation import Operation

    uow = manager.unit_of_work(session)
    uow.create_transaction(session)
    objects = session.scalars(sa.select(item)).all()
    if scenario == "initial":
        for obj in objects:
            uow.operations.add_insert(obj)
    else:
        version = version_class(item)
        latest = {v.id: v for v in session.scalars(sa.select(version).where(version.end_transaction_id.is_(None)))}
        for obj in objects:
            current = latest.get(obj.id)
            if current is None or current.operation_type == Operation.DELETE:
                uow.operations.add_insert(obj)
            elif any(getattr(obj, c) != getattr(current, c) for c in DATA_COLUMNS):
                uow.operations.add(Operation(obj, Operation.UPDATE))
    uow.make_versions(session)


def measure(url: str, scenario: str, method: str, explain: bool = False) -> dict[str, Any]:
    """One measurement in a child process: ``seconds``, ``rss_growth_mib``, ``n_tup_ins``, ..."""
    return run_child(__file__, {"url": url, "scenario": scenario, "method": method, "explain": explain})


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement; return its wall time, versions written and closed, client peak-RSS growth."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy.orm import Session

    import alembic_versioning  # noqa: F401  (registers the operations)

    method, scenario = spec["method"], spec["scenario"]
    model = versioned_model() if method == "orm" else None

    def run(conn: sa.Connection) -> None:
        if method == "floor":
            conn.exec_driver_sql(FLOOR_SQL[scenario])
        elif method == "floor_close":
            conn.exec_driver_sql(CLOSE_SQL)
            conn.exec_driver_sql(FLOOR_SQL[scenario])
        elif method in ("op", "noop"):
            Operations(MigrationContext.configure(conn)).backfill_versions(LIVE)
        else:
            assert model is not None
            _, item, manager = model
            with Session(bind=conn) as session:
                orm_recipe(session, item, manager, scenario)
                session.commit()

    # Versions written (inserted) and closed (updated).
    return measure_writes(spec, ("n_tup_ins", "n_tup_upd"), run)


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Result(Timings):
    scenario: str
    strategy: str
    rows: int
    live_rows: int = 0
    version_rows: int = 0
    versions_written: dict[str, int] = field(default_factory=dict)
    versions_closed: dict[str, int] = field(default_factory=dict)
    drift_after: dict[str, dict[str, int]] = field(default_factory=dict)
    noop_version_rows: int = 0


def run_method(url: str, result: Result, method: str) -> None:
    m = measure(url, result.scenario, method)
    result.add(method, m["seconds"], m["rss_growth_mib"])
    result.versions_written[method], result.versions_closed[method] = m["n_tup_ins"], m["n_tup_upd"]
    log(
        f"   {result.scenario:<8} {method:<6} {m['seconds']:8.2f} s  {m['n_tup_ins']:>8} versions written, "
        f"{m['n_tup_upd']:>7} closed  peak RSS +{m['rss_growth_mib']:.1f} MiB"
    )


def run_benchmark(url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any]]:
    results: list[Result] = []
    with versioned_database(url, args.strategy) as (engine, metadata):
        for scenario in args.scenarios:
            for rows in args.sizes:
                log(f"== {scenario}, {rows} rows: generating")
                create_data(engine, metadata, scenario, rows)
                result = Result(
                    scenario=scenario, strategy=args.strategy, rows=rows, live_rows=count_rows(engine, LIVE)
                )
                methods = ("floor", "floor_close", "op") if closes(scenario, args.strategy) else ("floor", "op")
                reset(engine, metadata, scenario)
                result.version_rows = count_rows(engine, VERSION)
                # Warm-up (not counted): the first large write after start-up also creates WAL files.
                measure(url, scenario, "floor")
                for _ in range(args.repeat):
                    for method in methods:
                        reset(engine, metadata, scenario)
                        run_method(url, result, method)
                    vacuum(engine, VERSION, LIVE, "transaction")
                    result.drift_after["op"] = drift(engine)
                    result.noop_version_rows = count_rows(engine, VERSION)
                    run_method(url, result, "noop")
                    # One pass over both tables, as warm as the no-op found them.
                    for name, wide, ordered in (
                        ("pass", False, False),
                        ("wide_pass", True, False),
                        ("key_pass", True, True),
                    ):
                        result.add(name, seq_scan_seconds(engine, (VERSION, LIVE), wide, ordered))
                    log(
                        f"   {scenario:<8} pass   {result.seconds['pass']:8.2f} s, reading every column "
                        f"{result.seconds['wide_pass']:.2f} s (seq scans of {VERSION} and {LIVE}), "
                        f"in key order {result.seconds['key_pass']:.2f} s"
                    )
                if not args.skip_orm and rows <= args.orm_max:
                    reset(engine, metadata, scenario)
                    run_method(url, result, "orm")
                    result.drift_after["orm"] = drift(engine)
                if args.explain:
                    for method in methods:
                        reset(engine, metadata, scenario)
                        print_plans(
                            measure(url, scenario, method, explain=True)["plans"], f"{scenario}, {method}, {rows} rows"
                        )
                    reset(engine, metadata, scenario)
                    measure(url, scenario, "op")
                    vacuum(engine, VERSION, LIVE, "transaction")
                    print_plans(
                        measure(url, scenario, "noop", explain=True)["plans"], f"{scenario}, no-op, {rows} rows"
                    )
                log(f"   drift after: {result.drift_after}")
                results.append(result)
    return [asdict(r) for r in results], tables(results)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

BACKFILL_HEADERS = [
    "scenario",
    "rows",
    "versions written (op)",
    "floor s (+ close)",
    "op s",
    "op / floor (+ close)",
    "ORM recipe s",
    "ORM / op",
    "peak RSS growth MiB (floor / op / ORM)",
    "left to backfill (op / ORM)",
]

NOOP_HEADERS = [
    "scenario",
    "version rows",
    "live rows",
    "one pass s: count(*) (count(t.*))",
    "no-op op s",
    "no-op / pass: count(*) (count(t.*))",
    "key-order pass s",
    "no-op / key-order pass",
    "versions written",
]


def _left(d: dict[str, int] | None) -> str:
    return "-" if d is None else str(d["missing"] + d["stale"] + d["undeleted"])


def tables(results: list[Result]) -> list[tuple[str, list[str], list[list[str]]]]:
    backfill, noop = [], []
    for r in results:
        s = r.seconds
        scenario = r.scenario if r.strategy == "validity" else f"{r.scenario} ({r.strategy})"
        stale = r.scenario == "stale"  # floor + close: "-" where nothing is closed (subquery strategy)
        rss = " / ".join(fmt(r.rss_growth_mib.get(m), ".1f") for m in ("floor", "op", "orm"))
        backfill.append(
            [
                scenario,
                f"{r.rows:,}",
                f"{r.versions_written.get('op', 0):,} (+{r.versions_closed.get('op', 0):,} closed)",
                fmt(s.get("floor"), ".2f") + (f" ({fmt(s.get('floor_close'), '.2f')})" if stale else ""),
                fmt(s.get("op"), ".2f"),
                fmt(r.ratio("op", "floor"), ".2f")
                + (f" ({fmt(r.ratio('op', 'floor_close'), '.2f')})" if stale else ""),
                fmt(s.get("orm"), ".1f"),
                fmt(r.ratio("orm", "op"), ".0f"),
                rss,
                f"{_left(r.drift_after.get('op'))} / {_left(r.drift_after.get('orm'))}",
            ]
        )
        noop.append(
            [
                scenario,
                f"{r.noop_version_rows:,}",
                f"{r.live_rows:,}",
                f"{fmt(s.get('pass'), '.3f')} ({fmt(s.get('wide_pass'), '.3f')})",
                fmt(s.get("noop"), ".2f"),
                f"{fmt(r.ratio('noop', 'pass'), '.0f')} ({fmt(r.ratio('noop', 'wide_pass'), '.1f')})",
                fmt(s.get("key_pass"), ".3f"),
                fmt(r.ratio("noop", "key_pass"), ".2f"),
                f"{r.versions_written.get('noop', 0):,}",
            ]
        )
    return [("Backfill", BACKFILL_HEADERS, backfill), ("No-op re-check", NOOP_HEADERS, noop)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, "10000,50000", "rows: live rows (initial), version rows (stale),")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), type=lambda s: s.split(","), help="initial,stale (default: both)"
    )
    parser.add_argument(
        "--strategy", default="validity", choices=STRATEGIES, help="the model's versioning strategy (default: validity)"
    )
    add_reference_arguments(parser, "orm", "the ORM recipe", 50_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of floor, op and no-op; the median is shown")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of floor, op and no-op")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    if args.strategy == "subquery" and not args.skip_orm:
        parser.error("--strategy subquery needs --skip-orm (the recipe finds open versions by their end id)")
    return args


if __name__ == "__main__":
    main(parse_args(), child, run_benchmark)
