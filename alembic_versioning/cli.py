"""The ``alembic-versioning`` command: check and repair version-table drift without a migration.

It runs inside the project's own Alembic environment, as ``alembic check`` does: it reads the
config file (``alembic.ini``, ``pyproject.toml``), runs ``env.py`` with a function of its own in
place of the migrations, and so gets ``env.py``'s connection, ``target_metadata`` and options.
There it calls the autogenerate comparator (:func:`~alembic_versioning.autogenerate.compare.compare_versioned_tables`)
on an empty migration, whether or not ``env.py`` enables the plugin: the repairs found are those
``alembic revision --autogenerate`` writes when the models match the database, and only those.

- ``check`` prints the drift per versioned table; exit status 1 on drift.
- ``repair`` runs the repairs in one transaction, as a migration holding them would; ``--sql``
  prints them as an offline script, ``--dry-run`` as the Python of that migration.

Exit status: 0 when all is well, 1 when drift was found (``check``) or is left (``repair``),
2 on an error, reported on one line.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import renderers
from alembic.config import Config
from alembic.operations import Operations
from alembic.operations.ops import UpgradeOps
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from . import implementations as _implementations  # noqa: F401  (registers the operations)
from .autogenerate import render as _render  # noqa: F401  (registers the renderers)
from .autogenerate.compare import compare_versioned_tables
from .autogenerate.options import options_for
from .autogenerate.targets import versioned_pairs
from .catalog import ReflectedTables, metadata_table, system_schemas, table_key
from .comments import one_line
from .model import VersionedTable
from .operations import (
    BATCH_ARGUMENTS,
    MAX_SECONDS,
    OP_CLASSES,
    LeftOutOp,
    Repair,
    VersionedTableOp,
    repair_of,
    seconds,
)

PROG = "alembic-versioning"
DRIFT, ERROR = 1, 2


class Failure(Exception):
    """An error reported on one line, exit status 2."""


@dataclass
class Drift:
    """What the comparator found: the versioned tables it compared and their repairs, in run order."""

    tables: list[VersionedTable]
    repairs: list[Repair]
    warnings: list[str]


def qualified(op: VersionedTableOp) -> str:
    """``schema.table`` of the op's live table."""
    return f"{op.schema}.{op.table_name}" if op.schema else op.table_name


# -- Running env.py --------------------------------------------------------------------------------


def run_environment(config: Config, work: Callable[[MigrationContext, AutogenContext], None]) -> None:
    """Run the project's ``env.py`` online with ``work(context, autogen_context)`` in place of its migrations.

    It runs as ``alembic check`` runs it, once the database is at the head revision(s)."""
    script = ScriptDirectory.from_config(config)
    ran: list[bool] = []

    def fn(rev: Any, context: MigrationContext) -> list[Any]:
        if set(script.get_revisions(rev)) != set(script.get_revisions("heads")):
            raise Failure(
                "the database is not at the head revision: run `alembic upgrade heads` first (the repairs "
                "are for the schema target_metadata describes)"
            )
        autogen_context = AutogenContext(context, autogenerate=False)
        if autogen_context.metadata is None:
            raise Failure(f"{script.env_py_location} gives the context no target_metadata to find versioned tables in")
        work(context, autogen_context)
        ran.append(True)
        return []

    with EnvironmentContext(config, script, fn=fn, as_sql=False, dont_mutate=True):
        script.run_env()
    if not ran:
        raise Failure(f"{script.env_py_location} ran no migrations online (context.run_migrations() was not called)")


def schemas_of(autogen_context: AutogenContext) -> set[str | None]:
    """The schemas compared, as Alembic's schema comparison picks them (``include_schemas``,
    ``include_name``), but never the database's own (:func:`~alembic_versioning.catalog.system_schemas`)."""
    schemas: set[str | None] = {None}
    if autogen_context.opts.get("include_schemas", False):
        default = autogen_context.dialect.default_schema_name
        own = system_schemas(autogen_context.dialect) | {default}
        schemas |= set(autogen_context.inspector.get_schema_names()) - own
    return {s for s in schemas if autogen_context.run_name_filters(s, "schema", {})}


def schema_mismatches(autogen_context: AutogenContext, tables: Sequence[VersionedTable]) -> list[str]:
    """How the database's versioned tables fall short of the models: tables or columns missing
    (the repairs read every column the models give)."""
    reflected = ReflectedTables(autogen_context.inspector, tables)
    found: list[str] = []
    for table in tables:
        for name in (table.name, table.version_name):
            shown = table_key(name, table.schema)
            model = metadata_table(autogen_context.metadata, name, table.schema)
            if not reflected.has_table(name, table.schema):
                found.append(f"no table {shown}")
            elif model is not None:
                have = reflected.types(name, table.schema)
                missing = [c.name for c in model.c if c.name not in have]
                if missing:
                    found.append(f"{shown} lacks {', '.join(missing)}")
    return found


