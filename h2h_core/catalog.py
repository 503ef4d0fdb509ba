"""Reference data kept in each process for a few seconds: the organisation, the authority kinds.

These tables hold a handful of rows that change rarely (a migration, a data fix), while every
decision and check reads them. Each process keeps its own copy and reads the whole table again
once the copy is older than H2H_CATALOG_SECONDS (default 5). That is the whole invalidation, and it
needs nothing shared beyond the database: a change made anywhere is seen by every process of every
app server within H2H_CATALOG_SECONDS, and at once by a process that calls `forget()` (or
`catalog_forget_all()`) after making it. We reread the rows rather than a generation number: with
tables this small the reread costs the same one statement the generation read would, and a change
made by any path (a migration, the shell, SQL) needs no bump to be seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings

T = TypeVar("T")
DEFAULT_SECONDS = 5.0
_all: list[Cached] = []


def catalog_seconds() -> float:
    """How long a process may answer from its copy: the bound on how late it sees a change."""
    return float(getattr(settings, "H2H_CATALOG_SECONDS", DEFAULT_SECONDS))


class Cached(Generic[T]):
    """One table's rows as `load` returns them, kept in this process for at most catalog_seconds()."""

    def __init__(self, load: Callable[[], T]):
        self._load = load
        self._entry: tuple[float, T] | None = None  # (read at, value): replaced whole, never mutated
        _all.append(self)

    def get(self) -> T:
        entry = self._entry
        now = time.monotonic()
        if entry is not None and now - entry[0] < catalog_seconds():
            return entry[1]
        value = self._load()
        self._entry = (now, value)
        return value

    def forget(self) -> None:
        self._entry = None


def catalog_forget_all() -> None:
    """Drop every process copy (after changing reference data here, and between tests)."""
    for cached in _all:
        cached.forget()
