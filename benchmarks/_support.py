"""Shared pieces of the PostgreSQL benchmarks in this folder (not a benchmark itself).

* a temporary PostgreSQL server (``initdb`` + ``pg_ctl`` in a temporary directory);
* the benchmark table ``bench_item`` (``id``, ``name``, ``content``, ``score``): its
  Continuum-shaped version history generated set-based, and the Continuum model of it;
* measurements in a fresh child process (wall time, growth of the peak resident set size);
* the environment report and the result tables (plain text and RST ``list-table``).

The scripts import it as ``_support`` (``python benchmarks/bench_*.py`` puts this folder first
on ``sys.path``).
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_CTL = ROOT / "tests" / "support" / "pg_ctl.sh"

LIVE = "bench_item"
VERSION = "bench_item_version"
PRISTINE = "bench_item_version_pristine"
DATA_COLUMNS = ("name", "content", "score")
FLAGS = tuple(c + "_mod" for c in DATA_COLUMNS)
ALL_COLUMNS = ("id", *DATA_COLUMNS, "transaction_id", "end_transaction_id", "operation_type", *FLAGS)

#: Server settings of the temporary server (PostgreSQL defaults otherwise, e.g. work_mem=4MB).
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",  # no forced checkpoint in the middle of a measurement
    "checkpoint_timeout": "30min",
    "autovacuum": "off",  # the scripts vacuum themselves before every measurement
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The temporary server
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_server(settings: dict[str, str] = SERVER_SETTINGS) -> Iterator[str]:
    """initdb + start a PostgreSQL server in a temporary directory; yield its URL; stop and remove it."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_"))
    tmp.chmod(0o755)
    data, logfile = tmp / "data", tmp / "log"
    port = free_port()
    options = " ".join([f"-p {port}", "-k /tmp"] + [f"-c {k}={v}" for k, v in settings.items()])
    try:
        subprocess.run(
            [str(PG_CTL), "initdb", "-s", "-D", str(data), "-o", "--auth=trust --username=postgres"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [str(PG_CTL), "start", "-D", str(data), "-l", str(logfile), "-o", options, "-w"],
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


def vacuum(engine: sa.Engine, *tables: str, checkpoint: bool = True) -> None:
    """``VACUUM ANALYZE`` ``tables`` (autovacuum is off), then ``CHECKPOINT``."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
        if checkpoint:
            conn.exec_driver_sql("CHECKPOINT")


#: The order a comparison per entity reads each benchmark table in: each entity's versions
#: together, newest first (Continuum's ``(pk, transaction_id DESC)`` index), the live rows by key.
KEY_ORDER = {VERSION: "id, transaction_id DESC", LIVE: "id"}


def seq_scan(conn: sa.Connection, table: str, wide: bool = False, ordered: bool = False) -> int:
    """One pass over ``table`` in this backend alone (parallel workers off, for the current
    transaction): ``SELECT count(*)``, or with ``wide`` ``SELECT count(t.*)``, which also reads
    every column of every row. Sequential (index and bitmap scans off) unless ``ordered``: then
    the rows are read in :data:`KEY_ORDER` (through the index), as a comparison per entity must
    read them; on a table stored in transaction order that means fetching rows out of order."""
    if not ordered:
        for name in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            conn.exec_driver_sql(f"SET LOCAL {name} = off")
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    what = "t.*" if wide else "*"
    rows = f"(SELECT * FROM {table} ORDER BY {KEY_ORDER[table]})" if ordered else table
    return int(conn.exec_driver_sql(f"SELECT count({what}) FROM {rows} AS t").scalar_one())


def seq_scan_seconds(
    engine: sa.Engine, tables: Sequence[str], wide: bool = False, ordered: bool = False, runs: int = 3
) -> float:
    """The best of ``runs`` wall times of :func:`seq_scan` over each of ``tables``."""
    best = float("inf")
    with engine.connect() as conn:
        for _ in range(runs):
            start = time.perf_counter()
            for table in tables:
                seq_scan(conn, table, wide, ordered)
            best = min(best, time.perf_counter() - start)
            conn.rollback()
    return best


# --------------------------------------------------------------------------------------------
# Data: a correct Continuum-shaped history, generated set-based
# --------------------------------------------------------------------------------------------

# Entity i (1..N), version j (0..K-1). Transaction j*N + i: everything is inserted in a first
# wave of transactions, then updated in K-1 waves, one version row per transaction. Every 10th
# entity's last version is a DELETE (op 2, old values kept); other versions after the first are
# UPDATEs changing a pseudo-random non-empty subset of name/content/score (mask bits 1/2/4).
# A column's value is a function of how many times it has changed so far, so consecutive values
# differ exactly when the column changed; content and score are NULL now and then. With K = 1
# every entity has a single INSERT version: its values serve as a live table's rows.
# Parameters besides :n and :k (see create_pristine): a share :content_only of the UPDATEs
# change content alone (futile once content is dropped); name and score take :cycle values in
# turn (a version may return to an earlier, not the previous, state).
PRISTINE_SQL = f"""
CREATE TABLE {PRISTINE} AS
WITH v AS (
    SELECT i AS id, j AS version, j::bigint * :n + i AS transaction_id,
           CASE WHEN j = 0 THEN 0 WHEN j = :k - 1 AND i % 10 = 0 THEN 2 ELSE 1 END AS operation_type,
           CASE WHEN j = 0 THEN 7
                WHEN j = :k - 1 AND i % 10 = 0 THEN 0
                WHEN (hashint8(-(i::bigint * 1000003 + j)) & 2147483647) % 1000 < :content_only * 1000 THEN 2
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
           'item ' || id || ' rev ' || name_n % :cycle AS name,
           CASE WHEN (content_n + id) % 5 = 0 THEN NULL
                ELSE repeat('lorem ipsum ', 1 + ((id + content_n) % 8)::int) || content_n END AS content,
           CASE WHEN (score_n % :cycle + id) % 4 = 0 THEN NULL
                ELSE ((id * 37 + score_n % :cycle * 11) % 1000)::int END AS score
    FROM counted
)
SELECT id, name, content, score, transaction_id, end_transaction_id, operation_type::smallint,
       CASE operation_type WHEN 0 THEN name IS NOT NULL WHEN 2 THEN true ELSE mask & 1 <> 0 END AS name_mod,
       CASE operation_type WHEN 0 THEN content IS NOT NULL WHEN 2 THEN true ELSE mask & 2 <> 0 END AS content_mod,
       CASE operation_type WHEN 0 THEN score IS NOT NULL WHEN 2 THEN true ELSE mask & 4 <> 0 END AS score_mod
FROM valued
"""

#: The live rows a pristine history describes: each entity's open version, unless a DELETE.
LIVE_FROM_PRISTINE_SQL = (
    f"INSERT INTO {LIVE} (id, name, content, score) SELECT id, name, content, score FROM {PRISTINE} "
    f"WHERE end_transaction_id IS NULL AND operation_type <> 2"
)


#: The live rows a raw ``UPDATE`` (bypassing Continuum) changes in the ``stale`` data: 10% of
#: them, spread evenly.
STALE_WHERE = "mod(hashint4(id) & 2147483647, 10) = 3"
STALE_UPDATE = f"UPDATE {LIVE} SET name = name || ' (edited)', score = coalesce(score, 0) + 1 WHERE {STALE_WHERE}"


def create_pristine(
    conn: sa.Connection, entities: int, versions: int, content_only: float = 0.0, cycle: int = 2**31 - 1
) -> None:
    """(Re)create the pristine history table: ``entities`` x ``versions`` correct version rows.

    ``content_only``: the share of UPDATE versions that change ``content`` alone (besides the
    1 in 7 that do anyway); ``cycle``: how many values ``name`` and ``score`` take in turn
    (by default they never return to an earlier value)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {PRISTINE}")
    params = {"n": entities, "k": versions, "content_only": content_only, "cycle": cycle}
    conn.execute(sa.text(PRISTINE_SQL), params)
    conn.exec_driver_sql(f"ALTER TABLE {PRISTINE} ADD PRIMARY KEY (id, transaction_id)")


def versioned_model(
    columns: Sequence[str] = DATA_COLUMNS, strategy: str = "validity", mod_flags: bool = True
) -> tuple[sa.MetaData, type, Any]:
    """``bench_item`` as a SQLAlchemy-Continuum model: by default the validity strategy, with
    the PropertyModTrackerPlugin, and the data columns ``name``, ``content`` and ``score``.

    Returns the MetaData (live table, version table, ``transaction`` and its sequence), the
    model class and the versioning manager. Continuum is imported here only: importing it
    installs global ORM listeners (so one model per process).
    """
    from sqlalchemy.orm import DeclarativeBase
    from sqlalchemy_continuum import make_versioned, versioning_manager
    from sqlalchemy_continuum.plugins import PropertyModTrackerPlugin

    plugins = [PropertyModTrackerPlugin()] if mod_flags else []
    make_versioned(user_cls=None, plugins=plugins, options={"strategy": strategy})

    class Base(DeclarativeBase):
        pass

    types: dict[str, Any] = {"name": sa.String(200), "content": sa.Text, "score": sa.Integer}
    attributes: dict[str, Any] = {
        "__tablename__": LIVE,
        "__versioned__": {},
        "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
        **{column: sa.Column(types[column]) for column in columns},
    }
    item = type("BenchItem", (Base,), attributes)
    sa.orm.configure_mappers()
    return Base.metadata, item, versioning_manager


def create_versioned_schema(engine: sa.Engine, metadata: sa.MetaData, create: bool = True) -> None:
    """Drop every benchmark table, then create the Continuum model's tables (unless not ``create``)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {PRISTINE}")
        metadata.drop_all(conn)
        if create:
            metadata.create_all(conn)


def create_versioned_data(
    engine: sa.Engine, metadata: sa.MetaData, entities: int, versions: int, stale: bool, **history: Any
) -> None:
    """The Continuum model's (empty) tables, the pristine history of ``entities`` x ``versions``
    (not loaded: see :func:`load_versions`; ``history``: :func:`create_pristine`'s options) and
    the live rows it describes; with ``stale``, 10% of them then changed by :data:`STALE_UPDATE`."""
    create_versioned_schema(engine, metadata)
    with engine.begin() as conn:
        create_pristine(conn, entities, versions, **history)
        conn.exec_driver_sql(LIVE_FROM_PRISTINE_SQL)
        if stale:
            conn.exec_driver_sql(STALE_UPDATE)
    vacuum(engine, LIVE, PRISTINE, checkpoint=False)


def load_versions(engine: sa.Engine, metadata: sa.MetaData, source: str = f"SELECT * FROM {PRISTINE}") -> None:
    """Replace the version table's rows with ``source``'s (those of :data:`ALL_COLUMNS` the
    version table has: no end id for the subquery strategy), in transaction order as Continuum
    appends them; secondary indexes are rebuilt afterwards. ``transaction_id_seq`` continues
    after the largest transaction id."""
    version = metadata.tables[VERSION]
    columns = ", ".join(c for c in ALL_COLUMNS if c in version.c)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {VERSION}")
        for index in version.indexes:
            index.drop(conn)
        conn.exec_driver_sql(
            f"INSERT INTO {VERSION} ({columns}) SELECT {columns} FROM ({source}) AS s ORDER BY transaction_id"
        )
        for index in version.indexes:
            index.create(conn)
        conn.exec_driver_sql(
            f"SELECT setval('transaction_id_seq', (SELECT coalesce(max(transaction_id), 0) + 1 FROM {VERSION}))"
        )
    vacuum(engine, VERSION)


# --------------------------------------------------------------------------------------------
# Measurements in a child process
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


@contextlib.contextmanager
def client_measurement() -> Iterator[dict[str, float]]:
    """Time the block and the growth of this process's peak RSS over its RSS before it.

    The dict yielded gets ``seconds`` and ``rss_growth_mib`` when the block ends.
    """
    result: dict[str, float] = {}
    rss_before = _rss_kib("VmRSS")
    if not _reset_peak_rss():
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    yield result
    result["seconds"] = time.perf_counter() - start
    result["rss_growth_mib"] = max(0, _rss_kib("VmHWM") - rss_before) / 1024


@contextlib.contextmanager
def measured_transaction(
    conn: sa.Connection, table: str, counters: Sequence[str], rollback: bool = False
) -> Iterator[dict[str, Any]]:
    """Run the block in one transaction on ``conn``, timed with :func:`client_measurement`
    (commit included; rolled back instead with ``rollback``). The dict yielded gets
    ``seconds``, ``rss_growth_mib`` and the transaction's own ``counters`` of ``table``
    (``pg_stat_xact_user_tables`` columns such as ``n_tup_ins``, read before the commit)."""
    with client_measurement() as measured:
        with conn.begin() as transaction:
            yield measured
            row = conn.exec_driver_sql(
                f"SELECT {', '.join(counters)} FROM pg_stat_xact_user_tables WHERE relid = %(t)s::regclass",
                {"t": table},
            ).one()
            measured.update(zip(counters, row, strict=True))
            if rollback:
                transaction.rollback()


@contextlib.contextmanager
def child_engine(spec: dict[str, Any], explained: Callable[[str], bool]) -> Iterator[tuple[sa.Engine, list[str]]]:
    """A child's engine on ``spec["url"]`` and the list of plans: with ``spec["explain"]``, the
    statements ``explained`` selects run as ``EXPLAIN ANALYZE`` (see :func:`explain_statements`)."""
    engine = sa.create_engine(spec["url"], poolclass=sa.pool.NullPool)
    plans: list[str] = []
    if spec.get("explain"):
        explain_statements(engine, plans, explained)
    try:
        yield engine, plans
    finally:
        engine.dispose()


def writes_rows(statement: str) -> bool:
    """Whether ``statement`` writes rows: ``INSERT``, ``UPDATE``, ``DELETE``, ``CREATE TABLE ... AS``."""
    words = statement.upper().split()
    return bool(words) and (words[0] in ("INSERT", "UPDATE", "DELETE") or (words[0] == "CREATE" and "AS" in words))


def measure_writes(
    spec: dict[str, Any], counters: Sequence[str], body: Callable[[sa.Connection], None]
) -> dict[str, Any]:
    """A child's measurement of ``body(conn)`` on the version table: one transaction on a fresh
    connection (:func:`measured_transaction`; rolled back with ``spec["explain"]``, which also
    runs the statements that write rows, ``INSERT``, ``UPDATE``, ``DELETE`` and ``CREATE TABLE
    ... AS``, as ``EXPLAIN ANALYZE``). Returns the measurement and ``plans``."""
    with child_engine(spec, writes_rows) as (engine, plans):
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()
            with measured_transaction(conn, VERSION, counters, spec.get("explain", False)) as measured:
                body(conn)
        return {**measured, "plans": plans}


def print_plans(plans: Sequence[str], what: str) -> None:
    """Print the ``EXPLAIN ANALYZE`` plans of a measurement of ``what``."""
    for plan in plans:
        print(f"\n-- EXPLAIN ANALYZE: {what}\n{plan}\n")


def run_child(script: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``script --child SPEC`` in a fresh Python process; return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, script, "--child", json.dumps(spec)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def explain_statements(engine: sa.Engine, plans: list[str], keep: Callable[[str], bool]) -> None:
    """Run the statements ``keep`` selects as ``EXPLAIN (ANALYZE, BUFFERS)`` on ``engine``,
    appending each plan to ``plans`` (their effects happen: roll the transaction back)."""

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def _explain(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if keep(statement) and not executemany:
            statement = "EXPLAIN (ANALYZE, BUFFERS, VERBOSE, SETTINGS) " + statement
        return statement, parameters

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _plan(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("EXPLAIN"):
            plans.append("\n".join(row[0] for row in cursor.fetchall()))


@dataclass(kw_only=True)
class Timings:
    """Wall times per method (every run, and their median) and the largest client-memory growth."""

    seconds: dict[str, float] = field(default_factory=dict)
    all_seconds: dict[str, list[float]] = field(default_factory=dict)
    rss_growth_mib: dict[str, float] = field(default_factory=dict)

    def add(self, method: str, seconds: float, rss_growth_mib: float | None = None) -> None:
        self.all_seconds.setdefault(method, []).append(seconds)
        self.seconds[method] = statistics.median(self.all_seconds[method])
        if rss_growth_mib is not None:
            self.rss_growth_mib[method] = max(self.rss_growth_mib.get(method, 0.0), rss_growth_mib)

    def ratio(self, a: str, b: str) -> float | None:
        return ratio(self.seconds.get(a), self.seconds.get(b))


@contextlib.contextmanager
def versioned_database(url: str, strategy: str = "validity") -> Iterator[tuple[sa.Engine, sa.MetaData]]:
    """An engine on ``url`` and the MetaData of the Continuum model (of ``strategy``); the tables
    are dropped at the end."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    metadata, _, _ = versioned_model(strategy=strategy)
    try:
        yield engine, metadata
        create_versioned_schema(engine, metadata, create=False)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def print_text(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = [list(headers), *map(list, rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for n, row in enumerate(table):
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_rst(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(".. list-table::\n   :header-rows: 1\n")
    for row in [headers, *rows]:
        print("   * - " + row[0])
        for cell in row[1:]:
            print("     - " + cell)


def describe_environment(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version()").scalar_one()
        settings: dict[str, str] = dict(
            conn.exec_driver_sql(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'max_wal_size', 'fsync', 'synchronous_commit', 'autovacuum')"
            ).all()
        )
    engine.dispose()
    return {
        "code": code_version(),
        "command": command_line(),
        "postgresql": version,
        "settings": settings,
        "packages": packages("SQLAlchemy", "alembic", "SQLAlchemy-Continuum", "psycopg"),
        **machine(),
    }


def load_average() -> list[float]:
    """The machine's load averages over 1, 5 and 15 minutes (other jobs share its cores)."""
    return [round(x, 2) for x in os.getloadavg()]


def command_line() -> str:
    """The command that runs this script, as typed from the repository's root."""
    return "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])


def packages(*names: str) -> dict[str, str]:
    """The installed versions of the distributions ``names`` (``-`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def write_json(path: Path, environment: dict[str, Any], results: Any) -> None:
    """Write ``{"environment": ..., "results": ...}`` to ``path`` (``--json``), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"environment": environment, "results": results}, indent=2, default=str) + "\n")


def machine() -> dict[str, str]:
    """Python version, CPU (model and cores), memory and OS of this machine."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
            if names:
                cpu = names[0]
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "python": platform.python_version(),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_gib:.0f} GiB",
        "os": platform.platform(),
        "load_average_start": load_average(),
    }


def code_version() -> str:
    """The commit measured (read-only ``git`` calls), noting uncommitted changes to the package."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "alembic_versioning")
    return commit + (" + uncommitted changes to alembic_versioning/" if dirty else "")


def argument_parser(doc: str, default_sizes: str, what_sizes: str) -> argparse.ArgumentParser:
    """A script's parser: ``--sizes`` (``what_sizes`` per size, comma-separated), ``--url``,
    ``--rst``, ``--json`` and the hidden ``--child``; its description is ``doc``'s first paragraph."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=default_sizes,
        type=lambda text: [int(x) for x in text.replace("_", "").split(",")],
        help=f"{what_sizes} per size, comma-separated (default: {default_sizes})",
    )
    parser.add_argument("--url", help="use this PostgreSQL server instead of a temporary one (tables bench_item*)")
    parser.add_argument("--rst", action="store_true", help="also print the tables as RST list-tables")
    parser.add_argument("--json", type=Path, help="write raw results and environment to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def add_reference_arguments(parser: argparse.ArgumentParser, name: str, what: str, default_max: int) -> None:
    """``--skip-NAME`` and ``--NAME-max ROWS``: whether, and up to which size, to time ``what``
    (a slow reference)."""
    parser.add_argument(f"--skip-{name}", action="store_true", help=f"do not time {what}")
    parser.add_argument(
        f"--{name}-max",
        type=int,
        default=default_max,
        help=f"time {what} only up to this many rows (default: {default_max})",
    )


def main(
    args: argparse.Namespace,
    child: Callable[[dict[str, Any]], dict[str, Any]] | None,
    benchmark: Callable[[str, argparse.Namespace], tuple[Any, list[tuple[str, Sequence[str], list[list[str]]]]]],
    server: Callable[[], contextlib.AbstractContextManager[str]] = temporary_server,
    describe: Callable[[str], dict[str, Any]] = describe_environment,
    database: str = "postgresql",
) -> None:
    """Run ``child`` (in a child process) or ``benchmark`` on ``--url`` or a temporary ``server``,
    then print the environment (``describe``; the server's version under the key ``database``)
    and ``benchmark``'s tables ``(title, headers, rows)``."""
    if args.child and child is not None:
        print(json.dumps(child(json.loads(args.child))))
        return
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(server())
        env = describe(url)
        started = time.perf_counter()
        raw, tables = benchmark(url, args)
        env["total_seconds"] = round(time.perf_counter() - started, 1)
        env["load_average_end"] = load_average()
    print(f"Server:     {env[database]}")
    print(f"Settings:   {', '.join(f'{k}={v}' for k, v in sorted(env['settings'].items()))}")
    print(f"Machine:    {env['cpu']}, {env['memory']} RAM; {env['os']}; Python {env['python']}")
    print(f"Code:       {env.get('code', '-')}")
    print(f"Command:    {env['command']}")
    for title, headers, rows in tables:
        print(f"\n{title}\n")
        print_text(headers, rows)
        if args.rst:
            print()
            print_rst(headers, rows)
    if args.json:
        write_json(args.json, env, raw)
