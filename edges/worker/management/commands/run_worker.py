"""`manage.py run_worker`: run jobs, and enqueue the periodic ones, until stopped.

Run one or more on every machine that should do background work; they share the database queue
(each job runs once: a worker takes it with `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, an
exclusive transaction on SQLite) and the schedule (each periodic slot is enqueued once, see
edges.worker.schedule). One worker runs one job at a time, so the number of workers bounds the
concurrency of outgoing webhooks and mail.

Every worker also runs the audit sealer (h2h_core/audit/sealer.py) in a thread: it links committed
audit events into the hash chain, every `--seal-interval` seconds while there is work, backing off
to `--seal-idle` seconds when there is none. Sealers on many workers take turns (an advisory lock):
more workers only make the sealing survive the loss of one.
"""

from __future__ import annotations

import logging
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections, connections
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from edges.worker.schedule import schedule_due
from h2h_core.audit.sealer import audit_seal
from h2h_core.request_context import log_context

logger = logging.getLogger("h2h.worker")


class JobWorker(Worker):
    """django-tasks-db's worker, with each job's log lines and audit events under the id `job-<id>`."""

    def run_task(self, db_task_result) -> None:
        with log_context(request_id=f"job-{db_task_result.id}"):
            super().run_task(db_task_result)


class Scheduler(threading.Thread):
    """Calls `schedule_due` every `interval` seconds, on its own database connection."""

    def __init__(self, *, interval: float):
        super().__init__(name="h2h-scheduler", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                enqueued = schedule_due()
                if enqueued:
                    logger.info("Enqueued periodic jobs: %s", ", ".join(enqueued))
            except DatabaseError:  # the database is away for a moment: try again at the next tick
                logger.exception("Could not enqueue the periodic jobs")
            finally:
                close_old_connections()
            self.stopping.wait(self.interval)
        connections.close_all()


class Sealer(threading.Thread):
    """Seals audit events into the chain, on its own database connection, until stopped."""

    def __init__(self, *, interval: float, idle: float):
        super().__init__(name="h2h-sealer", daemon=True)
        self.interval, self.idle = interval, idle
        self.stopping = threading.Event()

    def run(self) -> None:
        wait = self.interval
        while not self.stopping.is_set():
            try:
                # Back off while there is nothing to seal; at once back to the short period when there is.
                wait = self.interval if audit_seal() else min(self.idle, wait * 2)
            except DatabaseError:  # the database is away for a moment: try again at the next tick
                logger.exception("Could not seal audit events")
                wait = self.idle
            finally:
                close_old_connections()
            self.stopping.wait(wait)
        connections.close_all()


class Command(BaseCommand):
    help = "Run background jobs (timers, webhooks, mail, audit, exports) and enqueue the periodic ones."

    def add_arguments(self, parser):
        parser.add_argument("--queues", default="*",
                            help="Comma-separated queues to take jobs from (default: all).")
        parser.add_argument("--interval", type=float, default=1.0,
                            help="Seconds to wait when no job is ready (default 1).")
        parser.add_argument("--schedule-interval", type=float, default=5.0,
                            help="Seconds between two looks at the periodic schedule (default 5).")
        parser.add_argument("--no-schedule", action="store_true",
                            help="Only run jobs; another worker enqueues the periodic ones.")
        parser.add_argument("--seal-interval", type=float, default=0.25,
                            help="Seconds between two runs of the audit sealer while it finds work (default 0.25).")
        parser.add_argument("--seal-idle", type=float, default=1.0,
                            help="Seconds between two runs of the audit sealer when idle (default 1).")
        parser.add_argument("--no-seal", action="store_true",
                            help="Do not run the audit sealer here; other workers do.")
        parser.add_argument("--batch", action="store_true",
                            help="Run the jobs ready now (and the periodic ones due now), then exit.")
        parser.add_argument("--worker-id", default="", help="A name unique across the workers (default: random).")

    def handle(self, *args, queues: str, interval: float, schedule_interval: float, no_schedule: bool,
               seal_interval: float, seal_idle: float, no_seal: bool, batch: bool, worker_id: str, **options):
        if interval < 0 or schedule_interval <= 0 or seal_interval <= 0 or seal_idle < seal_interval:
            raise CommandError("--interval cannot be negative, --schedule-interval and --seal-interval must be "
                               "positive, and --seal-idle at least --seal-interval.")
        worker_id = worker_id or get_random_string(12)
        if len(worker_id) > 64:
            raise CommandError("--worker-id must be at most 64 characters.")
        worker = JobWorker(queue_names=[queue.strip() for queue in queues.split(",") if queue.strip()],
                           interval=interval, batch=batch, backend_name="default", startup_delay=not batch,
                           max_tasks=None, worker_id=worker_id, excluded_queue_names=[])
        if batch:
            if not no_seal:
                audit_seal()
            if not no_schedule:
                schedule_due()
            worker.run()
            if not no_seal:
                audit_seal()  # what the jobs just recorded
            return
        scheduler = sealer = None
        if not no_schedule:
            scheduler = Scheduler(interval=schedule_interval)
            scheduler.start()
        if not no_seal:
            sealer = Sealer(interval=seal_interval, idle=seal_idle)
            sealer.start()
        self.stdout.write(f"Worker {worker_id} taking jobs from queue(s) {queues}"
                          f"{'' if no_schedule else ', enqueuing periodic jobs'}; stop with Ctrl-C or SIGTERM.")
        worker.configure_signals()
        try:
            worker.run()
        finally:
            for thread in (scheduler, sealer):
                if thread is not None:
                    thread.stopping.set()
