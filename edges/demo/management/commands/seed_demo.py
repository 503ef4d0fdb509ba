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

    def handle(self, *args, scale: float, **options):
        if not 0 < scale <= 20:
            raise CommandError("--scale must be above 0 and at most 20.")
        report = seed_demo(scale=scale)
        self.stdout.write(report.summary())
