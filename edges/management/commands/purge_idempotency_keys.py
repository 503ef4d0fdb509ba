"""Delete stored API idempotency records and claimed web form tokens older than a retention period.

The worker runs the same purge daily (edges.worker.schedule, "retention"); this is the operator's
way to run it now or with another period.
"""

from django.core.management.base import BaseCommand, CommandError

from edges.worker.upkeep import retention_purge


class Command(BaseCommand):
    help = ("Delete API idempotency records and claimed web form tokens older than --days (default 7); "
            "a replay after that is a new request.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=7.0, help="keep records this many days (default 7)")

    def handle(self, *args, days: float, **options):
        if days < 1:
            raise CommandError("--days must be at least 1: clients retry within hours, not minutes.")
        purged = retention_purge(days=days)
        self.stdout.write(f"Deleted {purged['idempotency_records']} idempotency record(s) older than {days:g} days.")
        self.stdout.write(f"Deleted {purged['form_tokens']} web form token(s) older than {days:g} days.")