def find_drift(autogen_context: AutogenContext) -> Drift:
    """Return the repairs autogenerate appends to a migration without schema changes.

    They are the comparator's, on an empty migration (every versioned table checked in the
    database). A database whose versioned tables lack what the models have is refused: that takes
    a migration."""
    schemas = schemas_of(autogen_context)
    upgrade_ops = UpgradeOps([])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = versioned_pairs(autogen_context, options_for(autogen_context), schemas)
        mismatches = schema_mismatches(autogen_context, tables)
        if mismatches:
            listed = "; ".join(mismatches[:5]) + (f"; {len(mismatches) - 5} more" if len(mismatches) > 5 else "")
            raise Failure(
                f"the database does not match the models ({listed}): migrate the schema first "
                f"(`alembic check` lists the changes)"
            )
        compare_versioned_tables(autogen_context, upgrade_ops, schemas)
    repairs = [op for op in upgrade_ops.ops if isinstance(op, (VersionedTableOp, LeftOutOp))]
    # a left-out repair is reported with its reason; other warnings are passed on
    said = [str(w.message) for w in caught if not str(w.message).startswith("alembic-versioning leaves out ")]
    return Drift(tables, repairs, said)


# -- check -----------------------------------------------------------------------------------------


def drift_table(drift: Drift) -> list[tuple[str, str, str]]:
    """Return the rows ``(table, repair, found)`` of the drift table.

    - each repair, on its table (a joined-table hierarchy's tables are repaired together, on its
      base table);
    - then each table without one (``no drift``)."""
    rows: list[tuple[str, str, str]] = []
    covered: set[tuple[str | None, str]] = set()
    for found in drift.repairs:
        op = repair_of(found)
        name = op.op_name + (" (left out)" if isinstance(found, LeftOutOp) else "")
        rows.append((qualified(op), name, op.finding or ""))
        covered |= {(op.schema, op.table_name), *((op.schema, t) for t in getattr(op, "joined", {}))}
    for table in drift.tables:
        if (table.schema, table.name) not in covered:
            rows.append((table.qualified_name, "-", "no drift"))
    return [(one_line(table), one_line(name), one_line(found)) for table, name, found in rows]


def print_table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...], out: TextIO) -> None:
    """``rows`` under ``header``, in columns (the last one unpadded)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip(), file=out)


def left_out_reasons(drift: Drift, err: TextIO) -> None:
    """Why each left-out repair is left out, and the comparator's other warnings, one line each."""
    for found in drift.repairs:
        if isinstance(found, LeftOutOp):
            print(
                f"{PROG}: left out {found.repair.op_name}({qualified(found.repair)!r}): {one_line(found.why)}", file=err
            )
    for said in drift.warnings:
        print(f"{PROG}: warning: {one_line(said)}", file=err)


