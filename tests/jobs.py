"""Run the jobs waiting in the database queue, in this process, as a worker would (for tests)."""

from __future__ import annotations

from unittest import mock

from django_tasks_db.models import DBTaskResult

from h2h_core.jobs import TaskResultStatus


def run_jobs(*, queues: str = "*", rounds: int = 20) -> int:
    """Run every ready job (and the jobs those enqueue), like `manage.py run_worker --batch`; return how many ran.

    Jobs scheduled for later (`run_after` in the future) stay queued, as they would for a worker.
    """
    from django_tasks_db.management.commands import db_worker

    ran = 0
    for _ in range(rounds):
        before = DBTaskResult.objects.exclude(status=TaskResultStatus.READY).count()
        # A worker drops connections that are not in autocommit mode, which a test's transaction is not.
        with mock.patch.object(db_worker, "close_old_connections", lambda: None):
            db_worker.Worker(queue_names=queues.split(","), interval=0, batch=True, backend_name="default",
                             startup_delay=False, max_tasks=None, worker_id="test-worker",
                             excluded_queue_names=[]).run()
        after = DBTaskResult.objects.exclude(status=TaskResultStatus.READY).count()
        if after == before:
            return ran
        ran += after - before
    return ran


def queued(task_name: str | None = None):
    """The jobs still waiting (READY), optionally only those of one task function's name."""
    jobs = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    if task_name:
        jobs = jobs.filter(task_path__endswith="." + task_name)
    return jobs


def failed_jobs():
    return DBTaskResult.objects.filter(status=TaskResultStatus.FAILED)
