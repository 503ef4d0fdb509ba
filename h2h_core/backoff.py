"""Retry delays of jobs that talk to the outside world (webhooks, mail)."""

from __future__ import annotations

import random
from datetime import timedelta

JITTER = 0.1


def backoff_delay(attempts: int, *, base: float = 30.0, cap: float = 3600.0) -> timedelta:
    """Return how long to wait after failed attempt number `attempts` (1-based).

    `base` seconds, doubling with each attempt, capped at `cap`, plus up to 10 % random jitter so
    that deliveries which failed together (an endpoint that was down) do not all retry together.
    """
    delay = min(base * 2 ** max(attempts - 1, 0), cap)
    return timedelta(seconds=delay * (1 + random.uniform(0, JITTER)))  # noqa: S311 (not cryptographic)
