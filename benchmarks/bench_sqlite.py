#!/usr/bin/env python
"""Benchmark the drift checks and every operation on SQLite, across sizes: does each grow linearly?

The other scripts measure PostgreSQL only; a query form that SQLite runs in quadratic time (its
``FULL JOIN`` of a materialised subquery: 10 s at 20,000 rows) went unnoticed there. This script
times everything the package runs on SQLite at several sizes and reports, for each measurement,
how much its time grows from one size to the next against how much the table grows, flagging
anything that grows clearly faster than the table (more than twice the size ratio).

For each size (version rows: N/5 entities x 5 versions) a SQLite file in a temporary directory
gets the tables of the real SQLAlchemy-Continuum model ``bench_item`` (``_support.versioned_model``:
validity strategy, PropertyModTrackerPlugin), created by Continuum's MetaData and filled
set-based in SQL (a recursive CTE and window functions): the correct history of
``bench_repairs.py`` (a pseudo-random subset of ``name``/``content``/``score`` changes per
UPDATE, every 10th entity deleted at its last version), in which a share of the UPDATE versions
(``--futile``, default 10%) change nothing (futile versions, as a dropped column leaves), one
``transaction`` row per transaction id, and the live rows it describes, 10% of them then changed
by a raw ``UPDATE`` (bypassing Continuum). Timed, each the median of ``--repeat`` runs:

* the references: one pass over the version table, ``SELECT count(*)``; one reading every column
  (``count(*)`` and ``total()`` of each column's value or length); the same in key order
  (``ORDER BY id, transaction_id``, through the primary key's index), the order in which a
  comparison of each version with its neighbours reads the rows;
* the drift checks, on the prepared file (read-only, after one warm-up run):
  ``history_check(table, chains=True, mod_flags=True, futile=False)`` (autogenerate's default),
  the same with ``futile=True`` (vacuum opted in), and ``backfill_check(table, live, columns)``;
* the operations, each through Alembic's ``Operations(MigrationContext.configure(conn))`` in one
  transaction (commit included), each run on a fresh copy of a prepared file (``shutil.copyfile``,
  not timed): ``backfill_versions`` (the 10% stale live rows) and, on the result, again (the
  no-op); ``update_end_transaction_ids`` after every end id was set NULL; ``update_mod_flags``
  after every flag of the UPDATE and DELETE versions was cleared; ``vacuum_versions`` (the futile
  versions).

After every operation (not timed) the checks run on the result and must find nothing; the
repairs' results are also compared column by column with the correct history (``ATTACH``).
SQLite runs as an application's engine would: ``sqlalchemy.create_engine("sqlite:///FILE")``
and the database's defaults (rollback journal, no ``ANALYZE`` unless ``--analyze``).

Usage::

    python benchmarks/bench_sqlite.py
    python benchmarks/bench_sqlite.py --sizes 10000,100000,1000000 --repeat 3 --rst
    python benchmarks/bench_sqlite.py --sizes 20000 --dir /tmp/bench_sqlite   # keep the files
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _support import (
    ALL_COLUMNS,
    FLAGS,
    LIVE,
    VERSION,
    Timings,
    code_version,
    command_line,
    fmt,
    log,
    machine,
    packages,
    print_rst,
    print_text,
    ratio,
    versioned_model,
    write_json,
)

VERSIONS_PER_ENTITY = 5
#: A measurement is flagged when its time grows more than this many times the size ratio.
SUPERLINEAR = 2.0
#: Steps between sizes whose larger time is below this many seconds are not judged (timer noise).
NOISE_FLOOR = 0.01


# --------------------------------------------------------------------------------------------
# Data: the history of bench_repairs.py, generated set-based in SQLite's SQL
# --------------------------------------------------------------------------------------------


def _hash(a: str, b: str, salt: int) -> str:
    """A pseudo-random integer in 0..32767 of the integers ``a`` and ``b`` (SQL text): one step
    of a linear congruential generator, its high bits. Every product stays below 2**63 (SQLite
    turns an overflowing integer into a float) for ids below 10**8."""
    return f"(((({a}) * 7919 + ({b}) * 104729 + {salt}) % 4294967291) * 1103515245 + 12345) % 2147483648 / 65536"


_LOREM = "lorem ipsum " * 8

# Entity i (1..:n), version j (0..:k-1), transaction j * :n + i, as PRISTINE_SQL in _support.py
# (which is PostgreSQL's): version 0 an INSERT of every column, the last version of every 10th
# entity a DELETE (old values kept), the other UPDATEs changing a pseudo-random non-empty subset
# of name/content/score (mask bits 1/2/4), except a share :futile of them that change nothing. A
# column's value is a function of how many times it has changed, so consecutive values differ
# exactly when the column changed; content (of varying length) and score are NULL now and then.
HISTORY_SQL = f"""
INSERT INTO {VERSION} ({", ".join(ALL_COLUMNS)})
WITH RECURSIVE entity(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM entity WHERE i < :n),
version(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM version WHERE j < :k - 1),
v AS (
    SELECT i AS id, j AS version, j * :n + i AS transaction_id,
           CASE WHEN j = 0 THEN 0 WHEN j = :k - 1 AND i % 10 = 0 THEN 2 ELSE 1 END AS operation_type,
           CASE WHEN j = 0 THEN 7
                WHEN j = :k - 1 AND i % 10 = 0 THEN 0
                WHEN {_hash("i", "j", 17)} % 1000 < :futile * 1000 THEN 0
                ELSE 1 + {_hash("i", "j", 0)} % 7 END AS mask
    FROM entity, version
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
           'item ' || id || ' rev ' || name_n AS name,
           CASE WHEN (content_n + id) % 5 = 0 THEN NULL
                ELSE substr('{_LOREM}', 1, 12 * (1 + (id + content_n) % 8)) || content_n END AS content,
           CASE WHEN (score_n + id) % 4 = 0 THEN NULL ELSE (id * 37 + score_n * 11) % 1000 END AS score
    FROM counted
)
SELECT id, name, content, score, transaction_id, end_transaction_id, operation_type,
       CASE operation_type WHEN 0 THEN name IS NOT NULL WHEN 2 THEN 1 ELSE mask & 1 <> 0 END,
       CASE operation_type WHEN 0 THEN content IS NOT NULL WHEN 2 THEN 1 ELSE mask & 2 <> 0 END,
       CASE operation_type WHEN 0 THEN score IS NOT NULL WHEN 2 THEN 1 ELSE mask & 4 <> 0 END
