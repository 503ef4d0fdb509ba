"""The periodic schedule: each slot enqueued once whatever the number of schedulers, runs never
overlap, and the timers fire through the queue with no cron."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from authority.models import RequestStatus
from edges.worker import schedule as periodic
from edges.worker.models import PeriodicLease, PeriodicRun
from h2h_core.models import CaseStatus, Role
from tests.factories import CustomerFactory, GrantFactory, UserFactory, kind
from tests.jobs import failed_jobs, queued, run_jobs
from tests.workflows.conftest import open_case
from workflows import services

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 30, 12, 0, 1, tzinfo=UTC)


@pytest.fixture
def customer():
    return CustomerFactory(name="Acme Corp")


@pytest.fixture(autouse=True)
def signing_key(settings, tmp_path):
    """This worker holds the audit signing key, as a production worker does."""
    from h2h_core.audit.checkpoint import generate_signing_key

    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit.pem"
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)


def test_each_periodic_job_is_enqueued_once_per_slot_however_many_schedulers_look():
    # given two schedulers looking at the same moment
    first = periodic.schedule_due(now=NOON)
    second = periodic.schedule_due(now=NOON)
    # then the first enqueued every job once and the second nothing
    assert sorted(first) == sorted(periodic.schedule())
    assert second == []
    assert queued("periodic_run").count() == len(first)
    assert PeriodicRun.objects.count() == len(first)


def test_the_next_slot_of_a_job_is_enqueued_when_its_period_has_passed():
    periodic.schedule_due(now=NOON)
    # when the timers' period has passed, but not the hour
    later = periodic.schedule_due(now=NOON + timedelta(seconds=settings.H2H_TIMER_SWEEP_SECONDS))
    # then only the timers are enqueued again
    assert later == ["workflow-timers"]


def test_slots_are_aligned_to_the_epoch_so_every_machine_agrees():
    every = timedelta(seconds=20)
    assert periodic.slot_of(NOON, every) == datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    assert periodic.slot_of(NOON + timedelta(seconds=18.9), every) == periodic.slot_of(NOON, every)
    assert periodic.slot_of(NOON + timedelta(seconds=19), every) == datetime(2026, 11, 30, 12, 0, 20, tzinfo=UTC)


def test_a_run_records_what_its_job_did(monkeypatch):
    # given the schedule enqueued its jobs
    periodic.schedule_due()
    # when a worker runs them
    run_jobs()
    # then every run is done, with the job's own summary
    runs = {run.name: run for run in PeriodicRun.objects.all()}
    assert {run.outcome for run in runs.values()} == {PeriodicRun.Outcome.DONE}
    assert set(runs["workflow-timers"].result) == {"timers", "started", "conditions"}
    assert periodic.last_finished("workflow-timers") == runs["workflow-timers"]


def test_a_run_is_skipped_while_the_previous_run_of_the_same_job_holds_the_lease():
    # given another worker is running the timers (its lease is still valid)
    PeriodicLease.objects.create(name="workflow-timers", holder="run 0",
                                 held_until=datetime(2100, 1, 1, tzinfo=UTC))
    periodic.schedule_due()
    # when this slot's run comes up
    run_jobs()
    # then it did nothing and says so, and the lease is still the other run's
    run = PeriodicRun.objects.get(name="workflow-timers")
    assert run.outcome == PeriodicRun.Outcome.SKIPPED
    assert PeriodicLease.objects.get(name="workflow-timers").holder == "run 0"


def test_an_expired_lease_of_a_killed_worker_does_not_block_the_job():
    PeriodicLease.objects.create(name="workflow-timers", holder="run 0",
                                 held_until=datetime(2000, 1, 1, tzinfo=UTC))
    periodic.schedule_due()
    run_jobs()
    assert PeriodicRun.objects.get(name="workflow-timers").outcome == PeriodicRun.Outcome.DONE
    assert PeriodicLease.objects.get(name="workflow-timers").held_until is None


def test_a_failing_run_is_recorded_with_its_error_and_gives_the_lease_back(monkeypatch):
    def broken():
        raise RuntimeError("timers table unreadable")

    monkeypatch.setattr(periodic, "timers_fire", broken)
    periodic.schedule_due()
    run_jobs()
    run = PeriodicRun.objects.get(name="workflow-timers")
    assert run.outcome == PeriodicRun.Outcome.FAILED
    assert run.result == {"error": "RuntimeError: timers table unreadable"}
    assert PeriodicLease.objects.get(name="workflow-timers").held_until is None
    assert [job.task_name for job in failed_jobs()] == ["periodic_run"]
    assert PeriodicRun.objects.exclude(name="workflow-timers").filter(outcome=PeriodicRun.Outcome.FAILED).count() == 0


def test_a_worker_without_the_signing_key_records_why_it_could_not_seal(settings, tmp_path):
    # given a worker that does not hold the private key
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "missing.pem"
    periodic.schedule_due()
    run_jobs()
    # then the sealing run failed and says why; the other jobs ran
    run = PeriodicRun.objects.get(name="audit-checkpoint")
    assert run.outcome == PeriodicRun.Outcome.FAILED and "No audit signing key" in run.result["error"]
    assert PeriodicRun.objects.get(name="workflow-timers").outcome == PeriodicRun.Outcome.DONE


def test_a_run_is_not_repeated_when_its_job_is_delivered_twice():
    periodic.schedule_due()
    run = PeriodicRun.objects.get(name="retention")
    periodic.periodic_run.call(run.pk)
    finished = PeriodicRun.objects.get(pk=run.pk).finished_at
    # when the same job runs again (a queue that delivers at least once)
    assert periodic.periodic_run.call(run.pk) == {"skipped": "already run"}
    assert PeriodicRun.objects.get(pk=run.pk).finished_at == finished


def test_an_overdue_case_is_flagged_by_the_scheduled_timers_with_no_cron(
    alice, maria, customer, django_capture_on_commit_callbacks
):
    # given a complaint that came in 6 h ago (first response within 4 h) and nobody claimed
    case = open_case(alice, customer, hours_ago=6)
    # when the worker looks at its schedule and runs what is due
    with django_capture_on_commit_callbacks(execute=True):
        periodic.schedule_due()
        run_jobs()
    # then the case carries its breach flag
    case.refresh_from_db()
    assert case.sla_breached and case.status == CaseStatus.QUEUED


def test_a_request_past_its_team_window_reaches_the_fallback_pool_through_the_worker(
    alice, maria, customer, settings, django_capture_on_commit_callbacks
):
    # given alice asked for more than she may give, and the team's managers have 0 hours to decide
    settings.H2H_APPROVAL_TEAM_HOURS = 0
    fiona = UserFactory(username="fiona", roles=[Role.MANAGER, settings.H2H_FALLBACK_APPROVER_GROUP])
    GrantFactory(subject_user=fiona, per_case_limit=Decimal("10000"), period_limit=Decimal("50000"))
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    request = services.authority_request_flow_open(actor=alice, case=case, kind=kind("refund"), amount="1200",
                                                   currency="EUR", justification="Key account")
    # when the worker looks at its schedule and runs what is due
    with django_capture_on_commit_callbacks(execute=True):
        periodic.schedule_due()
        run_jobs()
    # then the request is offered to the fallback pool, still open
    request.refresh_from_db()
    assert request.pool_is_fallback and fiona.pk in request.pool
    assert request.status == RequestStatus.OPEN


def test_jobs_whose_worker_vanished_are_marked_failed_and_old_results_pruned():
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from edges.worker.upkeep import jobs_upkeep
    from h2h_core.jobs import TaskResultStatus

    periodic.schedule_due()
    # given one job taken by a worker an hour ago that never came back
    stuck = DBTaskResult.objects.first()
    DBTaskResult.objects.filter(pk=stuck.pk).update(status=TaskResultStatus.RUNNING,
                                                    started_at=timezone.now() - timedelta(hours=1))
    # when the upkeep runs
    summary = jobs_upkeep()
    # then it is failed, named as lost, and the others are untouched
    stuck.refresh_from_db()
    assert summary["abandoned"] == 1 and stuck.status == TaskResultStatus.FAILED
    assert stuck.exception_class_path == "h2h.WorkerLost"
    assert DBTaskResult.objects.filter(status=TaskResultStatus.READY).count() == len(periodic.schedule()) - 1
