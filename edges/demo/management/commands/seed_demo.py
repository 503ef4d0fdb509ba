"""`manage.py seed_demo`: the demo organisation, built through the services (safe to run again)."""

from django.core.management.base import BaseCommand, CommandError

from edges.demo.seed import seed_demo


class Command(BaseCommand):
    help = "Create the demo organisation (people, teams, grants, customers, cases) where it is missing."

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale", type=float, default=1.0,
            help="Multiply the number of customers (200) and cases (300); the story cases are always there.",
        )
        parser.add_argument(
            "--history-cases", type=int, default=None,
            help="Cases simulated over the three months before the demo's history, on a first run "
                 "(default 450 times the scale; 0: none).",
        )

    def handle(self, *args, scale: float, history_cases: int | None = None, **options):
        if not 0 < scale <= 20:
            raise CommandError("--scale must be above 0 and at most 20.")
        if history_cases is not None and not 0 <= history_cases <= 20_000:
            raise CommandError("--history-cases must be between 0 and 20,000.")
        report = seed_demo(scale=scale, history_cases=history_cases)
        self.stdout.write(report.summary())