FROM valued
ORDER BY transaction_id
"""

#: One transaction record per transaction id the history uses, as Continuum leaves them (the
#: backfill's new transaction id is one more than the largest).
TRANSACTIONS_SQL = (
    f'INSERT INTO "transaction" (id, issued_at) '
    f"SELECT transaction_id, datetime('2024-01-01', '+' || transaction_id || ' seconds') FROM {VERSION}"
)
#: The live rows the history describes: each entity's open version, unless a DELETE.
LIVE_SQL = (
    f"INSERT INTO {LIVE} (id, name, content, score) SELECT id, name, content, score FROM {VERSION} "
    f"WHERE end_transaction_id IS NULL AND operation_type <> 2"
)
#: 10% of the live rows, spread evenly, changed by a raw UPDATE (as STALE_UPDATE in _support.py).
STALE_SQL = (
    f"UPDATE {LIVE} SET name = name || ' (edited)', score = coalesce(score, 0) + 1 WHERE {_hash('id', '0', 3)} % 10 = 3"
)
#: The broken states the repairs start from.
BREAK_SQL = {
    "chains": f"UPDATE {VERSION} SET end_transaction_id = NULL",
    "flags": f"UPDATE {VERSION} SET {', '.join(f'{flag} = 0' for flag in FLAGS)} WHERE operation_type <> 0",
}

#: The reference passes over the version table: no column read, every column read in storage
#: order, every column read in key order (the subquery's LIMIT keeps its ORDER BY).
_EVERY_COLUMN = ", ".join(
    f"total(length({c}))" if c in ("name", "content") else f"total({c})" for c in ALL_COLUMNS if c != "id"
)
PASS_SQL = {
    "pass": f"SELECT count(*) FROM {VERSION}",
    "wide_pass": f"SELECT count(*), {_EVERY_COLUMN} FROM {VERSION}",
    "key_pass": f"SELECT count(*), {_EVERY_COLUMN} FROM (SELECT * FROM {VERSION} ORDER BY id, transaction_id LIMIT -1)",
}


def sqlite_engine(path: Path) -> sa.Engine:
    """An application's engine on the file: pysqlite's defaults, no pooled connection kept."""
    return sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)


def create_history(path: Path, metadata: sa.MetaData, rows: int, futile: float, analyze: bool) -> None:
    """The prepared file every measurement starts from: Continuum's tables, a correct history of
    ``rows`` versions loaded in transaction order (secondary indexes built afterwards), its
    transaction records, and the live rows, 10% of them stale."""
    engine = sqlite_engine(path)
    version = metadata.tables[VERSION]
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            for index in version.indexes:
                index.drop(conn)
            conn.execute(
                sa.text(HISTORY_SQL), {"n": rows // VERSIONS_PER_ENTITY, "k": VERSIONS_PER_ENTITY, "futile": futile}
            )
            for index in version.indexes:
                index.create(conn)
            conn.exec_driver_sql(TRANSACTIONS_SQL)
            conn.exec_driver_sql(LIVE_SQL)
            conn.exec_driver_sql(STALE_SQL)
        if analyze:
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
    finally:
        engine.dispose()


def derive(source: Path, target: Path, statement: str) -> None:
    """A copy of ``source`` with ``statement`` applied: a broken state a repair starts from."""
    shutil.copyfile(source, target)
    engine = sqlite_engine(target)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def count_rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


# --------------------------------------------------------------------------------------------
# Checks and correctness
# --------------------------------------------------------------------------------------------


def describe(conn: sa.Connection) -> tuple[Any, sa.Table]:
    """The version table as the package sees it (reflected), and its live table."""
    from alembic_versioning.catalog import reflect_table
    from alembic_versioning.model import Naming, VersionedTable

    version = reflect_table(conn, VERSION, None)
    assert version is not None
    table = VersionedTable.from_version_table(version, name=LIVE, naming=Naming())
    return table, table.live_table()


def check_queries(table: Any, live: sa.Table) -> dict[str, Any]:
    from alembic_versioning.sql.checks import backfill_check, history_check

    return {
        "history_check": history_check(table, chains=True, mod_flags=True, futile=False),
        "history_check_futile": history_check(table, chains=True, mod_flags=True, futile=True),
        "backfill_check": backfill_check(table, live, table.columns),
    }


def drift(path: Path) -> dict[str, int]:
    """What the checks find in the file: broken end-id links, missing mod flags, futile versions
    (``history_check`` with everything on), versions to backfill by kind (``backfill_check``)."""
    engine = sqlite_engine(path)
    try:
        with engine.connect() as conn:
            queries = check_queries(*describe(conn))
            found = conn.execute(queries["history_check_futile"]).one()._asdict()
            found.update(conn.execute(queries["backfill_check"]).one()._asdict())
    finally:
        engine.dispose()
    return {k: int(v) for k, v in found.items()}


def differences(path: Path, reference: Path) -> dict[str, int]:
    """Versions of ``path`` whose end id, or whose mod flags, differ from the same version in
    ``reference`` (the correct history); versions missing from either side."""
    same = " OR ".join(f"v.{flag} IS NOT r.{flag}" for flag in FLAGS)
    key = "USING (id, transaction_id)"
    engine = sqlite_engine(path)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("ATTACH DATABASE ? AS ref", (str(reference),))
            row = conn.exec_driver_sql(
                f"SELECT (SELECT count(*) FROM {VERSION} AS v JOIN ref.{VERSION} AS r {key} "
                f"        WHERE v.end_transaction_id IS NOT r.end_transaction_id), "
                f"       (SELECT count(*) FROM {VERSION} AS v JOIN ref.{VERSION} AS r {key} WHERE {same}), "
                f"       (SELECT count(*) FROM {VERSION}) - (SELECT count(*) FROM ref.{VERSION})"
            ).one()
            conn.rollback()
            conn.exec_driver_sql("DETACH DATABASE ref")
    finally:
        engine.dispose()
    return {"end_ids": row[0], "flags": row[1], "row_count": row[2]}


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------

#: The measurements, in table order: name, label.
MEASUREMENTS = {
    "pass": "pass: count(*)",
    "wide_pass": "pass: every column",
    "key_pass": "pass: every column, key order",
    "history_check": "history_check (chains, mod flags)",
    "history_check_futile": "history_check (+ futile)",
    "backfill_check": "backfill_check",
    "backfill": "backfill_versions (10% stale)",
    "noop": "backfill_versions (no-op)",
    "end_ids": "update_end_transaction_ids (all NULL)",
    "mod_flags": "update_mod_flags (flags cleared)",
    "vacuum": "vacuum_versions (futile versions)",
}
OPS = ("backfill", "noop", "end_ids", "mod_flags", "vacuum")


@dataclass(kw_only=True)
class Result(Timings):
    rows: int
    live_rows: int = 0
    file_mib: float = 0.0
    found: dict[str, dict[str, int]] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)
    after: dict[str, dict[str, int]] = field(default_factory=dict)

    def record_after(self, name: str, after: dict[str, int]) -> None:
        """What the checks find after a run of op ``name``; ``runs_differ`` if two runs disagree."""
        previous = self.after.get(name)
        if previous is not None and {k: v for k, v in previous.items() if k != "runs_differ"} != after:
            after = {**after, "runs_differ": 1}
        self.after[name] = after

    def add_runs(self, name: str, times: Sequence[float]) -> None:
        for seconds in times:
            self.add(name, seconds)
        runs = ", ".join(f"{t:.3f}" for t in self.all_seconds[name])
        log(f"   {name:<22} {self.seconds[name]:8.3f} s  (runs: {runs})")


def timed_reads(path: Path, result: Result, repeat: int) -> None:
    """The references and the checks, on one connection to the prepared file: one warm-up run
    each, then ``repeat`` timed runs (of a reference: the best of 3 back-to-back passes, as
    ``_support.seq_scan_seconds``)."""
    engine = sqlite_engine(path)
    try:
        with engine.connect() as conn:
            table, live = describe(conn)

            def run_sql(sql: str) -> Callable[[], Any]:
                return lambda: conn.exec_driver_sql(sql).one()

            def run_query(query: Any) -> Callable[[], Any]:
                return lambda: conn.execute(query).one()

            calls = {name: run_sql(sql) for name, sql in PASS_SQL.items()}
            calls.update({name: run_query(query) for name, query in check_queries(table, live).items()})
            for name, call in calls.items():
                row = call()
                times = []
                for _ in range(repeat):
                    best = math.inf
                    for _ in range(3 if name in PASS_SQL else 1):
                        start = time.perf_counter()
                        row = call()
                        best = min(best, time.perf_counter() - start)
                    times.append(best)
                result.add_runs(name, times)
                if name.endswith("_check") or name.endswith("_futile"):
                    result.found[name] = {k: int(v) for k, v in row._asdict().items()}
            conn.rollback()
    finally:
        engine.dispose()


def timed_op(path: Path, call: Callable[[Any], None]) -> float:
    """Run ``call(op)`` as a migration would, in one transaction on ``path``; the wall time,
    commit included."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    engine = sqlite_engine(path)
    try:
        with engine.connect() as conn:
            start = time.perf_counter()
            with conn.begin():
                call(Operations(MigrationContext.configure(conn)))
            return time.perf_counter() - start
    finally:
        engine.dispose()


