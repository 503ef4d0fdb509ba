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
from h2h_core.models import CaseEvent
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


def first_response_timer(case):
    """The case's scheduled first-response timer (the ownership task's first timeout)."""
    scheduled = Task.objects.filter(process__caseprocess__case=case, flow_task_type="TIMER", status=STATUS.SCHEDULED)
    return Task.objects.filter(pk__in=[task.pk for task in scheduled if task.flow_task.name == "own__timeout"])


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


@pytest.mark.django_db
def test_a_first_response_timer_after_a_timely_claim_flags_nothing_without_asking(
    alice, maria, customer, breach_calls, django_capture_on_commit_callbacks
):
    # given a case claimed as soon as it came in, whose first-response timer is then due
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    first_response_timer(case).update(scheduled=timezone.now() - timedelta(minutes=1))
    # when the sweep runs
    with django_capture_on_commit_callbacks(execute=True):
        fired = timers_fire()
    # then the timer fired, and nothing was flagged: the breach service was not even asked
    assert fired["timers"] == 1
    case.refresh_from_db()
    assert not case.sla_breached and not case.events.filter(kind=CaseEvent.Kind.SLA).exists()
    assert breach_calls == []


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
