"""The timer sweep (workflows.timers): it asks only what may hold (conditions, service levels), and fires that."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import PROCESS, STATUS

from authority.models import AuthorityRequest
from authority.services import authority_request_approve
from h2h_core import services as case_services
from h2h_core.models import Case, CaseEvent
from tests.factories import GrantFactory, kind
from workflows import services
from workflows.flows import RequestFlow
from workflows.models import RequestProcess
from workflows.timers import armed_conditions, timers_fire

from .conftest import open_case


def ask(alice, customer) -> AuthorityRequest:
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    return services.authority_request_flow_open(actor=alice, case=case, kind=kind("refund"), amount="1200",
                                                currency="EUR", justification="Key account, churn risk")


def waits(request) -> dict[str, str]:
    process = RequestProcess.objects.get(request=request)
    return {task.flow_task.name: task.status for task in process.task_set.order_by("pk")}


@pytest.fixture
def two_requests(alice, maria, customer):
    # alice may refund 500 per case, maria 5,000: each request of 1,200 waits for maria
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    return ask(alice, customer), ask(alice, customer)


@pytest.mark.django_db
def test_the_sweep_asks_only_the_approval_waits_whose_request_was_decided(maria, two_requests):
    # given two open requests waiting for the team, and the upkeep's watch
    decided, still_open = two_requests
    # when maria approves one outside the workflow (the authority service: its wait is not ended)
    authority_request_approve(actor=maria, request=decided, note="ok")
    # then the sweep's candidates are that wait (and any other kind of condition), not the open one's
    candidates = {task.process_id for task in armed_conditions().filter(
        flow_task__in=(RequestFlow.team_approval, RequestFlow.fallback_approval))}
    assert candidates == {RequestProcess.objects.get(request=decided).pk}


@pytest.mark.django_db
def test_the_sweep_fires_the_decided_wait_and_leaves_the_open_one_waiting(
    maria, two_requests, django_capture_on_commit_callbacks
):
    decided, still_open = two_requests
    authority_request_approve(actor=maria, request=decided, note="ok")
    # when the sweep runs
    with django_capture_on_commit_callbacks(execute=True):
        fired = timers_fire()
    # then the decided request's flow is over, the open one still waits for the team
    assert fired["conditions"] == 1
    assert RequestProcess.objects.get(request=decided).status == PROCESS.DONE
    assert waits(decided)["team_approval"] == "DONE"
    assert RequestProcess.objects.get(request=still_open).status == PROCESS.NEW
    assert waits(still_open)["team_approval"] == "NEW"


@pytest.fixture
def breach_calls(monkeypatch):
    """The targets the breach service is asked about, the service itself still doing its work."""
    calls = []
    real = case_services.case_sla_breach

    def spy(*, case, target, tz=None):
        calls.append(target)
        return real(case=case, target=target, tz=tz)

    monkeypatch.setattr("workflows.flows.case_services.case_sla_breach", spy)
    return calls


def assert_nothing_flagged(case, breach_calls) -> None:
    case.refresh_from_db()
    assert not case.sla_breached and not case.events.filter(kind=CaseEvent.Kind.SLA).exists()
    assert breach_calls == []


def timers_of(case) -> dict[str, str]:
    return {task.flow_task.name: task.status
            for task in Task.objects.filter(process__caseprocess__case=case, flow_task_type="TIMER")}


@pytest.mark.django_db
def test_a_timely_claim_disarms_the_first_response_timer_and_the_sweep_has_nothing_to_fire(
    alice, maria, customer, breach_calls, django_capture_on_commit_callbacks
):
    # given a case whose two service-level timers are armed
    case = open_case(alice, customer)
    assert timers_of(case) == {"own__timeout": STATUS.SCHEDULED, "own__timeout_2": STATUS.SCHEDULED}
    # when alice claims it as soon as it came in
    case = services.case_flow_claim(actor=alice, case=case)
    # then the first-response timer is cancelled, the resolution timer still armed
    assert timers_of(case) == {"own__timeout": STATUS.CANCELED, "own__timeout_2": STATUS.SCHEDULED}
    # and a sweep long after the first-response due time fires nothing and flags nothing
    Task.objects.filter(process__caseprocess__case=case, status=STATUS.CANCELED).update(
        scheduled=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        fired = timers_fire()
    assert fired["timers"] == 0
    assert_nothing_flagged(case, breach_calls)


@pytest.mark.django_db
def test_a_first_response_timer_that_fires_after_a_timely_response_flags_nothing_without_asking(
    alice, maria, customer, breach_calls, django_capture_on_commit_callbacks
):
    # given a case answered in time whose first-response timer is still armed (a process adopted late)
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    Task.objects.filter(process__caseprocess__case=case, status=STATUS.CANCELED).update(
        status=STATUS.SCHEDULED, finished=None, scheduled=timezone.now() - timedelta(minutes=1))
    # when the sweep runs
    with django_capture_on_commit_callbacks(execute=True):
        fired = timers_fire()
    # then the timer fired, and nothing was flagged: the breach service was not even asked
    assert fired["timers"] == 1
    assert_nothing_flagged(case, breach_calls)


@pytest.mark.django_db
def test_a_first_response_timer_after_a_late_claim_flags_the_breach(
    alice, maria, customer, breach_calls, django_capture_on_commit_callbacks
):
    # given a case that waited six hours before its claim
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer, hours_ago=6))
    # when the sweep runs
    with django_capture_on_commit_callbacks(execute=True):
        timers_fire()
    # then the first response was flagged as missed, once, by the breach service
    case.refresh_from_db()
    assert case.sla_breached and case.events.filter(kind=CaseEvent.Kind.SLA).count() == 1
    assert "first_response" in breach_calls


@pytest.mark.django_db
def test_a_sweep_of_some_cases_fires_their_timers_and_their_requests_and_leaves_the_rest(
    alice, maria, customer, django_capture_on_commit_callbacks
):
    # given two cases that waited six hours unclaimed (their first-response timers are due), and a request
    # on the first whose team window ended an hour ago
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    mine, other = open_case(alice, customer, hours_ago=6), open_case(alice, customer, hours_ago=6)
    request = services.authority_request_flow_open(
        actor=alice, case=services.case_flow_claim(actor=alice, case=mine), kind=kind("refund"), amount="1200",
        currency="EUR", justification="Key account, churn risk")
    window = Task.objects.get(process__requestprocess__request=request, flow_task_type="TIMER")
    Task.objects.filter(pk=window.pk).update(scheduled=timezone.now() - timedelta(hours=1))
    # when the sweep runs for the first case only
    with django_capture_on_commit_callbacks(execute=True):
        fired = timers_fire(cases=Case.objects.filter(pk=mine.pk))
    # then its first-response timer and its request's window fired, nothing of the other case, and no start
    assert fired == {"timers": 2, "started": 0, "conditions": 0}
    assert timers_of(mine)["own__timeout"] == STATUS.DONE
    window.refresh_from_db()
    assert window.status == STATUS.DONE
    assert timers_of(other) == {"own__timeout": STATUS.SCHEDULED, "own__timeout_2": STATUS.SCHEDULED}
    # and the sweep of everything then fires the other case's
    with django_capture_on_commit_callbacks(execute=True):
        assert timers_fire()["timers"] == 1
    assert timers_of(other)["own__timeout"] == STATUS.DONE