def run_ops(files: dict[str, Path], work: Path, result: Result, repeat: int) -> None:
    """Each op ``repeat`` times, each time on a fresh copy of its prepared file; after each run,
    what it did and what the checks (and, for the repairs, the comparison with the correct
    history) still find."""
    history = files["history"]
    before = count_rows_at(history)
    for _ in range(repeat):
        shutil.copyfile(history, work)
        result.add("backfill", timed_op(work, lambda op: op.backfill_versions(LIVE)))
        result.done["backfill"] = count_rows_at(work) - before
        result.record_after("backfill", drift(work))
        written = count_rows_at(work)
        result.add("noop", timed_op(work, lambda op: op.backfill_versions(LIVE)))
        result.done["noop"] = count_rows_at(work) - written
        result.record_after("noop", drift(work))
    for name, source, call in (
        ("end_ids", files["chains"], lambda op: op.update_end_transaction_ids(LIVE)),
        ("mod_flags", files["flags"], lambda op: op.update_mod_flags(LIVE)),
    ):
        wrong = differences(source, history)
        result.done[name] = wrong["end_ids"] if name == "end_ids" else wrong["flags"]
        for _ in range(repeat):
            shutil.copyfile(source, work)
            result.add(name, timed_op(work, call))
            wrong_after = {f"wrong_{k}": v for k, v in differences(work, history).items()}
            result.record_after(name, {**drift(work), **wrong_after})
    for _ in range(repeat):
        shutil.copyfile(history, work)
        result.add("vacuum", timed_op(work, lambda op: op.vacuum_versions(LIVE)))
        result.done["vacuum"] = before - count_rows_at(work)
        result.record_after("vacuum", drift(work))
    for name in OPS:
        runs = ", ".join(f"{t:.3f}" for t in result.all_seconds[name])
        log(f"   {name:<22} {result.seconds[name]:8.3f} s  (runs: {runs})  after: {result.after[name]}")


