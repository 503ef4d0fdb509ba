"""`manage.py deliver_webhooks --once`: attempt every due webhook delivery now, in this process.

An operator's tool: deliveries are normally attempted by `webhook_deliver` jobs on the `webhooks`
queue (see authority/webhooks.py). Each attempt here claims its delivery exactly as a job does, so
running this beside the workers never sends one twice; failures are retried and dead-lettered as
usual.
"""

from django.core.management.base import BaseCommand, CommandError

from authority import webhooks


class Command(BaseCommand):
    help = "Attempt every due webhook delivery now, synchronously (the workers normally do this as jobs)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Attempt what is due now, then exit (the only mode).")
        parser.add_argument("--timeout", type=float, default=webhooks.DEFAULT_TIMEOUT,
                            help=f"Seconds to wait for an endpoint to answer (default {webhooks.DEFAULT_TIMEOUT:g}).")
        parser.add_argument("--limit", type=int, default=1000,
                            help="Attempt at most this many deliveries (default 1000).")

    def handle(self, *args, once: bool, timeout: float, limit: int, **options):
        if not 0 < timeout <= 120:
            raise CommandError("--timeout must be above 0 and at most 120 seconds.")
        if not 1 <= limit <= 100_000:
            raise CommandError("--limit must be between 1 and 100000.")
        report = webhooks.deliver_due(timeout=timeout, limit=limit)
        self.stdout.write(report.summary())
        for error in report.errors:
            self.stderr.write(f"  {error}")
