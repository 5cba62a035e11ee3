#!/usr/bin/env python
"""Benchmark the operations under live traffic on PostgreSQL: writer stalls, batched vs one transaction.

For each size (total version rows, N entities x K versions, Continuum's default table shape,
generated set-based as in the other scripts, loaded once per size) and each operation, the data
is broken the way the operation repairs it (:data:`DAMAGE`, again before every run: the previous
run repaired it), then the operation runs while ``--writers`` threads of another process (the
application's) write through SQLAlchemy-Continuum's ORM (each transaction: one entity, chosen at
random, renamed; Continuum adds its transaction record, its version and closes the previous
one). The damage:

* ``backfill_versions``: 20% of the live rows changed by a raw ``UPDATE``, 10% more live rows
  inserted without versions (replacing the previous run's), 1% deleted;
* ``update_end_transaction_ids``: a third of the end ids set to NULL;
* ``update_mod_flags``: every flag inverted in a third of the versions;
* ``vacuum_versions``: a futile version (a copy of the last one) appended to a quarter of the
  entities.

Measured, per run:

* the operation's total time (Alembic's ``Operations`` on a migration context that owns its
  transaction, as ``alembic upgrade`` runs it);
* the writers' transaction latency while the operation runs: its 99th percentile and its maximum
  (the longest stall), also relative to the operation's time;
* the writers' transactions committed meanwhile;
* the operation's batches (``BEGIN`` to ``COMMIT``): how many, the longest, and the longest wait
  for the writers' lock; the machine's load average (``os.getloadavg``) before and after.

Once per ``--batch-sizes`` entry: ``0`` runs in the migration's transaction (``batch_size`` left
out: the writers wait for all of it), others with that ``batch_size`` (default ``0,20000``) and
``--batch-seconds`` (default: the operations' own);
``--repeat N`` goes through the list N times, then prints each measure's median. Before the
measured runs of an operation, ``--settle`` unmeasured ones (default 1: damage, then the operation
in one transaction, without writers) bring the table to the state every later run starts from:
the first repair of a freshly loaded table appends to new pages, the later ones write into the
space the damage frees, and are slower, so without it the first measured run would be favoured.
Targets:
batched, the longest stall at most 1 s and at most 10% of the operation's time, and the batched
total at most 1.5x the unbatched one.

Without ``--url`` the script starts its own PostgreSQL server in a temporary directory.

Usage::

    python benchmarks/bench_live.py --sizes 50000 --json benchmarks/results/live_small.json
    python benchmarks/bench_live.py --sizes 1000000 --ops vacuum_versions --batch-sizes 0,5000,20000,50000
    python benchmarks/bench_live.py --sizes 1000000 --batch-sizes 0,20000 --repeat 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from _support import (
    DATA_COLUMNS,
    FLAGS,
    LIVE,
    VERSION,
    argument_parser,
    create_versioned_data,
    fmt,
    load_average,
    load_versions,
    log,
    main,
    vacuum,
    versioned_model,
)

OPS = ("backfill_versions", "update_end_transaction_ids", "update_mod_flags", "vacuum_versions")


def _share(key: str, parts: int, value: int | str = 0) -> str:
    """A condition true for one in ``parts`` of the rows, spread evenly by a hash of ``key``."""
    return f"mod(hashint8({key}) & 2147483647, {parts}) = {value}"


_VERSION_KEY = "id::bigint * 1000003 + transaction_id"
_COLUMNS = ", ".join(DATA_COLUMNS)
#: The damage each operation repairs, as statements run before each run (``:round``: the run's
#: number, so that another 1% of the live rows is deleted each time; ``:entities``: the entities
#: loaded, above which the new rows of the previous run are removed first, so that the size stays).
DAMAGE: dict[str, list[str]] = {
    "backfill_versions": [
        f"DELETE FROM {VERSION} WHERE id > :entities",
        f"DELETE FROM {LIVE} WHERE id > :entities",
        f"UPDATE {LIVE} SET name = name || ' (stale ' || :round || ')' WHERE {_share('id', 5)}",
        f"INSERT INTO {LIVE} (id, {_COLUMNS}) SELECT :entities + i, 'new ' || (:entities + i), NULL, i % 1000 "
        f"FROM generate_series(1, :entities / 10) AS i",
        f"DELETE FROM {LIVE} WHERE id <= :entities AND {_share('id', 100, '1 + :round')}",
    ],
    "update_end_transaction_ids": [
        f"UPDATE {VERSION} SET end_transaction_id = NULL "
        f"WHERE end_transaction_id IS NOT NULL AND {_share(_VERSION_KEY, 3)}"
    ],
    "update_mod_flags": [
        f"UPDATE {VERSION} SET {', '.join(f'{f} = NOT {f}' for f in FLAGS)} WHERE {_share(_VERSION_KEY, 3)}"
    ],
    "vacuum_versions": [
        f"""WITH futile AS (
            SELECT id, transaction_id, {_COLUMNS}, nextval('transaction_id_seq') AS next_id FROM {VERSION}
            WHERE end_transaction_id IS NULL AND operation_type <> 2 AND {_share("id", 4, 1)}
        ), closed AS (
            UPDATE {VERSION} AS v SET end_transaction_id = f.next_id FROM futile AS f
            WHERE v.id = f.id AND v.transaction_id = f.transaction_id
        )
        INSERT INTO {VERSION} (id, {_COLUMNS}, transaction_id, operation_type, {", ".join(FLAGS)})
        SELECT id, {_COLUMNS}, next_id, 1, {", ".join("false" for _ in FLAGS)} FROM futile"""
    ],
}


@dataclass
class Run:
    size: int
    op: str
    batch_size: int | None
    op_seconds: float = 0.0
    writer_transactions: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_stall_ms: float | None = None
    baseline_p99_ms: float | None = None
    batches: int = 0
    longest_batch_ms: float | None = None
    median_batch_ms: float | None = None
    longest_lock_wait_ms: float | None = None
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    rows: dict[str, Any] = field(default_factory=dict)
    statements: dict[str, list[float]] = field(default_factory=dict)
    #: The time relative to the single transaction run just before (batched runs).
    relative: float | None = None

    @property
    def stall_share(self) -> float | None:
        return None if self.max_stall_ms is None else self.max_stall_ms / 1000 / self.op_seconds


class Writers:
    """The application: ``count`` threads writing through Continuum's ORM until stopped, in a
    process of their own; every transaction's (start, latency), on the system-wide monotonic clock.

    A process apart from the operation's, as an application's are from ``alembic upgrade``:
    threads of the operation's own process would take turns with it at Python's global
    interpreter lock between its statements, and slow it down for that alone."""

    def __init__(self, url: str, entities: int, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop, self.ready = context.Event(), context.Event()
        self.results, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=write_until_stopped, args=(url, entities, count, self.stop, self.ready, sender), daemon=True
        )
        self.samples: list[tuple[float, float]] = []

    def __enter__(self) -> Writers:
        self.process.start()
        if not self.ready.wait(120):
            raise RuntimeError("the writers' process did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if not self.results.poll(180):
            raise RuntimeError("the writers' process did not report")
        result = self.results.recv()
        self.process.join(60)
        if result["error"]:
            raise RuntimeError(f"a writer failed: {result['error']}")
        self.samples = result["samples"]

    def latencies(self, start: float, end: float) -> list[float]:
        """Latencies of the transactions running at any moment in ``[start, end]``."""
        return [latency for began, latency in self.samples if began + latency >= start and began <= end]


def write_until_stopped(url: str, entities: int, count: int, stop: Any, ready: Any, results: Any) -> None:
    """The writers' process: ``count`` threads renaming random entities until ``stop``; sends
    their samples and the first error on ``results``."""
    _, model, _ = versioned_model()
    engine = sa.create_engine(url, pool_size=count + 1)
    samples: list[tuple[float, float]] = []
    errors: list[str] = []

    def write(index: int) -> None:
        from sqlalchemy.orm import Session

        rng = random.Random(index)
        try:
            with Session(engine) as session:
                n = 0
                while not stop.is_set():
                    started = time.monotonic()
                    item = session.get(model, rng.randint(1, entities))
                    if item is not None:
                        n += 1
                        item.name = f"writer {index} #{n}"
                    session.commit()
                    samples.append((started, time.monotonic() - started))
        except BaseException as error:  # noqa: BLE001 - reported after the run
            errors.append(repr(error))

    threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.set()
    stop.wait()
    for thread in threads:
        thread.join(120)
    engine.dispose()
    results.send({"samples": samples, "error": errors[0] if errors else None})


class Batches:
    """The operation's transactions on its engine, from the statements it sends: each batch's
    span (``BEGIN`` to ``COMMIT``/``ROLLBACK``) and its wait for the writers' lock (``LOCK``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.spans: list[float] = []
        self.lock_waits: list[float] = []
        #: Seconds and count per statement (its first words), over all batches.
        self.statements: dict[str, list[float]] = {}
        self._began: float | None = None
        self._statement: float = 0.0
        sa.event.listen(engine, "before_cursor_execute", self.before)
        sa.event.listen(engine, "after_cursor_execute", self.after)

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        now = time.perf_counter()
        word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if word == "BEGIN":
            self._began = now
        elif word in ("COMMIT", "ROLLBACK") and self._began is not None:
            self.spans.append(now - self._began)
            self._began = None
        self._statement = now

    def after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seconds = time.perf_counter() - self._statement
        if statement.lstrip().upper().startswith("LOCK"):
            self.lock_waits.append(seconds)
        total = self.statements.setdefault(" ".join(statement.split())[:70], [0.0, 0])
        total[0] += seconds
        total[1] += 1

    def slowest(self, n: int = 8) -> dict[str, list[float]]:
        """The ``n`` statements that took longest in all, with their seconds and count."""
        ranked = sorted(self.statements.items(), key=lambda item: -item[1][0])[:n]
        return {text: [round(seconds, 3), int(count)] for text, (seconds, count) in ranked}


