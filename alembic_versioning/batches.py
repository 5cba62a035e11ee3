"""Batched runs (``batch_size=``): an operation's statements, batch by batch, outside the
migration's transaction, so that Continuum's writers wait for one short batch at a time.

The run leaves the migration's transaction through Alembic's
:meth:`~alembic.runtime.migration.MigrationContext.autocommit_block` (which commits what the
migration did so far), then works through the entities in key order (:mod:`.sql.batches`). Each
batch:

1. reads its last key (:func:`~.sql.batches.batch_end`: the only row fetched to the client; in
   the last batch, which has none, the number of keys left instead), in a statement of its own,
   and builds its statements for that key range, so that the lock below is held for the work
   alone (keys written in the range meanwhile are the batch's too; the last batch has no upper
   bound);
2. is one explicit database transaction (``BEGIN`` ... ``COMMIT``: inside the block every
   statement would commit on its own): it bounds the lock wait
   (:class:`~.sql.constructs.LockTimeout`), sets up the transaction for short statements
   (:class:`~.sql.constructs.BatchSettings`), takes the writers' lock
   (:class:`~.sql.constructs.LockForWrite`: the transaction, live and version tables), which also
   waits for writers that already took a transaction id, runs the operation's statements on the
   entities of the batch's key range (the first batch runs the run's set-up before them:
   :attr:`Work.setup`), and commits (on PostgreSQL without waiting for the disk, but in the last
   batch, whose commit flushes the others').

A batch takes at most ``batch_size`` entities (:class:`Sizing`): the first a sixteenth of them, each
later one as many as the batch before handled in ``batch_seconds`` while it held the lock, but at
most twice its entities and at least a sixteenth of ``batch_size``. So writers wait about
``batch_seconds`` per batch whatever share of each entity's versions a repair rewrites.

A lock not granted in time rolls the batch back and retries it after a pause, a bounded number of
times; then, as on any error, a :class:`~.errors.VersioningError` says how far the run got.
Committed batches are complete, and the operations are idempotent: a re-run finds nothing left to
do in them and continues with the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations

from .comments import one_line
from .errors import VersioningError
from .execute import execute_statements
from .model import KeyRange, VersionedTable
from .operations import VersionedTableOp
from .sql.batches import batch_end, keys_left
from .sql.constructs import BatchSettings, LockForWrite, LockTimeout, RowEstimate, SessionLockWait

log = logging.getLogger("alembic.runtime.migration")

#: Seconds a batch waits for the writers' lock when ``lock_timeout`` is not given.
DEFAULT_LOCK_TIMEOUT = 3.0
#: Attempts at one batch whose lock is not granted in time, and the pause before the first retry
#: (doubled for each further one, up to ``MAX_BACKOFF``), in seconds.
LOCK_ATTEMPTS = 6
BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: Seconds between two progress lines.
PROGRESS_INTERVAL = 5.0
#: Seconds a batch aims to hold the writers' lock when ``batch_seconds`` is not given.
DEFAULT_BATCH_SECONDS = 0.5
#: How many times the entities of the batch before a batch may hold (a batch shrinks at once).
GROWTH = 2
#: The first batch takes ``batch_size`` divided by this (with ``batch_seconds``): it has no batch
#: before it to be sized by, and the entities may have many versions each. No batch is smaller:
#: where every batch's fixed cost exceeds ``batch_seconds`` they would shrink without end.
FIRST_SHARE = 16

#: The statements for the entities of a key range (all: ``None``), and the indexes of those
#: whose rows are counted. They run after the writers' lock (:attr:`Work.lock`), which the run
#: takes: once, or once per batch.
Build = Callable[[KeyRange | None], tuple[list[sa.Executable], Sequence[int]]]


@dataclass(frozen=True)
class Work:
    """What an operation runs: its table (whose key batches follow), the writers' lock, the
    tables whose keys set the batch boundaries, the statement builder and what it counts."""

    table: VersionedTable
    lock: LockForWrite
    sources: Sequence[sa.Table]
    build: Build
    done: str
    #: The live table, whose row count estimates the entities (``None``: not known).
    live: sa.Table | None = None
    #: Checks and set-up that hold for the whole run: they run once, after the lock, before the
    #: statements (batched: in the first batch).
    setup: Sequence[sa.Executable] = ()


def with_range(table: VersionedTable, key_range: KeyRange | None) -> VersionedTable:
    """``table`` limited to the entities of ``key_range``."""
    return dataclasses.replace(table, key_range=key_range)


def run(operations: Operations, op: VersionedTableOp, work: Work) -> None:
    """Run ``work`` in the migration's transaction, or with ``op.batch_size`` batch by batch."""
    name = one_line(work.table.qualified_version_name)
    if op.batch_size is not None and operations.migration_context.as_sql:
        raise VersioningError(
            f"{op.op_name}({op.table_name!r}, batch_size={op.batch_size}) cannot run offline (--sql): each batch "
            f"reads its boundary from the database, which a script cannot. Run this migration online, or leave "
            f"batch_size out of the script's run (one transaction, the writers wait for all of it)."
        )
    if op.batch_size is not None and not work.table.primary_key:
        log.warning(
            "%s %s: no primary key to batch on (its entities are keyed by every column): one transaction",
            op.op_name,
            name,
        )
    if op.batch_size is None or not work.table.primary_key:
        statements, counted = work.build(None)
        locked = [work.lock, *work.setup, *statements]
        first = 1 + len(work.setup)
        execute_statements(operations, op.op_name, work.table, locked, work.done, [i + first for i in counted])
        return
    context = operations.migration_context
    if context._in_connection_transaction() and getattr(context, "_transaction", None) is None:
        raise VersioningError(
            f"{op.op_name}({op.table_name!r}, batch_size={op.batch_size}) commits batch by batch, which needs "
            f"Alembic to own the migration's transaction: in env.py, open the connection with connect() (not "
            f"begin()) and run the migrations in context.begin_transaction()."
        )
    timeout = op.lock_timeout if op.lock_timeout is not None else DEFAULT_LOCK_TIMEOUT
    target = op.batch_seconds if op.batch_seconds is not None else DEFAULT_BATCH_SECONDS
    with context.autocommit_block():
        conn = operations.get_bind()
        session_wait = conn.execute(sa.select(SessionLockWait())).scalar()
        try:
            _run_batches(conn, op, work, name, Sizing(op.batch_size, target), timeout)
        finally:
            if session_wait is not None:  # MariaDB: the session's own bound again, for the statements after
                _set_back(conn, LockTimeout(session_wait))