def count_rows_at(path: Path, table: str = VERSION) -> int:
    engine = sqlite_engine(path)
    try:
        return count_rows(engine, table)
    finally:
        engine.dispose()


def run_size(directory: Path, metadata: sa.MetaData, rows: int, args: argparse.Namespace) -> Result:
    folder = directory / str(rows)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = {name: folder / f"{name}.db" for name in ("history", "chains", "flags")}
    log(f"== {rows:,} version rows: generating")
    start = time.perf_counter()
    create_history(files["history"], metadata, rows, args.futile, args.analyze)
    for name in ("chains", "flags"):
        derive(files["history"], files[name], BREAK_SQL[name])
    result = Result(rows=count_rows_at(files["history"]), live_rows=count_rows_at(files["history"], LIVE))
    result.file_mib = files["history"].stat().st_size / 2**20
    log(f"   generated in {time.perf_counter() - start:.1f} s: {result.file_mib:.1f} MiB")
    result.found["chains"] = drift(files["chains"])
    result.found["flags"] = drift(files["flags"])
    timed_reads(files["history"], result, args.repeat)
    run_ops(files, folder / "work.db", result, args.repeat)
    if args.dir is None:
        shutil.rmtree(folder, ignore_errors=True)
    return result


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def growth(results: Sequence[Result], name: str) -> list[tuple[float, float, float]]:
    """Per pair of consecutive sizes: (time ratio, size ratio, time at the larger size)."""
    pairs = []
    for small, large in zip(results, results[1:], strict=False):
        t = ratio(large.seconds.get(name), small.seconds.get(name))
        pairs.append((t if t is not None else math.nan, large.rows / small.rows, large.seconds.get(name, math.nan)))
    return pairs


