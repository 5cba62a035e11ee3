"""Sphinx configuration for alembic-versioning."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

# Document the checkout this file belongs to, installed or not.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Registers the operations on alembic.operations.Operations, which operations.rst documents.
import alembic_versioning  # noqa: E402,F401

with open(ROOT / "pyproject.toml", "rb") as f:
    _pyproject = tomllib.load(f)["project"]

project = "alembic-versioning"
author = "alembic-versioning contributors"
copyright = "alembic-versioning contributors"
release = _pyproject["version"]
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}

nitpicky = False
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
