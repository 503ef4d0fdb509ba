"""`manage.py simulate`: a realistic stretch of support work through the product's own steps."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from edges.demo.simulation import simulate
from edges.demo.simulation_crews import CREWS, default_workers
from edges.demo.simulation_report import format_report


def _day(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as error:
        raise CommandError(f"--start must be a date as YYYY-MM-DD, not {value!r}.") from error


class Command(BaseCommand):
    help = "Simulate DAYS days of support work with CASES cases, through the services, ending before now."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="How many days to simulate (default 30).")
        parser.add_argument("--cases", type=int, default=10_000, help="How many cases arrive (default 10,000).")
        parser.add_argument("--seed", type=int, default=7, help="The random generator's seed (default 7).")
        parser.add_argument("--start", type=_day, default=None,
                            help="First day (UTC), YYYY-MM-DD; default: so that the period ends yesterday, "
                                 "or where the audit chain ends.")
        parser.add_argument("--ai-share", type=float, default=0.2,
                            help="Share of all cases offered to an AI agent first (default 0.2).")
        parser.add_argument("--workers", type=int, default=None,
                            help=f"Processes running the simulated crews side by side, 1 to {CREWS} (default: "
                                 "one a core on PostgreSQL, 1 on SQLite). With 1 a seed replays exactly.")

    def handle(self, *args, days, cases, seed, start, ai_share, workers, **options):
        if not 1 <= days <= 366:
            raise CommandError("--days must be between 1 and 366.")
        if not 1 <= cases <= 200_000:
            raise CommandError("--cases must be between 1 and 200,000.")
        if workers is not None and not 1 <= workers <= CREWS:
            raise CommandError(f"--workers must be between 1 and {CREWS}.")
        try:
            report = simulate(days=days, cases=cases, seed=seed, start=start, ai_share=ai_share,
                              workers=workers or default_workers())
        except ValueError as error:
            raise CommandError(str(error)) from error
        # Fresh statistics for what was just written: without them the analytics pages' plans (and
        # PostgreSQL's JIT) are priced for empty tables (docs/performance.md, "Outcomes").
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.stdout.write(format_report(report))
        return None
