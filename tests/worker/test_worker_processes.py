"""Real worker processes on one PostgreSQL database: each job runs exactly once, and the timers
fire with no cron within a minute."""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from h2h_core.jobs import TaskResultStatus
from tests.factories import CustomerFactory, UserFactory
from tests.workflows.conftest import open_case

from .probe import probe_record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the test database this test's rows were committed to."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(tmp_path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "H2H_VAR_DIR": str(tmp_path / "var"),
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    env.pop("H2H_TEST_DATABASE_NAME", None)
    return subprocess.Popen([sys.executable, "manage.py", "run_worker", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_workers_on_one_database_run_each_job_exactly_once(tmp_path):
    # given 200 jobs in the queue
    executions = tmp_path / "executions.txt"
    for number in range(200):
        probe_record.enqueue(number, str(executions))
    # when two worker processes take jobs at the same time until none is left
    workers = [start_worker(tmp_path, "--batch", "--no-schedule", "--worker-id", f"w{n}") for n in (1, 2)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    # then every job ran once: no job twice, none left out, and both workers did a share
    lines = executions.read_text().split()
    numbers = Counter(int(number) for number in lines[0::2])
    assert sorted(numbers) == list(range(200)) and set(numbers.values()) == {1}
    assert DBTaskResult.objects.filter(status=TaskResultStatus.SUCCESSFUL).count() == 200
    per_worker = Counter(worker_id for ids in DBTaskResult.objects.values_list("worker_ids", flat=True)
                         for worker_id in ids)
    assert set(per_worker) == {"w1", "w2"} and sum(per_worker.values()) == 200


def test_a_running_worker_flags_an_overdue_case_within_a_minute_with_no_cron(tmp_path):
    # given a complaint that came in 6 h ago (first response within 4 h) and nobody claimed
    from h2h_core.models import Role

    agent = UserFactory(username="alice", roles=[Role.AGENT])
    case = open_case(agent, CustomerFactory(name="Acme Corp"), hours_ago=6)
    assert not case.sla_breached
    # when a worker is started, as `make run` does
    worker = start_worker(tmp_path, "--schedule-interval", "1")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            case.refresh_from_db()
            if case.sla_breached or worker.poll() is not None:
                break
            time.sleep(0.5)
        waited = 60 - (deadline - time.monotonic())
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    # then the breach is flagged within the minute
    assert case.sla_breached, output
    assert waited < 60
