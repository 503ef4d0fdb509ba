"""Jobs: work that leaves the request, through Django's task interface.

Django 6 has the interface built in (`django.tasks`); on Django 5.2 the `django-tasks` package is
the same interface. The database backend (`django_tasks_db`) must be given tasks of the interface
it was built against, so this module picks the one it picks, and every job in H2H is declared with
`h2h_core.jobs.task`.

Enqueue with `enqueue(job, ...)`. With the database backend the job row is written in the caller's
transaction: it exists exactly when the business write it belongs to commits, so no outbox is
needed between them. With any other backend (a broker outside the database) the job is enqueued
after the commit, and the periodic sweeps re-enqueue what a crash between the two lost: every
job's own state lives in a domain row, and a job only nudges it (docs/design.md, "Jobs").
"""

from __future__ import annotations

from datetime import datetime
from importlib.util import find_spec
from typing import Any

from django.db import transaction

if find_spec("django.tasks"):  # Django 6
    from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResultStatus, task, task_backends
    from django.tasks.base import Task
else:  # Django 5.2
    from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResultStatus, task, task_backends
    from django_tasks.base import Task

__all__ = ["Task", "TaskResultStatus", "enqueue", "in_database", "task", "task_backends"]


def in_database() -> bool:
    """True when jobs are rows of the application database (the embedded default)."""
    from django_tasks_db.backend import DatabaseBackend

    return isinstance(task_backends[DEFAULT_TASK_BACKEND_ALIAS], DatabaseBackend)


def enqueue(job: Task, *args: Any, run_after: datetime | None = None, **kwargs: Any) -> None:
    """Enqueue `job`, as part of the current transaction when jobs live in the database."""
    if run_after is not None:
        job = job.using(run_after=run_after)
    if in_database():
        job.enqueue(*args, **kwargs)
    else:
        transaction.on_commit(lambda: job.enqueue(*args, **kwargs))
