"""The distributions: ``python -m build`` makes an sdist and a wheel from the checkout's files.

The sdist holds exactly the files git tracks (the package, its tests and their helpers, the demo,
docs, scripts and benchmarks), so that its test suite runs from it: it unpacks, its tests collect
and the demo's tests pass with the package imported from it. The wheel holds the package alone,
with its license, valid classifiers and the ``alembic.plugins`` entry point; installed with pip in a
fresh virtualenv, it imports, Alembic finds the plugin, and the demo runs against it.

The build runs once per session in a copy of the checkout's files (tracked, or new and not
ignored), so nothing is written to the checkout. pip and ``build`` take their packages from PyPI
(cached by pip after the first run).
"""

from __future__ import annotations

import email
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAME = "alembic_versioning"
DEMO_OK = "OK: version tables repaired"


def git_files() -> list[str] | None:
    """The checkout's files (tracked, or untracked and not ignored); ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return sorted({f for f in out.decode().split("\0") if f and (ROOT / f).is_file()})


FILES = git_files()
pytestmark = pytest.mark.skipif(FILES is None, reason="compares the distributions with a git checkout")


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; its output. A failure shows the output."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel ``python -m build`` makes (the wheel is built from the sdist)."""
    assert FILES is not None
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in FILES:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    run(sys.executable, "-m", "build", "--outdir", out, src)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_sdist_holds_the_checkouts_files(dists: tuple[Path, Path]) -> None:
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        members = [m.name for m in tar.getmembers() if m.isfile()]
    top = sdist.name.removesuffix(".tar.gz")
    assert all(m.startswith(top + "/") for m in members), members
    names = {m.removeprefix(top + "/") for m in members}
    generated = {n for n in names if n in ("PKG-INFO", "setup.cfg") or n.startswith(f"{NAME}.egg-info/")}
    assert sorted(names - generated) == FILES


def test_wheel_holds_the_package_and_its_metadata(dists: tuple[Path, Path]) -> None:
    import trove_classifiers

    _, wheel = dists
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        metadata = email.message_from_bytes(whl.read(f"{dist_info}/METADATA"))
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    assert FILES is not None
    package = {f for f in FILES if f.startswith(f"{NAME}/")}
    assert names - {n for n in names if n.startswith(dist_info + "/")} == package
    assert f"{NAME}/py.typed" in package
    assert f"{dist_info}/licenses/LICENSE" in names
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier")
    assert classifiers and "Typing :: Typed" in classifiers
    assert [c for c in classifiers if c not in trove_classifiers.classifiers] == []
    assert "[alembic.plugins]\nalembic_versioning.drift = alembic_versioning.plugin" in entry_points


def test_installed_wheel_imports_registers_the_plugin_and_runs_the_demo(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    """pip installs the wheel (with the ``demo`` extra) in a fresh virtualenv, nothing else; its
    ``alembic-versioning`` console script checks and repairs the demo project."""
    _, wheel = dists
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    run(*pip, "install", "--quiet", f"{wheel}[demo]")
    check = (
        "import importlib.metadata as md, pathlib, sys, alembic, alembic_versioning\n"
        "(ep,) = [e for e in md.entry_points(group='alembic.plugins') if e.name == 'alembic_versioning.drift']\n"
        "module = ep.load()\n"
        "assert pathlib.Path(module.__file__).is_relative_to(sys.prefix), module.__file__\n"
        "assert callable(module.setup)\n"
        "print(alembic_versioning.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert run(python, "-c", check, cwd=tmp_path, env=env).startswith(str(venv))
    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "examples" / "demo", demo, ignore=shutil.ignore_patterns("*.db", "__pycache__"))
    generated = tmp_path / "generated"
    generated.mkdir()
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    out = run(python, demo / "run_demo.py", "--url", url, "--generated", generated, cwd=tmp_path, env=env)
    assert out.splitlines()[-1].startswith(DEMO_OK), out

    # the console script pip installed, in the demo project (its alembic.ini, its own demo.db)
    script = venv / "bin" / "alembic-versioning"
    (demo / "migrations" / "generated").mkdir(exist_ok=True)
    run(venv / "bin" / "alembic", "upgrade", "head", cwd=demo, env=env)
    with sqlite3.connect(demo / "demo.db") as raw:  # a row written behind Continuum's back
        raw.execute("INSERT INTO article (id, title, status) VALUES (77, 'raw', 'draft')")
    checked = subprocess.run([script, "check"], cwd=demo, env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1 and "1 live row without a current version" in checked.stdout, checked
    assert run(script, "repair", cwd=demo, env=env).splitlines()[-1] == "committed 1 repair(s)"
    assert run(script, "check", cwd=demo, env=env).splitlines()[-1] == "no drift in 2 versioned table(s)"


def test_sdist_unpacks_with_its_tests(dists: tuple[Path, Path], tmp_path: Path) -> None:
    """Its whole suite collects, and the demo's tests pass, with the package imported from the sdist."""
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    unpacked = tmp_path / sdist.name.removesuffix(".tar.gz")
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    imported = run(sys.executable, "-c", f"import {NAME}; print({NAME}.__file__)", cwd=unpacked, env=env)
    assert Path(imported.strip()).is_relative_to(unpacked), imported
    pytest_ = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'basetemp'}"]
    collected = run(*pytest_, "--collect-only", "-q", cwd=unpacked, env=env)
    assert not re.search(r"^ERROR|\b\d+ errors?\b", collected, re.M), collected  # collection errors
    tests = [line for line in collected.splitlines() if "::" in line]
    assert {line.split("::")[0] for line in tests} >= {"tests/test_demo.py", "tests/test_packaging.py"}
    demo = "tests/test_demo.py::test_demo_repairs_history_and_runs_the_autogenerate_loop"
    run(*pytest_, "-q", demo, "tests/test_demo.py::test_demo_leaves_the_checkout_clean", cwd=unpacked, env=env)
