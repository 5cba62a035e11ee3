"""Sphinx configuration for alembic-versioning."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

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

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "myst_parser"]

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}

# Every cross-reference must resolve: the -W build (tests/test_docs.py, Read the Docs) fails otherwise.
nitpicky = True
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"page_width": "1180px"}  # alabaster's 940px leaves code a 640px column at 1280px
html_static_path = ["_static"]  # custom.css

# The changelog is CHANGELOG.md, parsed by MyST (changelog.rst includes it); no other Markdown.
source_suffix = {".rst": "restructuredtext"}

# Links to Python, SQLAlchemy and Alembic. Their inventories come from docs/_inventories/ when it
# holds them (scripts/docs-inventories extracts them from Debian's documentation packages, with no
# access to the projects' sites: scripts/test runs it), else from the sites themselves (Read the
# Docs); the links always point at the sites.
INVENTORIES = Path(__file__).resolve().parent / "_inventories"


def _inventory(url: str, name: str) -> tuple[str, str | None]:
    local = INVENTORIES / f"{name}.inv"
    return url, str(local) if local.is_file() else None


_MISSING = sorted(n for n in ("python", "sqlalchemy", "alembic") if not (INVENTORIES / f"{n}.inv").is_file())
if _MISSING:
    print(
        f"docs/_inventories/ lacks {', '.join(_MISSING)}: fetching from the sites (offline: scripts/docs-inventories)"
    )

intersphinx_mapping = {
    "python": _inventory("https://docs.python.org/3/", "python"),
    "sqlalchemy": _inventory("https://docs.sqlalchemy.org/en/20/", "sqlalchemy"),
    "alembic": _inventory("https://alembic.sqlalchemy.org/en/latest/", "alembic"),
}
# Without a local inventory and without network access, fail fast (a warning, so -W fails) rather
# than hang.
intersphinx_timeout = 10

#: Type hints name classes by the module that defines them; their projects document them under
#: their public names. A reference to the first is resolved as one to the second.
PUBLIC_NAMES = {
    "sqlalchemy.sql.schema.Table": "sqlalchemy.schema.Table",
    "sqlalchemy.engine.base.Connection": "sqlalchemy.engine.Connection",
    "sqlalchemy.sql.type_api.TypeEngine": "sqlalchemy.types.TypeEngine",
    "Operations": "alembic.operations.Operations",
    "Plugin": "alembic.runtime.plugins.Plugin",  # plugin.setup's hint, imported under TYPE_CHECKING
}

# References left unresolved on purpose, each to a class its project does not document:
nitpick_ignore = [
    # Alembic documents no exception classes (VersioningError's base, named in its docstring).
    ("py:class", "alembic.util.exc.CommandError"),
    ("py:class", "alembic.util.CommandError"),
    # Alembic's plugin API (1.18+) is missing from older inventories, such as Debian's (1.8).
    ("py:class", "Plugin"),
]


def _public_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a reference to one of ``PUBLIC_NAMES`` through intersphinx, as its public name."""
    target = PUBLIC_NAMES.get(node.get("reftarget"))
    if target is None or node.get("refdomain") != "py":
        return None
    from sphinx.ext.intersphinx import missing_reference

    public = node.deepcopy()
    public["reftarget"] = target
    return missing_reference(app, env, public, contnode)


def setup(app: Any) -> None:
    app.connect("missing-reference", _public_name)