def run_op(url: str, op_name: str, batch_size: int | None, batch_seconds: float | None = None) -> tuple[float, Batches]:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    import alembic_versioning  # noqa: F401

    kwargs: dict[str, Any] = {"batch_size": batch_size} if batch_size else {}
    if batch_size and batch_seconds is not None:
        kwargs["batch_seconds"] = batch_seconds
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    batches = Batches(engine)
    try:
        started = time.perf_counter()
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            with context.begin_transaction():
                getattr(Operations(context), op_name)(LIVE, **kwargs)
        return time.perf_counter() - started, batches
    finally:
        engine.dispose()


def damage(engine: sa.Engine, op_name: str, round_: int, entities: int) -> dict[str, int]:
    """Break the data the way ``op_name`` repairs it (:data:`DAMAGE`); the rows each statement changed."""
    changed = {}
    values = {"round": round_, "entities": entities}
    with engine.begin() as conn:
        for n, statement in enumerate(DAMAGE[op_name]):
            params = {k: v for k, v in values.items() if f":{k}" in statement}
            result = conn.execute(sa.text(statement), params)
            changed[f"damage_{n + 1}"] = result.rowcount
    vacuum(engine, LIVE, VERSION)
    return changed


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(engine: sa.Engine, url: str, args: argparse.Namespace, size: int, op_name: str, entities: int) -> list[Run]:
    runs = []
    for n in range(args.settle):  # unmeasured: every measured run then finds a table repaired before
        damage(engine, op_name, 99 - n, entities)  # rounds the measured runs do not use
        run_op(url, op_name, None)
    for n, batch_size in enumerate(args.batch_sizes * args.repeat):
        batch_size = batch_size or None
        run = Run(size, op_name, batch_size)
        run.rows = damage(engine, op_name, n, entities)
        run.load_before = load_average()
        with Writers(url, entities, args.writers) as writers:
            time.sleep(args.warmup)
            warm = time.monotonic()
            run.op_seconds, batches = run_op(url, op_name, batch_size, args.batch_seconds)
            ended = time.monotonic()
            began = ended - run.op_seconds
            time.sleep(0.2)
        baseline = writers.latencies(warm - args.warmup / 2, warm)
        run.load_after = load_average()
        during = writers.latencies(began, ended)
        run.writer_transactions = len(during)
        if during:
            ordered = sorted(during)
            run.p50_ms = 1000 * statistics.median(ordered)
            run.p99_ms = 1000 * percentile(ordered, 0.99)
            run.max_stall_ms = 1000 * ordered[-1]
        if baseline:
            run.baseline_p99_ms = 1000 * percentile(sorted(baseline), 0.99)
        run.batches = len(batches.spans)
        run.statements = batches.slowest()
        if batches.spans:
            run.longest_batch_ms = 1000 * max(batches.spans)
            run.median_batch_ms = 1000 * statistics.median(batches.spans)
        if batches.lock_waits:
            run.longest_lock_wait_ms = 1000 * max(batches.lock_waits)
        log(
            f"{op_name} size={size:,} batch_size={batch_size}: {run.op_seconds:.2f} s, "
            f"{run.writer_transactions} writer transactions, p99 {fmt(run.p99_ms, '.1f')} ms, "
            f"longest {fmt(run.max_stall_ms, '.0f')} ms; {run.batches} batches, longest "
            f"{fmt(run.longest_batch_ms, '.0f')} ms, lock wait {fmt(run.longest_lock_wait_ms, '.0f')} ms; "
            f"load {run.load_before} -> {run.load_after}; damage {run.rows}"
        )
        runs.append(run)
    return runs


