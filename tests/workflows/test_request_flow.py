"""The authority request flow: the team's managers first; on timeout the fallback pool, once; never a chain."""

from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from viewflow.workflow.status import PROCESS

from authority.errors import NotAllowed, NotCaseOwner
from authority.models import AuthorityRequest, Grant, RequestStatus, UsageCounter
from authority.services import authority_request_approve
from h2h_core.models import AuditEvent, CaseEvent, Role
from tests.factories import GrantFactory, UserFactory, kind
from workflows import services
from workflows.models import RequestProcess

from .conftest import open_case


@pytest.fixture
def owned_case(alice, maria, customer):
    # alice may refund 500 per case, maria 5,000
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    case = open_case(alice, customer)
    return services.case_flow_claim(actor=alice, case=case)


@pytest.fixture
def fiona(db):
    """A fallback approver with the authority to cover large refunds."""
    user = UserFactory(username="fiona", roles=[Role.MANAGER, django_settings.H2H_FALLBACK_APPROVER_GROUP])
    GrantFactory(subject_user=user, per_case_limit=Decimal("10000"), period_limit=Decimal("50000"))
    return user


def ask(alice, case, amount="1200") -> AuthorityRequest:
    return services.authority_request_flow_open(actor=alice, case=case, kind=kind("refund"), amount=amount,
                                                currency="EUR", justification="Key account, churn risk")


def approval_tasks(request) -> dict[str, str]:
    process = RequestProcess.objects.get(request=request)
    return {task.flow_task.name: task.status for task in process.task_set.order_by("pk")}


def recorded() -> dict:
    """What opening or deciding a request could write, the refusals aside."""
    return {
        "requests": list(AuthorityRequest.objects.values_list("pk", "status")),
        "processes": RequestProcess.objects.count(),
        "grants": Grant.objects.count(),
        "counters": dict(UsageCounter.objects.values_list("key", "used")),
        "case_events": CaseEvent.objects.count(),
        "audit": AuditEvent.objects.exclude(outcome="denied").count(),
    }


def run_timers(capture) -> None:
    with capture(execute=True):
        call_command("workflow_timers")


@pytest.mark.django_db
def test_a_request_waits_for_the_team_managers_first(alice, maria, owned_case):
    # when alice asks for 1,200 over her 500
    request = ask(alice, owned_case)
    # then its flow waits for the team pool (maria), with the team window's timer armed
    assert request.pool == [maria.pk] and not request.pool_is_fallback
    tasks = approval_tasks(request)
    assert tasks["team_approval"] == "NEW" and tasks["team_approval__timeout"] == "SCHEDULED"


@pytest.mark.django_db
def test_a_decided_request_ends_its_flow(alice, maria, owned_case, django_capture_on_commit_callbacks):
    request = ask(alice, owned_case)
    # when maria approves through the approvals inbox's service, and the timers run
    authority_request_approve(actor=maria, request=request, note="ok")
    run_timers(django_capture_on_commit_callbacks)
    # then the approval wait is over and the process is done; nothing was offered to anyone else
    process = RequestProcess.objects.get(request=request)
    assert process.status == PROCESS.DONE
    assert approval_tasks(request)["team_approval"] == "DONE"
    assert approval_tasks(request)["team_approval__timeout"] == "CANCELED"


@pytest.mark.django_db
def test_opening_a_request_is_one_transaction_when_its_flow_cannot_start_nothing_is_recorded(
    alice, maria, owned_case, monkeypatch
):
    # given the request's flow cannot start (a fault in the workflow layer)
    def broken(*, request):
        raise RuntimeError("flow fault")

    monkeypatch.setattr("workflows.steps.requests.request_flow_start", broken)
    before = recorded()
    # when alice asks for 1,200
    with pytest.raises(RuntimeError):
        ask(alice, owned_case)
    # then the request was rolled back with it: no request, no event, no audit record
    assert recorded() == before


@pytest.mark.django_db
def test_when_the_team_window_passes_the_fallback_pool_is_offered_the_request_once(
    alice, maria, fiona, owned_case, settings, django_capture_on_commit_callbacks
):
    # given the team's managers have 0 hours to decide
    settings.H2H_APPROVAL_TEAM_HOURS = 0
    request = ask(alice, owned_case)
    # when the timers run, twice
    run_timers(django_capture_on_commit_callbacks)
    run_timers(django_capture_on_commit_callbacks)
    # then fiona joined the pool, once, and the offer is on the case and in the audit log
    request.refresh_from_db()
    assert request.pool == sorted([maria.pk, fiona.pk]) and request.pool_is_fallback
    assert request.status == RequestStatus.OPEN
    offers = AuditEvent.objects.filter(action="authority_request.offered_to_fallback")
    assert offers.count() == 1 and offers.get().after["pool"] == request.pool
    assert CaseEvent.objects.filter(case=owned_case, text__contains="offered to the fallback pool (fiona)").exists()
    tasks = approval_tasks(request)
    assert tasks["team_approval"] == "CANCELED" and tasks["fallback_approval"] == "NEW"
    # and fiona can approve it: one hop, still
    authority_request_approve(actor=fiona, request=request, note="covered")
    run_timers(django_capture_on_commit_callbacks)
    assert RequestProcess.objects.get(request=request).status == PROCESS.DONE


