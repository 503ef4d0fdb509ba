#!/usr/bin/env python
"""Time the analytics reports over a large history, on a throwaway database.

    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/analytics.py --decisions 50000

Like bench/replay.py (whose history it reuses: --agents agents of one team, --cases cases,
--decisions refunds, a request and a refusal for every eighth decision, over the last 90 days) it
never touches the database DATABASE_URL names. It then resolves three cases in four (a rating on
most, a reopening on some) and times each report the consoles show, as the page asks for it: the
abuse findings (last 30 and 90 days), the limit recommendations (the team), the outcomes by moment
that matters and AI beside people (the team, last 90 days). Three runs each: best and median wall
time, client CPU, statements and their execute time, as a Markdown table. The page adds its
session, user and template to these (docs/performance.md gives page times where measured).
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers)
import replay  # noqa: E402  (the history)

base.BENCH_DATABASE = "h2h_bench_analytics"


def resolve_most(seed: int = 17) -> int:
    """Resolve three cases in four, rate most of them and reopen a few (bulk: the reports only read)."""
    from django.utils import timezone

    from h2h_core.models import Case, CaseEvent, CaseStatus

    rng = random.Random(seed)
    now = timezone.now()
    resolved, events = [], []
    for case in Case.objects.only("pk", "opened_at", "owner_id"):
        if rng.random() < 0.75:
            case.status = CaseStatus.RESOLVED
            case.resolved_at = now - timedelta(seconds=rng.randint(3600, 88 * 86400))
            case.rating = rng.choice((None, 3, 4, 4, 5, 5, 5, 2, 1))
            resolved.append(case)
            if rng.random() < 0.05:
                events.append(CaseEvent(case=case, at=case.resolved_at + timedelta(hours=2), actor_id=case.owner_id,
                                        kind=CaseEvent.Kind.REOPENED, text="bench reopening"))
    Case.objects.bulk_update(resolved, ["status", "resolved_at", "rating"], batch_size=5000)
    CaseEvent.objects.bulk_create(events, batch_size=5000)
    return len(resolved)


def timed(work) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    walls, cpus = [], []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            wall, cpu = time.perf_counter(), time.process_time()
            work()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {"best": min(walls), "median": sorted(walls)[1], "cpu": min(cpus),
            "queries": len(queries.captured_queries),
            "sql": sum(float(query["time"]) for query in queries.captured_queries)}


def main(argv=None) -> None:
    args = replay.parse_args(argv)
    database = base.ThrowawayDatabase(os.environ.get("DATABASE_URL", "sqlite://"), keep=args.keep)
    database.create()
    try:
        base.configure_django(database)
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        from authority.reports.abuse import abuse_findings
        from authority.reports.ai_vs_human import ai_vs_human
        from authority.reports.outcomes import outcomes
        from authority.reports.recommendations import recommendations
        from h2h_core.models import Team

        call_command("migrate", interactive=False, verbosity=0)
        started = time.perf_counter()
        replay.seed(args)
        resolved = resolve_most()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        base.note(f"Seeded {args.decisions:,} decisions, {resolved:,} resolved cases in "
                  f"{time.perf_counter() - started:.1f} s.")
        team, now = Team.objects.get(slug="bench"), timezone.now()
        reports = (
            ("abuse findings, last 30 days", lambda: abuse_findings(since=now - timedelta(days=30), until=now)),
            ("abuse findings, last 90 days", lambda: abuse_findings(since=now - timedelta(days=90), until=now)),
            ("limit recommendations, the team", lambda: recommendations(teams=[team], now=now)),
            ("outcomes, the team, last 90 days", lambda: outcomes(teams=[team], now=now)),
            ("AI beside people, the team, last 90 days", lambda: ai_vs_human(teams=[team], now=now)),
        )
        print(f"| report ({database.vendor}) | wall best / median | client CPU | statements | SQL execute |")
        print("| --- | --- | --- | --- | --- |")
        for label, work in reports:
            result = timed(work)
            print(f"| {label} | {result['best'] * 1000:.0f} / {result['median'] * 1000:.0f} ms | "
                  f"{result['cpu'] * 1000:.0f} ms | {result['queries']} | {result['sql'] * 1000:.0f} ms |")
    finally:
        from django.db import connections

        connections.close_all()
        database.remove()


if __name__ == "__main__":
    main()