def check(config: Config, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the drift per versioned table; return 1 when there is any, else 0."""
    found: list[Drift] = []
    run_environment(config, lambda context, autogen: found.append(find_drift(autogen)))
    drift = found[0]
    print_table(drift_table(drift), ("TABLE", "REPAIR", "FOUND"), out)
    left_out_reasons(drift, err)
    drifting = {qualified(repair_of(r)) for r in drift.repairs}
    if not drift.repairs:
        print(f"no drift in {len(drift.tables)} versioned table(s)", file=out)
        return 0
    print(f"drift in {len(drifting)} of {len(drift.tables)} versioned table(s): run `{PROG} repair`", file=out)
    return DRIFT


# -- repair ----------------------------------------------------------------------------------------


def takes_batch_size(op_class: type[VersionedTableOp]) -> bool:
    """Whether ``op.<name>(...)`` of ``op_class`` takes ``batch_size=``."""
    return "batch_size" in inspect.signature(getattr(op_class, op_class.op_name)).parameters


def selected(drift: Drift, tables: Sequence[str]) -> list[Repair]:
    """Return the repairs of ``tables``, or all of them without ``tables``.

    A table is named ``name`` or ``schema.name``; a hierarchy's repair names each of its tables. An
    unknown name is an error."""
    if not tables:
        return drift.repairs
    known = {t.name for t in drift.tables} | {t.qualified_name for t in drift.tables}
    unknown = [t for t in tables if t not in known]
    if unknown:
        listed = ", ".join(sorted(t.qualified_name for t in drift.tables)) or "none"
        raise Failure(f"--table {', '.join(unknown)}: not a versioned table compared here (they are: {listed})")
    wanted = set(tables)

    def named(op: VersionedTableOp) -> set[str]:
        members = [op.table_name, *getattr(op, "joined", {})]
        return {*members, *(f"{op.schema}.{m}" for m in members if op.schema)}

    return [found for found in drift.repairs if named(repair_of(found)) & wanted]


def invoke(operations: Operations, op: VersionedTableOp, extra: dict[str, Any]) -> None:
    """``op.<name>('<table>', ...)`` as the generated migration calls it, ``extra`` overriding its
    arguments; without a ``batch_size`` in one transaction (no batch settings)."""
    arguments = {**op.arguments(), **extra}
    if arguments.get("batch_size") is None:
        for name in BATCH_ARGUMENTS:
            arguments.pop(name, None)
    getattr(operations, op.op_name)(op.table_name, **arguments)


def repair(config: Config, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the repairs (or print them: ``--sql``, ``--dry-run``); return 1 when some are left out, else 0."""
    extra: dict[str, Any] = {}
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise Failure(f"--batch-size {args.batch_size}: give a positive number of entities")
        lacking = [c.op_name for c in OP_CLASSES if not takes_batch_size(c)]
        if lacking:
            raise Failure(f"--batch-size: not supported yet by this version's operations ({', '.join(lacking)})")
        extra["batch_size"] = args.batch_size
    if args.batch_seconds is not None:
        if not seconds(args.batch_seconds, zero=True):
            raise Failure(
                f"--batch-seconds {args.batch_seconds:g}: give 0 to {MAX_SECONDS} seconds (0: batches of "
                f"batch_size entities however long they take)"
            )
        extra["batch_seconds"] = args.batch_seconds
    if args.sql and extra:
        raise Failure("--batch-size, --batch-seconds: batches run online only; --sql prints one transaction")
    result: list[list[Repair]] = []

    def work(context: MigrationContext, autogen_context: AutogenContext) -> None:
        drift = find_drift(autogen_context)
        repairs = selected(drift, args.table or ())
        result.append(repairs)
        left_out_reasons(Drift(drift.tables, repairs, drift.warnings), err)
        runnable = [op for op in repairs if isinstance(op, VersionedTableOp)]
        if not runnable:
            return
        if args.dry_run:
            print_python(autogen_context, repairs, extra, out)
        elif args.sql:
            print_sql(context, runnable, extra, out)
        else:
            apply(context, runnable, extra, out)

    run_environment(config, work)
    repairs = result[0]
    runnable = [op for op in repairs if isinstance(op, VersionedTableOp)]
    if not repairs:
        print("no drift: nothing to repair", file=out if not args.sql else err)
    elif runnable and not (args.dry_run or args.sql):
        print(f"committed {len(runnable)} repair(s)", file=out)
    left = len(repairs) - len(runnable)
    if left:
        print(f"{left} repair(s) left out: their drift stays (see above)", file=err)
        return DRIFT
    return 0


def print_python(
    autogen_context: AutogenContext, repairs: Sequence[Repair], extra: dict[str, Any], out: TextIO
) -> None:
    """The repairs as the generated migration's ``upgrade()`` writes them, findings as comments."""
    print("# what `alembic-versioning repair` would run (nothing was changed):", file=out)
    for found in repairs:
        for line in renderers.dispatch(found)(autogen_context, found):
            print(line, file=out)
    if extra:
        print(f"# each with {', '.join(f'{k}={v!r}' for k, v in extra.items())}", file=out)


def print_sql(
    context: MigrationContext, repairs: Sequence[VersionedTableOp], extra: dict[str, Any], out: TextIO
) -> None:
    """The repairs as an offline script for the database's dialect, in one transaction."""
    offline = MigrationContext.configure(
        dialect=context.dialect,
        opts={
            "as_sql": True,
            "output_buffer": out,
            "literal_binds": True,
            "transactional_ddl": True,  # BEGIN / COMMIT around it, SQLite too
            "target_metadata": context.opts.get("target_metadata"),
        },
    )
    operations = Operations(offline)
    with offline.begin_transaction():
        for op in repairs:
            said = f"{op.op_name}({qualified(op)!r}): {op.finding or ''}"
            offline.impl.static_output(f"-- {one_line(said)}")
            invoke(operations, op, {"batch_size": None})  # a script cannot read batch boundaries


def apply(context: MigrationContext, repairs: Sequence[VersionedTableOp], extra: dict[str, Any], out: TextIO) -> None:
    """Run the repairs in one transaction, as a migration step runs (committed when env.py's ends)."""
    operations = Operations(context)
    with context.begin_transaction(_per_migration=True):
        for number, op in enumerate(repairs, 1):
            print(f"[{number}/{len(repairs)}] {op.op_name}({qualified(op)!r}): {one_line(op.finding or '')}", file=out)
            out.flush()
            started = time.monotonic()
            invoke(operations, op, extra)
            print(f"    done in {time.monotonic() - started:.2f} s", file=out)
            out.flush()


# -- Command line ----------------------------------------------------------------------------------


def add_environment_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """Add ``alembic``'s own ``-c``, ``-n``, ``-x`` and ``--raiseerr`` to ``parser``.

    They go before or after the subcommand. ``defaults`` is for the main parser only: a
    subcommand's defaults would overwrite what was given before it."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "-c",
        "--config",
        action="append",
        default=default(None),
        help='the Alembic config file: ALEMBIC_CONFIG or "alembic.ini" by default; may name pyproject.toml '
        "(give -c twice for both)",
    )
    parser.add_argument(
        "-n", "--name", default=default("alembic"), help="the section of the .ini file (default: alembic)"
    )
    parser.add_argument(
        "-x",
        action="append",
        metavar="KEY=VALUE",
        default=default(None),
        help="an argument for env.py, as alembic's -x (e.g. -x url=postgresql://...)",
    )
    parser.add_argument(
        "--raiseerr", action="store_true", default=default(False), help="show the full traceback of an error"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check and repair SQLAlchemy-Continuum version tables in the project's own Alembic "
        "environment (its alembic.ini and env.py), without a revision file.",
        epilog="Exit status: 0 all is well, 1 drift found or left, 2 error.",
    )
    add_environment_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    add_environment_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "check",
        parents=[common],
        help="print the drift of each versioned table; exit status 1 on drift",
        description="Print, per versioned table, what autogenerate finds (the counts its comments give). "
        "Exit status 1 on drift: usable in CI and cron.",
    )
    fix = commands.add_parser(
        "repair",
        parents=[common],
        help="run the repairs autogenerate would write, without a revision file",
        description="Run the repairs `alembic revision --autogenerate` would write for the drift found (only "
        "these, never schema changes), in one transaction, reporting each.",
    )
    fix.add_argument(
        "--table", action="append", metavar="TABLE", help="repair only this table (name or schema.name); repeatable"
    )
    fix.add_argument("--batch-size", type=int, metavar="N", help="most entities per batch, passed to each operation")
    fix.add_argument(
        "--batch-seconds",
        type=float,
        metavar="S",
        help="seconds a batch aims to hold the writers' lock (default 0.5), passed to each batched repair "
        "(--batch-size, or a large table's)",
    )
    mode = fix.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the repairs as migration code; change nothing")
    mode.add_argument("--sql", action="store_true", help="print the repairs as a SQL script; change nothing")
    return parser


def make_config(args: argparse.Namespace) -> Config:
    """The project's config, found as ``alembic`` finds it (``-c``, ``ALEMBIC_CONFIG``, ``alembic.ini``)."""
    names = list(args.config or [])
    env = os.environ.get("ALEMBIC_CONFIG")
    toml = [n for n in names if Path(n).name == "pyproject.toml"]
    ini = [n for n in names if Path(n).name != "pyproject.toml"]
    if len(toml) > 1 or len(ini) > 1:
        raise Failure("-c: give at most one .ini file and one pyproject.toml")
    if not names and env:
        (toml if Path(env).name == "pyproject.toml" else ini).append(env)
    ini_file = ini[0] if ini else "alembic.ini"
    toml_file = toml[0] if toml else "pyproject.toml"
    for given in names:
        if not Path(given).is_file():
            raise Failure(f"-c {given}: no such file")
    if not Path(ini_file).is_file() and not Path(toml_file).is_file():
        raise Failure(f"no {ini_file} here: run in the project's directory or give -c path/to/alembic.ini")
    kwargs: dict[str, Any] = {"ini_section": args.name, "cmd_opts": args}
    if "toml_file" in inspect.signature(Config).parameters:  # Alembic >= 1.16
        kwargs["toml_file"] = toml_file
    return Config(ini_file, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        config = make_config(args)
        return check(config, args, out, err) if args.command == "check" else repair(config, args, out, err)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was committed", file=err)
        return 130
    except Exception as error:
        if args.raiseerr:
            raise
        print(f"{PROG}: error: {describe(error)}", file=err)
        return ERROR


def describe(error: Exception) -> str:
    """Return ``error`` on one line: its message's first line.

    An error other than ours or Alembic's is also named by type, with a pointer to its traceback."""
    lines = str(error).strip().splitlines()
    text = one_line(lines[0]) if lines else ""
    if isinstance(error, (Failure, CommandError)):
        return text
    return f"{type(error).__name__}{': ' if text else ''}{text} (run with --raiseerr for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
