"""A virtual clock for the demo seed: history is written at the instants it happened.

The services take the time from `django.utils.timezone.now()`, as they must in production. The seed
replays months of work in seconds by moving that clock forward through the plan's instants. It
never moves backwards, so the audit events' timestamps grow in the order they were written (on
PostgreSQL the sealer numbers them after commit, so along `seq` they may step back by a moment),
and it never passes the real time. Development only: production code never imports this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from unittest import mock

from django.utils import timezone


class VirtualClock:
    """A clock that only moves forward, and only when told to."""

    def __init__(self, start: datetime):
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance_to(self, instant: datetime) -> datetime:
        """Move to `instant`, unless the clock is already past it; return the time now."""
        self.at = max(self.at, instant)
        return self.at


@contextmanager
def running_on(clock: VirtualClock) -> Iterator[VirtualClock]:
    """Make `timezone.now()` answer with `clock` inside the block (this process only)."""
    with mock.patch.object(timezone, "now", clock.now):
        yield clock
