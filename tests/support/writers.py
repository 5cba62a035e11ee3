"""Migrations run again and again while application threads keep writing (concurrency tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence


def migrate_while_writing(
    threads: Sequence[threading.Thread],
    stop: threading.Event,
    migrate: Callable[[], None],
    failures: list[str],
    *,
    errors: type[Exception] | tuple[type[Exception], ...],
    seconds: float,
    deadline: float,
    minimum: int = 3,
) -> int:
    """How many times ``migrate`` ran while the writer ``threads`` (started here) wrote: at least
    ``minimum`` times and ``seconds`` long, whatever the machine's load, but no longer than
    ``deadline`` seconds. A migration failing with ``errors`` is recorded in ``failures``; then
    ``stop`` is set and the writers are joined."""
    for thread in threads:
        thread.start()
    migrations, start = 0, time.monotonic()
    try:
        while (migrations < minimum or time.monotonic() < start + seconds) and time.monotonic() < start + deadline:
            try:
                migrate()
                migrations += 1
            except errors as error:
                failures.append(f"migration: {getattr(error, 'orig', error)}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(deadline)
    return migrations