HEADERS = [
    "op",
    "versions",
    "batch size",
    "op s",
    "writer tx",
    "p50 ms",
    "p99 ms",
    "longest ms",
    "longest / op",
    "baseline p99 ms",
    "batches",
    "longest batch ms",
    "batched / whole",
    "load",
]


def run_benchmark(url: str, args: argparse.Namespace) -> tuple[Any, list[tuple[str, list[str], list[list[str]]]]]:
    engine = sa.create_engine(url, pool_size=args.writers + 4)
    metadata, _, _ = versioned_model()
    runs: list[Run] = []
    try:
        for size in args.sizes:
            entities = size // args.versions
            started = time.perf_counter()
            create_versioned_data(engine, metadata, entities, args.versions, stale=False)
            load_versions(engine, metadata)
            with engine.begin() as conn:
                conn.exec_driver_sql('TRUNCATE "transaction"')
            log(f"size={size:,}: data loaded in {time.perf_counter() - started:.0f} s")
            for op_name in args.ops:
                runs += measure(engine, url, args, size, op_name, entities)
    finally:
        engine.dispose()
    rows = []
    whole: dict[tuple[int, str], float] = {}
    for run in runs:
        if run.batch_size is None:
            whole[(run.size, run.op)] = run.op_seconds
        unbatched = whole.get((run.size, run.op))
        run.relative = run.op_seconds / unbatched if run.batch_size and unbatched else None
        rows.append(
            [
                run.op,
                f"{run.size:,}",
                f"{run.batch_size:,}" if run.batch_size else "-",
                fmt(run.op_seconds, ".2f"),
                f"{run.writer_transactions:,}",
                fmt(run.p50_ms, ".1f"),
                fmt(run.p99_ms, ".1f"),
                fmt(run.max_stall_ms, ".0f"),
                fmt(None if run.stall_share is None else 100 * run.stall_share, ".0f") + "%",
                fmt(run.baseline_p99_ms, ".1f"),
                str(run.batches),
                fmt(run.longest_batch_ms, ".0f"),
                fmt(run.relative, ".2f"),
                f"{run.load_before[0]:.1f}-{run.load_after[0]:.1f}",
            ]
        )
    raw = [{**asdict(run), "stall_share": run.stall_share} for run in runs]
    tables = [("Writers during the operation", HEADERS, rows)]
    if args.repeat > 1:
        tables.append((f"Medians of {args.repeat} runs", MEDIAN_HEADERS, medians(runs)))
    return raw, tables