def _growth_cell(time_ratio: float, size_ratio: float) -> str:
    if math.isnan(time_ratio):
        return "-"
    exponent = math.log(time_ratio) / math.log(size_ratio) if time_ratio > 0 and size_ratio != 1 else math.nan
    return f"x{time_ratio:.1f} (n^{exponent:.2f})"


def scaling(pairs: Sequence[tuple[float, float, float]]) -> str:
    """``SUPERLINEAR`` with the worst step when a step grows more than :data:`SUPERLINEAR` times
    the size ratio; otherwise ``linear or better``. Steps ending below :data:`NOISE_FLOOR`
    seconds are not judged."""
    judged = [(t, s) for t, s, seconds in pairs if seconds >= NOISE_FLOOR]
    worst = [(t, s) for t, s in judged if t > SUPERLINEAR * s]
    if worst:
        t, s = max(worst, key=lambda p: p[0] / p[1])
        return f"SUPERLINEAR: x{t:.1f} for x{s:g} rows"
    if not pairs:
        return "-"
    if not judged:
        return f"not judged (under {NOISE_FLOOR * 1000:g} ms)"
    skipped = len(pairs) - len(judged)
    return "linear or better" + (f" ({skipped} step(s) under {NOISE_FLOOR * 1000:g} ms not judged)" if skipped else "")


