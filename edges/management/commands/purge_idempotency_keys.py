"""Delete stored API idempotency records and claimed web form tokens older than a retention period (run daily)."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from authority.models import IdempotencyRecord
from edges.models import FormToken


class Command(BaseCommand):
    help = ("Delete API idempotency records and claimed web form tokens older than --days (default 7); "
            "a replay after that is a new request.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=7.0, help="keep records this many days (default 7)")

    def handle(self, *args, days: float, **options):
        if days < 1:
            raise CommandError("--days must be at least 1: clients retry within hours, not minutes.")
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} idempotency record(s) older than {days:g} days.")
        tokens, _ = FormToken.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {tokens} web form token(s) older than {days:g} days.")