@pytest.mark.django_db
def test_without_a_covering_fallback_approver_the_request_stays_and_that_is_recorded(
    alice, maria, owned_case, settings, django_capture_on_commit_callbacks
):
    # given a fallback approver whose own authority does not cover 1,200
    small = UserFactory(username="sam", roles=[Role.MANAGER, django_settings.H2H_FALLBACK_APPROVER_GROUP])
    GrantFactory(subject_user=small, per_case_limit=Decimal("100"))
    settings.H2H_APPROVAL_TEAM_HOURS = 0
    request = ask(alice, owned_case)
    # when the team window passes
    run_timers(django_capture_on_commit_callbacks)
    # then the pool is unchanged and the reason is recorded
    request.refresh_from_db()
    assert request.pool == [maria.pk] and not request.pool_is_fallback
    unavailable = AuditEvent.objects.get(action="authority_request.fallback_unavailable")
    assert "stays with maria" in unavailable.reason


@pytest.mark.django_db
def test_an_undecided_request_expires_by_the_timer(alice, maria, owned_case, settings, monkeypatch,
                                                   django_capture_on_commit_callbacks):
    # given requests that expire at once, and a team window of 0 hours
    monkeypatch.setattr("authority.services.requests.REQUEST_HOURS", 0)
    settings.H2H_APPROVAL_TEAM_HOURS = 0
    request = ask(alice, owned_case)
    # when the timers run (the team window, then the expiry)
    run_timers(django_capture_on_commit_callbacks)
    run_timers(django_capture_on_commit_callbacks)
    # then the request expired through the authority service and its flow ended
    request.refresh_from_db()
    assert request.status == RequestStatus.EXPIRED
    assert AuditEvent.objects.filter(action="authority_request.expired", object_id=str(request.pk)).count() == 1
    assert RequestProcess.objects.get(request=request).status == PROCESS.DONE


@pytest.mark.django_db
def test_a_request_opened_outside_the_workflow_is_adopted_by_the_timer_run(alice, maria, owned_case):
    # given a request opened through the authority service alone (the API, say)
    from authority.services import authority_request_open

    request = authority_request_open(actor=alice, case=owned_case, kind=kind("refund"), amount="900",
                                     currency="EUR", justification="Loyal customer")
    assert not RequestProcess.objects.filter(request=request).exists()
    # when the timers run
    call_command("workflow_timers")
    # then its flow waits for the team pool
    assert approval_tasks(request)["team_approval"] == "NEW"


@pytest.mark.django_db
def test_a_refused_request_starts_no_flow(alice, owned_case):
    from django.core.exceptions import ValidationError

    # when alice asks for an amount within her own authority
    with pytest.raises(ValidationError):
        ask(alice, owned_case, amount="100")
    # then there is no request and no process
    assert not AuthorityRequest.objects.exists() and not RequestProcess.objects.exists()


@pytest.mark.django_db
def test_when_no_team_manager_covers_it_the_fallback_pool_has_it_from_the_start(alice, maria, fiona, customer):
    # given alice may refund 500 and maria only 1,000, but fiona 10,000
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("1000"))
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    # when alice asks for 1,200
    request = ask(alice, case)
    # then the request goes straight to the fallback pool, which waits until expiry: no team window
    assert request.pool == [fiona.pk] and request.pool_is_fallback
    tasks = approval_tasks(request)
    assert "team_approval" not in tasks
    assert tasks["fallback_approval"] == "NEW" and tasks["fallback_approval__timeout"] == "SCHEDULED"


@pytest.mark.django_db
def test_a_refused_request_through_the_step_is_recorded_once_and_starts_nothing(alice, bob, owned_case):
    before = recorded()
    # when bob asks for a one-off grant on alice's case
    with pytest.raises(NotCaseOwner):
        ask(bob, owned_case)
    # then the refusal is on the record once, and there is no request and no process
    refusals = AuditEvent.objects.filter(action="authority_request.open.refused", object_id=str(owned_case.pk))
    assert refusals.count() == 1
    assert recorded() == before


@pytest.mark.django_db
@pytest.mark.parametrize("step", ["approve", "reject"])
def test_deciding_a_request_is_one_transaction_when_its_flow_cannot_advance_nothing_is_recorded(
    alice, maria, owned_case, monkeypatch, step
):
    # given an open request whose flow cannot be advanced (a fault in the workflow layer)
    request = ask(alice, owned_case)

    def broken(process):
        raise RuntimeError("flow fault")

    monkeypatch.setattr("workflows.steps.requests._end_approval_wait", broken)
    before = recorded()
    # when maria decides it through the workflow step (the approvals inbox and the API do)
    with pytest.raises(RuntimeError):
        if step == "approve":
            services.authority_request_flow_approve(actor=maria, request=request, note="ok")
        else:
            services.authority_request_flow_reject(actor=maria, request=request, note="Not this time")
    # then the decision was rolled back with it: still open, no grant, maria's usage untouched
    assert recorded() == before
    assert approval_tasks(request)["team_approval"] == "NEW"


@pytest.mark.django_db
def test_a_refused_approval_through_the_step_is_recorded_once_and_the_wait_goes_on(alice, owned_case):
    request = ask(alice, owned_case)
    before = recorded()
    # when alice approves her own request
    with pytest.raises(NotAllowed):
        services.authority_request_flow_approve(actor=alice, request=request)
    # then the refusal is on the record once (the step records it, not the service inside it)
    refusals = AuditEvent.objects.filter(action="authority_request.approve.refused", object_id=str(request.pk))
    assert refusals.count() == 1 and refusals.get().outcome == "denied"
    assert recorded() == before
    assert approval_tasks(request)["team_approval"] == "NEW"
