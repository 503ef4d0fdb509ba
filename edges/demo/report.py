"""What a seed run made, and how to make its many small commits cheap on SQLite."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection

SUMMARY_LABELS = (
    ("users", "user", "users"), ("roles set", "role assignment", "role assignments"), ("teams", "team", "teams"),
    ("team members", "team member", "team members"), ("team managers", "team manager", "team managers"),
    ("exchange rates", "exchange rate", "exchange rates"), ("grants", "grant", "grants"),
    ("grants confirmed", "confirmation", "confirmations"), ("grant changes", "grant change", "grant changes"),
    ("customers", "customer", "customers"), ("cases", "case", "cases"), ("case steps", "case step", "case steps"),
    ("decisions", "decision", "decisions"), ("refusals", "refused decision", "refused decisions"),
    ("authority requests", "authority request", "authority requests"),
    ("AI agents", "AI agent", "AI agents"), ("AI decisions", "AI decision", "AI decisions"),
    ("AI hand-offs", "hand-off to a person", "hand-offs to a person"),
    ("skipped", "step skipped by the rules", "steps skipped by the rules"),
    ("simulated cases", "simulated case", "simulated cases"),
)


@dataclass
class SeedReport:
    created: Counter = field(default_factory=Counter)
    audit_events: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if not sum(self.created.values()):
            return f"Demo data already seeded: nothing to do ({self.seconds:.1f} s)."
        parts = [f"{self.created[key]} {singular if self.created[key] == 1 else plural}"
                 for key, singular, plural in SUMMARY_LABELS if self.created[key]]
        return f"Seeded {', '.join(parts)}; {self.audit_events} audit events in {self.seconds:.1f} s."


@contextmanager
def sqlite_commits_without_fsync() -> Iterator[None]:
    """On SQLite, skip the fsync of each of the ~1,700 commits while seeding (this connection only).

    The commits dominate the run on a busy disk; demo data needs no protection against a power cut
    in the middle of seeding (run it again), and the setting is restored afterwards.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        previous = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA synchronous = OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous = {previous}")
