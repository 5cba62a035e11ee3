"""Raw SQL in the tests, written once for every dialect."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

_QUOTED = re.compile(r'"((?:[^"]|"")*)"')


def quoted_sql(bind: Any, statement: str) -> str:
    """``statement`` with its double-quoted names (standard SQL, as PostgreSQL and SQLite read
    them) quoted as ``bind``'s dialect quotes names: MariaDB's backticks."""
    quote = bind.dialect.identifier_preparer.quote_identifier
    return _QUOTED.sub(lambda m: quote(m.group(1).replace('""', '"')), statement)


def sql_text(bind: Any, statement: str) -> sa.TextClause:
    """:func:`sqlalchemy.text` of :func:`quoted_sql`."""
    return sa.text(quoted_sql(bind, statement))
