"""`manage.py deliver_webhooks`: deliver executed decisions to the configured webhook endpoints.

Safe to run on several machines at once (see authority/webhooks.py). Run `--once` from a
scheduler (cron, a systemd timer) or `--loop` as a long-running worker.
"""

import signal

from django.core.management.base import BaseCommand, CommandError

from authority import webhooks


class Command(BaseCommand):
    help = "Deliver outbox messages of executed decisions to active webhook endpoints (signed, retried, at least once)."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--once", action="store_true", help="Deliver everything due now, then exit (the default).")
        mode.add_argument("--loop", action="store_true", help="Keep delivering until stopped (SIGINT or SIGTERM).")
        parser.add_argument("--interval", type=float, default=5.0,
                            help="Seconds to wait between passes with --loop (default 5).")
        parser.add_argument("--timeout", type=float, default=webhooks.DEFAULT_TIMEOUT,
                            help=f"Seconds to wait for an endpoint to answer (default {webhooks.DEFAULT_TIMEOUT:g}).")
        parser.add_argument("--batch-size", type=int, default=webhooks.BATCH,
                            help=f"Deliveries claimed per batch (default {webhooks.BATCH}).")

    def handle(self, *args, once: bool, loop: bool, interval: float, timeout: float, batch_size: int, **options):
        if not 0 < timeout <= 120:
            raise CommandError("--timeout must be above 0 and at most 120 seconds.")
        if not 1 <= batch_size <= 1000:
            raise CommandError("--batch-size must be between 1 and 1000.")
        if interval < 0:
            raise CommandError("--interval cannot be negative.")
        if not loop:
            report = webhooks.deliver_due(batch=batch_size, timeout=timeout)
            self._print(report)
            return
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"Delivering webhooks every {interval:g} s; stop with Ctrl-C or SIGTERM.")
        webhooks.deliver_forever(interval=interval, batch=batch_size, timeout=timeout, stop=lambda: bool(stopping),
                                 on_report=lambda report: self._print(report, quiet_when_idle=True))
        self.stdout.write("Stopped.")

    def _print(self, report: webhooks.DeliveryReport, *, quiet_when_idle: bool = False) -> None:
        if quiet_when_idle and not (report.fanned_out or report.delivered or report.failed):
            return
        self.stdout.write(report.summary())
        for error in report.errors:
            self.stderr.write(f"  {error}")