def _counts(d: dict[str, int], keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={d[k]:,}" for k in keys if k in d)


HISTORY = ("broken_links", "missing_flags", "futile")
PENDING = ("missing", "stale", "undeleted")
#: What each op repairs: the checks' counts it must bring to 0 (the others must not change).
TARGETS = {
    "backfill": PENDING,
    "noop": PENDING,
    "end_ids": ("broken_links",),
    "mod_flags": ("missing_flags",),
    "vacuum": ("futile",),
}


def expected_after(result: Result, name: str) -> dict[str, int]:
    """What the checks should find after op ``name``: what they find in the prepared history
    (correct, but with stale live rows and futile versions), minus what the op repairs."""
    found = {**result.found["history_check_futile"], **result.found["backfill_check"]}
    return {k: 0 if k in TARGETS[name] else v for k, v in found.items()}


def _after_cell(result: Result, name: str) -> str:
    after = result.after[name]
    expected = expected_after(result, name)
    changed = {k: after[k] for k in expected if k not in TARGETS[name] and after[k] != expected[k]}
    cell = f"{_counts(after, TARGETS[name])}; other counts " + (f"CHANGED: {changed}" if changed else "unchanged")
    if "wrong_end_ids" in after:
        cell += (
            f"; differing from the correct history: {after['wrong_end_ids']:,} end ids, "
            f"{after['wrong_flags']:,} flags, {after['wrong_row_count']:,} rows"
        )
    return cell


def tables(results: list[Result]) -> list[tuple[str, list[str], list[list[str]]]]:
    times_headers = ["measurement"]
    times_headers += [f"{r.rows:,} rows: s (/ pass)" for r in results]
    times_headers += [f"growth {a.rows:,} -> {b.rows:,}" for a, b in zip(results, results[1:], strict=False)]
    times_headers.append(f"scaling (flagged above {SUPERLINEAR:g}x the size ratio)")
    times = []
    for name, label in MEASUREMENTS.items():
        row = [label]
        for r in results:
            seconds = r.seconds.get(name)
            row.append(f"{fmt(seconds, '.3f')} ({fmt(ratio(seconds, r.seconds.get('wide_pass')), '.1f')})")
        pairs = growth(results, name)
        row += [_growth_cell(t, s) for t, s, _ in pairs]
        row.append(scaling(pairs))
        times.append(row)

    work_headers = ["version rows", "measurement", "found before", "done", "checks after"]
    work = []
    for r in results:
        checks = {**r.found["history_check_futile"], **r.found["backfill_check"]}
        for name in ("history_check", "history_check_futile", "backfill_check"):
            found = _counts(r.found[name], PENDING if name == "backfill_check" else HISTORY)
            work.append([f"{r.rows:,}", MEASUREMENTS[name], found, "-", "-"])
        before = {
            "backfill": _counts(checks, PENDING),
            "noop": "(the backfill's result)",
            "end_ids": _counts(r.found["chains"], ("broken_links",)),
            "mod_flags": _counts(r.found["flags"], ("missing_flags",)),
            "vacuum": _counts(checks, ("futile",)),
        }
        done = {
            "backfill": f"{r.done['backfill']:,} versions written",
            "noop": f"{r.done['noop']:,} versions written",
            "end_ids": f"{r.done['end_ids']:,} wrong end ids",
            "mod_flags": f"{r.done['mod_flags']:,} versions with wrong flags",
            "vacuum": f"{r.done['vacuum']:,} versions deleted",
        }
        for name in OPS:
            work.append([f"{r.rows:,}", MEASUREMENTS[name], before[name], done[name], _after_cell(r, name)])
    return [
        ("SQLite: median seconds (/ pass reading every column) and growth between sizes", times_headers, times),
        ("SQLite: what each check found and each op did", work_headers, work),
    ]


def correct(result: Result) -> bool:
    """Whether every op repaired what it should and changed nothing else the checks see (and
    the backfill wrote, and the vacuum deleted, exactly what the checks found)."""
    found = result.found["backfill_check"]
    if result.done["backfill"] != sum(found[k] for k in PENDING) or result.done["noop"] != 0:
        return False
    if result.done["vacuum"] != result.found["history_check_futile"]["futile"]:
        return False
    for name, after in result.after.items():
        wrong = [v for k, v in after.items() if k.startswith("wrong_")]
        if any(wrong) or {k: v for k, v in after.items() if not k.startswith("wrong_")} != expected_after(result, name):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Environment and main
# --------------------------------------------------------------------------------------------


def describe_environment(directory: Path) -> dict[str, Any]:
    probe = directory / "probe.db"
    with contextlib.closing(sqlite3.connect(probe)) as conn:
        pragmas = {
            name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "page_size", "cache_size", "temp_store")
        }
    probe.unlink()
    return {
        "code": code_version(),
        "command": command_line(),
        "sqlite": sqlite3.sqlite_version,
        "pragmas": pragmas,
        "packages": packages("SQLAlchemy", "alembic", "SQLAlchemy-Continuum"),
        **machine(),
        "directory": str(directory),
    }


