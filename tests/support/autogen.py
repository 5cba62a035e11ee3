"""Autogenerate in tests: produce a migration with the plugin on, list our ops, render and run it."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext
from alembic.operations import ops as alembic_ops
from sqlalchemy.dialects import mysql

from alembic_versioning import LeftOutOp, VersionedTableOp

from .migrate import render_offline, run_online

PLUGINS = ["alembic.autogenerate.*", "alembic_versioning.*"]
#: The module globals a generated ``upgrade()`` body reads besides ``op`` (a revision file defines
#: ``revision``; the default backfill comment names it).
REVISION = "rev0001"


def namespace(op: Any) -> dict[str, Any]:
    """The globals a generated body runs with: as its revision file's module would have them (with
    the dialect module MariaDB's types render from, ``from sqlalchemy.dialects import mysql``)."""
    return {"op": op, "sa": sa, "os": os, "mysql": mysql, "revision": REVISION}


def produce(engine: sa.Engine, metadata: sa.MetaData, **opts: Any) -> alembic_ops.MigrationScript:
    """The migration ``alembic revision --autogenerate`` would write for ``metadata``, plugin on."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"target_metadata": metadata, "autogenerate_plugins": PLUGINS, **opts}
        )
        return produce_migrations(context, metadata)


def ours(script: alembic_ops.MigrationScript) -> list[tuple[Any, ...]]:
    """Our ops in the upgrade, as (op name, table, finding)."""
    return [
        (op.op_name, op.table_name, op.finding) for op in script.upgrade_ops.ops if isinstance(op, VersionedTableOp)
    ]


def left_out(script: alembic_ops.MigrationScript) -> list[tuple[str, str, str]]:
    """The repairs the upgrade leaves out, as (op name, table, reason)."""
    found = [op for op in script.upgrade_ops.ops if isinstance(op, LeftOutOp)]
    return [(op.repair.op_name, op.repair.table_name, op.why) for op in found]


def found(script: alembic_ops.MigrationScript) -> list[tuple[str, str, tuple[str, ...]]]:
    """Our ops in the upgrade, left-out ones included, as (op name, table, joined tables)."""
    result = []
    for op in script.upgrade_ops.ops:
        if isinstance(op, LeftOutOp):
            result.append((f"left_out:{op.repair.op_name}", op.repair.table_name, ()))
        elif isinstance(op, VersionedTableOp):
            result.append((op.op_name, op.table_name, tuple(sorted(getattr(op, "joined", None) or ()))))
    return result


def render(engine: sa.Engine, script: alembic_ops.MigrationScript) -> str:
    """The upgrade's Python code, as the migration file would hold it."""
    context = MigrationContext.configure(dialect_name=engine.dialect.name)
    return render_python_code(script.upgrade_ops, migration_context=context)


def apply(engine: sa.Engine, script: alembic_ops.MigrationScript | str) -> None:
    """Run a generated upgrade (the script, or its rendered code: see :func:`render`) in one
    transaction, as ``alembic upgrade`` would."""
    code = script if isinstance(script, str) else render(engine, script)
    run_online(engine, lambda op: exec(script_body(code), namespace(op)))


def render_generated(engine: sa.Engine, code: str, **opts: Any) -> str:
    """The ``--sql`` script of a generated ``upgrade()`` body."""
    return render_offline(engine, lambda op: exec(script_body(code), namespace(op)), **opts)


def script_body(code: str) -> str:
    """A rendered ``upgrade()`` body as a module, with the imports autogenerate adds to the
    script (either spelling of the operations)."""
    imports = "import alembic_versioning\nfrom alembic_versioning import op as versioning\n"
    return imports + code.replace("\n    ", "\n")
