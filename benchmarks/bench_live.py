#!/usr/bin/env python
"""Benchmark the operations under live traffic on PostgreSQL: writer stalls, batched vs one transaction.

For each size (total version rows, N entities x K versions, Continuum's default table shape,
generated set-based as in the other scripts) and each operation, the data is broken the way the
operation repairs it, then the operation runs while ``--writers`` threads write through
SQLAlchemy-Continuum's ORM (each transaction: one entity, chosen at random, renamed; Continuum
adds its transaction record, its version and closes the previous one). Measured, per run:

* the operation's total time (Alembic's ``Operations`` on a migration context that owns its
  transaction, as ``alembic upgrade`` runs it);
* the writers' transaction latency while the operation runs: its 99th percentile and its maximum
  (the longest stall), also relative to the operation's time;
* the writers' transactions committed meanwhile.

Once in the migration's transaction (``batch_size`` left out: the writers wait for all of it) and
once with ``--batch-size`` (default 20,000). Targets (issue #18): batched, the longest stall at most
1 s and at most 10% of the operation's time, and the batched total at most 1.5x the unbatched one.

Without ``--url`` the script starts its own PostgreSQL server in a temporary directory.

Usage::

    python benchmarks/bench_live.py --sizes 50000 --json benchmarks/results/live_small.json
    python benchmarks/bench_live.py --sizes 1000000 --ops backfill_versions,update_end_transaction_ids
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from _support import (
    FLAGS,
    LIVE,
    LIVE_FROM_PRISTINE_SQL,
    STALE_UPDATE,
    STALE_WHERE,
    VERSION,
    argument_parser,
    create_versioned_data,
    fmt,
    load_versions,
    log,
    main,
    vacuum,
    versioned_model,
)

OPS = ("backfill_versions", "update_end_transaction_ids", "update_mod_flags", "vacuum_versions")
#: Each operation's arguments here (the vacuum compares all but ``content``: 1 in 7 versions changes
#: only that, so they are futile).
ARGUMENTS: dict[str, dict[str, Any]] = {"vacuum_versions": {"ignore_columns": ["content"]}}
#: The damage each operation repairs, on the freshly loaded pristine history.
BREAK = {
    "backfill_versions": STALE_UPDATE,
    "update_end_transaction_ids": f"UPDATE {VERSION} SET end_transaction_id = NULL WHERE {STALE_WHERE}",
    "update_mod_flags": f"UPDATE {VERSION} SET {', '.join(f'{f} = NOT {f}' for f in FLAGS)} WHERE {STALE_WHERE}",
    "vacuum_versions": None,
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
    rows: dict[str, Any] = field(default_factory=dict)

    @property
    def stall_share(self) -> float | None:
        return None if self.max_stall_ms is None else self.max_stall_ms / 1000 / self.op_seconds


class Writers:
    """``count`` threads writing through Continuum's ORM until stopped; every transaction's
    (start, latency)."""

    def __init__(self, engine: sa.Engine, model: type, entities: int, count: int) -> None:
        self.engine, self.model, self.entities = engine, model, entities
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self.write, args=(i,), daemon=True) for i in range(count)]

    def write(self, index: int) -> None:
        from sqlalchemy.orm import Session

        rng = random.Random(index)
        try:
            with Session(self.engine) as session:
                n = 0
                while not self.stop.is_set():
                    started = time.perf_counter()
                    item = session.get(self.model, rng.randint(1, self.entities))
                    if item is not None:
                        n += 1
                        item.name = f"writer {index} #{n}"
                    session.commit()
                    self.samples.append((started, time.perf_counter() - started))
        except BaseException as error:  # noqa: BLE001 - reported after the run
            self.errors.append(error)

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)
        if self.errors:
            raise RuntimeError(f"a writer failed: {self.errors[0]!r}") from self.errors[0]

    def latencies(self, start: float, end: float) -> list[float]:
        """Latencies of the transactions running at any moment in ``[start, end]``."""
        return [latency for began, latency in list(self.samples) if began + latency >= start and began <= end]


def run_op(engine: sa.Engine, op_name: str, batch_size: int | None) -> float:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    import alembic_versioning  # noqa: F401

    kwargs = {**ARGUMENTS.get(op_name, {}), **({"batch_size": batch_size} if batch_size else {})}
    started = time.perf_counter()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        with context.begin_transaction():
            getattr(Operations(context), op_name)(LIVE, **kwargs)
    return time.perf_counter() - started


def prepare(engine: sa.Engine, metadata: sa.MetaData, op_name: str) -> None:
    """The pristine history loaded, its live rows, then the damage ``op_name`` repairs."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {LIVE}")
        conn.exec_driver_sql(LIVE_FROM_PRISTINE_SQL)
        conn.exec_driver_sql('TRUNCATE "transaction"')
    load_versions(engine, metadata)
    damage = BREAK[op_name]
    if damage:
        with engine.begin() as conn:
            conn.exec_driver_sql(damage)
    vacuum(engine, LIVE, VERSION)