@dataclass(frozen=True)
class Sizing:
    """How many entities a batch takes: at most ``limit``, fewer (down to a :data:`FIRST_SHARE` of
    it) where the batches before held the writers' lock longer than ``target`` seconds (``0``:
    always ``limit``)."""

    limit: int
    target: float

    def first(self) -> int:
        """The entities of the first batch, and the fewest of any: a :data:`FIRST_SHARE` of
        ``limit`` (at least 1), or ``limit`` without a ``target``."""
        return max(1, self.limit // FIRST_SHARE) if self.target else self.limit

    def next(self, size: int, held: float) -> int:
        """The entities of the batch after one of ``size`` entities that held the lock ``held`` seconds.

        As many as that batch's rate handles in ``target`` seconds, at least :meth:`first`, and at
        most ``limit`` and :data:`GROWTH` times ``size`` (so that one fast batch cannot make the
        next one long)."""
        if not self.target:
            return self.limit
        wanted = size * self.target / held if held > 0 else self.limit
        return max(self.first(), int(min(self.limit, GROWTH * size, wanted)))


def _run_batches(
    conn: sa.Connection, op: VersionedTableOp, work: Work, name: str, sizing: Sizing, timeout: float
) -> None:
    progress = Progress(op.op_name, name, work.done, _estimate(conn, work.live))
    after: tuple[Any, ...] | None = None
    size = sizing.first()
    while True:
        try:
            after, found, rows, held = _batch_with_retries(conn, op, work, name, after, size, timeout, progress)
        except Exception as error:
            raise VersioningError(progress.stopped(after, error)) from error
        progress.batch_done(found, rows, last=after is None)
        if after is None:
            break
        size = sizing.next(size, held)
    progress.finish()


def _batch_with_retries(
    conn: sa.Connection,
    op: VersionedTableOp,
    work: Work,
    name: str,
    after: tuple[Any, ...] | None,
    size: int,
    timeout: float,
    progress: Progress,
) -> tuple[tuple[Any, ...] | None, int, int, float]:
    """One batch, retried while its lock is not granted in time (see :data:`LOCK_ATTEMPTS`)."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            return _batch(conn, work, after, size, timeout)
        except sa.exc.DBAPIError as error:
            if not lock_not_granted(error):
                raise
            if attempt == LOCK_ATTEMPTS:
                raise LockNotGranted(
                    f"the writers' lock ({_names(work.lock)}) was not granted within {timeout:g} s, "
                    f"{LOCK_ATTEMPTS} times: a long transaction holds one of those tables (PostgreSQL: see "
                    f"pg_stat_activity and pg_locks)"
                ) from error
            pause = min(BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)
            log.info(
                "%s %s: batch %d waited %g s for the writers' lock; retrying in %g s (attempt %d of %d)",
                op.op_name,
                name,
                progress.batches + 1,
                timeout,
                pause,
                attempt + 1,
                LOCK_ATTEMPTS,
            )
            time.sleep(pause)
    raise AssertionError("unreachable")


def _batch(
    conn: sa.Connection, work: Work, after: tuple[Any, ...] | None, size: int, timeout: float
) -> tuple[tuple[Any, ...] | None, int, int, float]:
    """Run one batch: the entities above ``after``, up to ``size`` keys of each source.

    Its boundary is read, and its statements built, before its transaction: the writers' lock is
    held for the statements alone. Return the batch's last key (``None``: it was the last batch),
    about how many entities it held (``size`` but in the last), the rows it counted and the
    seconds it held the lock."""
    above = with_range(work.table, KeyRange(after=after))
    end = conn.execute(batch_end(above, work.sources, size)).first()
    upto = tuple(end) if end is not None else None
    found = size if end is not None else conn.execute(keys_left(above, work.sources)).scalar() or 0
    statements, counted = work.build(KeyRange(after, upto))
    setup = work.setup if after is None else ()
    conn.execute(sa.text("BEGIN"))
    try:
        conn.execute(LockTimeout(timeout))
        conn.execute(BatchSettings(durable=upto is None))
        conn.execute(work.lock)
        locked = time.monotonic()
        for statement in setup:
            conn.execute(statement)
        counts = [conn.execute(s, execution_options={"preserve_rowcount": True}).rowcount for s in statements]
        conn.execute(sa.text("COMMIT"))
        held = time.monotonic() - locked
    except BaseException:
        try:
            conn.execute(sa.text("ROLLBACK"))
        except sa.exc.DBAPIError:  # the connection is gone: so is its transaction
            pass
        raise
    return upto, found, sum(counts[i] for i in counted), held


def _set_back(conn: sa.Connection, setting: sa.Executable) -> None:
    """Run ``setting``, unless the connection is gone (and its session with it)."""
    try:
        conn.execute(setting)
    except sa.exc.SQLAlchemyError as error:
        log.debug("not set back, the connection is gone: %s", error)


class LockNotGranted(Exception):
    """A batch did not get the writers' lock in any of its attempts."""


def lock_not_granted(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` is a lock wait that ran out, or a deadlock the database broke.

    Then the batch changed nothing and may be retried:

    - PostgreSQL: SQLSTATE 55P03 / 40P01;
    - SQLite: BUSY / LOCKED;
    - MariaDB: errors 1205 / 1213 (the first of a MySQL driver's error arguments).
    """
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    args = getattr(orig, "args", ())
    mysql_code = args[0] if args and isinstance(args[0], int) else None
    return (
        sqlstate in ("55P03", "40P01")
        or (isinstance(sqlite_code, int) and sqlite_code & 0xFF in (5, 6))
        or mysql_code in (1205, 1213)
    )


def _names(lock: LockForWrite) -> str:
    return ", ".join(one_line(t.fullname) for t in lock.tables)


def _estimate(conn: sa.Connection, live: sa.Table | None) -> int | None:
    """The live table's rows (about one per entity): the statistics' estimate, else counted."""
    if live is None:
        return None
    counted = sa.select(sa.func.count()).select_from(live).scalar_subquery()
    return conn.execute(sa.select(sa.func.coalesce(RowEstimate(live), counted))).scalar()


class Progress:
    """Progress lines of a batched run, at most one per :data:`PROGRESS_INTERVAL`, and its summary."""

    def __init__(self, op_name: str, name: str, done: str, total: int | None) -> None:
        self.op_name, self.name, self.done, self.total = op_name, name, done, total
        self.entities = self.rows = self.batches = 0
        self.smallest = self.largest = 0
        self.started = self.logged = time.monotonic()

    def batch_done(self, entities: int, rows: int, *, last: bool) -> None:
        """Count a batch of ``entities`` that counted ``rows`` (``last``: the run's last batch,
        which holds what was left, and counts for the largest batch only, unless it is the only one)."""
        if not self.batches:
            self.smallest = entities
        elif not last:
            self.smallest = min(self.smallest, entities)
        self.largest = max(self.largest, entities)
        self.entities += entities
        self.rows += rows
        self.batches += 1
        now = time.monotonic()
        if now - self.logged >= PROGRESS_INTERVAL:
            self.logged = now
            log.info("%s %s: %s", self.op_name, self.name, self._status(now))

    def _status(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.entities / elapsed
        status = f"{self.entities:,} entities"
        if self.total:
            total = max(self.total, self.entities)
            status += f" of about {total:,} ({100 * self.entities / total:.0f}%)"
        status += f", {self.rows:,} {self.done}, {rate:,.0f} entities/s"
        if self.total and rate > 0:
            status += f", about {_duration(max(self.total - self.entities, 0) / rate)} left"
        return status

    def finish(self) -> None:
        seconds = time.monotonic() - self.started
        same = self.smallest == self.largest
        sizes = f"up to {self.largest:,}" if same else f"{self.smallest:,} to {self.largest:,}"
        log.info(
            "%s %s: %d %s (%s entities in %d batches of %s, %.1f s)",
            self.op_name,
            self.name,
            self.rows,
            self.done,
            f"{self.entities:,}",
            self.batches,
            sizes,
            seconds,
        )

    def stopped(self, after: tuple[Any, ...] | None, error: BaseException) -> str:
        lines = str(getattr(error, "orig", None) or error).strip().splitlines()
        cause = lines[0] if lines else repr(error)
        where = f"the keys up to {after!r}" if after is not None else "no batch yet"
        return (
            f"{self.op_name} {self.name} stopped in batch {self.batches + 1}: {cause}. "
            f"{self.batches} batches ({self.entities:,} entities, {where}) are committed and valid, with "
            f"{self.rows:,} {self.done}; run the migration again to continue (the operation is idempotent: "
            f"committed batches have nothing left to do)."
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