@contextlib.contextmanager
def working_directory(path: Path | None) -> Iterator[Path]:
    """``path`` (kept), or a temporary directory removed at the end."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bench_sqlite_") as tmp:
        yield Path(tmp)


def run_benchmark(args: argparse.Namespace) -> None:
    import alembic_versioning  # noqa: F401  (registers the operations)

    metadata, _, _ = versioned_model()
    started = time.perf_counter()
    with working_directory(args.dir) as directory:
        env = describe_environment(directory)
        results = [run_size(directory, metadata, rows, args) for rows in args.sizes]
    env["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"SQLite:     {env['sqlite']} (Python sqlite3), a file in {env['directory']}")
    print(f"Settings:   {', '.join(f'{k}={v}' for k, v in env['pragmas'].items())}")
    print(f"Packages:   {', '.join(f'{k} {v}' for k, v in env['packages'].items())}")
    print(f"Machine:    {env['cpu']}, {env['memory']} RAM; {env['os']}; Python {env['python']}")
    print(f"Code:       {env['code']}")
    print(f"Command:    {env['command']}")
    print(f"Total:      {env['total_seconds']} s")
    for r in results:
        print(f"Data:       {r.rows:,} version rows, {r.live_rows:,} live rows, {r.file_mib:.1f} MiB file")
    for title, headers, rows in tables(results):
        print(f"\n{title}\n")
        print_text(headers, rows)
        if args.rst:
            print()
            print_rst(headers, rows)
    wrong = [r.rows for r in results if not correct(r)]
    print(f"\nCorrect:    {'every op, every size' if not wrong else f'NO, at {wrong} rows (see the table)'}")
    if args.json:
        raw = [{**asdict(r), "median_seconds": dict(r.seconds)} for r in results]
        write_json(args.json, env, raw)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        type=lambda text: [int(x) for x in text.replace("_", "").split(",")],
        help="version rows per size, comma-separated, ascending (default: 10000,100000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the median is shown")
    parser.add_argument(
        "--futile", type=float, default=0.1, help="share of the UPDATE versions that change nothing (default: 0.1)"
    )
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE on the prepared files (default: not)")
    parser.add_argument("--dir", type=Path, help="keep the database files in this directory (default: a temporary one)")
    parser.add_argument("--rst", action="store_true", help="also print the tables as RST list-tables")
    parser.add_argument("--json", type=Path, help="write raw results and environment to this file")
    args = parser.parse_args(argv)
    if args.sizes != sorted(args.sizes):
        parser.error("--sizes must be ascending")
    return args


if __name__ == "__main__":
    run_benchmark(parse_args())
