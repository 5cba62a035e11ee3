"""Text written into a one-line comment of a script: SQL ``--`` lines and Python ``#`` lines."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Return ``text`` made inert inside a one-line comment.

    Each character that is not printable (line breaks such as ``\\n`` and ``\\r``, tabs, other
    control characters, Unicode separators) and the backslash are written as Python's ``repr``
    writes them (``\\n``, ``\\x00``, ``\\u2028``, ``\\\\``). So nothing in a name ends the comment
    (the rest would be SQL, a psql or sqlite3 command, or Python), and the escapes read back
    unambiguously."""
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)
