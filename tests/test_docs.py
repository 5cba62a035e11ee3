"""The Sphinx documentation in ``docs/`` builds without warnings (the ``docs`` extra installs Sphinx)."""

from __future__ import annotations

from pathlib import Path

from sphinx.cmd.build import build_main

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    assert build_main(["-W", "-b", "html", "-q", str(DOCS), str(tmp_path)]) == 0
