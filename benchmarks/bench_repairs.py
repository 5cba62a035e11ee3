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
import contextlib
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_CTL = ROOT / "tests" / "support" / "pg_ctl.sh"

LIVE = "bench_item"
VERSION = "bench_item_version"
PRISTINE = "bench_item_version_pristine"
DATA_COLUMNS = ("name", "content", "score")
FLAGS = tuple(c + "_mod" for c in DATA_COLUMNS)

#: Server settings of the temporary server (PostgreSQL defaults otherwise, e.g. work_mem=4MB).
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",  # no forced checkpoint in the middle of a measurement
    "checkpoint_timeout": "30min",
    "autovacuum": "off",  # the script vacuums itself before every measurement
}

OPERATIONS = ("end_transaction_ids", "mod_flags")
METHODS = ("floor", "op", "continuum")


# --------------------------------------------------------------------------------------------
# The temporary server
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_server(settings: dict[str, str]) -> Iterator[str]:
    """initdb + start a PostgreSQL server in a temporary directory; yield its URL; stop and remove it."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_repairs_"))
    tmp.chmod(0o755)
    data, log = tmp / "data", tmp / "log"
    port = free_port()
    options = " ".join([f"-p {port}", "-k /tmp"] + [f"-c {k}={v}" for k, v in settings.items()])
    try:
        subprocess.run(
            [str(PG_CTL), "initdb", "-s", "-D", str(data), "-o", "--auth=trust --username=postgres"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [str(PG_CTL), "start", "-D", str(data), "-l", str(log), "-o", options, "-w"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [str(PG_CTL), "stop", "-D", str(data), "-m", "fast", "-w"],
                check=False,
                stdout=subprocess.DEVNULL,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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

# Entity i (1..N), version j (0..K-1). Transaction j*N + i: everything is inserted in a first
# wave of transactions, then updated in K-1 waves, one version row per transaction. Every 10th
# entity's last version is a DELETE (op 2, old values kept); other versions after the first are
# UPDATEs changing a pseudo-random non-empty subset of name/content/score (mask bits 1/2/4).
# A column's value is a function of how many times it has changed so far, so consecutive values
# differ exactly when the column changed; content and score are NULL now and then.
PRISTINE_SQL = f"""
CREATE TABLE {PRISTINE} AS
WITH v AS (
    SELECT i AS id, j AS version, j::bigint * :n + i AS transaction_id,
           CASE WHEN j = 0 THEN 0 WHEN j = :k - 1 AND i % 10 = 0 THEN 2 ELSE 1 END AS operation_type,
           CASE WHEN j = 0 THEN 7
                WHEN j = :k - 1 AND i % 10 = 0 THEN 0
                ELSE 1 + ((hashint8(i::bigint * 1000003 + j) & 2147483647) % 7)::int END AS mask
    FROM generate_series(1, :n) AS i, generate_series(0, :k - 1) AS j
), counted AS (
    SELECT *,
           count(*) FILTER (WHERE mask & 1 <> 0) OVER w AS name_n,
           count(*) FILTER (WHERE mask & 2 <> 0) OVER w AS content_n,
           count(*) FILTER (WHERE mask & 4 <> 0) OVER w AS score_n,
           lead(transaction_id) OVER w AS end_transaction_id
    FROM v
    WINDOW w AS (PARTITION BY id ORDER BY version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), valued AS (
    SELECT id, transaction_id, end_transaction_id, operation_type, mask,
           'item ' || id || ' rev ' || name_n AS name,
           CASE WHEN (content_n + id) % 5 = 0 THEN NULL
                ELSE repeat('lorem ipsum ', 1 + ((id + content_n) % 8)::int) || content_n END AS content,
           CASE WHEN (score_n + id) % 4 = 0 THEN NULL ELSE ((id * 37 + score_n * 11) % 1000)::int END AS score
    FROM counted
)
SELECT id, name, content, score, transaction_id, end_transaction_id, operation_type::smallint,
       CASE operation_type WHEN 0 THEN name IS NOT NULL WHEN 2 THEN true ELSE mask & 1 <> 0 END AS name_mod,
       CASE operation_type WHEN 0 THEN content IS NOT NULL WHEN 2 THEN true ELSE mask & 2 <> 0 END AS content_mod,
       CASE operation_type WHEN 0 THEN score IS NOT NULL WHEN 2 THEN true ELSE mask & 4 <> 0 END AS score_mod
FROM valued
"""

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

ALL_COLUMNS = ("id", *DATA_COLUMNS, "transaction_id", "end_transaction_id", "operation_type", *FLAGS)


def create_pristine(engine: sa.Engine, rows: int, versions: int) -> None:
    entities = rows // versions
    with engine.begin() as conn:
        for table in (VERSION, PRISTINE, LIVE):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.execute(sa.text(PRISTINE_SQL), {"n": entities, "k": versions})
        conn.exec_driver_sql(f"ALTER TABLE {PRISTINE} ADD PRIMARY KEY (id, transaction_id)")
        # The live table, for realism: the last version of every entity not deleted.
        conn.exec_driver_sql(
            f"CREATE TABLE {LIVE} (id INTEGER PRIMARY KEY, name VARCHAR(200), content TEXT, score INTEGER)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {LIVE} SELECT id, name, content, score FROM {PRISTINE} "
            f"WHERE end_transaction_id IS NULL AND operation_type <> 2"
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {PRISTINE}")
        conn.exec_driver_sql(f"VACUUM ANALYZE {LIVE}")


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
            f"INSERT INTO {VERSION} ({', '.join(ALL_COLUMNS)}) "
            f"SELECT {select} FROM {PRISTINE} ORDER BY transaction_id"
        )
        for ddl in VERSION_INDEXES_DDL:
            conn.exec_driver_sql(ddl)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {VERSION}")
        conn.exec_driver_sql("CHECKPOINT")


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


def _rss_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(field_name)


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement; return its wall time, rows written and client peak-RSS growth."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    import alembic_versioning  # noqa: F401  (registers the operations)

    operation, method = spec["operation"], spec["method"]
    engine = sa.create_engine(spec["url"], poolclass=sa.pool.NullPool)
    plans: list[str] = []
    if spec.get("explain"):
        # Run the op's UPDATE (the only UPDATE it issues) as EXPLAIN ANALYZE instead.
        @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
        def _explain(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("UPDATE") and not executemany:
                statement = "EXPLAIN (ANALYZE, BUFFERS, VERBOSE, SETTINGS) " + statement
            return statement, parameters

        @sa.event.listens_for(engine, "after_cursor_execute")
        def _plan(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if statement.startswith("EXPLAIN"):
                plans.append("\n".join(row[0] for row in cursor.fetchall()))

    table = None
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        if method == "continuum":
            from sqlalchemy_continuum.schema import update_end_tx_column, update_property_mod_flags

            table = sa.Table(VERSION, sa.MetaData(), autoload_with=conn)
        conn.rollback()

        rss_before = _rss_kib("VmRSS")
        if not _reset_peak_rss():
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        with conn.begin() as transaction:
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
            # This transaction's own counters (not yet flushed to the cumulative statistics).
            written, hot = conn.exec_driver_sql(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = %(t)s::regclass",
                {"t": VERSION},
            ).one()
            if spec.get("explain"):
                transaction.rollback()
        seconds = time.perf_counter() - start
        peak = _rss_kib("VmHWM")
    engine.dispose()
    return {
        "seconds": seconds,
        "rows_written": written,
        "hot_updates": hot,
        "rss_growth_mib": max(0, peak - rss_before) / 1024,
        "plans": plans,
    }


def measure(url: str, operation: str, method: str, explain: bool = False) -> dict[str, Any]:
    spec = {"url": url, "operation": operation, "method": method, "explain": explain}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    operation: str
    rows: int
    entities: int
    versions: int
    seconds: dict[str, float] = field(default_factory=dict)
    all_seconds: dict[str, list[float]] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    rss_growth_mib: dict[str, float] = field(default_factory=dict)
    wrong_before: int = 0
    wrong_after: dict[str, int] = field(default_factory=dict)

    def ratio(self, a: str, b: str) -> float | None:
        if a in self.seconds and b in self.seconds and self.seconds[b] > 0:
            return self.seconds[a] / self.seconds[b]
        return None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_benchmark(url: str, args: argparse.Namespace) -> list[Result]:
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
                result = Result(operation, entities * args.versions, entities, args.versions)
                methods = ["floor", "op"]
                if not args.skip_continuum and rows <= args.continuum_max:
                    methods.append("continuum")
                for method in methods:
                    repeat = 1 if method == "continuum" else args.repeat
                    times = []
                    for _ in range(repeat):
                        prepare_broken(engine, operation)
                        if method == "floor":
                            result.wrong_before = wrong_rows(engine)
                        m = measure(url, operation, method)
                        times.append(m["seconds"])
                        result.rows_written[method] = m["rows_written"]
                        result.rss_growth_mib[method] = max(result.rss_growth_mib.get(method, 0), m["rss_growth_mib"])
                        if method != "floor":
                            result.wrong_after[method] = wrong_rows(engine)
                        log(
                            f"   {operation:<20} {method:<9} {m['seconds']:8.2f} s  "
                            f"{m['rows_written']:>8} rows written ({m['hot_updates']} HOT)  "
                            f"peak RSS +{m['rss_growth_mib']:.1f} MiB"
                        )
                    result.all_seconds[method] = times
                    result.seconds[method] = statistics.median(times)
                    if args.explain and method != "continuum":
                        prepare_broken(engine, operation)
                        plans = measure(url, operation, method, explain=True)["plans"]
                        for plan in plans:
                            print(f"\n-- EXPLAIN ANALYZE: {operation}, {method}, {rows} rows\n{plan}\n")
                results.append(result)
        with engine.begin() as conn:
            for table in (VERSION, PRISTINE, LIVE):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    finally:
        engine.dispose()
    return results


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


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


def print_text(results: list[Result]) -> None:
    rows = [HEADERS] + table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_rst(results: list[Result]) -> None:
    print(".. list-table::\n   :header-rows: 1\n")
    for row in [HEADERS] + table_rows(results):
        print("   * - " + row[0])
        for cell in row[1:]:
            print("     - " + cell)


def describe_environment(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version()").scalar_one()
        settings = dict(
            conn.exec_driver_sql(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'max_wal_size', 'fsync', 'synchronous_commit', 'autovacuum')"
            ).all()
        )
    engine.dispose()
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
            if names:
                cpu = names[0]
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "postgresql": version,
        "settings": settings,
        "python": platform.python_version(),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_gib:.0f} GiB",
        "os": platform.platform(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="20000,200000",
        type=lambda s: [int(x) for x in s.replace("_", "").split(",")],
        help="total version rows per table, comma-separated (default: 20000,200000)",
    )
    parser.add_argument("--versions", type=int, default=5, help="versions per entity (default: 5)")
    parser.add_argument("--skip-continuum", action="store_true", help="do not time Continuum's helpers")
    parser.add_argument(
        "--continuum-max",
        type=int,
        default=200_000,
        help="time Continuum's helpers only up to this many rows (default: 200000; they are slow)",
    )
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
    parser.add_argument("--url", help="use this PostgreSQL server instead of a temporary one (tables bench_item*)")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of floor and op")
    parser.add_argument("--rst", action="store_true", help="also print the table as an RST list-table")
    parser.add_argument("--json", type=Path, help="write raw results and environment to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.versions < 2:
        parser.error("--versions must be at least 2")
    unknown = set(args.operations) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operations {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    BROKEN["end_transaction_ids"]["end_transaction_id"] = END_IDS_BROKEN[args.end_ids_broken]
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(temporary_server(SERVER_SETTINGS))
        env = describe_environment(url)
        started = time.perf_counter()
        results = run_benchmark(url, args)
        env["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"PostgreSQL: {env['postgresql']}")
    print(f"Settings:   {', '.join(f'{k}={v}' for k, v in sorted(env['settings'].items()))}")
    print(f"Machine:    {env['cpu']}, {env['memory']} RAM; {env['os']}; Python {env['python']}")
    print(f"Command:    python {' '.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])}\n")
    print_text(results)
    if args.rst:
        print()
        print_rst(results)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": [asdict(r) for r in results]}, indent=2))


if __name__ == "__main__":
    main()