MEDIAN_HEADERS = ["op", "versions", "batch size", "op s", "p99 ms", "longest ms", "longest / op", "batched / whole"]


def medians(runs: list[Run]) -> list[list[str]]:
    """Per operation, size and batch size: the median of each measure over the repeated runs
    (the ratio: of each batched run to the single transaction run just before it)."""
    groups: dict[tuple[str, int, int | None], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.op, run.size, run.batch_size), []).append(run)

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    rows = []
    for (op, size, batch_size), group in groups.items():
        share = median([r.stall_share for r in group])
        rows.append(
            [
                op,
                f"{size:,}",
                f"{batch_size:,}" if batch_size else "-",
                fmt(median([r.op_seconds for r in group]), ".2f"),
                fmt(median([r.p99_ms for r in group]), ".1f"),
                fmt(median([r.max_stall_ms for r in group]), ".0f"),
                fmt(None if share is None else 100 * share, ".0f") + "%",
                fmt(median([r.relative for r in group]), ".2f"),
            ]
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, "50000", "rows: version rows,")
    parser.add_argument("--versions", type=int, default=5, help="versions per entity (default: 5)")
    parser.add_argument("--ops", default=",".join(OPS), type=lambda s: s.split(","), help="operations to run")
    parser.add_argument(
        "--batch-sizes",
        default=[0, 20_000],
        type=lambda text: [int(x) for x in text.replace("_", "").split(",")],
        help="batch_size of each run, comma-separated; 0: one transaction (default: 0,20000)",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        help="batch_seconds of the batched runs (default: the operations' own, 0.5; 0: batches of batch_size)",
    )
    parser.add_argument("--writers", type=int, default=4, help="writer threads (default: 4)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the batch sizes this many times in turn, then their medians"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds the writers run before the operation")
    parser.add_argument(
        "--settle",
        type=int,
        default=1,
        help="unmeasured runs of each operation (damage, then one transaction, no writers) before the "
        "measured ones (default: 1)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.ops) - set(OPS)
    if unknown:
        parser.error(f"unknown operations {sorted(unknown)}")
    return args


if __name__ == "__main__":
    main(parse_args(), None, run_benchmark)
