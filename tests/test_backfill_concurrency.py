"""op.backfill_versions (and every other operation) while applications keep writing through
Continuum (PostgreSQL).

Behaviour under test: before it reads anything, ``backfill_versions`` takes a ``SHARE ROW
EXCLUSIVE`` table lock (``LOCK TABLE article, article_version ...``), so writers that want to
change the live or the version table wait until the migration's transaction ends, then carry
on against the committed backfill; readers are not blocked. Nothing may be lost or broken by
any interleaving:

* no writer fails (no deadlock, no unique violation, no lock timeout);
* every writer transaction that committed is in the version table with exactly the entities it
  changed, under the transaction id the writer got, and the live table holds what the writers
  last wrote;
* the validity chains stay intact: per entity, in transaction order, each version's
  end transaction id is the next version's transaction id, and exactly one version is open;
* each live row's latest version equals it (NULL-safely, every versioned column) and is not a
  DELETE; each entity without a live row has a DELETE as its latest version;
* a final backfill finds nothing to write (no new transaction record).

The interleaving that matters most: Continuum allocates a writer's transaction id
(``INSERT INTO transaction ... nextval('transaction_id_seq')``) in ``before_flush``, *before* the
flush touches the live table, and orders versions by transaction id (the ORM closes the version
with the highest id below its own; the native triggers close the open version). A writer that
got its id before the backfill got its id, but writes the live table after the backfill
committed, must still end up in a correct chain, so the backfill has to wait for such writers,
not only make later ones wait. ``test_writer_holding_an_older_transaction_id`` forces that
interleaving; the stress test produces it naturally (writers queue on the lock after taking
their ids).

Writers use Continuum's ORM versioning (with and without the mod-tracker plugin) or its native
triggers. The harness and the scenarios, shared with MariaDB's tests
(``test_mariadb_concurrency.py``), are in ``support/concurrency.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from .support.concurrency import (
    FLAVOURS,
    every_operation_while_writers_write,
    flavoured_app,
    repair_waits_for_a_writer_in_flight,
    writer_holding_an_older_transaction_id,
    writers_engine,
    writers_wait_and_nothing_is_lost,
)


@pytest.fixture
def engine(pg_engine: sa.Engine) -> Iterator[sa.Engine]:
    """``pg_engine``'s database with a lock timeout and room for the writers and the migration."""
    with writers_engine(pg_engine) as engine:
        yield engine


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_concurrent_writers_wait_and_nothing_is_lost(engine: sa.Engine, flavour: str) -> None:
    with flavoured_app(engine, flavour) as app:
        writers_wait_and_nothing_is_lost(engine, engine, app)


@pytest.mark.parametrize("flavour", ["orm", "native"])
def test_writer_holding_an_older_transaction_id(engine: sa.Engine, flavour: str) -> None:
    with flavoured_app(engine, flavour) as app:
        writer_holding_an_older_transaction_id(engine, engine, app)


def test_every_operation_in_one_migration_while_writers_write(engine: sa.Engine) -> None:
    with flavoured_app(engine, "orm-mod-tracker") as app:
        every_operation_while_writers_write(engine, engine, app)


@pytest.mark.parametrize("repair", ["update_end_transaction_ids", "vacuum_versions"])
def test_a_repair_waits_for_a_writer_in_flight(engine: sa.Engine, repair: str) -> None:
    with flavoured_app(engine, "orm") as app:
        repair_waits_for_a_writer_in_flight(engine, engine, app, repair)