def measure(
    engine: sa.Engine, metadata: sa.MetaData, model: type, args: argparse.Namespace, size: int, op_name: str
) -> list[Run]:
    runs = []
    entities = size // args.versions
    for batch_size in (None, args.batch_size):
        prepare(engine, metadata, op_name)
        run = Run(size, op_name, batch_size)
        with Writers(engine, model, entities, args.writers) as writers:
            time.sleep(args.warmup)
            baseline = writers.latencies(time.perf_counter() - args.warmup / 2, time.perf_counter())
            began = time.perf_counter()
            run.op_seconds = run_op(engine, op_name, batch_size)
            ended = time.perf_counter()
            time.sleep(0.2)
        during = writers.latencies(began, ended)
        run.writer_transactions = len(during)
        if during:
            ordered = sorted(during)
            run.p50_ms = 1000 * statistics.median(ordered)
            run.p99_ms = 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            run.max_stall_ms = 1000 * ordered[-1]
        if baseline:
            ordered = sorted(baseline)
            run.baseline_p99_ms = 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        log(
            f"{op_name} size={size:,} batch_size={batch_size}: {run.op_seconds:.2f} s, "
            f"{run.writer_transactions} writer transactions, p99 {fmt(run.p99_ms, '.1f')} ms, "
            f"longest {fmt(run.max_stall_ms, '.0f')} ms"
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
    "batched / whole",
]


def run_benchmark(url: str, args: argparse.Namespace) -> tuple[Any, list[tuple[str, list[str], list[list[str]]]]]:
    engine = sa.create_engine(url, pool_size=args.writers + 4)
    metadata, model, _ = versioned_model()
    runs: list[Run] = []
    try:
        for size in args.sizes:
            create_versioned_data(engine, metadata, size // args.versions, args.versions, stale=False, content_only=0.1)
            for op_name in args.ops:
                runs += measure(engine, metadata, model, args, size, op_name)
    finally:
        engine.dispose()
    rows = []
    whole: dict[tuple[int, str], float] = {}
    for run in runs:
        if run.batch_size is None:
            whole[(run.size, run.op)] = run.op_seconds
        relative = run.op_seconds / whole[(run.size, run.op)] if run.batch_size else None
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
                fmt(relative, ".2f"),
            ]
        )
    raw = [{**asdict(run), "stall_share": run.stall_share} for run in runs]
    return raw, [("Writers during the operation", HEADERS, rows)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, "50000", "rows: version rows,")
    parser.add_argument("--versions", type=int, default=5, help="versions per entity (default: 5)")
    parser.add_argument("--ops", default=",".join(OPS), type=lambda s: s.split(","), help="operations to run")
    parser.add_argument("--batch-size", type=int, default=20_000, help="batch_size of the batched runs")
    parser.add_argument("--writers", type=int, default=4, help="writer threads (default: 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds the writers run before the operation")
    args = parser.parse_args(argv)
    unknown = set(args.ops) - set(OPS)
    if unknown:
        parser.error(f"unknown operations {sorted(unknown)}")
    return args


if __name__ == "__main__":
    main(parse_args(), None, run_benchmark)
